//! Loaded models and how they are swapped without downtime.
//!
//! The [`ModelStore`] holds an immutable [`Catalog`] behind an `ArcSwap`:
//! request handlers take a snapshot with one atomic load and never wait.
//! [`ModelStore::reload`] builds a complete new catalog from the registry
//! beside the serving one: versions already loaded are reused, new versions
//! are read (which verifies their checksum), compiled, checked against their
//! segment policy and warmed up with a few predictions, and only then is the
//! new catalog swapped in with one atomic store. A version that fails to load
//! is recorded (and counted in `/metrics`); if it was meant to become
//! `champion`, the previous champion keeps serving.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use presage_models::artifact::ModelArtifact;
use presage_models::compiled::CompiledEnsemble;
use presage_models::registry::{Registry, CHAMPION};

use crate::drift_window::{DriftWindow, DRIFT_WINDOW_ROWS};
use crate::policy::{policy_file, PolicyError, SegmentPolicy};

/// One loaded model version, ready to score.
#[derive(Debug)]
pub struct LoadedVersion {
    /// The artifact as stored.
    pub artifact: ModelArtifact,
    /// Its compiled scorer.
    pub compiled: CompiledEnsemble,
    /// Feature name → position in a row.
    pub positions: HashMap<String, usize>,
    /// Per feature: category → code (categorical features only).
    pub categories: Vec<Option<HashMap<String, u32>>>,
    /// The segment policy, checked against this version's schema.
    pub policy: Arc<SegmentPolicy>,
    /// `presage_predictions_total` for each segment of the policy, registered
    /// once so that counting a prediction allocates nothing.
    pub segment_counters: Vec<metrics::Counter>,
    /// `presage_score` for this model.
    pub score_histogram: metrics::Histogram,
    /// Recent scored rows, for live drift.
    pub drift: DriftWindow,
}

impl LoadedVersion {
    /// Compiles and checks an artifact with its policy, then warms it up.
    pub fn new(artifact: ModelArtifact, policy: SegmentPolicy) -> Result<Self, String> {
        let compiled = artifact.compile().map_err(|e| e.to_string())?;
        let positions = artifact
            .schema
            .names()
            .enumerate()
            .map(|(i, n)| (n.to_string(), i))
            .collect();
        let categories = artifact.schema.category_lookup();
        let width = artifact.schema.len();
        let (model, version) = (artifact.name.clone(), artifact.version.to_string());
        let segment_counters = policy
            .segments
            .iter()
            .map(|s| {
                metrics::counter!("presage_predictions_total", "model" => model.clone(), "version" => version.clone(), "segment" => s.name.clone())
            })
            .collect();
        let score_histogram = metrics::histogram!("presage_score", "model" => model);
        let loaded = LoadedVersion {
            artifact,
            compiled,
            positions,
            categories,
            policy: Arc::new(policy),
            segment_counters,
            score_histogram,
            drift: DriftWindow::new(width, DRIFT_WINDOW_ROWS),
        };
        // Warm-up: touch every tree once and check the output is usable.
        let row = vec![f64::NAN; loaded.compiled.n_features()];
        for _ in 0..3 {
            let p = loaded.probability(&row);
            if !p.is_finite() {
                return Err(format!("warm-up prediction is {p}, not a number"));
            }
        }
        Ok(loaded)
    }

    /// Calibrated probability of an encoded row.
    #[inline]
    pub fn probability(&self, row: &[f64]) -> f64 {
        self.artifact.calibration.apply(self.compiled.predict(row))
    }

    /// Version number.
    pub fn version(&self) -> u64 {
        self.artifact.version
    }
}

/// Everything loaded for one model name.
#[derive(Debug, Clone)]
pub struct ModelEntry {
    /// Model name.
    pub name: String,
    /// The version `champion` serves (the last one that loaded).
    pub champion: Option<u64>,
    /// Loaded versions.
    pub versions: BTreeMap<u64, Arc<LoadedVersion>>,
    /// Aliases in the registry (alias → version).
    pub aliases: BTreeMap<String, u64>,
    /// Where the policy came from (`default` or a file).
    pub policy_source: String,
    /// The policy file's text, to notice edits.
    policy_text: Option<String>,
    /// Load failures not yet resolved, newest last.
    pub errors: Vec<String>,
}

impl ModelEntry {
    /// The champion's loaded version.
    pub fn champion(&self) -> Option<&Arc<LoadedVersion>> {
        self.champion.and_then(|v| self.versions.get(&v))
    }
}

/// An immutable snapshot of every loaded model.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Models by name.
    pub models: BTreeMap<String, ModelEntry>,
}

