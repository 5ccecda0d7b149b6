//! The model against analytic results: gradients against finite differences, the virial
//! identity at equilibrium, and the thin shell that theory predicts for s = -1 in three
//! dimensions.

use eccentric::engine::{CpuEngine, sample_start};
use eccentric::metrics::{Readouts, radius_stats};
use eccentric::model::{Kernel, Model, Points, Task, energy, gradient};
use eccentric::params::{InitKind, Params};

/// Central differences in f64 with a step of 1e-5 carry a truncation error near 1e-10 and a
/// rounding error near 1e-11 relative, so 1e-6 leaves a wide margin while still catching any
/// missing factor or sign.
const GRADIENT_TOLERANCE: f64 = 1e-6;
const FINITE_DIFFERENCE_STEP: f64 = 1e-5;

/// How close the two sides of the virial identity must be once gradient descent has converged.
const VIRIAL_TOLERANCE: f64 = 1e-4;

/// Relative radius spread of a converged thin shell.
const SHELL_SPREAD_TOLERANCE: f64 = 1e-3;

fn finite_difference_gradient(model: &Model, anchors: Option<&Points>, points: &Points) -> Vec<f64> {
    let task = |_: &Points| match anchors {
        Some(anchors) => Task::Anchors(anchors),
        None => Task::None,
    };
    let mut shifted = points.clone();
    let mut result = Vec::with_capacity(points.as_slice().len());
    for k in 0..points.as_slice().len() {
        let original = points.as_slice()[k];
        shifted.as_mut_slice()[k] = original + FINITE_DIFFERENCE_STEP;
        let plus = energy(model, task(points), &shifted).energy.total();
        shifted.as_mut_slice()[k] = original - FINITE_DIFFERENCE_STEP;
        let minus = energy(model, task(points), &shifted).energy.total();
        shifted.as_mut_slice()[k] = original;
        result.push((plus - minus) / (2.0 * FINITE_DIFFERENCE_STEP));
    }
    result
}

fn relative_error(a: &[f64], b: &[f64]) -> f64 {
    let difference: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt();
    let scale: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    difference / scale
}

#[test]
fn gradient_matches_finite_difference() {
    for s in [-1.0, 0.0, 1.0, 2.0] {
        for dim in [2, 3, 7] {
            for with_anchors in [false, true] {
                let points = sample_start(InitKind::Gaussian, 9, dim, 7);
                let anchors = sample_start(InitKind::Uniform, 9, dim, 8);
                let model = Model { gamma: 0.7, lambda: 1.3, kernel: Kernel::new(s, 0.05) };
                let task = if with_anchors { Task::Anchors(&anchors) } else { Task::None };

                let analytic = gradient(&model, task, &points);
                let numeric = finite_difference_gradient(&model, with_anchors.then_some(&anchors), &points);
                let error = relative_error(analytic.as_slice(), &numeric);
                assert!(
                    error < GRADIENT_TOLERANCE,
                    "s={s} d={dim} anchors={with_anchors}: relative error {error:e}"
                );
            }
        }
    }
}

#[test]
fn gradient_matches_without_softening() {
    let points = sample_start(InitKind::Gaussian, 12, 3, 21);
    for s in [-1.0, 0.0, 1.0, 2.0] {
        let model = Model { gamma: 1.0, lambda: 1.0, kernel: Kernel::new(s, 0.0) };
        let analytic = gradient(&model, Task::None, &points);
        let numeric = finite_difference_gradient(&model, None, &points);
        let error = relative_error(analytic.as_slice(), &numeric);
        assert!(error < GRADIENT_TOLERANCE, "s={s}: relative error {error:e}");
    }
}

fn converge(params: Params, start: Points, steps: u64) -> CpuEngine {
    let mut engine = CpuEngine::new(params, start).expect("valid parameters");
    for _ in 0..steps {
        engine.step().expect("run stays finite");
    }
    engine
}

#[test]
fn virial_identity_holds_at_equilibrium() {
    let lambda = 2.0;
    let params = Params { kernel_s: 0.0, lambda, softening: 0.0, lr: 0.2, ..Params::default() };
    let engine = converge(params, sample_start(InitKind::Gaussian, 120, 3, 3), 3000);

    let evaluation = engine.evaluate();
    let ratio = evaluation.virial_ratio();
    assert!((ratio - 1.0).abs() < VIRIAL_TOLERANCE, "virial ratio {ratio}");

    // Without softening the repulsion side is exactly 1 for s = 0, so mean |z|^2 = 1/lambda.
    let mean_square = radius_stats(engine.positions()).rms.powi(2);
    assert!((mean_square * lambda - 1.0).abs() < VIRIAL_TOLERANCE, "mean |z|^2 = {mean_square}");
}

#[test]
fn sphere_regime_gives_thin_shell() {
    let params = Params { kernel_s: -1.0, softening: 0.0, lr: 0.2, ..Params::default() };
    let engine = converge(params.clone(), sample_start(InitKind::Gaussian, 300, 3, 1), 3000);
    let readouts = Readouts::compute(engine.params(), engine.positions(), None, engine.step_index());
    assert!(readouts.radius_rel_std < SHELL_SPREAD_TOLERANCE, "radius std/mean {}", readouts.radius_rel_std);

    // The shell radius balances attraction against the mean chord 4r/3 of a uniform sphere.
    let expected_radius = 4.0 / (3.0 * params.lambda);
    assert!((readouts.radius_mean / expected_radius - 1.0).abs() < 0.02, "radius {}", readouts.radius_mean);
}

#[test]
fn ball_regime_keeps_radial_spread() {
    // s = 1 in three dimensions (Coulomb-like, s > d - 4) fills a ball rather than a shell.
    let params = Params { kernel_s: 1.0, softening: 0.0, lr: 0.1, ..Params::default() };
    let engine = converge(params, sample_start(InitKind::Gaussian, 300, 3, 1), 1500);
    let spread = radius_stats(engine.positions()).rel_std;
    assert!(spread > 0.1, "radius std/mean {spread} should stay large in the ball regime");
}

#[test]
fn anchors_keep_data_shape_at_small_gamma() {
    let start = sample_start(InitKind::Uniform, 100, 3, 5);
    let small = Params { gamma: 0.01, task: eccentric::params::TaskKind::Anchors, ..Params::default() };
    let engine = converge(small, start.clone(), 500);
    let moved: f64 = engine
        .positions()
        .as_slice()
        .iter()
        .zip(start.as_slice())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(moved < 0.1, "anchored points moved {moved} at gamma = 0.01");
}
