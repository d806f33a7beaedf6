//! `presage-train segments`: the config's rule segments assigned to every
//! user, with their sizes.

use presage_data::extract::segments;
use presage_data::table::{table_from_frame, write_table};

use serde_json::json;

use super::features::FeaturesArgs;
use super::{build_extract_table, required_spec};
use crate::{bad_input, Failure};

pub(crate) fn run_segments(args: &FeaturesArgs) -> Result<(), Failure> {
    let mut spec = required_spec(&args.config, &args.extract)?;
    // Segments describe every user with a complete observation window,
    // labelled or not.
    spec.feature_spec.label = None;
    let built = build_extract_table(&spec, &args.config, args.json)?;
    let id = spec.extract.user_id.clone();
    let assigned =
        segments::assign(&spec.segments, &built, &id, &args.config).map_err(bad_input)?;
    let table = table_from_frame(&assigned.frame, &args.config).map_err(bad_input)?;
    write_table(&args.out, &table.columns).map_err(bad_input)?;
    for warning in &assigned.warnings {
        eprintln!("warning: {warning}");
    }
    if args.json {
        out!(
            "{}",
            json!({
                "out": args.out.display().to_string(),
                "users": built.report.users_in_table,
                "sizes": assigned.sizes,
                "warnings": assigned.warnings,
            })
        );
    } else {
        out!(
            "{} users, {} segmentation(s) -> {}\n",
            built.report.users_in_table,
            spec.segments.len(),
            args.out.display()
        );
        out!(
            "{:<20} {:<24} {:>10} {:>8}",
            "segmentation",
            "segment",
            "users",
            "share"
        );
        for s in &assigned.sizes {
            out!(
                "{:<20} {:<24} {:>10} {:>7.1}%",
                s.segmentation,
                s.segment,
                s.users,
                100.0 * s.share
            );
        }
    }
    Ok(())
}
