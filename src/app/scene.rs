//! The 3D scene: camera with orbit, zoom and pan, a light, and one mesh that holds every
//! particle, rebuilt from each new snapshot.

use bevy::asset::RenderAssetUsages;
use bevy::camera::visibility::RenderLayers;
use bevy::camera::{CameraOutputMode, Viewport};
use bevy::input::mouse::{AccumulatedMouseMotion, AccumulatedMouseScroll};
use bevy::mesh::{Indices, PrimitiveTopology};
use bevy::prelude::*;
use bevy::render::render_resource::BlendState;
use bevy_egui::input::egui_wants_any_pointer_input;
use bevy_egui::{EguiGlobalSettings, PrimaryEguiContext};

use super::bridge::{EngineBridge, Snapshot};
use super::compare::Comparison;
use super::panels::PanelLayout;

pub struct ScenePlugin;

impl Plugin for ScenePlugin {
    fn build(&self, app: &mut App) {
        app.init_resource::<OrbitCamera>()
            .init_resource::<ShownSnapshot>()
            .init_resource::<ShownComparison>()
            .init_resource::<HoveredParticle>()
            .add_systems(Startup, setup_scene)
            .add_systems(
                Update,
                (
                    take_snapshot,
                    rebuild_particle_mesh,
                    orbit_camera.run_if(not(egui_wants_any_pointer_input)),
                    place_camera,
                    fit_viewport_to_panels,
                    draw_axes,
                    pick_hovered_particle,
                )
                    .chain(),
            );
    }
}

/// Orbit camera state: angles in radians, distance in scene units.
#[derive(Resource)]
pub struct OrbitCamera {
    pub yaw: f32,
    pub pitch: f32,
    pub distance: f32,
    pub target: Vec3,
    /// Top-down view without rotation, for d = 2.
    pub flat: bool,
    /// Set to fit the view to the cloud on the next snapshot.
    pub fit_requested: bool,
    /// Keep the view fitted as the cloud grows or shrinks, until the user zooms or pans.
    pub follow: bool,
}

impl Default for OrbitCamera {
    fn default() -> Self {
        Self { yaw: 0.6, pitch: 0.4, distance: 6.0, target: Vec3::ZERO, flat: false, fit_requested: true, follow: true }
    }
}

/// The snapshot on screen.
#[derive(Resource, Default)]
pub struct ShownSnapshot(pub Option<std::sync::Arc<Snapshot>>);

/// The snapshot of the second simulation on screen, in the comparison view.
#[derive(Resource, Default)]
pub struct ShownComparison(pub Option<std::sync::Arc<Snapshot>>);

/// Index of the particle under the mouse cursor in the main view, if any.
#[derive(Resource, Default)]
pub struct HoveredParticle(pub Option<usize>);

/// Largest distance, in logical pixels, between the cursor and a particle it points at.
const PICK_RADIUS: f32 = 12.0;

/// Simulation that a camera or a particle mesh belongs to.
#[derive(Component, Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Main,
    Compared,
}

impl Side {
    fn layer(self) -> RenderLayers {
        match self {
            Side::Main => RenderLayers::layer(0),
            Side::Compared => RenderLayers::layer(1),
        }
    }
}

#[derive(Resource)]
struct ParticleMeshes {
    main: Handle<Mesh>,
    compared: Handle<Mesh>,
}

#[derive(Component)]
struct MainCamera;

