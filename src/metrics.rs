//! Readouts computed from a point set: energy parts, radii, covariance spectrum, eccentricity,
//! virial ratio, hyperspherical energy, uniformity and gradient norm.

use nalgebra::{DMatrix, SymmetricEigen};
use rayon::prelude::*;
use serde::Serialize;

use crate::model::points::{dist2, norm2};
use crate::model::{Kernel, Points, evaluate};
use crate::params::Params;

/// Temperature `t` of the uniformity readout `log mean exp(-t |u_i - u_j|^2)`.
pub const UNIFORMITY_T: f64 = 2.0;

/// Every scalar readout of one state, in the column order of `metrics.csv`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Readouts {
    pub step: u64,
    pub energy_total: f64,
    pub energy_attraction: f64,
    pub energy_repulsion: f64,
    pub energy_task: f64,
    /// Mean of `|z_i|`.
    pub radius_mean: f64,
    /// Standard deviation of `|z_i|` over its mean.
    pub radius_rel_std: f64,
    /// `sqrt(1 - l_min / l_max)` of the covariance eigenvalues: 0 for an isotropic cloud.
    pub eccentricity: f64,
    /// Attraction side over repulsion side of the virial identity; 1 at a stationary point of R.
    pub virial_ratio: f64,
    /// `exp` of the entropy of the normalised covariance eigenvalues, between 1 and d.
    pub effective_rank: f64,
    /// Pair energy of the directions `u_i = z_i / |z_i|` under the same kernel, normalised as R's
    /// pair term: `1/(n(n-1)) * sum_{i != j} K_s(|u_i - u_j|)`.
    pub hyperspherical_energy: f64,
    /// `log` of the mean of `exp(-2 |u_i - u_j|^2)` over pairs of directions; lower is more uniform.
    pub uniformity: f64,
    /// Euclidean norm of the full gradient `dE/dZ`.
    pub gradient_norm: f64,
}

/// Names of the `metrics.csv` columns, in order.
pub const CSV_COLUMNS: [&str; 13] = [
    "step",
    "energy_total",
    "energy_attraction",
    "energy_repulsion",
    "energy_task",
    "radius_mean",
    "radius_rel_std",
    "eccentricity",
    "virial_ratio",
    "effective_rank",
    "hyperspherical_energy",
    "uniformity",
    "gradient_norm",
];

impl Readouts {
    /// Returns the values in the order of [`CSV_COLUMNS`].
    pub fn csv_values(&self) -> [f64; 13] {
        [
            self.step as f64,
            self.energy_total,
            self.energy_attraction,
            self.energy_repulsion,
            self.energy_task,
            self.radius_mean,
            self.radius_rel_std,
            self.eccentricity,
            self.virial_ratio,
            self.effective_rank,
            self.hyperspherical_energy,
            self.uniformity,
            self.gradient_norm,
        ]
    }

    /// Computes every readout of `points` under `params`, with `anchors` as the task targets.
    ///
    /// Costs two passes over all pairs, so callers sample it (every recorded frame, every
    /// displayed frame) rather than running it every step.
    pub fn compute(params: &Params, points: &Points, anchors: Option<&Points>, step: u64) -> Self {
        let model = params.model();
        let task = params.task_term(anchors);
        let mut force = Points::zeros(points.n(), points.dim());
        let evaluation = evaluate(&model, task, points, &mut force);
        let gradient_norm = norm2(force.as_slice()).sqrt() / points.n() as f64;

        let radii = radius_stats(points);
        let spectrum = covariance_spectrum(points);
        let directions = direction_stats(points, &model.kernel);

        Self {
            step,
            energy_total: evaluation.energy.total(),
            energy_attraction: evaluation.energy.attraction,
            energy_repulsion: evaluation.energy.repulsion,
            energy_task: evaluation.energy.task,
            radius_mean: radii.mean,
            radius_rel_std: radii.rel_std,
            eccentricity: eccentricity(&spectrum),
            virial_ratio: evaluation.virial_ratio(),
            effective_rank: effective_rank(&spectrum),
            hyperspherical_energy: directions.energy,
            uniformity: directions.uniformity,
            gradient_norm,
        }
    }
}

/// Mean and relative spread of the radii `|z_i|`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RadiusStats {
    pub mean: f64,
    pub rel_std: f64,
    /// Root mean square radius, `sqrt(mean |z_i|^2)`.
    pub rms: f64,
}

