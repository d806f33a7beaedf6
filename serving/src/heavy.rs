//! Heavy work off the async workers.
//!
//! Batch scoring, explanations (TreeSHAP) and drift reports cost from
//! milliseconds to seconds of CPU. Run on the async worker threads they
//! would stall every other connection, `/healthz` included. [`HeavyPool`]
//! runs them on tokio's blocking threads instead, at most
//! `max_heavy_requests` at once: the rest wait for a permit (bounded by the
//! whole-request timeout), so a flood of heavy requests queues behind a
//! fixed amount of CPU while cheap requests keep being answered. A panic in
//! the work is re-raised in the handler, where the router's panic layer turns
//! it into a 500 like any other handler panic.

use std::sync::Arc;

use axum::http::StatusCode;
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Runs CPU-heavy request work on blocking threads, a bounded number at once.
#[derive(Debug, Clone)]
pub struct HeavyPool {
    permits: Arc<Semaphore>,
}

impl HeavyPool {
    /// A pool running at most `concurrency` pieces of work at once.
    pub fn new(concurrency: usize) -> Self {
        HeavyPool {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// Runs `work` on a blocking thread once a permit is free.
    pub async fn run<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let shutting_down = || {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server is shutting down; retry on another replica",
            )
        };
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| shutting_down())?;
        let joined = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await;
        match joined {
            Ok(value) => Ok(value),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(shutting_down()),
        }
    }
}
