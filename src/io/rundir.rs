//! The run directory that the CLI and the app's recorder write:
//!
//! - `positions.npy`: float32, shape `(frames, n, d)`, C order, grown frame by frame.
//! - `metrics.csv`: one row per frame, columns from [`crate::metrics::CSV_COLUMNS`] plus any
//!   extra columns of the scenario.
//! - `run.json`: every parameter, the seed, the input file and its SHA-256, the program version,
//!   the step index of each frame, and whether the run completed.
//! - `labels.npy`: int64, shape `(n,)`, when the input had labels.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::npy::{self, FrameWriter};
use crate::error::{Error, Result};
use crate::model::Points;

pub const POSITIONS_FILE: &str = "positions.npy";
pub const METRICS_FILE: &str = "metrics.csv";
pub const INFO_FILE: &str = "run.json";
pub const LABELS_FILE: &str = "labels.npy";

/// Stop reason of a run ended early by the user (Ctrl-C); such a run is not complete.
pub const INTERRUPTED: &str = "interrupted";

/// The input file of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputInfo {
    pub file: String,
    pub sha256: String,
}

impl InputInfo {
    /// Reads `path` to record its name and SHA-256.
    pub fn of_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::input(path, e.to_string()))?;
        Ok(Self { file: file_name(path), sha256: crate::io::input::sha256_hex(&bytes) })
    }
}

/// Returns the last component of `path`, or the whole path when it has none.
pub fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |name| name.to_string_lossy().into_owned())
}

/// Contents of `run.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub program: String,
    pub version: String,
    /// `run`, `train` or `app`.
    pub scenario: String,
    pub backend: String,
    /// Every parameter of the scenario, as its own serde struct.
    pub params: serde_json::Value,
    /// Settings of the run itself (steps, recording interval, stop rule), `null` where none apply.
    pub settings: serde_json::Value,
    pub input: Option<InputInfo>,
    pub labels: Option<InputInfo>,
    pub n: usize,
    pub dim: usize,
    /// Step index of each frame in `positions.npy`.
    pub frame_steps: Vec<u64>,
    /// False until the run has ended and every file is closed.
    pub complete: bool,
    /// Reason the run ended, once it has.
    pub stop_reason: Option<String>,
    /// The reason the run left the GPU engine for the CPU engine part way, if it did.
    pub fallback: Option<String>,
}

impl RunInfo {
    pub fn new(scenario: &str, backend: &str, params: serde_json::Value, n: usize, dim: usize) -> Self {
        Self {
            program: env!("CARGO_PKG_NAME").to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            scenario: scenario.to_string(),
            backend: backend.to_string(),
            params,
            settings: serde_json::Value::Null,
            input: None,
            labels: None,
            n,
            dim,
            frame_steps: Vec::new(),
            complete: false,
            stop_reason: None,
            fallback: None,
        }
    }
}

/// Writer of one run directory.
pub struct RunWriter {
    dir: PathBuf,
    positions: FrameWriter,
    metrics: BufWriter<File>,
    columns: usize,
    info: RunInfo,
}

/// Checks that `dir` may be written: absent, empty, or (with `overwrite`) an earlier run
/// directory. Call it before any expensive work so a bad `--out` fails first.
pub fn check_output_dir(dir: &Path, overwrite: bool) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    if !dir.is_dir() {
        return Err(Error::output(dir, "exists and is not a directory; choose another output path"));
    }
    let empty = std::fs::read_dir(dir).map_err(|e| Error::output(dir, e))?.next().is_none();
    if empty {
        return Ok(());
    }
    if !overwrite {
        return Err(Error::output(dir, "already exists and is not empty; choose another output path or pass --overwrite"));
    }
    if !dir.join(INFO_FILE).exists() {
        return Err(Error::output(dir, "is not an eccentric run directory (no run.json), so it is not overwritten"));
    }
    Ok(())
}