pub fn radius_stats(points: &Points) -> RadiusStats {
    let n = points.n() as f64;
    let radii: Vec<f64> = points.rows().map(|row| norm2(row).sqrt()).collect();
    let mean = radii.iter().sum::<f64>() / n;
    let mean_square = radii.iter().map(|r| r * r).sum::<f64>() / n;
    let variance = radii.iter().map(|r| (r - mean) * (r - mean)).sum::<f64>() / n;
    let rel_std = if mean > 0.0 { variance.sqrt() / mean } else { 0.0 };
    RadiusStats { mean, rel_std, rms: mean_square.sqrt() }
}

/// Radii `|z_i|` of every point.
pub fn radii(points: &Points) -> Vec<f64> {
    points.rows().map(|row| norm2(row).sqrt()).collect()
}

/// Returns the eigenvalues of the covariance (about the mean, normalised by n), largest first.
pub fn covariance_spectrum(points: &Points) -> Vec<f64> {
    let covariance = covariance(points);
    let mut eigenvalues: Vec<f64> = SymmetricEigen::new(covariance).eigenvalues.iter().map(|l| l.max(0.0)).collect();
    eigenvalues.sort_by(|a, b| b.total_cmp(a));
    eigenvalues
}

/// Returns the `d x d` covariance matrix about the mean, normalised by n.
pub fn covariance(points: &Points) -> DMatrix<f64> {
    let n = points.n();
    let dim = points.dim();
    let mean = column_mean(points);
    let centered = DMatrix::from_fn(n, dim, |i, k| points.row(i)[k] - mean[k]);
    (centered.transpose() * &centered) / n as f64
}

pub fn column_mean(points: &Points) -> Vec<f64> {
    let mut mean = vec![0.0; points.dim()];
    for row in points.rows() {
        for (m, x) in mean.iter_mut().zip(row) {
            *m += x;
        }
    }
    mean.iter_mut().for_each(|m| *m /= points.n() as f64);
    mean
}

/// `sqrt(1 - l_min / l_max)` of eigenvalues sorted largest first; 0 when all are 0.
pub fn eccentricity(spectrum: &[f64]) -> f64 {
    let (Some(&largest), Some(&smallest)) = (spectrum.first(), spectrum.last()) else {
        return 0.0;
    };
    if largest <= 0.0 {
        return 0.0;
    }
    (1.0 - smallest / largest).clamp(0.0, 1.0).sqrt()
}

/// `exp(-sum p_k ln p_k)` with `p_k = l_k / sum l`: 1 for one axis, d for an isotropic cloud.
pub fn effective_rank(spectrum: &[f64]) -> f64 {
    let total: f64 = spectrum.iter().sum();
    if total <= 0.0 {
        return 0.0;
    }
    let entropy: f64 = spectrum
        .iter()
        .map(|l| l / total)
        .filter(|&p| p > 0.0)
        .map(|p| -p * p.ln())
        .sum();
    entropy.exp()
}

/// Pair readouts of the directions `u_i = z_i / |z_i|`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DirectionStats {
    pub energy: f64,
    pub uniformity: f64,
}

/// Computes the hyperspherical energy and the uniformity of the directions of `points`.
///
/// A point at the origin has no direction and is left out.
pub fn direction_stats(points: &Points, kernel: &Kernel) -> DirectionStats {
    let directions = unit_directions(points);
    let m = directions.n();
    if m < 2 {
        return DirectionStats { energy: 0.0, uniformity: 0.0 };
    }
    let (energy_sum, gaussian_sum) = (0..m)
        .into_par_iter()
        .map(|i| {
            let u_i = directions.row(i);
            let mut energy = 0.0;
            let mut gaussian = 0.0;
            for (j, u_j) in directions.rows().enumerate() {
                if j != i {
                    let d2 = dist2(u_i, u_j);
                    energy += kernel.term(d2).value;
                    gaussian += (-UNIFORMITY_T * d2).exp();
                }
            }
            (energy, gaussian)
        })
        .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    let pairs = (m * (m - 1)) as f64;
    DirectionStats { energy: energy_sum / pairs, uniformity: (gaussian_sum / pairs).ln() }
}

/// Returns the unit vectors of the non-zero rows.
pub fn unit_directions(points: &Points) -> Points {
    let mut coords = Vec::with_capacity(points.as_slice().len());
    let mut count = 0;
    for row in points.rows() {
        let norm = norm2(row).sqrt();
        if norm > 0.0 {
            coords.extend(row.iter().map(|x| x / norm));
            count += 1;
        }
    }
    Points::from_rows(count, points.dim(), coords)
}

