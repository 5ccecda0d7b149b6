//! Update rules that turn a force into a step: gradient descent, heavy-ball momentum, Adam and
//! overdamped Langevin dynamics.

use rand::Rng;
use rand_distr::StandardNormal;

use crate::params::{OptimizerKind, Params};

/// Per-coordinate state of the optimizer, sized `n * d` on first use.
#[derive(Clone, Debug, Default)]
pub struct OptimizerState {
    /// Heavy-ball velocity, or Adam's first moment.
    first: Vec<f64>,
    /// Adam's second moment.
    second: Vec<f64>,
    /// Adam's step count per particle, so bias correction stays right under mini-batches.
    adam_steps: Vec<u32>,
}

impl OptimizerState {
    /// Forgets the accumulated moments (after a reset or a change of n or d).
    pub fn clear(&mut self) {
        self.first.clear();
        self.second.clear();
        self.adam_steps.clear();
    }

    /// Moves the particles listed in `active` by one step along `force` (both row-major `n * d`).
    ///
    /// Particles outside `active` keep their place and their optimizer state.
    pub fn apply(
        &mut self,
        params: &Params,
        dim: usize,
        positions: &mut [f64],
        force: &[f64],
        active: &[usize],
        rng: &mut impl Rng,
    ) {
        let len = positions.len();
        if self.first.len() != len {
            self.first = vec![0.0; len];
            self.second = vec![0.0; len];
            self.adam_steps = vec![0; len / dim];
        }
        let lr = params.lr;

        match params.optimizer {
            OptimizerKind::Gd => {
                for &i in active {
                    for k in i * dim..(i + 1) * dim {
                        positions[k] += lr * force[k];
                    }
                }
            }
            OptimizerKind::Momentum => {
                let mu = params.momentum;
                for &i in active {
                    for k in i * dim..(i + 1) * dim {
                        self.first[k] = mu * self.first[k] + force[k];
                        positions[k] += lr * self.first[k];
                    }
                }
            }
            OptimizerKind::Adam => {
                let (beta1, beta2) = (params.beta1, params.beta2);
                for &i in active {
                    self.adam_steps[i] += 1;
                    let t = self.adam_steps[i] as i32;
                    let correction1 = 1.0 - beta1.powi(t);
                    let correction2 = 1.0 - beta2.powi(t);
                    for k in i * dim..(i + 1) * dim {
                        let grad = -force[k];
                        self.first[k] = beta1 * self.first[k] + (1.0 - beta1) * grad;
                        self.second[k] = beta2 * self.second[k] + (1.0 - beta2) * grad * grad;
                        let m_hat = self.first[k] / correction1;
                        let v_hat = self.second[k] / correction2;
                        positions[k] -= lr * m_hat / (v_hat.sqrt() + params.adam_eps);
                    }
                }
            }
            OptimizerKind::Langevin => {
                let noise_scale = (2.0 * lr * params.temperature).sqrt();
                for &i in active {
                    for k in i * dim..(i + 1) * dim {
                        let xi: f64 = rng.sample(StandardNormal);
                        positions[k] += lr * force[k] + noise_scale * xi;
                    }
                }
            }
        }
    }
}
