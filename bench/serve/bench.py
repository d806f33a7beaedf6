"""Serving benchmark: presage-serve vs. FastAPI + uvicorn + LightGBM, loaded by wrk.

Run through run.sh (it prepares bench/.venv, wrk and the Presage binaries):

    bench/serve/run.sh --quick            # 2 s per measurement: smoke test
    bench/serve/run.sh                    # 10 s per measurement
    bench/serve/run.sh --duration 30s

What it does, in order:
 1. Trains the churn model twice on the shipped Telco table with the same
    settings (binary, 31 leaves, learning rate 0.05, 100 rounds, max_bin 255,
    min_data_in_leaf 20, seed 42, 60/20/20 split, no calibration): Presage
    with `presage-train fit` into out/models/registry, LightGBM with
    train_lgbm.py into out/models/lightgbm.
 2. Writes the request bodies: out/bodies/single.json (the example user from
    the issue) and out/bodies/batch.json (the table's first 100 users as
    `{"rows": [...]}`; blank TotalCharges sent as null).
 3. For each contestant in turn (only one server runs at a time): starts it
    on a free loopback port, waits until it is ready, checks one answer of
    every endpoint, warms it up with wrk, runs the measurements, stops it
    (SIGTERM to its process group, SIGKILL after 15 s).
 4. Prints one table per measurement with Presage's ratios, the issue's
    targets, machine info, and writes out/results.json.

Contestants:
  presage            presage-serve with its defaults (tokio multi-thread
                     runtime; per-request log lines are at debug level, off)
  fastapi-naive-1w   app_naive.py, `uvicorn app_naive:app` (uvicorn's default
                     access log on, to a file)
  fastapi-naive-2w   the same with `--workers 2`
  fastapi-tuned-2w   app_tuned.py, `--workers 2 --no-access-log`
  axum-ceiling       serving/examples/http_ceiling.rs: the same axum + tokio
                     stack as presage-serve answering a fixed response of the
                     same size without parsing or scoring; the ceiling any
                     axum service reaches on this machine (single-row
                     measurements only)
uvicorn is installed as `uvicorn[standard]` (uvloop and httptools), which is
what `pip install "fastapi[standard]"` brings.

Measurements (wrk is a closed-loop client: each connection sends its next
request when the previous answer arrives; latencies are client side):
  single_1c     POST /predict/churn, 1 thread 1 connection: latency
  single_sat    POST /predict/churn, THREADS threads CONNECTIONS connections
  explain_1c    POST /predict/churn?explain=5, 1 connection
  explain_sat   POST /predict/churn?explain=5, saturation
  batch_1c      POST /predict/churn/batch with 100 rows, 1 connection
  batch_sat     the same at saturation (rows/s = requests/s x 100)
Latencies at 1 connection are post.lua's own per-request timings (uncorrected);
wrk's p99 is shown beside them. wrk 4 "corrects" its histogram for
coordinated omission (stats_correct adds synthetic samples for every response
slower than the mean interval), so a few millisecond stalls of a fast server
become many slow samples; at saturation only wrk's histogram is available
(the Lua callbacks cannot tell connections apart), so those latencies are
corrected ones.
Errors: non-2xx responses plus socket errors (connect, read, write,
timeout); every one of them is reported.

No CPU pinning: the server and wrk share the machine's cores, and so does
anything else running (the load average is recorded before each contestant).
"""

import argparse
import csv
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DATA = REPO / "datasets/telco_churn/WA_Fn-UseC_-Telco-Customer-Churn.csv"
LUA = HERE / "post.lua"
VENV_PYTHON = Path(sys.executable)
BATCH_ROWS = 100
EXPLAIN = 5
TARGET_P99_MS = 0.25
TARGET_RPS_FACTOR = 10.0

EXAMPLE = {
    "user_id": "u-1",
    "features": {
        "gender": "Male", "SeniorCitizen": 0, "Partner": "No", "Dependents": "No", "tenure": 34,
        "PhoneService": "Yes", "MultipleLines": "No", "InternetService": "DSL", "OnlineSecurity": "Yes",
        "OnlineBackup": "No", "DeviceProtection": "Yes", "TechSupport": "No", "StreamingTV": "No",
        "StreamingMovies": "No", "Contract": "One year", "PaperlessBilling": "No",
        "PaymentMethod": "Mailed check", "MonthlyCharges": 56.95, "TotalCharges": 1889.5,
    },
}

