//! A set of `n` points in `R^d`, stored row-major.

use serde::{Deserialize, Serialize};

/// `n` points of dimension `dim`, row `i` at `coords[i * dim .. (i + 1) * dim]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Points {
    n: usize,
    dim: usize,
    coords: Vec<f64>,
}

impl Points {
    /// Wraps row-major coordinates. Panics if `coords.len() != n * dim`, which is a caller bug.
    pub fn from_rows(n: usize, dim: usize, coords: Vec<f64>) -> Self {
        assert_eq!(coords.len(), n * dim, "coordinate count must be n * dim");
        Self { n, dim, coords }
    }

    pub fn zeros(n: usize, dim: usize) -> Self {
        Self::from_rows(n, dim, vec![0.0; n * dim])
    }

    pub fn n(&self) -> usize {
        self.n
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.coords[i * self.dim..(i + 1) * self.dim]
    }

    pub fn row_mut(&mut self, i: usize) -> &mut [f64] {
        &mut self.coords[i * self.dim..(i + 1) * self.dim]
    }

    pub fn rows(&self) -> std::slice::ChunksExact<'_, f64> {
        self.coords.chunks_exact(self.dim)
    }

    pub fn as_slice(&self) -> &[f64] {
        &self.coords
    }

    pub fn as_mut_slice(&mut self) -> &mut [f64] {
        &mut self.coords
    }

    pub fn into_vec(self) -> Vec<f64> {
        self.coords
    }

    /// Returns true when every coordinate is finite.
    pub fn is_finite(&self) -> bool {
        self.coords.iter().all(|x| x.is_finite())
    }

    /// Returns |self - reference| / |reference| over all coordinates (Frobenius norms), the
    /// measure the tests use to compare engines.
    pub fn relative_error(&self, reference: &Points) -> f64 {
        let diff: f64 = self.coords.iter().zip(&reference.coords).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt();
        diff / norm2(&reference.coords).sqrt()
    }

    /// Copies the rows listed in `indices` into a new point set, in that order.
    pub fn select_rows(&self, indices: &[usize]) -> Points {
        let mut coords = Vec::with_capacity(indices.len() * self.dim);
        for &i in indices {
            coords.extend_from_slice(self.row(i));
        }
        Points::from_rows(indices.len(), self.dim, coords)
    }

    /// Changes the dimension in place: kept axes keep their values, removed axes are dropped and
    /// new axes take values from `fill(row, axis)`.
    pub fn resize_dim(&mut self, new_dim: usize, mut fill: impl FnMut(usize, usize) -> f64) {
        let mut coords = Vec::with_capacity(self.n * new_dim);
        for i in 0..self.n {
            let row = self.row(i);
            for axis in 0..new_dim {
                let value = if axis < self.dim { row[axis] } else { fill(i, axis) };
                coords.push(value);
            }
        }
        self.dim = new_dim;
        self.coords = coords;
    }
}

/// Squared Euclidean distance between two rows.
#[inline(always)]
pub fn dist2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Squared Euclidean norm of one row.
#[inline(always)]
pub fn norm2(a: &[f64]) -> f64 {
    a.iter().map(|x| x * x).sum()
}
