//! egui panels: simulation controls on the left, readouts and plots on the right, a status bar
//! at the bottom. Each panel is a function of the UI state and the newest snapshot.

use std::collections::VecDeque;
use std::path::PathBuf;

use bevy::prelude::*;
use bevy_egui::{EguiContexts, egui};
use egui_plot::{Bar, BarChart, Line, Plot, PlotPoints};

use super::bridge::{Command, EngineBridge, Snapshot, Source};
use super::compare::{Comparison, Variation};
use super::scene::{LABEL_COLORS, OrbitCamera, ShownComparison, ShownSnapshot};
use crate::metrics::{Regime, histogram, predicted_rms_radius_log_kernel};
use crate::params::{APP_MAX_DIM, InitKind, OptimizerKind, Params, TaskKind};
use crate::train::TrainParams;
use crate::train::images::{AXIS_OFFSETS, sample_pixels};

use super::scene::HoveredParticle;
use super::training::TrainingView;

/// Scenario the engine thread runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Particles under the eccentric energy and a task term.
    Particles,
    /// An autoencoder trained with eccentric regularization; the particles are its latent codes.
    Training,
}

/// Widths of the side panels and height of the status bar, in logical pixels, for the 3D view.
#[derive(Resource, Default)]
pub struct PanelLayout {
    pub left: f32,
    pub right: f32,
    pub bottom: f32,
}

/// Readouts kept for the plots, one point per fresh readout.
#[derive(Clone, Copy)]
struct HistoryPoint {
    step: f64,
    energy: f64,
    eccentricity: f64,
}

/// Maximum number of points kept in the plot history; older ones are dropped.
const HISTORY_LENGTH: usize = 4000;

/// Largest particle count the app's slider offers.
pub const APP_MAX_N: usize = 20_000;

/// Everything the panels edit or remember between frames.
#[derive(Resource)]
pub struct UiState {
    /// Parameters as edited in the panel.
    pub params: Params,
    /// Parameters last sent to the engine.
    sent: Params,
    pub steps_per_frame: u32,
    pub source: Source,
    file_path: String,
    record_dir: String,
    history: History,
    compared_history: History,
    errors: Vec<String>,
    log_spectrum: bool,
    pub scenario: Scenario,
    pub train_params: TrainParams,
    sent_train: TrainParams,
    loss_history: VecDeque<[f64; 3]>,
}

impl UiState {
    pub fn new(params: Params, source: Source, steps_per_frame: u32) -> Self {
        Self {
            sent: params.clone(),
            params,
            steps_per_frame,
            source,
            file_path: String::new(),
            record_dir: default_record_dir(),
            history: History::default(),
            compared_history: History::default(),
            errors: Vec::new(),
            log_spectrum: true,
            scenario: Scenario::Particles,
            train_params: app_train_defaults(),
            sent_train: app_train_defaults(),
            loss_history: VecDeque::new(),
        }
    }

    /// Switches the engine to the training scenario with the panel's training parameters.
    pub fn start_training(&mut self, bridge: &EngineBridge, comparison: &mut Comparison, orbit: &mut OrbitCamera) {
        comparison.stop();
        self.scenario = Scenario::Training;
        if !matches!(self.source, Source::File(_)) {
            self.source = Source::DigitsPixels;
        }
        bridge.send(Command::StartTraining { params: self.train_params.clone(), source: self.source.clone() });
        self.sent_train = self.train_params.clone();
        self.history = History::default();
        self.loss_history.clear();
        orbit.fit_requested = true;
    }

    /// Sends the changes made in the panel: live parameters at once, n and d as a resize.
    fn send_changes(&mut self, bridge: &EngineBridge, comparison: &mut Comparison) {
        if self.scenario == Scenario::Training {
            if self.train_params != self.sent_train {
                bridge.send(Command::SetTrainParams(self.train_params.clone()));
                self.sent_train = self.train_params.clone();
            }
            return;
        }
        comparison.sync_params(&self.params);
        if self.params == self.sent {
            return;
        }
        if self.params.n != self.sent.n || self.params.dim != self.sent.dim {
            bridge.send(Command::Resize { n: self.params.n, dim: self.params.dim });
        }
        bridge.send(Command::SetParams(self.params.clone()));
        self.sent = self.params.clone();
    }

    /// Restarts both simulations from the chosen source with the panel's parameters.
    pub fn reset(&mut self, bridge: &EngineBridge, comparison: &mut Comparison, orbit: &mut OrbitCamera) {
        if self.scenario == Scenario::Training {
            self.start_training(bridge, comparison, orbit);
            return;
        }
        bridge.send(Command::Reset { params: self.params.clone(), source: self.source.clone() });
        comparison.reset(&self.params, &self.source);
        self.sent = self.params.clone();
        self.history = History::default();
        self.compared_history = History::default();
        orbit.fit_requested = true;
    }
}

/// Readouts over steps for the plots.
#[derive(Default)]
struct History {
    points: VecDeque<HistoryPoint>,
    last_step: Option<u64>,
}

