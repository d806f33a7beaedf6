//! Triggers end to end, with the real binary and a real HTTP receiver:
//! each kind fires with its exact message and a valid signature, a
//! deadline fires after a restart (late, and saying so), a receiver that
//! is down for 3 s gets every message once it is back, one that stays down
//! fills the dead letter, replaying the dead letter delivers, erasure
//! removes a user's trigger state from disk, and bad trigger configs are
//! refused naming the key.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use presage_models::time::format_timestamp;
use presage_tests::{binary, train, Server};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const TOKEN: &str = "trigger-test-admin-token";
const SECRET: &str = "trigger-test-webhook-secret";

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// HMAC-SHA256 written out from RFC 2104 (independent of the server's).
fn hmac_sha256(key: &[u8], message: &[u8]) -> String {
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(key);
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

/// One request the receiver got: headers (names lower-cased) and body.
type Received = (BTreeMap<String, String>, Vec<u8>);

/// A webhook receiver on a thread: answers 200 to every POST and keeps the
/// headers and body.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(port: u16) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the receiver");
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let shared = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                let (headers, body) = loop {
                    let n = match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break (BTreeMap::new(), Vec::new()),
                        Ok(n) => n,
                    };
                    raw.extend_from_slice(&buf[..n]);
                    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&raw[..end]).to_string();
                    let headers: BTreeMap<String, String> = head
                        .lines()
                        .skip(1)
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
                        .collect();
                    let length: usize = headers
                        .get("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    while raw.len() < end + 4 + length {
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => raw.extend_from_slice(&buf[..n]),
                        }
                    }
                    break (
                        headers,
                        raw[end + 4..(end + 4 + length).min(raw.len())].to_vec(),
                    );
                };
                if headers.is_empty() {
                    continue;
                }
                shared.lock().unwrap().push((headers, body));
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        Receiver { port, got }
    }

    /// The messages received so far (checking each signature).
    fn messages(&self) -> Vec<Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(headers, body)| {
                let signature = headers.get("x-presage-signature").expect("signed");
                assert_eq!(
                    signature,
                    &format!("sha256={}", hmac_sha256(SECRET.as_bytes(), body)),
                    "signature of {}",
                    String::from_utf8_lossy(body)
                );
                let message: Value = serde_json::from_slice(body).unwrap();
                assert_eq!(
                    headers.get("x-presage-idempotency-key").map(String::as_str),
                    message["idempotency_key"].as_str()
                );
                message
            })
            .collect()
    }

    /// Waits until `n` messages arrived (at most `secs`).
    fn wait_for(&self, n: usize, secs: u64) -> Vec<Value> {
        let until = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < until {
            if self.got.lock().unwrap().len() >= n {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.messages()
    }
}

/// A port nothing listens on (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The adoption model of the shipped extract (events raise its
/// probability) in `dir/registry`.
fn fit(dir: &Path) {
    let config = presage_datasets::config("adoption.toml");
    train(
        &dir.join("registry"),
        &["fit", "--config", config.to_str().unwrap()],
    )
    .ok();
}

fn start(dir: &Path, triggers: Option<&str>) -> Server {
    let mut text = String::from(
        "[policies]\nadoption = \"policy.toml\"\n\n[online]\ndir = \"store\"\nretain_days_after_signup = 30\nretain_last_days = 30\n",
    );
    if let Some(t) = triggers {
        text.push_str(&format!(
            "\n[triggers]\nwebhook_secret = \"{SECRET}\"\n{t}\n"
        ));
    }
    let config = dir.join("serve.toml");
    std::fs::write(&config, text).unwrap();
    let server = Server::start_with_env(
        &dir.join("registry"),
        &["--config", config.to_str().unwrap()],
        &[("PRESAGE_ADMIN_TOKEN", TOKEN)],
    );
    for _ in 0..500 {
        if server.get("/readyz").status == 200 {
            return server;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the server did not become ready");
}

fn write_policy(dir: &Path, mid: f64, triggers: &str) {
    std::fs::write(
        dir.join("policy.toml"),
        format!(
            r#"mode = "threshold"
[[segments]]
name = "low"
from = 0.0
to = {mid}
flow = "standard"
[[segments]]
name = "high"
from = {mid}
to = 1.0
flow = "advanced_tutorial"
[segments.attributes]
tour = "automations"
{triggers}"#
        ),
    )
    .unwrap();
}

const CHANGE_TRIGGERS: &str = r#"
[[triggers]]
name = "ready_for_automations"
on = "segment_change"
to = "high"
[[triggers]]
name = "likely_adopter"
on = "probability"
at_least = MID
"#;

fn post(server: &Server, path: &str, body: &Value) -> Value {
    let answer = server.post(path, &body.to_string());
    assert_eq!(answer.status, 200, "{path}: {}", answer.body);
    answer.json()
}

fn signup(server: &Server, user: &str, signup_us: i64) {
    let answer = post(
        server,
        "/users",
        &json!([{"user_id": user, "signup_at": format_timestamp(signup_us), "consent": true}]),
    );
    assert_eq!(answer["users_updated"], 1, "{answer}");
}

/// An engaged first two hours, from `signup_us`.
fn engaged_events(user: &str, signup_us: i64) -> Value {
    let names = [
        "session_start",
        "profile_completed",
        "project_created",
        "feature_reports",
        "feature_dashboards",
        "teammate_invited",
        "integration_connected",
        "feature_export",
        "onboarding_completed",
        "session_start",
        "feature_api",
        "feature_sharing",
    ];
    Value::Array(
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                json!({
                    "user_id": user,
                    "event": name,
                    "occurred_at": format_timestamp(signup_us + (i as i64 + 1) * 5 * 60_000_000),
                    "event_id": format!("{user}-{i}"),
                })
            })
            .collect(),
    )
}

fn probability(server: &Server, user: &str, as_of: Option<&str>) -> (f64, String) {
    let path = match as_of {
        Some(t) => format!("/predict/adoption?as_of={t}"),
        None => "/predict/adoption".to_owned(),
    };
    let answer = post(server, &path, &json!({"user_id": user}));
    (
        answer["probability"].as_f64().unwrap(),
        answer["segment"].as_str().unwrap().to_owned(),
    )
}

/// Measures a fresh user's probability without and with the engaged
/// events (on a server without triggers), and returns the midpoint.
fn midpoint(dir: &Path) -> f64 {
    write_policy(dir, 0.5, "");
    let server = start(dir, None);
    let signup_us = now_us() - 3 * 3_600_000_000;
    signup(&server, "probe", signup_us);
    let (before, _) = probability(&server, "probe", None);
    post(&server, "/events", &engaged_events("probe", signup_us));
    let (after, _) = probability(&server, "probe", None);
    assert!(
        after > before + 0.02,
        "the engaged events should raise the adoption probability: {before} -> {after}"
    );
    drop(server);
    std::fs::remove_dir_all(dir.join("store")).unwrap();
    (before + after) / 2.0
}

#[test]
fn segment_change_and_probability_triggers_fire_once_with_exact_messages() {
    let dir = tempfile::tempdir().unwrap();
    fit(dir.path());
    let mid = midpoint(dir.path());
    write_policy(
        dir.path(),
        mid,
        &CHANGE_TRIGGERS.replace("MID", &mid.to_string()),
    );
    let receiver = Receiver::start(0);
    let server = start(
        dir.path(),
        Some(&format!(
            "webhook_url = \"http://127.0.0.1:{}/hook\"",
            receiver.port
        )),
    );
    let signup_us = now_us() - 3 * 3_600_000_000;
    signup(&server, "u1", signup_us);
    assert_eq!(probability(&server, "u1", None).1, "low");
    let events = engaged_events("u1", signup_us);
    let answer = post(&server, "/events", &events);
    assert_eq!(answer["accepted"], 12, "{answer}");
    let mut messages = receiver.wait_for(2, 10);
    messages.sort_by_key(|m| m["trigger"].as_str().unwrap().to_owned());
    assert_eq!(messages.len(), 2, "{messages:?}");
    let fired_at = messages[0]["fired_at"].as_str().unwrap().to_owned();
    let (p, segment) = probability(&server, "u1", Some(&fired_at));
    assert_eq!(segment, "high");
    let expected = |trigger: &str, on: &str, reason: String| {
        json!({
            "trigger": trigger,
            "on": on,
            "model": "adoption",
            "version": 1,
            "user_id": "u1",
            "segment_before": "low",
            "segment": "high",
            "probability": p,
            "onboarding": {"flow": "advanced_tutorial", "attributes": {"tour": "automations"}},
            "reason": reason,
            "fired_at": fired_at,
        })
    };
    for (message, want) in messages.iter().zip([
        expected(
            "likely_adopter",
            "probability",
            format!("probability rose to {p:.4}, at least {mid}"),
        ),
        expected(
            "ready_for_automations",
            "segment_change",
            "segment changed from low to high".into(),
        ),
    ]) {
        let mut message = message.clone();
        let key = message
            .as_object_mut()
            .unwrap()
            .remove("idempotency_key")
            .unwrap();
        assert_eq!(key.as_str().unwrap().len(), 32);
        assert_eq!(message, want);
    }
    // The same events again are duplicates: nothing changes, nothing fires.
    let again = post(&server, "/events", &events);
    assert_eq!(again["duplicates"], 12, "{again}");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(receiver.messages().len(), 2);
}

#[test]
fn a_deadline_fires_after_a_restart_late_and_an_event_in_time_cancels_it() {
    let dir = tempfile::tempdir().unwrap();
    fit(dir.path());
    write_policy(
        dir.path(),
        0.5,
        "[[triggers]]\nname = \"nudge_first_project\"\non = \"no_event\"\nevent = \"project_created\"\nwithin_hours = 1\n",
    );
    let receiver = Receiver::start(0);
    let triggers = format!("webhook_url = \"http://127.0.0.1:{}/hook\"", receiver.port);
    let server = start(dir.path(), Some(&triggers));
    // Deadlines 3 s from now.
    let signup_us = now_us() - 3_600_000_000 + 3_000_000;
    let due = format_timestamp(signup_us + 3_600_000_000);
    for user in ["idle", "busy", "erased"] {
        signup(&server, user, signup_us);
    }
    post(
        &server,
        "/events",
        &json!([{"user_id": "busy", "event": "project_created", "occurred_at": format_timestamp(signup_us + 1_000_000)}]),
    );
    // The event came first: the deadline is settled at once.
    let metrics = server.get("/metrics").body;
    assert!(
        metrics.contains("presage_trigger_deadlines_cancelled_total 1"),
        "{metrics}"
    );
    let journal = dir.path().join("store/triggers/journal.ndjson");
    assert!(std::fs::read_to_string(&journal)
        .unwrap()
        .contains("\"erased\""));
    let erased = server.request(
        "DELETE",
        "/users/erased",
        None,
        &[("authorization", &format!("Bearer {TOKEN}"))],
    );
    assert_eq!(erased.status, 200, "{}", erased.body);
    assert!(!std::fs::read_to_string(&journal)
        .unwrap()
        .contains("\"erased\""));
    // Down (kill -9) across the deadline.
    let pid = server.pid().to_string();
    std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap();
    let _ = server.wait();
    std::thread::sleep(Duration::from_secs(5));
    assert!(receiver.messages().is_empty());
    let server = start(dir.path(), Some(&triggers));
    let messages = receiver.wait_for(1, 10);
    std::thread::sleep(Duration::from_millis(500));
    let messages = if messages.len() == 1 {
        receiver.messages()
    } else {
        messages
    };
    assert_eq!(messages.len(), 1, "{messages:?}");
    let m = &messages[0];
    assert_eq!(m["trigger"], "nudge_first_project");
    assert_eq!(m["on"], "no_event");
    assert_eq!(m["user_id"], "idle");
    assert_eq!(m["reason"], "no project_created within 1 h of signup");
    assert_eq!(m["due_at"], due);
    let late = m["late_seconds"].as_f64().unwrap();
    assert!((1.0..30.0).contains(&late), "late by {late} s");
    let (p, segment) = probability(&server, "idle", m["fired_at"].as_str());
    assert_eq!(
        (
            m["probability"].as_f64().unwrap(),
            m["segment"].as_str().unwrap()
        ),
        (p, segment.as_str())
    );
    assert_eq!(m["segment_before"], m["segment"]);
    // Settled: a second restart fires nothing again.
    drop(server);
    let _server = start(dir.path(), Some(&triggers));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(receiver.messages().len(), 1);
}

/// Starts a server whose change triggers fire for `u1`, with the receiver
/// at `port` (not listening yet).
fn fire_into(dir: &Path, port: u16, retries: &str) -> Server {
    fit(dir);
    let mid = midpoint(dir);
    write_policy(dir, mid, &CHANGE_TRIGGERS.replace("MID", &mid.to_string()));
    let server = start(
        dir,
        Some(&format!(
            "webhook_url = \"http://127.0.0.1:{port}/hook\"\n{retries}"
        )),
    );
    let signup_us = now_us() - 3 * 3_600_000_000;
    signup(&server, "u1", signup_us);
    post(&server, "/events", &engaged_events("u1", signup_us));
    server
}

#[test]
fn a_receiver_down_for_three_seconds_gets_every_message_when_back() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = fire_into(
        dir.path(),
        port,
        "max_attempts = 100\nretry_initial_ms = 100\nretry_max_ms = 400",
    );
    std::thread::sleep(Duration::from_secs(3));
    let receiver = Receiver::start(port);
    let messages = receiver.wait_for(2, 10);
    let mut triggers: Vec<&str> = messages
        .iter()
        .map(|m| m["trigger"].as_str().unwrap())
        .collect();
    triggers.sort();
    assert_eq!(triggers, ["likely_adopter", "ready_for_automations"]);
    assert!(!dir
        .path()
        .join("store/triggers/dead-letter.ndjson")
        .exists());
}

