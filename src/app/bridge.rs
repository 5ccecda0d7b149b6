//! The bridge between the app and the engine thread.
//!
//! The engine runs on its own thread so the render thread never waits for a step. The app sends
//! [`Command`]s through a channel; the engine publishes the newest [`Snapshot`] into a shared
//! slot that the app reads each frame (older snapshots are simply replaced).

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bevy::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::engine::{BackendChoice, Engine, sample_start};
use crate::error::{Error, Result};
use crate::io::assets::{DIGITS_LABELS, DIGITS_LATENT, DIGITS_PIXELS, asset_path};
use crate::io::rundir::InputInfo;
use crate::io::{RunInfo, RunWriter, load_labels, load_points};
use crate::metrics::{CSV_COLUMNS, Readouts, covariance_spectrum, pair_cosines, radii};
use crate::model::Points;
use crate::params::Params;
use crate::projection::PcaProjection;
use crate::train::TrainParams;

use super::training::{TrainingSession, TrainingView};

/// Source of the starting points.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// Drawn from `params.init` with `params.seed`.
    Sample,
    /// The 16-d latent codes of the digits autoencoder, colored by digit.
    DigitsLatent,
    /// The 64 pixel values of the UCI digits, colored by digit.
    DigitsPixels,
    /// An NPY or CSV file chosen by the user.
    File(PathBuf),
}

impl Source {
    pub fn label(&self) -> String {
        match self {
            Source::Sample => "random start".into(),
            Source::DigitsLatent => "digits autoencoder latent codes (16-d)".into(),
            Source::DigitsPixels => "digits pixels (64-d)".into(),
            Source::File(path) => path.display().to_string(),
        }
    }
}

/// Requests from the app to the engine thread.
#[derive(Clone, Debug)]
pub enum Command {
    /// New parameters of the dynamics; n and d are handled by `Resize`.
    SetParams(Params),
    /// Change n or d, keeping the existing coordinates.
    Resize { n: usize, dim: usize },
    /// Start again from `source` with `params`.
    Reset { params: Params, source: Source },
    Play(bool),
    /// Take one batch of steps while paused.
    Step,
    SetStepsPerFrame(u32),
    StartRecording(PathBuf),
    StopRecording,
    /// Switch to the training scenario: an autoencoder trained on `source`'s data.
    StartTraining { params: TrainParams, source: Source },
    /// New training parameters; a new network when the architecture or seed changed.
    SetTrainParams(TrainParams),
}

/// State of a recording in progress.
#[derive(Clone, Debug)]
pub struct RecordingStatus {
    pub dir: PathBuf,
    pub frames: usize,
}

/// The newest state the engine has published.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Increases with every publish, so the app can tell a new snapshot from an old one.
    pub serial: u64,
    pub step: u64,
    pub n: usize,
    pub dim: usize,
    /// Display coordinates: the positions themselves for d <= 3, else the top principal components.
    pub display: Vec<[f32; 3]>,
    pub labels: Option<Vec<i64>>,
    pub readouts: Readouts,
    /// Covariance eigenvalues, largest first.
    pub spectrum: Vec<f64>,
    pub radii: Vec<f64>,
    /// Cosines of a subsample of direction pairs.
    pub cosines: Vec<f64>,
    pub playing: bool,
    pub steps_per_second: f64,
    pub recording: Option<RecordingStatus>,
    pub source: String,
    /// True when `readouts` belong to this very step (they are refreshed at most 10 times a second).
    pub readouts_fresh: bool,
    /// Losses and decoded images, in the training scenario.
    pub training: Option<Arc<TrainingView>>,
    /// The engine in use, for example "cpu (rayon, 2 threads)" or "gpu (adapter name)".
    pub backend: String,
}

/// Messages from the engine thread that the app shows to the user.
pub type ErrorReceiver = Receiver<String>;

/// The app's handle on the engine thread.
#[derive(Resource)]
pub struct EngineBridge {
    commands: Sender<Command>,
    latest: Arc<Mutex<Option<Arc<Snapshot>>>>,
    errors: Mutex<ErrorReceiver>,
}

