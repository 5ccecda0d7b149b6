//! Command line of `eccentric`: with no subcommand it opens the desktop app; `run` steps a
//! simulation headless and writes a run directory; `metrics` prints the readouts of a point set.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, Parser, Subcommand};
use eccentric::metrics::{Readouts, Regime, covariance_spectrum, predicted_rms_radius_log_kernel, radius_stats};
use eccentric::params::Params;
use eccentric::runner::{RunRequest, run};

/// Exit status for every error the program reports (bad input, bad flags, failed writes).
const EXIT_ERROR: u8 = 2;

#[derive(Parser)]
#[command(name = "eccentric", version, about = "Latent codes as particles under eccentric regularization: desktop app and headless runner")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    app: AppArgs,
}

/// Options of the desktop app (used when no subcommand is given).
#[derive(Args, Debug, Clone)]
struct AppArgs {
    /// Scene the app opens on: `default` (1000 particles in 3-D), `digits` (the built-in latent
    /// codes of a digits autoencoder) or `train` (an autoencoder training on the digits).
    #[arg(long, default_value = "default")]
    scene: String,

    /// Scaling factor gamma of the opening scene (the particles' or the training loss's)
    /// [default: 1 for particles, 0.1 for training].
    #[arg(allow_negative_numbers = true, long = "scale", value_name = "GAMMA")]
    scale: Option<f64>,

    /// Engine of the app: cpu, gpu (an error without a GPU adapter) or auto (a hardware GPU when
    /// there is one, else the CPU with a notice).
    #[arg(long, value_enum, default_value_t = eccentric::engine::BackendChoice::Auto)]
    backend: eccentric::engine::BackendChoice,

    /// Open side by side with a second simulation that changes one parameter: `projection`,
    /// `gamma=X`, `lambda=X`, `s=X` or `optimizer=NAME`.
    #[arg(long, value_name = "CHANGE")]
    compare: Option<String>,

    /// Save a screenshot of the window to this PNG file after `--exit-after` seconds, then exit.
    #[arg(long, hide = true, value_name = "PNG")]
    screenshot: Option<PathBuf>,

    /// Seconds of stepping before the screenshot is taken (with --screenshot).
    #[arg(allow_negative_numbers = true, long, hide = true, default_value_t = 5.0)]
    exit_after: f64,
}

#[derive(Subcommand)]
enum Command {
    /// Step a simulation without a window and write a run directory.
    Run(RunArgs),
    /// Print every readout of a point set stored in an NPY or CSV file.
    Metrics(MetricsArgs),
    /// Train an autoencoder with eccentric regularization and record its latent codes.
    Train(TrainArgs),
    /// Measure steps per second of the CPU engine (and the GPU engine with --backend cpu,gpu)
    /// against the machine's f32 GEMM rate.
    Bench(BenchArgs),
}

#[derive(Args)]
struct TrainArgs {
    /// Run directory to create (positions.npy with the latent codes, metrics.csv, run.json,
    /// weights/, principal_axes.png).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,

    /// Training data, one sample per row (NPY or CSV). Default: the built-in UCI 8x8 digits.
    #[arg(long, value_name = "FILE")]
    data: Option<PathBuf>,

    /// Labels of the data rows (NPY or CSV), when the data has no `label` column.
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,

    /// Record the latent codes every K training steps (mini-batches).
    #[arg(long, value_name = "K", default_value_t = 20)]
    record_every: u64,

    /// Replace an existing run directory at --out.
    #[arg(long)]
    overwrite: bool,

    #[command(flatten)]
    params: eccentric::train::TrainParams,
}

