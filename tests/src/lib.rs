//! Helpers for Presage's end-to-end tests: locate the workspace's real
//! binaries (building them if need be), run them, and snapshot a registry
//! directory so a test can prove a failed command left it untouched.
//!
//! The tests themselves (`tests/tests/`) run the binaries against real
//! services and clients; this crate may depend on any Presage library for
//! reading their outputs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Path of a workspace binary (`presage-train`, ...).
///
/// Looks in `PRESAGE_BIN_DIR` if set, else in the cargo target directory
/// this test binary lives in (`<target>/<profile>/deps/..`), where `cargo
/// test --workspace` builds them because their packages have tests. When
/// they are missing there or older than their sources (`cargo test -p
/// presage-tests` builds only this package), they are built once
/// per test process with `cargo build --workspace --bins` into
/// `<target>/e2e-bins`: a target directory of its own, because the `cargo
/// test` running this process holds the lock of its own.
pub fn binary(name: &str) -> PathBuf {
    let dir = match std::env::var_os("PRESAGE_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let exe = std::env::current_exe().expect("test executable path");
            let dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("target/<profile> directory")
                .to_path_buf();
            if is_fresh(&dir.join(name)) {
                dir
            } else {
                built_binaries(&dir)
            }
        }
    };
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found; run the tests with `cargo test --release --workspace` so the binaries are built",
        path.display()
    );
    path
}

/// Whether `binary` exists and is newer than every source file it was
/// built from, as cargo's dep-info file beside it (`<binary>.d`) lists
/// them: what cargo itself would look at to decide on a rebuild. (A check
/// against every source of the workspace would call a binary stale after
/// an edit to a crate it does not link.)
fn is_fresh(binary: &Path) -> bool {
    let Ok(built) = binary.metadata().and_then(|m| m.modified()) else {
        return false;
    };
    let Ok(dep_info) = std::fs::read_to_string(binary.with_extension("d")) else {
        return false;
    };
    let Some((_, deps)) = dep_info.lines().next().and_then(|l| l.split_once(": ")) else {
        return false;
    };
    // Paths are separated by spaces; a space inside a path is `\ `.
    let deps = deps.replace("\\ ", "\u{0}");
    deps.split_whitespace()
        .map(|p| PathBuf::from(p.replace('\u{0}', " ")))
        .all(|p| {
            p.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|modified| modified <= built)
        })
}

