//! Fast force evaluation for the engine: picks the pairwise or the matrix-product path by d and
//! turns their pair sums into the force `F_i = -n dE/dz_i`. Energies are not computed here, so a
//! step costs the force alone; readouts use the f64 reference in [`crate::model::energy`].

use serde::{Deserialize, Serialize};

use super::{matrix, pairwise};
use crate::model::{Kernel, Model, Points, Task};

/// Largest d the pairwise path handles.
pub const PAIRWISE_MAX_DIM: usize = 64;

/// From this d on, `Auto` uses the matrix-product path. Chosen from `eccentric bench` on a 2-core
/// x86-64 machine, where the matrix path was already faster at d = 16.
pub const MATRIX_PATH_MIN_DIM: usize = 12;

/// Implementation of the force.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ForcePath {
    /// Pairwise below `MATRIX_PATH_MIN_DIM`, matrix products from there on.
    #[default]
    Auto,
    Pairwise,
    Matrix,
    /// The f64 all-pairs loop of the model itself: slow, the reference for the others.
    Reference,
}

impl ForcePath {
    /// Returns the path that `self` runs for dimension `dim`.
    pub fn resolve(self, dim: usize) -> ForcePath {
        match self {
            ForcePath::Auto if dim >= MATRIX_PATH_MIN_DIM => ForcePath::Matrix,
            ForcePath::Auto => ForcePath::Pairwise,
            ForcePath::Pairwise if dim > PAIRWISE_MAX_DIM => ForcePath::Matrix,
            other => other,
        }
    }
}

/// The kernel's force weight `w = rho^(-s-2)` in f32, evaluated over a slice of squared
/// softened distances.
#[derive(Clone, Copy, Debug)]
pub struct KernelWeight {
    exponent: f32,
    pub softening2: f32,
    shape: WeightShape,
}

#[derive(Clone, Copy, Debug)]
enum WeightShape {
    /// `s = -1`: `1/rho`.
    InverseRoot,
    /// `s = 0`: `1/rho^2`.
    Inverse,
    /// `s = 1`: `1/rho^3`.
    InverseRootCubed,
    /// `s = 2`: `1/rho^4`.
    InverseSquared,
    General,
}

impl KernelWeight {
    pub fn new(kernel: &Kernel) -> Self {
        let shape = match kernel.s {
            s if s == -1.0 => WeightShape::InverseRoot,
            s if s == 0.0 => WeightShape::Inverse,
            s if s == 1.0 => WeightShape::InverseRootCubed,
            s if s == 2.0 => WeightShape::InverseSquared,
            _ => WeightShape::General,
        };
        Self { exponent: (-(kernel.s + 2.0) / 2.0) as f32, softening2: (kernel.softening * kernel.softening) as f32, shape }
    }

    /// Writes the weight of each squared softened distance in `rho2` to `w`; 0 where `rho2` is 0,
    /// as in [`Kernel::term`].
    #[inline(always)]
    pub fn fill(&self, rho2: &[f32], w: &mut [f32]) {
        let guard = |r2: f32, value: f32| if r2 > 0.0 { value } else { 0.0 };
        match self.shape {
            WeightShape::InverseRoot => w.iter_mut().zip(rho2).for_each(|(w, &r2)| *w = guard(r2, 1.0 / r2.sqrt())),
            WeightShape::Inverse => w.iter_mut().zip(rho2).for_each(|(w, &r2)| *w = guard(r2, 1.0 / r2)),
            WeightShape::InverseRootCubed => {
                w.iter_mut().zip(rho2).for_each(|(w, &r2)| *w = guard(r2, 1.0 / (r2 * r2.sqrt())))
            }
            WeightShape::InverseSquared => w.iter_mut().zip(rho2).for_each(|(w, &r2)| *w = guard(r2, 1.0 / (r2 * r2))),
            WeightShape::General => {
                let exponent = self.exponent;
                w.iter_mut().zip(rho2).for_each(|(w, &r2)| *w = guard(r2, r2.powf(exponent)))
            }
        }
    }
}

/// Writes the force `F_i = -n dE/dz_i` of `model` and `task` at `points` into `force`, through
/// `path`. The reference path also returns its energy evaluation; the fast paths return `None`.
pub fn compute_force(path: ForcePath, model: &Model, task: Task<'_>, points: &Points, force: &mut Points) -> Option<crate::model::Evaluation> {
    let n = points.n();
    let dim = points.dim();
    let sums = match path.resolve(dim) {
        ForcePath::Reference => return Some(crate::model::evaluate(model, task, points, force)),
        ForcePath::Matrix => matrix::pair_sums(KernelWeight::new(&model.kernel), points),
        _ => pairwise::pair_sums(KernelWeight::new(&model.kernel), points),
    };

    let pair_scale = 2.0 * model.gamma / (n as f64 - 1.0);
    let attraction = model.gamma * model.lambda;
    let anchors = match task {
        Task::Anchors(anchors) => Some(anchors),
        Task::None => None,
    };
    for i in 0..n {
        let z = points.row(i);
        let out = force.row_mut(i);
        for k in 0..dim {
            out[k] = pair_scale * sums[i * dim + k] - attraction * z[k];
        }
        if let Some(anchors) = anchors {
            for (k, a) in anchors.row(i).iter().enumerate() {
                out[k] -= z[k] - a;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::sample_start;
    use crate::params::InitKind;

    /// f32 arithmetic with f32 sums over up to a few hundred partners: about 1e-6 relative, with
    /// the Gram form of the matrix path losing a little more to cancellation.
    const F32_TOLERANCE: f64 = 1e-4;


    #[test]
    fn fast_paths_match_reference() {
        for s in [-1.0, 0.0, 1.0, 2.0, 0.5] {
            for dim in [2, 3, 17, 64, 100] {
                for n in [5, 70, 300] {
                    let points = sample_start(InitKind::Gaussian, n, dim, 3);
                    let anchors = sample_start(InitKind::Uniform, n, dim, 4);
                    let model = Model { gamma: 0.8, lambda: 1.2, kernel: Kernel::new(s, 0.01) };
                    let task = Task::Anchors(&anchors);
                    let mut reference = Points::zeros(n, dim);
                    compute_force(ForcePath::Reference, &model, task, &points, &mut reference);
                    for path in [ForcePath::Pairwise, ForcePath::Matrix] {
                        // Each path only where it runs: the matrix path's Gram form loses precision
                        // to cancellation in low d, where `Auto` never uses it.
                        let in_domain = match path {
                            ForcePath::Pairwise => dim <= PAIRWISE_MAX_DIM,
                            _ => dim >= 17,
                        };
                        if !in_domain {
                            continue;
                        }
                        let mut fast = Points::zeros(n, dim);
                        compute_force(path, &model, task, &points, &mut fast);
                        let error = fast.relative_error(&reference);
                        assert!(error < F32_TOLERANCE, "{path:?} s={s} d={dim} n={n}: relative error {error:e}");
                    }
                }
            }
        }
    }

    #[test]
    fn coincident_points_without_softening_stay_finite() {
        let points = Points::from_rows(3, 2, vec![0.5, 0.5, 0.5, 0.5, -1.0, 0.0]);
        let model = Model { gamma: 1.0, lambda: 1.0, kernel: Kernel::new(1.0, 0.0) };
        for path in [ForcePath::Pairwise, ForcePath::Matrix] {
            let mut force = Points::zeros(3, 2);
            compute_force(path, &model, Task::None, &points, &mut force);
            assert!(force.is_finite(), "{path:?}");
        }
    }
}
