//! The experiment config: `[extract]` (where the users and events are, as
//! for training), `[experiment]` (the assignment log, the arms, the planned
//! split and the test settings) and `[[outcomes]]`, each key checked.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use presage_data::extract::spec::ExtractSources;
use presage_data::extract::ExtractError;

/// The `[experiment]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSettings {
    /// The assignment extract (CSV, Parquet, a directory or a glob).
    pub assignments: Option<PathBuf>,
    /// Variant column of the assignments.
    #[serde(default = "default_variant")]
    pub variant: String,
    /// Assignment timestamp column.
    #[serde(default = "default_assigned_at")]
    pub assigned_at: String,
    /// Optional segment at assignment: a column of the assignments, or
    /// else of the users extract.
    pub segment: Option<String>,
    /// The control variant's value.
    #[serde(default = "default_control")]
    pub control: String,
    /// The treatment variant's value.
    #[serde(default = "default_treatment")]
    pub treatment: String,
    /// Planned share of users in treatment.
    #[serde(default = "half")]
    pub treatment_share: f64,
    /// Significance level of the tests (two-sided).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Power for the minimum detectable effect and the sample size.
    #[serde(default = "default_power")]
    pub power: f64,
    /// The smallest relative lift worth detecting (0.05 = 5% of the
    /// control's rate or mean): the sample size is computed for it.
    #[serde(default = "default_target_lift")]
    pub target_lift: f64,
    /// Sample-ratio-mismatch threshold: a split test p-value below it
    /// flags the experiment as invalid.
    #[serde(default = "default_srm_alpha")]
    pub srm_alpha: f64,
}

fn default_variant() -> String {
    "variant".into()
}
fn default_assigned_at() -> String {
    "assigned_at".into()
}
fn default_control() -> String {
    "control".into()
}
fn default_treatment() -> String {
    "treatment".into()
}
fn half() -> f64 {
    0.5
}
fn default_alpha() -> f64 {
    0.05
}
fn default_power() -> f64 {
    0.8
}
fn default_target_lift() -> f64 {
    0.05
}
fn default_srm_alpha() -> f64 {
    0.001
}

/// What kind of outcome, and so which test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// 1 if `event` happens within `within_days` of assignment.
    Conversion,
    /// 1 if the user has any event on days `from_day..to_day` after assignment.
    Retention,
    /// Hours from assignment to the first `event`, capped at `within_days`
    /// (users who never do it count as the cap).
    TimeToEvent,
    /// How many `event`s within `within_days` of assignment.
    Count,
    /// How many sessions within `within_days` of assignment: runs of events
    /// (any event) no more than `session_gap_minutes` apart, as the
    /// `sessions` feature counts them.
    Sessions,
}

impl OutcomeKind {
    /// Its name in the config.
    pub fn name(self) -> &'static str {
        match self {
            OutcomeKind::Conversion => "conversion",
            OutcomeKind::Retention => "retention",
            OutcomeKind::TimeToEvent => "time_to_event",
            OutcomeKind::Count => "count",
            OutcomeKind::Sessions => "sessions",
        }
    }

    /// Whether the outcome is 0/1 (tested as proportions) rather than a
    /// number (tested with Welch's t).
    pub fn is_binary(self) -> bool {
        matches!(self, OutcomeKind::Conversion | OutcomeKind::Retention)
    }
}

/// One `[[outcomes]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeSpec {
    /// Name in the report.
    pub name: String,
    /// What is measured.
    pub kind: OutcomeKind,
    /// The event (conversion, time_to_event, count).
    pub event: Option<String>,
    /// Days after assignment (conversion, time_to_event, count).
    pub within_days: Option<f64>,
    /// First day of the retention window (retention).
    pub from_day: Option<f64>,
    /// Day after the last of the retention window (retention).
    pub to_day: Option<f64>,
    /// Largest gap inside a session, in minutes (sessions; default 30).
    pub session_gap_minutes: Option<f64>,
}

/// The default session gap, in minutes.
pub const SESSION_GAP_MINUTES: f64 = 30.0;

impl OutcomeSpec {
    /// Days after assignment by which the outcome is complete.
    pub fn horizon_days(&self) -> f64 {
        match self.kind {
            OutcomeKind::Retention => self.to_day.unwrap_or(0.0),
            _ => self.within_days.unwrap_or(0.0),
        }
    }

    /// A sentence saying what is measured.
    pub fn describe(&self) -> String {
        let event = self.event.as_deref().unwrap_or("");
        let days = self.within_days.unwrap_or(0.0);
        match self.kind {
            OutcomeKind::Conversion => format!("share of users with {event} within {days} days"),
            OutcomeKind::Retention => format!(
                "share of users with any event from day {} to before day {} after assignment",
                self.from_day.unwrap_or(0.0),
                self.to_day.unwrap_or(0.0)
            ),
            OutcomeKind::TimeToEvent => format!(
                "mean hours to the first {event}, capped at {} hours (users without it count as the cap)",
                days * 24.0
            ),
            OutcomeKind::Count => format!("mean number of {event} events within {days} days"),
            OutcomeKind::Sessions => format!(
                "mean number of sessions (events at most {} minutes apart) within {days} days",
                self.session_gap_minutes.unwrap_or(SESSION_GAP_MINUTES)
            ),
        }
    }

