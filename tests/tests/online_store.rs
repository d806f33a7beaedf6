//! The online store end to end, with the real binaries: extracts exported
//! by `presage-train export-online`, replayed into `presage-serve` through
//! `POST /users` and `POST /events` in a shuffled order with resent
//! events, then every user's online features compared with the table
//! `presage-train features` builds, and scores by id with
//! `presage-train predict`. Then durability (crashes at named points),
//! erasure (the id leaves every file) and bad input.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::Path;

use presage_models::time::{format_timestamp, parse_timestamp, DAY_US};
use presage_tests::{features, read_csv, read_probabilities, train, Server};
use serde_json::Value;

const TOKEN: &str = "online-test-admin-token";

/// Deterministic shuffle (xorshift), so a failure replays.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

fn export(dir: &Path, config: &Path) -> (Vec<String>, Vec<String>) {
    let (users, events) = (dir.join("users.ndjson"), dir.join("events.ndjson"));
    train(
        &dir.join("registry"),
        &[
            "export-online",
            "--config",
            config.to_str().unwrap(),
            "--users-out",
            users.to_str().unwrap(),
            "--events-out",
            events.to_str().unwrap(),
        ],
    )
    .ok();
    let lines = |p: &Path| -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    (lines(&users), lines(&events))
}

fn serve_config(dir: &Path, online: &str) -> String {
    let path = dir.join("serve.toml");
    std::fs::write(&path, format!("[online]\ndir = \"store\"\n{online}")).unwrap();
    path.display().to_string()
}

fn start(dir: &Path, config: &str, env: &[(&str, &str)]) -> Server {
    start_with(&dir.join("registry"), config, env)
}

/// [`start`] with the registry given.
fn start_with(registry: &Path, config: &str, env: &[(&str, &str)]) -> Server {
    let mut env = env.to_vec();
    env.push(("PRESAGE_ADMIN_TOKEN", TOKEN));
    let server = Server::start_with_env(registry, &["--config", config], &env);
    // The store answers 503 until it has recovered; /readyz says why.
    for _ in 0..500 {
        if !server.get("/readyz").body.contains("recovering") {
            return server;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("the online store did not recover in 10 s");
}

/// `POST path` with an NDJSON body; `None` when the server closed the
/// connection without answering (it crashed).
fn post_ndjson(addr: &str, path: &str, lines: &[&str]) -> Option<(u16, Value)> {
    post_raw(
        addr,
        path,
        &lines.join("\n"),
        "Content-Type: application/x-ndjson",
    )
}

/// `POST path` with `body` and one extra header line; `None` without an answer.
fn post_raw(addr: &str, path: &str, body: &str, header: &str) -> Option<(u16, Value)> {
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{header}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body.as_bytes()).ok()?;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, serde_json::from_str(rest).ok()?))
}

fn ingest(server: &Server, path: &str, lines: &[&str]) -> Value {
    let (status, body) = post_ndjson(&server.addr, path, lines).expect("an answer");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rejected"], 0, "{body}");
    body
}

/// Sums the counters of ingest answers.
#[derive(Debug, Default)]
struct Totals(BTreeMap<String, u64>);

impl Totals {
    fn add(&mut self, answer: &Value) {
        for key in [
            "accepted",
            "duplicates",
            "dropped_before_signup",
            "dropped_expired",
            "dropped_no_consent",
            "users_updated",
        ] {
            *self.0.entry(key.into()).or_default() += answer[key].as_u64().unwrap();
        }
    }
    fn get(&self, key: &str) -> u64 {
        self.0.get(key).copied().unwrap_or(0)
    }
}

/// Sends users and events interleaved in a shuffled order, 5% of events
/// twice, in runs of at most 1,000 items of one kind.
fn replay(server: &Server, users: &[String], events: &[String], seed: u64) -> Totals {
    let mut items: Vec<(bool, &str)> = users.iter().map(|u| (true, u.as_str())).collect();
    items.extend(events.iter().map(|e| (false, e.as_str())));
    items.extend(events.iter().step_by(20).map(|e| (false, e.as_str())));
    shuffle(&mut items, seed);
    let mut totals = Totals::default();
    let mut start = 0;
    while start < items.len() {
        let kind = items[start].0;
        let mut end = start;
        while end < items.len() && items[end].0 == kind && end - start < 1000 {
            end += 1;
        }
        let batch: Vec<&str> = items[start..end].iter().map(|(_, l)| *l).collect();
        let path = if kind { "/users" } else { "/events" };
        totals.add(&ingest(server, path, &batch));
        start = end;
    }
    totals
}