impl Catalog {
    /// Names of models that can serve (have a champion).
    pub fn servable(&self) -> Vec<String> {
        self.models
            .values()
            .filter(|m| m.champion().is_some())
            .map(|m| m.name.clone())
            .collect()
    }
}

/// What a reload changed, for logs and the admin endpoint.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ReloadReport {
    /// `model@version` loaded by this reload.
    pub loaded: Vec<String>,
    /// Champions that moved: `model: old -> new`.
    pub promoted: Vec<String>,
    /// Failures: `model@version: reason`.
    pub failed: Vec<String>,
}

/// Holds the serving catalog and rebuilds it from the registry.
pub struct ModelStore {
    registry: Registry,
    policy_files: BTreeMap<String, PathBuf>,
    catalog: ArcSwap<Catalog>,
    /// Artifact files that failed, with their size and mtime, so a broken
    /// file is not re-read (and re-reported) on every poll.
    failed_files: Mutex<HashMap<PathBuf, (u64, std::time::SystemTime)>>,
    /// Serialises reloads (the poller and the admin endpoint).
    reload_lock: Mutex<()>,
}

/// A policy problem found while loading: fatal at start-up.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StartupError(#[from] PolicyError);

impl ModelStore {
    /// Loads every model in the registry. A bad policy is an error (the
    /// server must not start with it); unreadable artifacts are recorded.
    pub fn open(
        registry: Registry,
        policy_files: BTreeMap<String, PathBuf>,
    ) -> Result<(Self, ReloadReport), StartupError> {
        let store = ModelStore {
            registry,
            policy_files,
            catalog: ArcSwap::from_pointee(Catalog::default()),
            failed_files: Mutex::new(HashMap::new()),
            reload_lock: Mutex::new(()),
        };
        let (catalog, report) = store.build(&Catalog::default(), true)?;
        store.catalog.store(Arc::new(catalog));
        Ok((store, report))
    }

