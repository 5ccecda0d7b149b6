//! Things that advance a state by steps, and the random starting states they begin from.

pub mod backend;
pub mod cpu;
pub mod forces;
pub mod gpu;
mod matrix;
pub mod optim;
mod pairwise;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

pub use backend::{BackendChoice, Engine};
pub use cpu::CpuEngine;
pub use forces::{ForcePath, KernelWeight, PAIRWISE_MAX_DIM, compute_force};

use crate::model::Points;
use crate::params::InitKind;

/// Draws `n` starting points in `dim` dimensions from `init`, reproducibly for a seed.
pub fn sample_start(init: InitKind, n: usize, dim: usize, seed: u64) -> Points {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let coords = (0..n * dim)
        .map(|_| match init {
            InitKind::Gaussian => rng.sample::<f64, _>(StandardNormal),
            InitKind::Uniform => rng.random_range(-1.0..=1.0),
        })
        .collect();
    Points::from_rows(n, dim, coords)
}