impl History {
    fn record(&mut self, snapshot: &Snapshot) {
        if self.last_step.is_some_and(|s| snapshot.step < s) {
            self.points.clear();
        }
        if snapshot.readouts_fresh && self.last_step != Some(snapshot.step) {
            self.points.push_back(HistoryPoint {
                step: snapshot.step as f64,
                energy: snapshot.readouts.energy_total,
                eccentricity: snapshot.readouts.eccentricity,
            });
            if self.points.len() > HISTORY_LENGTH {
                self.points.pop_front();
            }
            self.last_step = Some(snapshot.step);
        }
    }

    fn energy(&self) -> Vec<[f64; 2]> {
        self.points.iter().map(|h| [h.step, h.energy]).collect()
    }

    fn eccentricity(&self) -> Vec<[f64; 2]> {
        self.points.iter().map(|h| [h.step, h.eccentricity]).collect()
    }
}

/// Training defaults for the app: a 3-d latent space, so the codes are shown as they are.
fn app_train_defaults() -> TrainParams {
    TrainParams { latent_dim: 3, ..TrainParams::default() }
}

fn default_record_dir() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("recordings/run-{seconds}")
}

/// Draws every panel; runs in bevy_egui's pass.
pub fn draw_panels(
    mut contexts: EguiContexts,
    mut state: ResMut<UiState>,
    mut layout: ResMut<PanelLayout>,
    mut orbit: ResMut<OrbitCamera>,
    mut comparison: ResMut<Comparison>,
    bridge: Res<EngineBridge>,
    shown: Res<ShownSnapshot>,
    shown_comparison: Res<ShownComparison>,
    hovered: Res<HoveredParticle>,
) -> Result {
    let ctx = contexts.ctx_mut()?;
    for error in bridge.take_errors() {
        state.errors.push(error);
    }
    if let Some(compared) = comparison.bridge.as_ref() {
        // The backend notice is the same for both simulations, so it is shown once.
        for error in compared.take_errors().into_iter().filter(|e| !e.starts_with("note:")) {
            state.errors.push(format!("right-hand simulation: {error}"));
        }
    }
    let compared = shown_comparison.0.clone().filter(|_| comparison.is_on());
    if let Some(compared) = compared.as_ref() {
        state.compared_history.record(compared);
    }
    let snapshot = shown.0.clone();
    if let Some(snapshot) = snapshot.as_ref() {
        state.history.record(snapshot);
        if let Some(view) = snapshot.training.as_ref().filter(|_| snapshot.readouts_fresh) {
            let point = [snapshot.step as f64, view.reconstruction_loss, snapshot.readouts.energy_total];
            if state.loss_history.back().is_none_or(|last| last[0] != point[0]) {
                state.loss_history.push_back(point);
                if state.loss_history.len() > HISTORY_LENGTH {
                    state.loss_history.pop_front();
                }
            }
        }
        // The engine may have changed n and d itself (a loaded file); follow it.
        if state.params.n != snapshot.n || state.params.dim != snapshot.dim {
            state.params.n = snapshot.n;
            state.params.dim = snapshot.dim;
            state.sent.n = snapshot.n;
            state.sent.dim = snapshot.dim;
        }
    }

    // Panels in egui 0.36 are laid out inside a Ui, so one spans the whole window behind them.
    let mut root = egui::Ui::new(
        ctx.clone(),
        "root".into(),
        egui::UiBuilder::new().layer_id(egui::LayerId::background()).max_rect(ctx.viewport_rect()),
    );
    layout.bottom = egui::Panel::bottom("status")
        .show(&mut root, |ui| status_bar(ui, snapshot.as_deref()))
        .response
        .rect
        .height();

    layout.left = egui::Panel::left("controls")
        .default_size(300.0)
        .show(&mut root, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| controls(ui, &mut state, &bridge, &mut comparison, &mut orbit, snapshot.as_deref()));
        })
        .response
        .rect
        .width();

    layout.right = egui::Panel::right("readouts")
        .default_size(340.0)
        .show(&mut root, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                if let Some(snapshot) = snapshot.as_deref() {
                    if let Some(view) = snapshot.training.as_deref().filter(|_| state.scenario == Scenario::Training) {
                        training_panel(ui, &state, snapshot, view, hovered.0);
                    }
                    readouts(ui, &mut state, snapshot, compared.as_deref(), &comparison);
                } else {
                    ui.label("Waiting for the first state...");
                }
            });
        })
        .response
        .rect
        .width();

    state.send_changes(&bridge, &mut comparison);
    Ok(())
}

