//! Projection of d-dimensional points to three display coordinates.
//!
//! For d <= 3 the coordinates are shown as they are (missing axes at 0). For d > 3 the display
//! shows the first three principal components. Eigenvectors come with an arbitrary sign and
//! may swap order when eigenvalues cross, which would make the picture flip and jump, so each
//! new basis is rotated within its own span to the closest match of the previous one
//! (orthogonal Procrustes). The span stays that of the top three components.

use nalgebra::{DMatrix, Matrix3, SymmetricEigen};

use crate::metrics::covariance;
use crate::model::Points;

/// Projection state kept from frame to frame.
#[derive(Clone, Debug, Default)]
pub struct PcaProjection {
    /// Previous basis, `d x 3`, columns orthonormal.
    basis: Option<DMatrix<f64>>,
}

impl PcaProjection {
    /// Forgets the previous basis (after a reset, or when d changes).
    pub fn clear(&mut self) {
        self.basis = None;
    }

    /// Projects `points` to display coordinates, one `[x, y, z]` per point.
    pub fn project(&mut self, points: &Points) -> Vec<[f32; 3]> {
        let dim = points.dim();
        if dim <= 3 {
            self.basis = None;
            return points
                .rows()
                .map(|row| {
                    let mut xyz = [0.0f32; 3];
                    for (axis, value) in row.iter().enumerate() {
                        xyz[axis] = *value as f32;
                    }
                    xyz
                })
                .collect();
        }

        let basis = self.aligned_basis(points);
        let projected = points
            .rows()
            .map(|row| {
                let mut xyz = [0.0f32; 3];
                for (c, out) in xyz.iter_mut().enumerate() {
                    // The mean is not subtracted, so the model's origin stays at the display
                    // origin, where the attraction pulls.
                    *out = row.iter().enumerate().map(|(k, x)| x * basis[(k, c)]).sum::<f64>() as f32;
                }
                xyz
            })
            .collect();
        self.basis = Some(basis);
        projected
    }

    /// Returns the top three principal axes, rotated to match the previous basis.
    fn aligned_basis(&self, points: &Points) -> DMatrix<f64> {
        let dim = points.dim();
        let eigen = SymmetricEigen::new(covariance(points));
        let mut order: Vec<usize> = (0..dim).collect();
        order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
        let mut basis = DMatrix::zeros(dim, 3);
        for (c, &index) in order.iter().take(3).enumerate() {
            basis.set_column(c, &eigen.eigenvectors.column(index));
        }

        let Some(previous) = self.basis.as_ref().filter(|b| b.nrows() == dim) else {
            return basis;
        };
        // Procrustes: the rotation Q minimising |basis * Q - previous| is U V^T from the SVD of
        // basis^T * previous.
        let overlap: Matrix3<f64> = Matrix3::from_iterator((basis.transpose() * previous).iter().copied());
        let svd = overlap.svd(true, true);
        let (Some(u), Some(v_t)) = (svd.u, svd.v_t) else {
            return basis;
        };
        let rotation = u * v_t;
        let rotation_dynamic = DMatrix::from_iterator(3, 3, rotation.iter().copied());
        basis * rotation_dynamic
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::sample_start;
    use crate::params::InitKind;

    #[test]
    fn low_dimensions_pass_through() {
        let points = Points::from_rows(2, 2, vec![1.0, 2.0, -3.0, 4.0]);
        let projected = PcaProjection::default().project(&points);
        assert_eq!(projected, vec![[1.0, 2.0, 0.0], [-3.0, 4.0, 0.0]]);
    }

    #[test]
    fn basis_stays_stable_between_frames() {
        let mut points = sample_start(InitKind::Gaussian, 200, 8, 4);
        // Stretch the first axes so the principal components are well separated.
        for row in 0..points.n() {
            let r = points.row_mut(row);
            r[0] *= 5.0;
            r[1] *= 3.0;
            r[2] *= 2.0;
        }
        let mut projection = PcaProjection::default();
        let first = projection.project(&points);

        // A tiny perturbation must give a nearly identical picture, whatever signs the
        // eigensolver returns.
        for x in points.as_mut_slice().iter_mut().step_by(7) {
            *x *= 1.001;
        }
        let second = projection.project(&points);
        let largest_jump = first
            .iter()
            .zip(&second)
            .map(|(a, b)| (0..3).map(|c| (a[c] - b[c]).abs()).fold(0.0f32, f32::max))
            .fold(0.0f32, f32::max);
        assert!(largest_jump < 0.05, "display moved by {largest_jump}");
    }
}
