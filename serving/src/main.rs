//! `presage-serve`: serves the champion of every model in a registry over
//! HTTP. Thin: configuration is merged and checked first, then the store is
//! loaded, the registry poller started and the server run until SIGTERM or
//! Ctrl-C. Then `/readyz` answers 503 at once; after `shutdown_delay_ms` the
//! server stops accepting, in-flight requests drain for at most
//! `shutdown_grace_ms`, and the process exits 0.
//! Exit codes: 0 after a clean shutdown, 1 on a runtime failure (e.g. the
//! port is taken), 2 on a bad configuration or segment policy.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use presage_models::registry::{Registry, REGISTRY_ENV};
use presage_serving::app::app;
use presage_serving::config::{Overrides, ServeConfig};
use presage_serving::online::store::OnlineStore;
use presage_serving::server::{self, Drained};
use presage_serving::state::AppState;
use presage_serving::store::ModelStore;

#[derive(Parser)]
#[command(
    name = "presage-serve",
    version,
    about = "Serve Presage models over HTTP."
)]
#[command(
    after_help = "Exit codes: 0 clean shutdown, 1 runtime failure, 2 bad configuration or policy."
)]
struct Cli {
    /// Model registry directory [default: ./registry].
    #[arg(long, env = REGISTRY_ENV)]
    registry: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "PRESAGE_LISTEN")]
    listen: Option<String>,
    /// TOML configuration file.
    #[arg(long, env = "PRESAGE_CONFIG")]
    config: Option<PathBuf>,
    /// Largest request body in bytes [default: 1048576].
    #[arg(long, env = "PRESAGE_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Most rows in one batch request [default: 10000].
    #[arg(long, env = "PRESAGE_MAX_BATCH_ROWS")]
    max_batch_rows: Option<usize>,
    /// Reject unknown features (422) instead of warning.
    #[arg(long, env = "PRESAGE_STRICT")]
    strict: Option<bool>,
    /// Registry poll interval in milliseconds [default: 2000].
    #[arg(long, env = "PRESAGE_POLL_INTERVAL_MS")]
    poll_interval_ms: Option<u64>,
    /// Before listening, load this NDJSON file of users (from `presage-train
    /// export-online`) into the online store.
    #[arg(long, value_name = "PATH")]
    backfill_users: Option<PathBuf>,
    /// Before listening, load this NDJSON file of events into the online store.
    #[arg(long, value_name = "PATH")]
    backfill_events: Option<PathBuf>,
}

/// The backfill files asked for.
struct Backfill {
    users: Option<PathBuf>,
    events: Option<PathBuf>,
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PRESAGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        builder.init();
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init();
    }
}

fn main() -> ExitCode {
    // Before any other thread exists.
    presage_serving::allocator::bound_retention();
    let cli = Cli::parse();
    init_logs();
    let overrides = Overrides {
        listen: cli.listen,
        registry: cli.registry,
        max_body_bytes: cli.max_body_bytes,
        max_batch_rows: cli.max_batch_rows,
        strict: cli.strict,
        poll_interval_ms: cli.poll_interval_ms,
        admin_token: std::env::var("PRESAGE_ADMIN_TOKEN").ok(),
    };
    let config = match ServeConfig::resolve(cli.config.as_deref(), overrides) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let backfill = Backfill {
        users: cli.backfill_users,
        events: cli.backfill_events,
    };
    if config.online.is_none() && (backfill.users.is_some() || backfill.events.is_some()) {
        eprintln!("error: --backfill-users/--backfill-events need an online store: add an [online] section with dir = \"...\" to the config");
        return ExitCode::from(2);
    }
    let code = runtime.block_on(serve(config, backfill));
    // Blocking work still running past the grace period is not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    code
}

/// Recovers the online store, then loads the backfill files into it.
async fn run_backfill(store: &Arc<OnlineStore>, backfill: &Backfill) -> Result<(), String> {
    use presage_serving::online::backfill::{backfill_file, wait_recovered};
    use presage_serving::online::ingest::Expect;
    wait_recovered(store).await.map_err(|e| e.to_string())?;
    for (path, expect, what) in [
        (&backfill.users, Expect::Users, "users"),
        (&backfill.events, Expect::Events, "events"),
    ] {
        let Some(path) = path else { continue };
        let started = std::time::Instant::now();
        let report = backfill_file(store, path, expect)
            .await
            .map_err(|e| e.to_string())?;
        let o = &report.outcome;
        tracing::info!(
            file = %path.display(),
            lines = report.lines,
            accepted = o.accepted,
            users_updated = o.users_updated,
            duplicates = o.duplicates,
            dropped = o.dropped_before_signup + o.dropped_expired + o.dropped_no_consent,
            rejected = report.rejected,
            seconds = started.elapsed().as_secs_f64(),
            "backfilled {what}"
        );
        for line in &report.first_rejections {
            tracing::warn!("backfill line rejected: {line}");
        }
    }
    Ok(())
}

