//! Pairwise force path for small d: each unordered pair is visited once, coordinates are stored
//! as f32 structure-of-arrays so the loop over partners vectorises, and every particle's sum is
//! added up in f32 lanes and returned in f64.
//!
//! Returns the pair sum `S_i = sum_{j != i} w_ij (z_i - z_j)` only; [`super::forces`] turns it
//! into the force.

use rayon::prelude::*;

use super::KernelWeight;
use crate::model::Points;

/// Partners handled together in the inner loop; a multiple of every SIMD width in use.
const CHUNK: usize = 64;

/// Rows per rayon task. Row i has n - i - 1 partners, so tasks near the start are heavier, and
/// small tasks let work stealing even that out.
const ROWS_PER_TASK: usize = 16;

/// Computes `S_i = sum_{j != i} w_ij (z_i - z_j)` for every i, row-major `n * d`.
pub fn pair_sums(weight: KernelWeight, points: &Points) -> Vec<f64> {
    let n = points.n();
    let dim = points.dim();
    let columns = to_columns(points);

    let tasks: Vec<(usize, usize)> = (0..n).step_by(ROWS_PER_TASK).map(|start| (start, (start + ROWS_PER_TASK).min(n))).collect();
    let columns_sum = tasks
        .par_iter()
        .fold(
            || vec![0f32; n * dim],
            |mut sums, &(start, end)| {
                accumulate_rows(weight, &columns, n, dim, start..end, &mut sums);
                sums
            },
        )
        .reduce(
            || vec![0f32; n * dim],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| *x += y);
                a
            },
        );

    // Back from columns (axis-major) to row-major f64.
    let mut rows = vec![0.0; n * dim];
    for k in 0..dim {
        for i in 0..n {
            rows[i * dim + k] = f64::from(columns_sum[k * n + i]);
        }
    }
    rows
}

/// Coordinates as f32 columns: axis k of particle j at `k * n + j`.
fn to_columns(points: &Points) -> Vec<f32> {
    let n = points.n();
    let dim = points.dim();
    let mut columns = vec![0f32; n * dim];
    for (i, row) in points.rows().enumerate() {
        for (k, &x) in row.iter().enumerate() {
            columns[k * n + i] = x as f32;
        }
    }
    columns
}

/// Adds the interactions of `rows` with their later partners, through the widest vector
/// instructions this processor has.
fn accumulate_rows(weight: KernelWeight, columns: &[f32], n: usize, dim: usize, rows: std::ops::Range<usize>, sums: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the processor supports AVX2 and FMA, checked just above.
        unsafe { accumulate_rows_avx2(weight, columns, n, dim, rows, sums) };
        return;
    }
    accumulate_rows_portable(weight, columns, n, dim, rows, sums);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn accumulate_rows_avx2(weight: KernelWeight, columns: &[f32], n: usize, dim: usize, rows: std::ops::Range<usize>, sums: &mut [f32]) {
    accumulate_rows_portable(weight, columns, n, dim, rows, sums);
}

#[inline(always)]
fn accumulate_rows_portable(weight: KernelWeight, columns: &[f32], n: usize, dim: usize, rows: std::ops::Range<usize>, sums: &mut [f32]) {
    // NOTE: a variant with the axis loop unrolled for d = 3 measured slower than this one,
    // which streams each axis separately and vectorises over partners.
    for i in rows {
        accumulate_row(weight, columns, n, dim, i, sums);
    }
}

/// Adds the interactions of row i with every j > i: `+w (z_i - z_j)` to i and the opposite to j.
#[inline(always)]
fn accumulate_row(weight: KernelWeight, columns: &[f32], n: usize, dim: usize, i: usize, sums: &mut [f32]) {
    let mut own = [0f32; super::PAIRWISE_MAX_DIM];
    let mut r2 = [0f32; CHUNK];
    let mut w = [0f32; CHUNK];
    let eps2 = weight.softening2;

    let mut start = i + 1;
    while start < n {
        let len = CHUNK.min(n - start);
        let r2 = &mut r2[..len];
        let w = &mut w[..len];
        r2.fill(eps2);
        for k in 0..dim {
            let axis = &columns[k * n..(k + 1) * n];
            let xi = axis[i];
            for (r, &xj) in r2.iter_mut().zip(&axis[start..start + len]) {
                let diff = xi - xj;
                *r += diff * diff;
            }
        }
        weight.fill(r2, w);
        for k in 0..dim {
            let axis = &columns[k * n..(k + 1) * n];
            let xi = axis[i];
            let partner_sums = &mut sums[k * n + start..k * n + start + len];
            own[k] += scatter_terms(partner_sums, &axis[start..start + len], w, xi);
        }
        start += len;
    }
    for k in 0..dim {
        sums[k * n + i] += own[k];
    }
}

/// Subtracts each term `w_j (x_i - x_j)` from its partner's sum and returns the sum of the terms.
///
/// The sum runs in 8 independent lanes: a single running total would be a serial dependency
/// that the compiler may not reorder for floats, and the loop would not vectorise.
#[inline(always)]
fn scatter_terms(partner_sums: &mut [f32], partners: &[f32], w: &[f32], xi: f32) -> f32 {
    const LANES: usize = 8;
    let mut lanes = [0f32; LANES];
    let split = partners.len() / LANES * LANES;
    let (sums_head, sums_tail) = partner_sums.split_at_mut(split);
    for ((s, x), w) in sums_head.chunks_exact_mut(LANES).zip(partners[..split].chunks_exact(LANES)).zip(w[..split].chunks_exact(LANES)) {
        for l in 0..LANES {
            let term = w[l] * (xi - x[l]);
            lanes[l] += term;
            s[l] -= term;
        }
    }
    let mut total: f32 = lanes.iter().sum();
    for ((s, &x), &wj) in sums_tail.iter_mut().zip(&partners[split..]).zip(&w[split..]) {
        let term = wj * (xi - x);
        total += term;
        *s -= term;
    }
    total
}
