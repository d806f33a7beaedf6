//! Server configuration: command-line flags, environment variables and an
//! optional TOML file, merged (flags over environment over file over
//! defaults) and checked into one [`ServeConfig`] before anything starts.
//!
//! Every limit that protects the server from its clients lives here with a
//! default that suits a sign-up path (see the README's table): request
//! sizes, heavy-work concurrency, timeouts, the connection limit and the
//! shutdown grace period. The admin token is an [`AdminToken`], whose `Debug`
//! is redacted, and config errors never quote the file's text, so the token
//! cannot leak into a log or an error message.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::online::ingest::Traits;
use crate::online::store::StoreConfig;
use crate::triggers::TriggerConfig;

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
    /// Most keys in one row's `features` object.
    pub max_features_per_row: Option<usize>,
    /// Most rows one `?explain` request may explain.
    pub max_explain_rows: Option<usize>,
    /// Batch, explain and drift requests computed at once (the rest wait).
    pub max_heavy_requests: Option<usize>,
    /// Most open client connections.
    pub max_connections: Option<usize>,
    /// Largest model file loaded, in bytes (checked before reading).
    pub max_model_bytes: Option<u64>,
    /// Time a client has to send a request's headers, in milliseconds.
    pub header_read_timeout_ms: Option<u64>,
    /// Time a client has to send a request's body, in milliseconds.
    pub body_read_timeout_ms: Option<u64>,
    /// Time a whole request may take, in milliseconds.
    pub request_timeout_ms: Option<u64>,
    /// After SIGTERM, how long in-flight requests may take before the
    /// process exits anyway, in milliseconds.
    pub shutdown_grace_ms: Option<u64>,
    /// After SIGTERM, how long to keep accepting requests (with `/readyz`
    /// answering 503) so load balancers notice, in milliseconds.
    pub shutdown_delay_ms: Option<u64>,
    /// The online store (events in, features by user id); absent: off.
    pub online: Option<OnlineFile>,
    /// Where trigger messages go; absent: triggers are off.
    pub triggers: Option<TriggersFile>,
}

/// The `[triggers]` section of `serve.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggersFile {
    /// The receiver's URL (http or https).
    pub webhook_url: String,
    /// The HMAC-SHA256 key of `X-Presage-Signature` (at least 16 bytes).
    pub webhook_secret: String,
    /// Attempts per message before it goes to the dead letter (default 8).
    pub max_attempts: Option<u32>,
    /// First retry delay in milliseconds (default 200); doubles per attempt.
    pub retry_initial_ms: Option<u64>,
    /// Longest retry delay in milliseconds (default 30,000).
    pub retry_max_ms: Option<u64>,
    /// Time allowed for one delivery attempt, in milliseconds (default 5,000).
    pub timeout_ms: Option<u64>,
}

/// The `[online]` section of `serve.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnlineFile {
    /// The store's directory (relative to the config file).
    pub dir: PathBuf,
    /// Events in the first this many days after signup are kept (default 30).
    pub retain_days_after_signup: Option<f64>,
    /// Events in the last this many days are kept (default 30).
    pub retain_last_days: Option<f64>,
    /// Store events only of users who consented (default false).
    pub require_consent: Option<bool>,
    /// The Segment identify trait with the signup time, besides `createdAt`
    /// (default `signup_at`).
    pub signup_trait: Option<String>,
    /// The Segment identify trait with consent (default `consent`).
    pub consent_trait: Option<String>,
    /// Most events (or users) in one ingest request (default 10,000).
    pub max_events_per_request: Option<usize>,
    /// Compact the log when it passes this many bytes (default 256 MiB).
    pub compact_log_bytes: Option<u64>,
    /// Seconds after an erasure by which the user is gone from disk too
    /// (default 60).
    pub erasure_delay_secs: Option<u64>,
}

/// The admin bearer token. Its `Debug` output is redacted, and it is only
/// ever compared in constant time.
#[derive(Clone)]
pub struct AdminToken(String);

impl AdminToken {
    /// Wraps a token.
    pub fn new(token: impl Into<String>) -> Self {
        AdminToken(token.into())
    }

