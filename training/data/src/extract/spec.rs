//! What the extract builder is asked to do: where the extracts are and what
//! their columns are called (`[extract]`), the feature spec it builds
//! (`[window]`, `[features]`, `[label]`: the plain types of
//! [`presage_models::feature_spec::spec`], shared with serving), and the
//! `[[segments]]` and `[kpis]` sections that work on the built table. Every
//! key is checked (a typo is an error, not a silent default) and paths
//! resolve relative to the config file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use presage_models::feature_spec::spec::{
    FeatureFamilies, FeatureSpec, LabelSpec, SpecError, WindowSpec,
};
use presage_models::time::parse_timestamp;

use super::ExtractError;

/// Where the extracts are and what their columns are called.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractSources {
    /// The `users` extract: a CSV or Parquet file, a directory of Parquet
    /// files, or a glob.
    pub users: Option<PathBuf>,
    /// The `events` extract, in the same forms.
    pub events: Option<PathBuf>,
    /// User id column (in both extracts).
    #[serde(default = "default_user_id")]
    pub user_id: String,
    /// Signup timestamp column of `users`.
    #[serde(default = "default_signup_at")]
    pub signup_at: String,
    /// Event name column of `events`.
    #[serde(default = "default_event")]
    pub event: String,
    /// Event timestamp column of `events`.
    #[serde(default = "default_occurred_at")]
    pub occurred_at: String,
    /// Optional consent column of `users`: rows where it is false (or
    /// `false`/`no`/`0` as text) are excluded.
    pub consent: Option<String>,
    /// Optional erasure list: a text file of user ids, one per line,
    /// excluded from features, labels and every output.
    pub erasure: Option<PathBuf>,
    /// The end of the extract: label windows must end at or before it.
    /// Defaults to the last event's timestamp.
    pub end: Option<String>,
    /// User columns that are not features (besides id, signup and consent).
    #[serde(default)]
    pub ignore_attributes: Vec<String>,
    /// Events read per pass: an extract with more events is read in
    /// several passes, each for an equal share of the users, so memory stays
    /// bounded whatever the extract's size (the default, 30 million, builds
    /// 1M users / 55M events in 2 passes and about 2.5 GiB).
    #[serde(default = "default_events_per_pass")]
    pub events_per_pass: u64,
}

impl ExtractSources {
    /// `end` in microseconds since the epoch (`None` when not set), or an
    /// error naming the key when it is not a timestamp.
    pub fn end_us(&self) -> Result<Option<i64>, SpecError> {
        self.end
            .as_deref()
            .map(|text| {
                parse_timestamp(text).ok_or_else(|| SpecError {
                    key: "extract.end",
                    message: format!(
                        "[extract] end = {text:?} is not a date; write YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS"
                    ),
                })
            })
            .transpose()
    }
}

fn default_events_per_pass() -> u64 {
    30_000_000
}

fn default_user_id() -> String {
    "user_id".to_owned()
}
fn default_signup_at() -> String {
    "signup_at".to_owned()
}
fn default_event() -> String {
    "event".to_owned()
}
fn default_occurred_at() -> String {
    "occurred_at".to_owned()
}

/// The whole spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractSpec {
    /// Sources and column names.
    pub extract: ExtractSources,
    /// Window, feature families and label.
    pub feature_spec: FeatureSpec,
    /// Rule segmentations (`[[segments]]`), for `presage-train segments`.
    pub segments: Vec<SegmentationSpec>,
    /// What `presage-train kpis` reports (`[kpis]`).
    pub kpis: Option<KpiSpec>,
}

/// The sections of a config file the extract builder reads, as the caller
/// parsed them (other sections belong to the caller: `presage-train` reads
/// the whole file once into its own config type and hands these over).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ExtractSections {
    /// `[extract]`.
    pub extract: Option<ExtractSources>,
    /// `[window]`.
    pub window: Option<WindowSpec>,
    /// `[features]`.
    pub features: Option<FeatureFamilies>,
    /// `[label]`.
    pub label: Option<LabelSpec>,
    /// `[[segments]]`.
    #[serde(default)]
    pub segments: Vec<SegmentationSpec>,
    /// `[kpis]`.
    pub kpis: Option<KpiSpec>,
}