CONTESTANTS = {
    "presage": "Presage",
    "fastapi-naive-1w": "FastAPI naive, 1 worker",
    "fastapi-naive-2w": "FastAPI naive, 2 workers",
    "fastapi-tuned-2w": "FastAPI tuned, 2 workers",
    "axum-ceiling": "axum ceiling (no work)",
}
# Reference points that are not peers: excluded from the FastAPI ratios.
REFERENCES = {"axum-ceiling"}


def log(message):
    print(f"[serve-bench] {message}", file=sys.stderr, flush=True)


class Interrupted(Exception):
    pass


def on_signal(signum, _frame):
    raise Interrupted(f"signal {signum}")


# ---------------------------------------------------------------- helpers


def seconds_of(duration):
    m = re.fullmatch(r"(\d+)([smh]?)", duration.strip())
    if not m:
        raise SystemExit(f"--duration {duration!r}: use a whole number of seconds, minutes or hours like 10s, 2m")
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def trim_log(path, keep_lines=2000, limit=20 << 20):
    """Keeps only the tail of a log grown large under load (one line per request)."""
    try:
        if path.stat().st_size <= limit:
            return
        with path.open("rb") as f:
            f.seek(-min(path.stat().st_size, 1 << 20), os.SEEK_END)
            tail = f.read().splitlines()[-keep_lines:]
        path.write_bytes(b"[... trimmed by bench.py: only the last lines are kept ...]\n" + b"\n".join(tail) + b"\n")
    except OSError:
        pass


def run_cmd(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, **kwargs)


def version_of(package):
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def loadavg():
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def machine_info(presage_serve):
    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / (1 << 20), 1)
    except OSError:
        pass
    wrk = run_cmd(["wrk", "-v"])
    wrk_version = (wrk.stdout + wrk.stderr).splitlines()[0].split("[")[0].strip() if (wrk.stdout + wrk.stderr) else None
    serve = run_cmd([str(presage_serve), "--version"])
    return {
        "cpu": cpu or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "kernel": platform.release(),
        "loadavg_at_start": loadavg(),
        "pinning": "none: each server and wrk share all cores (and with whatever else runs)",
        "versions": {
            "presage-serve": serve.stdout.strip() or None,
            "wrk": wrk_version,
            "python": platform.python_version(),
            **{p: version_of(p) for p in (
                "fastapi", "uvicorn", "starlette", "pydantic", "lightgbm", "numpy", "orjson", "uvloop", "httptools"
            )},
        },
    }


# ---------------------------------------------------------------- setup