/// Builds the workspace's binaries once per process for the profile of
/// `profile_dir` (`<target>/release`, ...) into `<target>/e2e-bins` and
/// returns the directory they are in.
fn built_binaries(profile_dir: &Path) -> PathBuf {
    static BUILT: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    let result = BUILT.get_or_init(|| {
        let target = profile_dir
            .parent()
            .ok_or("no target directory")?
            .join("e2e-bins");
        let profile = profile_dir
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or("no profile directory")?;
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .args(["build", "--workspace", "--bins", "--quiet", "--target-dir"])
            .arg(&target)
            .current_dir(workspace_root());
        match profile {
            "debug" => {}
            "release" => {
                command.arg("--release");
            }
            other => {
                command.args(["--profile", other]);
            }
        }
        let output = command
            .output()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if output.status.success() {
            Ok(target.join(profile))
        } else {
            Err(format!(
                "cargo build --workspace --bins failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    });
    match result {
        Ok(dir) => dir.clone(),
        Err(message) => panic!("{message}"),
    }
}

/// The result of running a binary.
#[derive(Debug)]
pub struct Run {
    /// Exit code (`-1` if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Parses stdout as one JSON object.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON object ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Asserts success and returns self.
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "command failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Runs `presage-train` with `args` against `registry`.
pub fn train(registry: &Path, args: &[&str]) -> Run {
    Command::new(binary("presage-train"))
        .arg("--registry")
        .arg(registry)
        .args(args)
        .env_remove("PRESAGE_REGISTRY")
        .output()
        .expect("run presage-train")
        .into()
}

/// Runs `presage-train features --config CONFIG --out OUT` plus `extra`
/// (`--events PATH`, `--json`, ...), with a registry in `dir`.
pub fn features(dir: &Path, config: &Path, out: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "features",
        "--config",
        config.to_str().expect("UTF-8 path"),
        "--out",
        out.to_str().expect("UTF-8 path"),
    ];
    args.extend(extra);
    train(&dir.join("registry"), &args)
}

/// The element of the JSON array `array` whose `key` is `value`.
pub fn entry<'a>(array: &'a serde_json::Value, key: &str, value: &str) -> &'a serde_json::Value {
    array
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {array}"))
        .iter()
        .find(|e| e[key] == value)
        .unwrap_or_else(|| panic!("no {key} = {value:?} in {array}"))
}

/// Runs `presage-datagen` with `args`.
pub fn datagen(args: &[&str]) -> Run {
    Command::new(binary("presage-datagen"))
        .args(args)
        .output()
        .expect("run presage-datagen")
        .into()
}

/// Every file under `dir` with its bytes, for before/after comparisons.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    files
}

/// Reads a CSV written by `presage-train` into (header, rows of cells).
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

/// A running `presage-serve`, killed when dropped.
pub struct Server {
    child: std::process::Child,
    _log: tempfile::NamedTempFile,
    /// `host:port` it listens on.
    pub addr: String,
}

/// An HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body text.
    pub body: String,
}

impl HttpResponse {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Server {
    /// Starts `presage-serve --registry REGISTRY --listen 127.0.0.1:0 ARGS...`
    /// and waits for its "listening on" line.
    pub fn start(registry: &Path, args: &[&str]) -> Server {
        Server::start_with_env(registry, args, &[])
    }

    /// Like [`Server::start`], with extra environment variables for the server.
    pub fn start_with_env(registry: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        use std::io::BufRead;
        let mut command = Command::new(binary("presage-serve"));
        command
            .arg("--registry")
            .arg(registry)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("PRESAGE_REGISTRY")
            .env_remove("PRESAGE_ADMIN_TOKEN")
            .env("PRESAGE_LOG", "warn");
        for (name, value) in env {
            command.env(name, value);
        }
        // Logs go to a file, not a pipe nobody reads (a full pipe would block the server).
        let log = tempfile::NamedTempFile::new().expect("log file");
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .stderr(log.reopen().expect("log file handle"))
            .spawn()
            .expect("start presage-serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read presage-serve stdout");
        let Some(addr) = line.trim().strip_prefix("listening on http://") else {
            let _ = child.wait();
            let logs = std::fs::read_to_string(log.path()).unwrap_or_default();
            panic!("presage-serve did not start: {line}{logs}");
        };
        Server {
            _log: log,
            addr: addr.to_string(),
            child,
        }
    }

    /// Sends one request (`Connection: close`) and reads the whole response.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> HttpResponse {
        http(&self.addr, method, path, body, headers)
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, body: &str) -> HttpResponse {
        self.request(
            "POST",
            path,
            Some(body),
            &[("content-type", "application/json")],
        )
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> HttpResponse {
        self.request("GET", path, None, &[])
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the server to exit and returns its exit code.
    pub fn wait(mut self) -> Option<i32> {
        self.child.wait().expect("wait for presage-serve").code()
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        let status = self.child.wait().expect("wait for presage-serve");
        status.code()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 client (enough for the tests; no dependency).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> HttpResponse {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    let body = body.unwrap_or("");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .expect("send request head");
    stream
        .write_all(body.as_bytes())
        .expect("send request body");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response: {text:?}"));
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&tail[..size]);
        rest = tail[size..].trim_start_matches("\r\n");
    }
    out
}

/// Scores the shipped Telco table with `presage-train predict` (the model's
/// champion, or the version named in `extra`) and returns each customer's
/// probability as bits, for exact comparisons.
pub fn predict_telco(registry: &Path, out_dir: &Path, extra: &[&str]) -> BTreeMap<String, u64> {
    let data = presage_datasets::telco_churn_csv().display().to_string();
    let out = out_dir.join("telco_scores.csv");
    let mut args = vec![
        "predict",
        "--model",
        "churn",
        "--data",
        &data,
        "--out",
        out.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    train(registry, &args).ok();
    read_probabilities(&out, "customerID")
}

/// Reads `id_column` and `probability` from a CSV written by
/// `presage-train`, as id → probability bits.
pub fn read_probabilities(path: &Path, id_column: &str) -> BTreeMap<String, u64> {
    let (header, rows) = read_csv(path);
    let id = header
        .iter()
        .position(|h| h == id_column)
        .expect("id column");
    let p = header
        .iter()
        .position(|h| h == "probability")
        .expect("probability column");
    rows.iter()
        .map(|r| {
            (
                r[id].clone(),
                r[p].parse::<f64>().expect("probability").to_bits(),
            )
        })
        .collect()
}

/// Arguments of `presage-train SUBCOMMAND` for the `churn` model on the
/// shipped Telco table (label `Churn`, positive `Yes`, id `customerID`).
pub fn churn_args(subcommand: &str) -> Vec<String> {
    let data = presage_datasets::telco_churn_csv().display().to_string();
    [
        subcommand,
        "--data",
        &data,
        "--label",
        "Churn",
        "--positive",
        "Yes",
        "--id",
        "customerID",
        "--model",
        "churn",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `presage-train fit` of the `churn` model on the Telco table with `extra` flags.
pub fn fit_churn(registry: &Path, extra: &[&str]) -> Run {
    churn(registry, "fit", extra)
}

/// `presage-train SUBCOMMAND` (`fit` or `retrain`) of the Telco `churn` model.
pub fn churn(registry: &Path, subcommand: &str, extra: &[&str]) -> Run {
    let base = churn_args(subcommand);
    let mut args: Vec<&str> = base.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    train(registry, &args)
}

/// Trains churn v1 (GBM, 40 rounds) and v2 (`v2_extra`), then runs
/// `presage-train compare churn 1 2 --data <Telco> --html REPORT`.
pub fn compare_report(registry: &Path, v2_extra: &[&str], report: &Path) -> Run {
    fit_churn(registry, &["--num-iterations", "40"]).ok();
    fit_churn(registry, v2_extra).ok();
    let telco = presage_datasets::telco_churn_csv().display().to_string();
    let report = report.display().to_string();
    train(
        registry,
        &[
            "compare", "churn", "1", "2", "--data", &telco, "--html", &report,
        ],
    )
}

/// Headless Chromium for the HTML reports: Debian's package, installed on
/// first use with apt-get when missing.
pub mod browser {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    const CHROMIUM: &str = "/usr/bin/chromium";

    /// Debian's Chromium, installed on first use (the CI machine runs as root).
    pub fn chromium() -> PathBuf {
        if !Path::new(CHROMIUM).exists() {
            let install = |update: bool| {
                if update {
                    let _ = Command::new("apt-get").args(["update", "-qq"]).status();
                }
                Command::new("apt-get")
                    .args(["install", "-y", "-qq", "chromium"])
                    .status()
                    .is_ok_and(|s| s.success())
            };
            assert!(
                install(false) || install(true),
                "Chromium is needed for this test and `apt-get install -y chromium` failed; install it and rerun"
            );
        }
        PathBuf::from(CHROMIUM)
    }

    /// Renders `page` headless: its DOM (or, with `screenshot`, a PNG of
    /// it); returns (stdout, stderr).
    pub fn render(page: &Path, screenshot: Option<&Path>) -> (String, String) {
        let mut command = Command::new(chromium());
        command.args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--log-level=0",
            "--window-size=1280,2400",
        ]);
        match screenshot {
            Some(png) => command.arg(format!("--screenshot={}", png.display())),
            None => command.arg("--dump-dom"),
        };
        let out = command
            .arg(format!("file://{}", page.display()))
            .output()
            .expect("run chromium");
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Renders `page` as a user would see it and checks it: no console
    /// message, and a 1280x2400 screenshot (written beside `page`) that is
    /// far from blank. Returns the browser's DOM.
    pub fn render_cleanly(page: &Path) -> String {
        let (dom, stderr) = render(page, None);
        assert!(
            console_lines(&stderr).is_empty(),
            "{:?}",
            console_lines(&stderr)
        );
        let png = page.with_extension("png");
        let (_, stderr) = render(page, Some(&png));
        assert!(
            console_lines(&stderr).is_empty(),
            "{:?}",
            console_lines(&stderr)
        );
        let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        assert!(size > 50_000, "screenshot is {size} bytes");
        dom
    }

    /// The lines of Chromium's log that are the page's console messages.
    pub fn console_lines(stderr: &str) -> Vec<&str> {
        stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
    }
}

/// A Python virtualenv named `name` beside the test binaries, with the
/// packages of `requirements` (a pip requirements file) installed: created
/// on first use, and reinstalled when the file changes. Returns its
/// `bin/` directory. Needs `python3` and PyPI.
pub fn python_venv(name: &str, requirements: &Path) -> PathBuf {
    use sha2::{Digest, Sha256};
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let venv = binary("presage-serve")
        .parent()
        .expect("target dir")
        .join(format!("{name}-venv"));
    let bin = venv.join("bin");
    let wanted =
        std::fs::read(requirements).unwrap_or_else(|e| panic!("{}: {e}", requirements.display()));
    let wanted = format!("{:x}", Sha256::digest(&wanted));
    let stamp = venv.join(".requirements.sha256");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return bin;
    }
    if !bin.join("python").exists() {
        let created = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status();
        assert!(
            created.is_ok_and(|s| s.success()),
            "python3 -m venv {} failed",
            venv.display()
        );
    }
    let installed = Command::new(bin.join("python"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(requirements)
        .status();
    assert!(
        installed.is_ok_and(|s| s.success()),
        "pip install -r {} failed (is PyPI reachable?)",
        requirements.display()
    );
    std::fs::write(&stamp, wanted).expect("write the venv stamp");
    bin
}

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}
