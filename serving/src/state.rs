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