    /// Whether `given` is this token, in time independent of both contents
    /// and lengths (SHA-256 of each, then `subtle`'s constant-time equality).
    pub fn matches(&self, given: &str) -> bool {
        use sha2::{Digest, Sha256};
        use subtle::ConstantTimeEq;
        let (a, b) = (
            Sha256::digest(self.0.as_bytes()),
            Sha256::digest(given.as_bytes()),
        );
        a.as_slice().ct_eq(b.as_slice()).into()
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// Limits and timeouts that protect the server from its clients.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Most rows in one batch request (REST and V2).
    pub max_batch_rows: usize,
    /// Most keys in one row's `features` object.
    pub max_features_per_row: usize,
    /// Most rows one `?explain` request may explain.
    pub max_explain_rows: usize,
    /// Batch, explain and drift requests computed at once.
    pub max_heavy_requests: usize,
    /// Most open client connections.
    pub max_connections: usize,
    /// Largest model file loaded, in bytes.
    pub max_model_bytes: u64,
    /// Time to send a request's headers.
    pub header_read_timeout: Duration,
    /// Time to send a request's body.
    pub body_read_timeout: Duration,
    /// Time for a whole request.
    pub request_timeout: Duration,
    /// Deadline for in-flight requests after SIGTERM.
    pub shutdown_grace: Duration,
    /// Time to keep serving, not ready, after SIGTERM.
    pub shutdown_delay: Duration,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Registry directory.
    pub registry: PathBuf,
    /// Sizes, concurrency and timeouts.
    pub limits: Limits,
    /// Reject unknown features.
    pub strict: bool,
    /// Registry poll interval.
    pub poll_interval: Duration,
    /// Models required for readiness (empty: at least one model).
    pub required_models: Vec<String>,
    /// Policy files by model name.
    pub policies: BTreeMap<String, PathBuf>,
    /// Admin token; admin endpoints are disabled without one.
    pub admin_token: Option<AdminToken>,
    /// The online store, when configured.
    pub online: Option<StoreConfig>,
    /// Trigger delivery, when configured.
    pub triggers: Option<TriggerConfig>,
}

/// Default retention after signup and before the store's clock, in days.
pub const DEFAULT_RETAIN_DAYS: f64 = 30.0;
/// Default items per ingest request.
pub const DEFAULT_MAX_EVENTS_PER_REQUEST: usize = 10_000;
/// Default log size that triggers compaction (256 MiB).
pub const DEFAULT_COMPACT_LOG_BYTES: u64 = 256 << 20;
/// Default time from an erasure to its compaction.
pub const DEFAULT_ERASURE_DELAY_SECS: u64 = 60;

fn online_config(name: &str, base: &Path, file: OnlineFile) -> Result<StoreConfig, ConfigError> {
    let days = |key: &str, value: Option<f64>| match value {
        Some(d) if !(d > 0.0 && d.is_finite() && d <= 36_500.0) => Err(ConfigError(format!(
            "{name}: [online] {key} = {d} must be a positive number of days (at most 36500)"
        ))),
        v => Ok(v.unwrap_or(DEFAULT_RETAIN_DAYS)),
    };
    if file.dir.as_os_str().is_empty() {
        return Err(ConfigError(format!(
            "{name}: [online] dir is empty; name the store's directory"
        )));
    }
    let max_events_per_request = match file.max_events_per_request {
        Some(0) => {
            return Err(ConfigError(format!(
                "{name}: [online] max_events_per_request must be at least 1"
            )))
        }
        v => v.unwrap_or(DEFAULT_MAX_EVENTS_PER_REQUEST),
    };
    let compact_log_bytes = match file.compact_log_bytes {
        Some(b) if b < 4096 => {
            return Err(ConfigError(format!(
                "{name}: [online] compact_log_bytes = {b} is too small (at least 4096)"
            )))
        }
        v => v.unwrap_or(DEFAULT_COMPACT_LOG_BYTES),
    };
    Ok(StoreConfig {
        dir: base.join(file.dir),
        retain_days_after_signup: days("retain_days_after_signup", file.retain_days_after_signup)?,
        retain_last_days: days("retain_last_days", file.retain_last_days)?,
        require_consent: file.require_consent.unwrap_or(false),
        traits: Traits {
            signup: file.signup_trait.unwrap_or_else(|| "signup_at".into()),
            consent: file.consent_trait.unwrap_or_else(|| "consent".into()),
        },
        max_events_per_request,
        compact_log_bytes,
        erasure_delay: Duration::from_secs(
            file.erasure_delay_secs
                .unwrap_or(DEFAULT_ERASURE_DELAY_SECS),
        ),
    })
}

fn triggers_config(
    name: &str,
    file: TriggersFile,
    online: Option<&StoreConfig>,
) -> Result<TriggerConfig, ConfigError> {
    let fail = |message: String| ConfigError(format!("{name}: [triggers] {message}"));
    let Some(online) = online else {
        return Err(fail(
            "needs an [online] section: triggers act on ingested events and keep their state in the store's directory".into(),
        ));
    };
    let url = reqwest::Url::parse(&file.webhook_url).map_err(|e| {
        fail(format!(
            "webhook_url = {:?} is not a URL ({e})",
            file.webhook_url
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(fail(format!(
            "webhook_url = {:?} is not an http(s) URL with a host",
            file.webhook_url
        )));
    }
    if file.webhook_secret.len() < 16 {
        return Err(fail(
            "webhook_secret must be at least 16 characters (it signs every message)".into(),
        ));
    }
    let max_attempts = match file.max_attempts {
        Some(0) => return Err(fail("max_attempts must be at least 1".into())),
        Some(n) if n > 1000 => return Err(fail(format!("max_attempts = {n} is over 1000"))),
        v => v.unwrap_or(8),
    };
    let ms = |key: &str, v: Option<u64>, default: u64| match v {
        Some(0) => Err(fail(format!("{key} must be at least 1"))),
        Some(v) if v > 3_600_000 => Err(fail(format!("{key} = {v} is over an hour"))),
        v => Ok(Duration::from_millis(v.unwrap_or(default))),
    };
    Ok(TriggerConfig {
        dir: online.dir.join("triggers"),
        webhook_url: url,
        webhook_secret: file.webhook_secret,
        max_attempts,
        retry_initial: ms("retry_initial_ms", file.retry_initial_ms, 200)?,
        retry_max: ms("retry_max_ms", file.retry_max_ms, 30_000)?,
        timeout: ms("timeout_ms", file.timeout_ms, 5_000)?,
    })
}

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default body limit (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// Default batch limit.
pub const DEFAULT_MAX_BATCH_ROWS: usize = 10_000;
/// Default registry poll interval.
pub const DEFAULT_POLL_MS: u64 = 2_000;
/// Default keys per row.
pub const DEFAULT_MAX_FEATURES_PER_ROW: usize = 1_000;
/// Default rows per explained request.
pub const DEFAULT_MAX_EXPLAIN_ROWS: usize = 100;
/// Default open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1_024;
/// Default model file cap (1 GiB).
pub const DEFAULT_MAX_MODEL_BYTES: u64 = 1 << 30;
/// Default header-read timeout.
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 5_000;
/// Default body-read timeout.
pub const DEFAULT_BODY_READ_TIMEOUT_MS: u64 = 10_000;
/// Default whole-request timeout.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;
/// Default shutdown grace period.
pub const DEFAULT_SHUTDOWN_GRACE_MS: u64 = 10_000;

/// Default heavy-work concurrency: twice the cores.
pub fn default_max_heavy_requests() -> usize {
    2 * std::thread::available_parallelism().map_or(1, |n| n.get())
}

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
                let file: ConfigFile =
                    toml::from_str(&text).map_err(|e| ConfigError(toml_error(path, &text, &e)))?;
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
        let at_least_one = |key: &str, value: Option<usize>, default: usize| match value {
            Some(0) => Err(ConfigError(format!("{name}: {key} must be at least 1"))),
            Some(v) => Ok(v),
            None => Ok(default),
        };
        let millis = |key: &str, value: Option<u64>, default: u64, min: u64| match value {
            Some(v) if v < min => Err(ConfigError(format!(
                "{name}: {key} = {v} is too small (at least {min})"
            ))),
            v => Ok(Duration::from_millis(v.unwrap_or(default))),
        };
        let limits = Limits {
            max_body_bytes,
            max_batch_rows,
            max_features_per_row: at_least_one(
                "max_features_per_row",
                file.max_features_per_row,
                DEFAULT_MAX_FEATURES_PER_ROW,
            )?,
            max_explain_rows: at_least_one(
                "max_explain_rows",
                file.max_explain_rows,
                DEFAULT_MAX_EXPLAIN_ROWS,
            )?,
            max_heavy_requests: at_least_one(
                "max_heavy_requests",
                file.max_heavy_requests,
                default_max_heavy_requests(),
            )?,
            max_connections: at_least_one(
                "max_connections",
                file.max_connections,
                DEFAULT_MAX_CONNECTIONS,
            )?,
            max_model_bytes: match file.max_model_bytes {
                Some(0) => {
                    return Err(ConfigError(format!(
                        "{name}: max_model_bytes must be at least 1"
                    )))
                }
                Some(bytes) => bytes,
                None => DEFAULT_MAX_MODEL_BYTES,
            },
            header_read_timeout: millis(
                "header_read_timeout_ms",
                file.header_read_timeout_ms,
                DEFAULT_HEADER_READ_TIMEOUT_MS,
                10,
            )?,
            body_read_timeout: millis(
                "body_read_timeout_ms",
                file.body_read_timeout_ms,
                DEFAULT_BODY_READ_TIMEOUT_MS,
                10,
            )?,
            request_timeout: millis(
                "request_timeout_ms",
                file.request_timeout_ms,
                DEFAULT_REQUEST_TIMEOUT_MS,
                10,
            )?,
            shutdown_grace: millis(
                "shutdown_grace_ms",
                file.shutdown_grace_ms,
                DEFAULT_SHUTDOWN_GRACE_MS,
                0,
            )?,
            shutdown_delay: millis("shutdown_delay_ms", file.shutdown_delay_ms, 0, 0)?,
        };
        let online = file
            .online
            .map(|o| online_config(&name, &base, o))
            .transpose()?;
        let triggers = file
            .triggers
            .map(|t| triggers_config(&name, t, online.as_ref()))
            .transpose()?;
        for model in file.models.iter().flatten().chain(file.policies.keys()) {
            presage_models::registry::check_model_name(model)
                .map_err(|e| ConfigError(format!("{name}: {e}")))?;
        }
        Ok(ServeConfig {
            listen,
            registry,
            limits,
            strict: overrides.strict.or(file.strict).unwrap_or(false),
            poll_interval: Duration::from_millis(poll),
            required_models: file.models.unwrap_or_default(),
            policies: file
                .policies
                .into_iter()
                .map(|(model, path)| (model, base.join(path)))
                .collect(),
            admin_token: admin_token.map(AdminToken),
            online,
            triggers,
        })
    }
}

/// A TOML error as `file:line:column: message`, without the excerpt of the
/// file that `toml` adds (it could quote the admin token).
fn toml_error(path: &Path, text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end();
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("{}:{line}:{column}: {message}", path.display())
        }
        None => format!("{}: {message}", path.display()),
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
        assert_eq!(from_file.limits.max_batch_rows, 50);
        assert_eq!(from_file.required_models, vec!["churn".to_string()]);
        assert_eq!(from_file.policies["churn"], dir.path().join("p/churn.toml"));
        assert_eq!(from_file.limits.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        let overrides = Overrides {
            listen: Some("127.0.0.1:0".into()),
            registry: Some(PathBuf::from("/srv/registry")),
            max_batch_rows: Some(7),
            ..Overrides::default()
        };
        let merged = ServeConfig::resolve(Some(&path), overrides).unwrap();
        assert_eq!(merged.listen.to_string(), "127.0.0.1:0");
        assert_eq!(merged.registry, PathBuf::from("/srv/registry"));
        assert_eq!(merged.limits.max_batch_rows, 7);
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
        assert!(error("strict = \"yes\"\n").contains("serve.toml:1:10: invalid type"));
        assert!(error("max_connections = 0\n")
            .contains("serve.toml: max_connections must be at least 1"));
        assert!(error("request_timeout_ms = 1\n")
            .contains("serve.toml: request_timeout_ms = 1 is too small (at least 10)"));
        assert!(
            error("[online]\ndir = \"s\"\nretain_last_days = -1\n").contains(
                "serve.toml: [online] retain_last_days = -1 must be a positive number of days"
            )
        );
        assert!(error("[online]\ndir = \"s\"\nretain_days = 3\n")
            .contains("unknown field `retain_days`"));
    }

    #[test]
    fn the_admin_token_never_shows() {
        let dir = tempfile::tempdir().unwrap();
        let secret = "do-not-print-this-token";
        // A type error on the token's line: toml's own message would quote it.
        let path = write(dir.path(), &format!("admin_token = [\"{secret}\"]\n"));
        let error = ServeConfig::resolve(Some(&path), Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("serve.toml:1:15"), "{error}");
        assert!(!error.contains(secret), "{error}");
        // A syntax error on the token's line.
        let path = write(dir.path(), &format!("admin_token = \"{secret}\" x\n"));
        let error = ServeConfig::resolve(Some(&path), Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(!error.contains(secret), "{error}");
        let path = write(dir.path(), &format!("admin_token = \"{secret}\"\n"));
        let config = ServeConfig::resolve(Some(&path), Overrides::default()).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains(secret), "{debug}");
        assert!(debug.contains("AdminToken(<redacted>)"), "{debug}");
        let token = config.admin_token.unwrap();
        assert!(token.matches(secret));
        assert!(!token.matches("do-not-print-this-tokeN"));
        assert!(!token.matches(""));
    }
}
