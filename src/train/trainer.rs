//! The training loop: standardised data, mini-batches, the loss
//! `MSE(x_hat, x) + gamma * R(Z_batch)`, its analytic gradient, and Adam.

use clap::Args;
use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::network::{Autoencoder, LayerGrad};
use crate::error::{Error, Result};
use crate::model::{Kernel, Model, Points, Task, evaluate};

/// Every parameter of a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Args)]
#[serde(default)]
pub struct TrainParams {
    /// Dimension d of the latent codes (at least 1).
    #[arg(long = "latent-dim", value_name = "D", default_value_t = TrainParams::default().latent_dim)]
    pub latent_dim: usize,

    /// tanh units in the hidden layer of the encoder and of the decoder; 0 makes both linear.
    #[arg(long = "hidden", value_name = "H", default_value_t = TrainParams::default().hidden)]
    pub hidden: usize,

    /// Scaling factor gamma of the eccentric term in the loss (>= 0).
    #[arg(allow_negative_numbers = true, long = "scale", value_name = "GAMMA", default_value_t = TrainParams::default().gamma)]
    pub gamma: f64,

    /// Attraction strength lambda of the eccentric term (> 0).
    #[arg(allow_negative_numbers = true, long = "lambda", value_name = "L", default_value_t = TrainParams::default().lambda)]
    pub lambda: f64,

    /// Riesz exponent s of the eccentric term's kernel.
    #[arg(long = "kernel-s", value_name = "S", allow_negative_numbers = true, default_value_t = TrainParams::default().kernel_s)]
    pub kernel_s: f64,

    /// Softening length eps of the kernel, in latent units (>= 0).
    #[arg(allow_negative_numbers = true, long = "softening", value_name = "EPS", default_value_t = TrainParams::default().softening)]
    pub softening: f64,

    /// L2 weight decay: adds `weight_decay / 2 * sum W^2` over every weight matrix (not the
    /// biases) to the loss (>= 0). It balances encoder and decoder scales, which a linear
    /// autoencoder otherwise leaves free.
    #[arg(allow_negative_numbers = true, long = "weight-decay", value_name = "WD", default_value_t = TrainParams::default().weight_decay)]
    pub weight_decay: f64,

    /// Adam step size (> 0).
    #[arg(allow_negative_numbers = true, long = "lr", value_name = "LR", default_value_t = TrainParams::default().lr)]
    pub lr: f64,

    /// Samples per mini-batch (at least 2).
    #[arg(long = "batch-size", value_name = "B", default_value_t = TrainParams::default().batch_size)]
    pub batch_size: usize,

    /// Passes over the data.
    #[arg(long = "epochs", value_name = "E", default_value_t = TrainParams::default().epochs)]
    pub epochs: usize,

    /// Seed of the initial weights and of the batch order.
    #[arg(long = "seed", value_name = "S", default_value_t = TrainParams::default().seed)]
    pub seed: u64,

    /// Standardise every feature to zero mean and unit variance before training.
    #[arg(long = "standardize", default_value_t = TrainParams::default().standardize, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub standardize: bool,
}

impl Default for TrainParams {
    fn default() -> Self {
        Self {
            latent_dim: 8,
            hidden: 32,
            gamma: 0.1,
            lambda: 1.0,
            kernel_s: -1.0,
            softening: 1e-3,
            weight_decay: 1e-3,
            lr: 3e-3,
            batch_size: 128,
            epochs: 30,
            seed: 0,
            standardize: true,
        }
    }
}

impl TrainParams {
    pub fn model(&self) -> Model {
        Model { gamma: self.gamma, lambda: self.lambda, kernel: Kernel::new(self.kernel_s, self.softening) }
    }

