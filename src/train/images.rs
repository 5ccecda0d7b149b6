//! Decoded images: a grid along the principal axes of the latent codes, samples from the fitted
//! ellipsoid, and PNG output. A sample of p features is shown as a square of side ceil(sqrt(p))
//! (8 x 8 for the digits), grey levels spanning the data's own range.

use std::path::Path;

use nalgebra::{DMatrix, DVector, SymmetricEigen};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::trainer::Trainer;
use crate::error::{Error, Result};

/// Offsets along each axis, in standard deviations of the latent codes.
pub const AXIS_OFFSETS: [f64; 5] = [-2.0, -1.0, 0.0, 1.0, 2.0];

/// Mean and principal axes of a set of latent codes (rows).
pub struct LatentFit {
    pub mean: DVector<f64>,
    /// Eigenvalues of the covariance, largest first.
    pub variances: Vec<f64>,
    /// Matching unit eigenvectors, as columns.
    pub axes: DMatrix<f64>,
}

impl LatentFit {
    pub fn new(codes: &DMatrix<f64>) -> Self {
        let n = codes.nrows() as f64;
        let mean = codes.row_mean().transpose();
        let centered = DMatrix::from_fn(codes.nrows(), codes.ncols(), |i, k| codes[(i, k)] - mean[k]);
        let covariance = centered.transpose() * &centered / n;
        let eigen = SymmetricEigen::new(covariance);
        let mut order: Vec<usize> = (0..eigen.eigenvalues.len()).collect();
        order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
        let variances = order.iter().map(|&k| eigen.eigenvalues[k].max(0.0)).collect();
        let axes = DMatrix::from_fn(codes.ncols(), order.len(), |r, c| eigen.eigenvectors[(r, order[c])]);
        Self { mean, variances, axes }
    }

    /// Latent points along the top `count` axes at [`AXIS_OFFSETS`], one row per point, axis by axis.
    pub fn axis_points(&self, count: usize) -> DMatrix<f64> {
        let count = count.min(self.variances.len());
        let d = self.mean.len();
        let mut points = DMatrix::zeros(count * AXIS_OFFSETS.len(), d);
        for axis in 0..count {
            let scale = self.variances[axis].sqrt();
            for (c, offset) in AXIS_OFFSETS.iter().enumerate() {
                let point = &self.mean + self.axes.column(axis) * (offset * scale);
                points.set_row(axis * AXIS_OFFSETS.len() + c, &point.transpose());
            }
        }
        points
    }

    /// Random points on the fitted ellipsoid `mean + V sqrt(L) u sqrt(d)` with `u` uniform on the
    /// unit sphere, so the points have the codes' mean and covariance.
    pub fn ellipsoid_points(&self, count: usize, seed: u64) -> DMatrix<f64> {
        let d = self.mean.len();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let scales = DVector::from_iterator(d, self.variances.iter().map(|l| l.sqrt()));
        let mut points = DMatrix::zeros(count, d);
        for r in 0..count {
            let mut u = DVector::from_fn(d, |_, _| rng.sample::<f64, _>(StandardNormal));
            u /= u.norm().max(1e-12);
            let point = &self.mean + &self.axes * u.component_mul(&scales) * (d as f64).sqrt();
            points.set_row(r, &point.transpose());
        }
        points
    }
}

/// Decodes the principal-axis grid of the trainer's current codes: rows are axes, columns the
/// offsets. Returns the samples in data units, row-major over the grid.
pub fn principal_axis_samples(trainer: &Trainer, axes: usize) -> (usize, DMatrix<f64>) {
    let codes = trainer.net.encode(&trainer.data);
    let fit = LatentFit::new(&codes);
    let points = fit.axis_points(axes);
    let rows = points.nrows() / AXIS_OFFSETS.len();
    (rows, trainer.decode_to_data(&points))
}

/// Grey levels (0..=255) of one sample as a `side x side` image, padded with black.
pub fn sample_pixels(sample: &[f64], low: f64, high: f64) -> (usize, Vec<u8>) {
    let side = (sample.len() as f64).sqrt().ceil() as usize;
    let span = (high - low).max(1e-12);
    let mut pixels = vec![0u8; side * side];
    for (k, &x) in sample.iter().enumerate() {
        pixels[k] = (((x - low) / span).clamp(0.0, 1.0) * 255.0).round() as u8;
    }
    (side, pixels)
}

/// Writes `samples` (rows, in data units) as a grid of `columns` images to a PNG, each pixel
/// enlarged `zoom` times with a 1-pixel gap between images.
pub fn write_grid_png(path: &Path, samples: &DMatrix<f64>, columns: usize, low: f64, high: f64, zoom: usize) -> Result<()> {
    let count = samples.nrows();
    let rows = count.div_ceil(columns.max(1));
    let side = (samples.ncols() as f64).sqrt().ceil() as usize;
    let cell = side * zoom + 1;
    let (width, height) = (columns * cell + 1, rows * cell + 1);
    let mut image = vec![40u8; width * height];
    for index in 0..count {
        let sample: Vec<f64> = samples.row(index).iter().copied().collect();
        let (_, pixels) = sample_pixels(&sample, low, high);
        let (gx, gy) = ((index % columns) * cell + 1, (index / columns) * cell + 1);
        for y in 0..side * zoom {
            for x in 0..side * zoom {
                image[(gy + y) * width + gx + x] = pixels[(y / zoom) * side + x / zoom];
            }
        }
    }

    let file = std::fs::File::create(path).map_err(|e| Error::output(path, e))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width as u32, height as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| Error::output(path, e))?;
    writer.write_image_data(&image).map_err(|e| Error::output(path, e))?;
    writer.finish().map_err(|e| Error::output(path, e))
}
