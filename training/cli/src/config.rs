//! A `presage-train` config file, read once into one type: every section
//! any subcommand uses (`model`, `algo`, `[params]`, the extract and feature
//! spec sections, `[[segments]]`, `[kpis]`, `[gate]`, `[experiment]` and
//! `[[outcomes]]`). An unknown section or key is an error naming it and the
//! file; each subcommand then takes the sections it needs and the library
//! checks their values.

use std::path::Path;

use anyhow::Context;
use presage_data::extract::spec::{
    ExtractSections, ExtractSources, ExtractSpec, KpiSpec, SegmentationSpec,
};
use presage_experiment::spec::{ExperimentSettings, ExperimentSpec, OutcomeSpec, PathOverrides};
use presage_learners::params::ParamSet;
use presage_models::feature_spec::spec::{FeatureFamilies, LabelSpec, WindowSpec};
use presage_pipeline::retrain::Gate;
use serde::Deserialize;

use crate::{bad_input, Failure};

/// Every section of a config file.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// Model name in the registry.
    pub(crate) model: Option<String>,
    /// `gbm` or `rf`.
    pub(crate) algo: Option<String>,
    /// Hyper-parameters.
    #[serde(default)]
    pub(crate) params: ParamSet,
    /// Where the extracts are (`[extract]`).
    extract: Option<ExtractSources>,
    /// The observation window (`[window]`).
    window: Option<WindowSpec>,
    /// The feature families (`[features]`).
    features: Option<FeatureFamilies>,
    /// The label (`[label]`).
    label: Option<LabelSpec>,
    /// Rule segmentations (`[[segments]]`).
    #[serde(default)]
    segments: Vec<SegmentationSpec>,
    /// What `kpis` reports (`[kpis]`).
    kpis: Option<KpiSpec>,
    /// The retraining gate (`[gate]`).
    gate: Option<Gate>,
    /// The experiment's assignment log and settings (`[experiment]`).
    experiment: Option<ExperimentSettings>,
    /// The experiment's outcomes (`[[outcomes]]`).
    #[serde(default)]
    outcomes: Vec<OutcomeSpec>,
}

/// Reads and parses the config at `path`.
pub(crate) fn read_config(path: &Path) -> Result<Config, Failure> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))
        .map_err(bad_input)?;
    toml::from_str(&text).map_err(|e| {
        bad_input(anyhow::anyhow!(
            "{}: {}",
            path.display(),
            e.to_string().trim_end()
        ))
    })
}

impl Config {
    /// The extract spec, if the config has an `[extract]` section, with the
    /// `--users` / `--events` paths instead of the config's.
    pub(crate) fn extract_spec(
        &self,
        path: &Path,
        users: Option<&Path>,
        events: Option<&Path>,
    ) -> Result<Option<ExtractSpec>, Failure> {
        let sections = ExtractSections {
            extract: self.extract.clone(),
            window: self.window.clone(),
            features: self.features.clone(),
            label: self.label.clone(),
            segments: self.segments.clone(),
            kpis: self.kpis.clone(),
        };
        let spec = ExtractSpec::from_sections(sections, path, users, events).map_err(bad_input)?;
        if spec.is_none() && (users.is_some() || events.is_some()) {
            return Err(bad_input(anyhow::anyhow!(
                "{}: --users/--events need an [extract] section in the config",
                path.display()
            )));
        }
        Ok(spec)
    }

    /// The retraining gate (the defaults without a `[gate]` section).
    pub(crate) fn gate(&self, path: &Path) -> Result<Gate, Failure> {
        let gate = self.gate.clone().unwrap_or_default();
        gate.check(path).map_err(bad_input)?;
        Ok(gate)
    }

    /// The experiment the config describes.
    pub(crate) fn experiment(
        &self,
        path: &Path,
        overrides: PathOverrides<'_>,
    ) -> Result<ExperimentSpec, Failure> {
        let missing = |section: &str, what: &str| {
            bad_input(anyhow::anyhow!(
                "{}: no {section} section; {what}",
                path.display()
            ))
        };
        let extract = self
            .extract
            .clone()
            .ok_or_else(|| missing("[extract]", "it must name the users and events extracts"))?;
        let experiment = self.experiment.clone().ok_or_else(|| {
            missing(
                "[experiment]",
                "it must name the assignments log, the control and the treatment",
            )
        })?;
        ExperimentSpec::from_sections(extract, experiment, self.outcomes.clone(), path, overrides)
            .map_err(bad_input)
    }
}