    /// Parameters of the eccentric term alone, for the readouts of the latent codes.
    pub fn eccentric_params(&self, n: usize) -> crate::params::Params {
        crate::params::Params {
            n,
            dim: self.latent_dim,
            gamma: self.gamma,
            lambda: self.lambda,
            kernel_s: self.kernel_s,
            softening: self.softening,
            ..crate::params::Params::default()
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.latent_dim < 1 {
            return Err(Error::param("--latent-dim", self.latent_dim, "must be at least 1"));
        }
        if self.batch_size < 2 {
            return Err(Error::param("--batch-size", self.batch_size, "must be at least 2, because the eccentric term needs pairs"));
        }
        if self.epochs < 1 {
            return Err(Error::param("--epochs", self.epochs, "must be at least 1"));
        }
        let checks: [(&'static str, f64, bool, &str); 6] = [
            ("--weight-decay", self.weight_decay, self.weight_decay >= 0.0, "must be 0 or greater"),
            ("--scale", self.gamma, self.gamma >= 0.0, "must be 0 or greater"),
            ("--lambda", self.lambda, self.lambda > 0.0, "must be greater than 0"),
            ("--kernel-s", self.kernel_s, true, "must be a finite number"),
            ("--softening", self.softening, self.softening >= 0.0, "must be 0 or greater"),
            ("--lr", self.lr, self.lr > 0.0, "must be greater than 0, for example 0.003"),
        ];
        for (name, value, valid, expected) in checks {
            if !(value.is_finite() && valid) {
                return Err(Error::param(name, value, expected));
            }
        }
        Ok(())
    }
}

/// Adam's decay rates and denominator term, at their usual values.
const ADAM_BETA1: f64 = 0.9;
const ADAM_BETA2: f64 = 0.999;
const ADAM_EPS: f64 = 1e-8;

/// Per-feature standardisation applied to the data, kept to map reconstructions back.
#[derive(Clone, Debug)]
pub struct Standardization {
    pub mean: DVector<f64>,
    pub std: DVector<f64>,
}

impl Standardization {
    /// Computes the mean and standard deviation of each column; constant columns get a unit
    /// scale so they stay 0 instead of dividing by 0.
    pub fn fit(data: &DMatrix<f64>, enabled: bool) -> Self {
        let p = data.ncols();
        if !enabled {
            return Self { mean: DVector::zeros(p), std: DVector::from_element(p, 1.0) };
        }
        let n = data.nrows() as f64;
        let mean = data.row_mean().transpose();
        let std = DVector::from_fn(p, |k, _| {
            let variance = data.column(k).iter().map(|x| (x - mean[k]).powi(2)).sum::<f64>() / n;
            if variance > 1e-12 { variance.sqrt() } else { 1.0 }
        });
        Self { mean, std }
    }

    pub fn apply(&self, data: &DMatrix<f64>) -> DMatrix<f64> {
        DMatrix::from_fn(data.nrows(), data.ncols(), |i, k| (data[(i, k)] - self.mean[k]) / self.std[k])
    }

    pub fn invert(&self, data: &DMatrix<f64>) -> DMatrix<f64> {
        DMatrix::from_fn(data.nrows(), data.ncols(), |i, k| data[(i, k)] * self.std[k] + self.mean[k])
    }
}

/// The loss of one batch, in its parts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchLoss {
    /// Mean over samples and features of `(x_hat - x)^2`.
    pub reconstruction: f64,
    /// `gamma * R(Z_batch)`.
    pub eccentric: f64,
    /// `weight_decay / 2 * sum W^2`.
    pub weight_decay: f64,
}

impl BatchLoss {
    pub fn total(&self) -> f64 {
        self.reconstruction + self.eccentric + self.weight_decay
    }
}

/// Returns the loss of `batch` (reconstruction, eccentric term, weight decay) and its gradient with respect to every layer (encoder first).
pub fn loss_and_gradient(net: &Autoencoder, params: &TrainParams, batch: &DMatrix<f64>) -> (BatchLoss, Vec<LayerGrad>) {
    let forward = net.forward(batch);
    let residual = forward.reconstruction() - batch;
    let count = (batch.nrows() * batch.ncols()) as f64;
    let reconstruction = residual.norm_squared() / count;
    let d_output = residual * (2.0 / count);

    let latent = forward.latent();
    let (b, d) = (latent.nrows(), latent.ncols());
    let (eccentric, d_latent) = if params.gamma > 0.0 && b >= 2 {
        let points = Points::from_rows(b, d, (0..b).flat_map(|i| (0..d).map(move |k| (i, k))).map(|(i, k)| latent[(i, k)]).collect());
        let mut force = Points::zeros(b, d);
        let evaluation = evaluate(&params.model(), Task::None, &points, &mut force);
        // The force is -b dE/dZ, so the gradient is force / -b.
        let d_latent = DMatrix::from_fn(b, d, |i, k| -force.row(i)[k] / b as f64);
        (evaluation.energy.total(), d_latent)
    } else {
        (0.0, DMatrix::zeros(b, d))
    };

    let mut grads = net.backward(&forward, &d_output, &d_latent);
    let mut decay = 0.0;
    if params.weight_decay > 0.0 {
        for (layer, grad) in net.layers().zip(grads.iter_mut()) {
            decay += 0.5 * params.weight_decay * layer.weight.norm_squared();
            grad.weight += &layer.weight * params.weight_decay;
        }
    }
    (BatchLoss { reconstruction, eccentric, weight_decay: decay }, grads)
}

/// Adam's moments for one layer.
#[derive(Clone, Debug)]
struct LayerMoments {
    weight: (DMatrix<f64>, DMatrix<f64>),
    bias: (DVector<f64>, DVector<f64>),
}

/// A training run in progress.
pub struct Trainer {
    pub params: TrainParams,
    pub net: Autoencoder,
    /// Standardised data, one sample per row.
    pub data: DMatrix<f64>,
    pub standardization: Standardization,
    moments: Vec<LayerMoments>,
    rng: ChaCha8Rng,
    order: Vec<usize>,
    cursor: usize,
    pub step: u64,
    pub epoch: usize,
    adam_steps: i32,
}

impl Trainer {
    /// Prepares a run on `raw` data (one sample per row).
    pub fn new(params: TrainParams, raw: &DMatrix<f64>) -> Result<Self> {
        params.validate()?;
        if raw.nrows() < params.batch_size.min(2) || raw.nrows() < 2 {
            return Err(Error::param("data rows", raw.nrows(), "training needs at least 2 samples"));
        }
        let standardization = Standardization::fit(raw, params.standardize);
        let data = standardization.apply(raw);
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        let net = Autoencoder::new(data.ncols(), params.hidden, params.latent_dim, &mut rng);
        let moments = net
            .layers()
            .map(|l| LayerMoments {
                weight: (DMatrix::zeros(l.weight.nrows(), l.weight.ncols()), DMatrix::zeros(l.weight.nrows(), l.weight.ncols())),
                bias: (DVector::zeros(l.bias.len()), DVector::zeros(l.bias.len())),
            })
            .collect();
        let order = (0..data.nrows()).collect();
        let mut trainer = Self { params, net, data, standardization, moments, rng, order, cursor: 0, step: 0, epoch: 0, adam_steps: 0 };
        trainer.order.shuffle(&mut trainer.rng);
        Ok(trainer)
    }