fn controls(
    ui: &mut egui::Ui,
    state: &mut UiState,
    bridge: &EngineBridge,
    comparison: &mut Comparison,
    orbit: &mut OrbitCamera,
    snapshot: Option<&Snapshot>,
) {
    ui.heading("Scenario");
    ui.horizontal(|ui| {
        let particles = ui
            .selectable_label(state.scenario == Scenario::Particles, "particles")
            .on_hover_text("Particles under the eccentric energy: pairwise repulsion and attraction to the origin, plus a task term.");
        if particles.clicked() && state.scenario != Scenario::Particles {
            state.scenario = Scenario::Particles;
            state.source = Source::Sample;
            state.reset(bridge, comparison, orbit);
        }
        let training = ui
            .selectable_label(state.scenario == Scenario::Training, "autoencoder training")
            .on_hover_text("Train an autoencoder on the digits (or a loaded file) with loss = reconstruction MSE + γ·R(latent batch); the particles are the latent codes of every sample.");
        if training.clicked() && state.scenario != Scenario::Training {
            state.start_training(bridge, comparison, orbit);
        }
    });
    ui.separator();

    ui.heading("Simulation");
    let playing = snapshot.is_some_and(|s| s.playing);
    ui.horizontal(|ui| {
        let label = if playing { "Pause" } else { "Play" };
        if ui.button(label).on_hover_text("Start or stop stepping (Space)").clicked() {
            bridge.send(Command::Play(!playing));
            comparison.send(Command::Play(!playing));
        }
        if ui.button("Step").on_hover_text("Take one batch of steps while paused (S)").clicked() {
            bridge.send(Command::Step);
            comparison.send(Command::Step);
        }
        if ui.button("Reset").on_hover_text("Start again from the chosen source, seed and distribution (R)").clicked() {
            state.reset(bridge, comparison, orbit);
        }
        if ui.button("Fit view").on_hover_text("Center the camera on the cloud").clicked() {
            orbit.fit_requested = true;
        }
    });
    let response = ui
        .add(egui::Slider::new(&mut state.steps_per_frame, 1..=200).logarithmic(true).text("steps per frame"))
        .on_hover_text("Steps the engine takes for each picture it publishes");
    if response.changed() {
        bridge.send(Command::SetStepsPerFrame(state.steps_per_frame));
        comparison.send(Command::SetStepsPerFrame(state.steps_per_frame));
    }

    if state.scenario == Scenario::Training {
        training_controls(ui, state, bridge, comparison, orbit);
        record_controls(ui, state, bridge, snapshot);
        error_list(ui, state);
        return;
    }

    ui.separator();
    ui.heading("Model");
    let p = &mut state.params;
    ui.add(egui::Slider::new(&mut p.gamma, 0.0..=100.0).logarithmic(true).smallest_positive(1e-3).text("scaling factor γ"))
        .on_hover_text("Weight of the eccentric term against the task term. With anchors, small γ keeps the data's shape and large γ pulls it onto a sphere.");
    ui.add(egui::Slider::new(&mut p.lambda, 0.01..=100.0).logarithmic(true).text("attraction λ"))
        .on_hover_text("Strength of the pull towards the origin, λ/(2n)·Σ|z|². For s = 0 the equilibrium RMS radius is 1/√λ.");
    ui.add(egui::Slider::new(&mut p.kernel_s, -2.0..=6.0).step_by(0.1).text("kernel s"))
        .on_hover_text("Riesz exponent of the repulsion K_s(r) = r^(-s)/s (s = 0: -ln r). Theory predicts a thin shell for s ≤ d - 4, a full ball otherwise; s = -1 in 3-D is a sphere.");
    ui.add(egui::Slider::new(&mut p.softening, 0.0..=1.0).logarithmic(true).smallest_positive(1e-6).text("softening ε"))
        .on_hover_text("Pair distances are evaluated as √(r² + ε²), so coincident points give finite forces.");
    ui.horizontal(|ui| {
        ui.label("task term").on_hover_text("none: eccentric term alone. anchors: T = 1/(2n)·Σ|z - a|², a pull back to the starting points.");
        ui.selectable_value(&mut p.task, TaskKind::None, "none");
        ui.selectable_value(&mut p.task, TaskKind::Anchors, "anchors");
    });
    ui.checkbox(&mut p.project_sphere, "explicit projection (baseline)")
        .on_hover_text("Minimise the Riesz term alone and put every point back on the unit sphere after each step (projected gradient). With d = 3, s = 1 this is the Thomson problem.");

    ui.separator();
    ui.heading("Dynamics");
    ui.add(egui::Slider::new(&mut p.lr, 1e-4..=2.0).logarithmic(true).text("step size lr"))
        .on_hover_text("z ← z + lr·F with F_i = -n·∂E/∂z_i, so a good step size does not depend on n. Lower it if the run diverges.");
    egui::ComboBox::from_label("optimizer")
        .selected_text(format!("{:?}", p.optimizer).to_lowercase())
        .show_ui(ui, |ui| {
            ui.selectable_value(&mut p.optimizer, OptimizerKind::Gd, "gradient descent");
            ui.selectable_value(&mut p.optimizer, OptimizerKind::Momentum, "momentum");
            ui.selectable_value(&mut p.optimizer, OptimizerKind::Adam, "adam");
            ui.selectable_value(&mut p.optimizer, OptimizerKind::Langevin, "langevin");
        });
    match p.optimizer {
        OptimizerKind::Momentum => {
            ui.add(egui::Slider::new(&mut p.momentum, 0.0..=0.99).text("momentum")).on_hover_text("Heavy-ball coefficient μ: v ← μv + F.");
        }
        OptimizerKind::Adam => {
            ui.add(egui::Slider::new(&mut p.beta1, 0.0..=0.999).text("β1")).on_hover_text("Decay rate of Adam's first moment.");
            ui.add(egui::Slider::new(&mut p.beta2, 0.0..=0.9999).text("β2")).on_hover_text("Decay rate of Adam's second moment.");
        }
        OptimizerKind::Langevin => {
            ui.add(egui::Slider::new(&mut p.temperature, 0.0..=1.0).logarithmic(true).smallest_positive(1e-5).text("temperature"))
                .on_hover_text("Noise √(2·lr·T) per coordinate and step: thermal spread around the minimum.");
        }
        OptimizerKind::Gd => {}
    }
    let mut batch = p.batch_size;
    ui.add(egui::Slider::new(&mut batch, 0..=p.n.max(2)).text("batch size"))
        .on_hover_text("Particles per mini-batch; the eccentric term is applied within the batch only. 0 is the full batch.");
    p.batch_size = if batch == 1 { 2 } else { batch };

    ui.separator();
    ui.heading("System");
    ui.add(egui::Slider::new(&mut p.n, 2..=APP_MAX_N).logarithmic(true).text("particles n"))
        .on_hover_text("Kept particles keep their place; new ones are drawn from the start distribution.");
    ui.add(egui::Slider::new(&mut p.dim, 1..=APP_MAX_DIM).text("dimension d"))
        .on_hover_text("Kept axes keep their coordinates, new axes start with small noise, removed axes are dropped. For d > 3 the view shows the first three principal components.");
    ui.horizontal(|ui| {
        ui.label("seed").on_hover_text("Seed of the random start, the mini-batches and the noise (applies on Reset).");
        ui.add(egui::DragValue::new(&mut p.seed));
    });
    ui.horizontal(|ui| {
        ui.label("start").on_hover_text("Distribution of a random start (applies on Reset).");
        ui.selectable_value(&mut p.init, InitKind::Gaussian, "Gaussian");
        ui.selectable_value(&mut p.init, InitKind::Uniform, "uniform cube");
    });

    ui.separator();
    ui.heading("Data");
    ui.label(format!("Current: {}", snapshot.map(|s| s.source.as_str()).unwrap_or("-")));
    ui.horizontal(|ui| {
        if ui.button("Random start").on_hover_text("Reset to a random start with the current n, d, seed and distribution").clicked() {
            state.source = Source::Sample;
            state.reset(bridge, comparison, orbit);
        }
        if ui.button("Digits latent codes").on_hover_text("1797 codes (16-d) of an autoencoder trained on the UCI 8x8 digits, colored by digit").clicked() {
            state.source = Source::DigitsLatent;
            state.reset(bridge, comparison, orbit);
        }
        if ui.button("Digits pixels").on_hover_text("The 1797 UCI digits themselves, 64 pixel values (0 to 16) each").clicked() {
            state.source = Source::DigitsPixels;
            state.reset(bridge, comparison, orbit);
        }
    });
    ui.horizontal(|ui| {
        ui.add(egui::TextEdit::singleline(&mut state.file_path).hint_text("path/to/points.npy or .csv").desired_width(180.0))
            .on_hover_text("An (n, d) NPY or CSV file. A CSV 'label' column colors the points.");
        if ui.button("Load").clicked() {
            let path = PathBuf::from(state.file_path.trim());
            if state.file_path.trim().is_empty() {
                state.errors.push("no file given: type the path of an .npy or .csv file".into());
            } else {
                state.source = Source::File(path);
                state.reset(bridge, comparison, orbit);
            }
        }
    });

    ui.separator();
    compare_controls(ui, state, bridge, comparison, orbit);
    record_controls(ui, state, bridge, snapshot);
    error_list(ui, state);
}

