//! The headless runner behind `eccentric run`: loads or samples a start, steps the engine and
//! records frames into a run directory.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::engine::{BackendChoice, Engine, sample_start};
use crate::error::{Error, Result};
use crate::io::rundir::{InputInfo, check_output_dir, file_name};
use crate::io::{Dataset, RunInfo, RunWriter, load_labels, load_points};
use crate::metrics::{CSV_COLUMNS, Readouts};
use crate::model::Points;
use crate::params::Params;

/// Everything `eccentric run` needs beyond [`Params`].
#[derive(Clone, Debug)]
pub struct RunRequest {
    pub params: Params,
    pub out: PathBuf,
    pub input: Option<PathBuf>,
    pub labels: Option<PathBuf>,
    /// Particle count when there is no input file.
    pub n: Option<usize>,
    /// Dimension when there is no input file.
    pub dim: Option<usize>,
    pub steps: u64,
    pub record_every: u64,
    /// Stop once the relative energy change over `tol_window` steps falls below this; 0 is off.
    pub tol: f64,
    pub tol_window: u64,
    pub overwrite: bool,
    pub backend: BackendChoice,
}

/// Summary of a finished run.
#[derive(Clone, Debug)]
pub struct RunSummary {
    pub dir: PathBuf,
    pub steps: u64,
    pub frames: usize,
    pub stop_reason: String,
    pub final_readouts: Readouts,
}

/// Estimated bytes per coordinate held by a run: positions, anchors, force, the copy kept for
/// divergence recovery, two optimizer moments, plus slack for batches and readouts.
const BYTES_PER_COORDINATE: u64 = 8 * 8;

/// Pairs per step above which the runner warns that steps will be slow.
const LARGE_RUN_PAIRS: f64 = 1e9;

/// Checks that `n * dim` coordinates fit in the memory this machine has available.
pub fn check_memory(n: usize, dim: usize) -> Result<()> {
    let needed = (n as u64).checked_mul(dim as u64).and_then(|c| c.checked_mul(BYTES_PER_COORDINATE));
    let available = available_memory_bytes();
    match (needed, available) {
        (None, _) => Err(Error::TooLarge { n, dim, needed_mib: u64::MAX, limit: "more than any machine has".into() }),
        (Some(needed), Some(available)) if needed > available => Err(Error::TooLarge {
            n,
            dim,
            needed_mib: needed >> 20,
            limit: format!("more than the {} MiB available", available >> 20),
        }),
        _ => Ok(()),
    }
}

/// Returns `MemAvailable` from `/proc/meminfo`, or `None` where that file does not exist.
fn available_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Loads the input (or samples a start) and checks the request, before anything is written.
pub fn prepare_start(request: &RunRequest) -> Result<(Params, Option<Dataset>, crate::model::Points)> {
    let mut params = request.params.clone();
    if request.record_every == 0 {
        return Err(Error::param("--record-every", 0, "must be at least 1"));
    }
    if !(request.tol >= 0.0 && request.tol.is_finite()) {
        return Err(Error::param("--tol", request.tol, "must be 0 (off) or a small positive number such as 1e-9"));
    }
    if request.tol_window == 0 {
        return Err(Error::param("--tol-window", 0, "must be at least 1"));
    }

    let (dataset, start) = match &request.input {
        Some(path) => {
            let mut dataset = load_points(path)?;
            let (n, dim) = (dataset.points.n(), dataset.points.dim());
            if let Some(requested) = request.n.filter(|&value| value != n) {
                return Err(Error::param("--n", requested, format!("conflicts with the {n} rows of the input file; drop --n")));
            }
            if let Some(requested) = request.dim.filter(|&value| value != dim) {
                return Err(Error::param("--dim", requested, format!("conflicts with the {dim} columns of the input file; drop --dim")));
            }
            if let Some(labels_path) = &request.labels {
                dataset.labels = Some(load_labels(labels_path, n)?);
            }
            let start = dataset.points.clone();
            (Some(dataset), start)
        }
        None => {
            if request.labels.is_some() {
                return Err(Error::param("--labels", "given", "needs --input; labels belong to the rows of an input file"));
            }
            let n = request.n.unwrap_or(params.n);
            let dim = request.dim.unwrap_or(params.dim);
            params.n = n;
            params.dim = dim;
            params.validate()?;
            check_memory(n, dim)?;
            (None, sample_start(params.init, n, dim, params.seed))
        }
    };
    params.n = start.n();
    params.dim = start.dim();
    params.validate()?;
    check_memory(params.n, params.dim)?;
    Ok((params, dataset, start))
}

