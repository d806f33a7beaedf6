//! Server configuration: command-line flags, environment variables and an
//! optional TOML file, merged (flags over environment over file over
//! defaults) and checked into one [`ServeConfig`] before anything starts.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The optional `serve.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Address to listen on.
    pub listen: Option<String>,
    /// Registry directory (relative to the config file).
    pub registry: Option<PathBuf>,
    /// Largest request body in bytes.
    pub max_body_bytes: Option<usize>,
    /// Most rows in one batch request.
    pub max_batch_rows: Option<usize>,
    /// Reject unknown features with 422 instead of a warning.
    pub strict: Option<bool>,
    /// How often the registry is checked for new versions, in milliseconds.
    pub poll_interval_ms: Option<u64>,
    /// Models that must be loaded before `/readyz` says ready.
    pub models: Option<Vec<String>>,
    /// Segment policy files by model name (relative to the config file).
    #[serde(default)]
    pub policies: BTreeMap<String, PathBuf>,
    /// Bearer token for the admin endpoints (or `PRESAGE_ADMIN_TOKEN`).
    pub admin_token: Option<String>,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Registry directory.
    pub registry: PathBuf,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Most rows in one batch request.
    pub max_batch_rows: usize,
    /// Reject unknown features.
    pub strict: bool,
    /// Registry poll interval.
    pub poll_interval: Duration,
    /// Models required for readiness (empty: at least one model).
    pub required_models: Vec<String>,
    /// Policy files by model name.
    pub policies: BTreeMap<String, PathBuf>,
    /// Admin token; admin endpoints are disabled without one.
    pub admin_token: Option<String>,
}

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default body limit (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// Default batch limit.
pub const DEFAULT_MAX_BATCH_ROWS: usize = 10_000;
/// Default registry poll interval.
pub const DEFAULT_POLL_MS: u64 = 2_000;

/// A configuration problem, naming the file (or flag) and the value.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Values given on the command line or in the environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--listen` / `PRESAGE_LISTEN`.
    pub listen: Option<String>,
    /// `--registry` / `PRESAGE_REGISTRY`.
    pub registry: Option<PathBuf>,
    /// `--max-body-bytes`.
    pub max_body_bytes: Option<usize>,
    /// `--max-batch-rows`.
    pub max_batch_rows: Option<usize>,
    /// `--strict`.
    pub strict: Option<bool>,
    /// `--poll-interval-ms`.
    pub poll_interval_ms: Option<u64>,
    /// `PRESAGE_ADMIN_TOKEN` (environment only: flags show up in `ps`).
    pub admin_token: Option<String>,
}

impl ServeConfig {
    /// Merges overrides with an optional config file.
    pub fn resolve(
        config_path: Option<&Path>,
        overrides: Overrides,
    ) -> Result<ServeConfig, ConfigError> {
        let (file, base) = match config_path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
                let file: ConfigFile = toml::from_str(&text).map_err(|e| {
                    ConfigError(format!("{}: {}", path.display(), e.to_string().trim_end()))
                })?;
                (
                    file,
                    path.parent().map(Path::to_path_buf).unwrap_or_default(),
                )
            }
            None => (ConfigFile::default(), PathBuf::new()),
        };
        let name = config_path.map_or("flags".to_string(), |p| p.display().to_string());
        let listen_text = overrides
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            ConfigError(format!(
                "{name}: listen = \"{listen_text}\" is not an address like 127.0.0.1:8080"
            ))
        })?;
        let registry = overrides
            .registry
            .or_else(|| file.registry.map(|r| base.join(r)))
            .unwrap_or_else(|| PathBuf::from(presage_models::registry::DEFAULT_REGISTRY));
        let max_body_bytes = overrides
            .max_body_bytes
            .or(file.max_body_bytes)
            .unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes < 64 {
            return Err(ConfigError(format!(
                "{name}: max_body_bytes = {max_body_bytes} is too small (at least 64)"
            )));
        }
        let max_batch_rows = overrides
            .max_batch_rows
            .or(file.max_batch_rows)
            .unwrap_or(DEFAULT_MAX_BATCH_ROWS);
        if max_batch_rows == 0 {
            return Err(ConfigError(format!(
                "{name}: max_batch_rows must be at least 1"
            )));
        }
        let poll = overrides
            .poll_interval_ms
            .or(file.poll_interval_ms)
            .unwrap_or(DEFAULT_POLL_MS);
        if poll < 10 {
            return Err(ConfigError(format!(
                "{name}: poll_interval_ms = {poll} is too small (at least 10)"
            )));
        }
        let admin_token = overrides
            .admin_token
            .or(file.admin_token)
            .filter(|t| !t.is_empty());
        if admin_token.as_ref().is_some_and(|t| t.len() < 16) {
            return Err(ConfigError(format!(
                "{name}: the admin token must be at least 16 characters"
            )));
        }
        for model in file.models.iter().flatten().chain(file.policies.keys()) {
            presage_models::registry::check_model_name(model)
                .map_err(|e| ConfigError(format!("{name}: {e}")))?;
        }
        Ok(ServeConfig {
            listen,
            registry,
            max_body_bytes,
            max_batch_rows,
            strict: overrides.strict.or(file.strict).unwrap_or(false),
            poll_interval: Duration::from_millis(poll),
            required_models: file.models.unwrap_or_default(),
            policies: file
                .policies
                .into_iter()
                .map(|(model, path)| (model, base.join(path)))
                .collect(),
            admin_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("serve.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn flags_win_over_the_file_and_paths_resolve_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "listen = \"127.0.0.1:9000\"\nregistry = \"models\"\nmax_batch_rows = 50\nmodels = [\"churn\"]\n[policies]\nchurn = \"p/churn.toml\"\n",
        );
        let from_file = ServeConfig::resolve(Some(&path), Overrides::default()).unwrap();
        assert_eq!(from_file.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(from_file.registry, dir.path().join("models"));
        assert_eq!(from_file.max_batch_rows, 50);
        assert_eq!(from_file.required_models, vec!["churn".to_string()]);
        assert_eq!(from_file.policies["churn"], dir.path().join("p/churn.toml"));
        assert_eq!(from_file.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        let overrides = Overrides {
            listen: Some("127.0.0.1:0".into()),
            registry: Some(PathBuf::from("/srv/registry")),
            max_batch_rows: Some(7),
            ..Overrides::default()
        };
        let merged = ServeConfig::resolve(Some(&path), overrides).unwrap();
        assert_eq!(merged.listen.to_string(), "127.0.0.1:0");
        assert_eq!(merged.registry, PathBuf::from("/srv/registry"));
        assert_eq!(merged.max_batch_rows, 7);
    }

    #[test]
    fn bad_values_name_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let error = |text: &str| {
            ServeConfig::resolve(Some(&write(dir.path(), text)), Overrides::default())
                .unwrap_err()
                .to_string()
        };
        assert!(error("listen = \"localhost\"\n")
            .contains("serve.toml: listen = \"localhost\" is not an address"));
        assert!(
            error("max_batch_rows = 0\n").contains("serve.toml: max_batch_rows must be at least 1")
        );
        assert!(error("admin_token = \"short\"\n").contains("at least 16 characters"));
        assert!(error("models = [\"bad name\"]\n").contains("invalid model name 'bad name'"));
        assert!(error("strict = \"yes\"\n").contains("serve.toml"));
    }
}
