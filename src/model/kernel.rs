//! The Riesz s-kernel family that sets how two particles repel.
//!
//! `K_s(r) = r^(-s) / s` for `s != 0` and `K_0(r) = -ln r`. The kernel is evaluated at the softened
//! distance `rho = sqrt(r^2 + eps^2)`, so coincident points (duplicate rows in real data) give
//! finite energies and forces whenever `eps > 0`.
//!
//! Useful members: `s = -1` is a constant-magnitude repulsion, `s = 0` the logarithmic kernel and
//! `s = d - 2` the Coulomb kernel in `d` dimensions.

/// One member of the Riesz family with its softening.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Kernel {
    /// Riesz exponent `s`.
    pub s: f64,
    /// Softening length `eps` (same unit as the coordinates), at least 0.
    pub softening: f64,
    eps2: f64,
    shape: Shape,
}

/// Closed forms for the exponents people use most, so the hot loop avoids `powf`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Shape {
    MinusOne,
    Log,
    One,
    Two,
    General,
}

/// The kernel at one softened distance: its value and the force weight `w = rho^(-s-2)`.
///
/// The gradient of `K(rho_ij)` with respect to `z_i` is `-w * (z_i - z_j)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KernelTerm {
    pub value: f64,
    pub weight: f64,
}

impl Kernel {
    pub fn new(s: f64, softening: f64) -> Self {
        let shape = if s == -1.0 {
            Shape::MinusOne
        } else if s == 0.0 {
            Shape::Log
        } else if s == 1.0 {
            Shape::One
        } else if s == 2.0 {
            Shape::Two
        } else {
            Shape::General
        };
        Self { s, softening, eps2: softening * softening, shape }
    }

    /// Evaluates the kernel at squared distance `dist2 = |z_i - z_j|^2`.
    ///
    /// At `rho = 0` (coincident points with no softening) the force has no direction, so the
    /// weight is 0. The value is then 0 for `s < 0` and `+inf` otherwise.
    #[inline(always)]
    pub fn term(&self, dist2: f64) -> KernelTerm {
        let rho2 = dist2 + self.eps2;
        if rho2 == 0.0 {
            let value = if self.s < 0.0 { 0.0 } else { f64::INFINITY };
            return KernelTerm { value, weight: 0.0 };
        }
        match self.shape {
            Shape::MinusOne => {
                let rho = rho2.sqrt();
                KernelTerm { value: -rho, weight: 1.0 / rho }
            }
            Shape::Log => KernelTerm { value: -0.5 * rho2.ln(), weight: 1.0 / rho2 },
            Shape::One => {
                let inv_rho = 1.0 / rho2.sqrt();
                KernelTerm { value: inv_rho, weight: inv_rho / rho2 }
            }
            Shape::Two => {
                let inv_rho2 = 1.0 / rho2;
                KernelTerm { value: 0.5 * inv_rho2, weight: inv_rho2 * inv_rho2 }
            }
            Shape::General => {
                let rho_pow = rho2.powf(-0.5 * self.s);
                KernelTerm { value: rho_pow / self.s, weight: rho_pow / rho2 }
            }
        }
    }

    /// Returns the kernel value at the (unsoftened) distance `r`.
    pub fn value_at(&self, r: f64) -> f64 {
        self.term(r * r).value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central differences of a smooth scalar function in f64 reach about 1e-8 relative.
    const DERIVATIVE_TOLERANCE: f64 = 1e-7;

    #[test]
    fn closed_forms_match_general_power() {
        for s in [-1.0, 1.0, 2.0] {
            let fast = Kernel::new(s, 0.1);
            let mut general = fast;
            general.shape = Shape::General;
            for dist2 in [1e-4, 0.3, 1.0, 7.5] {
                let a = fast.term(dist2);
                let b = general.term(dist2);
                assert!((a.value - b.value).abs() <= 1e-12 * b.value.abs().max(1.0), "s={s}");
                assert!((a.weight - b.weight).abs() <= 1e-12 * b.weight.abs().max(1.0), "s={s}");
            }
        }
    }

    #[test]
    fn weight_is_minus_derivative_over_rho() {
        for s in [-1.5, -1.0, 0.0, 0.5, 1.0, 2.0, 3.0] {
            let kernel = Kernel::new(s, 0.0);
            for r in [0.2, 1.0, 3.0] {
                let h = 1e-5 * r;
                let derivative = (kernel.value_at(r + h) - kernel.value_at(r - h)) / (2.0 * h);
                let expected = -derivative / r;
                let weight = kernel.term(r * r).weight;
                assert!(
                    (weight - expected).abs() <= DERIVATIVE_TOLERANCE * expected.abs(),
                    "s={s} r={r}: weight {weight}, expected {expected}"
                );
            }
        }
    }

    #[test]
    fn log_kernel_is_minus_log() {
        let kernel = Kernel::new(0.0, 0.0);
        assert!((kernel.value_at(2.0) + 2f64.ln()).abs() < 1e-15);
    }

    #[test]
    fn softening_keeps_coincident_points_finite() {
        for s in [-1.0, 0.0, 1.0, 2.0, 4.5] {
            let term = Kernel::new(s, 1e-3).term(0.0);
            assert!(term.value.is_finite(), "s={s}");
            assert!(term.weight.is_finite(), "s={s}");
        }
    }
}