def train_presage(train_bin, registry, logs):
    if registry.exists():
        shutil.rmtree(registry)
    argv = [
        str(train_bin), "--registry", str(registry), "fit", "--data", str(DATA), "--label", "Churn",
        "--positive", "Yes", "--id", "customerID", "--model", "churn", "--objective", "binary",
        "--num-iterations", "100", "--learning-rate", "0.05", "--num-leaves", "31", "--max-bin", "255",
        "--min-data-in-leaf", "20", "--seed", "42", "--calibration", "none",
        "--valid-fraction", "0.2", "--test-fraction", "0.2", "--json",
    ]
    done = run_cmd(argv, timeout=600)
    (logs / "presage-train.stdout").write_text(done.stdout)
    (logs / "presage-train.stderr").write_text(done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"presage-train failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    fit = json.loads(done.stdout)
    return {
        "command": " ".join(argv),
        "trees": fit.get("trees"),
        "test_auc": (fit.get("metrics") or {}).get("test", {}).get("auc"),
        "rows": fit.get("rows"),
        "train_seconds": fit.get("train_seconds"),
    }


def train_lightgbm(model_dir, logs):
    argv = [str(VENV_PYTHON), str(HERE / "train_lgbm.py"), str(DATA), str(model_dir)]
    done = run_cmd(argv, timeout=600)
    (logs / "train_lgbm.stdout").write_text(done.stdout)
    (logs / "train_lgbm.stderr").write_text(done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"train_lgbm.py failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return {"command": " ".join(argv), **summary}


def write_bodies(bodies, model_dir):
    meta = json.loads((model_dir / "churn_meta.json").read_text())
    categorical = set(meta["categorical"])
    rows = []
    with DATA.open(newline="") as f:
        for record in csv.DictReader(f):
            features = {}
            for name in meta["features"]:
                raw = record[name]
                if name in categorical:
                    features[name] = raw
                elif raw.strip() == "":
                    features[name] = None
                else:
                    number = float(raw)
                    features[name] = int(number) if number.is_integer() and "." not in raw else number
            rows.append({"user_id": record["customerID"], "features": features})
            if len(rows) == BATCH_ROWS:
                break
    bodies.mkdir(parents=True, exist_ok=True)
    (bodies / "single.json").write_text(json.dumps(EXAMPLE))
    (bodies / "batch.json").write_text(json.dumps({"rows": rows}))
    return {"single": bodies / "single.json", "batch": bodies / "batch.json"}


# ---------------------------------------------------------------- servers


class Server:
    """One server process in its own process group (so SIGTERM reaches uvicorn's workers too)."""

    def __init__(self, name, argv, env, logs, pidfile, ready_lines=None, listen_from_stdout=False, port=None):
        self.name, self.argv, self.env = name, argv, env
        self.stdout_path = logs / f"{name}.stdout"
        self.stderr_path = logs / f"{name}.stderr"
        self.pidfile = pidfile
        self.ready_lines = ready_lines  # (text, count) that must appear in stderr
        self.listen_from_stdout = listen_from_stdout
        self.base = None if port is None else f"http://127.0.0.1:{port}"
        self.process = None

    def start(self, timeout=90):
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                self.argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=self.env,
                start_new_session=True, cwd=HERE,
            )
        with self.pidfile.open("a") as f:
            f.write(f"{self.process.pid}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode} before it was ready; "
                    f"see {self.stderr_path}: {self.stderr_path.read_text(errors='replace').strip()[-400:]}"
                )
            if self.base is None and self.listen_from_stdout:
                m = re.search(r"listening on (http://\S+)", self.stdout_path.read_text(errors="replace"))
                if m:
                    self.base = m.group(1)
            if self.base is not None and self._lines_ready():
                try:
                    status, _ = http("GET", self.base + "/readyz", timeout=2)
                    if status == 200:
                        return
                except OSError:
                    pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} was not ready after {timeout} s; see {self.stderr_path}")

    def _lines_ready(self):
        if not self.ready_lines:
            return True
        text, count = self.ready_lines
        return self.stderr_path.read_text(errors="replace").count(text) >= count

    def stop(self):
        if self.process is None:
            return None
        code = self.process.poll()
        if code is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                code = self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not stop within 15 s of SIGTERM; sending SIGKILL")
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                code = self.process.wait(timeout=15)
        # uvicorn's workers are in the same group; make sure none is left behind.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            pids = [p for p in self.pidfile.read_text().split() if p != str(self.process.pid)]
            self.pidfile.write_text("".join(f"{p}\n" for p in pids))
        except OSError:
            pass
        for path in (self.stdout_path, self.stderr_path):
            trim_log(path)
        self.process = None
        return code