fn record_controls(ui: &mut egui::Ui, state: &mut UiState, bridge: &EngineBridge, snapshot: Option<&Snapshot>) {
    ui.separator();
    ui.heading("Record");
    match snapshot.and_then(|s| s.recording.clone()) {
        Some(recording) => {
            ui.label(format!("Recording to {} ({} frames)", recording.dir.display(), recording.frames));
            if ui.button("Stop recording").clicked() {
                bridge.send(Command::StopRecording);
                state.record_dir = default_record_dir();
            }
        }
        None => {
            ui.add(egui::TextEdit::singleline(&mut state.record_dir).desired_width(220.0))
                .on_hover_text("Run directory to create: positions.npy, metrics.csv and run.json, one frame per batch of steps.");
            if ui.button("Start recording").clicked() {
                bridge.send(Command::StartRecording(PathBuf::from(state.record_dir.trim())));
            }
        }
    }

}

fn error_list(ui: &mut egui::Ui, state: &mut UiState) {
    if !state.errors.is_empty() {
        ui.separator();
        ui.colored_label(egui::Color32::from_rgb(230, 80, 80), "Messages");
        for error in &state.errors {
            ui.colored_label(egui::Color32::from_rgb(230, 120, 120), error);
        }
        if ui.button("Dismiss").clicked() {
            state.errors.clear();
        }
    }
}

