//! Autoencoder training with eccentric regularization on the built-in digits: loss goes down,
//! a linear autoencoder finds the principal components, a large scaling factor makes the codes
//! hyperspherical, runs repeat for a seed, and `eccentric train` writes files that read back.

use std::path::Path;
use std::process::Command;

use eccentric::metrics::radius_stats;
use eccentric::train::images::LatentFit;
use eccentric::train::run::load_training_data;
use eccentric::train::{TrainParams, Trainer};
use nalgebra::{DMatrix, SymmetricEigen};

/// Absolute cosine between a decoded latent axis and the matching principal component of the
/// data that counts as lined up.
const ALIGNMENT_THRESHOLD: f64 = 0.9;

fn digits() -> DMatrix<f64> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/data/digits.csv");
    load_training_data(&path, None).expect("the digits load").0
}

fn train(params: TrainParams, data: &DMatrix<f64>) -> Trainer {
    let mut trainer = Trainer::new(params.clone(), data).expect("valid parameters");
    let steps = params.epochs * trainer.batches_per_epoch();
    for _ in 0..steps {
        trainer.train_step();
    }
    trainer
}

#[test]
fn training_lowers_reconstruction_loss() {
    let data = digits();
    let params = TrainParams { epochs: 5, ..TrainParams::default() };
    let untrained = Trainer::new(params.clone(), &data).unwrap().reconstruction_loss();
    let trained = train(params, &data).reconstruction_loss();
    assert!(trained < 0.6 * untrained, "loss {untrained} -> {trained}");
}

#[test]
fn linear_autoencoder_finds_principal_components() {
    let data = digits();
    let params = TrainParams { hidden: 0, latent_dim: 4, gamma: 0.01, epochs: 200, ..TrainParams::default() };
    let trainer = train(params, &data);

    // Principal components of the (standardised) training data, largest first.
    let x = &trainer.data;
    let mean = x.row_mean();
    let centered = DMatrix::from_fn(x.nrows(), x.ncols(), |i, k| x[(i, k)] - mean[k]);
    let covariance = centered.transpose() * &centered / x.nrows() as f64;
    let eigen = SymmetricEigen::new(covariance);
    let mut order: Vec<usize> = (0..eigen.eigenvalues.len()).collect();
    order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));

    let codes = trainer.net.encode(x);
    let fit = LatentFit::new(&codes);
    let decoder = &trainer.net.decoder[0].weight;
    for k in 0..4 {
        let decoded = decoder * fit.axes.column(k);
        let component = eigen.eigenvectors.column(order[k]);
        let cosine = (decoded.dot(&component) / decoded.norm()).abs();
        assert!(cosine >= ALIGNMENT_THRESHOLD, "latent axis {k}: |cos| = {cosine:.3} with principal component {k}");
    }
    // The latent variances are ordered by importance, not equal.
    assert!(fit.variances[0] > 1.1 * fit.variances[3], "variances {:?}", fit.variances);
}

#[test]
fn large_gamma_makes_codes_hyperspherical() {
    let data = digits();
    let base = TrainParams { hidden: 32, latent_dim: 8, epochs: 30, ..TrainParams::default() };
    let small = train(TrainParams { gamma: 0.01, ..base.clone() }, &data);
    let large = train(TrainParams { gamma: 10.0, ..base }, &data);
    let spread_small = radius_stats(&small.latent_codes()).rel_std;
    let spread_large = radius_stats(&large.latent_codes()).rel_std;
    assert!(spread_large < 0.5 * spread_small, "radius std/mean: gamma 10 gives {spread_large}, gamma 0.01 gives {spread_small}");
}

#[test]
fn seeded_training_repeats() {
    let data = digits();
    let params = TrainParams { epochs: 1, seed: 3, ..TrainParams::default() };
    let first = train(params.clone(), &data).latent_codes();
    let second = train(params.clone(), &data).latent_codes();
    assert_eq!(first, second);
    let other = train(TrainParams { seed: 4, ..params }, &data).latent_codes();
    assert_ne!(first, other);
}

#[test]
fn train_command_writes_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("train");
    let output = Command::new(env!("CARGO_BIN_EXE_eccentric"))
        .args(["train", "--out", out.to_str().unwrap(), "--latent-dim", "3", "--epochs", "2", "--record-every", "5"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let bytes = std::fs::read(out.join("positions.npy")).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().to_vec();
    assert_eq!(&shape[1..], &[1797, 3]);

    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(metrics.lines().next().unwrap().ends_with(",reconstruction_loss"));
    assert_eq!(metrics.lines().count() as u64 - 1, shape[0], "one metrics row per frame");

    let weight = std::fs::read(out.join("weights/decoder_1_weight.npy")).unwrap();
    assert_eq!(npyz::NpyFile::new(&weight[..]).unwrap().shape(), &[64, 32]);

    let (width, height) = image::image_dimensions(out.join("principal_axes.png")).unwrap();
    assert!(width > 100, "grid image is {width}x{height}");
    assert!(height > 60, "grid image is {width}x{height}");

    let info: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(info["scenario"], "train");
    assert_eq!(info["params"]["standardize"], true);
    assert_eq!(info["complete"], true);
    // The built-in digits carry their labels in a column of the data file.
    assert!(out.join("labels.npy").exists());
    assert_eq!(info["labels"], info["input"], "labels come from the data file");
}

#[test]
fn train_rejects_bad_data() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "1,2\n3,x\n").unwrap();
    let out = dir.path().join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_eccentric"))
        .args(["train", "--out", out.to_str().unwrap(), "--data", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("'x' is not a number"));
    assert!(!out.exists());
}
