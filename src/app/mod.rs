//! The desktop app: Bevy for the 3D view, egui for the panels, and an engine thread that steps
//! the simulation so the window never waits for it.

pub mod bridge;
pub mod compare;
pub mod panels;
pub mod scene;
pub mod training;

use std::path::PathBuf;

use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, ScreenshotCaptured};
use bevy::window::WindowResolution;
use bevy_egui::input::egui_wants_any_keyboard_input;
use bevy_egui::{EguiPlugin, EguiPrimaryContextPass};

use bridge::{Command, EngineBridge, Source};
use compare::Comparison;
use panels::{PanelLayout, UiState, draw_panels};
use scene::{OrbitCamera, ScenePlugin};

use crate::error::{Error, Result};
use crate::params::{Params, TaskKind};

/// The scene the app opens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scene {
    /// About 1000 particles in 3-D from a Gaussian start, in the sphere regime (s = -1).
    Default,
    /// The digits autoencoder's latent codes, anchored, colored by digit.
    Digits,
    /// An autoencoder training on the digits with eccentric regularization.
    Training,
}

impl Scene {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "default" => Ok(Scene::Default),
            "digits" => Ok(Scene::Digits),
            "train" => Ok(Scene::Training),
            other => Err(Error::param("--scene", other, "must be 'default', 'digits' or 'train'")),
        }
    }

    fn setup(self) -> (Params, Source) {
        match self {
            Scene::Default | Scene::Training => (Params::default(), Source::Sample),
            Scene::Digits => (Params { task: TaskKind::Anchors, gamma: 1.0, ..Params::default() }, Source::DigitsLatent),
        }
    }
}

/// Options the app starts with.
#[derive(Clone, Debug)]
pub struct AppOptions {
    pub scene: Scene,
    /// Save a screenshot here after `exit_after_seconds`, then exit (for tests and docs).
    pub screenshot: Option<PathBuf>,
    pub exit_after_seconds: f64,
    /// Open the comparison view with this parameter changed on the right.
    pub compare: Option<compare::Variation>,
    /// Scaling factor of the opening scene, in place of its default.
    pub gamma: Option<f64>,
    pub backend: crate::engine::BackendChoice,
}

/// Steps per published frame in a new app.
const DEFAULT_STEPS_PER_FRAME: u32 = 5;

/// Opens the window and runs until it is closed.
pub fn run(options: AppOptions) {
    // The engine thread logs from its first moment, before Bevy's own log plugin would be set
    // up, so the app installs its subscriber here and leaves that plugin out.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,wgpu=error,wgpu_core=warn,wgpu_hal=warn,naga=warn".into());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).try_init();

    let (mut params, source) = options.scene.setup();
    if let Some(gamma) = options.gamma {
        params.gamma = gamma;
    }
    let bridge = EngineBridge::spawn(params.clone(), source.clone(), DEFAULT_STEPS_PER_FRAME, options.backend);
    let mut ui_state = UiState::new(params.clone(), source.clone(), DEFAULT_STEPS_PER_FRAME);
    if let Some(gamma) = options.gamma {
        ui_state.train_params.gamma = gamma;
    }
    if options.scene == Scene::Training {
        ui_state.scenario = panels::Scenario::Training;
        ui_state.source = Source::DigitsPixels;
        bridge.send(Command::StartTraining { params: ui_state.train_params.clone(), source: Source::DigitsPixels });
    }
    let mut comparison = Comparison::default();
    comparison.backend = options.backend;
    if let Some(variation) = options.compare {
        comparison.variation = variation;
        comparison.start(&params, &source, DEFAULT_STEPS_PER_FRAME);
    }

    let mut app = App::new();
    app.add_plugins(DefaultPlugins.build().disable::<bevy::log::LogPlugin>().set(WindowPlugin {
        primary_window: Some(Window {
            title: "eccentric: latent dynamics under eccentric regularization".into(),
            resolution: WindowResolution::new(1500, 900),
            ..default()
        }),
        ..default()
    }))
    .add_plugins(EguiPlugin::default())
    .add_plugins(ScenePlugin)
    .insert_resource(ClearColor(Color::srgb(0.06, 0.07, 0.09)))
    .insert_resource(bridge)
    .insert_resource(ui_state)
    .init_resource::<PanelLayout>()
    .insert_resource(comparison)
    .add_systems(EguiPrimaryContextPass, draw_panels)
    .add_systems(Update, keyboard_shortcuts.run_if(not(egui_wants_any_keyboard_input)));

    if let Some(path) = options.screenshot {
        app.insert_resource(ScreenshotRequest { path, after_seconds: options.exit_after_seconds, taken: false })
            .add_systems(Update, take_screenshot_and_exit);
    }
    app.run();
}

/// Space plays or pauses, S takes one batch of steps, R resets.
fn keyboard_shortcuts(
    keys: Res<ButtonInput<KeyCode>>,
    bridge: Res<EngineBridge>,
    mut comparison: ResMut<Comparison>,
    shown: Res<scene::ShownSnapshot>,
    mut state: ResMut<UiState>,
    mut orbit: ResMut<OrbitCamera>,
) {
    if keys.just_pressed(KeyCode::Space) {
        let playing = shown.0.as_ref().is_some_and(|s| s.playing);
        bridge.send(Command::Play(!playing));
        comparison.send(Command::Play(!playing));
    }
    if keys.just_pressed(KeyCode::KeyS) {
        bridge.send(Command::Step);
        comparison.send(Command::Step);
    }
    if keys.just_pressed(KeyCode::KeyR) {
        state.reset(&bridge, &mut comparison, &mut orbit);
    }
}

#[derive(Resource)]
struct ScreenshotRequest {
    path: PathBuf,
    after_seconds: f64,
    taken: bool,
}

/// Saves one screenshot once the app has run for the requested time, then exits.
fn take_screenshot_and_exit(time: Res<Time>, mut request: ResMut<ScreenshotRequest>, mut commands: Commands) {
    if request.taken || time.elapsed_secs_f64() < request.after_seconds {
        return;
    }
    request.taken = true;
    let path = request.path.clone();
    commands.spawn(Screenshot::primary_window()).observe(
        move |captured: On<ScreenshotCaptured>, mut exit: MessageWriter<AppExit>| {
            let saved = captured
                .image
                .clone()
                .try_into_dynamic()
                .map_err(|e| e.to_string())
                .and_then(|image| image.to_rgb8().save(&path).map_err(|e| e.to_string()));
            match saved {
                Ok(()) => {
                    info!(path = %path.display(), "screenshot saved");
                    exit.write(AppExit::Success);
                }
                Err(error) => {
                    error!(path = %path.display(), %error, "screenshot could not be saved");
                    exit.write(AppExit::error());
                }
            }
        },
    );
}