/// Cosines between pairs of directions, at most `max_pairs` of them (a deterministic subsample).
pub fn pair_cosines(points: &Points, max_pairs: usize) -> Vec<f64> {
    let directions = unit_directions(points);
    let m = directions.n();
    let total = m * m.saturating_sub(1) / 2;
    let stride = total.div_ceil(max_pairs.max(1)).max(1);
    let mut cosines = Vec::with_capacity(total.min(max_pairs));
    let mut index = 0usize;
    for i in 0..m {
        for j in i + 1..m {
            if index % stride == 0 {
                let dot: f64 = directions.row(i).iter().zip(directions.row(j)).map(|(a, b)| a * b).sum();
                cosines.push(dot);
            }
            index += 1;
        }
    }
    cosines
}

/// Counts of `values` in `bins` equal bins over `[low, high]`; values outside are clamped.
pub fn histogram(values: &[f64], low: f64, high: f64, bins: usize) -> Vec<usize> {
    let mut counts = vec![0; bins];
    let width = (high - low) / bins as f64;
    for &v in values {
        if !v.is_finite() || width <= 0.0 {
            continue;
        }
        let bin = (((v - low) / width).floor().max(0.0) as usize).min(bins - 1);
        counts[bin] += 1;
    }
    counts
}

/// The equilibrium that theory predicts for quadratic attraction and a Riesz s-kernel.
///
/// Chafai, Saff and Womersley (2022, "On the solution of a Riesz equilibrium problem and integral
/// identities for special functions") show that the minimiser is a thin spherical shell when
/// `s <= d - 4` and a full-dimensional ball otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Regime {
    Shell,
    Ball,
}

impl Regime {
    pub fn predicted(kernel_s: f64, dim: usize) -> Self {
        if kernel_s <= dim as f64 - 4.0 { Regime::Shell } else { Regime::Ball }
    }

    /// Classifies a measured state: a relative radius spread under 5% reads as a shell.
    pub fn measured(radius_rel_std: f64) -> Self {
        if radius_rel_std < 0.05 { Regime::Shell } else { Regime::Ball }
    }

    pub fn label(self) -> &'static str {
        match self {
            Regime::Shell => "thin shell",
            Regime::Ball => "full ball",
        }
    }
}