impl RunWriter {
    /// Creates the run directory and its files, with the `metrics.csv` header.
    ///
    /// `columns` names every metrics column, `step` first.
    pub fn create(dir: &Path, overwrite: bool, info: RunInfo, columns: &[&str], labels: Option<&[i64]>) -> Result<Self> {
        check_output_dir(dir, overwrite)?;
        if dir.exists() && overwrite {
            for name in [POSITIONS_FILE, METRICS_FILE, INFO_FILE, LABELS_FILE] {
                let path = dir.join(name);
                if path.exists() {
                    std::fs::remove_file(&path).map_err(|e| Error::output(&path, e))?;
                }
            }
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::output(dir, e))?;

        let positions = FrameWriter::create(&dir.join(POSITIONS_FILE), info.n, info.dim)?;
        let metrics_path = dir.join(METRICS_FILE);
        let file = File::create(&metrics_path).map_err(|e| Error::output(&metrics_path, e))?;
        let mut metrics = BufWriter::new(file);
        writeln!(metrics, "{}", columns.join(",")).map_err(|e| Error::output(&metrics_path, e))?;
        metrics.flush().map_err(|e| Error::output(&metrics_path, e))?;
        if let Some(labels) = labels {
            npy::write_i64(&dir.join(LABELS_FILE), &[labels.len()], labels)?;
        }

        let writer = Self { dir: dir.to_path_buf(), positions, metrics, columns: columns.len(), info };
        writer.write_info()?;
        Ok(writer)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn frames(&self) -> usize {
        self.positions.frames()
    }

    /// Appends one frame: the positions and one metrics row whose first value is the step.
    pub fn write_frame(&mut self, step: u64, points: &Points, row: &[f64]) -> Result<()> {
        assert_eq!(row.len(), self.columns, "metrics row must match the columns");
        self.positions.push(points.as_slice())?;
        let metrics_path = self.dir.join(METRICS_FILE);
        let text: Vec<String> = row.iter().enumerate().map(|(k, v)| if k == 0 { format!("{step}") } else { format!("{v:.9e}") }).collect();
        writeln!(self.metrics, "{}", text.join(",")).map_err(|e| Error::output(&metrics_path, e))?;
        self.metrics.flush().map_err(|e| Error::output(&metrics_path, e))?;
        self.info.frame_steps.push(step);
        Ok(())
    }

    /// Records that the run went on with the CPU engine after the GPU engine failed. `run.json`
    /// keeps `message`.
    pub fn note_fallback(&mut self, message: String) {
        self.info.fallback = Some(message);
    }

    /// Closes the run with `stop_reason` and writes the final `run.json`; `complete` is true
    /// unless the run was interrupted before its end.
    pub fn finish(mut self, stop_reason: &str) -> Result<PathBuf> {
        self.info.complete = stop_reason != INTERRUPTED;
        self.info.stop_reason = Some(stop_reason.to_string());
        self.write_info()?;
        Ok(self.dir.clone())
    }

    /// Writes `run.json` through a temporary file and a rename, so a reader never sees half of it.
    fn write_info(&self) -> Result<()> {
        let path = self.dir.join(INFO_FILE);
        let temporary = self.dir.join(".run.json.tmp");
        let text = serde_json::to_string_pretty(&self.info).map_err(|e| Error::output(&path, e))?;
        std::fs::write(&temporary, text).map_err(|e| Error::output(&temporary, e))?;
        std::fs::rename(&temporary, &path).map_err(|e| Error::output(&path, e))
    }
}

impl Drop for RunWriter {
    /// Records the frames written so far when a run ends without `finish` (an error part way),
    /// leaving `complete: false`.
    fn drop(&mut self) {
        if !self.info.complete && self.info.stop_reason.is_none() {
            self.info.stop_reason.get_or_insert_with(|| "stopped before completion".to_string());
            if let Err(error) = self.write_info() {
                tracing::warn!(%error, "could not record the frames of an unfinished run");
            }
        }
    }
}
