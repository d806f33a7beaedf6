//! The serde types of the feature spec and the checks the types cannot
//! express. Every struct denies unknown keys, so a typo in a config is an
//! error naming the key rather than a silent default; [`FeatureSpec`]
//! itself ignores sections it does not own (`[extract]`, `[[segments]]`,
//! `[kpis]`, ...), which is also how it reads the spec JSON stored in
//! format-2 artifacts.

use serde::{Deserialize, Serialize};

use crate::time::parse_timestamp;

/// A value in the spec that its type allows but the spec does not. The
/// message names the section and key (`[window] lookback_days = -1: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SpecError {
    /// The key at fault, as `section.key`.
    pub key: &'static str,
    /// What is wrong and how to fix it, starting with `[section] key`.
    pub message: String,
}

impl SpecError {
    fn new(key: &'static str, message: String) -> Self {
        SpecError { key, message }
    }
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

impl WindowSpec {
    /// The absolute cutoff in microseconds since the epoch (`None` in
    /// relative mode).
    pub fn cutoff_us(&self) -> Result<Option<i64>, SpecError> {
        self.cutoff
            .as_deref()
            .map(|text| {
                parse_timestamp(text).ok_or_else(|| {
                    SpecError::new(
                        "window.cutoff",
                        format!("[window] cutoff = {text:?} is not a date; write YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS"),
                    )
                })
            })
            .transpose()
    }

    /// The window in words, as feature descriptions use it ("in the first
    /// 7 days after signup").
    pub fn describe(&self) -> String {
        match (self.days_after_signup, &self.cutoff) {
            (Some(days), _) => format!("in the first {days} days after signup"),
            (None, Some(cutoff)) => match self.lookback_days {
                Some(days) => format!("in the {days} days before {cutoff}"),
                None => format!("from signup until {cutoff}"),
            },
            (None, None) => "in the observation window".to_owned(),
        }
    }
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

/// The names among `all` that `patterns` select, in `all`'s order.
pub fn resolve_patterns(patterns: &[String], all: &[String]) -> Vec<String> {
    all.iter()
        .filter(|n| patterns.iter().any(|p| pattern_matches(p, n)))
        .cloned()
        .collect()
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

impl Default for FeatureFamilies {
    fn default() -> Self {
        FeatureFamilies::defaults()
    }
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

    /// Days from the cutoff to the start of the label window.
    pub fn gap_days(&self) -> f64 {
        match self {
            LabelSpec::Churn { gap_days, .. } => *gap_days,
            LabelSpec::Adoption { .. } => 0.0,
        }
    }
}

/// The whole feature spec: window, feature families and (for training) the
/// label. This is the one definition training and serving share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// Observation window.
    pub window: WindowSpec,
    /// Feature families (the defaults when the config has no `[features]`).
    #[serde(default)]
    pub features: FeatureFamilies,
    /// Label, if the spec defines one (`features` and `segments` run without).
    #[serde(default)]
    pub label: Option<LabelSpec>,
}

fn positive(value: f64) -> bool {
    value > 0.0 && value.is_finite()
}

impl FeatureSpec {
    /// Checks the values the types cannot: one window mode, positive
    /// durations, a label gap inside its horizon, a cutoff that is a date.
    pub fn check(&self) -> Result<(), SpecError> {
        let w = &self.window;
        match (w.days_after_signup, &w.cutoff) {
            (Some(_), Some(_)) => {
                return Err(SpecError::new(
                    "window",
                    "[window] sets both days_after_signup and cutoff; choose one".into(),
                ))
            }
            (None, None) => {
                return Err(SpecError::new(
                    "window",
                    "[window] sets neither days_after_signup nor cutoff; choose one".into(),
                ))
            }
            (Some(d), None) if !positive(d) => {
                return Err(SpecError::new(
                    "window.days_after_signup",
                    format!("[window] days_after_signup = {d}: must be a positive number"),
                ))
            }
            (Some(_), None) if w.lookback_days.is_some() => {
                return Err(SpecError::new(
                    "window.lookback_days",
                    "[window] lookback_days applies only with cutoff".into(),
                ))
            }
            _ => {}
        }
        if let Some(d) = w.lookback_days {
            if !positive(d) {
                return Err(SpecError::new(
                    "window.lookback_days",
                    format!("[window] lookback_days = {d}: must be a positive number"),
                ));
            }
        }
        w.cutoff_us()?;
        if let Some(g) = self.features.session_gap_minutes {
            if !positive(g) {
                return Err(SpecError::new(
                    "features.session_gap_minutes",
                    format!("[features] session_gap_minutes = {g}: must be a positive number"),
                ));
            }
        }
        if let Some(label) = &self.label {
            let h = label.horizon_days();
            if !positive(h) {
                return Err(SpecError::new(
                    "label.horizon_days",
                    format!("[label] horizon_days = {h}: must be a positive number"),
                ));
            }
            if let LabelSpec::Churn { gap_days, .. } = label {
                if !(*gap_days >= 0.0 && *gap_days < h) {
                    return Err(SpecError::new(
                        "label.gap_days",
                        format!("[label] gap_days = {gap_days}: must be at least 0 and below horizon_days ({h})"),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_text: &str) -> FeatureSpec {
        toml::from_str(toml_text).expect("spec parses")
    }

    #[test]
    fn defaults_apply_without_a_features_section() {
        let s = spec("[window]\ndays_after_signup = 7\n");
        assert_eq!(s.features, FeatureFamilies::defaults());
        assert_eq!(s.label, None);
        s.check().expect("valid");
    }

    #[test]
    fn other_sections_are_ignored_but_typos_inside_the_spec_are_not() {
        spec("[extract]\nusers = \"u.csv\"\n[window]\ndays_after_signup = 7\n");
        let err =
            toml::from_str::<FeatureSpec>("[window]\ndays_after_sigup = 7\n").expect_err("typo");
        assert!(err.to_string().contains("days_after_sigup"), "{err}");
    }

    #[test]
    fn checks_name_the_key() {
        for (text, key) in [
            ("[window]\ndays_after_signup = 7\ncutoff = \"2024-01-01\"\n", "window"),
            ("[window]\n", "window"),
            ("[window]\ndays_after_signup = -1\n", "window.days_after_signup"),
            ("[window]\ndays_after_signup = 7\nlookback_days = 3\n", "window.lookback_days"),
            ("[window]\ncutoff = \"2024-01-01\"\nlookback_days = 0\n", "window.lookback_days"),
            ("[window]\ncutoff = \"last tuesday\"\n", "window.cutoff"),
            ("[window]\ndays_after_signup = 7\n[features]\nsession_gap_minutes = 0\n", "features.session_gap_minutes"),
            ("[window]\ndays_after_signup = 7\n[label]\nkind = \"churn\"\nhorizon_days = 0\n", "label.horizon_days"),
            ("[window]\ndays_after_signup = 7\n[label]\nkind = \"churn\"\nhorizon_days = 7\ngap_days = 7\n", "label.gap_days"),
        ] {
            let err = spec(text).check().expect_err(text);
            assert_eq!(err.key, key, "{text}: {err}");
            let section = key.split('.').next().unwrap();
            assert!(err.message.starts_with(&format!("[{section}]")), "{err}");
        }
    }
}
