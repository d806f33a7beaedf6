//! In-process: only servable versions are loaded (the rest on demand), bad
//! versions are remembered once, alias moves load the target first, admin
//! data needs the token, and readiness turns 503 on shutdown.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use presage_models::registry::Registry;
use serde_json::json;
use support::{artifact, get, post_json, router, send};

const TOKEN: &str = "an-admin-token-for-tests";

/// `churn` v1 lacks the `visits` feature (it has `sessions`), v2 and v3
/// are the full fixture; champion is v2.
fn versions(dir: &std::path::Path) -> Registry {
    let registry = Registry::new(dir.join("registry"));
    let mut old = artifact("churn", 0.0);
    old.schema.features[2].name = "sessions".into();
    registry.register(&mut old).unwrap();
    for shift in [0.1, 0.2] {
        registry.register(&mut artifact("churn", shift)).unwrap();
    }
    registry.set_alias("churn", "champion", 2).unwrap();
    registry
}

/// A policy that only fits versions with `visits`.
fn with_policy(dir: &std::path::Path, registry: &Registry) {
    std::fs::write(
        registry.root().join("churn/policy.toml"),
        "mode = \"percentile\"\n[[segments]]\nname = \"healthy\"\nfrom = 0.0\nto = 0.8\nflow = \"standard\"\n[[segments]]\nname = \"at_risk\"\nfrom = 0.8\nto = 1.0\nflow = \"concierge\"\n[[rules]]\nwhen = \"visits > 20\"\nsegment = \"at_risk\"\n",
    )
    .unwrap();
    let _ = dir;
}

fn admin(request: axum::http::request::Builder) -> axum::http::request::Builder {
    request.header("authorization", format!("bearer {TOKEN}"))
}

#[tokio::test]
async fn only_aliased_versions_load_and_others_load_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    let registry = versions(dir.path());
    with_policy(dir.path(), &registry);
    // v1 does not fit the policy, but no alias points at it: the server starts.
    let (app, _) = router(dir.path(), &registry, "");
    let model = send(&app, get("/models/churn")).await.json();
    assert_eq!(model["loaded_versions"], json!([2]));
    assert_eq!(model["errors"], json!([]));
    let body = json!({"features": {"tenure": 3}}).to_string();
    let answer = send(&app, post_json("/predict/churn?version=3", body.clone())).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json());
    assert_eq!(answer.json()["version"], 3);
    let model = send(&app, get("/models/churn")).await.json();
    assert_eq!(model["loaded_versions"], json!([2, 3]));
    // The old version cannot be served under this policy: 409, remembered.
    for _ in 0..2 {
        let answer = send(&app, post_json("/predict/churn?version=1", body.clone())).await;
        assert_eq!(
            answer.error(),
            ("version_unloadable".into(), Some("version".into()))
        );
        assert!(
            answer.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("unknown feature 'visits'"),
            "{}",
            answer.json()
        );
    }
    let answer = send(&app, post_json("/predict/churn?version=9", body)).await;
    assert_eq!(
        answer.error(),
        ("unknown_version".into(), Some("version".into()))
    );
}

#[tokio::test]
async fn a_bad_aliased_version_is_reported_once_and_not_reread() {
    let dir = tempfile::tempdir().unwrap();
    let registry = versions(dir.path());
    // v3 is damaged (valid header, garbage payload) and aliased.
    let path = registry.artifact_path("churn", 3);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    registry.set_alias("churn", "challenger", 3).unwrap();
    // v1's file is stored as v4: its inside says v1.
    std::fs::copy(
        registry.artifact_path("churn", 1),
        registry.artifact_path("churn", 4),
    )
    .unwrap();
    let (app, state) = router(dir.path(), &registry, "");
    let errors = send(&app, get("/models/churn")).await.json()["errors"].clone();
    assert_eq!(errors.as_array().unwrap().len(), 1, "{errors}");
    assert!(
        errors[0].as_str().unwrap().starts_with("churn@3: "),
        "{errors}"
    );
    assert!(errors[0].as_str().unwrap().contains("checksum"), "{errors}");
    for _ in 0..3 {
        let report = state.store.reload();
        assert!(report.failed.is_empty(), "{report:?}");
        assert_eq!(
            send(&app, get("/models/churn")).await.json()["errors"],
            errors
        );
    }
    let answer = send(
        &app,
        post_json("/predict/churn?version=4", r#"{"features": {}}"#),
    )
    .await;
    assert_eq!(answer.error().0, "version_unloadable");
    let message = answer.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("the file holds model \"churn\" version 1")
            && message.contains("model 'churn' version 4"),
        "{message}"
    );
}

