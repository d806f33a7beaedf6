//! The subcommands, one module each, and what several of them share: the
//! extract path overrides, version selection and loading, and building a
//! table from extracts.

pub(crate) mod compare;
pub(crate) mod drift;
pub(crate) mod evaluate;
pub(crate) mod experiment;
pub(crate) mod export_online;
pub(crate) mod features;
pub(crate) mod fit;
pub(crate) mod kpis;
pub(crate) mod models;
pub(crate) mod predict;
pub(crate) mod retrain;
pub(crate) mod segments;

use std::path::{Path, PathBuf};

use clap::Args;
use presage_data::extract::spec::ExtractSpec;
use presage_data::extract::BuiltTable;
use presage_models::artifact::ModelArtifact;
use presage_models::registry::{Registry, VersionSelector, CHAMPION};

use crate::config::read_config;
use crate::{bad_input, Failure};

/// Overrides of the extract paths in a config's `[extract]` section.
#[derive(Args)]
pub(crate) struct ExtractArgs {
    /// The users extract (.csv, .parquet, a directory of Parquet files or a glob) [default: the config's].
    #[arg(long, value_name = "PATH")]
    pub(crate) users: Option<PathBuf>,
    /// The events extract, in the same forms [default: the config's].
    #[arg(long, value_name = "PATH")]
    pub(crate) events: Option<PathBuf>,
}

/// Which stored version to use.
#[derive(Args)]
pub(crate) struct VersionArgs {
    /// Model name.
    #[arg(long)]
    pub(crate) model: String,
    /// Version number.
    #[arg(long, conflicts_with = "alias")]
    pub(crate) version: Option<u64>,
    /// Alias [default: champion].
    #[arg(long)]
    pub(crate) alias: Option<String>,
}

impl VersionArgs {
    fn selector(&self) -> VersionSelector {
        match (&self.version, &self.alias) {
            (Some(v), _) => VersionSelector::Version(*v),
            (None, Some(a)) => VersionSelector::Alias(a.clone()),
            (None, None) => VersionSelector::Alias(CHAMPION.to_string()),
        }
    }
}

/// Builds the table a spec describes, printing its exclusions and warnings on stderr.
pub(crate) fn build_extract_table(
    spec: &ExtractSpec,
    config: &Path,
    quiet: bool,
) -> Result<BuiltTable, Failure> {
    let built = presage_data::extract::build(spec, config).map_err(bad_input)?;
    if !quiet {
        for warning in built.report.warnings() {
            eprintln!("note: {warning}");
        }
    }
    if built.report.users_in_table == 0 {
        return Err(bad_input(anyhow::anyhow!(
            "{}: no user is left in the table after the exclusions above",
            config.display()
        )));
    }
    Ok(built)
}

/// The extract spec of a `features`, `segments` or `kpis` run, which must
/// have one.
pub(crate) fn required_spec(config: &Path, extract: &ExtractArgs) -> Result<ExtractSpec, Failure> {
    read_config(config)?
        .extract_spec(config, extract.users.as_deref(), extract.events.as_deref())?
        .ok_or_else(|| {
            bad_input(anyhow::anyhow!(
                "{}: no [extract] section; it must name the users and events extracts",
                config.display()
            ))
        })
}

pub(crate) fn version_selector(text: &str) -> VersionSelector {
    match text.parse::<u64>() {
        Ok(v) => VersionSelector::Version(v),
        Err(_) => VersionSelector::Alias(text.to_owned()),
    }
}

pub(crate) fn load(registry: &Path, which: &VersionArgs) -> Result<ModelArtifact, Failure> {
    Registry::new(registry)
        .load(&which.model, &which.selector())
        .map_err(bad_input)
}
