//! The `eccentric` binary as a user runs it: a run on the digits latent codes read back from
//! disk, and every kind of bad input rejected with exit status 2 and nothing written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn eccentric(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eccentric")).args(args).output().expect("the binary runs")
}

fn asset(relative: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets").join(relative).display().to_string()
}

fn read_npy_f32(path: &Path) -> (Vec<u64>, Vec<f32>) {
    let bytes = std::fs::read(path).expect("positions.npy exists");
    let npy = npyz::NpyFile::new(&bytes[..]).expect("valid NPY");
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec::<f32>().expect("float32 data"))
}

#[test]
fn run_on_digits_latent_codes_writes_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("digits_run");
    let output = eccentric(&[
        "run",
        "--input",
        &asset("data/digits_ae_latent16.npy"),
        "--labels",
        &asset("data/digits_labels.npy"),
        "--out",
        out.to_str().unwrap(),
        "--task",
        "anchors",
        "--steps",
        "20",
        "--record-every",
        "5",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "stderr: {stderr}");
    // The log goes to a pipe here, as to a file, so it carries no terminal colour codes.
    assert!(stderr.contains("run finished"), "stderr: {stderr:?}");
    assert!(!stderr.contains('\x1b'), "stderr: {stderr:?}");

    let (shape, values) = read_npy_f32(&out.join("positions.npy"));
    assert_eq!(shape, vec![5, 1797, 16]);
    assert!(values.iter().all(|x| x.is_finite()));

    // The first frame is the input itself, stored as float32.
    let input = std::fs::read(asset("data/digits_ae_latent16.npy")).unwrap();
    let original = npyz::NpyFile::new(&input[..]).unwrap().into_vec::<f32>().unwrap();
    assert_eq!(&values[..original.len()], &original[..]);

    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let mut lines = metrics.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("step,energy_total,energy_attraction,energy_repulsion,energy_task,radius_mean,radius_rel_std,eccentricity,virial_ratio"));
    let steps: Vec<u64> = lines.map(|line| line.split(',').next().unwrap().parse().unwrap()).collect();
    assert_eq!(steps, vec![0, 5, 10, 15, 20]);

    let info: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(info["complete"], true);
    assert_eq!(info["frame_steps"], serde_json::json!([0, 5, 10, 15, 20]));
    assert_eq!(info["input"]["file"], "digits_ae_latent16.npy");
    assert_eq!(info["input"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(info["labels"]["file"], "digits_labels.npy");
    assert_eq!(info["params"]["task"], "anchors");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));

    let labels = std::fs::read(out.join("labels.npy")).unwrap();
    let labels = npyz::NpyFile::new(&labels[..]).unwrap().into_vec::<i64>().unwrap();
    assert_eq!(labels.len(), 1797);
}

