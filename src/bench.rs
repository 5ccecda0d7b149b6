//! Speed measurements behind `eccentric bench` and `cargo bench`: steps per second of the CPU
//! engine and the machine's f32 GEMM rate as the reference limit.
//!
//! Operation count: a step is counted as `4 n^2 d` floating-point operations, the two `n x n x d`
//! matrix products (Gram matrix and weighted sum) that dominate the matrix-product path. The same
//! nominal count is used for every implementation, so GFLOP/s figures compare like with like;
//! the pairwise path does about half as many because it visits each unordered pair once.

use std::time::{Duration, Instant};

use nalgebra::DMatrix;
use rayon::prelude::*;
use serde::Serialize;

use crate::engine::{CpuEngine, ForcePath, sample_start};
use crate::params::{InitKind, Params};

/// One measured configuration, in the columns of the benchmark CSV.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    #[serde(rename = "impl")]
    pub implementation: String,
    pub n: usize,
    pub d: usize,
    pub threads: usize,
    pub steps_per_second: f64,
    pub pair_interactions_per_second: f64,
    pub gflops: f64,
}

pub const CSV_HEADER: &str = "impl,n,d,threads,steps_per_second,pair_interactions_per_second,gflops";

impl BenchRow {
    pub fn csv_line(&self) -> String {
        format!(
            "{},{},{},{},{:.6},{:.6e},{:.3}",
            self.implementation, self.n, self.d, self.threads, self.steps_per_second, self.pair_interactions_per_second, self.gflops
        )
    }
}

/// Nominal floating-point operations of one step (see the module documentation).
pub fn step_flops(n: usize, d: usize) -> f64 {
    4.0 * (n as f64) * (n as f64) * d as f64
}

/// Times gradient-descent steps of `n` particles in `d` dimensions through `path`: one warm-up
/// step, then steps until `budget` has passed (at least one).
pub fn bench_engine(path: ForcePath, n: usize, d: usize, kernel_s: f64, budget: Duration) -> BenchRow {
    let params = Params { kernel_s, lr: 0.01, ..Params::default() };
    let mut engine = CpuEngine::new(params, sample_start(InitKind::Gaussian, n, d, 0)).expect("benchmark parameters are valid");
    engine.set_force_path(path);
    engine.step().expect("benchmark step stays finite");

    let started = Instant::now();
    let mut steps = 0u64;
    while steps == 0 || started.elapsed() < budget {
        engine.step().expect("benchmark step stays finite");
        steps += 1;
    }
    let steps_per_second = steps as f64 / started.elapsed().as_secs_f64();
    let name = match engine.force_path() {
        ForcePath::Pairwise => "cpu-pairwise",
        ForcePath::Matrix => "cpu-matrix",
        ForcePath::Reference => "cpu-reference",
        ForcePath::Auto => unreachable!("resolved paths are never Auto"),
    };
    BenchRow {
        implementation: name.to_string(),
        n,
        d,
        threads: rayon::current_num_threads(),
        steps_per_second,
        pair_interactions_per_second: steps_per_second * (n * (n - 1) / 2) as f64,
        gflops: steps_per_second * step_flops(n, d) / 1e9,
    }
}

/// Measures the f32 GEMM rate in GFLOP/s on `size x size` matrices, split in row blocks over
/// rayon's threads exactly as the matrix-product path splits its work.
pub fn gemm_rate(size: usize, budget: Duration) -> f64 {
    const BLOCK_ROWS: usize = 256;
    let a = DMatrix::<f32>::from_fn(size, size, |i, j| ((i * 7 + j * 13) % 17) as f32 / 17.0);
    let b = a.transpose();
    let multiply = || {
        (0..size).step_by(BLOCK_ROWS).collect::<Vec<_>>().par_iter().for_each(|&start| {
            let rows = BLOCK_ROWS.min(size - start);
            let mut out = DMatrix::<f32>::zeros(rows, size);
            out.gemm(1.0, &a.rows(start, rows), &b, 0.0);
            std::hint::black_box(&out);
        });
    };
    multiply();
    let started = Instant::now();
    let mut count = 0u64;
    while count == 0 || started.elapsed() < budget {
        multiply();
        count += 1;
    }
    let flops = 2.0 * (size as f64).powi(3) * count as f64;
    flops / started.elapsed().as_secs_f64() / 1e9
}
