//! The connection loop: accepts TCP connections up to `max_connections`,
//! serves each with hyper's HTTP/1 connection (which closes a connection
//! whose request headers do not arrive within `header_read_timeout_ms`:
//! slowloris), and drains on shutdown.
//!
//! `axum::serve` has no header-read timeout and no connection limit, so the
//! loop is written here on hyper and hyper-util's own parts
//! (`http1::Builder`, `TokioTimer`, `GracefulShutdown`). A connection
//! beyond the limit waits in the kernel's accept queue until one closes.
//! Shutdown stops accepting, lets every open connection finish its
//! in-flight request (idle keep-alive connections close at once), and gives
//! up after the grace period.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::Limits;

/// How the server stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Every in-flight request finished.
    Cleanly,
    /// The grace period ran out with connections still open.
    AtDeadline,
}

/// Serves `router` on `listener` until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &Limits,
    shutdown: impl Future<Output = ()>,
) -> Drained {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    metrics::counter!("presage_accept_errors_total").increment(1);
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        metrics::gauge!("presage_open_connections").increment(1.0);
        let connection = http.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Errors here are the client's (reset, header timeout): the
            // connection is closed either way.
            let _ = connection.await;
            metrics::gauge!("presage_open_connections").decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => Drained::Cleanly,
        () = tokio::time::sleep(limits.shutdown_grace) => Drained::AtDeadline,
    }
}