/// Runs a simulation to the end and writes its run directory.
///
/// Every check of the request happens before the directory is created, so bad input leaves
/// nothing behind. `interrupt` ends the run early with every frame so far kept.
pub fn run(request: &RunRequest, interrupt: Arc<AtomicBool>) -> Result<RunSummary> {
    check_output_dir(&request.out, request.overwrite)?;
    let (params, dataset, start) = prepare_start(request)?;
    // Each step visits all n^2 pairs, so very large n is slow even when it fits in memory.
    let pairs = (params.n as f64) * (params.n as f64 - 1.0) / 2.0;
    if pairs > LARGE_RUN_PAIRS {
        tracing::warn!(n = params.n, pairs_per_step = format!("{pairs:.2e}"), "each step visits every pair of particles; at about 1e9 pairs per second on a CPU one step takes about {:.0} s", pairs / 1e9);
    }
    let (mut engine, notice) = Engine::create(request.backend, params.clone(), start)?;
    if let Some(notice) = notice {
        tracing::warn!("{notice}");
    }

    let mut info = RunInfo::new("run", engine.kind(), serde_json::to_value(&params).expect("params serialise"), params.n, params.dim);
    info.settings = serde_json::json!({
        "steps": request.steps,
        "record_every": request.record_every,
        "tol": request.tol,
        "tol_window": request.tol_window,
        "backend": engine.describe(),
    });
    if let Some(dataset) = &dataset {
        info.input = Some(InputInfo { file: file_name(&dataset.path), sha256: dataset.sha256.clone() });
    }
    info.labels = match &request.labels {
        Some(path) => Some(InputInfo::of_file(path)?),
        // Labels from the input file's own label column.
        None => info.input.clone().filter(|_| dataset.as_ref().is_some_and(|d| d.labels.is_some())),
    };
    let labels = dataset.as_ref().and_then(|d| d.labels.as_deref());
    let mut writer = RunWriter::create(&request.out, request.overwrite, info, &CSV_COLUMNS, labels)?;
    tracing::info!(n = params.n, d = params.dim, steps = request.steps, backend = %engine.describe(), out = %request.out.display(), "run started");

    // The last recorded state, from which a failed GPU engine falls back to the CPU.
    let mut last_good: (Points, u64);
    let record = |engine: &Engine, writer: &mut RunWriter| -> Result<(Readouts, Points)> {
        let positions = engine.positions()?;
        let readouts = Readouts::compute(engine.params(), &positions, Some(engine.anchors()), engine.step_index());
        writer.write_frame(engine.step_index(), &positions, &readouts.csv_values())?;
        Ok((readouts, positions))
    };

    let started = Instant::now();
    let mut last_log = Instant::now();
    // Energies at every multiple of the stop rule's window, the only steps the rule compares.
    let mut window_energies: Vec<f64> = Vec::new();
    let (mut last_readouts, positions) = record(&engine, &mut writer)?;
    last_good = (positions, 0);
    let mut last_recorded_step = 0;
    let mut stop_reason = format!("reached {} steps", request.steps);

    while engine.step_index() < request.steps {
        if interrupt.load(Ordering::Relaxed) {
            stop_reason = crate::io::rundir::INTERRUPTED.to_string();
            break;
        }
        // One step, its frame when one is due, and the stop rule's energy. A GPU failure in any
        // of them sends the run back to the last recorded frame on the CPU.
        let outcome = (|| -> Result<bool> {
            engine.step()?;
            let step = engine.step_index();
            if request.tol > 0.0 && step % request.tol_window == 0 {
                window_energies.push(engine.evaluate()?.energy.total());
            }
            let stop = request.tol > 0.0 && converged(&window_energies, request.tol);
            if step % request.record_every == 0 || step == request.steps || stop {
                let (readouts, positions) = record(&engine, &mut writer)?;
                last_readouts = readouts;
                last_good = (positions, step);
                last_recorded_step = step;
            }
            Ok(stop)
        })();
        match outcome {
            Ok(false) => {}
            Ok(true) => {
                stop_reason = format!(
                    "converged: relative energy change over {} steps below {}",
                    request.tol_window, request.tol
                );
                break;
            }
            Err(error @ Error::Gpu(_)) if matches!(engine, Engine::Gpu { .. }) => {
                let (positions, step) = last_good.clone();
                tracing::warn!(%error, from_step = step, "GPU engine failed; continuing on the CPU from the last recorded frame");
                engine.fall_back_to_cpu(positions, step)?;
                writer.note_fallback(format!("the GPU engine failed after step {step} ({error}); the CPU engine continued from there"));
                // Energies of steps after the frame are taken again on the way back.
                window_energies.truncate((step / request.tol_window) as usize);
                continue;
            }
            Err(error) => return Err(error),
        }
        if last_log.elapsed().as_secs_f64() >= 2.0 {
            let step = engine.step_index();
            let rate = step as f64 / started.elapsed().as_secs_f64();
            tracing::info!(step, energy = last_readouts.energy_total, energy_step = last_readouts.step, steps_per_second = format!("{rate:.1}"), "running");
            last_log = Instant::now();
        }
    }
    // An interrupted run also keeps its last state, when the engine can still hand it over.
    if engine.step_index() != last_recorded_step {
        match record(&engine, &mut writer) {
            Ok((readouts, _)) => last_readouts = readouts,
            Err(error @ Error::Gpu(_)) => {
                tracing::warn!(%error, step = last_recorded_step, "the GPU could not hand over the last state; the run ends at the last recorded frame");
            }
            Err(error) => return Err(error),
        }
    }

    let frames = writer.frames();
    let dir = writer.finish(&stop_reason)?;
    tracing::info!(steps = engine.step_index(), frames, reason = %stop_reason, seconds = started.elapsed().as_secs_f64(), "run finished");
    Ok(RunSummary { dir, steps: engine.step_index(), frames, stop_reason, final_readouts: last_readouts })
}

/// True when the last two window energies differ by less than `tol`, relative.
fn converged(window_energies: &[f64], tol: f64) -> bool {
    let [.., before, now] = window_energies else { return false };
    (now - before).abs() <= tol * now.abs().max(f64::MIN_POSITIVE)
}
