//! `presage-train predict`: a table scored with a stored version.

use std::path::{Path, PathBuf};

use clap::Args;
use presage_data::table::{read_table, write_table, Column, ColumnData};
use presage_pipeline::scoring::score_table;

use super::{load, VersionArgs};
use crate::{bad_input, Failure};

#[derive(Args)]
pub(crate) struct PredictArgs {
    #[command(flatten)]
    pub(crate) which: VersionArgs,
    /// Table to score (.csv or .parquet).
    #[arg(long)]
    pub(crate) data: PathBuf,
    /// Output file (.csv or .parquet): id column (if any) and `probability`.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Score model columns absent from the table as missing instead of failing.
    #[arg(long)]
    pub(crate) allow_missing: bool,
}

pub(crate) fn run_predict(registry: &Path, args: &PredictArgs) -> Result<(), Failure> {
    let artifact = load(registry, &args.which)?;
    let table = read_table(&args.data).map_err(bad_input)?;
    let scored = score_table(&artifact, &table, args.allow_missing).map_err(bad_input)?;
    if !scored.absent.is_empty() {
        eprintln!(
            "warning: scoring absent columns as missing: {}",
            scored.absent.join(", ")
        );
    }
    let probs = scored.probabilities;
    let mut out = Vec::new();
    if let Some(id) = &artifact.id_column {
        if let Some(column) = table.column(id) {
            out.push(column.clone());
        }
    }
    out.push(Column {
        name: "probability".into(),
        data: ColumnData::Numeric(probs),
    });
    write_table(&args.out, &out).map_err(bad_input)?;
    eprintln!(
        "scored {} rows with {} version {} -> {}",
        table.n_rows(),
        artifact.name,
        artifact.version,
        args.out.display()
    );
    Ok(())
}