fn training_controls(ui: &mut egui::Ui, state: &mut UiState, bridge: &EngineBridge, comparison: &mut Comparison, orbit: &mut OrbitCamera) {
    ui.separator();
    ui.heading("Loss");
    let p = &mut state.train_params;
    ui.add(egui::Slider::new(&mut p.gamma, 0.0..=100.0).logarithmic(true).smallest_positive(1e-3).text("scaling factor γ"))
        .on_hover_text("Weight of the eccentric term R(latent batch) against the reconstruction error. Small γ lets the codes grow eccentric with axes ordered by importance; large γ makes them hyperspherical.");
    ui.add(egui::Slider::new(&mut p.lambda, 0.01..=100.0).logarithmic(true).text("attraction λ")).on_hover_text("Pull of the codes towards the origin inside R.");
    ui.add(egui::Slider::new(&mut p.kernel_s, -2.0..=6.0).step_by(0.1).text("kernel s")).on_hover_text("Riesz exponent of the repulsion between codes.");
    ui.add(egui::Slider::new(&mut p.weight_decay, 0.0..=0.1).logarithmic(true).smallest_positive(1e-6).text("weight decay"))
        .on_hover_text("L2 penalty on the weight matrices; it balances encoder and decoder scales.");

    ui.separator();
    ui.heading("Network");
    ui.add(egui::Slider::new(&mut p.latent_dim, 1..=16).text("latent dimension d"))
        .on_hover_text("Size of the bottleneck; for d > 3 the view shows the first three principal components. Changing it starts a new network.");
    ui.add(egui::Slider::new(&mut p.hidden, 0..=128).text("hidden tanh units"))
        .on_hover_text("Units of the tanh hidden layer in the encoder and in the decoder; 0 makes both linear. Changing it starts a new network.");
    ui.add(egui::Slider::new(&mut p.lr, 1e-5..=0.1).logarithmic(true).text("Adam step size")).on_hover_text("Step size of Adam on the network weights.");
    ui.add(egui::Slider::new(&mut p.batch_size, 2..=1024).logarithmic(true).text("batch size"))
        .on_hover_text("Samples per step; R is computed within each batch, as in training.");
    ui.horizontal(|ui| {
        ui.label("seed").on_hover_text("Seed of the initial weights and the batch order (starts a new network).");
        ui.add(egui::DragValue::new(&mut p.seed));
    });
    ui.checkbox(&mut p.standardize, "standardise features").on_hover_text("Scale every input feature to zero mean and unit variance (starts a new network).");

    ui.separator();
    ui.heading("Data");
    ui.horizontal(|ui| {
        if ui.button("Digits pixels").on_hover_text("The 1797 UCI 8x8 digits, colored by digit").clicked() {
            state.source = Source::DigitsPixels;
            state.start_training(bridge, comparison, orbit);
        }
        ui.add(egui::TextEdit::singleline(&mut state.file_path).hint_text("samples.npy or .csv").desired_width(140.0))
            .on_hover_text("One sample per row; a CSV 'label' column colors the codes.");
        if ui.button("Load").clicked() {
            if state.file_path.trim().is_empty() {
                state.errors.push("no file given: type the path of an .npy or .csv file".into());
            } else {
                state.source = Source::File(PathBuf::from(state.file_path.trim()));
                state.start_training(bridge, comparison, orbit);
            }
        }
    });
}

/// Draws one sample as a grid of grey squares, `size` points per pixel.
fn sample_image(ui: &mut egui::Ui, sample: &[f32], range: (f64, f64), size: f32) -> egui::Response {
    let values: Vec<f64> = sample.iter().map(|&x| f64::from(x)).collect();
    let (side, pixels) = sample_pixels(&values, range.0, range.1);
    let (rect, response) = ui.allocate_exact_size(egui::vec2(side as f32 * size, side as f32 * size), egui::Sense::hover());
    let painter = ui.painter_at(rect);
    for (k, &level) in pixels.iter().enumerate() {
        let (row, column) = (k / side, k % side);
        let min = rect.min + egui::vec2(column as f32 * size, row as f32 * size);
        painter.rect_filled(egui::Rect::from_min_size(min, egui::vec2(size, size)), 0.0, egui::Color32::from_gray(level));
    }
    response
}