fn online_features(server: &Server, model: &str, id: &str, as_of: &str) -> Value {
    let r = server.request(
        "GET",
        &format!("/users/{id}/features?model={model}&as_of={as_of}"),
        None,
        &[("authorization", &format!("Bearer {TOKEN}"))],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// Replays an extract into a fresh server and checks every user's online
/// features against the training table, and scores by id against
/// `presage-train predict`.
fn parity(config_name: &str, model: &str, online: &str, as_of: impl Fn(i64) -> i64) {
    let dir = tempfile::tempdir().unwrap();
    let config = presage_datasets::config(config_name);
    let registry = dir.path().join("registry");
    train(&registry, &["fit", "--config", config.to_str().unwrap()]).ok();
    let table = dir.path().join("table.csv");
    features(dir.path(), &config, &table, &[]).ok();
    let (users, events) = export(dir.path(), &config);
    // The table writes a numeric id column as numbers ("1.0" for "00001"):
    // users are matched by the id's value, and looked up online by the id
    // as exported.
    let key = |id: &str| id.parse::<f64>().map_or(id.to_owned(), |x| x.to_string());
    let signups: HashMap<String, (String, i64)> = users
        .iter()
        .map(|l| {
            let u: Value = serde_json::from_str(l).unwrap();
            let id = u["user_id"].as_str().unwrap();
            let signup = parse_timestamp(u["signup_at"].as_str().unwrap()).unwrap();
            (key(id), (id.to_owned(), signup))
        })
        .collect();
    let server = start(dir.path(), &serve_config(dir.path(), online), &[]);

    let totals = replay(&server, &users, &events, 0x5eed);
    assert_eq!(totals.get("users_updated"), users.len() as u64);
    let resent = events.len().div_ceil(20) as u64;
    let handled = totals.get("accepted")
        + totals.get("duplicates")
        + totals.get("dropped_expired")
        + totals.get("dropped_before_signup");
    // Every event is accounted for once; events removed when their user's
    // signup arrived later are counted in the users' answers.
    assert!(
        handled >= events.len() as u64 + resent - totals.get("dropped_before_signup"),
        "{totals:?}"
    );
    assert!(
        totals.get("duplicates") > 0 && totals.get("duplicates") <= resent,
        "{totals:?}"
    );
    // Sent again in full, nothing is stored twice.
    let lines: Vec<&str> = events.iter().map(String::as_str).collect();
    let mut again = Totals::default();
    let mut unknown_names = 0;
    for chunk in lines.chunks(1000) {
        let answer = ingest(&server, "/events", chunk);
        unknown_names += answer["unknown_event_names"].as_u64().unwrap();
        again.add(&answer);
    }
    assert_eq!(again.get("accepted"), 0, "{again:?}");
    // Every name of the extract is one the model was trained on.
    assert_eq!(unknown_names, 0);

    let (header, rows) = read_csv(&table);
    assert!(rows.len() > 1000, "{} rows", rows.len());
    let skip = ["churned", "adopted"];
    let mut compared = 0usize;
    for row in &rows {
        let (id, signup) = &signups[&key(&row[0])];
        let at = format_timestamp(as_of(*signup));
        let online = online_features(&server, model, id, &at);
        assert_eq!(online["window"]["complete"], true, "{id}: {online}");
        assert_eq!(online["warnings"], serde_json::json!([]), "{id}: {online}");
        for (column, offline) in header.iter().zip(row).skip(1) {
            if skip.contains(&column.as_str()) {
                continue;
            }
            let got = &online["features"][column];
            match (offline.parse::<f64>(), got) {
                (_, Value::Null) => assert_eq!(offline, "", "{id}, {column}: online missing"),
                (Ok(x), Value::Number(n)) => {
                    let y = n.as_f64().unwrap();
                    assert!(
                        (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
                        "{id}, {column}: table {x}, online {y}"
                    );
                }
                (_, Value::String(s)) => assert_eq!(offline, s, "{id}, {column}"),
                (offline, got) => panic!("{id}, {column}: table {offline:?}, online {got}"),
            }
            compared += 1;
        }
    }
    assert!(compared > 10_000, "{compared} values compared");

    // Scores by id equal presage-train predict on the table, bit for bit.
    let scores = dir.path().join("scores.csv");
    train(
        &registry,
        &[
            "predict",
            "--model",
            model,
            "--data",
            table.to_str().unwrap(),
            "--out",
            scores.to_str().unwrap(),
        ],
    )
    .ok();
    let offline = read_probabilities(&scores, &header[0]);
    for row in rows.iter().step_by(5) {
        let (id, signup) = &signups[&key(&row[0])];
        let at = format_timestamp(as_of(*signup));
        let r = server.post(
            &format!("/predict/{model}?as_of={at}"),
            &serde_json::json!({ "user_id": id }).to_string(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let body = r.json();
        assert_eq!(body["features_source"], "online");
        let p = body["probability"].as_f64().unwrap();
        assert_eq!(p.to_bits(), offline[&row[0]], "{id}: online {p}");
    }
}

#[test]
fn online_features_and_scores_equal_training_for_a_window_after_signup() {
    parity("churn.toml", "churn", "", |signup| signup + 7 * DAY_US);
}

#[test]
fn online_features_and_scores_equal_training_for_an_absolute_cutoff() {
    let cutoff = parse_timestamp("1997-09-30").unwrap();
    parity(
        "churn_cdnow.toml",
        "churn_cdnow",
        "retain_days_after_signup = 400\n",
        move |_| cutoff,
    );
}

/// The first `n` events of the shipped extract and the users they belong to.
fn small_extract(dir: &Path, n: usize) -> (Vec<String>, Vec<String>) {
    let (users, events) = export(dir, &presage_datasets::config("churn.toml"));
    let events: Vec<String> = events.into_iter().take(n).collect();
    let ids: std::collections::HashSet<String> = events
        .iter()
        .map(|e| {
            serde_json::from_str::<Value>(e).unwrap()["user_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let users = users
        .into_iter()
        .filter(|u| {
            ids.contains(
                serde_json::from_str::<Value>(u).unwrap()["user_id"]
                    .as_str()
                    .unwrap(),
            )
        })
        .collect();
    (users, events)
}

/// Crashes the server at a named point while it ingests, restarts it, and
/// checks that every acknowledged batch is stored exactly once (resending
/// it stores nothing) and the unacknowledged one entirely or not at all.
fn crash_and_recover(failpoint: &str, kill_after_acks: Option<usize>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("registry")).unwrap();
    let (users, events) = small_extract(dir.path(), 6000);
    let config = serve_config(dir.path(), "");
    let batches: Vec<Vec<&str>> = events
        .chunks(1000)
        .map(|c| c.iter().map(String::as_str).collect())
        .collect();
    let user_lines: Vec<&str> = users.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = if failpoint.is_empty() {
        vec![]
    } else {
        vec![("PRESAGE_FAILPOINT", failpoint)]
    };
    let server = start(dir.path(), &config, &env);
    // One sync for the users, then one per batch.
    ingest(&server, "/users", &user_lines);
    let mut acked = Vec::new();
    let mut unanswered = None;
    for (i, batch) in batches.iter().enumerate() {
        if kill_after_acks == Some(acked.len()) {
            let pid = server.pid().to_string();
            std::process::Command::new("kill")
                .args(["-9", &pid])
                .status()
                .unwrap();
            break;
        }
        match post_ndjson(&server.addr, "/events", batch) {
            Some((200, body)) => acked.push((i, body)),
            Some((status, body)) => panic!("batch {i}: {status} {body}"),
            None => {
                unanswered = Some(i);
                break;
            }
        }
    }
    if failpoint.starts_with("mid-snapshot") || failpoint.starts_with("after-snapshot") {
        let answer = post_raw(
            &server.addr,
            "/admin/online/compact",
            "",
            &format!("Authorization: Bearer {TOKEN}"),
        );
        assert_eq!(
            answer, None,
            "the server should have crashed while compacting"
        );
    }
    drop(server);
    assert!(!acked.is_empty());

    let server = start(dir.path(), &config, &[]);
    let files: Vec<String> = std::fs::read_dir(dir.path().join("store"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!files.iter().any(|f| f.ends_with(".tmp")), "{files:?}");
    for (i, first) in &acked {
        let again = ingest(&server, "/events", &batches[*i]);
        assert_eq!(
            again["accepted"], 0,
            "batch {i} was acknowledged ({first}) but lost: {again}"
        );
        assert_eq!(again["duplicates"], first["accepted"], "batch {i}: {again}");
    }
    if let Some(i) = unanswered {
        let again = ingest(&server, "/events", &batches[i]);
        let (a, d) = (
            again["accepted"].as_u64().unwrap(),
            again["duplicates"].as_u64().unwrap(),
        );
        assert!(a == 0 || d == 0, "batch {i} was half stored: {again}");
    }
}

#[test]
fn a_crash_after_the_log_write_loses_no_acknowledged_event() {
    crash_and_recover("after-log-write:3", None);
}

#[test]
fn a_crash_after_the_log_sync_loses_no_acknowledged_event() {
    crash_and_recover("after-log-sync:4", None);
}

#[test]
fn kill_9_after_three_acknowledged_batches_loses_none() {
    crash_and_recover("", Some(3));
}

#[test]
fn a_crash_while_writing_a_snapshot_keeps_the_old_files() {
    crash_and_recover("mid-snapshot", None);
}

#[test]
fn a_crash_after_the_snapshot_before_removing_old_files_recovers() {
    crash_and_recover("after-snapshot", None);
}

fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    presage_tests::snapshot(dir)
        .into_iter()
        .filter(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle))
        .map(|(path, _)| path.display().to_string())
        .collect()
}

#[test]
fn an_erased_user_leaves_memory_and_every_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("registry")).unwrap();
    let config = serve_config(dir.path(), "erasure_delay_secs = 3600\n");
    let server = start(dir.path(), &config, &[]);
    let id = "erase-me-7f3a9c";
    ingest(
        &server,
        "/users",
        &[
            &format!(
                r#"{{"user_id": "{id}", "signup_at": "2024-03-01T00:00:00Z", "attributes": {{"plan": "pro"}}}}"#
            ),
            r#"{"user_id": "stays-1", "signup_at": "2024-03-01T00:00:00Z"}"#,
        ],
    );
    let event = |user: &str, n: usize| {
        format!(
            r#"{{"user_id": "{user}", "event": "login", "occurred_at": "2024-03-0{n}T10:00:00Z", "event_id": "{user}-{n}"}}"#
        )
    };
    let lines: Vec<String> = (1..=5)
        .flat_map(|n| [event(id, n), event("stays-1", n)])
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let first = ingest(&server, "/events", &refs);
    assert_eq!(first["accepted"], 10);
    // No model is served here, so no name is one a model reads: counted, and stored.
    assert_eq!(first["unknown_event_names"], 10);
    let store = dir.path().join("store");
    assert!(!files_containing(&store, id.as_bytes()).is_empty());

    // Erasure needs the admin token.
    let anonymous = server.request("DELETE", &format!("/users/{id}"), None, &[]);
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    let auth = format!("Bearer {TOKEN}");
    let erased = server.request(
        "DELETE",
        &format!("/users/{id}"),
        None,
        &[("authorization", &auth)],
    );
    assert_eq!(erased.status, 200, "{}", erased.body);
    assert_eq!(erased.json()["erased"], true);
    let compact = server.request(
        "POST",
        "/admin/online/compact",
        None,
        &[("authorization", &auth)],
    );
    assert_eq!(compact.status, 200, "{}", compact.body);
    assert_eq!(compact.json()["users"], 1);
    assert_eq!(
        files_containing(&store, id.as_bytes()),
        Vec::<String>::new()
    );
    assert!(!files_containing(&store, b"stays-1").is_empty());
    // The old events do not come back after a restart, and resending the
    // other user's events stores nothing new.
    drop(server);
    let server = start(dir.path(), &config, &[]);
    let again = ingest(&server, "/events", &refs);
    assert_eq!(
        (again["accepted"].as_u64(), again["duplicates"].as_u64()),
        (Some(5), Some(5)),
        "{again}"
    );
    let metrics = server.get("/metrics").body;
    assert!(metrics.contains("presage_online_users 2"), "{metrics}");
}

#[test]
fn bad_ingest_requests_get_precise_answers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("registry")).unwrap();
    let config = serve_config(dir.path(), "max_events_per_request = 5\n");
    let server = start(dir.path(), &config, &[]);
    let malformed =
        post_ndjson(&server.addr, "/events", &[r#"{"user_id": "u1", "event": "#]).unwrap();
    assert_eq!(malformed.0, 400, "{}", malformed.1);
    assert_eq!(malformed.1["error"]["code"], "malformed_json");
    let text = server.request(
        "POST",
        "/events",
        Some("user_id=u1"),
        &[("content-type", "text/plain")],
    );
    assert_eq!(text.status, 415, "{}", text.body);
    let six: Vec<String> = (0..6)
        .map(|i| format!(r#"{{"user_id": "u{i}", "event": "a", "occurred_at": "2024-03-01"}}"#))
        .collect();
    let six: Vec<&str> = six.iter().map(String::as_str).collect();
    let (status, body) = post_ndjson(&server.addr, "/events", &six).unwrap();
    assert_eq!(
        (status, &body["error"]["code"]),
        (413, &Value::from("too_many_items")),
        "{body}"
    );

    let long = "x".repeat(10_000);
    let signup = r#"{"user_id": "u1", "signup_at": "2024-03-02T00:00:00Z"}"#;
    ingest(&server, "/users", &[signup]);
    let items = [
        format!(r#"{{"user_id": "{long}", "event": "a", "occurred_at": "2024-03-03"}}"#),
        r#"{"user_id": "u1", "event": "a", "occurred_at": "2024-03-03T10:00:00+02:00"}"#.to_owned(),
        r#"{"user_id": "u1", "event": "a", "occurred_at": "2024-03-03", "properties": {"plan": "pro"}}"#.to_owned(),
        r#"{"user_id": "u1", "event": "a", "occurred_at": "2024-03-01"}"#.to_owned(),
        r#"{"user_id": "u1", "event": "never_seen_before", "occurred_at": "2024-03-04"}"#.to_owned(),
    ];
    let items: Vec<&str> = items.iter().map(String::as_str).collect();
    let (status, body) = post_ndjson(&server.addr, "/events", &items).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["errors"], true);
    assert_eq!(body["rejected"], 3);
    let reasons: Vec<(u64, &str)> = body["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(reasons[0], (0, "user_id is 10000 bytes; at most 256"));
    assert_eq!(reasons[1].0, 1);
    assert!(reasons[1].1.contains("without an offset"), "{reasons:?}");
    assert_eq!(
        reasons[2],
        (
            2,
            "properties.plan is a string; event properties are numbers (or null)"
        )
    );
    // Before signup: counted and dropped, as the training build drops it.
    assert_eq!(body["dropped_before_signup"], 1);
    assert_eq!(body["accepted"], 1);
    // The features route is personal data: admin only.
    let anonymous = server.get("/users/u1/features?model=churn");
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
}

/// kill -9 in the middle of a 1M-event ingest on 4 connections, then the
/// restarted store against one built from exactly what was acknowledged:
/// every acknowledged batch is stored once, every batch in flight at the
/// kill entirely or not at all, and each user's features are the same.
#[test]
fn kill_9_during_a_million_event_ingest_keeps_exactly_the_acknowledged_events() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    presage_tests::datagen(&[
        "--users",
        "21000",
        "--seed",
        "7",
        "--out",
        data.to_str().unwrap(),
    ])
    .ok();
    let config = presage_datasets::config("churn.toml");
    let extract = [
        "--users".to_owned(),
        data.join("users.parquet").display().to_string(),
        "--events".to_owned(),
        data.join("events").display().to_string(),
    ];
    let registry = dir.path().join("registry");
    let mut fit = vec!["fit", "--config", config.to_str().unwrap()];
    fit.extend(extract.iter().map(String::as_str));
    train(&registry, &fit).ok();
    let (users_path, events_path) = (
        dir.path().join("users.ndjson"),
        dir.path().join("events.ndjson"),
    );
    let mut export = vec![
        "export-online",
        "--config",
        config.to_str().unwrap(),
        "--users-out",
        users_path.to_str().unwrap(),
        "--events-out",
        events_path.to_str().unwrap(),
    ];
    export.extend(extract.iter().map(String::as_str));
    train(&registry, &export).ok();
    let users: Vec<String> = std::fs::read_to_string(&users_path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let events: Vec<String> = std::fs::read_to_string(&events_path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(events.len() > 1_000_000, "{} events", events.len());
    let batches: Arc<Vec<String>> = Arc::new(events.chunks(1000).map(|c| c.join("\n")).collect());
    // Nothing expires: what is stored depends only on what was acknowledged,
    // not on the order it arrived in.
    let retain = "retain_days_after_signup = 36500\nretain_last_days = 36500\n";
    let store_a = dir.path().join("a");
    std::fs::create_dir_all(&store_a).unwrap();
    let config_a = serve_config(&store_a, retain);
    let server = start_with(&registry, &config_a, &[]);
    let user_lines: Vec<&str> = users.iter().map(String::as_str).collect();
    for chunk in user_lines.chunks(1000) {
        ingest(&server, "/users", chunk);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(AtomicUsize::new(0));
    // (batch, its answer; none when the server died before answering)
    type Answers = Vec<(usize, Option<Value>)>;
    let answers: Arc<Mutex<Answers>> = Arc::default();
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let (batches, next, acked, answers) = (
                batches.clone(),
                next.clone(),
                acked.clone(),
                answers.clone(),
            );
            let addr = server.addr.clone();
            std::thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= batches.len() {
                    return;
                }
                let answer = post_raw(
                    &addr,
                    "/events",
                    &batches[i],
                    "Content-Type: application/x-ndjson",
                );
                let stop = answer.is_none();
                if let Some((status, body)) = &answer {
                    assert_eq!(*status, 200, "batch {i}: {body}");
                    acked.fetch_add(1, Ordering::SeqCst);
                }
                answers.lock().unwrap().push((i, answer.map(|(_, b)| b)));
                if stop {
                    return;
                }
            })
        })
        .collect();
    // Mid-stream: after 400 of the ~1,050 batches are acknowledged.
    while acked.load(Ordering::SeqCst) < 400 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    std::process::Command::new("kill")
        .args(["-9", &server.pid().to_string()])
        .status()
        .unwrap();
    for sender in senders {
        sender.join().unwrap();
    }
    drop(server);
    let answers = std::mem::take(&mut *answers.lock().unwrap());
    let server_a = start_with(&registry, &config_a, &[]);

    // The reference: a fresh store given the users and the acknowledged batches.
    let store_b = dir.path().join("b");
    std::fs::create_dir_all(&store_b).unwrap();
    let server_b = start_with(&registry, &serve_config(&store_b, retain), &[]);
    for chunk in user_lines.chunks(1000) {
        ingest(&server_b, "/users", chunk);
    }
    let lines = |i: usize| -> Vec<&str> { batches[i].lines().collect() };
    let (mut stored, mut unanswered) = (0usize, 0usize);
    for (i, answer) in &answers {
        match answer {
            Some(first) => {
                let again = ingest(&server_a, "/events", &lines(*i));
                assert_eq!(
                    again["accepted"], 0,
                    "acknowledged batch {i} ({first}) was lost: {again}"
                );
                ingest(&server_b, "/events", &lines(*i));
                stored += 1;
            }
            None => {
                unanswered += 1;
                let again = ingest(&server_a, "/events", &lines(*i));
                let (a, d) = (
                    again["accepted"].as_u64().unwrap(),
                    again["duplicates"].as_u64().unwrap(),
                );
                assert!(a == 0 || d == 0, "batch {i} was half stored: {again}");
                // Stored before the kill (all duplicates now) or not at all
                // (stored now): either way the reference gets it too.
                ingest(&server_b, "/events", &lines(*i));
            }
        }
    }
    assert!(
        stored >= 400 && unanswered >= 1,
        "{stored} acknowledged, {unanswered} in flight"
    );
    // Same state: every user's features, from either store.
    let auth = format!("Bearer {TOKEN}");
    let as_of = "2030-01-01T00:00:00Z";
    for user in users.iter().step_by(10) {
        let id = serde_json::from_str::<Value>(user).unwrap()["user_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = format!("/users/{id}/features?model=churn&as_of={as_of}");
        let a = server_a.request("GET", &path, None, &[("authorization", &auth)]);
        let b = server_b.request("GET", &path, None, &[("authorization", &auth)]);
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.json(), b.json(), "user {id}");
    }
    let count = |server: &Server| {
        server
            .get("/metrics")
            .body
            .lines()
            .find(|l| l.starts_with("presage_online_users "))
            .map(str::to_owned)
    };
    assert_eq!(count(&server_a), count(&server_b));
}
