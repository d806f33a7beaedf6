//! Nightly retraining: train a challenger, score it and the current
//! champion on the same fresh held-out rows (the challenger's test split),
//! and move `champion` to the challenger only if the gate passes. The
//! challenger is stored either way (as a new version, without the alias
//! when it is kept out), the decision and its reasons are appended to the
//! registry's decision log, and old versions beyond a retention count are
//! deleted, never the champion or an aliased one.
//!
//! Every registry write is atomic, and the champion alias moves last, so a
//! run killed at any point leaves the registry loadable and the champion
//! unchanged (or, after the final write, moved).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use presage_models::artifact::ModelArtifact;
use presage_models::metrics::BinaryMetrics;
use presage_models::policy::SegmentPolicy;
use presage_models::registry::{Registry, RegistryError, VersionSelector, CHAMPION};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::fit::{self, FitError, FitPlan, TestRows};
use crate::scoring::{labelled_rows, score_table};
use presage_data::table::read_table;
use presage_learners::dataset::Progress;

/// The `[gate]` section of a config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// The challenger's AUC may be at most this much below the champion's.
    #[serde(default = "default_auc_drop")]
    pub max_auc_drop: f64,
    /// The challenger's expected calibration error must not exceed this.
    pub max_ece: Option<f64>,
    /// No segment's share of users may move by more than this (0.05 = 5 points).
    pub max_segment_shift: Option<f64>,
    /// Versions kept after the run (the champion and aliased versions always are).
    pub keep_versions: Option<usize>,
}

fn default_auc_drop() -> f64 {
    0.005
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            max_auc_drop: default_auc_drop(),
            max_ece: None,
            max_segment_shift: None,
            keep_versions: None,
        }
    }
}

/// Why a `[gate]` section cannot be used. Each names the config file and
/// the key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GateError {
    /// A share is outside 0..=1.
    #[error("{path}: [gate] {key} = {value}: must be a number from 0 to 1")]
    NotAShare {
        /// The config file.
        path: String,
        /// The key.
        key: &'static str,
        /// Its value.
        value: f64,
    },
    /// `keep_versions = 0` would delete the champion's history.
    #[error("{path}: [gate] keep_versions = 0: keep at least 1")]
    KeepNothing {
        /// The config file.
        path: String,
    },
}

impl Gate {
    /// Checks the values serde cannot; `path` names the config in the error.
    pub fn check(&self, path: &Path) -> Result<(), GateError> {
        let path = || path.display().to_string();
        for (key, value) in [
            ("max_auc_drop", Some(self.max_auc_drop)),
            ("max_ece", self.max_ece),
            ("max_segment_shift", self.max_segment_shift),
        ] {
            if let Some(value) = value {
                if !(0.0..=1.0).contains(&value) {
                    return Err(GateError::NotAShare {
                        path: path(),
                        key,
                        value,
                    });
                }
            }
        }
        if self.keep_versions == Some(0) {
            return Err(GateError::KeepNothing { path: path() });
        }
        Ok(())
    }
}

/// What the run decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The challenger is the champion now.
    Promoted,
    /// The champion stays; the challenger is stored without the alias.
    Kept,
}

/// One gate check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// What was checked.
    pub check: String,
    /// Whether it passed.
    pub passed: bool,
    /// The numbers behind it.
    pub detail: String,
}

/// The outcome of a retrain run.
#[derive(Debug, Clone, Serialize)]
pub struct RetrainOutcome {
    /// Model name.
    pub model: String,
    /// The decision.
    pub decision: Decision,
    /// The challenger's version.
    pub challenger: u64,
    /// The champion before the run, if there was one.
    pub previous_champion: Option<u64>,
    /// The champion after the run.
    pub champion: u64,
    /// The gate's checks.
    pub checks: Vec<Check>,
    /// Rows both versions were scored on.
    pub rows: u64,
    /// Challenger metrics on those rows.
    pub challenger_metrics: BinaryMetrics,
    /// Champion metrics on the same rows.
    pub champion_metrics: Option<BinaryMetrics>,
    /// Versions deleted by the retention rule.
    pub deleted: Vec<u64>,
    /// Training warnings.
    pub warnings: Vec<String>,
}

