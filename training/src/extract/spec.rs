//! The feature and label spec: the `[extract]`, `[window]`, `[features]`,
//! `[label]` and `[segments]` sections of a training config, parsed with
//! every key checked (a typo is an error, not a silent default) and paths
//! resolved relative to the config file.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::kpis::KpiSpec;
use super::segments::SegmentationSpec;
use super::time::parse_timestamp;
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
    /// `end` in microseconds since the epoch (`None` when not set), or a
    /// message naming the key when it is not a timestamp.
    pub fn end_us(&self) -> Result<Option<i64>, String> {
        self.end
            .as_deref()
            .map(|text| {
                parse_timestamp(text).ok_or_else(|| {
                    format!("[extract] end = {text:?} is not a date; write YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS")
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

/// The observation window: which events features may read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    /// Relative mode: each user's cutoff is `signup_at` plus this many days.
    pub days_after_signup: Option<f64>,
    /// Absolute mode: one cutoff (a date or timestamp) for every user who
    /// signed up before it.
    pub cutoff: Option<String>,
    /// Absolute mode: only the last this many days before the cutoff are
    /// observed (default: everything since signup).
    pub lookback_days: Option<f64>,
}

/// Which events count, by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EventSelection {
    /// `"all"`: every event name in the extract.
    All(AllKeyword),
    /// A list of names; a name ending in `*` matches every name with that prefix.
    Named(Vec<String>),
}

/// The keyword `"all"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllKeyword {
    /// Every event name / attribute.
    All,
}

impl EventSelection {
    /// Whether `name` is selected.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            EventSelection::All(_) => true,
            EventSelection::Named(patterns) => patterns.iter().any(|p| pattern_matches(p, name)),
        }
    }
}

/// `p*` matches names starting with `p`; anything else matches itself.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// The feature families to build, by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureFamilies {
    /// `count_<event>` per event name (`"all"` or a list).
    pub event_counts: Option<EventSelection>,
    /// `events_total`: events in the window.
    #[serde(default = "yes")]
    pub events_total: bool,
    /// `active_days`: distinct calendar days (UTC) with an event.
    #[serde(default)]
    pub active_days: bool,
    /// `sessions`: runs of events separated by more than this many minutes.
    pub session_gap_minutes: Option<f64>,
    /// `hours_to_first_<event>`: hours from signup to the first occurrence
    /// (missing when it did not happen in the window).
    #[serde(default)]
    pub time_to_first: Vec<String>,
    /// `onboarding_completed` (0/1) and `hours_to_onboarding`: the named
    /// event that marks onboarding as done.
    pub onboarding_event: Option<String>,
    /// `days_since_last_event`: from the last event to the cutoff
    /// (missing for a user without events).
    #[serde(default)]
    pub recency: bool,
    /// `activity_trend`: (events in the second half of the window − first
    /// half) / all events, in [−1, 1]; missing without events.
    #[serde(default)]
    pub trend: bool,
    /// `distinct_features_used`: distinct names among these events.
    pub feature_events: Option<Vec<String>>,
    /// `sum_<column>` of numeric event properties.
    #[serde(default)]
    pub property_sums: Vec<String>,
    /// `mean_<column>` of numeric event properties.
    #[serde(default)]
    pub property_means: Vec<String>,
    /// User attributes as features: `"all"` (default) or a list of columns.
    pub attributes: Option<EventSelection>,
}

fn yes() -> bool {
    true
}

/// What is predicted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum LabelSpec {
    /// `churned` = 1 when no qualifying event happens in
    /// `[cutoff + gap_days, cutoff + horizon_days)`.
    Churn {
        /// Days after the cutoff before the label window opens.
        #[serde(default)]
        gap_days: f64,
        /// Days after the cutoff at which the label window closes.
        horizon_days: f64,
        /// Events that count as activity (default: all).
        qualifying_events: Option<Vec<String>>,
    },
    /// `adopted` = 1 when `event` happens in `[cutoff, cutoff +
    /// horizon_days)`; users who did it before the cutoff are excluded.
    Adoption {
        /// The adoption event.
        event: String,
        /// Days after the cutoff at which the label window closes.
        horizon_days: f64,
    },
}

impl LabelSpec {
    /// The label column's name.
    pub fn column(&self) -> &'static str {
        match self {
            LabelSpec::Churn { .. } => "churned",
            LabelSpec::Adoption { .. } => "adopted",
        }
    }

    /// What the label means, in words.
    pub fn describe(&self) -> String {
        match self {
            LabelSpec::Churn {
                gap_days,
                horizon_days,
                qualifying_events,
            } => format!(
                "1 if the user has no {} event from {gap_days} to {horizon_days} days after the cutoff",
                match qualifying_events {
                    Some(names) => format!("qualifying ({})", names.join(", ")),
                    None => "".to_owned(),
                }
            )
            .replace("no  event", "no event"),
            LabelSpec::Adoption {
                event,
                horizon_days,
            } => format!(
                "1 if '{event}' happens within {horizon_days} days after the cutoff (users who did it before are excluded)"
            ),
        }
    }

    /// Days from the cutoff to the end of the label window.
    pub fn horizon_days(&self) -> f64 {
        match self {
            LabelSpec::Churn { horizon_days, .. } | LabelSpec::Adoption { horizon_days, .. } => {
                *horizon_days
            }
        }
    }
}

