//! Optimizers, mini-batches and the explicit-projection baseline against known minima.

use eccentric::engine::{CpuEngine, sample_start};
use eccentric::model::Points;
use eccentric::model::points::{dist2, norm2};
use eccentric::params::{InitKind, OptimizerKind, Params, TaskKind};

/// Minimum energies of the Thomson problem (pair sum of 1/r on the unit sphere) for N = 2, 3, 4,
/// 6 and 12: the dipole, triangle, tetrahedron, octahedron and icosahedron.
const THOMSON: [(usize, f64); 5] = [(2, 0.5), (3, 1.732050808), (4, 3.674234614), (6, 9.985281374), (12, 49.165253058)];

/// The published values carry ten significant digits; 1e-6 relative checks the minimum found.
const THOMSON_TOLERANCE: f64 = 1e-6;

/// Angles of a converged regular tetrahedron, in radians.
const ANGLE_TOLERANCE: f64 = 1e-4;

fn run(params: Params, start: Points, steps: usize) -> CpuEngine {
    let mut engine = CpuEngine::new(params, start).expect("valid parameters");
    for _ in 0..steps {
        engine.step().expect("run stays finite");
    }
    engine
}

/// Pair sum of 1/r over unordered pairs.
fn coulomb_pair_sum(points: &Points) -> f64 {
    let mut sum = 0.0;
    for i in 0..points.n() {
        for j in i + 1..points.n() {
            sum += 1.0 / dist2(points.row(i), points.row(j)).sqrt();
        }
    }
    sum
}

#[test]
fn projection_finds_thomson_minima() {
    for (n, known) in THOMSON {
        let params = Params { kernel_s: 1.0, softening: 0.0, lr: 0.05, project_sphere: true, ..Params::default() };
        let best = (0..4)
            .map(|seed| {
                let engine = run(Params { seed, ..params.clone() }, sample_start(InitKind::Gaussian, n, 3, seed), 4000);
                for row in engine.positions().rows() {
                    assert!((norm2(row) - 1.0).abs() < 1e-12, "points stay on the unit sphere");
                }
                coulomb_pair_sum(engine.positions())
            })
            .fold(f64::INFINITY, f64::min);
        let error = (best - known).abs() / known;
        assert!(error < THOMSON_TOLERANCE, "N={n}: found {best:.9}, known {known}, relative error {error:e}");
    }
}

#[test]
fn eccentric_four_points_form_tetrahedron() {
    let params = Params { kernel_s: -1.0, softening: 0.0, lr: 0.1, ..Params::default() };
    let engine = run(params, sample_start(InitKind::Gaussian, 4, 3, 2), 4000);
    let points = engine.positions();
    let expected = (-1.0f64 / 3.0).acos();
    for i in 0..4 {
        for j in i + 1..4 {
            let (a, b) = (points.row(i), points.row(j));
            let cosine = a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>() / (norm2(a) * norm2(b)).sqrt();
            let angle = cosine.clamp(-1.0, 1.0).acos();
            assert!((angle - expected).abs() < ANGLE_TOLERANCE, "pair ({i}, {j}): angle {angle}, expected {expected}");
        }
    }
}

#[test]
fn momentum_and_adam_reach_gradient_descent_minimum() {
    // Ten points, s = 0, d = 2: a small case whose minimum all three optimizers reach.
    let start = sample_start(InitKind::Gaussian, 10, 2, 11);
    let base = Params { kernel_s: 0.0, softening: 0.0, ..Params::default() };
    let gd = run(Params { lr: 0.1, ..base.clone() }, start.clone(), 4000).evaluate().energy.total();
    let momentum = run(Params { optimizer: OptimizerKind::Momentum, lr: 0.02, momentum: 0.9, ..base.clone() }, start.clone(), 4000)
        .evaluate()
        .energy
        .total();
    let adam = run(Params { optimizer: OptimizerKind::Adam, lr: 0.002, ..base.clone() }, start.clone(), 8000).evaluate().energy.total();

    assert!((momentum - gd).abs() < 1e-8 * gd.abs(), "momentum {momentum} vs gradient descent {gd}");
    assert!((adam - gd).abs() < 1e-6 * gd.abs(), "adam {adam} vs gradient descent {gd}");
}

#[test]
fn minibatch_runs_repeat_for_a_seed() {
    let params = Params { batch_size: 16, seed: 5, ..Params::default() };
    let start = sample_start(InitKind::Gaussian, 64, 3, 5);
    let first = run(params.clone(), start.clone(), 50);
    let second = run(params.clone(), start.clone(), 50);
    assert_eq!(first.positions(), second.positions());

    let other_seed = run(Params { seed: 6, ..params }, start, 50);
    assert_ne!(first.positions(), other_seed.positions(), "another seed draws other batches");
}

#[test]
fn minibatch_moves_only_batch_members() {
    let params = Params { batch_size: 8, ..Params::default() };
    let start = sample_start(InitKind::Gaussian, 40, 3, 9);
    let engine = run(params, start.clone(), 1);
    let moved = (0..40).filter(|&i| engine.positions().row(i) != start.row(i)).count();
    assert_eq!(moved, 8);
}

#[test]
fn langevin_temperature_spreads_shell() {
    let base = Params { kernel_s: -1.0, optimizer: OptimizerKind::Langevin, lr: 0.2, ..Params::default() };
    let start = sample_start(InitKind::Gaussian, 200, 3, 3);
    let cold = run(Params { temperature: 0.0, ..base.clone() }, start.clone(), 1500);
    let hot = run(Params { temperature: 0.01, ..base }, start, 1500);
    let spread = |engine: &CpuEngine| eccentric::metrics::radius_stats(engine.positions()).rel_std;
    assert!(spread(&hot) > 5.0 * spread(&cold), "hot {} vs cold {}", spread(&hot), spread(&cold));
}

#[test]
fn eccentricity_falls_as_gamma_rises() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/data/digits_ae_latent16.npy");
    let data = eccentric::io::load_points(&path).unwrap().points;
    let eccentricities: Vec<f64> = [0.1, 1.0, 10.0]
        .iter()
        .map(|&gamma| {
            let params = Params { gamma, task: TaskKind::Anchors, lr: 0.05, ..Params::default() };
            let engine = run(params, data.clone(), 200);
            eccentric::metrics::eccentricity(&eccentric::metrics::covariance_spectrum(engine.positions()))
        })
        .collect();
    assert!(eccentricities[1] < eccentricities[0], "{eccentricities:?}");
    assert!(eccentricities[2] < eccentricities[1], "{eccentricities:?}");
}