#[derive(Args)]
struct BenchArgs {
    /// Particle counts, comma-separated.
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_values_t = [1024, 4096, 16384])]
    n: Vec<usize>,

    /// Dimensions, comma-separated.
    #[arg(long = "dim", value_name = "LIST", value_delimiter = ',', default_values_t = [3, 16, 64, 256])]
    dim: Vec<usize>,

    /// Riesz exponent s of the kernel.
    #[arg(long = "kernel-s", value_name = "S", allow_negative_numbers = true, default_value_t = 0.0)]
    kernel_s: f64,

    /// Force paths to time: auto (the engine's choice), pairwise, matrix, reference, or both
    /// (pairwise and matrix wherever each applies).
    #[arg(long, value_name = "PATH", default_value = "both")]
    path: String,

    /// Seconds of timed steps per configuration (after one warm-up step; at least one step).
    #[arg(allow_negative_numbers = true, long, value_name = "SECONDS", default_value_t = 2.0)]
    seconds: f64,

    /// Engines to time, comma-separated: cpu (the force paths chosen by --path) and gpu (wgpu
    /// compute shaders on the default adapter).
    #[arg(long, value_name = "LIST", value_delimiter = ',', default_value = "cpu")]
    backend: Vec<String>,

    /// Side of the square matrices of the reference GEMM measurement.
    #[arg(long, value_name = "SIZE", default_value_t = 2048)]
    gemm_size: usize,

    /// Also write the table to this CSV file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    /// Run directory to create (positions.npy, metrics.csv, run.json).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,

    /// Starting points: an (n, d) NPY or CSV file. It fixes n and d.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,

    /// Labels of the input rows (NPY or CSV), copied into the run as labels.npy.
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,

    /// Number of particles when there is no input file [default: 1000].
    #[arg(long = "n", value_name = "N")]
    n: Option<usize>,

    /// Dimension of each particle when there is no input file [default: 3].
    #[arg(long = "dim", value_name = "D")]
    dim: Option<usize>,

    /// Number of steps to take.
    #[arg(long, value_name = "K", default_value_t = 2000)]
    steps: u64,

    /// Record a frame every K steps (the start and the end are always recorded).
    #[arg(long, value_name = "K", default_value_t = 10)]
    record_every: u64,

    /// Stop early once the relative energy change over --tol-window steps is below this (0: off).
    #[arg(allow_negative_numbers = true, long, value_name = "TOL", default_value_t = 0.0)]
    tol: f64,

    /// Window, in steps, of the --tol stop rule.
    #[arg(long, value_name = "K", default_value_t = 100)]
    tol_window: u64,

    /// Replace an existing run directory at --out.
    #[arg(long)]
    overwrite: bool,

    /// Engine: cpu, gpu (wgpu compute shaders; an error without a GPU adapter), or auto (a
    /// hardware GPU when there is one, else the CPU with a notice).
    #[arg(long, value_enum, default_value_t = eccentric::engine::BackendChoice::Auto)]
    backend: eccentric::engine::BackendChoice,

    #[command(flatten)]
    params: Params,
}

#[derive(Args)]
struct MetricsArgs {
    /// Point set: an (n, d) NPY or CSV file.
    file: PathBuf,

    /// Riesz exponent s of the kernel used for the energies.
    #[arg(long = "kernel-s", value_name = "S", allow_negative_numbers = true, default_value_t = Params::default().kernel_s)]
    kernel_s: f64,

    /// Attraction strength lambda.
    #[arg(allow_negative_numbers = true, long, value_name = "L", default_value_t = Params::default().lambda)]
    lambda: f64,

    /// Scaling factor gamma.
    #[arg(allow_negative_numbers = true, long = "scale", value_name = "GAMMA", default_value_t = Params::default().gamma)]
    gamma: f64,

    /// Softening length eps, in coordinate units.
    #[arg(allow_negative_numbers = true, long, value_name = "EPS", default_value_t = Params::default().softening)]
    softening: f64,

    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => open_app(cli.app),
        Some(Command::Run(args)) => {
            init_logging();
            run_command(args)
        }
        Some(Command::Metrics(args)) => metrics_command(args),
        Some(Command::Bench(args)) => bench_command(args),
        Some(Command::Train(args)) => {
            init_logging();
            train_command(args)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // Colour codes only where a terminal shows them, not in a redirected log file.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).with_target(false).init();
}

#[cfg(feature = "app")]
fn open_app(args: AppArgs) -> Result<(), eccentric::Error> {
    let scene = eccentric::app::Scene::parse(&args.scene)?;
    let compare = args.compare.as_deref().map(eccentric::app::compare::Variation::parse).transpose()?;
    if compare.is_some() && scene == eccentric::app::Scene::Training {
        return Err(eccentric::Error::param("--compare", args.compare.unwrap_or_default(), "works with the particle scenes (default, digits), not with --scene train"));
    }
    if let Some(gamma) = args.scale.filter(|g| !(g.is_finite() && *g >= 0.0)) {
        return Err(eccentric::Error::param("--scale", gamma, "must be 0 or greater"));
    }
    eccentric::app::run(eccentric::app::AppOptions { scene, screenshot: args.screenshot, exit_after_seconds: args.exit_after, compare, gamma: args.scale, backend: args.backend });
    Ok(())
}

#[cfg(not(feature = "app"))]
fn open_app(_args: AppArgs) -> Result<(), eccentric::Error> {
    Err(eccentric::Error::param("subcommand", "none", "this build has no desktop app (built without the `app` feature); use `eccentric run`"))
}

/// Returns a flag that Ctrl-C sets, so a run can end cleanly with every frame so far.
fn interrupt_on_ctrl_c() -> Arc<AtomicBool> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    if let Err(error) = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed)) {
        tracing::warn!(%error, "Ctrl-C will kill the run instead of ending it cleanly");
    }
    interrupt
}