#[test]
fn a_receiver_that_stays_down_fills_the_dead_letter_and_replay_delivers_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = fire_into(
        dir.path(),
        port,
        "max_attempts = 3\nretry_initial_ms = 20\nretry_max_ms = 50",
    );
    let dead = dir.path().join("store/triggers/dead-letter.ndjson");
    let until = Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let text = std::fs::read_to_string(&dead).unwrap_or_default();
        if text.lines().count() >= 2 || Instant::now() > until {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let keys: Vec<String> = lines
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["idempotency_key"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(keys.len(), 2, "{lines}");
    let metrics = server.get("/metrics").body;
    assert!(
        metrics.contains("presage_trigger_deliveries_total{outcome=\"dead_letter\"} 2"),
        "{metrics}"
    );
    let receiver = Receiver::start(port);
    let replay = server.request(
        "POST",
        "/admin/triggers/replay",
        None,
        &[("authorization", &format!("Bearer {TOKEN}"))],
    );
    assert_eq!(replay.status, 200, "{}", replay.body);
    assert_eq!(replay.json(), json!({"replayed": 2}));
    let mut got: Vec<String> = receiver
        .wait_for(2, 10)
        .iter()
        .map(|m| m["idempotency_key"].as_str().unwrap().to_owned())
        .collect();
    got.sort();
    let mut want = keys;
    want.sort();
    assert_eq!(got, want);
    assert_eq!(std::fs::read_to_string(&dead).unwrap(), "");
}

/// Runs the server with `config` and expects it to stop at once with exit
/// code 2; returns its stderr (a server that keeps running is killed after
/// 30 s and fails the test).
fn refused(dir: &Path, config: &str) -> String {
    let path = dir.join("serve.toml");
    std::fs::write(&path, config).unwrap();
    let log = dir.join("refused.log");
    let mut child = std::process::Command::new(binary("presage-serve"))
        .arg("--registry")
        .arg(dir.join("registry"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--config",
            path.to_str().unwrap(),
        ])
        .env("PRESAGE_ADMIN_TOKEN", TOKEN)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!(
                "presage-serve kept running with {config}\n{}",
                std::fs::read_to_string(&log).unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(2), "{stderr}");
    stderr
}

#[test]
fn bad_trigger_configs_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    fit(dir.path());
    let base = "models = [\"adoption\"]\n[policies]\nadoption = \"policy.toml\"\n[online]\ndir = \"store\"\n";
    let with =
        |triggers: &str| format!("{base}[triggers]\nwebhook_secret = \"{SECRET}\"\n{triggers}\n");
    write_policy(dir.path(), 0.5, "");
    let stderr = refused(
        dir.path(),
        &with("webhook_url = \"ftp://example.com/hook\""),
    );
    assert!(
        stderr.contains(
            "[triggers] webhook_url = \"ftp://example.com/hook\" is not an http(s) URL with a host"
        ),
        "{stderr}"
    );
    let stderr = refused(
        dir.path(),
        "[triggers]\nwebhook_url = \"http://127.0.0.1:9/\"\nwebhook_secret = \"0123456789abcdef\"\n",
    );
    assert!(
        stderr.contains("[triggers] needs an [online] section"),
        "{stderr}"
    );
    let ok = with("webhook_url = \"http://127.0.0.1:9/hook\"");
    write_policy(
        dir.path(),
        0.5,
        "[[triggers]]\nname = \"t\"\non = \"segment_change\"\nto = \"hihg\"\n",
    );
    let stderr = refused(dir.path(), &ok);
    assert!(
        stderr.contains(
            "triggers[1].to: 'hihg' is not a segment of this policy (its segments: low, high)"
        ),
        "{stderr}"
    );
    write_policy(
        dir.path(),
        0.5,
        "[[triggers]]\nname = \"t\"\non = \"no_event\"\nevent = \"projct_created\"\nwithin_hours = 48\n",
    );
    let stderr = refused(dir.path(), &ok);
    assert!(
        stderr.contains(
            "triggers[1].event: 'projct_created' is not an event of this model's extract"
        ),
        "{stderr}"
    );
    write_policy(
        dir.path(),
        0.5,
        "[[triggers]]\nname = \"t\"\non = \"probability\"\nat_leest = 0.8\n",
    );
    let stderr = refused(dir.path(), &ok);
    assert!(stderr.contains("unknown field `at_leest`"), "{stderr}");
}

