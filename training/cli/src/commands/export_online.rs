//! `presage-train export-online`: the extracts as the NDJSON files that
//! `presage-serve --backfill-users --backfill-events` (or `POST /users` and
//! `POST /events`) take, so an online store starts with complete history.

use std::path::PathBuf;

use clap::Args;
use presage_data::extract::export::export_online;
use serde_json::json;

use super::{required_spec, ExtractArgs};
use crate::{bad_input, Failure};

#[derive(Args)]
pub(crate) struct ExportOnlineArgs {
    /// TOML config with [extract], [window] and [features].
    #[arg(long)]
    pub(crate) config: PathBuf,
    #[command(flatten)]
    pub(crate) extract: ExtractArgs,
    /// Users file to write (NDJSON: user_id, signup_at, consent, attributes).
    #[arg(long, value_name = "PATH")]
    pub(crate) users_out: PathBuf,
    /// Events file to write (NDJSON: user_id, event, occurred_at, event_id, properties).
    #[arg(long, value_name = "PATH")]
    pub(crate) events_out: PathBuf,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn run_export_online(args: &ExportOnlineArgs) -> Result<(), Failure> {
    let spec = required_spec(&args.config, &args.extract)?;
    let report =
        export_online(&spec, &args.config, &args.users_out, &args.events_out).map_err(bad_input)?;
    if args.json {
        out!("{}", json!({ "report": report }));
    } else {
        out!(
            "{} users -> {} ({} left out: no consent or erased)",
            report.users,
            args.users_out.display(),
            report.users_withheld
        );
        out!(
            "{} events -> {} ({} left out: their user is left out or unknown)",
            report.events,
            args.events_out.display(),
            report.events_left_out
        );
    }
    Ok(())
}
