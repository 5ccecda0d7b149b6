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
    /// Scene the app opens on: `default` (1000 particles in 3-D) or `digits` (the built-in
    /// latent codes of a digits autoencoder).
    #[arg(long, default_value = "default")]
    scene: String,

    /// Open side by side with a second simulation that changes one parameter: `projection`,
    /// `gamma=X`, `lambda=X`, `s=X` or `optimizer=NAME`.
    #[arg(long, value_name = "CHANGE")]
    compare: Option<String>,

    /// Save a screenshot of the window to this PNG file after `--exit-after` seconds, then exit.
    #[arg(long, hide = true, value_name = "PNG")]
    screenshot: Option<PathBuf>,

    /// Seconds of stepping before the screenshot is taken (with --screenshot).
    #[arg(long, hide = true, default_value_t = 5.0)]
    exit_after: f64,
}

#[derive(Subcommand)]
enum Command {
    /// Step a simulation without a window and write a run directory.
    Run(RunArgs),
    /// Print every readout of a point set stored in an NPY or CSV file.
    Metrics(MetricsArgs),
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

    /// Number of particles when there is no input file.
    #[arg(long = "n", value_name = "N")]
    n: Option<usize>,

    /// Dimension of each particle when there is no input file.
    #[arg(long = "dim", value_name = "D")]
    dim: Option<usize>,

    /// Number of steps to take.
    #[arg(long, value_name = "K", default_value_t = 2000)]
    steps: u64,

    /// Record a frame every K steps (the start and the end are always recorded).
    #[arg(long, value_name = "K", default_value_t = 10)]
    record_every: u64,

    /// Stop early once the relative energy change over --tol-window steps is below this (0: off).
    #[arg(long, value_name = "TOL", default_value_t = 0.0)]
    tol: f64,

    /// Window, in steps, of the --tol stop rule.
    #[arg(long, value_name = "K", default_value_t = 100)]
    tol_window: u64,

    /// Replace an existing run directory at --out.
    #[arg(long)]
    overwrite: bool,

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
    #[arg(long, value_name = "L", default_value_t = Params::default().lambda)]
    lambda: f64,

    /// Scaling factor gamma.
    #[arg(long = "scale", value_name = "GAMMA", default_value_t = Params::default().gamma)]
    gamma: f64,

    /// Softening length eps, in coordinate units.
    #[arg(long, value_name = "EPS", default_value_t = Params::default().softening)]
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
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}

#[cfg(feature = "app")]
fn open_app(args: AppArgs) -> Result<(), eccentric::Error> {
    let scene = eccentric::app::Scene::parse(&args.scene)?;
    let compare = args.compare.as_deref().map(eccentric::app::compare::Variation::parse).transpose()?;
    eccentric::app::run(eccentric::app::AppOptions { scene, screenshot: args.screenshot, exit_after_seconds: args.exit_after, compare });
    Ok(())
}

#[cfg(not(feature = "app"))]
fn open_app(_args: AppArgs) -> Result<(), eccentric::Error> {
    Err(eccentric::Error::param("subcommand", "none", "this build has no desktop app (built without the `app` feature); use `eccentric run`"))
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
    };
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    if let Err(error) = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed)) {
        tracing::warn!(%error, "Ctrl-C will kill the run instead of ending it cleanly");
    }
    let summary = run(&request, interrupt)?;
    let readouts = summary.final_readouts;
    println!(
        "wrote {} frames to {} ({}, {} steps); final energy {:.6}, radius {:.4} +- {:.2}%, eccentricity {:.4}",
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
