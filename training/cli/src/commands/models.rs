//! `presage-train models`: the registry's models and versions.

use std::path::Path;

use clap::Args;
use presage_models::artifact::{Metrics, ModelArtifact};
use presage_models::registry::Registry;

use serde_json::json;

use crate::{failure, Failure};

#[derive(Args)]
pub(crate) struct ModelsArgs {
    /// Print JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn run_models(registry: &Path, args: &ModelsArgs) -> Result<(), Failure> {
    let registry = Registry::new(registry);
    let mut rows = Vec::new();
    for name in registry.models().map_err(failure)? {
        for info in registry.list(&name).map_err(failure)? {
            let entry = match ModelArtifact::read(&info.path) {
                Ok(a) => json!({
                    "model": name,
                    "version": info.version,
                    "aliases": info.aliases,
                    "created_at": a.created_at(),
                    "algo": a.algorithm.short_name(),
                    "test_auc": a.evaluation.test.as_ref().and_then(Metrics::auc),
                    "trained_on": a.data.source,
                    "label": a.feature_spec.as_ref().map(|s| &s.label.description),
                    "path": info.path.display().to_string(),
                }),
                Err(e) => json!({
                    "model": name,
                    "version": info.version,
                    "aliases": info.aliases,
                    "error": e.to_string(),
                    "path": info.path.display().to_string(),
                }),
            };
            rows.push(entry);
        }
    }
    if args.json {
        out!(
            "{}",
            json!({ "registry": registry.root().display().to_string(), "models": rows })
        );
        return Ok(());
    }
    if rows.is_empty() {
        out!("no models in {}", registry.root().display());
        return Ok(());
    }
    out!(
        "{:<20} {:>7}  {:<16} {:<20} {:<5} {:>8}",
        "model",
        "version",
        "aliases",
        "created",
        "algo",
        "test_auc"
    );
    for r in rows {
        let aliases: Vec<String> = r["aliases"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(String::from))
            .collect();
        if let Some(err) = r["error"].as_str() {
            out!(
                "{:<20} {:>7}  {:<16} UNREADABLE: {err}",
                r["model"].as_str().unwrap_or(""),
                r["version"],
                aliases.join(",")
            );
            continue;
        }
        out!(
            "{:<20} {:>7}  {:<16} {:<20} {:<5} {:>8}",
            r["model"].as_str().unwrap_or(""),
            r["version"],
            aliases.join(","),
            r["created_at"].as_str().unwrap_or(""),
            r["algo"].as_str().unwrap_or(""),
            r["test_auc"]
                .as_f64()
                .map_or("-".into(), |v| format!("{v:.4}"))
        );
    }
    Ok(())
}
