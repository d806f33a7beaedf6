//! End to end against the real `presage-serve`: clients that send too
//! slowly, too much or too many at once cannot take the server down, the
//! request that used to abort it is a 422, and SIGTERM turns readiness off
//! before the server drains and exits 0.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use presage_tests::{fit_churn, http, Server};
use serde_json::json;

fn churn_registry(dir: &Path, iterations: &str) -> PathBuf {
    let registry = dir.join("registry");
    fit_churn(&registry, &["--num-iterations", iterations]).ok();
    registry
}

/// Starts the server with `config` as its `serve.toml`.
fn serve(dir: &Path, registry: &Path, config: &str) -> Server {
    let path = dir.join("serve.toml");
    std::fs::write(&path, config).unwrap();
    Server::start(registry, &["--config", path.to_str().unwrap()])
}

/// Reads until the server closes the connection, or the deadline passes.
fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Result<Vec<u8>, String> {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut received = Vec::new();
    match stream.read_to_end(&mut received) {
        Ok(_) => Ok(received),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(received),
        Err(e) => Err(format!("connection still open after {within:?}: {e}")),
    }
}

#[test]
fn the_ninety_byte_request_is_refused_and_the_server_lives_on() {
    let dir = tempfile::tempdir().unwrap();
    let registry = churn_registry(dir.path(), "20");
    let server = Server::start(&registry, &[]);
    let body =
        r#"{"inputs":[{"name":"tenure","shape":[100000000000],"datatype":"FP64","data":[]}]}"#;
    let response = server.post("/v2/models/churn/infer", body);
    assert_eq!(response.status, 422, "{}", response.body);
    assert_eq!(response.json()["code"], "batch_too_large");
    assert!(response.json()["error"]
        .as_str()
        .unwrap()
        .contains("max_batch_rows"));
    assert_eq!(server.get("/healthz").status, 200);
}

#[test]
fn slowloris_headers_are_cut_off_and_slow_bodies_get_408() {
    let dir = tempfile::tempdir().unwrap();
    let registry = churn_registry(dir.path(), "20");
    let server = serve(
        dir.path(),
        &registry,
        "header_read_timeout_ms = 300\nbody_read_timeout_ms = 300\n",
    );
    // Headers trickling in, never finished: the server closes the connection.
    let mut slow = TcpStream::connect(&server.addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    slow.write_all(b"X-Slow: 1\r\n").unwrap();
    let closed = read_until_closed(&mut slow, Duration::from_secs(10));
    assert!(closed.is_ok(), "{closed:?}");
    // A body that stops halfway: 408 with the API's error body.
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream
        .write_all(b"POST /predict/churn HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"features\":")
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(10)).unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"body_timeout\""), "{answer}");
    // A body trickled a byte at a time gets no longer: the deadline is for
    // the whole body, not between bytes.
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream
        .write_all(b"POST /predict/churn HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    for byte in b"{\"features\": {\"tenure\": 3}}".iter().cycle().take(60) {
        if stream.write_all(&[*byte]).is_err() {
            break;
        }
        let mut chunk = [0u8; 512];
        if let Ok(n) = stream.read(&mut chunk) {
            answer.extend_from_slice(&chunk[..n]);
            break;
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Everyone else is still served.
    assert_eq!(server.get("/healthz").status, 200);
}

/// Sends a keep-alive `GET /healthz` and reads one response (by length).
fn keep_alive_healthz(stream: &mut TcpStream) -> std::io::Result<String> {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buffer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if body.len() >= length {
                return Ok(text.into_owned());
            }
        }
    }
    Ok(String::from_utf8_lossy(&buffer).into_owned())
}

#[test]
fn connections_beyond_the_limit_wait_for_a_free_one() {
    let dir = tempfile::tempdir().unwrap();
    let registry = churn_registry(dir.path(), "20");
    let server = serve(dir.path(), &registry, "max_connections = 2\n");
    let mut first = TcpStream::connect(&server.addr).unwrap();
    let mut second = TcpStream::connect(&server.addr).unwrap();
    assert!(keep_alive_healthz(&mut first)
        .unwrap()
        .starts_with("HTTP/1.1 200"));
    assert!(keep_alive_healthz(&mut second)
        .unwrap()
        .starts_with("HTTP/1.1 200"));
    // A third connection is not served while both are open...
    let mut third = TcpStream::connect(&server.addr).unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    let waiting = keep_alive_healthz(&mut third);
    assert!(waiting.is_err(), "served beyond the limit: {waiting:?}");
    // ...and is as soon as one closes.
    drop(first);
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 512];
    while !String::from_utf8_lossy(&answer).contains("\"live\"") {
        let n = third
            .read(&mut chunk)
            .expect("answered once a connection closed");
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&chunk[..n]);
    }
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    drop(second);
}

#[test]
fn sigterm_turns_readiness_off_at_once_then_drains() {
    let dir = tempfile::tempdir().unwrap();
    let registry = churn_registry(dir.path(), "20");
    let server = serve(dir.path(), &registry, "shutdown_delay_ms = 1500\n");
    assert_eq!(server.get("/readyz").status, 200);
    std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let ready = server.get("/readyz");
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(ready.json()["reason"], "shutting down");
    assert_eq!(server.get("/v2/health/ready").status, 503);
    // Still live and scoring until the delay is over.
    assert_eq!(server.get("/healthz").status, 200);
    assert_eq!(
        server
            .post("/predict/churn", r#"{"features": {"tenure": 3}}"#)
            .status,
        200
    );
    assert_eq!(server.wait(), Some(0));
}

#[test]
fn healthz_answers_while_explain_batches_saturate_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let registry = churn_registry(dir.path(), "300");
    let server = Server::start(&registry, &[]);
    let row = json!({"features": {"tenure": 3, "Contract": "Month-to-month", "MonthlyCharges": 89.5, "TotalCharges": 268.5, "InternetService": "Fiber optic", "PaymentMethod": "Electronic check"}});
    let batch = json!({"rows": vec![row; 100]}).to_string();
    let addr = server.addr.clone();
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // Eight clients, twice the heavy-work permits of a 2-core machine, each
    // sending explained batches back to back (bounded in count).
    let flood: Vec<_> = (0..8)
        .map(|_| {
            let (addr, batch, sent, stop) =
                (addr.clone(), batch.clone(), sent.clone(), stop.clone());
            std::thread::spawn(move || {
                for _ in 0..200 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    sent.fetch_add(1, Ordering::SeqCst);
                    let r = http(
                        &addr,
                        "POST",
                        "/predict/churn/batch?explain=5",
                        Some(&batch),
                        &[("content-type", "application/json")],
                    );
                    assert_eq!(r.status, 200, "{}", r.body);
                }
            })
        })
        .collect();
    while sent.load(Ordering::SeqCst) < 16 {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        assert_eq!(server.get("/healthz").status, 200);
        slowest = slowest.max(started.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    // The flood was still running when the last /healthz answered.
    let finished_flooders = flood.iter().filter(|t| t.is_finished()).count();
    stop.store(true, Ordering::SeqCst);
    for t in flood {
        t.join().unwrap();
    }
    assert_eq!(
        finished_flooders, 0,
        "the flood ended before the health checks"
    );
    println!("slowest /healthz during the explain flood: {slowest:?}");
}