def make_server(name, paths, pidfile):
    env = dict(os.environ)
    if name == "presage":
        argv = [str(paths["serve"]), "--registry", str(paths["registry"]), "--listen", "127.0.0.1:0"]
        return Server(name, argv, env, paths["logs"], pidfile, listen_from_stdout=True)
    if name == "axum-ceiling":
        return Server(name, [str(paths["ceiling"]), "127.0.0.1:0"], env, paths["logs"], pidfile, listen_from_stdout=True)
    port = free_port()
    env["PRESAGE_BENCH_MODEL_DIR"] = str(paths["lightgbm"])
    module, workers, extra = {
        "fastapi-naive-1w": ("app_naive", 1, []),
        "fastapi-naive-2w": ("app_naive", 2, []),
        "fastapi-tuned-2w": ("app_tuned", 2, ["--no-access-log"]),
    }[name]
    argv = [str(VENV_PYTHON), "-m", "uvicorn", f"{module}:app", "--host", "127.0.0.1", "--port", str(port)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    argv += extra
    return Server(name, argv, env, paths["logs"], pidfile, ready_lines=("Application startup complete", workers), port=port)


def check(server, bodies):
    """One answer from each endpoint, checked for shape; returns the example's probability."""
    single = json.loads(bodies["single"].read_text())
    batch = json.loads(bodies["batch"].read_text())
    status, raw = http("POST", server.base + "/predict/churn", single)
    answer = json.loads(raw)
    if status != 200 or not {"user_id", "probability", "segment"} <= answer.keys():
        raise RuntimeError(f"{server.name}: POST /predict/churn answered {status}: {raw[:300]!r}")
    if answer["user_id"] != single["user_id"]:
        raise RuntimeError(f"{server.name}: user_id not echoed: {raw[:300]!r}")
    status, raw = http("POST", f"{server.base}/predict/churn?explain={EXPLAIN}", single)
    explained = json.loads(raw)
    if status != 200 or len(explained.get("reasons") or []) != EXPLAIN:
        raise RuntimeError(f"{server.name}: ?explain={EXPLAIN} answered {status}: {raw[:300]!r}")
    status, raw = http("POST", server.base + "/predict/churn/batch", batch)
    results = json.loads(raw).get("results") if status == 200 else None
    if not results or len(results) != BATCH_ROWS:
        raise RuntimeError(f"{server.name}: batch answered {status}: {raw[:300]!r}")
    return {
        "probability": answer["probability"],
        "segment": answer["segment"],
        "top_reasons": [r["feature"] for r in explained["reasons"]],
        "batch_segments": {s: sum(r["segment"] == s for r in results) for s in sorted({r["segment"] for r in results})},
    }


# ---------------------------------------------------------------- wrk


def measurements(threads, connections):
    sat = (threads, connections)
    return [
        # key, title, url suffix, body, (threads, connections), rows per request
        ("single_1c", "single row, 1 connection (latency)", "", "single", (1, 1), 1),
        ("single_sat", f"single row, {connections} connections (saturation)", "", "single", sat, 1),
        ("explain_1c", f"single row ?explain={EXPLAIN}, 1 connection", f"?explain={EXPLAIN}", "single", (1, 1), 1),
        ("explain_sat", f"single row ?explain={EXPLAIN}, {connections} connections", f"?explain={EXPLAIN}", "single", sat, 1),
        ("batch_1c", f"batch of {BATCH_ROWS} rows, 1 connection", "/batch", "batch", (1, 1), BATCH_ROWS),
        ("batch_sat", f"batch of {BATCH_ROWS} rows, {connections} connections", "/batch", "batch", sat, BATCH_ROWS),
    ]


def wrk(url, body, threads, connections, seconds, raw_path=None):
    """Runs wrk with post.lua. With one connection per thread, WRK_TIMED=1 makes
    the script time each request itself (uncorrected per-request latencies),
    which become the reported ones; otherwise wrk's (coordinated-omission
    corrected) histogram is reported."""
    timed = connections == threads
    argv = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
        "-s", str(LUA), url, "--", str(body),
    ]
    env = dict(os.environ, WRK_TIMED="1" if timed else "0")
    done = run_cmd(argv, timeout=seconds + 60, env=env)
    if raw_path is not None:
        raw_path.write_text(f"WRK_TIMED={env['WRK_TIMED']} " + " ".join(argv) + "\n\n" + done.stdout + done.stderr)
    line = next((l for l in done.stdout.splitlines() if l.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-400:]}")
    result = json.loads(line[len("WRK_JSON "):])
    seconds_run = result["duration_us"] / 1e6
    errors = dict(result["errors"])
    if "non2xx" in result:  # timed mode also sees 1xx/3xx; wrk's own count is >= 400 only
        errors["status"] = max(errors["status"], result["non2xx"])
    wrk_ms = {k: v / 1000.0 for k, v in result["latency_us"].items()}
    raw_ms = {k: v / 1000.0 for k, v in result["raw_latency_us"].items() if k != "count"} if "raw_latency_us" in result else None
    return {
        "threads": threads,
        "connections": connections,
        "requests": result["requests"],
        "seconds": seconds_run,
        "rps": result["requests"] / seconds_run if seconds_run > 0 else 0.0,
        "latency_ms": raw_ms or wrk_ms,
        "latency_source": "per-request, uncorrected (post.lua timed mode)" if raw_ms else "wrk histogram (coordinated-omission corrected)",
        "wrk_latency_ms": wrk_ms,
        "raw_latency_ms": raw_ms,
        "errors": errors,
        "errors_total": sum(errors.values()),
    }


