//! `presage-train kpis`: onboarding KPIs from the extracts.

use std::path::PathBuf;

use clap::Args;
use presage_data::extract::kpis;

use super::{required_spec, ExtractArgs};
use crate::{bad_input, failure, Failure};

#[derive(Args)]
pub(crate) struct KpisArgs {
    /// TOML config with [extract], [window], [features] and optionally [kpis] and [[segments]].
    #[arg(long)]
    pub(crate) config: PathBuf,
    #[command(flatten)]
    pub(crate) extract: ExtractArgs,
    /// Also report per value of this attribute or feature column, or per segment of this [[segments]] name.
    #[arg(long, value_name = "SEGMENT_OR_ATTRIBUTE")]
    pub(crate) by: Option<String>,
    /// Print one JSON object on stdout instead of tables.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn percent(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{:.1}%", 100.0 * v))
}

pub(crate) fn hours(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.1} h"))
}

pub(crate) fn run_kpis(args: &KpisArgs) -> Result<(), Failure> {
    let spec = required_spec(&args.config, &args.extract)?;
    let report = kpis::report(&spec, &args.config, args.by.as_deref()).map_err(bad_input)?;
    if args.json {
        out!("{}", serde_json::to_string(&report).map_err(failure)?);
        return Ok(());
    }
    out!("onboarding KPIs, events {}\n", report.window);
    out!(
        "{:<24} {:>8} {:>12} {:>12} {:>12} {:>12} {:>12}",
        report.by.as_deref().unwrap_or("group"),
        "users",
        "key action",
        "median TTFA",
        "p90 TTFA",
        "onboarded",
        "adopted"
    );
    for g in &report.groups {
        out!(
            "{:<24} {:>8} {:>12} {:>12} {:>12} {:>12} {:>12}",
            g.group,
            g.users,
            percent(g.key_action_rate),
            hours(g.key_action_median_hours),
            hours(g.key_action_p90_hours),
            percent(g.onboarding_completion_rate),
            percent(g.feature_adoption_rate)
        );
    }
    if report.groups.first().is_some_and(|g| !g.funnel.is_empty()) {
        out!("\nfunnel (users who did each step and every earlier one; drop-off from the previous step)");
        for g in &report.groups {
            out_part!("{:<24}", g.group);
            for s in &g.funnel {
                out_part!("  {} {} (-{:.0}%)", s.step, s.users, 100.0 * s.drop_off);
            }
            out!("");
        }
    }
    if !report.cohorts.is_empty() {
        let weeks = report.cohorts[0].retention.len();
        out!("\nretention by weekly signup cohort (share active in week k after signup; - = week not over)");
        out_part!("{:<12} {:>8}", "week of", "users");
        for w in 1..=weeks {
            out_part!(" {:>8}", format!("week {w}"));
        }
        out!("");
        for c in &report.cohorts {
            out_part!("{:<12} {:>8}", c.week_of, c.users);
            for r in &c.retention {
                out_part!(" {:>8}", percent(*r));
            }
            out!("");
        }
    }
    Ok(())
}