async fn serve(config: ServeConfig, backfill: Backfill) -> ExitCode {
    let metrics = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("presage_request_duration_seconds".into()),
            &[
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1.0,
            ],
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("presage_score".into()),
                &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
            )
        })
        .and_then(|b| b.install_recorder());
    let metrics = match metrics {
        Ok(handle) => Some(handle),
        Err(e) => {
            eprintln!("error: cannot start metrics: {e}");
            return ExitCode::from(1);
        }
    };
    let (store, report) = match ModelStore::open(
        Registry::new(&config.registry),
        config.policies.clone(),
        config.limits.max_model_bytes,
    ) {
        Ok(opened) => opened,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    for failure in &report.failed {
        tracing::error!(failure = %failure, "model failed to load");
    }
    let store = Arc::new(store);
    let catalog = store.catalog();
    tracing::info!(registry = %config.registry.display(), models = ?catalog.servable(), "models loaded");
    let online = match config.online.clone().map(OnlineStore::open).transpose() {
        Ok(online) => online,
        Err(e) => {
            eprintln!("error: online store: {e}");
            return ExitCode::from(2);
        }
    };
    let triggers = match config
        .triggers
        .clone()
        .map(presage_serving::triggers::Triggers::open)
        .transpose()
    {
        Ok(triggers) => triggers,
        Err(e) => {
            eprintln!("error: triggers: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(store) = &online {
        if backfill.users.is_some() || backfill.events.is_some() {
            if let Err(e) = run_backfill(store, &backfill).await {
                eprintln!("error: backfill: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot listen on {}: {e}", config.listen);
            return ExitCode::from(1);
        }
    };
    let local = listener
        .local_addr()
        .map_or_else(|_| config.listen.to_string(), |a| a.to_string());
    // Tests and scripts read this line to find an ephemeral port.
    println!("listening on http://{local}");
    tracing::info!(address = %local, "listening");

    let poller = {
        let store = store.clone();
        let interval = config.poll_interval;
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let store = store.clone();
                match tokio::task::spawn_blocking(move || store.reload()).await {
                    Ok(report) => {
                        for loaded in &report.loaded {
                            tracing::info!(version = %loaded, "model version loaded");
                        }
                        for promoted in &report.promoted {
                            tracing::info!(change = %promoted, "champion swapped in");
                        }
                        for failure in &report.failed {
                            tracing::error!(failure = %failure, "model failed to load; previous version keeps serving");
                        }
                    }
                    Err(e) => {
                        metrics::counter!("presage_reload_failures_total").increment(1);
                        tracing::error!(error = %e, "registry reload failed; the catalog is unchanged");
                    }
                }
            }
        })
    };

    // The Prometheus recorder buffers histogram samples until upkeep (or a
    // scrape) folds them into buckets: without this, memory grows with
    // every request on a server nobody scrapes.
    let upkeep = metrics.clone().map(|handle| {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                ticker.tick().await;
                handle.run_upkeep();
            }
        })
    });
    let limits = config.limits.clone();
    let mut state = AppState::new(store, config);
    state.metrics = metrics;
    state.online = online;
    state.triggers = triggers;
    if let Some(triggers) = &state.triggers {
        triggers.start(state.clone());
    }
    let draining = {
        let state = state.clone();
        async move {
            shutdown_signal().await;
            state.begin_shutdown();
            tracing::info!("shutdown signal received; /readyz now answers 503");
            tokio::time::sleep(limits.shutdown_delay).await;
            tracing::info!("no longer accepting connections; draining in-flight requests");
        }
    };
    let drained = server::serve(listener, app(state), &limits, draining).await;
    poller.abort();
    if let Some(upkeep) = upkeep {
        upkeep.abort();
    }
    match drained {
        Drained::Cleanly => tracing::info!("shut down cleanly"),
        Drained::AtDeadline => tracing::warn!(
            grace_ms = limits.shutdown_grace.as_millis() as u64,
            "shutdown grace period over; closing the remaining connections"
        ),
    }
    ExitCode::SUCCESS
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