def bench_contestant(entry, name, paths, bodies, plan, seconds, warmup, pidfile):
    """Fills `entry` as it goes, so an interrupted run keeps what was measured."""
    entry.update({"label": CONTESTANTS[name], "loadavg_before": loadavg(), "measurements": {}, "error": None})
    server = make_server(name, paths, pidfile)
    entry["command"] = " ".join(server.argv)
    try:
        log(f"{name}: starting")
        server.start()
        if name in REFERENCES:
            plan = [m for m in plan if m[2] == "" and m[3] == "single"]
        else:
            entry["check"] = check(server, bodies)
        warm_urls = []
        for _key, _title, suffix, body, _tc, _rows in plan:
            if (suffix, body) not in warm_urls:
                warm_urls.append((suffix, body))
        for suffix, body in warm_urls:
            log(f"{name}: warm-up {warmup} s on /predict/churn{suffix}")
            wrk(server.base + "/predict/churn" + suffix, bodies[body], plan[1][4][0], plan[1][4][1], warmup)
        for key, _title, suffix, body, (threads, connections), rows in plan:
            raw = paths["logs"] / f"wrk-{name}-{key}.txt"
            m = wrk(server.base + "/predict/churn" + suffix, bodies[body], threads, connections, seconds, raw)
            m["rows_per_request"] = rows
            m["rows_per_s"] = m["rps"] * rows
            entry["measurements"][key] = m
            log(
                f"{name}: {key}: {m['rps']:,.0f} req/s, p50 {m['latency_ms']['p50']:.3f} ms, "
                f"p99 {m['latency_ms']['p99']:.3f} ms, errors {m['errors_total']}"
            )
            time.sleep(0.5)
    except (Interrupted, KeyboardInterrupt):
        entry["error"] = "interrupted"
        raise
    except Exception as e:  # one contestant failing must not stop the others
        entry["error"] = str(e)
        log(f"{name}: FAILED: {e}")
    finally:
        code = server.stop()
        entry["exit_code"] = code
        how = f"signal {-code}, uvicorn re-raises SIGTERM after a graceful shutdown" if code is not None and code < 0 else f"exit code {code}"
        log(f"{name}: stopped ({how})")
    return entry


# ---------------------------------------------------------------- report


def fmt_ms(x):
    return "n/a" if x is None else f"{x:.3f}"


def fmt_int(x):
    return "n/a" if x is None else f"{x:,.0f}"


def fmt_ratio(x):
    return "n/a" if x is None else f"{x:.2f}x"