impl EngineBridge {
    /// Starts the engine thread on `source` with `params`, playing.
    pub fn spawn(params: Params, source: Source, steps_per_frame: u32, backend: BackendChoice) -> Self {
        let (commands, receiver) = channel();
        let (error_sender, errors) = channel();
        let latest = Arc::new(Mutex::new(None));
        let slot = latest.clone();
        std::thread::Builder::new()
            .name("eccentric-engine".into())
            .spawn(move || EngineThread::new(slot, error_sender, steps_per_frame, backend).run(receiver, params, source))
            .expect("the engine thread starts");
        Self { commands, latest, errors: Mutex::new(errors) }
    }

    pub fn send(&self, command: Command) {
        if self.commands.send(command).is_err() {
            error!("the engine thread has stopped; the command was dropped");
        }
    }

    pub fn latest(&self) -> Option<Arc<Snapshot>> {
        self.latest.lock().expect("snapshot lock").clone()
    }

    /// Drains the errors reported since the last call.
    pub fn take_errors(&self) -> Vec<String> {
        self.errors.lock().expect("error lock").try_iter().collect()
    }
}

/// Minimum time between published batches while playing, so the engine does not race ahead of
/// the display (about 60 batches a second).
const BATCH_INTERVAL: Duration = Duration::from_millis(16);

/// Minimum time between full readout evaluations, which cost two passes over all pairs.
const READOUT_INTERVAL: Duration = Duration::from_millis(100);

/// Maximum number of direction pairs sampled for the cosine histogram.
const MAX_COSINE_PAIRS: usize = 20_000;

struct EngineThread {
    slot: Arc<Mutex<Option<Arc<Snapshot>>>>,
    errors: Sender<String>,
    engine: Option<Engine>,
    backend: BackendChoice,
    /// The last published positions and their step, from which a failed GPU engine falls back.
    last_good: Option<(Points, u64)>,
    /// The training scenario, when it is on; it takes the place of `engine`.
    training: Option<TrainingSession>,
    training_view: Option<Arc<TrainingView>>,
    labels: Option<Vec<i64>>,
    source: Source,
    input: Option<InputInfo>,
    projection: PcaProjection,
    playing: bool,
    steps_per_frame: u32,
    recorder: Option<RunWriter>,
    serial: u64,
    readouts: Readouts,
    readouts_at: Option<Instant>,
    rate_clock: (Instant, u64),
    steps_per_second: f64,
}

impl EngineThread {
    fn new(slot: Arc<Mutex<Option<Arc<Snapshot>>>>, errors: Sender<String>, steps_per_frame: u32, backend: BackendChoice) -> Self {
        Self {
            slot,
            errors,
            engine: None,
            backend,
            last_good: None,
            training: None,
            training_view: None,
            labels: None,
            source: Source::Sample,
            input: None,
            projection: PcaProjection::default(),
            playing: true,
            steps_per_frame,
            recorder: None,
            serial: 0,
            readouts: Readouts::default(),
            readouts_at: None,
            rate_clock: (Instant::now(), 0),
            steps_per_second: 0.0,
        }
    }