#[tokio::test]
async fn model_files_over_the_cap_are_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let registry = versions(dir.path());
    let (app, _) = router(dir.path(), &registry, "max_model_bytes = 1000\n");
    let model = send(&app, get("/models/churn")).await.json();
    assert_eq!(model["champion"], json!(null));
    let error = model["errors"][0].as_str().unwrap().to_string();
    assert!(
        error.starts_with("churn@2: ") && error.contains("1000"),
        "{error}"
    );
    assert_eq!(
        send(&app, get("/readyz")).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn moving_an_alias_loads_the_version_first() {
    let dir = tempfile::tempdir().unwrap();
    let registry = versions(dir.path());
    with_policy(dir.path(), &registry);
    let (app, _) = router(
        dir.path(),
        &registry,
        &format!("admin_token = \"{TOKEN}\"\n"),
    );
    let put = |version: u64| {
        admin(Request::put("/models/churn/aliases/champion"))
            .header("content-type", "application/json")
            .body(Body::from(json!({"version": version}).to_string()))
            .unwrap()
    };
    // v1 does not fit the policy: 409, and the alias stays on v2.
    let answer = send(&app, put(1)).await;
    assert_eq!(
        answer.error(),
        ("version_unloadable".into(), Some("version".into()))
    );
    assert_eq!(registry.aliases("churn").unwrap()["champion"], 2);
    // v3 does: the alias moves and the next prediction uses it.
    let answer = send(&app, put(3)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json());
    assert_eq!(registry.aliases("churn").unwrap()["champion"], 3);
    let answer = send(&app, post_json("/predict/churn", r#"{"features": {}}"#)).await;
    assert_eq!(answer.json()["version"], 3);
}

#[tokio::test]
async fn training_ranges_need_the_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let registry = versions(dir.path());
    let (app, _) = router(
        dir.path(),
        &registry,
        &format!("admin_token = \"{TOKEN}\"\n"),
    );
    let tenure = |body: serde_json::Value| body["features"][0].clone();
    let public = tenure(send(&app, get("/models/churn")).await.json());
    assert_eq!(public["name"], "tenure");
    assert!(
        public.get("min").is_none() && public.get("max").is_none(),
        "{public}"
    );
    assert_eq!(public["missing_share"], 0.0);
    let wrong = Request::get("/models/churn")
        .header("authorization", "Bearer not-the-token-at-all")
        .body(Body::empty())
        .unwrap();
    assert!(tenure(send(&app, wrong).await.json()).get("min").is_none());
    let allowed = admin(Request::get("/models/churn"))
        .body(Body::empty())
        .unwrap();
    let private = tenure(send(&app, allowed).await.json());
    assert_eq!(
        (private["min"].clone(), private["max"].clone()),
        (json!(0.0), json!(72.0))
    );
    // Admin routes: no credentials is 401; the scheme in lower case works.
    let answer = send(
        &app,
        Request::post("/admin/reload").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(answer.error(), ("unauthorized".into(), None));
    let answer = send(
        &app,
        admin(Request::post("/admin/reload"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn readiness_turns_503_when_shutdown_begins() {
    let dir = tempfile::tempdir().unwrap();
    let registry = versions(dir.path());
    let (app, state) = router(dir.path(), &registry, "");
    assert_eq!(send(&app, get("/readyz")).await.status, StatusCode::OK);
    state.begin_shutdown();
    let answer = send(&app, get("/readyz")).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.json()["reason"], "shutting down");
    let answer = send(&app, get("/v2/health/ready")).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    // Still live, and still scoring while it drains.
    assert_eq!(send(&app, get("/healthz")).await.status, StatusCode::OK);
    let answer = send(&app, post_json("/predict/churn", r#"{"features": {}}"#)).await;
    assert_eq!(answer.status, StatusCode::OK);
}
