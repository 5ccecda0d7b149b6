//! Every parameter of a simulation, defined once: the CLI flags, the app's panel and `run.json`
//! all use [`Params`].

use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{Kernel, Model, Points, Task};

/// Task term `T` beside the eccentric term.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// `T = 0`: the eccentric term alone.
    #[default]
    None,
    /// `T = 1/(2n) * sum_i |z_i - a_i|^2` with `a_i` the starting points.
    Anchors,
}

/// Distribution of the starting points when no input file is given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum InitKind {
    /// Standard normal coordinates.
    #[default]
    Gaussian,
    /// Coordinates uniform in [-1, 1].
    Uniform,
}

/// Update rule applied to the force at each step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Gradient descent: `z <- z + lr * F`.
    #[default]
    Gd,
    /// Heavy-ball momentum: `v <- momentum * v + F`, `z <- z + lr * v`.
    Momentum,
    /// Adam on the gradient `-F`, with `beta1`, `beta2` and `adam_eps`.
    Adam,
    /// Overdamped Langevin: gradient descent plus noise `sqrt(2 * lr * temperature)` per coordinate.
    Langevin,
}

/// Every parameter of a simulation, with its unit, default and valid range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Args)]
#[serde(default)]
pub struct Params {
    /// Number of particles n (at least 2). Set by the input file when one is given.
    #[arg(skip = Params::default().n)]
    pub n: usize,

    /// Dimension d of each particle (at least 1). Set by the input file when one is given.
    #[arg(skip = Params::default().dim)]
    pub dim: usize,

    /// Scaling factor gamma: weight of the eccentric term against the task term (>= 0).
    #[arg(allow_negative_numbers = true, long = "scale", value_name = "GAMMA", default_value_t = Params::default().gamma)]
    pub gamma: f64,

    /// Attraction strength lambda of the pull towards the origin (> 0).
    #[arg(allow_negative_numbers = true, long = "lambda", value_name = "L", default_value_t = Params::default().lambda)]
    pub lambda: f64,

    /// Riesz exponent s of the repulsion kernel: -1 constant force, 0 logarithmic, d-2 Coulomb.
    #[arg(long = "kernel-s", value_name = "S", allow_negative_numbers = true, default_value_t = Params::default().kernel_s)]
    pub kernel_s: f64,

    /// Softening length eps added to pair distances as sqrt(r^2 + eps^2), in coordinate units (>= 0).
    #[arg(allow_negative_numbers = true, long = "softening", value_name = "EPS", default_value_t = Params::default().softening)]
    pub softening: f64,

    /// Step size lr of the update z <- z + lr * F (> 0).
    #[arg(long = "lr", value_name = "LR", allow_negative_numbers = true, default_value_t = Params::default().lr)]
    pub lr: f64,

    /// Task term beside the eccentric term.
    #[arg(long = "task", value_enum, default_value_t = Params::default().task)]
    pub task: TaskKind,

    /// Distribution of the starting points when no input file is given.
    #[arg(long = "init", value_enum, default_value_t = Params::default().init)]
    pub init: InitKind,

    /// Seed of the random start, the mini-batches and the Langevin noise.
    #[arg(long = "seed", value_name = "S", default_value_t = Params::default().seed)]
    pub seed: u64,

    /// Update rule.
    #[arg(long = "optimizer", value_enum, default_value_t = Params::default().optimizer)]
    pub optimizer: OptimizerKind,

    /// Momentum coefficient of the heavy-ball optimizer, in [0, 1).
    #[arg(allow_negative_numbers = true, long = "momentum", value_name = "MU", default_value_t = Params::default().momentum)]
    pub momentum: f64,

    /// Adam's decay rate of the first moment, in [0, 1).
    #[arg(allow_negative_numbers = true, long = "beta1", value_name = "B1", default_value_t = Params::default().beta1)]
    pub beta1: f64,

    /// Adam's decay rate of the second moment, in [0, 1).
    #[arg(allow_negative_numbers = true, long = "beta2", value_name = "B2", default_value_t = Params::default().beta2)]
    pub beta2: f64,

    /// Adam's denominator term eps (> 0).
    #[arg(allow_negative_numbers = true, long = "adam-eps", value_name = "EPS", default_value_t = Params::default().adam_eps)]
    pub adam_eps: f64,

    /// Temperature of Langevin dynamics, in energy units (>= 0).
    #[arg(allow_negative_numbers = true, long = "temperature", value_name = "T", default_value_t = Params::default().temperature)]
    pub temperature: f64,

    /// Particles per mini-batch b, at least 2; 0, or any b >= n, means the full batch.
    #[arg(long = "batch-size", value_name = "B", default_value_t = Params::default().batch_size)]
    pub batch_size: usize,

