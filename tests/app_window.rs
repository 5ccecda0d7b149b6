//! The real app binary in a real window under Xvfb with the software Vulkan driver: it steps,
//! saves a screenshot and exits, and the screenshot must show particles.
//!
//! Needs `xvfb-run` and a Vulkan driver (Debian's xvfb and mesa-vulkan-drivers). Without them
//! the tests are skipped, unless `ECCENTRIC_REQUIRE_DISPLAY` is set, as CI does, which turns a
//! missing display into a failure.
#![cfg(feature = "app")]

use std::path::Path;
use std::process::Command;

/// Share of the 3D view's pixels that must differ from the background: 1000 particles on a
/// sphere cover far more, an empty scene none.
const MIN_PARTICLE_PIXELS: f64 = 0.02;

/// Channel distance from the clear color above which a pixel counts as drawn.
const PIXEL_THRESHOLD: i32 = 40;

fn display_available() -> bool {
    let found = Command::new("xvfb-run").arg("--help").output().is_ok();
    if !found {
        assert!(std::env::var_os("ECCENTRIC_REQUIRE_DISPLAY").is_none(), "xvfb-run is required but missing");
        eprintln!("skipped: xvfb-run not found (set ECCENTRIC_REQUIRE_DISPLAY=1 to make this fail)");
    }
    found
}

/// Runs the app with `args` until it saves `screenshot`, and returns its log.
fn run_app(args: &[&str], screenshot: &Path) -> String {
    let output = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1600x1000x24", env!("CARGO_BIN_EXE_eccentric")])
        .args(args)
        .args(["--screenshot", screenshot.to_str().unwrap()])
        .env("WGPU_BACKEND", "vulkan")
        .output()
        .expect("xvfb-run starts");
    let log = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the app failed:\n{log}");
    log
}

/// Share of pixels in the middle of the window (the 3D view) that differ from the clear color.
fn drawn_share(screenshot: &Path) -> f64 {
    let width = image::image_dimensions(screenshot).expect("the screenshot is a PNG").0;
    drawn_share_in(screenshot, width * 3 / 10, width * 7 / 10)
}

/// Share of pixels between columns `x0` and `x1` (middle three fifths of the height) that differ
/// from the clear color.
fn drawn_share_in(screenshot: &Path, x0: u32, x1: u32) -> f64 {
    let image = image::open(screenshot).expect("the screenshot is a PNG").to_rgb8();
    let height = image.height();
    let background = [15, 18, 23];
    let (y0, y1) = (height / 5, height * 4 / 5);
    let mut drawn = 0usize;
    let mut total = 0usize;
    for y in y0..y1 {
        for x in x0..x1 {
            let pixel = image.get_pixel(x, y).0;
            let distance = (0..3).map(|c| (pixel[c] as i32 - background[c]).abs()).max().unwrap();
            drawn += usize::from(distance > PIXEL_THRESHOLD);
            total += 1;
        }
    }
    drawn as f64 / total as f64
}

#[test]
fn default_scene_draws_particles() {
    if !display_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let screenshot = dir.path().join("default.png");
    let log = run_app(&["--exit-after", "6"], &screenshot);
    assert!(log.contains("screenshot saved"), "{log}");

    let share = drawn_share(&screenshot);
    assert!(share > MIN_PARTICLE_PIXELS, "only {:.2}% of the view is drawn", 100.0 * share);
    if let Some(keep) = std::env::var_os("ECCENTRIC_SCREENSHOT_DIR") {
        std::fs::copy(&screenshot, Path::new(&keep).join("default.png")).unwrap();
    }
}

#[test]
fn digits_scene_draws_particles() {
    if !display_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let screenshot = dir.path().join("digits.png");
    let log = run_app(&["--scene", "digits", "--exit-after", "6"], &screenshot);
    assert!(log.contains("digits autoencoder latent codes"), "{log}");

    let share = drawn_share(&screenshot);
    assert!(share > MIN_PARTICLE_PIXELS, "only {:.2}% of the view is drawn", 100.0 * share);
    if let Some(keep) = std::env::var_os("ECCENTRIC_SCREENSHOT_DIR") {
        std::fs::copy(&screenshot, Path::new(&keep).join("digits.png")).unwrap();
    }
}

#[test]
fn comparison_view_draws_both_halves() {
    if !display_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let screenshot = dir.path().join("compare.png");
    let log = run_app(&["--compare", "projection", "--exit-after", "6"], &screenshot);
    assert!(log.contains("comparison started"), "{log}");

    // The 3D view lies between the panels (about 21% and 78% of the width) and is split in two.
    let width = image::image_dimensions(&screenshot).unwrap().0;
    let left = drawn_share_in(&screenshot, width * 24 / 100, width * 48 / 100);
    let right = drawn_share_in(&screenshot, width * 52 / 100, width * 76 / 100);
    assert!(left > MIN_PARTICLE_PIXELS, "left half: only {:.2}% drawn", 100.0 * left);
    assert!(right > MIN_PARTICLE_PIXELS, "right half: only {:.2}% drawn", 100.0 * right);
}

/// Share of grey pixels brighter than `level` (r = g = b) in a region given as fractions of the
/// image's width and height.
fn bright_grey_share(screenshot: &Path, x: (f64, f64), y: (f64, f64), level: u8) -> f64 {
    let image = image::open(screenshot).unwrap().to_rgb8();
    let (width, height) = (image.width() as f64, image.height() as f64);
    let mut count = 0usize;
    let mut total = 0usize;
    for py in (y.0 * height) as u32..(y.1 * height) as u32 {
        for px in (x.0 * width) as u32..(x.1 * width) as u32 {
            let [r, g, b] = image.get_pixel(px, py).0;
            count += usize::from(r == g && g == b && r > level);
            total += 1;
        }
    }
    count as f64 / total as f64
}

#[test]
fn training_scene_draws_image_grid() {
    if !display_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let screenshot = dir.path().join("train.png");
    let log = run_app(&["--scene", "train", "--exit-after", "8"], &screenshot);
    assert!(log.contains("training started"), "{log}");

    let share = drawn_share(&screenshot);
    assert!(share > MIN_PARTICLE_PIXELS, "only {:.2}% of the view is drawn", 100.0 * share);
    // The principal-axis grid sits at the top of the right panel: decoded digits are bright grey
    // strokes, which the dark panel does not have.
    let grid = bright_grey_share(&screenshot, (0.78, 0.92), (0.21, 0.34), 150);
    assert!(grid > 0.03, "image grid not found: {:.2}% bright grey pixels", 100.0 * grid);
    if let Some(keep) = std::env::var_os("ECCENTRIC_SCREENSHOT_DIR") {
        std::fs::copy(&screenshot, Path::new(&keep).join("train.png")).unwrap();
    }
}

#[test]
fn gpu_backend_draws_particles() {
    if !display_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let screenshot = dir.path().join("gpu.png");
    let log = run_app(&["--backend", "gpu", "--exit-after", "8"], &screenshot);
    assert!(log.contains("simulation reset"), "the simulation did not start:\n{log}");
    assert!(log.contains("gpu ("), "the GPU engine did not start:\n{log}");

    let share = drawn_share(&screenshot);
    assert!(share > MIN_PARTICLE_PIXELS, "only {:.2}% of the view is drawn", 100.0 * share);
    if let Some(keep) = std::env::var_os("ECCENTRIC_SCREENSHOT_DIR") {
        std::fs::copy(&screenshot, Path::new(&keep).join("gpu.png")).unwrap();
    }
}
