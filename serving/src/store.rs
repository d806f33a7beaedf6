//! Loaded models and how they are swapped without downtime.
//!
//! The [`ModelStore`] holds an immutable [`Catalog`] behind an `ArcSwap`:
//! request handlers take a snapshot with one atomic load and never wait.
//! [`ModelStore::reload`] builds a complete new catalog from the registry
//! beside the serving one and swaps it in with one atomic store.
//!
//! Only versions that can be served are loaded: those an alias points to,
//! plus versions a request asked for by number (`?version=N`, loaded on
//! demand by [`ModelStore::load_on_demand`], at most [`ON_DEMAND_VERSIONS`]
//! per model). Loading a version reads it (size cap, checksum, validation),
//! compiles it, checks it against its segment policy and warms it up; old
//! unaliased versions are never read. A version that fails any of these is
//! remembered as failed, with its file's size and mtime and the policy's
//! text, and is not retried until one of them changes: no reload loop, and
//! each model's error list holds one line per failed servable version. If
//! the version that failed was meant to become `champion`, the previous
//! champion keeps serving. At start-up, a policy that does not fit a version
//! an alias points to stops the server; any other failure is reported.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use presage_models::artifact::ModelArtifact;
use presage_models::compiled::CompiledEnsemble;
use presage_models::feature_spec::online::OnlineSpec;
use presage_models::policy::{policy_file, PolicyError, SegmentPolicy};
use presage_models::registry::{Registry, CHAMPION};

use crate::drift_window::{DriftWindow, DRIFT_WINDOW_ROWS};

/// Versions loaded on demand (by `?version=N`) kept per model.
pub const ON_DEMAND_VERSIONS: usize = 4;

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
    /// Its event features as the online store computes them, or why it
    /// cannot be scored by user id.
    pub online: Result<OnlineSpec, String>,
}