/// Colors of labels 0 to 9 (matplotlib's tab10, as sRGB).
pub const LABEL_COLORS: [[u8; 3]; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// Color of particles without a label.
const PLAIN_COLOR: [u8; 3] = [240, 150, 60];

pub fn label_color(label: Option<i64>) -> [u8; 3] {
    match label {
        Some(l) if l >= 0 => LABEL_COLORS[(l as usize) % LABEL_COLORS.len()],
        Some(_) => [150, 150, 150],
        None => PLAIN_COLOR,
    }
}

fn setup_scene(
    mut commands: Commands,
    mut meshes: ResMut<Assets<Mesh>>,
    mut materials: ResMut<Assets<StandardMaterial>>,
    mut egui_settings: ResMut<EguiGlobalSettings>,
) {
    for (side, order) in [(Side::Main, 0), (Side::Compared, -1)] {
        commands.spawn((
            Camera3d::default(),
            Camera { order, is_active: side == Side::Main, ..default() },
            MainCamera,
            side,
            side.layer(),
            Transform::from_xyz(0.0, 0.0, 6.0).looking_at(Vec3::ZERO, Vec3::Y),
        ));
    }

    // egui gets a camera of its own that covers the whole window: the 3D camera's viewport
    // shrinks to the space between the panels, and egui drawn through it would shrink too.
    egui_settings.auto_create_primary_context = false;
    commands.spawn((
        PrimaryEguiContext,
        Camera2d,
        RenderLayers::none(),
        Camera {
            order: 1,
            output_mode: CameraOutputMode::Write {
                blend_state: Some(BlendState::ALPHA_BLENDING),
                clear_color: ClearColorConfig::None,
            },
            clear_color: ClearColorConfig::Custom(Color::NONE),
            ..default()
        },
    ));

    commands.spawn((
        DirectionalLight { illuminance: 6000.0, ..default() },
        Transform::from_xyz(3.0, 5.0, 4.0).looking_at(Vec3::ZERO, Vec3::Y),
        RenderLayers::from_layers(&[0, 1]),
    ));
    commands.insert_resource(GlobalAmbientLight { brightness: 600.0, ..default() });

    let material = materials.add(StandardMaterial { base_color: Color::WHITE, perceptual_roughness: 0.7, ..default() });
    let mut handles = Vec::new();
    for side in [Side::Main, Side::Compared] {
        let mesh = meshes.add(Mesh::new(PrimitiveTopology::TriangleList, RenderAssetUsages::default()));
        commands.spawn((Mesh3d(mesh.clone()), MeshMaterial3d(material.clone()), Transform::default(), side, side.layer()));
        handles.push(mesh);
    }
    commands.insert_resource(ParticleMeshes { main: handles[0].clone(), compared: handles[1].clone() });
}

fn take_snapshot(
    bridge: Res<EngineBridge>,
    comparison: Res<Comparison>,
    mut shown: ResMut<ShownSnapshot>,
    mut shown_comparison: ResMut<ShownComparison>,
) {
    if let Some(latest) = bridge.latest() {
        let is_new = shown.0.as_ref().is_none_or(|s| s.serial != latest.serial);
        if is_new {
            shown.0 = Some(latest);
        }
    }
    match comparison.bridge.as_ref().and_then(|b| b.latest()) {
        Some(latest) => {
            let is_new = shown_comparison.0.as_ref().is_none_or(|s| s.serial != latest.serial);
            if is_new {
                shown_comparison.0 = Some(latest);
            }
        }
        None if shown_comparison.0.is_some() && !comparison.is_on() => shown_comparison.0 = None,
        None => {}
    }
}

/// Vertices of a unit icosahedron, the shape drawn for each particle.
fn icosahedron() -> ([Vec3; 12], [[u32; 3]; 20]) {
    let t = (1.0 + 5f32.sqrt()) / 2.0;
    let raw = [
        [-1.0, t, 0.0],
        [1.0, t, 0.0],
        [-1.0, -t, 0.0],
        [1.0, -t, 0.0],
        [0.0, -1.0, t],
        [0.0, 1.0, t],
        [0.0, -1.0, -t],
        [0.0, 1.0, -t],
        [t, 0.0, -1.0],
        [t, 0.0, 1.0],
        [-t, 0.0, -1.0],
        [-t, 0.0, 1.0],
    ];
    let vertices = raw.map(|v| Vec3::from_array(v).normalize());
    let faces = [
        [0, 11, 5],
        [0, 5, 1],
        [0, 1, 7],
        [0, 7, 10],
        [0, 10, 11],
        [1, 5, 9],
        [5, 11, 4],
        [11, 10, 2],
        [10, 7, 6],
        [7, 1, 8],
        [3, 9, 4],
        [3, 4, 2],
        [3, 2, 6],
        [3, 6, 8],
        [3, 8, 9],
        [4, 9, 5],
        [2, 4, 11],
        [6, 2, 10],
        [8, 6, 7],
        [9, 8, 1],
    ];
    (vertices, faces)
}

/// Particle radius as a fraction of the cloud's root mean square radius.
const PARTICLE_SIZE: f32 = 0.022;

fn rebuild_particle_mesh(
    shown: Res<ShownSnapshot>,
    shown_comparison: Res<ShownComparison>,
    particle_meshes: Res<ParticleMeshes>,
    mut meshes: ResMut<Assets<Mesh>>,
    mut orbit: ResMut<OrbitCamera>,
    layout: Res<PanelLayout>,
    comparison: Res<Comparison>,
    window: Single<&Window>,
) {
    if shown.is_changed()
        && let Some(snapshot) = shown.0.as_ref()
    {
        // Width over height of one 3D view: half the free width in the comparison view.
        let free_width = (window.width() - layout.left - layout.right).max(1.0);
        let width = if comparison.is_on() { free_width / 2.0 } else { free_width };
        let aspect = width / (window.height() - layout.bottom).max(1.0);
        fit_orbit(&mut orbit, snapshot, aspect);
        if let Some(mut mesh) = meshes.get_mut(&particle_meshes.main) {
            fill_particle_mesh(&mut mesh, snapshot);
        }
    }
    // Without a comparison the second camera is inactive, so its mesh can keep old content.
    if shown_comparison.is_changed()
        && let Some(snapshot) = shown_comparison.0.as_ref()
        && let Some(mut mesh) = meshes.get_mut(&particle_meshes.compared)
    {
        fill_particle_mesh(&mut mesh, snapshot);
    }
}

/// Root mean square distance of the display points from the origin.
fn display_rms(points: &[[f32; 3]]) -> f32 {
    let count = points.len().max(1) as f32;
    (points.iter().map(|p| Vec3::from_array(*p).length_squared()).sum::<f32>() / count).sqrt().max(1e-6)
}

fn fit_orbit(orbit: &mut OrbitCamera, snapshot: &Snapshot, aspect: f32) {
    orbit.flat = snapshot.dim <= 2;
    if !orbit.fit_requested && !orbit.follow {
        return;
    }
    // Frame the 95th percentile of the radii: Bevy's default vertical field of view is 45
    // degrees, and 1/tan(22.5 degrees) is about 2.4, plus a margin. A view narrower than it is
    // tall sees less horizontally, so the distance grows by the inverse aspect.
    let points = &snapshot.display;
    let mut radii: Vec<f32> = points.iter().map(|p| Vec3::from_array(*p).length()).collect();
    radii.sort_by(f32::total_cmp);
    let extent = radii.get(radii.len() * 95 / 100).copied().unwrap_or(display_rms(points)).max(1e-3);
    let fitted = 2.9 * extent / aspect.clamp(0.2, 1.0);
    if orbit.fit_requested {
        orbit.distance = fitted;
        orbit.target = Vec3::ZERO;
        orbit.fit_requested = false;
        orbit.follow = true;
    } else {
        // Ease towards the fitted distance so the picture does not jump.
        orbit.distance += 0.1 * (fitted - orbit.distance);
    }
}

/// Rebuilds `mesh` with one small icosahedron per particle, colored by label.
fn fill_particle_mesh(mesh: &mut Mesh, snapshot: &Snapshot) {
    let points = &snapshot.display;
    let size = PARTICLE_SIZE * display_rms(points);
    let (unit, faces) = icosahedron();
    let mut positions = Vec::with_capacity(points.len() * 12);
    let mut normals = Vec::with_capacity(points.len() * 12);
    let mut colors = Vec::with_capacity(points.len() * 12);
    let mut indices = Vec::with_capacity(points.len() * 60);
    for (i, p) in points.iter().enumerate() {
        let center = Vec3::from_array(*p);
        let label = snapshot.labels.as_ref().map(|l| l.get(i).copied().unwrap_or(-1));
        let [r, g, b] = label_color(label);
        let color = Color::srgb_u8(r, g, b).to_linear().to_f32_array();
        let base = positions.len() as u32;
        for v in unit {
            positions.push((center + v * size).to_array());
            normals.push(v.to_array());
            colors.push(color);
        }
        for face in faces {
            indices.extend(face.iter().map(|k| base + k));
        }
    }
    mesh.insert_attribute(Mesh::ATTRIBUTE_POSITION, positions);
    mesh.insert_attribute(Mesh::ATTRIBUTE_NORMAL, normals);
    mesh.insert_attribute(Mesh::ATTRIBUTE_COLOR, colors);
    mesh.insert_indices(Indices::U32(indices));
}

/// Left drag rotates (pans in the flat view), right or middle drag pans, the wheel zooms.
fn orbit_camera(
    buttons: Res<ButtonInput<MouseButton>>,
    motion: Res<AccumulatedMouseMotion>,
    scroll: Res<AccumulatedMouseScroll>,
    mut orbit: ResMut<OrbitCamera>,
) {
    let delta = motion.delta;
    let rotating = buttons.pressed(MouseButton::Left) && !orbit.flat;
    let panning = buttons.pressed(MouseButton::Right)
        || buttons.pressed(MouseButton::Middle)
        || (buttons.pressed(MouseButton::Left) && orbit.flat);

    if rotating {
        orbit.yaw -= delta.x * 0.008;
        orbit.pitch = (orbit.pitch + delta.y * 0.008).clamp(-1.5, 1.5);
    }
    if panning || scroll.delta.y != 0.0 {
        orbit.follow = false;
    }
    if panning {
        let rotation = orbit_rotation(&orbit);
        let scale = orbit.distance * 0.0015;
        let shift = rotation * Vec3::new(-delta.x * scale, delta.y * scale, 0.0);
        orbit.target += shift;
    }
    if scroll.delta.y != 0.0 {
        orbit.distance = (orbit.distance * (1.0 - 0.1 * scroll.delta.y.clamp(-5.0, 5.0))).clamp(0.01, 1e5);
    }
}

fn orbit_rotation(orbit: &OrbitCamera) -> Quat {
    if orbit.flat { Quat::IDENTITY } else { Quat::from_euler(EulerRot::YXZ, orbit.yaw, -orbit.pitch, 0.0) }
}

fn place_camera(orbit: Res<OrbitCamera>, mut cameras: Query<&mut Transform, With<MainCamera>>) {
    let rotation = orbit_rotation(&orbit);
    for mut camera in &mut cameras {
        camera.translation = orbit.target + rotation * Vec3::new(0.0, 0.0, orbit.distance);
        camera.rotation = rotation;
    }
}

/// Restricts the 3D view to the part of the window that the side panels leave free, split in
/// two halves in the comparison view.
fn fit_viewport_to_panels(
    layout: Res<PanelLayout>,
    comparison: Res<Comparison>,
    window: Single<&Window>,
    mut cameras: Query<(&mut Camera, &Side), With<MainCamera>>,
) {
    let scale = window.scale_factor();
    let left = (layout.left * scale) as u32;
    let right = (layout.right * scale) as u32;
    let bottom = (layout.bottom * scale) as u32;
    let width = window.physical_width();
    let height = window.physical_height();
    let fits = left + right + 16 < width && bottom + 16 < height;
    let comparing = comparison.is_on();

    for (mut camera, side) in &mut cameras {
        camera.is_active = *side == Side::Main || comparing;
        if !fits {
            camera.viewport = None;
            continue;
        }
        let free = width - left - right;
        let (x, w) = match (comparing, side) {
            (false, _) => (left, free),
            (true, Side::Main) => (left, free / 2),
            (true, Side::Compared) => (left + free / 2, free - free / 2),
        };
        camera.viewport = Some(Viewport {
            physical_position: UVec2::new(x, 0),
            physical_size: UVec2::new(w.max(1), height - bottom),
            ..default()
        });
    }
}

/// Draws short coordinate axes at the origin (red x, green y, blue z).
fn draw_axes(mut gizmos: Gizmos, orbit: Res<OrbitCamera>) {
    let length = orbit.distance * 0.12;
    gizmos.line(Vec3::ZERO, Vec3::X * length, Color::srgb(0.9, 0.3, 0.3));
    gizmos.line(Vec3::ZERO, Vec3::Y * length, Color::srgb(0.3, 0.8, 0.3));
    if !orbit.flat {
        gizmos.line(Vec3::ZERO, Vec3::Z * length, Color::srgb(0.3, 0.5, 0.95));
    }
}

/// Finds the particle nearest to the cursor on screen, within [`PICK_RADIUS`].
fn pick_hovered_particle(
    shown: Res<ShownSnapshot>,
    window: Single<&Window>,
    cameras: Query<(&Camera, &GlobalTransform, &Side), With<MainCamera>>,
    mut hovered: ResMut<HoveredParticle>,
) {
    let (Some(cursor), Some(snapshot)) = (window.cursor_position(), shown.0.as_ref()) else {
        hovered.0 = None;
        return;
    };
    let Some((camera, transform, _)) = cameras.iter().find(|(_, _, side)| **side == Side::Main) else { return };
    let origin = camera.logical_viewport_rect().map(|r| r.min).unwrap_or(Vec2::ZERO);
    let target = cursor - origin;
    let mut best: Option<(usize, f32)> = None;
    for (i, p) in snapshot.display.iter().enumerate() {
        if let Ok(screen) = camera.world_to_viewport(transform, Vec3::from_array(*p)) {
            let distance = screen.distance(target);
            if distance < PICK_RADIUS && best.is_none_or(|(_, d)| distance < d) {
                best = Some((i, distance));
            }
        }
    }
    hovered.0 = best.map(|(i, _)| i);
}