fn run_command(args: RunArgs) -> Result<(), eccentric::Error> {
    let request = RunRequest {
        params: args.params,
        out: args.out,
        input: args.input,
        labels: args.labels,
        n: args.n,
        dim: args.dim,
        steps: args.steps,
        record_every: args.record_every,
        tol: args.tol,
        tol_window: args.tol_window,
        overwrite: args.overwrite,
        backend: args.backend,
    };
    let interrupt = interrupt_on_ctrl_c();
    let summary = run(&request, interrupt)?;
    let readouts = summary.final_readouts;
    println!(
        "wrote {} frames to {} ({}, at step {}); final energy {:.6}, radius {:.4} +- {:.2}%, eccentricity {:.4}",
        summary.frames,
        summary.dir.display(),
        summary.stop_reason,
        summary.steps,
        readouts.energy_total,
        readouts.radius_mean,
        100.0 * readouts.radius_rel_std,
        readouts.eccentricity,
    );
    Ok(())
}

fn metrics_command(args: MetricsArgs) -> Result<(), eccentric::Error> {
    let dataset = eccentric::io::load_points(&args.file)?;
    let points = dataset.points;
    let params = Params {
        n: points.n(),
        dim: points.dim(),
        kernel_s: args.kernel_s,
        lambda: args.lambda,
        gamma: args.gamma,
        softening: args.softening,
        ..Params::default()
    };
    params.validate()?;
    let readouts = Readouts::compute(&params, &points, None, 0);
    let spectrum = covariance_spectrum(&points);
    let predicted = Regime::predicted(args.kernel_s, points.dim());
    let measured = Regime::measured(readouts.radius_rel_std);
    let rms = radius_stats(&points).rms;

    if args.json {
        let value = serde_json::json!({
            "file": args.file.display().to_string(),
            "n": points.n(),
            "dim": points.dim(),
            "readouts": readouts,
            "covariance_spectrum": spectrum,
            "radius_rms": rms,
            "regime_predicted": predicted.label(),
            "regime_measured": measured.label(),
        });
        println!("{}", serde_json::to_string_pretty(&value).expect("readouts serialise"));
        return Ok(());
    }

    println!("{}: n = {}, d = {}", args.file.display(), points.n(), points.dim());
    for (name, value) in eccentric::metrics::CSV_COLUMNS.iter().zip(readouts.csv_values()).skip(1) {
        println!("{name:<22} {value:.6}");
    }
    println!("{:<22} {rms:.6}", "radius_rms");
    let shown: Vec<String> = spectrum.iter().map(|l| format!("{l:.4}")).collect();
    println!("{:<22} {}", "covariance_spectrum", shown.join(" "));
    println!("{:<22} {} predicted for s = {}, d = {}; {} measured", "regime", predicted.label(), args.kernel_s, points.dim(), measured.label());
    if args.kernel_s == 0.0 {
        println!("{:<22} {:.6} predicted at equilibrium (1/sqrt(lambda))", "radius_rms_theory", predicted_rms_radius_log_kernel(args.lambda));
    }
    Ok(())
}

/// Prints one benchmark row and rewrites the CSV with every row so far, so an interrupted
/// benchmark keeps what it measured.
fn report_row(row: &eccentric::bench::BenchRow, gemm: f64, lines: &mut Vec<String>, out: Option<&std::path::Path>) -> Result<(), eccentric::Error> {
    println!(
        "{:<14} {:>6} {:>5} {:>12.2} {:>14.3e} {:>9.2} {:>7.0}%",
        row.implementation,
        row.n,
        row.d,
        row.steps_per_second,
        row.pair_interactions_per_second,
        row.gflops,
        100.0 * row.gflops / gemm
    );
    lines.push(row.csv_line());
    if let Some(out) = out {
        let text = format!("{}\n{}\n", eccentric::bench::CSV_HEADER, lines.join("\n"));
        std::fs::write(out, text).map_err(|e| eccentric::Error::Output { path: out.to_path_buf(), problem: e.to_string() })?;
    }
    Ok(())
}