impl LoadedVersion {
    /// Compiles and checks an artifact with its policy, then warms it up.
    pub fn new(artifact: ModelArtifact, policy: SegmentPolicy) -> Result<Self, UnusableVersion> {
        let compiled = artifact
            .compile()
            .map_err(|e| UnusableVersion::Compile(e.to_string()))?;
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
        let online = match &artifact.feature_spec {
            None => Err("it was trained from a ready table, so the server does not know how its features are computed; train it from users + events extracts (--config with an [extract] section)".to_owned()),
            Some(record) => {
                let columns: Vec<String> = artifact.schema.names().map(str::to_owned).collect();
                OnlineSpec::from_stored(&record.spec_json, &columns).map_err(|e| e.to_string())
            }
        };
        check_triggers(&policy, &online)?;
        let loaded = LoadedVersion {
            artifact,
            compiled,
            positions,
            categories,
            policy: Arc::new(policy),
            segment_counters,
            score_histogram,
            drift: DriftWindow::new(width, DRIFT_WINDOW_ROWS),
            online,
        };
        // Warm-up: touch every tree once and check the output is usable.
        let row = vec![f64::NAN; loaded.compiled.n_features()];
        for _ in 0..3 {
            let p = loaded.probability(&row);
            if !p.is_finite() {
                return Err(UnusableVersion::WarmUp(p));
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
    /// Loaded versions: those aliases point to, and those loaded on demand.
    pub versions: BTreeMap<u64, Arc<LoadedVersion>>,
    /// Every version in the registry, loaded or not.
    pub available: Vec<u64>,
    /// Versions loaded on demand, oldest first.
    on_demand: Vec<u64>,
    /// Aliases in the registry (alias → version).
    pub aliases: BTreeMap<String, u64>,
    /// Where the policy came from (`default` or a file).
    pub policy_source: String,
    /// The policy file's text, to notice edits.
    policy_text: Option<String>,
    /// Why servable versions failed to load: one line per version.
    pub errors: Vec<String>,
}

impl ModelEntry {
    /// The champion's loaded version.
    pub fn champion(&self) -> Option<&Arc<LoadedVersion>> {
        self.champion.and_then(|v| self.versions.get(&v))
    }
}

/// An immutable snapshot of every loaded model.
#[derive(Debug, Default, Clone)]
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
    /// New failures: `model@version: reason` (each reported once).
    pub failed: Vec<String>,
}

/// Why a version could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// The version is not in the registry.
    #[error("model '{model}' has no version {version} in the registry")]
    NotFound {
        /// Model name.
        model: String,
        /// Version asked for.
        version: u64,
    },
    /// The artifact cannot be read, or is invalid.
    #[error("{0}")]
    Artifact(String),
    /// The segment policy does not fit the version's schema.
    #[error("{0}")]
    Policy(PolicyError),
    /// Compiling or warming up failed.
    #[error("{0}")]
    Unusable(#[from] UnusableVersion),
    /// Loading failed before, and neither the file nor the policy changed
    /// since: the remembered reason.
    #[error("{0}")]
    Remembered(String),
}

/// Why a valid artifact still cannot serve.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UnusableVersion {
    /// The compiled scorer refused the trees.
    #[error("{0}")]
    Compile(String),
    /// The warm-up prediction on a row of missing values was not a number.
    #[error("warm-up prediction is {0}, not a number")]
    WarmUp(f64),
    /// A trigger of the policy does not fit the model.
    #[error("{0}")]
    Trigger(String),
}

/// Checks what only the model can tell about the policy's triggers: a
/// `no_event` trigger names an event of the model's extract, and every
/// trigger needs a model that can be scored by user id.
fn check_triggers(
    policy: &SegmentPolicy,
    online: &Result<OnlineSpec, String>,
) -> Result<(), UnusableVersion> {
    for (i, trigger) in policy.triggers.iter().enumerate() {
        let at = format!("triggers[{}]", i + 1);
        let spec = online.as_ref().map_err(|why| {
            UnusableVersion::Trigger(format!(
                "{at} ('{}'): triggers act on users scored by id, and this model cannot be: {why}",
                trigger.name
            ))
        })?;
        if let presage_models::trigger::TriggerKind::NoEvent { event, .. } = &trigger.kind {
            if !spec.events().contains(event) {
                return Err(UnusableVersion::Trigger(format!(
                    "{at}.event: '{event}' is not an event of this model's extract (its events: {})",
                    spec.events().join(", ")
                )));
            }
        }
    }
    Ok(())
}

/// A remembered failure: the file and policy it was for, and the reason.
#[derive(Debug, Clone, PartialEq)]
struct Failure {
    stamp: Option<(u64, SystemTime)>,
    policy_text: Option<String>,
    message: String,
    /// The policy did not fit (rather than the file being bad).
    policy: bool,
}

/// A model's policy, as read for one build.
struct PolicySource {
    source: String,
    text: Option<String>,
}

/// Holds the serving catalog and rebuilds it from the registry.
pub struct ModelStore {
    registry: Registry,
    policy_files: BTreeMap<String, PathBuf>,
    /// Largest artifact file read (checked with `stat` first).
    max_model_bytes: u64,
    catalog: ArcSwap<Catalog>,
    /// Versions that failed, by artifact path, not retried until the file or
    /// the policy changes.
    failures: Mutex<HashMap<PathBuf, Failure>>,
    /// Serialises catalog changes (the poller, the admin routes and
    /// on-demand loads).
    reload_lock: Mutex<()>,
}

/// A policy problem found while loading: fatal at start-up.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StartupError(#[from] PolicyError);

impl ModelStore {
    /// Loads every model's aliased versions, refusing files over
    /// `max_model_bytes` unread. A policy that does not fit one is an error
    /// (the server must not start with it); other failures are recorded.
    pub fn open(
        registry: Registry,
        policy_files: BTreeMap<String, PathBuf>,
        max_model_bytes: u64,
    ) -> Result<(Self, ReloadReport), StartupError> {
        let store = ModelStore {
            registry,
            policy_files,
            max_model_bytes,
            catalog: ArcSwap::from_pointee(Catalog::default()),
            failures: Mutex::new(HashMap::new()),
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

    /// Loads a version fully (read, validate, compile, policy check, warm-up)
    /// without putting it in the catalog: the admin route does this before
    /// it moves an alias.
    pub fn prepare(&self, name: &str, version: u64) -> Result<Arc<LoadedVersion>, LoadError> {
        let current = self.catalog.load_full();
        if let Some(loaded) = current
            .models
            .get(name)
            .and_then(|entry| entry.versions.get(&version))
        {
            return Ok(loaded.clone());
        }
        let policy = self.read_policy(name).map_err(LoadError::Policy)?;
        self.load_version(name, version, &policy).map(Arc::new)
    }

    /// The loaded `version` of `name`, loading it now if it is in the
    /// registry but not loaded (it then stays loaded, up to
    /// [`ON_DEMAND_VERSIONS`] per model).
    pub fn load_on_demand(
        &self,
        name: &str,
        version: u64,
    ) -> Result<Arc<LoadedVersion>, LoadError> {
        let _guard = self.reload_lock.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.catalog.load_full();
        let Some(entry) = current.models.get(name) else {
            return Err(LoadError::NotFound {
                model: name.to_string(),
                version,
            });
        };
        if let Some(loaded) = entry.versions.get(&version) {
            return Ok(loaded.clone());
        }
        if !entry.available.contains(&version) {
            return Err(LoadError::NotFound {
                model: name.to_string(),
                version,
            });
        }
        let policy = PolicySource {
            source: entry.policy_source.clone(),
            text: entry.policy_text.clone(),
        };
        let path = self.registry.artifact_path(name, version);
        if let Some(failure) = self.known_failure(&path, &policy.text) {
            return Err(LoadError::Remembered(failure.message));
        }
        let loaded = match self.load_version(name, version, &policy) {
            Ok(loaded) => Arc::new(loaded),
            Err(e) => {
                self.remember(name, &path, &policy.text, version, &e);
                return Err(e);
            }
        };
        let mut catalog = (*current).clone();
        if let Some(entry) = catalog.models.get_mut(name) {
            entry.versions.insert(version, loaded.clone());
            entry.on_demand.push(version);
            if entry.on_demand.len() > ON_DEMAND_VERSIONS {
                let evicted = entry.on_demand.remove(0);
                if !entry.aliases.values().any(|v| *v == evicted) && entry.champion != Some(evicted)
                {
                    entry.versions.remove(&evicted);
                }
            }
        }
        self.catalog.store(Arc::new(catalog));
        Ok(loaded)
    }

    fn policy_for(&self, name: &str) -> (String, Option<PathBuf>) {
        let explicit = self.policy_files.get(name).map(PathBuf::as_path);
        match policy_file(explicit, self.registry.root(), name) {
            Some(path) => (path.display().to_string(), Some(path)),
            None => ("default".to_string(), None),
        }
    }

    fn read_policy(&self, name: &str) -> Result<PolicySource, PolicyError> {
        let (source, path) = self.policy_for(name);
        let text = match &path {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| PolicyError {
                source_name: path.display().to_string(),
                message: e.to_string(),
            })?),
            None => None,
        };
        Ok(PolicySource { source, text })
    }

