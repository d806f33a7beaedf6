//! Shared server state: the model store, the configuration and the metrics
//! handle. Cloned into every handler (all fields are cheap to clone).

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::ServeConfig;
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
}

/// Whether the server is ready, and why not.
#[derive(Debug, Clone, PartialEq)]
pub struct Readiness {
    /// Models that can serve.
    pub servable: Vec<String>,
    /// Required models (from the config) that cannot.
    pub missing: Vec<String>,
}

impl Readiness {
    /// Ready: every required model (or, with none configured, at least one
    /// model) is loaded.
    pub fn ready(&self) -> bool {
        self.missing.is_empty() && !self.servable.is_empty()
    }
}

impl AppState {
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
        Readiness { servable, missing }
    }
}
