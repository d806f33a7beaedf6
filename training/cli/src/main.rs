//! `presage-train`: train, evaluate and apply Presage models from the
//! command line. Thin: flags and config are turned into a validated plan,
//! the library does the work, and errors map to exit codes (0 success, 1 a
//! failure such as an unwritable registry, 2 bad input: flags, config, data).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use presage_models::registry::{DEFAULT_REGISTRY, REGISTRY_ENV};

/// Writes a line to stdout. A closed pipe (`presage-train models | head`)
/// ends the program quietly with success, as ripgrep does; any other write
/// error is reported.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            $crate::stdout_failed(e)
        }
    }};
}

/// Like [`out!`] without the newline.
macro_rules! out_part {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout(), $($arg)*) {
            $crate::stdout_failed(e)
        }
    }};
}

fn stdout_failed(error: std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to stdout: {error}");
    std::process::exit(i32::from(EXIT_FAILURE));
}

/// Exit code for bad input (flags, config, data).
const EXIT_BAD_INPUT: u8 = 2;

/// Exit code for a failure that is not the input's fault.
const EXIT_FAILURE: u8 = 1;

#[derive(Parser)]
#[command(
    name = "presage-train",
    version,
    about = "Train, evaluate and apply Presage models."
)]
#[command(
    after_help = "Exit codes: 0 success, 1 failure (e.g. registry not writable), 2 bad input (flags, config or data)."
)]
struct Cli {
    /// Model registry directory.
    #[arg(long, global = true, env = REGISTRY_ENV, default_value = DEFAULT_REGISTRY)]
    registry: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model on a feature table, or on users + events extracts
    /// (a config with an [extract] section), and store it as a new version.
    Fit(Box<FitArgs>),
    /// Nightly retraining: train a challenger, gate it against the champion on the same
    /// fresh held-out rows, promote it only if the config's [gate] passes.
    Retrain(Box<FitArgs>),
    /// Build the per-user feature table from users + events extracts and write it.
    Features(FeaturesArgs),
    /// Write the extracts as NDJSON users and events for `presage-serve --backfill-users/--backfill-events`.
    ExportOnline(ExportOnlineArgs),
    /// Assign the config's rule segments ([[segments]]) to every user and report their sizes.
    Segments(FeaturesArgs),
    /// Onboarding KPIs from the extracts: time to first key action, completion, funnel, retention.
    Kpis(KpisArgs),
    /// Compare two versions of a model: metrics, DeLong's test, score shift, segment migration, importance.
    Compare(CompareArgs),
    /// Analyse an A/B experiment (segment onboarding vs generic) from the assignment log and the extracts.
    #[command(
        after_help = "Exit codes: 0 analysed, 1 failure writing the report, 2 bad config or data,\n\
                  3 analysed but a sample-ratio mismatch invalidates the result (the report is still printed)."
    )]
    Experiment(ExperimentArgs),
    /// Drift of new data from a model's training data: per-feature PSI, missing and unseen shares, score shift.
    Drift(DriftArgs),
    /// Score a table with a stored model.
    Predict(PredictArgs),
    /// Compute metrics of a stored model on new labelled data.
    Evaluate(EvaluateArgs),
    /// List stored models and versions.
    Models(ModelsArgs),
}

mod commands;
mod config;
mod render;

use commands::compare::{run_compare, CompareArgs};
use commands::drift::{run_drift, DriftArgs};
use commands::evaluate::{run_evaluate, EvaluateArgs};
use commands::experiment::{run_experiment, ExperimentArgs};
use commands::export_online::{run_export_online, ExportOnlineArgs};
use commands::features::{run_features, FeaturesArgs};
use commands::fit::{run_fit, FitArgs};
use commands::kpis::{run_kpis, KpisArgs};
use commands::models::{run_models, ModelsArgs};
use commands::predict::{run_predict, PredictArgs};
use commands::retrain::run_retrain;
use commands::segments::run_segments;

/// An error with the exit code it should produce.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

fn bad_input(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: EXIT_BAD_INPUT,
        error: error.into(),
    }
}

/// Exit 2 when the error is the input's fault, 1 otherwise.
fn by_cause(is_bad_input: bool, error: impl Into<anyhow::Error>) -> Failure {
    if is_bad_input {
        bad_input(error)
    } else {
        failure(error)
    }
}

fn failure(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: EXIT_FAILURE,
        error: error.into(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Fit(args) => run_fit(&cli.registry, args),
        Command::Retrain(args) => run_retrain(&cli.registry, args),
        Command::Features(args) => run_features(args),
        Command::ExportOnline(args) => run_export_online(args),
        Command::Segments(args) => run_segments(args),
        Command::Kpis(args) => run_kpis(args),
        Command::Compare(args) => run_compare(&cli.registry, args),
        Command::Experiment(args) => run_experiment(args),
        Command::Drift(args) => run_drift(&cli.registry, args),
        Command::Predict(args) => run_predict(&cli.registry, args),
        Command::Evaluate(args) => run_evaluate(&cli.registry, args),
        Command::Models(args) => run_models(&cli.registry, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure { code, error }) => {
            eprintln!("error: {error:#}");
            ExitCode::from(code)
        }
    }
}
