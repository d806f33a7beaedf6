//! Shared server state: the model store, the configuration, the metrics
//! handle, the heavy-work pool and the shutdown flag. Cloned into every
//! handler (all fields are cheap to clone).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::ServeConfig;
use crate::heavy::HeavyPool;
use crate::online::store::OnlineStore;
use crate::store::ModelStore;

/// State handed to every handler.
#[derive(Clone)]
pub struct AppState {
    /// Loaded models.
    pub store: Arc<ModelStore>,
    /// Validated configuration.
    pub config: Arc<ServeConfig>,
    /// Renders `/metrics` (absent when no recorder was installed).
    pub metrics: Option<PrometheusHandle>,
    /// Runs batch scoring, explanations and drift reports.
    pub heavy: HeavyPool,
    /// Set on SIGTERM: readiness answers 503 from then on.
    pub shutting_down: Arc<AtomicBool>,
    /// The online store, when configured.
    pub online: Option<Arc<OnlineStore>>,
    /// The trigger engine, when configured.
    pub triggers: Option<Arc<crate::triggers::Triggers>>,
}

/// Whether the server is ready, and why not.
#[derive(Debug, Clone, PartialEq)]
pub struct Readiness {
    /// Models that can serve.
    pub servable: Vec<String>,
    /// Required models (from the config) that cannot.
    pub missing: Vec<String>,
    /// The server received SIGTERM and is draining.
    pub shutting_down: bool,
    /// Why the online store cannot serve yet (recovering, failed).
    pub online: Option<String>,
}

impl Readiness {
    /// Ready: not shutting down, and every required model (or, with none
    /// configured, at least one model) is loaded.
    pub fn ready(&self) -> bool {
        !self.shutting_down
            && self.missing.is_empty()
            && !self.servable.is_empty()
            && self.online.is_none()
    }
}

impl AppState {
    /// State for a store and a configuration, with no metrics recorder.
    pub fn new(store: Arc<ModelStore>, config: ServeConfig) -> Self {
        AppState {
            store,
            heavy: HeavyPool::new(config.limits.max_heavy_requests),
            config: Arc::new(config),
            metrics: None,
            shutting_down: Arc::new(AtomicBool::new(false)),
            online: None,
            triggers: None,
        }
    }

    /// Marks the server as draining (readiness turns 503).
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Readiness of the current catalog (shared by `/readyz` and the V2 route).
    pub fn readiness(&self) -> Readiness {
        let servable = self.store.catalog().servable();
        let missing = self
            .config
            .required_models
            .iter()
            .filter(|m| !servable.contains(m))
            .cloned()
            .collect();
        Readiness {
            servable,
            missing,
            shutting_down: self.shutting_down.load(Ordering::SeqCst),
            online: self
                .online
                .as_ref()
                .and_then(|store| store.status().err())
                .map(|e| e.to_string()),
        }
    }
}
