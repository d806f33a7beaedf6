//! Segment policies: how a model's probability becomes an onboarding segment.
//!
//! A policy is a TOML file with a `mode` and a list of `segments`, each a band
//! `[from, to)` (the last band includes its upper end) of either the
//! probability (`mode = "threshold"`) or the score's percentile rank among the
//! model's validation scores (`mode = "percentile"`, so "the top 10% most
//! likely to churn" stays 10% when the model changes). Bands must cover
//! `[0, 1]` with no gap and no overlap. Each segment carries the onboarding
//! payload the caller acts on: a `flow` and free-form `attributes`.
//!
//! Optional `rules` override the band. They are evaluated in order and the
//! first match wins. The grammar is small and checked against the model when
//! the policy loads, so a typo is a load-time error, not a silent miss:
//!
//! ```text
//! rule     := clause ("and" clause)*
//! clause   := feature op value | feature "is missing" | feature "is present"
//! op       := "<" | "<=" | ">" | ">=" | "==" | "!="
//! value    := number | "quoted category"
//! ```
//! (parsed by [`crate::rule`]). Optional `[[triggers]]` declare when the
//! server acts on its own for a user ([`crate::trigger`]). Policies live here, in the shared core, so
//! that `presage-serve` and `presage-train compare` segment alike.
//! The feature must be in the model's schema; numeric features compare with
//! numbers, categorical features with quoted categories the model knows
//! (`==` and `!=` only). A missing value never matches a comparison.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::artifact::ScoreQuantiles;
use crate::rule::Condition;
use crate::schema::FeatureSchema;
use crate::trigger::{self, Trigger, TriggerSpec};
use serde::{Deserialize, Serialize};

/// Why a policy cannot be used; the message names the file and the problem.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct PolicyError {
    /// The policy file (or `default`).
    pub source_name: String,
    /// What is wrong.
    pub message: String,
}

/// What a band is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyMode {
    /// Bands of the probability.
    Threshold,
    /// Bands of the percentile rank among validation scores.
    Percentile,
}

/// A segment as written in the TOML file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentSpec {
    name: String,
    from: f64,
    to: f64,
    flow: String,
    #[serde(default)]
    attributes: toml::Table,
}

/// A rule as written in the TOML file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    when: String,
    segment: String,
}

/// The TOML file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicySpec {
    mode: PolicyMode,
    segments: Vec<SegmentSpec>,
    #[serde(default)]
    rules: Vec<RuleSpec>,
    #[serde(default)]
    triggers: Vec<TriggerSpec>,
}

/// One segment: its band and its onboarding payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    /// Segment name returned to callers.
    pub name: String,
    /// Lower end of the band (inclusive).
    pub from: f64,
    /// Upper end of the band (exclusive, except 1.0).
    pub to: f64,
    /// Onboarding flow id.
    pub flow: String,
    /// Free-form onboarding attributes.
    pub attributes: serde_json::Map<String, serde_json::Value>,
}

/// A checked override rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The rule as written.
    pub when: String,
    condition: Condition,
    /// Index of the segment it assigns.
    segment: usize,
}

/// A checked policy for one model.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentPolicy {
    /// Where it came from (file path, or `default`).
    pub source: String,
    /// Threshold or percentile bands.
    pub mode: PolicyMode,
    /// Segments sorted by band.
    pub segments: Vec<Segment>,
    /// Override rules, in order.
    pub rules: Vec<Rule>,
    /// Triggers (see [`crate::trigger`]).
    pub triggers: Vec<Trigger>,
}

/// The segment chosen for one prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assignment<'a> {
    /// Position of the segment in [`SegmentPolicy::segments`].
    pub index: usize,
    /// The segment.
    pub segment: &'a Segment,
    /// The rule that overrode the band, if any.
    pub rule: Option<&'a str>,
}