fn training_panel(ui: &mut egui::Ui, state: &UiState, snapshot: &Snapshot, view: &TrainingView, hovered: Option<usize>) {
    ui.heading("Training");
    ui.label(format!(
        "epoch {}, step {}; reconstruction loss {:.4}; batch γR {:.4}",
        view.epoch, snapshot.step, view.reconstruction_loss, view.batch.eccentric
    ));
    let losses: Vec<[f64; 2]> = state.loss_history.iter().map(|p| [p[0], p[1]]).collect();
    let eccentric: Vec<[f64; 2]> = state.loss_history.iter().map(|p| [p[0], p[2]]).collect();
    // Two plots, because at small γ the γR term is orders of magnitude below the loss and would
    // draw as a flat line on a shared axis.
    ui.label("Reconstruction loss").on_hover_text("Mean squared error over all samples, in standardised units, against the step.");
    Plot::new("loss_plot").height(70.0).allow_scroll(false).show(ui, |plot| {
        plot.line(Line::new("reconstruction", PlotPoints::from(losses)));
    });
    ui.label("Eccentric term γR").on_hover_text("γ times the eccentric regularizer of the last latent batch, against the step.");
    Plot::new("eccentric_loss_plot").height(70.0).allow_scroll(false).show(ui, |plot| {
        plot.line(Line::new("eccentric γR", PlotPoints::from(eccentric)).color(COMPARED_COLOR));
    });

    let p = view.features;
    ui.label("Decoded along the principal axes of the codes (-2σ to +2σ)")
        .on_hover_text("Each row moves along one principal axis of the latent covariance, largest first, from -2 to +2 standard deviations.");
    let cell = (6.0f32).min(36.0 / (p as f32).sqrt().ceil().max(1.0));
    egui::Grid::new("axis_grid").spacing(egui::vec2(3.0, 3.0)).show(ui, |ui| {
        for row in 0..view.grid_rows {
            for column in 0..AXIS_OFFSETS.len() {
                let index = row * AXIS_OFFSETS.len() + column;
                sample_image(ui, &view.grid[index * p..(index + 1) * p], view.range, cell);
            }
            ui.end_row();
        }
    });
    ui.label("Generated: decoded from random points on the fitted ellipsoid")
        .on_hover_text("Points with the codes' mean and covariance, on the ellipsoid they span, decoded to data space.");
    ui.horizontal_wrapped(|ui| {
        for sample in view.generated.chunks(p) {
            sample_image(ui, sample, view.range, cell * 0.8);
        }
    });
    match hovered {
        Some(index) if (index + 1) * p <= view.reconstructions.len() => {
            let label = snapshot.labels.as_ref().and_then(|l| l.get(index)).map(|l| format!(", label {l}")).unwrap_or_default();
            ui.label(format!("Sample {index}{label}: original, reconstruction"));
            ui.horizontal(|ui| {
                sample_image(ui, &view.originals[index * p..(index + 1) * p], view.range, cell);
                sample_image(ui, &view.reconstructions[index * p..(index + 1) * p], view.range, cell);
            });
        }
        _ => {
            ui.label("Point at a particle to see its image and reconstruction.");
        }
    }
    ui.separator();
}

fn compare_controls(ui: &mut egui::Ui, state: &mut UiState, bridge: &EngineBridge, comparison: &mut Comparison, orbit: &mut OrbitCamera) {
    ui.heading("Compare");
    let mut on = comparison.is_on();
    let toggled = ui
        .checkbox(&mut on, "side by side")
        .on_hover_text("Run a second simulation from the same start and seed with one parameter changed, shown on the right half of the view.")
        .changed();

    let mut variation = comparison.variation;
    egui::ComboBox::from_label("changed parameter").selected_text(variation.name()).show_ui(ui, |ui| {
        for choice in Variation::CHOICES {
            if ui.selectable_label(variation.same_kind(&choice), choice.name()).clicked() && !variation.same_kind(&choice) {
                variation = choice;
            }
        }
    });
    match &mut variation {
        Variation::Gamma(gamma) => {
            ui.add(egui::Slider::new(gamma, 0.0..=100.0).logarithmic(true).smallest_positive(1e-3).text("γ on the right"));
        }
        Variation::Lambda(lambda) => {
            ui.add(egui::Slider::new(lambda, 0.01..=100.0).logarithmic(true).text("λ on the right"));
        }
        Variation::KernelS(s) => {
            ui.add(egui::Slider::new(s, -2.0..=6.0).step_by(0.1).text("s on the right"));
        }
        Variation::Optimizer(optimizer) => {
            ui.horizontal(|ui| {
                ui.selectable_value(optimizer, OptimizerKind::Gd, "gd");
                ui.selectable_value(optimizer, OptimizerKind::Momentum, "momentum");
                ui.selectable_value(optimizer, OptimizerKind::Adam, "adam");
                ui.selectable_value(optimizer, OptimizerKind::Langevin, "langevin");
            });
        }
        Variation::Projection => {
            ui.label("The right half toggles the explicit projection.");
        }
    }
    let kind_changed = !variation.same_kind(&comparison.variation);
    comparison.variation = variation;

    if toggled && on {
        comparison.start(&state.params, &state.source, state.steps_per_frame);
        state.reset(bridge, comparison, orbit);
    } else if toggled {
        comparison.stop();
    } else if kind_changed && comparison.is_on() {
        state.reset(bridge, comparison, orbit);
    }
    if comparison.is_on() {
        ui.label(format!("Right: {}", comparison.variation.describe(&state.params)));
    }
}