    /// The current catalog (one atomic load; never blocks).
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load_full()
    }

    /// The registry served from.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Rebuilds the catalog from the registry and swaps it in. Problems are
    /// reported, never fatal: what served before keeps serving.
    pub fn reload(&self) -> ReloadReport {
        let _guard = self.reload_lock.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.catalog.load_full();
        match self.build(&current, false) {
            Ok((catalog, report)) => {
                if !report.loaded.is_empty()
                    || !report.promoted.is_empty()
                    || catalog_changed(&current, &catalog)
                {
                    self.catalog.store(Arc::new(catalog));
                }
                report
            }
            Err(e) => ReloadReport {
                failed: vec![e.to_string()],
                ..ReloadReport::default()
            },
        }
    }

    fn policy_for(&self, name: &str) -> (String, Option<PathBuf>) {
        let explicit = self.policy_files.get(name).map(PathBuf::as_path);
        match policy_file(explicit, self.registry.root(), name) {
            Some(path) => (path.display().to_string(), Some(path)),
            None => ("default".to_string(), None),
        }
    }

    fn build(
        &self,
        current: &Catalog,
        startup: bool,
    ) -> Result<(Catalog, ReloadReport), StartupError> {
        let mut report = ReloadReport::default();
        let mut catalog = Catalog::default();
        let names = match self.registry.models() {
            Ok(names) => names,
            Err(e) => {
                report.failed.push(e.to_string());
                return Ok((clone_catalog(current), report));
            }
        };
        for name in names {
            let previous = current.models.get(&name);
            let (policy_source, policy_path) = self.policy_for(&name);
            let policy_text = match &policy_path {
                Some(path) => match std::fs::read_to_string(path) {
                    Ok(text) => Some(text),
                    Err(e) => {
                        let error = PolicyError {
                            source_name: path.display().to_string(),
                            message: e.to_string(),
                        };
                        if startup {
                            return Err(error.into());
                        }
                        report.failed.push(format!("{name}: {error}"));
                        if let Some(p) = previous {
                            catalog.models.insert(name.clone(), p.clone());
                        }
                        continue;
                    }
                },
                None => None,
            };
            let policy_changed = previous.is_none_or(|p| p.policy_text != policy_text);
            let (aliases, versions) =
                match (self.registry.aliases(&name), self.registry.versions(&name)) {
                    (Ok(a), Ok(v)) => (a, v),
                    (Err(e), _) | (_, Err(e)) => {
                        report.failed.push(format!("{name}: {e}"));
                        if let Some(p) = previous {
                            catalog.models.insert(name.clone(), p.clone());
                        }
                        continue;
                    }
                };
            let mut entry = ModelEntry {
                name: name.clone(),
                champion: None,
                versions: BTreeMap::new(),
                aliases: aliases.clone(),
                policy_source: policy_source.clone(),
                policy_text: policy_text.clone(),
                errors: Vec::new(),
            };
            let mut policy_error = None;
            for version in versions {
                if !policy_changed {
                    if let Some(loaded) = previous.and_then(|p| p.versions.get(&version)) {
                        entry.versions.insert(version, loaded.clone());
                        continue;
                    }
                }
                let path = self.registry.artifact_path(&name, version);
                if self.known_failure(&path) {
                    if let Some(old) = previous.and_then(|p| {
                        p.errors
                            .iter()
                            .find(|e| e.starts_with(&format!("{name}@{version}:")))
                    }) {
                        entry.errors.push(old.clone());
                    }
                    continue;
                }
                let artifact = match ModelArtifact::read(&path) {
                    Ok(a) => a,
                    Err(e) => {
                        self.record_failure(&mut report, &mut entry, &path, version, e);
                        continue;
                    }
                };
                let policy = match &policy_text {
                    Some(text) => {
                        match SegmentPolicy::parse(text, &policy_source, &artifact.schema) {
                            Ok(p) => p,
                            Err(e) => {
                                policy_error.get_or_insert(e);
                                continue;
                            }
                        }
                    }
                    None => SegmentPolicy::default_policy(),
                };
                match LoadedVersion::new(artifact, policy) {
                    Ok(loaded) => {
                        report.loaded.push(format!("{name}@{version}"));
                        entry.versions.insert(version, Arc::new(loaded));
                    }
                    Err(e) => self.record_failure(&mut report, &mut entry, &path, version, e),
                }
            }
            if let Some(error) = policy_error {
                if startup {
                    return Err(error.into());
                }
                // A policy edit that does not fit: keep serving what served before.
                report.failed.push(format!("{name}: {error}"));
                metrics::counter!("presage_model_load_failures_total", "model" => name.clone())
                    .increment(1);
                if let Some(p) = previous {
                    let mut kept = p.clone();
                    kept.errors.push(error.to_string());
                    catalog.models.insert(name.clone(), kept);
                }
                continue;
            }
            let wanted = aliases.get(CHAMPION).copied();
            entry.champion = match wanted {
                Some(v) if entry.versions.contains_key(&v) => Some(v),
                _ => {
                    // Keep the previous champion serving if the new one failed.
                    let kept = previous.and_then(|p| p.champion().cloned());
                    if let Some(old) = kept {
                        let v = old.version();
                        entry.versions.entry(v).or_insert(old);
                        Some(v)
                    } else {
                        None
                    }
                }
            };
            let old_champion = previous.and_then(|p| p.champion);
            if entry.champion != old_champion {
                if let Some(new) = entry.champion {
                    report.promoted.push(format!(
                        "{name}: {} -> {new}",
                        old_champion.map_or("none".to_string(), |v| v.to_string())
                    ));
                    metrics::gauge!("presage_model_version", "model" => name.clone())
                        .set(new as f64);
                }
            }
            catalog.models.insert(name, entry);
        }
        Ok((catalog, report))
    }

    /// Records that a version failed to load: in the report, in the model's
    /// errors, in `/metrics`, and in the list of files not to retry until
    /// they change.
    fn record_failure(
        &self,
        report: &mut ReloadReport,
        entry: &mut ModelEntry,
        path: &PathBuf,
        version: u64,
        reason: impl std::fmt::Display,
    ) {
        self.remember_failure(path);
        let message = format!("{}@{version}: {reason}", entry.name);
        metrics::counter!("presage_model_load_failures_total", "model" => entry.name.clone())
            .increment(1);
        report.failed.push(message.clone());
        entry.errors.push(message);
    }

    fn known_failure(&self, path: &PathBuf) -> bool {
        let failed = self.failed_files.lock().unwrap_or_else(|e| e.into_inner());
        match (failed.get(path), file_stamp(path)) {
            (Some(old), Some(now)) => *old == now,
            _ => false,
        }
    }

    fn remember_failure(&self, path: &PathBuf) {
        if let Some(stamp) = file_stamp(path) {
            self.failed_files
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(path.clone(), stamp);
        }
    }
}

fn file_stamp(path: &PathBuf) -> Option<(u64, std::time::SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

fn clone_catalog(catalog: &Catalog) -> Catalog {
    Catalog {
        models: catalog.models.clone(),
    }
}

fn catalog_changed(old: &Catalog, new: &Catalog) -> bool {
    old.models.len() != new.models.len()
        || old
            .models
            .iter()
            .zip(&new.models)
            .any(|((a_name, a), (b_name, b))| {
                a_name != b_name
                    || a.champion != b.champion
                    || a.aliases != b.aliases
                    || a.errors != b.errors
                    || a.policy_source != b.policy_source
                    || a.versions.keys().ne(b.versions.keys())
            })
}
