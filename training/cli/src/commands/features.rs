//! `presage-train features`: the per-user table built from extracts, written
//! to a file.

use std::path::PathBuf;

use clap::Args;
use presage_data::table::{table_from_frame, write_table};

use serde_json::json;

use super::{build_extract_table, required_spec, ExtractArgs};
use crate::{bad_input, Failure};

#[derive(Args)]
pub(crate) struct FeaturesArgs {
    /// TOML config with [extract], [window], [features] and optionally [label].
    #[arg(long)]
    pub(crate) config: PathBuf,
    #[command(flatten)]
    pub(crate) extract: ExtractArgs,
    /// Output table (.parquet or .csv): user id, features, label.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn run_features(args: &FeaturesArgs) -> Result<(), Failure> {
    let spec = required_spec(&args.config, &args.extract)?;
    let built = build_extract_table(&spec, &args.config, args.json)?;
    let table = table_from_frame(&built.frame, &args.config).map_err(bad_input)?;
    write_table(&args.out, &table.columns).map_err(bad_input)?;
    let r = &built.report;
    if args.json {
        out!(
            "{}",
            json!({
                "out": args.out.display().to_string(),
                "rows": r.users_in_table,
                "features": built.features,
                "label": built.label,
                "report": r,
                "warnings": r.warnings(),
            })
        );
    } else {
        out!(
            "{} users x {} features{} -> {}",
            r.users_in_table,
            built.features.len(),
            match (&built.label, r.positives) {
                (Some(l), Some(p)) => format!(
                    ", label '{l}' positive for {p} ({:.1}%)",
                    100.0 * p as f64 / r.users_in_table.max(1) as f64
                ),
                _ => String::new(),
            },
            args.out.display()
        );
        out!(
            "events: {} read, {} observed (inside a user's window)",
            r.events_read,
            r.events_observed
        );
        for f in &built.features {
            out!("  {:<32} {}", f.name, f.description);
        }
    }
    Ok(())
}