fn toml_to_json(value: &toml::Value) -> serde_json::Value {
    match value {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(toml_to_json).collect())
        }
        toml::Value::Table(table) => serde_json::Value::Object(
            table
                .iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// The policy file for `model`: `explicit` when given, else
/// `policy.toml` beside the model in the registry when it exists.
pub fn policy_file(explicit: Option<&Path>, registry_root: &Path, model: &str) -> Option<PathBuf> {
    match explicit {
        Some(path) => Some(path.to_path_buf()),
        None => {
            let beside = registry_root.join(model).join("policy.toml");
            beside.exists().then_some(beside)
        }
    }
}

impl SegmentPolicy {
    /// The policy in `file`, or the default policy without one.
    pub fn load_or_default(
        file: Option<&Path>,
        schema: &FeatureSchema,
    ) -> Result<SegmentPolicy, PolicyError> {
        match file {
            Some(path) => SegmentPolicy::load(path, schema),
            None => Ok(SegmentPolicy::default_policy()),
        }
    }

    /// The policy used for a model without one: percentile bands `high` =
    /// top 10%, `medium` = next 20%, `low` = the rest.
    pub fn default_policy() -> SegmentPolicy {
        let segment = |name: &str, from: f64, to: f64| Segment {
            name: name.into(),
            from,
            to,
            flow: name.into(),
            attributes: serde_json::Map::new(),
        };
        SegmentPolicy {
            source: "default".into(),
            mode: PolicyMode::Percentile,
            segments: vec![
                segment("low", 0.0, 0.7),
                segment("medium", 0.7, 0.9),
                segment("high", 0.9, 1.0),
            ],
            rules: Vec::new(),
            triggers: Vec::new(),
        }
    }

    /// Reads and checks a policy file against a model's schema.
    pub fn load(path: &Path, schema: &FeatureSchema) -> Result<SegmentPolicy, PolicyError> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            source_name: source.clone(),
            message: e.to_string(),
        })?;
        Self::parse(&text, &source, schema)
    }

    /// Parses and checks a policy; `source` names it in errors.
    pub fn parse(
        text: &str,
        source: &str,
        schema: &FeatureSchema,
    ) -> Result<SegmentPolicy, PolicyError> {
        let fail = |message: String| PolicyError {
            source_name: source.to_string(),
            message,
        };
        let spec: PolicySpec =
            toml::from_str(text).map_err(|e| fail(e.to_string().trim_end().to_string()))?;
        if spec.segments.is_empty() {
            return Err(fail("a policy needs at least one segment".into()));
        }
        let mut segments: Vec<Segment> = spec
            .segments
            .iter()
            .map(|s| Segment {
                name: s.name.clone(),
                from: s.from,
                to: s.to,
                flow: s.flow.clone(),
                attributes: s
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), toml_to_json(v)))
                    .collect(),
            })
            .collect();
        let mut names = BTreeMap::new();
        for s in &segments {
            if names.insert(s.name.clone(), ()).is_some() {
                return Err(fail(format!("segment '{}' is defined twice", s.name)));
            }
            if !(s.from.is_finite()
                && s.to.is_finite()
                && 0.0 <= s.from
                && s.from < s.to
                && s.to <= 1.0)
            {
                return Err(fail(format!(
                    "segment '{}' has band [{}, {}); bands need 0 <= from < to <= 1",
                    s.name, s.from, s.to
                )));
            }
        }
        segments.sort_by(|a, b| a.from.total_cmp(&b.from));
        if segments[0].from != 0.0 {
            return Err(fail(format!(
                "bands leave [0, {}) uncovered",
                segments[0].from
            )));
        }
        for pair in segments.windows(2) {
            if pair[0].to < pair[1].from {
                return Err(fail(format!(
                    "bands leave a gap [{}, {}) between '{}' and '{}'",
                    pair[0].to, pair[1].from, pair[0].name, pair[1].name
                )));
            }
            if pair[0].to > pair[1].from {
                return Err(fail(format!(
                    "bands of '{}' and '{}' overlap on [{}, {})",
                    pair[0].name, pair[1].name, pair[1].from, pair[0].to
                )));
            }
        }
        let last = segments.last().expect("non-empty");
        if last.to != 1.0 {
            return Err(fail(format!("bands leave ({}, 1] uncovered", last.to)));
        }
        let rules = spec
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let segment = segments
                    .iter()
                    .position(|s| s.name == r.segment)
                    .ok_or_else(|| {
                        fail(format!(
                            "rule {} ('{}') assigns unknown segment '{}'",
                            i + 1,
                            r.when,
                            r.segment
                        ))
                    })?;
                let condition = Condition::parse(&r.when, schema)
                    .map_err(|m| fail(format!("rule {} ('{}'): {m}", i + 1, r.when)))?;
                Ok(Rule {
                    when: r.when.clone(),
                    condition,
                    segment,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let triggers = trigger::check(&spec.triggers, &segments).map_err(fail)?;
        Ok(SegmentPolicy {
            source: source.to_string(),
            mode: spec.mode,
            segments,
            rules,
            triggers,
        })
    }

    /// The segment for a probability; `row` holds the model's encoded
    /// features (for rules) and `quantiles` the validation score quantiles
    /// (for percentile bands).
    pub fn assign(
        &self,
        probability: f64,
        row: &[f64],
        quantiles: &ScoreQuantiles,
    ) -> Assignment<'_> {
        for rule in &self.rules {
            if rule.matches(row) {
                return Assignment {
                    index: rule.segment,
                    segment: &self.segments[rule.segment],
                    rule: Some(&rule.when),
                };
            }
        }
        let position = match self.mode {
            PolicyMode::Threshold => probability,
            PolicyMode::Percentile => quantiles.rank(probability),
        };
        let position = if position.is_nan() {
            0.0
        } else {
            position.clamp(0.0, 1.0)
        };
        let index = self
            .segments
            .iter()
            .position(|s| position < s.to)
            .unwrap_or(self.segments.len() - 1);
        Assignment {
            index,
            segment: &self.segments[index],
            rule: None,
        }
    }
}

