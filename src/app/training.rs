//! The training scenario on the engine thread: an autoencoder trained with eccentric
//! regularization, whose latent codes are the particles on screen.

use std::sync::Arc;

use nalgebra::DMatrix;

use super::bridge::Source;
use crate::error::{Error, Result};
use crate::io::assets::{DIGITS_PIXELS, asset_path};
use crate::io::rundir::{InputInfo, file_name};
use crate::model::Points;
use crate::train::images::{AXIS_OFFSETS, LatentFit};
use crate::train::run::load_training_data;
use crate::train::trainer::BatchLoss;
use crate::train::{TrainParams, Trainer};

/// Principal axes shown in the app's image grid.
pub const GRID_AXES: usize = 4;

/// Samples decoded from the fitted ellipsoid.
pub const GENERATED_SAMPLES: usize = 10;

/// Seed of the generated samples, fixed so they change smoothly as the network trains.
const GENERATION_SEED: u64 = 7;

/// Largest `n * p` for which every reconstruction is sent to the app for the hover image.
const MAX_RECONSTRUCTION_VALUES: usize = 2_000_000;

/// Images and losses of a training state, for the panels. Samples are row-major f32 in the
/// data's original units.
#[derive(Clone, Debug)]
pub struct TrainingView {
    pub reconstruction_loss: f64,
    pub batch: BatchLoss,
    pub epoch: usize,
    pub features: usize,
    /// Smallest and largest value of the raw data, the grey-level range of every image.
    pub range: (f64, f64),
    pub originals: Arc<Vec<f32>>,
    /// Reconstruction of every sample, or empty when the data set is too large to send.
    pub reconstructions: Vec<f32>,
    /// Rows of the principal-axis grid (one per axis) with [`AXIS_OFFSETS`] samples each.
    pub grid_rows: usize,
    pub grid: Vec<f32>,
    pub generated: Vec<f32>,
}

/// A training run driven by the app.
pub struct TrainingSession {
    pub trainer: Trainer,
    range: (f64, f64),
    originals: Arc<Vec<f32>>,
    last_batch: BatchLoss,
}

impl TrainingSession {
    /// Starts training on `source` (a random start has no data, so it falls back to the digits).
    pub fn start(params: TrainParams, source: &Source) -> Result<(Self, Option<Vec<i64>>, InputInfo)> {
        let path = match source {
            Source::File(path) => path.clone(),
            _ => asset_path(DIGITS_PIXELS),
        };
        let (raw, labels, sha256) = load_training_data(&path, None)?;
        let trainer = Trainer::new(params, &raw)?;
        let originals = Arc::new(raw.transpose().iter().map(|&x| x as f32).collect());
        let session = Self { trainer, range: (raw.min(), raw.max()), originals, last_batch: BatchLoss::default() };
        Ok((session, labels, InputInfo { file: file_name(&path), sha256 }))
    }

    /// Takes `steps` training steps; fails when the loss stops being finite.
    pub fn run(&mut self, steps: u32) -> Result<()> {
        for _ in 0..steps {
            let loss = self.trainer.train_step();
            if !loss.total().is_finite() {
                return Err(Error::Diverged { step: self.trainer.step, what: "the training loss" });
            }
            self.last_batch = loss;
        }
        Ok(())
    }

    /// Changes the parameters that can change during training; returns false when the change
    /// needs a new network (latent dimension, hidden units, seed or standardisation).
    pub fn update(&mut self, params: &TrainParams) -> Result<bool> {
        params.validate()?;
        let current = &self.trainer.params;
        let structural = params.latent_dim != current.latent_dim
            || params.hidden != current.hidden
            || params.seed != current.seed
            || params.standardize != current.standardize;
        if structural {
            return Ok(false);
        }
        self.trainer.params = params.clone();
        Ok(true)
    }

    pub fn codes(&self) -> Points {
        self.trainer.latent_codes()
    }

    /// Builds the images and losses for the panels from the current network.
    pub fn view(&self) -> TrainingView {
        let trainer = &self.trainer;
        let codes = trainer.net.encode(&trainer.data);
        let fit = LatentFit::new(&codes);
        let axis_points = fit.axis_points(GRID_AXES);
        let grid_rows = axis_points.nrows() / AXIS_OFFSETS.len();
        let flat = |m: &DMatrix<f64>| m.transpose().iter().map(|&x| x as f32).collect::<Vec<f32>>();

        let reconstructions = if trainer.data.len() <= MAX_RECONSTRUCTION_VALUES {
            flat(&trainer.decode_to_data(&codes))
        } else {
            Vec::new()
        };
        TrainingView {
            reconstruction_loss: trainer.reconstruction_loss(),
            batch: self.last_batch,
            epoch: trainer.epoch,
            features: trainer.data.ncols(),
            range: self.range,
            originals: self.originals.clone(),
            reconstructions,
            grid_rows,
            grid: flat(&trainer.decode_to_data(&axis_points)),
            generated: flat(&trainer.decode_to_data(&fit.ellipsoid_points(GENERATED_SAMPLES, GENERATION_SEED))),
        }
    }
}
