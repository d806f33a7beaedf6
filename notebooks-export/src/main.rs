//! `presage-export`: model versions as Parquet files and a Jupyter notebook
//! (see the library docs for what is written).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use presage_models::registry::{DEFAULT_REGISTRY, REGISTRY_ENV};

#[derive(Parser)]
#[command(
    name = "presage-export",
    version,
    about = "Export model versions' metrics, importance, scores, curves and SHAP values as Parquet, with a notebook that plots them.",
    after_help = "Exit codes: 0 success, 2 bad input (unknown model or version, unreadable data)."
)]
struct Cli {
    /// Model name.
    model: String,
    /// Versions to export, comma separated (e.g. 6,7).
    #[arg(long, value_delimiter = ',', required = true)]
    versions: Vec<u64>,
    /// Labelled data (.csv or .parquet) to score; without it only stored metrics and importance are exported.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Model registry directory.
    #[arg(long, env = REGISTRY_ENV, default_value = DEFAULT_REGISTRY)]
    registry: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match presage_notebooks_export::export(
        &cli.registry,
        &cli.model,
        &cli.versions,
        cli.data.as_deref(),
        &cli.out,
    ) {
        Ok(exported) => {
            for f in &exported.files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
