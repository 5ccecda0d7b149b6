//! Matrix-product force path for large d. Squared distances come from the Gram matrix,
//! `|z_i - z_j|^2 = |z_i|^2 + |z_j|^2 - 2 z_i . z_j`, and the pair sum is a weighted matrix
//! product, `S = diag(W 1) Z - W Z`. Both products run through nalgebra's f32 GEMM, one block of
//! rows per rayon task so that memory stays at `BLOCK_ROWS * n` weights per task.
//!
//! NOTE: the Gram form loses relative precision for pairs much closer than their distance from
//! the origin (f32 cancellation); negative rounding is clamped to 0 before the softening is added.

use nalgebra::DMatrix;
use rayon::prelude::*;

use super::KernelWeight;
use crate::model::Points;

/// Rows of the weight matrix computed at once by one task.
const BLOCK_ROWS: usize = 256;

/// Computes `S_i = sum_{j != i} w_ij (z_i - z_j)` for every i, row-major `n * d`.
pub fn pair_sums(weight: KernelWeight, points: &Points) -> Vec<f64> {
    let n = points.n();
    let dim = points.dim();
    let z = DMatrix::<f32>::from_fn(n, dim, |i, k| points.row(i)[k] as f32);
    let z_t = z.transpose();
    let norms: Vec<f32> = (0..n).map(|i| z.row(i).norm_squared()).collect();

    let blocks: Vec<usize> = (0..n).step_by(BLOCK_ROWS).collect();
    let parts: Vec<(usize, DMatrix<f32>)> = blocks
        .par_iter()
        .map(|&start| {
            let rows = BLOCK_ROWS.min(n - start);
            let block = z.rows(start, rows);

            // Gram block (rows x n), column-major: entry (r, j) at j * rows + r.
            let mut gram = DMatrix::<f32>::zeros(rows, n);
            gram.gemm(1.0, &block, &z_t, 0.0);

            let row_sums = gram_to_weights(weight, gram.as_mut_slice(), rows, start, &norms);

            // S_block = diag(row sums) Z_block - W Z.
            let mut sums = DMatrix::<f32>::zeros(rows, dim);
            sums.gemm(-1.0, &gram, &z, 0.0);
            for r in 0..rows {
                for k in 0..dim {
                    sums[(r, k)] += row_sums[r] * block[(r, k)];
                }
            }
            (start, sums)
        })
        .collect();

    let mut result = vec![0.0; n * dim];
    for (start, sums) in parts {
        for r in 0..sums.nrows() {
            for k in 0..dim {
                result[(start + r) * dim + k] = f64::from(sums[(r, k)]);
            }
        }
    }
    result
}

/// Turns a column-major Gram block (`rows x n`, rows starting at particle `start`) into force
/// weights in place and returns each row's sum of weights.
fn gram_to_weights(weight: KernelWeight, gram: &mut [f32], rows: usize, start: usize, norms: &[f32]) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the processor supports AVX2 and FMA, checked just above.
        return unsafe { gram_to_weights_avx2(weight, gram, rows, start, norms) };
    }
    gram_to_weights_portable(weight, gram, rows, start, norms)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn gram_to_weights_avx2(weight: KernelWeight, gram: &mut [f32], rows: usize, start: usize, norms: &[f32]) -> Vec<f32> {
    gram_to_weights_portable(weight, gram, rows, start, norms)
}

#[inline(always)]
fn gram_to_weights_portable(weight: KernelWeight, gram: &mut [f32], rows: usize, start: usize, norms: &[f32]) -> Vec<f32> {
    let block_norms = &norms[start..start + rows];
    let mut row_sums = vec![0f32; rows];
    let mut r2 = vec![0f32; rows];
    for (j, column) in gram.chunks_exact_mut(rows).enumerate() {
        let norm_j = norms[j];
        for ((out, &g), &norm_i) in r2.iter_mut().zip(column.iter()).zip(block_norms) {
            *out = (norm_i + norm_j - 2.0 * g).max(0.0) + weight.softening2;
        }
        weight.fill(&r2, column);
        if (start..start + rows).contains(&j) {
            column[j - start] = 0.0;
        }
        row_sums.iter_mut().zip(column.iter()).for_each(|(s, x)| *s += x);
    }
    row_sums
}