/// Why a retrain run failed.
#[derive(Debug, thiserror::Error)]
pub enum RetrainError {
    /// Training failed.
    #[error(transparent)]
    Fit(#[from] FitError),
    /// The registry could not be read or written.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The held-out rows cannot be scored by one of the versions.
    #[error("{0}")]
    Data(String),
}

impl RetrainError {
    /// Whether this is the user's input (exit 2) rather than a failure (exit 1).
    pub fn is_bad_input(&self) -> bool {
        match self {
            RetrainError::Fit(e) => e.is_bad_input(),
            RetrainError::Registry(RegistryError::Io { .. }) => false,
            RetrainError::Registry(_) | RetrainError::Data(_) => true,
        }
    }
}

/// Calibrated probabilities of `model` for `table`'s rows `keep`.
fn probabilities(
    model: &ModelArtifact,
    table: &presage_data::table::Table,
    keep: &[usize],
) -> Result<Vec<f64>, RetrainError> {
    let scored = score_table(model, table, false).map_err(|e| {
        RetrainError::Data(format!(
            "version {} cannot score the held-out rows: {e}",
            model.version
        ))
    })?;
    Ok(keep.iter().map(|&i| scored.probabilities[i]).collect())
}

/// Segment shares of `probs` under `policy` (no rules: bands only).
fn segment_shares(
    policy: &SegmentPolicy,
    model: &ModelArtifact,
    probs: &[f64],
) -> Vec<(String, f64)> {
    let mut counts = vec![0u64; policy.segments.len()];
    let no_row = vec![f64::NAN; model.schema.len()];
    for &p in probs {
        counts[policy.assign(p, &no_row, &model.score_quantiles).index] += 1;
    }
    let n = probs.len().max(1) as f64;
    policy
        .segments
        .iter()
        .zip(counts)
        .map(|(s, c)| (s.name.clone(), c as f64 / n))
        .collect()
}

/// Runs the nightly retrain: train, gate, store, decide, log, prune.
pub fn run(
    plan: &FitPlan,
    gate: &Gate,
    on_progress: &(dyn Fn(Progress) + Sync),
) -> Result<RetrainOutcome, RetrainError> {
    let registry = Registry::new(&plan.registry);
    let previous = match registry.load(&plan.model, &VersionSelector::Alias(CHAMPION.into())) {
        Ok(a) => Some(a),
        Err(RegistryError::UnknownModel { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let trained = fit::train(plan, on_progress)?;
    let mut challenger = trained.artifact;
    let table = match trained.test_rows {
        TestRows::Table(t) => t,
        TestRows::File(path) => read_table(&path).map_err(FitError::from)?,
    };
    if table.n_rows() == 0 {
        return Err(RetrainError::Data(
            "no held-out rows to compare on: keep a test fraction above 0 (or give --test)".into(),
        ));
    }
    let (keep, targets) =
        labelled_rows(&table, &challenger.task).map_err(|e| RetrainError::Data(e.to_string()))?;
    let y: Vec<bool> = targets.iter().map(|t| *t > 0.5).collect();
    let challenger_probs = probabilities(&challenger, &table, &keep)?;
    let challenger_metrics = BinaryMetrics::compute(&y, &challenger_probs);

    let mut checks = Vec::new();
    let champion_metrics = match &previous {
        None => {
            checks.push(Check {
                check: "champion".into(),
                passed: true,
                detail: "no champion yet: the first version becomes champion".into(),
            });
            None
        }
        Some(champion) => {
            let champion_probs = probabilities(champion, &table, &keep)?;
            let champion_metrics = BinaryMetrics::compute(&y, &champion_probs);
            let (new, old) = (
                challenger_metrics.auc.unwrap_or(f64::NAN),
                champion_metrics.auc.unwrap_or(f64::NAN),
            );
            checks.push(Check {
                check: "auc".into(),
                passed: new >= old - gate.max_auc_drop,
                detail: format!(
                    "challenger {new:.4} vs champion {old:.4} (may drop at most {})",
                    gate.max_auc_drop
                ),
            });
            if let Some(max) = gate.max_ece {
                checks.push(Check {
                    check: "ece".into(),
                    passed: challenger_metrics.ece <= max,
                    detail: format!("challenger {:.4} (at most {max})", challenger_metrics.ece),
                });
            }
            if let Some(max) = gate.max_segment_shift {
                let policy = SegmentPolicy::default_policy();
                let (new, old) = (
                    segment_shares(&policy, &challenger, &challenger_probs),
                    segment_shares(&policy, champion, &champion_probs),
                );
                let (worst, shift) = new
                    .iter()
                    .zip(&old)
                    .map(|((name, a), (_, b))| (name.clone(), (a - b).abs()))
                    .max_by(|x, y| x.1.total_cmp(&y.1))
                    .unwrap_or_default();
                checks.push(Check {
                    check: "segment_shift".into(),
                    passed: shift <= max,
                    detail: format!(
                        "largest change: '{worst}' by {:.1} points (at most {:.1})",
                        100.0 * shift,
                        100.0 * max
                    ),
                });
            }
            Some(champion_metrics)
        }
    };
    let passed = checks.iter().all(|c| c.passed);

    // Store the challenger; move the alias last.
    let registered = registry.register(&mut challenger)?;
    let decision = if passed {
        Decision::Promoted
    } else {
        Decision::Kept
    };
    if passed && !registered.champion {
        registry.set_alias(&plan.model, CHAMPION, registered.version)?;
    }
    let champion = if passed {
        registered.version
    } else {
        previous.as_ref().map_or(registered.version, |p| p.version)
    };
    let deleted = match gate.keep_versions {
        Some(keep) => registry.prune(&plan.model, keep)?,
        None => Vec::new(),
    };
    let outcome = RetrainOutcome {
        model: plan.model.clone(),
        decision,
        challenger: registered.version,
        previous_champion: previous.as_ref().map(|p| p.version),
        champion,
        checks,
        rows: keep.len() as u64,
        challenger_metrics,
        champion_metrics,
        deleted,
        warnings: trained.warnings,
    };
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    registry.record_decision(
        &plan.model,
        &json!({
            "at_unix": at,
            "decision": outcome.decision,
            "challenger": outcome.challenger,
            "previous_champion": outcome.previous_champion,
            "champion": outcome.champion,
            "checks": outcome.checks,
            "rows": outcome.rows,
            "challenger_auc": outcome.challenger_metrics.auc,
            "champion_auc": outcome.champion_metrics.as_ref().and_then(|m| m.auc),
            "deleted": outcome.deleted,
        }),
    )?;
    Ok(outcome)
}