#[test]
fn a_deadline_of_a_model_that_no_longer_loads_does_not_hold_up_the_others() {
    let dir = tempfile::tempdir().unwrap();
    fit(dir.path());
    let churn = presage_datasets::config("churn.toml");
    train(
        &dir.path().join("registry"),
        &["fit", "--config", churn.to_str().unwrap()],
    )
    .ok();
    // Adoption's deadline comes first (1 h), churn's 3.6 s later (1.001 h).
    let nudge = |hours: &str| {
        format!("[[triggers]]\nname = \"nudge\"\non = \"no_event\"\nevent = \"project_created\"\nwithin_hours = {hours}\n")
    };
    write_policy(dir.path(), 0.5, &nudge("1"));
    std::fs::write(
        dir.path().join("registry/churn/policy.toml"),
        format!(
            "mode = \"threshold\"\n[[segments]]\nname = \"all\"\nfrom = 0.0\nto = 1.0\nflow = \"standard\"\n{}",
            nudge("1.001")
        ),
    )
    .unwrap();
    let receiver = Receiver::start(0);
    let triggers = format!("webhook_url = \"http://127.0.0.1:{}/hook\"", receiver.port);
    let server = start(dir.path(), Some(&triggers));
    signup(&server, "idle", now_us() - 3_600_000_000 + 2_000_000);
    drop(server);
    // Adoption no longer loads (its file is damaged); churn still does.
    let artifact = dir.path().join("registry/adoption/v1.presage");
    let mut bytes = std::fs::read(&artifact).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&artifact, bytes).unwrap();
    let _server = start(dir.path(), Some(&triggers));
    let messages = receiver.wait_for(1, 20);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["model"], "churn");
    assert_eq!(messages[0]["user_id"], "idle");
}