    /// Explicit-projection baseline: minimise the Riesz term alone and put every point back on
    /// the unit sphere after each step.
    #[arg(long = "project-sphere", default_value_t = Params::default().project_sphere)]
    pub project_sphere: bool,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            n: 1000,
            dim: 3,
            gamma: 1.0,
            lambda: 1.0,
            kernel_s: -1.0,
            softening: 1e-3,
            lr: 0.1,
            task: TaskKind::None,
            init: InitKind::Gaussian,
            seed: 0,
            optimizer: OptimizerKind::Gd,
            momentum: 0.9,
            beta1: 0.9,
            beta2: 0.999,
            adam_eps: 1e-8,
            temperature: 0.0,
            batch_size: 0,
            project_sphere: false,
        }
    }
}

/// Largest dimension the app offers; the CLI takes any dimension that fits in memory.
pub const APP_MAX_DIM: usize = 64;

impl Params {
    /// Returns the model weights. The explicit-projection baseline keeps only the Riesz term.
    pub fn model(&self) -> Model {
        let kernel = Kernel::new(self.kernel_s, self.softening);
        if self.project_sphere {
            Model { gamma: 1.0, lambda: 0.0, kernel }
        } else {
            Model { gamma: self.gamma, lambda: self.lambda, kernel }
        }
    }

    /// Returns the task term with `anchors` as its targets: none unless the task is `anchors`, and
    /// none for the explicit-projection baseline, which minimises the Riesz term alone.
    pub fn task_term<'a>(&self, anchors: Option<&'a Points>) -> Task<'a> {
        match (self.task, anchors) {
            (TaskKind::Anchors, Some(anchors)) if !self.project_sphere => Task::Anchors(anchors),
            _ => Task::None,
        }
    }

    /// Returns the mini-batch size actually used: the full batch when `batch_size` is 0 or n.
    pub fn effective_batch(&self) -> usize {
        if self.batch_size == 0 || self.batch_size >= self.n { self.n } else { self.batch_size }
    }

    /// Checks every parameter against its valid range.
    pub fn validate(&self) -> Result<()> {
        if self.n < 2 {
            return Err(Error::param("particle count n", self.n, "the eccentric term needs at least 2 particles"));
        }
        if self.dim < 1 {
            return Err(Error::param("dimension d", self.dim, "must be at least 1"));
        }
        check_finite("scaling factor gamma (--scale)", self.gamma, |x| x >= 0.0, "must be 0 or greater, for example 1")?;
        check_finite("attraction lambda (--lambda)", self.lambda, |x| x > 0.0, "must be greater than 0, for example 1")?;
        check_finite("kernel exponent s (--kernel-s)", self.kernel_s, |_| true, "must be a finite number such as -1, 0 or 1")?;
        check_finite("softening eps (--softening)", self.softening, |x| x >= 0.0, "must be 0 or greater, for example 0.001")?;
        check_finite("step size lr (--lr)", self.lr, |x| x > 0.0, "must be greater than 0, for example 0.1")?;
        check_finite("momentum (--momentum)", self.momentum, |x| (0.0..1.0).contains(&x), "must be in [0, 1), for example 0.9")?;
        check_finite("Adam beta1 (--beta1)", self.beta1, |x| (0.0..1.0).contains(&x), "must be in [0, 1), for example 0.9")?;
        check_finite("Adam beta2 (--beta2)", self.beta2, |x| (0.0..1.0).contains(&x), "must be in [0, 1), for example 0.999")?;
        check_finite("Adam eps (--adam-eps)", self.adam_eps, |x| x > 0.0, "must be greater than 0, for example 1e-8")?;
        check_finite("temperature (--temperature)", self.temperature, |x| x >= 0.0, "must be 0 or greater")?;
        if self.batch_size == 1 {
            return Err(Error::param("batch size (--batch-size)", 1, "must be 0 (full batch) or at least 2"));
        }
        if self.project_sphere && self.dim < 2 {
            return Err(Error::param("dimension d", self.dim, "the sphere projection needs at least 2 dimensions"));
        }
        Ok(())
    }
}

fn check_finite(name: &'static str, value: f64, valid: impl Fn(f64) -> bool, expected: &str) -> Result<()> {
    if value.is_finite() && valid(value) {
        Ok(())
    } else {
        Err(Error::param(name, value, expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(Params::default().validate().is_ok());
    }

    #[test]
    fn negative_step_size_names_flag() {
        let params = Params { lr: -1.0, ..Params::default() };
        let message = params.validate().unwrap_err().to_string();
        assert!(message.contains("--lr"), "{message}");
        assert!(message.contains("-1"), "{message}");
    }

    #[test]
    fn params_roundtrip_through_json() {
        let params = Params { gamma: 3.5, optimizer: OptimizerKind::Adam, ..Params::default() };
        let json = serde_json::to_string(&params).unwrap();
        let back: Params = serde_json::from_str(&json).unwrap();
        assert_eq!(back, params);
    }
}