def report(results, plan):
    out = []
    contestants = results["contestants"]
    presage = contestants.get("presage", {}).get("measurements", {})
    cfg = results["config"]
    for key, title, _suffix, _body, (threads, connections), rows in plan:
        timed = threads == connections
        out.append("")
        out.append(f"== {title}: wrk -t{threads} -c{connections} -d{cfg['seconds']}s ==")
        out.append(
            "   latencies: per request, uncorrected; 'wrk p99' is wrk's coordinated-omission corrected p99"
            if timed else "   latencies: wrk's histogram (coordinated-omission corrected)"
        )
        unit = "rows/s" if rows > 1 else "req/s"
        extra = f" {'wrk p99':>9}" if timed else ""
        header = (
            f"{'contestant':<26} {'p50 ms':>9} {'p99 ms':>9} {'p99.9 ms':>9}{extra} {unit:>11} {'errors':>7}"
            f" {'p99 ratio':>10} {unit + ' ratio':>13}"
        )
        out.append(header)
        out.append("-" * len(header))
        p = presage.get(key)
        for name, entry in contestants.items():
            m = entry["measurements"].get(key)
            if m is None:
                out.append(f"{entry['label']:<26} {'n/a':>9}  ({entry.get('error') or 'not run'})")
                continue
            rate = m["rows_per_s"]
            if name == "presage" or p is None:
                r99 = rr = "-"
            else:
                r99 = fmt_ratio(p["latency_ms"]["p99"] / m["latency_ms"]["p99"]) if m["latency_ms"]["p99"] else "n/a"
                rr = fmt_ratio(p["rows_per_s"] / rate) if rate else "n/a"
            lat = m["latency_ms"]
            extra = f" {fmt_ms(m['wrk_latency_ms']['p99']):>9}" if timed else ""
            out.append(
                f"{entry['label']:<26} {fmt_ms(lat['p50']):>9} {fmt_ms(lat['p99']):>9} {fmt_ms(lat['p999']):>9}{extra}"
                f" {fmt_int(rate):>11} {m['errors_total']:>7} {r99:>10} {rr:>13}"
            )
    out.append("")
    out.append("Ratios are Presage's: p99 ratio = Presage p99 / peer p99 (below 1: Presage faster);")
    out.append("rate ratio = Presage req/s (rows/s) / peer's (above 1: Presage faster). errors = non-2xx + socket errors.")
    out.append("")
    out.append("== targets (from the issue) ==")
    for t in results["targets"]:
        out.append(f"  [{t['verdict']:>4}] {t['target']}: {t['measured']}")
    out.append("")
    models = results["models"]
    out.append("== models ==")
    out.append(
        f"  Presage : {models['presage'].get('trees')} trees, test AUC {models['presage'].get('test_auc', 0):.4f}"
        f", rows {models['presage'].get('rows')}"
    )
    out.append(
        f"  LightGBM: {models['lightgbm'].get('trees')} trees, test AUC {models['lightgbm'].get('test_auc', 0):.4f}"
        f", rows {models['lightgbm'].get('rows')}"
    )
    checks = {n: e.get("check", {}) for n, e in contestants.items()}
    out.append(
        "  example user's probability: "
        + ", ".join(f"{contestants[n]['label']} {c['probability']:.4f} ({c['segment']})" for n, c in checks.items() if c)
    )
    out.append("")
    m = results["machine"]
    v = m["versions"]
    out.append("== machine ==")
    out.append(f"  CPU: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}")
    out.append(
        "  load average before each contestant: "
        + ", ".join(f"{e['label']} {e['loadavg_before']}" for e in contestants.values())
    )
    out.append(
        f"  No CPU pinning: each server and wrk (its threads included) share all {m['cores']} cores,"
        " and with anything else running on the machine."
    )
    out.append(
        f"  {v.get('presage-serve')} | {v.get('wrk')} | Python {v.get('python')} | fastapi {v.get('fastapi')}"
        f" | uvicorn {v.get('uvicorn')} (uvloop {v.get('uvloop')}, httptools {v.get('httptools')})"
        f" | starlette {v.get('starlette')} | pydantic {v.get('pydantic')} | lightgbm {v.get('lightgbm')}"
        f" | numpy {v.get('numpy')} | orjson {v.get('orjson')}"
    )
    out.append(
        f"  {cfg['seconds']} s per measurement after {cfg['warmup_seconds']} s of warm-up per endpoint;"
        f" saturation: {cfg['threads']} wrk threads, {cfg['connections']} connections."
    )
    return "\n".join(out)


def targets(contestants):
    result = []
    presage = contestants.get("presage", {}).get("measurements", {})
    single = presage.get("single_1c")
    if single:
        p99 = single["latency_ms"]["p99"]
        result.append({
            "target": f"Presage p99 < {TARGET_P99_MS} ms at 1 connection, explain off",
            "measured": f"{p99:.3f} ms per request (wrk's corrected p99: {single['wrk_latency_ms']['p99']:.3f} ms)",
            "verdict": "PASS" if p99 < TARGET_P99_MS else "FAIL",
        })
    sat = presage.get("single_sat")
    peers = [
        (e["label"], e["measurements"]["single_sat"]["rps"])
        for n, e in contestants.items()
        if n != "presage" and n not in REFERENCES and "single_sat" in e["measurements"]
    ]
    if sat and peers:
        label, best = max(peers, key=lambda x: x[1])
        factor = sat["rps"] / best if best else float("inf")
        result.append({
            "target": f"saturation throughput >= {TARGET_RPS_FACTOR:g}x the best FastAPI setup",
            "measured": f"{sat['rps']:,.0f} req/s vs {best:,.0f} ({label}) = {factor:.1f}x",
            "verdict": "PASS" if factor >= TARGET_RPS_FACTOR else "FAIL",
        })
    ceiling = contestants.get("axum-ceiling", {}).get("measurements", {}).get("single_sat")
    if sat and ceiling:
        result.append({
            "target": "(reference) Presage saturation throughput as a share of the axum ceiling",
            "measured": f"{sat['rps']:,.0f} req/s vs {ceiling['rps']:,.0f} = {sat['rps'] / ceiling['rps']:.0%}",
            "verdict": "INFO",
        })
    if presage:
        errors = sum(m["errors_total"] for m in presage.values())
        result.append({
            "target": "zero errors (Presage, every measurement)",
            "measured": f"{errors} errors",
            "verdict": "PASS" if errors == 0 else "FAIL",
        })
    peer_errors = sum(
        m["errors_total"] for n, e in contestants.items() if n != "presage" and n not in REFERENCES for m in e["measurements"].values()
    )
    result.append({
        "target": "zero errors (FastAPI setups, for the record)",
        "measured": f"{peer_errors} errors",
        "verdict": "PASS" if peer_errors == 0 else "FAIL",
    })
    return result


