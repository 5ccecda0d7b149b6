//! The training run behind `eccentric train`: loads the data, trains, and writes the run
//! directory, the weights and the principal-axis image grid.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use nalgebra::DMatrix;

use super::images::{AXIS_OFFSETS, principal_axis_samples, write_grid_png};
use super::trainer::{TrainParams, Trainer};
use crate::error::{Error, Result};
use crate::io::rundir::{InputInfo, check_output_dir, file_name};
use crate::io::{RunInfo, RunWriter, load_labels, load_points, npy};
use crate::metrics::{CSV_COLUMNS, Readouts};

/// Everything `eccentric train` needs beyond [`TrainParams`].
#[derive(Clone, Debug)]
pub struct TrainRequest {
    pub params: TrainParams,
    pub out: PathBuf,
    /// Samples, one per row (NPY or CSV; a CSV `label` column colors the codes).
    pub data: PathBuf,
    pub labels: Option<PathBuf>,
    /// Record the latent codes every this many training steps (mini-batches).
    pub record_every: u64,
    pub overwrite: bool,
}

/// Summary of a finished training run.
#[derive(Clone, Debug)]
pub struct TrainSummary {
    pub dir: PathBuf,
    pub steps: u64,
    pub frames: usize,
    pub first_loss: f64,
    pub final_loss: f64,
    pub final_readouts: Readouts,
}

/// File name of the principal-axis image grid in the run directory.
pub const AXES_IMAGE: &str = "principal_axes.png";
/// Folder of the trained weights, one `.npy` per tensor.
pub const WEIGHTS_DIR: &str = "weights";
/// Maximum number of principal axes drawn in the image grid.
pub const GRID_AXES: usize = 6;

/// Metrics columns of a training run: the readouts of the latent codes, then the loss.
pub fn train_columns() -> Vec<&'static str> {
    CSV_COLUMNS.iter().copied().chain(["reconstruction_loss"]).collect()
}

/// Loads the training data as a matrix, with its labels when it has them.
pub fn load_training_data(path: &std::path::Path, labels: Option<&std::path::Path>) -> Result<(DMatrix<f64>, Option<Vec<i64>>, String)> {
    let dataset = load_points(path)?;
    let points = &dataset.points;
    let matrix = DMatrix::from_fn(points.n(), points.dim(), |i, k| points.row(i)[k]);
    let labels = match labels {
        Some(labels_path) => Some(load_labels(labels_path, points.n())?),
        None => dataset.labels.clone(),
    };
    Ok((matrix, labels, dataset.sha256))
}