    fn run(mut self, commands: Receiver<Command>, params: Params, source: Source) {
        info!(?source, n = params.n, d = params.dim, backend = ?self.backend, "engine thread started");
        if let Err(error) = self.reset(params.clone(), source) {
            self.report(error);
            // Fall back to a random start so the app always has something to show.
            let _ = self.reset(params, Source::Sample);
        }
        self.publish(true);

        loop {
            let wait = if self.playing { Duration::ZERO } else { Duration::from_millis(50) };
            let mut single_step = false;
            let mut changed = false;
            match commands.recv_timeout(wait) {
                Ok(command) => {
                    single_step |= self.handle(command);
                    changed = true;
                    while let Ok(command) = commands.try_recv() {
                        single_step |= self.handle(command);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }

            if self.playing || single_step {
                let started = Instant::now();
                self.run_batch();
                self.publish(false);
                let spent = started.elapsed();
                if spent < BATCH_INTERVAL {
                    std::thread::sleep(BATCH_INTERVAL - spent);
                }
            } else if changed {
                self.publish(true);
            }
        }
        self.stop_recording("app closed");
        info!("engine thread stopped");
    }

    /// Applies one command; returns true when it asks for a single batch of steps.
    fn handle(&mut self, command: Command) -> bool {
        let result = match command {
            Command::SetParams(params) => match self.engine.as_mut() {
                Some(engine) => engine.set_params(params),
                None => Ok(()),
            },
            Command::Resize { n, dim } => self.resize(n, dim),
            Command::Reset { params, source } => self.reset(params, source),
            Command::Play(playing) => {
                self.playing = playing;
                Ok(())
            }
            Command::Step => return true,
            Command::SetStepsPerFrame(steps) => {
                self.steps_per_frame = steps.max(1);
                Ok(())
            }
            Command::StartRecording(dir) => self.start_recording(dir),
            Command::StopRecording => {
                self.stop_recording("stopped by the user");
                Ok(())
            }
            Command::StartTraining { params, source } => self.start_training(params, source),
            Command::SetTrainParams(params) => self.update_training(params),
        };
        if let Err(error) = result {
            self.report(error);
        }
        false
    }

    fn report(&mut self, error: Error) {
        warn!(%error, "engine error");
        let _ = self.errors.send(error.to_string());
    }

    fn reset(&mut self, params: Params, source: Source) -> Result<()> {
        let (start, labels, input) = match &source {
            Source::Sample => {
                params.validate()?;
                crate::runner::check_memory(params.n, params.dim)?;
                (sample_start(params.init, params.n, params.dim, params.seed), None, None)
            }
            Source::DigitsLatent => {
                let dataset = load_points(&asset_path(DIGITS_LATENT))?;
                let labels = load_labels(&asset_path(DIGITS_LABELS), dataset.points.n())?;
                let input = InputInfo { file: DIGITS_LATENT.into(), sha256: dataset.sha256.clone() };
                (dataset.points, Some(labels), Some(input))
            }
            Source::DigitsPixels => {
                let dataset = load_points(&asset_path(DIGITS_PIXELS))?;
                let input = InputInfo { file: DIGITS_PIXELS.into(), sha256: dataset.sha256.clone() };
                (dataset.points, dataset.labels, Some(input))
            }
            Source::File(path) => {
                let dataset = load_points(path)?;
                let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                let input = InputInfo { file, sha256: dataset.sha256.clone() };
                (dataset.points, dataset.labels, Some(input))
            }
        };
        let (n, dim) = (start.n(), start.dim());
        let engine = self.create_engine(params, start)?;
        info!(n, d = dim, source = %source.label(), backend = %engine.describe(), "simulation reset");
        self.stop_recording("the simulation was reset");
        self.engine = Some(engine);
        self.training = None;
        self.training_view = None;
        self.labels = labels;
        self.input = input;
        self.source = source;
        self.projection.clear();
        self.readouts_at = None;
        Ok(())
    }

    /// Changes n and d in place: kept particles and axes keep their coordinates, new axes get
    /// small noise, new particles are drawn from the start distribution.
    fn resize(&mut self, n: usize, dim: usize) -> Result<()> {
        let Some(engine) = self.engine.as_ref() else { return Ok(()) };
        let mut params = engine.params().clone();
        if n == params.n && dim == params.dim {
            return Ok(());
        }
        params.n = n;
        params.dim = dim;
        params.validate()?;
        crate::runner::check_memory(n, dim)?;

        let mut rng = ChaCha8Rng::seed_from_u64(params.seed ^ 0x5eed);
        let mut positions = engine.positions()?;
        if dim != positions.dim() {
            let scale = 1e-2 * crate::metrics::radius_stats(&positions).rms.max(1e-3);
            positions.resize_dim(dim, |_, _| scale * rng.sample::<f64, _>(StandardNormal));
        }
        let kept = n.min(positions.n());
        let mut coords = positions.as_slice()[..kept * dim].to_vec();
        if n > kept {
            let extra = sample_start(params.init, n - kept, dim, rng.random());
            coords.extend_from_slice(extra.as_slice());
        }
        let positions = Points::from_rows(n, dim, coords);
        if let Some(labels) = self.labels.as_mut() {
            labels.resize(n, -1);
        }

        let step = engine.step_index();
        self.stop_recording("n or d changed");
        let engine = self.create_engine(params, positions)?;
        info!(n, d = dim, from_step = step, "system resized");
        self.engine = Some(engine);
        self.projection.clear();
        self.readouts_at = None;
        Ok(())
    }

    /// Creates the engine of the chosen backend, reporting a fallback to the CPU to the user.
    fn create_engine(&mut self, params: Params, start: Points) -> Result<Engine> {
        let (engine, notice) = Engine::create(self.backend, params, start)?;
        if let Some(notice) = notice {
            warn!("{notice}");
            let _ = self.errors.send(format!("note: {notice}"));
        }
        self.last_good = None;
        Ok(engine)
    }

    fn start_training(&mut self, params: TrainParams, source: Source) -> Result<()> {
        let (session, labels, input) = TrainingSession::start(params, &source)?;
        info!(samples = session.trainer.data.nrows(), features = session.trainer.data.ncols(), "training started");
        self.stop_recording("the scenario changed");
        self.training = Some(session);
        self.training_view = None;
        self.labels = labels;
        self.input = Some(input);
        self.source = source;
        self.projection.clear();
        self.readouts_at = None;
        Ok(())
    }

    fn update_training(&mut self, params: TrainParams) -> Result<()> {
        let Some(session) = self.training.as_mut() else { return Ok(()) };
        if !session.update(&params)? {
            let source = self.source.clone();
            return self.start_training(params, source);
        }
        Ok(())
    }

    fn run_batch(&mut self) {
        if let Some(session) = self.training.as_mut() {
            if let Err(error) = session.run(self.steps_per_frame) {
                self.playing = false;
                self.report(error);
            }
            if self.recorder.is_some() {
                self.record_frame();
            }
            return;
        }
        let Some(engine) = self.engine.as_mut() else { return };
        let mut failure = None;
        for _ in 0..self.steps_per_frame {
            if let Err(error) = engine.step() {
                failure = Some(error);
                break;
            }
        }
        if let Some(error) = failure {
            let gpu_failed = matches!((&error, self.engine.as_ref()), (Error::Gpu(_), Some(Engine::Gpu { .. })));
            match (gpu_failed, self.last_good.clone()) {
                (true, Some((positions, step))) => {
                    warn!(%error, from_step = step, "GPU engine failed; continuing on the CPU");
                    let _ = self.errors.send(format!("{error}; continuing on the CPU from step {step}"));
                    if let Some(engine) = self.engine.as_mut()
                        && let Err(error) = engine.fall_back_to_cpu(positions, step)
                    {
                        self.report(error);
                        self.playing = false;
                    }
                }
                _ => {
                    self.playing = false;
                    self.report(error);
                }
            }
        }
        if self.recorder.is_some() {
            self.record_frame();
        }
    }

    fn record_frame(&mut self) {
        if let (Some(session), Some(recorder)) = (self.training.as_ref(), self.recorder.as_mut()) {
            let codes = session.codes();
            let params = session.trainer.params.eccentric_params(codes.n());
            let readouts = Readouts::compute(&params, &codes, None, session.trainer.step);
            let mut row = readouts.csv_values().to_vec();
            row.push(session.trainer.reconstruction_loss());
            if let Err(error) = recorder.write_frame(session.trainer.step, &codes, &row) {
                self.recorder = None;
                self.report(error);
            }
            return;
        }
        let (Some(engine), Some(recorder)) = (self.engine.as_ref(), self.recorder.as_mut()) else { return };
        let positions = match engine.positions() {
            Ok(positions) => positions,
            Err(error) => {
                self.report(error);
                return;
            }
        };
        let readouts = Readouts::compute(engine.params(), &positions, Some(engine.anchors()), engine.step_index());
        if let Err(error) = recorder.write_frame(engine.step_index(), &positions, &readouts.csv_values()) {
            self.recorder = None;
            self.report(error);
        }
    }

    fn start_recording(&mut self, dir: PathBuf) -> Result<()> {
        self.stop_recording("a new recording started");
        if let Some(session) = self.training.as_ref() {
            let params = &session.trainer.params;
            let n = session.trainer.data.nrows();
            let mut info = RunInfo::new("train", "cpu", serde_json::to_value(params).expect("params serialise"), n, params.latent_dim);
            info.input = self.input.clone();
            let columns = crate::train::run::train_columns();
            let recorder = RunWriter::create(&dir, false, info, &columns, self.labels.as_deref())?;
            info!(dir = %dir.display(), "recording started");
            self.recorder = Some(recorder);
            self.record_frame();
            return Ok(());
        }
        let Some(engine) = self.engine.as_ref() else { return Ok(()) };
        let params = engine.params();
        let mut info = RunInfo::new("app", engine.kind(), serde_json::to_value(params).expect("params serialise"), params.n, params.dim);
        info.input = self.input.clone();
        let recorder = RunWriter::create(&dir, false, info, &CSV_COLUMNS, self.labels.as_deref())?;
        info!(dir = %dir.display(), "recording started");
        self.recorder = Some(recorder);
        self.record_frame();
        Ok(())
    }

    fn stop_recording(&mut self, reason: &str) {
        if let Some(recorder) = self.recorder.take() {
            let frames = recorder.frames();
            match recorder.finish(reason) {
                Ok(dir) => info!(dir = %dir.display(), frames, reason, "recording stopped"),
                Err(error) => self.report(error),
            }
        }
    }

    fn publish(&mut self, force_readouts: bool) {
        let owned = match (self.training.as_ref(), self.engine.as_ref()) {
            (Some(session), _) => Ok((session.codes(), session.trainer.step)),
            (None, Some(engine)) => engine.positions().map(|p| (p, engine.step_index())),
            (None, None) => return,
        };
        let (positions, step) = match owned {
            Ok(state) => state,
            Err(error) => {
                self.report(error);
                return;
            }
        };
        if self.training.is_none() {
            self.last_good = Some((positions.clone(), step));
        }
        let positions = &positions;

        let due = self.readouts_at.is_none_or(|at| at.elapsed() >= READOUT_INTERVAL);
        let readouts_fresh = force_readouts || due;
        if readouts_fresh {
            self.readouts = match (self.training.as_ref(), self.engine.as_ref()) {
                (Some(session), _) => Readouts::compute(&session.trainer.params.eccentric_params(positions.n()), positions, None, step),
                (None, Some(engine)) => Readouts::compute(engine.params(), positions, Some(engine.anchors()), step),
                (None, None) => return,
            };
            self.training_view = self.training.as_ref().map(|session| Arc::new(session.view()));
            self.readouts_at = Some(Instant::now());
        }

        let (clock, clock_step) = self.rate_clock;
        let elapsed = clock.elapsed().as_secs_f64();
        if elapsed >= 0.5 {
            self.steps_per_second = step.saturating_sub(clock_step) as f64 / elapsed;
            self.rate_clock = (Instant::now(), step);
        }
        if !self.playing {
            self.steps_per_second = 0.0;
        }

        self.serial += 1;
        let snapshot = Snapshot {
            serial: self.serial,
            step,
            n: positions.n(),
            dim: positions.dim(),
            display: self.projection.project(positions),
            labels: self.labels.clone(),
            readouts: self.readouts,
            spectrum: if readouts_fresh { covariance_spectrum(positions) } else { self.previous_spectrum() },
            radii: radii(positions),
            cosines: if readouts_fresh { pair_cosines(positions, MAX_COSINE_PAIRS) } else { self.previous_cosines() },
            playing: self.playing,
            steps_per_second: self.steps_per_second,
            recording: self.recorder.as_ref().map(|r| RecordingStatus { dir: r.dir().to_path_buf(), frames: r.frames() }),
            source: self.source.label(),
            readouts_fresh,
            training: self.training_view.clone(),
            backend: match (self.training.as_ref(), self.engine.as_ref()) {
                (None, Some(engine)) => engine.describe(),
                _ => format!("cpu (rayon, {} threads)", rayon::current_num_threads()),
            },
        };
        *self.slot.lock().expect("snapshot lock") = Some(Arc::new(snapshot));
    }

    fn previous_spectrum(&self) -> Vec<f64> {
        self.slot.lock().expect("snapshot lock").as_ref().map(|s| s.spectrum.clone()).unwrap_or_default()
    }

    fn previous_cosines(&self) -> Vec<f64> {
        self.slot.lock().expect("snapshot lock").as_ref().map(|s| s.cosines.clone()).unwrap_or_default()
    }
}