    /// Reads, checks, compiles and warms up one version.
    fn load_version(
        &self,
        name: &str,
        version: u64,
        policy: &PolicySource,
    ) -> Result<LoadedVersion, LoadError> {
        let artifact = self
            .registry
            .read_version_capped(name, version, self.max_model_bytes)
            .map_err(|e| LoadError::Artifact(e.to_string()))?;
        let segments = match &policy.text {
            Some(text) => SegmentPolicy::parse(text, &policy.source, &artifact.schema)
                .map_err(LoadError::Policy)?,
            None => SegmentPolicy::default_policy(),
        };
        let source = segments.source.clone();
        LoadedVersion::new(artifact, segments).map_err(|e| match e {
            // A trigger that does not fit the model is the policy's fault.
            UnusableVersion::Trigger(message) => LoadError::Policy(PolicyError {
                source_name: source,
                message,
            }),
            other => LoadError::Unusable(other),
        })
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
                return Ok((current.clone(), report));
            }
        };
        for name in names {
            let previous = current.models.get(&name);
            let policy = match self.read_policy(&name) {
                Ok(policy) => policy,
                Err(error) => {
                    if startup {
                        return Err(error.into());
                    }
                    report.failed.push(format!("{name}: {error}"));
                    if let Some(p) = previous {
                        catalog.models.insert(name.clone(), p.clone());
                    }
                    continue;
                }
            };
            let (aliases, available) =
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
            let entry = self.build_entry(
                &name,
                previous,
                policy,
                aliases,
                available,
                startup,
                &mut report,
            )?;
            catalog.models.insert(name, entry);
        }
        Ok((catalog, report))
    }

    /// One model's entry: its servable versions loaded (or reused), or the
    /// previous entry kept whole when a policy edit does not fit the champion.
    #[allow(clippy::too_many_arguments)]
    fn build_entry(
        &self,
        name: &str,
        previous: Option<&ModelEntry>,
        policy: PolicySource,
        aliases: BTreeMap<String, u64>,
        available: Vec<u64>,
        startup: bool,
        report: &mut ReloadReport,
    ) -> Result<ModelEntry, StartupError> {
        let policy_changed = previous.is_none_or(|p| p.policy_text != policy.text);
        let aliased: BTreeSet<u64> = aliases.values().copied().collect();
        let on_demand: Vec<u64> = previous
            .map(|p| p.on_demand.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|v| available.contains(v) && !aliased.contains(v))
            .collect();
        let mut entry = ModelEntry {
            name: name.to_string(),
            champion: None,
            versions: BTreeMap::new(),
            available: available.clone(),
            on_demand: on_demand.clone(),
            aliases: aliases.clone(),
            policy_source: policy.source.clone(),
            policy_text: policy.text.clone(),
            errors: Vec::new(),
        };
        let wanted: BTreeSet<u64> = aliased
            .iter()
            .copied()
            .filter(|v| available.contains(v))
            .chain(on_demand)
            .collect();
        let wanted_champion = aliases.get(CHAMPION).copied();
        let mut champion_policy_failed = false;
        for version in wanted {
            if !policy_changed {
                if let Some(loaded) = previous.and_then(|p| p.versions.get(&version)) {
                    entry.versions.insert(version, loaded.clone());
                    continue;
                }
            }
            let path = self.registry.artifact_path(name, version);
            if let Some(failure) = self.known_failure(&path, &policy.text) {
                champion_policy_failed |= failure.policy && wanted_champion == Some(version);
                entry.errors.push(failure.message);
                continue;
            }
            match self.load_version(name, version, &policy) {
                Ok(loaded) => {
                    report.loaded.push(format!("{name}@{version}"));
                    entry.versions.insert(version, Arc::new(loaded));
                }
                Err(error) => {
                    if let LoadError::Policy(policy_error) = &error {
                        if startup && aliased.contains(&version) {
                            return Err(policy_error.clone().into());
                        }
                        champion_policy_failed |= wanted_champion == Some(version);
                    }
                    let message = self.remember(name, &path, &policy.text, version, &error);
                    report.failed.push(message.clone());
                    entry.errors.push(message);
                }
            }
        }
        if policy_changed && champion_policy_failed {
            if let Some(kept) = previous.filter(|p| p.champion().is_some()) {
                // A policy edit that does not fit the champion: keep serving
                // what served before, with the old policy, and say why.
                let mut kept = kept.clone();
                kept.errors = entry.errors;
                kept.available = entry.available;
                return Ok(kept);
            }
        }
        entry.champion = match wanted_champion {
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
                metrics::gauge!("presage_model_version", "model" => name.to_string())
                    .set(new as f64);
            }
        }
        Ok(entry)
    }

    /// The remembered failure of a version that still applies: the same
    /// file (size and mtime) under the same policy.
    fn known_failure(&self, path: &Path, policy_text: &Option<String>) -> Option<Failure> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let failure = failures.get(path)?;
        (failure.stamp == file_stamp(path) && failure.policy_text == *policy_text)
            .then(|| failure.clone())
    }

    /// Remembers (and counts) a failed version; returns its message.
    fn remember(
        &self,
        name: &str,
        path: &Path,
        policy_text: &Option<String>,
        version: u64,
        error: &LoadError,
    ) -> String {
        let message = format!("{name}@{version}: {error}");
        metrics::counter!("presage_model_load_failures_total", "model" => name.to_string())
            .increment(1);
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                path.to_path_buf(),
                Failure {
                    stamp: file_stamp(path),
                    policy_text: policy_text.clone(),
                    message: message.clone(),
                    policy: matches!(error, LoadError::Policy(_)),
                },
            );
        message
    }
}

fn file_stamp(path: &Path) -> Option<(u64, SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
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
                    || a.available != b.available
                    || a.versions.keys().ne(b.versions.keys())
            })
}