fn bench_command(args: BenchArgs) -> Result<(), eccentric::Error> {
    use eccentric::bench::{CSV_HEADER, bench_engine, gemm_rate};
    use eccentric::engine::{ForcePath, PAIRWISE_MAX_DIM};

    if let Some(other) = args.backend.iter().find(|b| !matches!(b.as_str(), "cpu" | "gpu")) {
        return Err(eccentric::Error::param("--backend", other, "must be cpu, gpu or both as cpu,gpu"));
    }
    let (cpu, gpu) = (args.backend.iter().any(|b| b == "cpu"), args.backend.iter().any(|b| b == "gpu"));
    let paths: Vec<ForcePath> = match args.path.as_str() {
        "both" => vec![ForcePath::Pairwise, ForcePath::Matrix],
        "auto" => vec![ForcePath::Auto],
        "pairwise" => vec![ForcePath::Pairwise],
        "matrix" => vec![ForcePath::Matrix],
        "reference" => vec![ForcePath::Reference],
        other => return Err(eccentric::Error::param("--path", other, "must be auto, pairwise, matrix, reference or both")),
    };
    if !(args.seconds > 0.0 && args.seconds.is_finite()) {
        return Err(eccentric::Error::param("--seconds", args.seconds, "must be greater than 0"));
    }
    if let Some(bad) = args.n.iter().find(|&&n| n < 2) {
        return Err(eccentric::Error::param("--n", bad, "every particle count must be at least 2"));
    }
    if let Some(bad) = args.dim.iter().find(|&&d| d < 1) {
        return Err(eccentric::Error::param("--dim", bad, "every dimension must be at least 1"));
    }
    if let Some(out) = &args.out {
        std::fs::write(out, format!("{CSV_HEADER}\n")).map_err(|e| eccentric::Error::Output { path: out.clone(), problem: e.to_string() })?;
    }
    let budget = std::time::Duration::from_secs_f64(args.seconds);
    let threads = rayon::current_num_threads();

    let gemm = gemm_rate(args.gemm_size, budget);
    println!("reference: f32 GEMM {0}x{0}x{0}, {threads} threads: {gemm:.1} GFLOP/s", args.gemm_size);
    println!("operation count: 4 n^2 d per step (the two n x n x d products of the matrix path)");
    println!("{:<14} {:>6} {:>5} {:>12} {:>14} {:>9} {:>8}", "impl", "n", "d", "steps/s", "pairs/s", "GFLOP/s", "of GEMM");
    let mut lines = Vec::new();
    for &n in &args.n {
        for &d in &args.dim {
            for &path in paths.iter().filter(|_| cpu) {
                let skip = args.path == "both" && ((path == ForcePath::Pairwise && d > PAIRWISE_MAX_DIM) || (path == ForcePath::Matrix && d < 16));
                if skip {
                    continue;
                }
                let row = bench_engine(path, n, d, args.kernel_s, budget);
                report_row(&row, gemm, &mut lines, args.out.as_deref())?;
            }
            if gpu {
                let row = eccentric::engine::gpu::bench_gpu(n, d, args.kernel_s, budget)?;
                report_row(&row, gemm, &mut lines, args.out.as_deref())?;
            }
        }
    }
    Ok(())
}

fn train_command(args: TrainArgs) -> Result<(), eccentric::Error> {
    use eccentric::io::assets::{DIGITS_PIXELS, asset_path};
    use eccentric::train::run::{TrainRequest, train};

    let request = TrainRequest {
        params: args.params,
        out: args.out,
        data: args.data.unwrap_or_else(|| asset_path(DIGITS_PIXELS)),
        labels: args.labels,
        record_every: args.record_every,
        overwrite: args.overwrite,
    };
    let interrupt = interrupt_on_ctrl_c();
    let summary = train(&request, interrupt)?;
    let r = summary.final_readouts;
    println!(
        "wrote {} frames to {} ({} steps); reconstruction loss {:.4} -> {:.4}, latent radius std/mean {:.3}, eccentricity {:.3}, effective rank {:.2}",
        summary.frames,
        summary.dir.display(),
        summary.steps,
        summary.first_loss,
        summary.final_loss,
        r.radius_rel_std,
        r.eccentricity,
        r.effective_rank
    );
    Ok(())
}
