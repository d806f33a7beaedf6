//! Model swaps without downtime: a new champion is picked up while clients
//! keep sending requests, none fails or gets another answer than 200; a
//! corrupt new artifact leaves the previous champion serving and is
//! reported; admin endpoints need the configured token.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use presage_models::registry::Registry;
use presage_tests::{fit_churn, http, Server};
use serde_json::Value;

const TOKEN: &str = "0123456789abcdef-test-token";

/// Status and model version of one response.
type Answer = (u16, Option<u64>);

const USER: &str = r#"{"user_id": "u-1", "features": {"tenure": 4, "Contract": "Month-to-month", "MonthlyCharges": 80.0, "InternetService": "Fiber optic"}}"#;

fn fit(registry: &std::path::Path, seed: &str) {
    fit_churn(registry, &["--num-iterations", "30", "--seed", seed]).ok();
}

fn start(registry: &std::path::Path) -> Server {
    Server::start_with_env(
        registry,
        &["--poll-interval-ms", "50"],
        &[("PRESAGE_ADMIN_TOKEN", TOKEN)],
    )
}

fn wait_for(mut condition: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

#[test]
fn champion_swaps_under_load_without_failures_and_corrupt_versions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    fit(&registry, "1");
    fit(&registry, "2");
    let server = start(&registry);

    // Clients hammer the server through every swap below.
    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, seen, addr) = (stop.clone(), seen.clone(), server.addr.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let r = http(
                        &addr,
                        "POST",
                        "/predict/churn",
                        Some(USER),
                        &[("content-type", "application/json")],
                    );
                    let version = serde_json::from_str::<Value>(&r.body)
                        .ok()
                        .and_then(|b| b["version"].as_u64());
                    seen.lock().unwrap().push((r.status, version));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));

    // Another process (a retraining job) moves `champion` in the registry.
    Registry::new(&registry)
        .set_alias("churn", "champion", 2)
        .unwrap();
    assert!(
        wait_for(|| server.post("/predict/churn", USER).json()["version"] == 2),
        "champion 2 was not picked up"
    );
    std::thread::sleep(Duration::from_millis(200));

    // A corrupt version 3 becomes champion in the registry: version 2 keeps serving.
    let good = std::fs::read(registry.join("churn/v2.presage")).unwrap();
    let mut bad = good.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0xFF;
    std::fs::write(registry.join("churn/v3.presage"), &bad).unwrap();
    Registry::new(&registry)
        .set_alias("churn", "champion", 3)
        .unwrap();
    assert!(
        wait_for(|| server.get("/models/churn").json()["errors"]
            .as_array()
            .is_some_and(|e| !e.is_empty())),
        "the corrupt version was not reported"
    );
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }

    let seen = seen.lock().unwrap();
    assert!(
        seen.len() > 50,
        "too few requests during the swaps: {}",
        seen.len()
    );
    let failures: Vec<_> = seen.iter().filter(|(status, _)| *status != 200).collect();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during swaps: {:?}",
        failures.len(),
        seen.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(seen.iter().any(|(_, v)| *v == Some(1)) && seen.iter().any(|(_, v)| *v == Some(2)));
    assert!(
        seen.iter().all(|(_, v)| *v != Some(3)),
        "a corrupt version answered"
    );

    let model = server.get("/models/churn").json();
    assert_eq!(model["champion"], 2);
    let error = model["errors"][0].as_str().unwrap();
    assert!(
        error.contains("v3.presage") && error.contains("checksum mismatch"),
        "{error}"
    );
    let metrics = server.get("/metrics").body;
    assert!(
        metrics.contains(r#"presage_model_load_failures_total{model="churn"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"presage_model_version{model="churn"} 2"#),
        "{metrics}"
    );
}

#[test]
fn admin_endpoints_need_the_token_and_refuse_unloadable_versions() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry");
    fit(&registry, "1");
    fit(&registry, "2");

    // Without a configured token the admin endpoints are disabled.
    let closed = Server::start(&registry, &[]);
    let r = closed.request(
        "POST",
        "/admin/reload",
        None,
        &[("authorization", &format!("Bearer {TOKEN}"))],
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["code"], "admin_disabled");
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("PRESAGE_ADMIN_TOKEN"));

    let server = start(&registry);
    let put = |version: &str, token: &str| {
        server.request(
            "PUT",
            "/models/churn/aliases/champion",
            Some(&format!(r#"{{"version": {version}}}"#)),
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {token}")),
            ],
        )
    };
    let wrong = put("2", "not-the-token-at-all");
    assert_eq!(
        (wrong.status, wrong.json()["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let missing = put("7", TOKEN);
    assert_eq!(
        (missing.status, missing.json()["error"]["code"].as_str()),
        (404, Some("unknown_version"))
    );

    std::fs::write(registry.join("churn/v3.presage"), b"not a model").unwrap();
    let corrupt = put("3", TOKEN);
    assert_eq!(
        (corrupt.status, corrupt.json()["error"]["code"].as_str()),
        (409, Some("version_unloadable"))
    );
    assert_eq!(
        Registry::new(&registry).aliases("churn").unwrap()["champion"],
        1,
        "alias must not move"
    );

    let moved = put("2", TOKEN);
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(
        server.post("/predict/churn", USER).json()["version"],
        2,
        "swap is visible to the next request"
    );
    let reload = server.request(
        "POST",
        "/admin/reload",
        None,
        &[("authorization", &format!("Bearer {TOKEN}"))],
    );
    assert_eq!(reload.status, 200, "{}", reload.body);
}
