//! The eccentric energy, the task terms and their analytic forces.
//!
//! For positions `Z = (z_1 .. z_n)` in `R^d`:
//!
//! ```text
//! E(Z) = gamma * R(Z) + T(Z)
//! R(Z) = lambda / (2n) * sum_i |z_i|^2  +  1 / (n(n-1)) * sum_{i != j} K_s(|z_i - z_j|)
//! T(Z) = 0                                  (task `none`)
//! T(Z) = 1 / (2n) * sum_i |z_i - a_i|^2     (task `anchors`, a_i the starting points)
//! ```
//!
//! The dynamics use the per-particle force `F_i = -n * dE/dz_i`, so a good step size does not
//! depend on `n`:
//!
//! ```text
//! F_i = -gamma * lambda * z_i + gamma * 2/(n-1) * sum_j w_ij (z_i - z_j) - (z_i - a_i)
//! ```
//!
//! with `w_ij = rho_ij^(-s-2)` the kernel's force weight (see [`Kernel::term`]).

use rayon::prelude::*;

use super::kernel::Kernel;
use super::points::{Points, dist2, norm2};

/// Weights of the eccentric term.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Model {
    /// Scaling factor `gamma`: the weight of the eccentric term against the task term.
    pub gamma: f64,
    /// Attraction strength `lambda`.
    pub lambda: f64,
    pub kernel: Kernel,
}

/// The task term `T` beside the eccentric term.
#[derive(Clone, Copy, Debug)]
pub enum Task<'a> {
    None,
    /// Quadratic pull of each point towards its own anchor (same shape as the positions).
    Anchors(&'a Points),
}

/// The parts of the total energy, each already weighted so that they add up to `E`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EnergyParts {
    /// `gamma * lambda / (2n) * sum_i |z_i|^2`.
    pub attraction: f64,
    /// `gamma / (n(n-1)) * sum_{i != j} K_s(rho_ij)`.
    pub repulsion: f64,
    /// `T(Z)`.
    pub task: f64,
}

impl EnergyParts {
    pub fn total(&self) -> f64 {
        self.attraction + self.repulsion + self.task
    }
}

/// One evaluation of the model at a point set.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Evaluation {
    pub energy: EnergyParts,
    /// Attraction side of the virial identity, `lambda/n * sum_i |z_i|^2`.
    pub virial_attraction: f64,
    /// Repulsion side of the virial identity, `1/(n(n-1)) * sum_{i != j} w_ij |z_i - z_j|^2`.
    ///
    /// At any stationary point of `R` the two sides are equal, because `sum_i z_i . dR/dz_i = 0`
    /// there and that sum is exactly their difference.
    pub virial_repulsion: f64,
}

impl Evaluation {
    /// Attraction side over repulsion side of the virial identity; 1 at a stationary point of `R`.
    pub fn virial_ratio(&self) -> f64 {
        self.virial_attraction / self.virial_repulsion
    }
}

/// Evaluates the energy at `points` and writes the per-particle force `F_i = -n dE/dz_i` into
/// `force` (same shape as `points`).
///
/// Every ordered pair is visited once per row, in parallel over rows. `points.n()` must be at
/// least 2 and `Task::Anchors` must have the shape of `points`; both are caller contracts.
pub fn evaluate(model: &Model, task: Task<'_>, points: &Points, force: &mut Points) -> Evaluation {
    let n = points.n();
    let dim = points.dim();
    assert!(n >= 2, "the eccentric term needs at least two points");
    assert_eq!((force.n(), force.dim()), (n, dim), "force buffer must match the points");
    if let Task::Anchors(anchors) = task {
        assert_eq!((anchors.n(), anchors.dim()), (n, dim), "anchors must match the points");
    }

    let pair_scale = 2.0 * model.gamma / (n as f64 - 1.0);
    let attraction_scale = model.gamma * model.lambda;
    let kernel = model.kernel;

    let sums = force
        .as_mut_slice()
        .par_chunks_mut(dim)
        .enumerate()
        .map(|(i, force_i)| {
            let z_i = points.row(i);
            force_i.fill(0.0);
            let mut kernel_sum = 0.0;
            let mut virial_sum = 0.0;
            for (j, z_j) in points.rows().enumerate() {
                if j == i {
                    continue;
                }
                let d2 = dist2(z_i, z_j);
                let term = kernel.term(d2);
                kernel_sum += term.value;
                virial_sum += term.weight * d2;
                for ((f, a), b) in force_i.iter_mut().zip(z_i).zip(z_j) {
                    *f += term.weight * (a - b);
                }
            }

            let mut task_sum = 0.0;
            for (axis, f) in force_i.iter_mut().enumerate() {
                *f = pair_scale * *f - attraction_scale * z_i[axis];
            }
            if let Task::Anchors(anchors) = task {
                let a_i = anchors.row(i);
                for ((f, z), a) in force_i.iter_mut().zip(z_i).zip(a_i) {
                    *f -= z - a;
                }
                task_sum = dist2(z_i, a_i);
            }
            PairSums { norm2: norm2(z_i), kernel: kernel_sum, virial: virial_sum, task: task_sum }
        })
        .reduce(PairSums::default, PairSums::add);

    sums.into_evaluation(model, n)
}

/// Evaluates the energy alone (the force is computed and discarded).
pub fn energy(model: &Model, task: Task<'_>, points: &Points) -> Evaluation {
    let mut force = Points::zeros(points.n(), points.dim());
    evaluate(model, task, points, &mut force)
}

/// Returns the gradient `dE/dZ`, the force divided by `-n`.
pub fn gradient(model: &Model, task: Task<'_>, points: &Points) -> Points {
    let mut force = Points::zeros(points.n(), points.dim());
    evaluate(model, task, points, &mut force);
    let scale = -1.0 / points.n() as f64;
    force.as_mut_slice().iter_mut().for_each(|f| *f *= scale);
    force
}

/// Per-row sums reduced across threads.
#[derive(Clone, Copy, Default)]
struct PairSums {
    norm2: f64,
    kernel: f64,
    virial: f64,
    task: f64,
}

impl PairSums {
    fn add(self, other: Self) -> Self {
        Self {
            norm2: self.norm2 + other.norm2,
            kernel: self.kernel + other.kernel,
            virial: self.virial + other.virial,
            task: self.task + other.task,
        }
    }

    fn into_evaluation(self, model: &Model, n: usize) -> Evaluation {
        let n = n as f64;
        let pair_norm = 1.0 / (n * (n - 1.0));
        Evaluation {
            energy: EnergyParts {
                attraction: model.gamma * model.lambda / (2.0 * n) * self.norm2,
                repulsion: model.gamma * pair_norm * self.kernel,
                task: self.task / (2.0 * n),
            },
            virial_attraction: model.lambda / n * self.norm2,
            virial_repulsion: pair_norm * self.virial,
        }
    }
}