/// Root mean square radius at any stationary point of R with `s = 0`: `1 / sqrt(lambda)`.
///
/// It follows from the virial identity, whose repulsion side is exactly 1 for the logarithmic
/// kernel without softening.
pub fn predicted_rms_radius_log_kernel(lambda: f64) -> f64 {
    1.0 / lambda.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Closed-form values are exact up to rounding in f64.
    const EXACT: f64 = 1e-12;

    /// The `d + 1` vertices of a regular simplex on the unit sphere in `R^d`.
    fn regular_simplex(dim: usize) -> Points {
        // Center the standard basis of R^(d+1), then express it in an orthonormal basis of the
        // hyperplane it spans, found by Gram-Schmidt.
        let m = dim + 1;
        let centered: Vec<Vec<f64>> = (0..m)
            .map(|i| (0..m).map(|k| if k == i { 1.0 } else { 0.0 } - 1.0 / m as f64).collect())
            .collect();
        let mut basis: Vec<Vec<f64>> = Vec::new();
        for v in &centered {
            let mut w = v.clone();
            for b in &basis {
                let dot: f64 = w.iter().zip(b).map(|(x, y)| x * y).sum();
                w.iter_mut().zip(b).for_each(|(x, y)| *x -= dot * y);
            }
            let norm = norm2(&w).sqrt();
            if norm > 1e-9 && basis.len() < dim {
                basis.push(w.iter().map(|x| x / norm).collect());
            }
        }
        let mut coords = Vec::new();
        for v in &centered {
            let row: Vec<f64> = basis.iter().map(|b| v.iter().zip(b).map(|(x, y)| x * y).sum()).collect();
            let norm = norm2(&row).sqrt();
            coords.extend(row.iter().map(|x| x / norm));
        }
        Points::from_rows(m, dim, coords)
    }

    /// The `2d` points `+e_k` and `-e_k`.
    fn axis_points(dim: usize) -> Points {
        let mut coords = vec![0.0; 2 * dim * dim];
        for k in 0..dim {
            coords[(2 * k) * dim + k] = 1.0;
            coords[(2 * k + 1) * dim + k] = -1.0;
        }
        Points::from_rows(2 * dim, dim, coords)
    }

    #[test]
    fn simplex_is_isotropic_unit_shell() {
        for dim in [2, 3, 5] {
            let points = regular_simplex(dim);
            let radii = radius_stats(&points);
            assert!((radii.mean - 1.0).abs() < EXACT, "d={dim}");
            assert!(radii.rel_std < 1e-9, "d={dim}");
            let spectrum = covariance_spectrum(&points);
            // Covariance of the simplex vertices is I/d.
            for l in &spectrum {
                assert!((l - 1.0 / dim as f64).abs() < 1e-12, "d={dim}: eigenvalue {l}");
            }
            assert!(eccentricity(&spectrum) < 1e-5, "d={dim}");
            assert!((effective_rank(&spectrum) - dim as f64).abs() < 1e-9, "d={dim}");
        }
    }

    #[test]
    fn simplex_direction_readouts() {
        for dim in [2, 3, 7] {
            let points = regular_simplex(dim);
            // Every pair of vertices has cosine -1/d, so squared chord 2 + 2/d.
            let chord2 = 2.0 + 2.0 / dim as f64;
            for s in [-1.0, 0.0, 1.0] {
                let kernel = Kernel::new(s, 0.0);
                let stats = direction_stats(&points, &kernel);
                let expected = kernel.term(chord2).value;
                assert!((stats.energy - expected).abs() < 1e-12, "d={dim} s={s}");
            }
            let stats = direction_stats(&points, &Kernel::new(1.0, 0.0));
            assert!((stats.uniformity + UNIFORMITY_T * chord2).abs() < 1e-12, "d={dim}");
            for cosine in pair_cosines(&points, 1000) {
                assert!((cosine + 1.0 / dim as f64).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn axis_points_readouts() {
        let dim = 4;
        let points = axis_points(dim);
        let spectrum = covariance_spectrum(&points);
        // Covariance of +-e_k over 2d points is I/d.
        for l in &spectrum {
            assert!((l - 0.25).abs() < EXACT);
        }
        assert!((effective_rank(&spectrum) - 4.0).abs() < 1e-9);
        let radii = radius_stats(&points);
        assert!((radii.mean - 1.0).abs() < EXACT);
        assert!(radii.rel_std < EXACT);
    }

    #[test]
    fn points_on_line_are_fully_eccentric() {
        let points = Points::from_rows(4, 3, vec![1.0, 0.0, 0.0, 2.0, 0.0, 0.0, -1.0, 0.0, 0.0, -3.0, 0.0, 0.0]);
        let spectrum = covariance_spectrum(&points);
        assert!((eccentricity(&spectrum) - 1.0).abs() < EXACT);
        assert!((effective_rank(&spectrum) - 1.0).abs() < EXACT);
    }

    #[test]
    fn anisotropic_cloud_eccentricity() {
        // Points +-a e_1 and +-b e_2: eigenvalues a^2/2 and b^2/2.
        let (a, b) = (2.0, 1.0);
        let points = Points::from_rows(4, 2, vec![a, 0.0, -a, 0.0, 0.0, b, 0.0, -b]);
        let spectrum = covariance_spectrum(&points);
        let expected = (1.0f64 - (b * b) / (a * a)).sqrt();
        assert!((eccentricity(&spectrum) - expected).abs() < EXACT);
        let p = [a * a / (a * a + b * b), b * b / (a * a + b * b)];
        let expected_rank = (-(p[0] * p[0].ln() + p[1] * p[1].ln())).exp();
        assert!((effective_rank(&spectrum) - expected_rank).abs() < EXACT);
    }

    #[test]
    fn virial_ratio_and_gradient_at_equilibrium() {
        // Two points at +-r on a line with s = 0, lambda = 1, no softening: the force on each is
        // -r + 2/(n-1) * (2r)/(2r)^2 = -r + 1/r, zero at r = 1.
        let points = Points::from_rows(2, 1, vec![1.0, -1.0]);
        let params = Params { n: 2, dim: 1, kernel_s: 0.0, softening: 0.0, ..Params::default() };
        let readouts = Readouts::compute(&params, &points, None, 0);
        assert!((readouts.virial_ratio - 1.0).abs() < EXACT);
        assert!(readouts.gradient_norm < EXACT);
        // E = 1/(2*2) * 2 + 1/2 * 2 * (-ln 2).
        assert!((readouts.energy_total - (0.5 - 2f64.ln())).abs() < EXACT);
    }

    #[test]
    fn theory_regimes() {
        assert_eq!(Regime::predicted(-1.0, 3), Regime::Shell);
        assert_eq!(Regime::predicted(0.0, 3), Regime::Ball);
        assert_eq!(Regime::predicted(12.0, 16), Regime::Shell);
        assert_eq!(Regime::predicted(12.5, 16), Regime::Ball);
        assert!((predicted_rms_radius_log_kernel(4.0) - 0.5).abs() < EXACT);
    }

    #[test]
    fn histogram_counts_every_value() {
        let counts = histogram(&[0.0, 0.1, 0.5, 0.99, 1.0, 7.0], 0.0, 1.0, 4);
        assert_eq!(counts, vec![2, 0, 1, 3]);
    }
}