/// The whole spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtractSpec {
    /// Sources and column names.
    pub extract: ExtractSources,
    /// Observation window.
    pub window: WindowSpec,
    /// Feature families.
    pub features: FeatureFamilies,
    /// Label, if the spec defines one (`features` and `segments` run without).
    pub label: Option<LabelSpec>,
    /// Rule segmentations (`[[segments]]`), for `presage-train segments`.
    pub segments: Vec<SegmentationSpec>,
    /// What `presage-train kpis` reports (`[kpis]`).
    pub kpis: Option<KpiSpec>,
}

/// The spec sections of a config file; other sections belong to the caller.
#[derive(Debug, Deserialize)]
struct SpecSections {
    extract: Option<ExtractSources>,
    window: Option<WindowSpec>,
    features: Option<FeatureFamilies>,
    label: Option<LabelSpec>,
    #[serde(default)]
    segments: Vec<SegmentationSpec>,
    kpis: Option<KpiSpec>,
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
        let config = |message: String| ExtractError::Config {
            path: path.display().to_string(),
            message,
        };
        let sections: SpecSections =
            toml::from_str(text).map_err(|e| config(e.to_string().trim_end().to_owned()))?;
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
            window: sections.window.ok_or_else(|| {
                config(
                    "missing [window]: set days_after_signup = N or cutoff = \"YYYY-MM-DD\"".into(),
                )
            })?,
            features: sections.features.unwrap_or_else(FeatureFamilies::defaults),
            label: sections.label,
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
        let w = &self.window;
        match (w.days_after_signup, &w.cutoff) {
            (Some(_), Some(_)) => {
                return Err("[window] sets both days_after_signup and cutoff; choose one".into())
            }
            (None, None) => {
                return Err("[window] sets neither days_after_signup nor cutoff; choose one".into())
            }
            (Some(d), None) if !(d > 0.0 && d.is_finite()) => {
                return Err(format!(
                    "[window] days_after_signup = {d}: must be a positive number"
                ))
            }
            (Some(_), None) if w.lookback_days.is_some() => {
                return Err("[window] lookback_days applies only with cutoff".into())
            }
            _ => {}
        }
        if self.extract.events_per_pass == 0 {
            return Err("[extract] events_per_pass = 0: must be at least 1".into());
        }
        if let Some(d) = w.lookback_days {
            if !(d > 0.0 && d.is_finite()) {
                return Err(format!(
                    "[window] lookback_days = {d}: must be a positive number"
                ));
            }
        }
        if let Some(g) = self.features.session_gap_minutes {
            if !(g > 0.0 && g.is_finite()) {
                return Err(format!(
                    "[features] session_gap_minutes = {g}: must be a positive number"
                ));
            }
        }
        if let Some(label) = &self.label {
            let h = label.horizon_days();
            if !(h > 0.0 && h.is_finite()) {
                return Err(format!(
                    "[label] horizon_days = {h}: must be a positive number"
                ));
            }
            if let LabelSpec::Churn { gap_days, .. } = label {
                if !(*gap_days >= 0.0 && *gap_days < h) {
                    return Err(format!(
                        "[label] gap_days = {gap_days}: must be at least 0 and below horizon_days ({h})"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The label, or an error telling the user to add one.
    pub fn label(&self, path: &Path) -> Result<&LabelSpec, ExtractError> {
        self.label.as_ref().ok_or_else(|| ExtractError::Config {
            path: path.display().to_string(),
            message: "no [label] section: add kind = \"churn\" (with horizon_days) or kind = \"adoption\" (with event and horizon_days)".into(),
        })
    }
}

impl FeatureFamilies {
    /// The numeric event properties read (sums and means), sorted, once each.
    pub fn properties(&self) -> Vec<&String> {
        let mut properties: Vec<&String> = self.property_sums.iter().collect();
        properties.extend(&self.property_means);
        properties.sort();
        properties.dedup();
        properties
    }

    /// Families built when the config has no `[features]` section.
    pub fn defaults() -> Self {
        FeatureFamilies {
            event_counts: Some(EventSelection::All(AllKeyword::All)),
            events_total: true,
            active_days: true,
            session_gap_minutes: Some(30.0),
            time_to_first: Vec::new(),
            onboarding_event: None,
            recency: true,
            trend: true,
            feature_events: None,
            property_sums: Vec::new(),
            property_means: Vec::new(),
            attributes: None,
        }
    }
}