    /// Number of batches in one epoch.
    pub fn batches_per_epoch(&self) -> usize {
        self.data.nrows().div_ceil(self.params.batch_size.min(self.data.nrows()))
    }

    /// Trains on the next mini-batch and returns its loss.
    pub fn train_step(&mut self) -> BatchLoss {
        let n = self.data.nrows();
        let size = self.params.batch_size.min(n);
        if self.cursor + 2 > n {
            self.cursor = 0;
            self.epoch += 1;
            self.order.shuffle(&mut self.rng);
        }
        let end = (self.cursor + size).min(n);
        let rows: Vec<usize> = self.order[self.cursor..end].to_vec();
        self.cursor = end;
        let batch = self.data.select_rows(&rows);

        let (loss, grads) = loss_and_gradient(&self.net, &self.params, &batch);
        self.apply_adam(&grads);
        self.step += 1;
        if self.cursor >= n {
            self.cursor = n;
        }
        loss
    }

    fn apply_adam(&mut self, grads: &[LayerGrad]) {
        self.adam_steps += 1;
        let t = self.adam_steps;
        let lr = self.params.lr;
        let correction1 = 1.0 - ADAM_BETA1.powi(t);
        let correction2 = 1.0 - ADAM_BETA2.powi(t);
        for ((layer, grad), moments) in self.net.layers_mut().zip(grads).zip(self.moments.iter_mut()) {
            adam_update(layer.weight.as_mut_slice(), grad.weight.as_slice(), moments.weight.0.as_mut_slice(), moments.weight.1.as_mut_slice(), lr, correction1, correction2);
            adam_update(layer.bias.as_mut_slice(), grad.bias.as_slice(), moments.bias.0.as_mut_slice(), moments.bias.1.as_mut_slice(), lr, correction1, correction2);
        }
    }

