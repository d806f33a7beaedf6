//! In-process test support: the fixture model ([`fixture`]) registered in a
//! temporary registry, the application router over it, and one-shot
//! requests through `tower::ServiceExt`.

#![allow(dead_code)]

pub mod fixture;

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use presage_models::registry::Registry;
use presage_serving::app::app;
use presage_serving::config::{Overrides, ServeConfig};
use presage_serving::state::AppState;
use presage_serving::store::ModelStore;
use serde_json::Value;
use tower::ServiceExt;

#[allow(unused_imports)]
pub use fixture::{artifact, FEATURES};

/// Registers `versions` versions of `churn` (the first is champion).
pub fn registry(dir: &Path, versions: usize) -> Registry {
    let registry = Registry::new(dir.join("registry"));
    for v in 0..versions {
        let mut a = artifact("churn", v as f64 * 0.1);
        registry.register(&mut a).expect("register fixture");
    }
    registry
}

/// The router over `registry` with `config` (TOML text of `serve.toml`).
pub fn router(dir: &Path, registry: &Registry, config: &str) -> (Router, AppState) {
    let path = dir.join("serve.toml");
    std::fs::write(&path, config).expect("write serve.toml");
    let overrides = Overrides {
        registry: Some(registry.root().to_path_buf()),
        ..Overrides::default()
    };
    let config = ServeConfig::resolve(Some(&path), overrides).expect("valid config");
    let (store, _) = ModelStore::open(
        registry.clone(),
        config.policies.clone(),
        config.limits.max_model_bytes,
    )
    .expect("store");
    let state = AppState::new(Arc::new(store), config);
    (app(state.clone()), state)
}

/// An answer: status, headers and body bytes.
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: axum::http::HeaderMap,
    /// Body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// `(code, field)` of an error body: the API's `{"error": {"code",
    /// "message", "field"}}`, or the V2 routes' `{"error": "<message>",
    /// "code", "field"}`.
    pub fn error(&self) -> (String, Option<String>) {
        let body = self.json();
        let e = if body["error"].is_string() {
            &body
        } else {
            &body["error"]
        };
        let message = if body["error"].is_string() {
            &body["error"]
        } else {
            &e["message"]
        };
        assert!(message.as_str().is_some_and(|m| !m.is_empty()), "{body}");
        (
            e["code"].as_str().expect("error code").to_string(),
            e["field"].as_str().map(str::to_string),
        )
    }
}

/// Sends one request through the router.
pub async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body")
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

/// A POST with a JSON body.
pub fn post_json(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(body.into())
        .expect("request")
}

/// A GET.
pub fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("request")
}