fn readout_row(ui: &mut egui::Ui, name: &str, value: String, help: &str) {
    ui.label(name).on_hover_text(help);
    ui.monospace(value);
    ui.end_row();
}

fn readouts(ui: &mut egui::Ui, state: &mut UiState, snapshot: &Snapshot, compared: Option<&Snapshot>, comparison: &Comparison) {
    let r = &snapshot.readouts;
    ui.heading("Readouts");
    egui::Grid::new("readout_grid").num_columns(2).striped(true).show(ui, |ui| {
        readout_row(ui, "energy E", format!("{:.6}", r.energy_total), "Total energy γR + T");
        readout_row(ui, "  attraction", format!("{:.6}", r.energy_attraction), "γλ/(2n)·Σ|z|²");
        readout_row(ui, "  repulsion", format!("{:.6}", r.energy_repulsion), "γ/(n(n-1))·Σ K_s(ρ_ij)");
        readout_row(ui, "  task", format!("{:.6}", r.energy_task), "T, the anchors term (0 without a task)");
        readout_row(ui, "mean radius", format!("{:.5}", r.radius_mean), "Mean of |z_i|");
        readout_row(ui, "radius std/mean", format!("{:.3e}", r.radius_rel_std), "Relative spread of |z_i|: near 0 on a thin shell");
        readout_row(ui, "eccentricity", format!("{:.4}", r.eccentricity), "√(1 - λ_min/λ_max) of the covariance eigenvalues: 0 when isotropic, near 1 when one axis dominates");
        readout_row(ui, "virial ratio", format!("{:.6}", r.virial_ratio), "Attraction side over repulsion side of the virial identity; 1 at any stationary point of R");
        readout_row(ui, "effective rank", format!("{:.3}", r.effective_rank), "exp(entropy of the normalised covariance eigenvalues): from 1 (one axis) to d (isotropic)");
        readout_row(ui, "hyperspherical E", format!("{:.6}", r.hyperspherical_energy), "Riesz energy of the directions z/|z| under the same kernel, comparable with the projection baseline");
        readout_row(ui, "uniformity", format!("{:.4}", r.uniformity), "log mean exp(-2|u_i - u_j|²) over direction pairs; lower is more uniform");
        readout_row(ui, "gradient norm", format!("{:.3e}", r.gradient_norm), "|∂E/∂Z|: goes to 0 at convergence");
    });

    if let Some(compared) = compared {
        compared_readouts(ui, snapshot, compared, &comparison.variation.describe(&state.params));
    }

    let training = state.scenario == Scenario::Training;
    let (kernel_s, lambda) = if training { (state.train_params.kernel_s, state.train_params.lambda) } else { (state.params.kernel_s, state.params.lambda) };
    let predicted = Regime::predicted(kernel_s, snapshot.dim);
    let measured = Regime::measured(r.radius_rel_std);
    ui.label(format!("Theory: {} for s = {:.1}, d = {}; measured: {}", predicted.label(), kernel_s, snapshot.dim, measured.label()))
        .on_hover_text("Quadratic attraction with a Riesz s-kernel gives a thin shell when s ≤ d - 4 and a full ball otherwise (Chafai, Saff and Womersley 2022). Measured: shell when std/mean < 5%.");
    if kernel_s == 0.0 && (training || !state.params.project_sphere) {
        let rms = snapshot.radii.iter().map(|x| x * x).sum::<f64>() / snapshot.radii.len().max(1) as f64;
        ui.label(format!("RMS radius {:.5}, theory 1/√λ = {:.5}", rms.sqrt(), predicted_rms_radius_log_kernel(lambda)));
    }

    ui.separator();
    let comparing = compared.is_some();
    ui.label("Energy over steps");
    Plot::new("energy_plot").height(120.0).allow_scroll(false).show(ui, |plot| {
        plot.line(Line::new("left", PlotPoints::from(state.history.energy())));
        if comparing {
            plot.line(Line::new("right", PlotPoints::from(state.compared_history.energy())).color(COMPARED_COLOR));
        }
    });
    ui.label("Eccentricity over steps");
    Plot::new("eccentricity_plot").height(120.0).allow_scroll(false).include_y(0.0).include_y(1.0).show(ui, |plot| {
        plot.line(Line::new("left", PlotPoints::from(state.history.eccentricity())).color(egui::Color32::from_rgb(230, 150, 60)));
        if comparing {
            plot.line(Line::new("right", PlotPoints::from(state.compared_history.eccentricity())).color(COMPARED_COLOR));
        }
    });

    ui.separator();
    ui.horizontal(|ui| {
        ui.label("Covariance spectrum").on_hover_text("Eigenvalues of the covariance, largest first: the stratification of the latent axes by importance.");
        ui.checkbox(&mut state.log_spectrum, "log scale");
    });
    let bars = spectrum_bars(&snapshot.spectrum, state.log_spectrum);
    Plot::new("spectrum_plot").height(110.0).allow_scroll(false).show(ui, |plot| {
        plot.bar_chart(BarChart::new("eigenvalue", bars));
    });

    let max_radius = snapshot.radii.iter().copied().fold(0.0, f64::max).max(1e-9);
    histogram_plot(ui, "Radii |z|", "radius_histogram", &snapshot.radii, 0.0, max_radius * 1.05);
    histogram_plot(ui, "Cosines between directions", "cosine_histogram", &snapshot.cosines, -1.0, 1.0);

    if snapshot.labels.is_some() {
        ui.separator();
        ui.label("Colors: digit labels");
        ui.horizontal_wrapped(|ui| {
            for (digit, [r, g, b]) in LABEL_COLORS.iter().enumerate() {
                ui.colored_label(egui::Color32::from_rgb(*r, *g, *b), format!("● {digit}"));
            }
        });
    }
}