impl Rule {
    fn matches(&self, row: &[f64]) -> bool {
        self.condition.matches(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Feature, FeatureHistogram, FeatureKind, FeatureStats};

    fn schema() -> FeatureSchema {
        let stats = FeatureStats {
            rows: 1,
            missing: 0,
            min: 0.0,
            max: 1.0,
            mean: 0.5,
        };
        let histogram = FeatureHistogram {
            edges: vec![],
            counts: vec![],
            missing: 0,
        };
        let feature = |name: &str, kind| Feature {
            name: name.into(),
            kind,
            stats: stats.clone(),
            histogram: histogram.clone(),
        };
        FeatureSchema {
            features: vec![
                feature("sessions_first_week", FeatureKind::Numeric),
                feature(
                    "plan",
                    FeatureKind::Categorical {
                        categories: vec!["free".into(), "pro".into()],
                    },
                ),
            ],
        }
    }

    const CHURN: &str = r#"
mode = "threshold"

[[segments]]
name = "healthy"
from = 0.0
to = 0.3
flow = "standard"

[[segments]]
name = "at_risk"
from = 0.6
to = 1.0
flow = "concierge"
attributes = { tutorials = ["api", "sso"], call = true }

[[segments]]
name = "watch"
from = 0.3
to = 0.6
flow = "nudges"

[[rules]]
when = "sessions_first_week < 2"
segment = "at_risk"

[[rules]]
when = 'plan == "pro"'
segment = "healthy"
"#;

    fn quantiles() -> ScoreQuantiles {
        ScoreQuantiles {
            source: "validation".into(),
            values: (0..=100).map(|i| f64::from(i) / 100.0).collect(),
        }
    }

    #[test]
    fn threshold_bands_and_rules() {
        let policy = SegmentPolicy::parse(CHURN, "churn.toml", &schema()).unwrap();
        let q = quantiles();
        let at = |p: f64, row: [f64; 2]| policy.assign(p, &row, &q).segment.name.clone();
        assert_eq!(at(0.1, [5.0, 0.0]), "healthy");
        assert_eq!(at(0.3, [5.0, 0.0]), "watch");
        assert_eq!(at(0.99, [5.0, 0.0]), "at_risk");
        assert_eq!(at(1.0, [5.0, 0.0]), "at_risk");
        assert_eq!(
            at(0.1, [1.0, 0.0]),
            "at_risk",
            "first rule overrides the band"
        );
        assert_eq!(at(0.9, [5.0, 1.0]), "healthy", "second rule: plan == pro");
        assert_eq!(
            at(0.9, [f64::NAN, f64::NAN]),
            "at_risk",
            "missing values match no comparison"
        );
        let assignment = policy.assign(0.1, &[1.0, 0.0], &q);
        assert_eq!(assignment.rule, Some("sessions_first_week < 2"));
        assert_eq!(
            assignment.segment.attributes["tutorials"],
            serde_json::json!(["api", "sso"])
        );
    }

    #[test]
    fn default_policy_uses_percentiles() {
        let policy = SegmentPolicy::default_policy();
        let q = quantiles();
        assert_eq!(policy.assign(0.95, &[0.0, 0.0], &q).segment.name, "high");
        assert_eq!(policy.assign(0.8, &[0.0, 0.0], &q).segment.name, "medium");
        assert_eq!(policy.assign(0.2, &[0.0, 0.0], &q).segment.name, "low");
    }

    fn error(text: &str) -> String {
        SegmentPolicy::parse(text, "p.toml", &schema())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn mistakes_are_load_time_errors() {
        let gap = CHURN.replace("from = 0.3\nto = 0.6", "from = 0.35\nto = 0.6");
        assert!(
            error(&gap).contains("gap [0.3, 0.35) between 'healthy' and 'watch'"),
            "{}",
            error(&gap)
        );
        let overlap = CHURN.replace("from = 0.3\nto = 0.6", "from = 0.25\nto = 0.6");
        assert!(error(&overlap).contains("overlap"), "{}", error(&overlap));
        let typo = CHURN.replace("sessions_first_week < 2", "sesions_first_week < 2");
        assert!(
            error(&typo).starts_with("p.toml: rule 1"),
            "{}",
            error(&typo)
        );
        assert!(
            error(&typo).contains("unknown feature 'sesions_first_week'"),
            "{}",
            error(&typo)
        );
        let category = CHURN.replace(r#"plan == "pro""#, r#"plan == "premium""#);
        assert!(
            error(&category).contains("'premium' is not a category of 'plan' (known: free, pro)")
        );
        let unquoted = CHURN.replace(r#"plan == "pro""#, "plan == pro");
        assert!(error(&unquoted).contains("quote the category"));
        let op = CHURN.replace("sessions_first_week < 2", "sessions_first_week =< 2");
        assert!(error(&op).contains("unknown operator"), "{}", error(&op));
        let segment = CHURN.replace("segment = \"healthy\"", "segment = \"fine\"");
        assert!(error(&segment).contains("unknown segment 'fine'"));
        let key = CHURN.replace("flow = \"nudges\"", "flow = \"nudges\"\nflwo = 1");
        assert!(
            error(&key).contains("unknown field `flwo`"),
            "{}",
            error(&key)
        );
        let range = CHURN.replace("to = 1.0", "to = 1.5");
        assert!(error(&range).contains("0 <= from < to <= 1"));
    }
}