#[test]
fn run_directory_loads_with_numpy() {
    let has_numpy = Command::new("python3").args(["-c", "import numpy"]).status().is_ok_and(|s| s.success());
    if !has_numpy {
        assert!(std::env::var_os("ECCENTRIC_REQUIRE_NUMPY").is_none(), "numpy is required but python3 cannot import it");
        eprintln!("skipped: python3 with numpy not found (set ECCENTRIC_REQUIRE_NUMPY=1 to make this fail)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let output = eccentric(&["run", "--n", "50", "--dim", "4", "--steps", "30", "--record-every", "10", "--out", out.to_str().unwrap()]);
    assert!(output.status.success());

    let script = "import numpy as np, csv, json, sys\n\
        d = sys.argv[1]\n\
        p = np.load(d + '/positions.npy')\n\
        m = np.genfromtxt(d + '/metrics.csv', delimiter=',', names=True)\n\
        info = json.load(open(d + '/run.json'))\n\
        assert p.shape == (4, 50, 4) and p.dtype == np.float32, p.shape\n\
        assert len(m) == p.shape[0]\n\
        assert list(m['step']) == info['frame_steps']\n\
        r = np.linalg.norm(p[-1], axis=1)\n\
        assert abs(r.mean() - m['radius_mean'][-1]) < 1e-4 * r.mean(), (r.mean(), m['radius_mean'][-1])\n\
        print('ok')";
    let check = Command::new("python3").args(["-c", script, out.to_str().unwrap()]).output().unwrap();
    assert!(check.status.success(), "numpy check failed: {}", String::from_utf8_lossy(&check.stderr));
}

#[test]
fn existing_run_directory_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let args = ["run", "--n", "10", "--steps", "2", "--out", out.to_str().unwrap()];
    assert!(eccentric(&args).status.success());
    let before = std::fs::read(out.join("positions.npy")).unwrap();

    let again = eccentric(&["run", "--n", "12", "--steps", "2", "--out", out.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--overwrite"));
    assert_eq!(std::fs::read(out.join("positions.npy")).unwrap(), before);

    let forced = eccentric(&["run", "--n", "12", "--steps", "2", "--overwrite", "--out", out.to_str().unwrap()]);
    assert!(forced.status.success());
    let (shape, _) = read_npy_f32(&out.join("positions.npy"));
    assert_eq!(shape[1], 12);
}

/// One bad input: the files to create, the flags, and words the one-line error must contain.
struct BadInput {
    name: &'static str,
    files: Vec<(&'static str, Vec<u8>)>,
    args: Vec<&'static str>,
    expected: &'static [&'static str],
}

fn npy_bytes(descr: &str, shape: &str, payload: &[u8]) -> Vec<u8> {
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    bytes.extend_from_slice(dict.as_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

fn f64_payload(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn bad_inputs() -> Vec<BadInput> {
    vec![
        BadInput { name: "missing file", files: vec![], args: vec!["--input", "{dir}/absent.npy"], expected: &["absent.npy", "not found"] },
        BadInput {
            name: "unknown extension",
            files: vec![("points.txt", b"1 2\n3 4\n".to_vec())],
            args: vec!["--input", "{dir}/points.txt"],
            expected: &["points.txt", ".npy or .csv"],
        },
        BadInput {
            name: "one-dimensional array",
            files: vec![("flat.npy", npy_bytes("<f8", "(3,)", &f64_payload(&[1.0, 2.0, 3.0])))],
            args: vec!["--input", "{dir}/flat.npy"],
            expected: &["flat.npy", "1-D", "2-D (n, d)"],
        },
        BadInput {
            name: "three-dimensional array",
            files: vec![("cube.npy", npy_bytes("<f8", "(2, 2, 2)", &f64_payload(&[0.0; 8])))],
            args: vec!["--input", "{dir}/cube.npy"],
            expected: &["cube.npy", "3-D", "2-D (n, d)"],
        },
        BadInput {
            name: "non-numeric cell",
            files: vec![("text.csv", b"x,y\n1,2\n3,abc\n".to_vec())],
            args: vec!["--input", "{dir}/text.csv"],
            expected: &["text.csv", "line 3", "'abc'", "not a number"],
        },
        BadInput {
            name: "ragged rows",
            files: vec![("ragged.csv", b"1,2,3\n4,5\n6,7,8\n".to_vec())],
            args: vec!["--input", "{dir}/ragged.csv"],
            expected: &["ragged.csv", "line 2", "2 fields", "3"],
        },
        BadInput { name: "empty file", files: vec![("empty.csv", Vec::new())], args: vec!["--input", "{dir}/empty.csv"], expected: &["empty.csv", "empty"] },
        BadInput {
            name: "NaN value",
            files: vec![("nan.npy", npy_bytes("<f8", "(2, 2)", &f64_payload(&[1.0, f64::NAN, 0.0, 1.0])))],
            args: vec!["--input", "{dir}/nan.npy"],
            expected: &["nan.npy", "row 1, column 2", "NaN", "non-finite"],
        },
        BadInput {
            name: "infinite value",
            files: vec![("inf.csv", b"1,2\n3,inf\n".to_vec())],
            args: vec!["--input", "{dir}/inf.csv"],
            expected: &["inf.csv", "row 2, column 2", "inf"],
        },
        BadInput {
            name: "fewer than two particles",
            files: vec![("single.csv", b"1,2,3\n".to_vec())],
            args: vec!["--input", "{dir}/single.csv"],
            expected: &["single.csv", "1 row", "at least 2"],
        },
        BadInput { name: "fewer than two particles sampled", files: vec![], args: vec!["--n", "1"], expected: &["particle count n", "at least 2"] },
        BadInput {
            name: "zero columns",
            files: vec![("nocols.npy", npy_bytes("<f8", "(4, 0)", &[]))],
            args: vec!["--input", "{dir}/nocols.npy"],
            expected: &["nocols.npy", "0 coordinate columns"],
        },
        BadInput {
            name: "fractional label",
            files: vec![
                ("points.csv", b"1,2\n3,4\n5,6\n".to_vec()),
                ("labels.npy", npy_bytes("<f8", "(3,)", &f64_payload(&[1.0, 4.5, 2.0]))),
            ],
            args: vec!["--input", "{dir}/points.csv", "--labels", "{dir}/labels.npy"],
            expected: &["labels.npy", "4.5", "row 2", "not an integer"],
        },
        BadInput { name: "zero dimension", files: vec![], args: vec!["--dim", "0"], expected: &["dimension d", "at least 1"] },
        BadInput { name: "negative step size", files: vec![], args: vec!["--lr", "-0.5"], expected: &["--lr", "-0.5", "greater than 0"] },
        BadInput { name: "zero step size", files: vec![], args: vec!["--lr", "0"], expected: &["--lr", "greater than 0"] },
        BadInput {
            name: "more particles than memory",
            files: vec![],
            args: vec!["--n", "4000000000", "--dim", "512"],
            expected: &["4000000000 particles", "MiB", "lower --n or --dim"],
        },
    ]
}

#[test]
fn bad_inputs_exit_with_status_two() {
    for case in bad_inputs() {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in &case.files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let out: PathBuf = dir.path().join("out");
        let dir_text = dir.path().display().to_string();
        let mut args: Vec<String> = vec!["run".into(), "--out".into(), out.display().to_string(), "--steps".into(), "1".into()];
        args.extend(case.args.iter().map(|a| a.replace("{dir}", &dir_text)));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();

        let output = eccentric(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{}: stderr {stderr}", case.name);
        assert_eq!(stderr.trim().lines().count(), 1, "{}: error must be one line, got {stderr}", case.name);
        assert!(!stderr.contains("panicked"), "{}: {stderr}", case.name);
        for word in case.expected {
            assert!(stderr.contains(word), "{}: '{word}' missing from {stderr}", case.name);
        }
        assert!(!out.exists(), "{}: the run directory must not be created", case.name);
    }
}

#[test]
fn unknown_flag_exits_with_status_two() {
    let output = eccentric(&["run", "--out", "x", "--no-such-flag"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn help_lists_every_run_flag() {
    let output = eccentric(&["run", "--help"]);
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--out", "--input", "--n", "--dim", "--kernel-s", "--scale", "--lambda", "--softening", "--lr", "--steps", "--record-every",
        "--seed", "--task", "--init",
    ] {
        assert!(help.contains(flag), "{flag} missing from run --help");
    }
    assert!(help.contains("[default: 0.1]"), "defaults are shown");
}

#[test]
fn metrics_command_prints_readouts() {
    let output = eccentric(&["metrics", &asset("data/digits_ae_latent16.npy"), "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["n"], 1797);
    assert_eq!(value["dim"], 16);
    assert_eq!(value["covariance_spectrum"].as_array().unwrap().len(), 16);
    let eccentricity = value["readouts"]["eccentricity"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&eccentricity));
}

#[test]
fn optimizer_flags_and_stop_rule_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let output = eccentric(&[
        "run", "--out", out.to_str().unwrap(), "--n", "12", "--kernel-s", "1", "--project-sphere", "--optimizer", "momentum",
        "--momentum", "0.8", "--lr", "0.02", "--batch-size", "0", "--tol", "1e-10", "--tol-window", "50", "--steps", "20000",
    ]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let info: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(info["params"]["optimizer"], "momentum");
    assert_eq!(info["params"]["momentum"], 0.8);
    assert_eq!(info["params"]["project_sphere"], true);
    assert_eq!(info["settings"]["tol"], 1e-10);
    assert_eq!(info["settings"]["tol_window"], 50);
    let reason = info["stop_reason"].as_str().unwrap();
    assert!(reason.starts_with("converged"), "{reason}");
    let last_step = info["frame_steps"].as_array().unwrap().last().unwrap().as_u64().unwrap();
    assert!(last_step < 20000, "the stop rule ends the run early, at step {last_step}");

    // Twelve points on the sphere settle on the icosahedron: 49.165253058 over 66 pairs.
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let last = metrics.lines().last().unwrap();
    let repulsion: f64 = last.split(',').nth(3).unwrap().parse().unwrap();
    assert!((repulsion * 66.0 / 49.165253058 - 1.0).abs() < 1e-6, "energy {}", repulsion * 66.0);
}