    /// Latent codes of every sample, one row each.
    pub fn latent_codes(&self) -> Points {
        let codes = self.net.encode(&self.data);
        let (n, d) = (codes.nrows(), codes.ncols());
        Points::from_rows(n, d, (0..n).flat_map(|i| (0..d).map(move |k| (i, k))).map(|(i, k)| codes[(i, k)]).collect())
    }

    /// Mean squared reconstruction error over the whole data set (standardised units).
    pub fn reconstruction_loss(&self) -> f64 {
        let reconstruction = self.net.decode(&self.net.encode(&self.data));
        (reconstruction - &self.data).norm_squared() / (self.data.nrows() * self.data.ncols()) as f64
    }

    /// Decodes latent points (rows) back to the data's original units.
    pub fn decode_to_data(&self, latent: &DMatrix<f64>) -> DMatrix<f64> {
        self.standardization.invert(&self.net.decode(latent))
    }
}

fn adam_update(values: &mut [f64], grads: &[f64], first: &mut [f64], second: &mut [f64], lr: f64, correction1: f64, correction2: f64) {
    for k in 0..values.len() {
        let g = grads[k];
        first[k] = ADAM_BETA1 * first[k] + (1.0 - ADAM_BETA1) * g;
        second[k] = ADAM_BETA2 * second[k] + (1.0 - ADAM_BETA2) * g * g;
        values[k] -= lr * (first[k] / correction1) / ((second[k] / correction2).sqrt() + ADAM_EPS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central differences in f64 with a step of 1e-6 reach about 1e-9 relative on this smooth loss.
    const GRADIENT_TOLERANCE: f64 = 1e-5;

    fn total_loss(net: &Autoencoder, params: &TrainParams, batch: &DMatrix<f64>) -> f64 {
        loss_and_gradient(net, params, batch).0.total()
    }

    #[test]
    fn backprop_matches_finite_difference() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let batch = DMatrix::from_fn(7, 6, |i, k| ((i * 5 + k * 3) % 7) as f64 / 3.0 - 1.0);
        for hidden in [0, 5] {
            for kernel_s in [-1.0, 0.0, 1.0] {
                let params = TrainParams { latent_dim: 3, hidden, gamma: 0.7, kernel_s, softening: 0.05, weight_decay: 0.3, ..TrainParams::default() };
                let mut net = Autoencoder::new(6, hidden, 3, &mut rng);
                let (_, grads) = loss_and_gradient(&net, &params, &batch);

                let analytic: Vec<f64> = grads.iter().flat_map(|g| g.weight.iter().chain(g.bias.iter()).copied().collect::<Vec<_>>()).collect();
                let mut numeric = Vec::new();
                let h = 1e-6;
                let layer_count = net.encoder.len() + net.decoder.len();
                for layer_index in 0..layer_count {
                    for part in 0..2 {
                        let len = {
                            let layer = net.layers().nth(layer_index).unwrap();
                            if part == 0 { layer.weight.len() } else { layer.bias.len() }
                        };
                        for k in 0..len {
                            let shift = |delta: f64, net: &mut Autoencoder| {
                                let layer = net.layers_mut().nth(layer_index).unwrap();
                                if part == 0 { layer.weight.as_mut_slice()[k] += delta } else { layer.bias.as_mut_slice()[k] += delta }
                            };
                            shift(h, &mut net);
                            let plus = total_loss(&net, &params, &batch);
                            shift(-2.0 * h, &mut net);
                            let minus = total_loss(&net, &params, &batch);
                            shift(h, &mut net);
                            numeric.push((plus - minus) / (2.0 * h));
                        }
                    }
                }
                let diff: f64 = analytic.iter().zip(&numeric).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
                let scale: f64 = numeric.iter().map(|b| b * b).sum::<f64>().sqrt();
                assert!(diff / scale < GRADIENT_TOLERANCE, "hidden={hidden} s={kernel_s}: relative error {:e}", diff / scale);
            }
        }
    }

    #[test]
    fn standardization_roundtrips() {
        let data = DMatrix::from_fn(5, 3, |i, k| (i * 3 + k) as f64 * if k == 2 { 0.0 } else { 1.0 });
        let s = Standardization::fit(&data, true);
        let back = s.invert(&s.apply(&data));
        assert!((back - data).norm() < 1e-12);
    }
}