# ---------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 s per measurement (smoke test)")
    parser.add_argument("--duration", help="seconds per measurement, e.g. 10s (default 10s, 2s with --quick)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads at saturation (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections at saturation (default 32)")
    parser.add_argument("--only", help="comma-separated contestants: " + ",".join(CONTESTANTS))
    parser.add_argument("--out", type=Path, default=HERE / "out")
    args = parser.parse_args()
    seconds = seconds_of(args.duration) if args.duration else (2 if args.quick else 10)
    if seconds < 1:
        raise SystemExit("--duration must be at least 1s")
    warmup = 1 if seconds <= 2 else 2
    names = list(CONTESTANTS) if not args.only else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONTESTANTS]
    if unknown:
        raise SystemExit(f"--only: unknown contestants {unknown}; known: {list(CONTESTANTS)}")

    target_dir = Path(os.environ.get("CARGO_TARGET_DIR") or "/root/.cache/presage-target")
    serve_bin, train_bin = target_dir / "release/presage-serve", target_dir / "release/presage-train"
    ceiling_bin = target_dir / "release/examples/http_ceiling"
    needed = [serve_bin, train_bin] + ([ceiling_bin] if "axum-ceiling" in names else [])
    for b in needed:
        if not os.access(b, os.X_OK):
            raise SystemExit(
                f"{b} is missing: build with `cargo build --release --workspace --bins"
                " --example http_ceiling`"
            )
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")

    out = args.out.resolve()
    logs, models, run_dir = out / "logs", out / "models", out / "run"
    for d in (logs, models, run_dir):
        d.mkdir(parents=True, exist_ok=True)
    pidfile = Path(os.environ.get("SERVE_BENCH_PIDFILE") or run_dir / "servers.pids")
    pidfile.touch()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    started = datetime.now(timezone.utc)
    log(f"{seconds} s per measurement; contestants: {', '.join(names)}")
    log("training the Presage model")
    presage_model = train_presage(train_bin, models / "registry", logs)
    log(f"  {presage_model['trees']} trees, test AUC {presage_model['test_auc']:.4f}")
    log("training the LightGBM model")
    lgbm_model = train_lightgbm(models / "lightgbm", logs)
    log(f"  {lgbm_model['trees']} trees, test AUC {lgbm_model['test_auc']:.4f}")
    bodies = write_bodies(out / "bodies", models / "lightgbm")
    paths = {"serve": serve_bin, "registry": models / "registry", "lightgbm": models / "lightgbm", "logs": logs, "ceiling": ceiling_bin}
    plan = measurements(args.threads, args.connections)
    results = {
        "started_at": started.isoformat(timespec="seconds"),
        "config": {
            "seconds": seconds, "warmup_seconds": warmup, "threads": args.threads,
            "connections": args.connections, "quick": args.quick, "batch_rows": BATCH_ROWS, "explain": EXPLAIN,
        },
        "machine": machine_info(serve_bin),
        "models": {"presage": presage_model, "lightgbm": lgbm_model},
        "measurements": {key: title for key, title, *_ in plan},
        "contestants": {},
    }
    try:
        for name in names:
            results["contestants"][name] = {}
            bench_contestant(results["contestants"][name], name, paths, bodies, plan, seconds, warmup, pidfile)
    except (Interrupted, KeyboardInterrupt):
        log("interrupted; servers stopped; partial results follow")
        results["interrupted"] = True
    results["targets"] = targets(results["contestants"])
    results["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    (out / "results.json").write_text(json.dumps(results, indent=1))
    print(report(results, plan))
    print(f"\nresults: {out / 'results.json'}; logs and raw wrk output: {logs}")
    failed = [n for n, e in results["contestants"].items() if e.get("error")]
    if failed or results.get("interrupted"):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