/// Bars of the covariance eigenvalues. On the log scale each bar rises from one decade below
/// the smallest eigenvalue, so every bar points up whatever the magnitudes.
fn spectrum_bars(spectrum: &[f64], log_scale: bool) -> Vec<Bar> {
    let logs: Vec<f64> = spectrum.iter().map(|l| l.max(1e-12).log10()).collect();
    let floor = logs.iter().copied().fold(f64::INFINITY, f64::min).floor() - 1.0;
    spectrum
        .iter()
        .zip(&logs)
        .enumerate()
        .map(|(k, (&value, &log))| {
            let bar = if log_scale { Bar::new(k as f64 + 1.0, log - floor).base_offset(floor) } else { Bar::new(k as f64 + 1.0, value) };
            bar.width(0.8)
        })
        .collect()
}

/// Line color of the right-hand simulation in the plots.
const COMPARED_COLOR: egui::Color32 = egui::Color32::from_rgb(120, 200, 255);

/// Key readouts of both simulations side by side.
fn compared_readouts(ui: &mut egui::Ui, left: &Snapshot, right: &Snapshot, description: &str) {
    ui.separator();
    ui.label(format!("Left vs right ({description})"));
    egui::Grid::new("compare_grid").num_columns(3).striped(true).show(ui, |ui| {
        ui.label("");
        ui.label("left");
        ui.label("right");
        ui.end_row();
        let rows: [(&str, f64, f64); 6] = [
            ("energy E", left.readouts.energy_total, right.readouts.energy_total),
            ("radius std/mean", left.readouts.radius_rel_std, right.readouts.radius_rel_std),
            ("eccentricity", left.readouts.eccentricity, right.readouts.eccentricity),
            ("effective rank", left.readouts.effective_rank, right.readouts.effective_rank),
            ("hyperspherical E", left.readouts.hyperspherical_energy, right.readouts.hyperspherical_energy),
            ("uniformity", left.readouts.uniformity, right.readouts.uniformity),
        ];
        for (name, a, b) in rows {
            ui.label(name);
            ui.monospace(format!("{a:.5}"));
            ui.monospace(format!("{b:.5}"));
            ui.end_row();
        }
        ui.label("step");
        ui.monospace(left.step.to_string());
        ui.monospace(right.step.to_string());
        ui.end_row();
    });
}

fn histogram_plot(ui: &mut egui::Ui, title: &str, id: &str, values: &[f64], low: f64, high: f64) {
    const BINS: usize = 40;
    ui.label(title);
    let counts = histogram(values, low, high, BINS);
    let width = (high - low) / BINS as f64;
    let bars: Vec<Bar> = counts
        .iter()
        .enumerate()
        .map(|(k, &c)| Bar::new(low + (k as f64 + 0.5) * width, c as f64).width(width))
        .collect();
    Plot::new(id).height(90.0).allow_scroll(false).show(ui, |plot| {
        plot.bar_chart(BarChart::new(title, bars));
    });
}

fn status_bar(ui: &mut egui::Ui, snapshot: Option<&Snapshot>) {
    ui.horizontal(|ui| {
        if let Some(s) = snapshot {
            ui.label(format!("backend: {}", s.backend));
            ui.separator();
            ui.label(format!("step {}", s.step));
            ui.separator();
            ui.label(format!("{:.0} steps/s", s.steps_per_second));
            ui.separator();
            ui.label(format!("n = {}, d = {}", s.n, s.dim));
            ui.separator();
            ui.label(if s.playing { "playing" } else { "paused" });
            if s.dim > 3 {
                ui.separator();
                ui.label("view: first three principal components");
            }
        }
        ui.separator();
        ui.label("drag: rotate · right drag: pan · wheel: zoom · Space / S / R");
    });
}