    fn check(&self) -> Result<(), String> {
        let name = &self.name;
        let positive = |key: &str, v: Option<f64>| match v {
            Some(d) if d > 0.0 && d.is_finite() => Ok(()),
            Some(d) => Err(format!(
                "[[outcomes]] {name}: {key} = {d}: must be a positive number"
            )),
            None => Err(format!(
                "[[outcomes]] {name}: kind = \"{}\" needs {key}",
                self.kind.name()
            )),
        };
        let unused = |key: &str, present: bool| {
            if present {
                Err(format!(
                    "[[outcomes]] {name}: {key} does not apply to kind = \"{}\"",
                    self.kind.name()
                ))
            } else {
                Ok(())
            }
        };
        if name.trim().is_empty() {
            return Err("[[outcomes]]: an outcome has an empty name".into());
        }
        match self.kind {
            OutcomeKind::Retention => {
                positive("to_day", self.to_day)?;
                let from = self.from_day.unwrap_or(0.0);
                if !(from >= 0.0 && from < self.to_day.unwrap_or(0.0)) {
                    return Err(format!(
                        "[[outcomes]] {name}: from_day = {from} must be at least 0 and below to_day"
                    ));
                }
                unused("event", self.event.is_some())?;
                unused("within_days", self.within_days.is_some())?;
                unused("session_gap_minutes", self.session_gap_minutes.is_some())
            }
            OutcomeKind::Sessions => {
                positive("within_days", self.within_days)?;
                if self.session_gap_minutes.is_some() {
                    positive("session_gap_minutes", self.session_gap_minutes)?;
                }
                unused("event", self.event.is_some())?;
                unused("from_day", self.from_day.is_some())?;
                unused("to_day", self.to_day.is_some())
            }
            _ => {
                unused("session_gap_minutes", self.session_gap_minutes.is_some())?;
                if self.event.as_deref().is_none_or(|e| e.trim().is_empty()) {
                    return Err(format!(
                        "[[outcomes]] {name}: kind = \"{}\" needs event = \"...\"",
                        self.kind.name()
                    ));
                }
                positive("within_days", self.within_days)?;
                unused("from_day", self.from_day.is_some())?;
                unused("to_day", self.to_day.is_some())
            }
        }
    }
}

/// Paths given on the command line instead of the config's.
#[derive(Debug, Clone, Copy, Default)]
pub struct PathOverrides<'a> {
    /// The users extract.
    pub users: Option<&'a Path>,
    /// The events extract.
    pub events: Option<&'a Path>,
    /// The assignment log.
    pub assignments: Option<&'a Path>,
}

/// The whole experiment config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSpec {
    /// Users and events extracts and their column names.
    pub extract: ExtractSources,
    /// The assignment log and test settings.
    pub experiment: ExperimentSettings,
    /// The outcomes, in report order.
    pub outcomes: Vec<OutcomeSpec>,
}

impl ExperimentSpec {
    /// The experiment from its config sections (as the caller parsed them
    /// from the config at `path`); `users`, `events` and `assignments`
    /// override its paths. Relative paths resolve against the config's
    /// directory.
    pub fn from_sections(
        extract: ExtractSources,
        experiment: ExperimentSettings,
        outcomes: Vec<OutcomeSpec>,
        path: &Path,
        overrides: PathOverrides<'_>,
    ) -> Result<ExperimentSpec, ExtractError> {
        let mut spec = ExperimentSpec {
            extract,
            experiment,
            outcomes,
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let x = &mut spec.extract;
        x.users = overrides
            .users
            .map(Path::to_path_buf)
            .or(x.users.take().map(resolve));
        x.events = overrides
            .events
            .map(Path::to_path_buf)
            .or(x.events.take().map(resolve));
        x.erasure = x.erasure.take().map(resolve);
        let e = &mut spec.experiment;
        e.assignments = overrides
            .assignments
            .map(Path::to_path_buf)
            .or(e.assignments.take().map(resolve));
        spec.check().map_err(|message| ExtractError::Config {
            path: path.display().to_string(),
            message,
        })?;
        Ok(spec)
    }

    fn check(&self) -> Result<(), String> {
        let e = &self.experiment;
        if self.extract.events.is_none() {
            return Err("[extract] events is not set (or pass --events PATH)".into());
        }
        self.extract.end_us().map_err(|e| e.message)?;
        if e.assignments.is_none() {
            return Err("[experiment] assignments is not set (or pass --assignments PATH)".into());
        }
        if e.control == e.treatment {
            return Err(format!(
                "[experiment] control and treatment are both {:?}; name the two variants",
                e.control
            ));
        }
        for (key, value, low, high) in [
            ("treatment_share", e.treatment_share, 0.0, 1.0),
            ("alpha", e.alpha, 0.0, 0.5),
            ("power", e.power, 0.0, 1.0),
            ("srm_alpha", e.srm_alpha, 0.0, 0.5),
        ] {
            if !(value > low && value < high) {
                return Err(format!(
                    "[experiment] {key} = {value}: must be strictly between {low} and {high}"
                ));
            }
        }
        if !(e.target_lift > 0.0 && e.target_lift.is_finite()) {
            return Err(format!(
                "[experiment] target_lift = {}: must be a positive share (0.05 = 5%)",
                e.target_lift
            ));
        }
        if self.outcomes.is_empty() {
            return Err("no [[outcomes]]: define at least one (kind = \"conversion\", \"retention\", \"time_to_event\", \"count\" or \"sessions\")".into());
        }
        for (i, o) in self.outcomes.iter().enumerate() {
            o.check()?;
            if self.outcomes[..i].iter().any(|p| p.name == o.name) {
                return Err(format!("[[outcomes]]: the name {:?} is used twice", o.name));
            }
        }
        Ok(())
    }
}