impl ExtractSpec {
    /// Reads the spec sections of `text` (the config at `path`): `None`
    /// when the config has no `[extract]` section. Relative paths resolve
    /// against the config's directory; `users`/`events` override the config.
    pub fn from_config(
        text: &str,
        path: &Path,
        users: Option<&Path>,
        events: Option<&Path>,
    ) -> Result<Option<ExtractSpec>, ExtractError> {
        let sections: ExtractSections = toml::from_str(text).map_err(|e| ExtractError::Config {
            path: path.display().to_string(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        Self::from_sections(sections, path, users, events)
    }

    /// As [`ExtractSpec::from_config`], from sections already parsed.
    pub fn from_sections(
        sections: ExtractSections,
        path: &Path,
        users: Option<&Path>,
        events: Option<&Path>,
    ) -> Result<Option<ExtractSpec>, ExtractError> {
        let config = |message: String| ExtractError::Config {
            path: path.display().to_string(),
            message,
        };
        let Some(mut extract) = sections.extract else {
            for (present, name) in [
                (sections.window.is_some(), "window"),
                (sections.features.is_some(), "features"),
                (sections.label.is_some(), "label"),
                (!sections.segments.is_empty(), "segments"),
                (sections.kpis.is_some(), "kpis"),
            ] {
                if present {
                    return Err(config(format!(
                        "[{name}] needs an [extract] section naming the users and events extracts"
                    )));
                }
            }
            return Ok(None);
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        extract.users = users.map(Path::to_path_buf).or(extract.users.map(resolve));
        extract.events = events
            .map(Path::to_path_buf)
            .or(extract.events.map(resolve));
        extract.erasure = extract.erasure.map(resolve);
        let spec = ExtractSpec {
            extract,
            feature_spec: FeatureSpec {
                window: sections.window.ok_or_else(|| {
                    config(
                        "missing [window]: set days_after_signup = N or cutoff = \"YYYY-MM-DD\""
                            .into(),
                    )
                })?,
                features: sections.features.unwrap_or_else(FeatureFamilies::defaults),
                label: sections.label,
            },
            segments: sections.segments,
            kpis: sections.kpis,
        };
        spec.check().map_err(config)?;
        Ok(Some(spec))
    }

    /// Checks values the types cannot.
    fn check(&self) -> Result<(), String> {
        if self.extract.users.is_none() {
            return Err("[extract] users is not set (or pass --users PATH)".into());
        }
        if self.extract.events.is_none() {
            return Err("[extract] events is not set (or pass --events PATH)".into());
        }
        if self.extract.events_per_pass == 0 {
            return Err("[extract] events_per_pass = 0: must be at least 1".into());
        }
        self.feature_spec.check().map_err(|e| e.message)
    }

    /// The label, or an error telling the user to add one.
    pub fn label(&self, path: &Path) -> Result<&LabelSpec, ExtractError> {
        self.feature_spec.label.as_ref().ok_or_else(|| ExtractError::Config {
            path: path.display().to_string(),
            message: "no [label] section: add kind = \"churn\" (with horizon_days) or kind = \"adoption\" (with event and horizon_days)".into(),
        })
    }
}

/// The `[kpis]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KpiSpec {
    /// The key action whose time from signup is reported.
    pub key_action: Option<String>,
    /// Onboarding steps, in order.
    #[serde(default)]
    pub funnel: Vec<String>,
    /// Weeks after signup reported in the cohort retention table.
    #[serde(default = "four")]
    pub retention_weeks: u32,
}

fn four() -> u32 {
    4
}

/// A segmentation in the spec: `[[segments]]` with a name and rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentationSpec {
    /// Column name of the segmentation in the output.
    pub name: String,
    /// Rules in order; the first whose condition holds assigns its segment.
    pub rules: Vec<SegmentRuleSpec>,
}

/// One rule of a segmentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentRuleSpec {
    /// The segment assigned.
    pub segment: String,
    /// The condition; absent = everyone not matched by an earlier rule.
    pub when: Option<String>,
}