/// Trains to the end and writes the run directory. Bad input fails before anything is written.
pub fn train(request: &TrainRequest, interrupt: Arc<AtomicBool>) -> Result<TrainSummary> {
    check_output_dir(&request.out, request.overwrite)?;
    request.params.validate()?;
    if request.record_every == 0 {
        return Err(Error::param("--record-every", 0, "must be at least 1"));
    }
    let (raw, labels, sha256) = load_training_data(&request.data, request.labels.as_deref())?;
    let mut trainer = Trainer::new(request.params.clone(), &raw)?;
    let n = raw.nrows();
    let (low, high) = (raw.min(), raw.max());

    let mut info = RunInfo::new("train", "cpu", serde_json::to_value(&request.params).expect("params serialise"), n, request.params.latent_dim);
    let input = InputInfo {
        file: file_name(&request.data),
        sha256,
    };
    // Labels come from a separate file, or else from the data file's own label column.
    info.labels = match (&request.labels, &labels) {
        (Some(path), _) => Some(InputInfo::of_file(path)?),
        (None, Some(_)) => Some(input.clone()),
        (None, None) => None,
    };
    info.input = Some(input);
    let total_steps = (request.params.epochs * trainer.batches_per_epoch()) as u64;
    info.settings = serde_json::json!({ "record_every": request.record_every, "steps": total_steps, "features": raw.ncols() });
    let mut writer = RunWriter::create(&request.out, request.overwrite, info, &train_columns(), labels.as_deref())?;
    tracing::info!(samples = n, features = raw.ncols(), steps = total_steps, out = %request.out.display(), "training started");

    let eccentric_params = request.params.eccentric_params(n);
    let record = |trainer: &Trainer, writer: &mut RunWriter| -> Result<(Readouts, f64)> {
        let codes = trainer.latent_codes();
        let readouts = Readouts::compute(&eccentric_params, &codes, None, trainer.step);
        let loss = trainer.reconstruction_loss();
        let mut row = readouts.csv_values().to_vec();
        row.push(loss);
        writer.write_frame(trainer.step, &codes, &row)?;
        Ok((readouts, loss))
    };

    let (_, first_loss) = record(&trainer, &mut writer)?;
    let mut last = (Readouts::default(), first_loss);
    let mut last_recorded = 0;
    let started = Instant::now();
    let mut last_log = Instant::now();
    let mut stop_reason = format!("finished {} epochs", request.params.epochs);
    while trainer.step < total_steps {
        if interrupt.load(Ordering::Relaxed) {
            stop_reason = crate::io::rundir::INTERRUPTED.to_string();
            break;
        }
        let loss = trainer.train_step();
        if !loss.total().is_finite() {
            return Err(Error::Diverged { step: trainer.step, what: "the training loss" });
        }
        if trainer.step % request.record_every == 0 {
            last = record(&trainer, &mut writer)?;
            last_recorded = trainer.step;
        }
        if last_log.elapsed().as_secs_f64() >= 2.0 {
            tracing::info!(step = trainer.step, epoch = trainer.epoch, batch_reconstruction = loss.reconstruction, batch_eccentric = loss.eccentric, "training");
            last_log = Instant::now();
        }
    }
    if trainer.step != last_recorded {
        last = record(&trainer, &mut writer)?;
    }

    write_weights(&trainer, &request.out.join(WEIGHTS_DIR))?;
    let (rows, samples) = principal_axis_samples(&trainer, GRID_AXES);
    write_grid_png(&request.out.join(AXES_IMAGE), &samples, AXIS_OFFSETS.len(), low, high, 6)?;
    tracing::info!(rows, path = %request.out.join(AXES_IMAGE).display(), "principal-axis grid written");

    let frames = writer.frames();
    let steps = trainer.step;
    let dir = writer.finish(&stop_reason)?;
    tracing::info!(steps, frames, seconds = started.elapsed().as_secs_f64(), "training finished");
    Ok(TrainSummary { dir, steps, frames, first_loss, final_loss: last.1, final_readouts: last.0 })
}

/// Writes every weight matrix and bias as float32 `.npy` (`encoder_0_weight.npy` is `out x in`),
/// and the standardisation as `feature_mean.npy` and `feature_std.npy`.
pub fn write_weights(trainer: &Trainer, dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::output(dir, e))?;
    let halves = [("encoder", &trainer.net.encoder), ("decoder", &trainer.net.decoder)];
    for (half, layers) in halves {
        for (k, layer) in layers.iter().enumerate() {
            let (rows, cols) = (layer.weight.nrows(), layer.weight.ncols());
            let weight: Vec<f32> = (0..rows).flat_map(|r| (0..cols).map(move |c| (r, c))).map(|(r, c)| layer.weight[(r, c)] as f32).collect();
            npy::write_f32(&dir.join(format!("{half}_{k}_weight.npy")), &[rows, cols], &weight)?;
            let bias: Vec<f32> = layer.bias.iter().map(|&b| b as f32).collect();
            npy::write_f32(&dir.join(format!("{half}_{k}_bias.npy")), &[bias.len()], &bias)?;
        }
    }
    let mean: Vec<f32> = trainer.standardization.mean.iter().map(|&x| x as f32).collect();
    let std: Vec<f32> = trainer.standardization.std.iter().map(|&x| x as f32).collect();
    npy::write_f32(&dir.join("feature_mean.npy"), &[mean.len()], &mean)?;
    npy::write_f32(&dir.join("feature_std.npy"), &[std.len()], &std)
}
