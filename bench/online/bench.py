"""Online store benchmark: presage-serve's online store vs. Feast + Redis, on
the same users and events, in one run. See bench/online/README.md.

Run through run.sh (it prepares the virtualenv, wrk, redis-server and the
Presage binaries):

    bench/online/run.sh --quick        # 20,000 users, 2 s per measurement: smoke test
    bench/online/run.sh                # 1,000,000 users (~55M events), 10 s per measurement

What it does, in order:
 1. Inputs (cached under out/<users>_seed<seed>/, rebuilt when the extract,
    the presage-train binary, the config or this file's INPUTS_VERSION
    change, or with --fresh):
    - the extract: presage-datagen --users N --seed S, under bench/data/
      (shared with bench/features at the same size and seed);
    - the churn model: presage-train fit --config datasets/configs/churn.toml
      from the extract (7-day window after signup);
    - the extract as NDJSON in the ingest contract (presage-train
      export-online): users.ndjson, events.ndjson;
    - the per-user feature tables (presage-train features): train_table
      (users with a complete label window, with the label: LightGBM's
      training data) and online_table (every consenting user whose 7-day
      window is complete, no label: the rows Feast serves);
    - the LightGBM twin (train_lgbm.py) on train_table with the config's
      [params].
 2. Presage: presage-serve with an empty [online] store (the retention of
    datasets/configs/serve_online.toml: 7 days after signup and the last 7
    days, consent required). POST /users then POST /events, batches of 1,000
    NDJSON lines over 4 keep-alive connections (ingest.py; every answer
    comes only once the batch is fsynced). RSS, store disk (du) and the
    store's memory gauge. Then scoring with wrk (bodies.lua, cycling through
    the same sample of distinct users): POST /predict/churn {"user_id"} (by
    id: features computed from the stored events) and the same users with
    their features sent (fetched once beforehand from GET
    /users/{id}/features), 1 connection (latency) and 32 (throughput).
    Then SIGTERM, a restart on the same store, and the time until /readyz
    answers 200 (and presage_online_recovery_seconds).
 3. Feast: redis-server on a free port with a temporary directory, AOF on
    with `appendfsync always` (an acknowledged write is on disk, as with
    Presage), a feature view `churn_features` with online_table's columns, a
    PushSource for ingest, Redis as the online store. Ingest: the rows of
    online_table pushed through `feast serve`'s POST /push (the documented
    HTTP push API; 1,000 rows per request, 4 connections, 2 workers), then
    Redis memory (INFO used_memory, RSS) and disk (du of its directory), a
    Redis restart (time until it answers PING after loading the AOF), and
    the in-process SDK `FeatureStore.push` of up to --sdk-push-rows rows as
    a reference (no HTTP). Feast has no event-to-feature aggregation: it
    ingests feature rows, which a batch job (here presage-train features)
    computes first. Serving: app_feast.py (FastAPI + uvicorn, 2 workers,
    `get_online_features_async` + LightGBM predict), same users, same wrk
    loads. Parity: Feast's online features against Presage's for a sample.
 4. Prints the tables, the ratios with the goals, a markdown summary and a
    JSON summary line, and writes out/results.json.

Latencies at 1 connection are bodies.lua's own per-request timings
(uncorrected); at 32 connections wrk's histogram (coordinated-omission
corrected), as in bench/serve. The load generators (ingest.py, wrk) run on
the same 2 cores as the servers; nothing is pinned.
"""

import argparse
import hashlib
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from http.client import HTTPConnection
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CONFIG = REPO / "datasets/configs/churn.toml"
LUA = HERE / "bodies.lua"
PY = Path(sys.executable)
ADMIN_TOKEN = "bench-online-admin-token"
BATCH = 1000
PUSH_SOURCE = "churn_push"
VIEW = "churn_features"
# Bump when the prepared inputs change shape, so cached ones are rebuilt.
INPUTS_VERSION = 1
GOAL_BYID_SHARE = 0.5
GOAL_P99_FACTOR = 10.0
GOAL_INGEST_FACTOR = 10.0


def log(message):
    print(f"[online-bench] {message}", file=sys.stderr, flush=True)


class Interrupted(Exception):
    pass


def on_signal(signum, _frame):
    raise Interrupted(f"signal {signum}")


# ---------------------------------------------------------------- helpers


def seconds_of(duration):
    m = re.fullmatch(r"(\d+)([smh]?)", duration.strip())
    if not m:
        raise SystemExit(f"--duration {duration!r}: use a whole number of seconds or minutes like 10s, 2m")
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, timeout=10, headers=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        request.add_header(k, v)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def run_cmd(argv, log_to=None, **kwargs):
    started = time.perf_counter()
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kwargs)
    seconds = time.perf_counter() - started
    if log_to is not None:
        log_to.with_suffix(".stdout").write_text(done.stdout)
        log_to.with_suffix(".stderr").write_text(done.stderr)
    if done.returncode != 0:
        raise RuntimeError(
            f"{Path(str(argv[0])).name} {argv[1] if len(argv) > 1 else ''} failed ({done.returncode}): "
            f"{(done.stderr or done.stdout).strip()[-800:]}"
        )
    return done, seconds


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


def proc_status_kib(pid, key):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def group_rss_kib(pgid):
    """Summed VmRSS of every process in a process group (uvicorn/gunicorn workers included)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                total += proc_status_kib(int(entry.name), "VmRSS") or 0
        except (OSError, IndexError, ValueError):
            continue
    return total


def du_bytes(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


def metrics(base):
    """Prometheus text of /metrics as {name or name{labels}: value}."""
    status, raw = http("GET", base + "/metrics")
    if status != 200:
        return {}
    out = {}
    for line in raw.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def mib(x):
    return None if x is None else x / (1 << 20)


# ---------------------------------------------------------------- servers


class Server:
    """One process in its own process group; `ready` is a callable that returns True once it serves."""

    def __init__(self, name, argv, env, logs, pidfile, cwd=None, listen_from_stdout=False, base=None):
        self.name, self.argv, self.env, self.cwd = name, [str(a) for a in argv], env, cwd
        self.stdout_path = logs / f"{name}.stdout"
        self.stderr_path = logs / f"{name}.stderr"
        self.pidfile = pidfile
        self.listen_from_stdout = listen_from_stdout
        self.base = base
        self.process = None
        self.spawned_at = self.listening_at = self.ready_at = None

    def start(self, ready, timeout=120, poll=0.01):
        # Logs are appended across restarts: look for "listening on" past this start's offset only.
        offset = self.stdout_path.stat().st_size if self.stdout_path.exists() else 0
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self.spawned_at = time.perf_counter()
            self.process = subprocess.Popen(
                self.argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=self.env,
                start_new_session=True, cwd=self.cwd or HERE,
            )
        with self.pidfile.open("a") as f:
            f.write(f"{self.process.pid}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode} before it was ready; see {self.stderr_path}: "
                    f"{self.stderr_path.read_text(errors='replace').strip()[-600:]}"
                )
            if self.listen_from_stdout and self.listening_at is None:
                with self.stdout_path.open("rb") as f:
                    f.seek(offset)
                    m = re.search(rb"listening on (http://\S+)", f.read())
                if m:
                    self.base = m.group(1).decode()
                    self.listening_at = time.perf_counter()
            if (self.base is not None or not self.listen_from_stdout) and self._ready(ready):
                self.ready_at = time.perf_counter()
                return
            time.sleep(poll)
        raise RuntimeError(f"{self.name} was not ready after {timeout} s; see {self.stderr_path}")

    @staticmethod
    def _ready(ready):
        try:
            return bool(ready())
        except OSError:
            return False

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def stop(self, timeout=30):
        if self.process is None:
            return None
        code = self.process.poll()
        if code is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                code = self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not stop within {timeout} s of SIGTERM; sending SIGKILL")
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                code = self.process.wait(timeout=15)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # workers of the same group, if any are left
        except ProcessLookupError:
            pass
        try:
            pids = [p for p in self.pidfile.read_text().split() if p != str(self.process.pid)]
            self.pidfile.write_text("".join(f"{p}\n" for p in pids))
        except OSError:
            pass
        self.process = None
        return code


def status_ready(url):
    return lambda: http("GET", url, timeout=2)[0] == 200


# ---------------------------------------------------------------- load generators


def wrk(url, bodies, threads, connections, seconds, raw_path=None):
    """wrk with bodies.lua; 1 connection per thread -> per-request (uncorrected) latencies."""
    timed = connections == threads
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(LUA), url, "--", str(bodies)]
    env = dict(os.environ, WRK_TIMED="1" if timed else "0")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, env=env)
    if raw_path is not None:
        raw_path.write_text(f"WRK_TIMED={env['WRK_TIMED']} " + " ".join(argv) + "\n\n" + done.stdout + done.stderr)
    line = next((l for l in done.stdout.splitlines() if l.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-400:]}")
    result = json.loads(line[len("WRK_JSON "):])
    seconds_run = result["duration_us"] / 1e6
    errors = dict(result["errors"])
    if "non2xx" in result:
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
        "latency_source": "per-request, uncorrected (bodies.lua timed mode)" if raw_ms else "wrk histogram (coordinated-omission corrected)",
        "wrk_latency_ms": wrk_ms,
        "errors": errors,
        "errors_total": sum(errors.values()),
    }


def ingest(addr, path, file, connections, lines_per_request=BATCH, items_total=None, content_type="application/x-ndjson", log_to=None):
    argv = [PY, HERE / "ingest.py", addr, path, file, "--lines-per-request", lines_per_request,
            "--connections", connections, "--content-type", content_type]
    done, _ = run_cmd(argv, log_to=log_to)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if items_total is not None:
        result["items"] = items_total
        result["items_per_s"] = items_total / result["seconds"] if result["seconds"] > 0 else None
    return result


def score_plan(threads, connections):
    return [
        # key, title, (threads, connections)
        ("1c", "1 connection (latency)", (1, 1)),
        ("sat", f"{connections} connections (throughput)", (threads, connections)),
    ]


def measure_scoring(name, base, bodies, plan, seconds, warmup, logs, entry_key, into):
    log(f"{name}: warm-up {warmup} s")
    wrk(base + "/predict/churn", bodies, plan[1][2][0], plan[1][2][1], warmup)
    for key, _title, (threads, connections) in plan:
        m = wrk(base + "/predict/churn", bodies, threads, connections, seconds, logs / f"wrk-{name}-{entry_key}-{key}.txt")
        into[f"{entry_key}_{key}"] = m
        log(f"{name}: {entry_key} {key}: {m['rps']:,.0f} req/s, p50 {m['latency_ms']['p50']:.3f} ms, "
            f"p99 {m['latency_ms']['p99']:.3f} ms, errors {m['errors_total']}")
        time.sleep(0.5)


# ---------------------------------------------------------------- inputs


def without_label(config_text):
    """The config without its [label] table: `features` then keeps users whose label window is not complete."""
    out, skipping = [], False
    for line in config_text.splitlines():
        header = re.match(r"\s*\[\[?([^\]]+)\]\]?\s*(#.*)?$", line)
        if header:
            skipping = header.group(1).strip() == "label"
        if not skipping:
            out.append(line)
    return "\n".join(out) + "\n"


def prepare_inputs(bins, users, seed, fresh, work):
    """The extract, the Presage model, the NDJSON export, the two feature tables and the LightGBM model."""
    data = REPO / "bench/data" / f"onboarding_{users}_seed{seed}"
    if not (data / "truth.parquet").exists():
        if data.exists():
            shutil.rmtree(data)
        log(f"generating the extract: {users:,} users, seed {seed} -> {data}")
        run_cmd([bins["datagen"], "--users", users, "--seed", seed, "--out", data])
    stamp_path = work / "inputs.json"
    want = {
        "version": INPUTS_VERSION,
        "data": str(data),
        "truth_mtime": (data / "truth.parquet").stat().st_mtime,
        "presage_train": sha256_of(bins["train"]),
        "config": sha256_of(CONFIG),
        "train_lgbm": sha256_of(HERE / "train_lgbm.py"),
    }
    if not fresh and stamp_path.exists():
        try:
            have = json.loads(stamp_path.read_text())
            if have.get("key") == want:
                log(f"inputs: cached in {work} (--fresh rebuilds them)")
                return have
        except ValueError:
            pass
    if work.exists():
        shutil.rmtree(work)
    (work / "logs").mkdir(parents=True)
    logs = work / "logs"
    info = {"key": want, "data": str(data), "seconds": {}}
    extract = ["--users", data / "users.parquet", "--events", data / "events"]

    log("presage-train fit (churn model from the extract)")
    done, s = run_cmd([bins["train"], "--registry", work / "registry", "fit", "--config", CONFIG, *extract, "--json"],
                      log_to=logs / "fit")
    fit = json.loads(done.stdout)
    info["seconds"]["fit"] = s
    info["presage_model"] = {
        "trees": fit.get("trees"),
        "test_auc": (fit.get("metrics") or {}).get("test", {}).get("auc"),
        "rows": fit.get("rows"),
    }
    log(f"  {s:.1f} s; test AUC {info['presage_model']['test_auc']}")

    log("presage-train export-online (users.ndjson, events.ndjson)")
    _, s = run_cmd([bins["train"], "export-online", "--config", CONFIG, *extract,
                    "--users-out", work / "users.ndjson", "--events-out", work / "events.ndjson"], log_to=logs / "export")
    info["seconds"]["export_online"] = s
    info["ndjson"] = {
        "users": count_lines(work / "users.ndjson"),
        "events": count_lines(work / "events.ndjson"),
        "events_bytes": (work / "events.ndjson").stat().st_size,
    }
    log(f"  {s:.1f} s; {info['ndjson']['users']:,} users, {info['ndjson']['events']:,} events "
        f"({info['ndjson']['events_bytes'] / 2**30:.2f} GiB)")

    log("presage-train features (the labelled table for LightGBM, and every user's row for Feast)")
    _, s = run_cmd([bins["train"], "features", "--config", CONFIG, *extract, "--out", work / "train_table.parquet"],
                   log_to=logs / "features-train")
    info["seconds"]["features_train"] = s
    nolabel = work / "churn_nolabel.toml"
    nolabel.write_text(without_label(CONFIG.read_text()))
    _, s = run_cmd([bins["train"], "features", "--config", nolabel, *extract, "--out", work / "online_table.parquet"],
                   log_to=logs / "features-online")
    info["seconds"]["features_online"] = s
    log(f"  {s:.1f} s for the online table")

    log("train_lgbm.py (LightGBM on the same table and parameters)")
    done, s = run_cmd([PY, HERE / "train_lgbm.py", work / "train_table.parquet", CONFIG, work / "lightgbm"],
                      log_to=logs / "train_lgbm")
    info["lightgbm_model"] = json.loads(done.stdout.strip().splitlines()[-1])
    info["seconds"]["train_lgbm"] = s
    log(f"  {s:.1f} s; {info['lightgbm_model']['trees']} trees, test AUC {info['lightgbm_model']['test_auc']:.4f}")

    stamp_path.write_text(json.dumps(info, indent=1))
    return info


def count_lines(path):
    n = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            n += block.count(b"\n")
    return n


def extract_events(data):
    import pyarrow.parquet as pq
    return sum(pq.ParquetFile(f).metadata.num_rows for f in sorted((Path(data) / "events").glob("*.parquet")))


def sample_ids(work, n):
    """n distinct users of the online table (in both stores), in a seeded random order."""
    import pyarrow.parquet as pq
    ids = pq.read_table(work / "online_table.parquet", columns=["user_id"]).column("user_id").to_pylist()
    rng = random.Random(42)
    return rng.sample(ids, min(n, len(ids)))


# ---------------------------------------------------------------- Presage


def bench_presage(entry, ctx):
    work, run, logs, args = ctx["work"], ctx["run"] / "presage", ctx["logs"], ctx["args"]
    if run.exists():
        shutil.rmtree(run)
    run.mkdir(parents=True)
    days = args.retain_days
    (run / "serve.toml").write_text(
        "# bench/online: the [online] settings of datasets/configs/serve_online.toml\n"
        f'models = ["churn"]\n\n[online]\ndir = "store"\nretain_days_after_signup = {days}\n'
        f"retain_last_days = {days}\nrequire_consent = true\n"
    )
    env = dict(os.environ, PRESAGE_ADMIN_TOKEN=ADMIN_TOKEN, PRESAGE_LOG="error")
    argv = [ctx["bins"]["serve"], "--registry", work / "registry", "--config", run / "serve.toml", "--listen", "127.0.0.1:0"]
    entry["command"] = " ".join(str(a) for a in argv)
    entry["config"] = (run / "serve.toml").read_text()
    server = Server("presage-serve", argv, env, logs, ctx["pidfile"], cwd=run, listen_from_stdout=True)
    ready = lambda: http("GET", server.base + "/readyz", timeout=2)[0] == 200  # noqa: E731
    try:
        log("presage: starting presage-serve with an empty online store")
        server.start(ready)
        addr = server.base.removeprefix("http://")
        log(f"presage: POST /users ({ctx['inputs']['ndjson']['users']:,} users, {BATCH} per request, "
            f"{args.ingest_connections} connections)")
        entry["ingest_users"] = ingest(addr, "/users", work / "users.ndjson", args.ingest_connections, log_to=logs / "ingest-presage-users")
        log(f"  {entry['ingest_users']['items_per_s']:,.0f} users/s")
        log(f"presage: POST /events ({ctx['inputs']['ndjson']['events']:,} events, {BATCH} per request)")
        entry["ingest_events"] = ingest(addr, "/events", work / "events.ndjson", args.ingest_connections, log_to=logs / "ingest-presage-events")
        log(f"  {entry['ingest_events']['items_per_s']:,.0f} events/s in {entry['ingest_events']['seconds']:.1f} s")
        m = metrics(server.base)
        entry["after_ingest"] = {
            "rss_kib": proc_status_kib(server.pid, "VmRSS"),
            "peak_rss_kib": proc_status_kib(server.pid, "VmHWM"),
            "store_memory_bytes": m.get("presage_online_store_memory_bytes"),
            "store_disk_bytes_metric": m.get("presage_online_store_disk_bytes"),
            "store_disk_bytes_du": du_bytes(run / "store"),
            "users": m.get("presage_online_users"),
            "events_by_outcome": {k: v for k, v in m.items() if k.startswith("presage_online_events_total")},
        }
        a = entry["after_ingest"]
        if a["store_memory_bytes"] and a["users"]:
            a["memory_bytes_per_user"] = a["store_memory_bytes"] / a["users"]
        log(f"  RSS {mib(a['rss_kib'] * 1024):.0f} MiB, store {mib(a['store_memory_bytes'] or 0):.0f} MiB "
            f"({a.get('memory_bytes_per_user', 0):.0f} B/user), disk {mib(a['store_disk_bytes_du']):.0f} MiB")

        # Bodies: the same users by id and with their online features sent.
        ids = ctx["ids"]
        log(f"presage: GET /users/{{id}}/features for the {len(ids):,} sampled users")
        features = fetch_features(addr, ids)
        ctx["presage_features"] = features
        bodies_byid, bodies_feat = ctx["bodies"] / "byid.ndjson", ctx["bodies"] / "features.ndjson"
        bodies_feat.write_text("".join(json.dumps({"user_id": u, "features": features[u]}) + "\n" for u in ids))
        entry["check"] = check_presage(server.base, ids[:50], features)
        plan = ctx["plan"]
        measure_scoring("presage", server.base, bodies_byid, plan, ctx["seconds"], ctx["warmup"], logs, "byid", entry["measurements"])
        measure_scoring("presage", server.base, bodies_feat, plan, ctx["seconds"], ctx["warmup"], logs, "features", entry["measurements"])
        entry["rss_after_scoring_kib"] = proc_status_kib(server.pid, "VmRSS")

        log("presage: SIGTERM, then a restart on the same store (recovery)")
        entry["exit_code"] = server.stop()
        server.listening_at = None
        server.base = None
        server.start(ready, timeout=3600)
        m = metrics(server.base)
        entry["recovery"] = {
            "spawn_to_listening_s": server.listening_at - server.spawned_at,
            "spawn_to_ready_s": server.ready_at - server.spawned_at,
            "listening_to_ready_s": server.ready_at - server.listening_at,
            "recovery_seconds_metric": m.get("presage_online_recovery_seconds"),
            "users": m.get("presage_online_users"),
            "rss_kib": proc_status_kib(server.pid, "VmRSS"),
            "store_memory_bytes": m.get("presage_online_store_memory_bytes"),
        }
        r = entry["recovery"]
        log(f"  ready {r['spawn_to_ready_s']:.2f} s after spawn; presage_online_recovery_seconds "
            f"{r['recovery_seconds_metric']}; {r['users']:,.0f} users")
        status, raw = http("POST", server.base + "/predict/churn", {"user_id": ids[0]})
        after = json.loads(raw) if status == 200 else {}
        r["same_score_after_restart"] = after.get("probability") == entry["check"].get("first_probability")
    finally:
        code = server.stop()
        entry.setdefault("exit_code_after_recovery", code)


def fetch_features(addr, ids):
    host, port = addr.rsplit(":", 1)
    conn = HTTPConnection(host, int(port), timeout=30)
    out = {}
    try:
        for u in ids:
            conn.request("GET", f"/users/{u}/features?model=churn", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            response = conn.getresponse()
            raw = response.read()
            if response.status != 200:
                raise RuntimeError(f"GET /users/{u}/features answered {response.status}: {raw[:300]!r}")
            out[u] = json.loads(raw)["features"]
    finally:
        conn.close()
    return out


def check_presage(base, ids, features):
    """Scores by id and with the same features sent must agree; by id must say features_source online."""
    same, first = 0, None
    for u in ids:
        s1, raw1 = http("POST", base + "/predict/churn", {"user_id": u})
        s2, raw2 = http("POST", base + "/predict/churn", {"user_id": u, "features": features[u]})
        a, b = json.loads(raw1), json.loads(raw2)
        if s1 != 200 or s2 != 200 or a.get("features_source") != "online":
            raise RuntimeError(f"POST /predict/churn for {u}: {s1} {raw1[:300]!r} / {s2} {raw2[:300]!r}")
        first = a["probability"] if first is None else first
        same += a["probability"] == b["probability"]
    return {"users": len(ids), "same_probability_by_id_and_features_sent": same, "first_probability": first}


# ---------------------------------------------------------------- Feast


FEATURE_STORE_YAML = """project: presage_bench
registry: {registry}
provider: local
online_store:
  type: redis
  connection_string: "127.0.0.1:{port}"
offline_store:
  type: file
entity_key_serialization_version: 3
"""


class Redis:
    def __init__(self, ctx):
        self.dir = Path(tempfile.mkdtemp(prefix="presage-bench-redis-"))
        self.port = free_port()
        self.argv = [
            shutil.which("redis-server") or "redis-server", "--port", self.port, "--bind", "127.0.0.1",
            "--dir", self.dir, "--save", "", "--appendonly", "yes", "--appendfsync", ctx["args"].redis_fsync,
            "--protected-mode", "yes", "--daemonize", "no", "--logfile", "",
        ]
        self.server = Server("redis-server", self.argv, dict(os.environ), ctx["logs"], ctx["pidfile"])
        self.client = None

    def _ping(self):
        """PING on a fresh socket: +PONG once the data is loaded (-LOADING before; no retries, no back-off)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")

    def start(self):
        import redis
        self.server.start(self._ping, timeout=3600, poll=0.005)
        self.client = redis.Redis(host="127.0.0.1", port=self.port)

    def stop(self):
        return self.server.stop()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def feast_table(work, data, repo):
    """online_table + event_timestamp (the end of each user's 7-day window), as Feast's batch source."""
    import pandas as pd
    table = pd.read_parquet(work / "online_table.parquet")
    users = pd.read_parquet(Path(data) / "users.parquet", columns=["user_id", "signup_at"])
    users["user_id"] = users["user_id"].astype(str)
    table["user_id"] = table["user_id"].astype(str)
    table = table.merge(users, on="user_id", how="left")
    table["event_timestamp"] = pd.to_datetime(table.pop("signup_at"), utc=True) + pd.Timedelta(days=7)
    for c in table.columns:
        if c not in ("user_id", "event_timestamp") and not pd.api.types.is_numeric_dtype(table[c]):
            table[c] = table[c].astype(object)
    table.to_parquet(repo / "table.parquet", index=False)
    return table


def feast_apply(repo, table, port):
    from datetime import timedelta

    import pandas as pd
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, PushSource, ValueType
    from feast.types import Float64, String

    (repo / "feature_store.yaml").write_text(FEATURE_STORE_YAML.format(registry=repo / "registry.db", port=port))
    features = [c for c in table.columns if c not in ("user_id", "event_timestamp")]
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING)
    batch = FileSource(name="churn_table", path=str(repo / "table.parquet"), timestamp_field="event_timestamp")
    push = PushSource(name=PUSH_SOURCE, batch_source=batch)
    schema = [Field(name=c, dtype=Float64 if pd.api.types.is_numeric_dtype(table[c]) else String) for c in features]
    view = FeatureView(name=VIEW, entities=[user], ttl=timedelta(0), schema=schema, source=push, online=True)
    store = FeatureStore(repo_path=str(repo))
    store.apply([user, batch, push, view])
    return store, features


def write_push_bodies(table, path, features):
    """One POST /push body per line, 1,000 rows each, in the documented shape (columns as lists)."""
    import orjson
    cols = ["user_id", "event_timestamp"] + features
    frame = table[cols].copy()
    frame["event_timestamp"] = frame["event_timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S+00:00")
    with open(path, "wb") as f:
        for i in range(0, len(frame), BATCH):
            chunk = frame.iloc[i:i + BATCH]
            df = {c: chunk[c].tolist() for c in cols}
            f.write(orjson.dumps({"push_source_name": PUSH_SOURCE, "df": df, "to": "online"}) + b"\n")


def redis_numbers(r):
    info = r.client.info()
    return {
        "used_memory": info.get("used_memory"),
        "used_memory_dataset": info.get("used_memory_dataset"),
        "keys": r.client.dbsize(),
        "rss_kib": proc_status_kib(r.server.pid, "VmRSS"),
        "disk_bytes_du": du_bytes(r.dir),
        "aof_enabled": info.get("aof_enabled"),
    }


def bench_feast(entry, ctx):
    work, run, logs, args = ctx["work"], ctx["run"] / "feast", ctx["logs"], ctx["args"]
    if run.exists():
        shutil.rmtree(run)
    repo = run / "repo"
    repo.mkdir(parents=True)
    redis = Redis(ctx)
    feast_bin = PY.parent / "feast"
    serve = app = None
    try:
        log(f"feast: redis-server on 127.0.0.1:{redis.port} (AOF, appendfsync {args.redis_fsync}) in {redis.dir}")
        redis.start()
        entry["redis_command"] = " ".join(str(a) for a in redis.argv)
        table = feast_table(work, ctx["inputs"]["data"], repo)
        store, features = feast_apply(repo, table, redis.port)
        entry["rows"] = len(table)
        push_bodies = run / "push_bodies.ndjson"
        write_push_bodies(table, push_bodies, features)

        port = free_port()
        argv = [feast_bin, "-c", repo, "serve", "-h", "127.0.0.1", "-p", port, "--workers", args.feast_workers,
                "--no-access-log", "--max-requests", "0"]
        entry["serve_command"] = " ".join(str(a) for a in argv)
        serve = Server("feast-serve", argv, dict(os.environ), logs, ctx["pidfile"], cwd=run, base=f"http://127.0.0.1:{port}")
        log(f"feast: feast serve ({args.feast_workers} workers)")
        serve.start(status_ready(serve.base + "/health"))
        log(f"feast: POST /push ({len(table):,} rows, {BATCH} per request, {args.ingest_connections} connections)")
        entry["ingest_push_http"] = ingest(
            f"127.0.0.1:{port}", "/push", push_bodies, args.ingest_connections, lines_per_request=1,
            items_total=len(table), content_type="application/json", log_to=logs / "ingest-feast-push")
        log(f"  {entry['ingest_push_http']['items_per_s']:,.0f} rows/s in {entry['ingest_push_http']['seconds']:.1f} s")
        entry["feast_serve_rss_kib"] = group_rss_kib(serve.pid)
        serve.stop()
        serve = None
        entry["after_ingest"] = redis_numbers(redis)
        a = entry["after_ingest"]
        a["memory_bytes_per_user"] = a["used_memory"] / a["keys"] if a["keys"] else None
        log(f"  Redis used_memory {mib(a['used_memory']):.0f} MiB ({a['memory_bytes_per_user'] or 0:.0f} B/user, "
            f"{a['keys']:,} keys), RSS {mib(a['rss_kib'] * 1024):.0f} MiB, disk {mib(a['disk_bytes_du']):.0f} MiB")

        log("feast: Redis SIGTERM and restart (AOF load)")
        redis.stop()
        redis.server.listening_at = None
        redis.start()
        entry["recovery"] = {
            "spawn_to_ready_s": redis.server.ready_at - redis.server.spawned_at,
            "keys": redis.client.dbsize(),
            "rss_kib": proc_status_kib(redis.server.pid, "VmRSS"),
        }
        log(f"  PING answered {entry['recovery']['spawn_to_ready_s']:.2f} s after spawn; {entry['recovery']['keys']:,} keys")

        if args.sdk_push_rows > 0:
            entry["ingest_push_sdk"] = sdk_push(store, table, features, args.sdk_push_rows)
            log(f"feast: SDK push (in-process): {entry['ingest_push_sdk']['items_per_s']:,.0f} rows/s "
                f"({entry['ingest_push_sdk']['items']:,} rows)")

        ids = ctx["ids"]
        if ctx.get("presage_features"):
            entry["parity"] = parity(store, features, ids[: min(len(ids), 2000)], ctx["presage_features"])
            p = entry["parity"]
            log(f"feast: parity with Presage's online features: {p['identical_users']}/{p['users']} users identical")

        port = free_port()
        env = dict(os.environ, FEAST_BENCH_REPO=str(repo), PRESAGE_BENCH_MODEL_DIR=str(work / "lightgbm"))
        if args.feast_sync:
            env["FEAST_BENCH_SYNC"] = "1"
        argv = [PY, "-m", "uvicorn", "app_feast:app", "--host", "127.0.0.1", "--port", port,
                "--workers", args.feast_workers, "--no-access-log"]
        entry["app_command"] = ("FEAST_BENCH_SYNC=1 " if args.feast_sync else "") + " ".join(str(a) for a in argv)
        app = Server("feast-app", argv, env, logs, ctx["pidfile"], cwd=HERE, base=f"http://127.0.0.1:{port}")
        log(f"feast: app_feast.py (FastAPI + Feast + LightGBM, {args.feast_workers} workers)")
        app.start(status_ready(app.base + "/readyz"))
        status, raw = http("POST", app.base + "/predict/churn", {"user_id": ids[0]})
        if status != 200 or json.loads(raw).get("features_source") != "feast":
            raise RuntimeError(f"app_feast answered {status}: {raw[:300]!r}")
        entry["check"] = {"first_probability": json.loads(raw)["probability"]}
        # Every worker must have started (uvicorn spawns them after the first answers).
        time.sleep(1.0)
        measure_scoring("feast", app.base, ctx["bodies"] / "byid.ndjson", ctx["plan"], ctx["seconds"], ctx["warmup"],
                        logs, "byid", entry["measurements"])
        entry["app_rss_kib"] = group_rss_kib(app.pid)
    finally:
        for s in (app, serve):
            if s is not None:
                s.stop()
        redis.cleanup()


def sdk_push(store, table, features, limit):
    """FeatureStore.push of the first `limit` rows, 1,000 per call, in this process (no HTTP), with
    newer timestamps than the HTTP push (Feast's Redis store skips rows not newer than the stored ones)."""
    import pandas as pd
    from feast.data_source import PushMode
    rows = table[["user_id", "event_timestamp"] + features].iloc[:limit].copy()
    rows["event_timestamp"] = rows["event_timestamp"] + pd.Timedelta(seconds=1)
    chunks = [rows.iloc[i:i + BATCH] for i in range(0, len(rows), BATCH)]
    started = time.perf_counter()
    for chunk in chunks:
        store.push(PUSH_SOURCE, chunk, to=PushMode.ONLINE)
    seconds = time.perf_counter() - started
    return {"items": len(rows), "requests": len(chunks), "seconds": seconds, "items_per_s": len(rows) / seconds}


def parity(store, features, ids, presage_features):
    """Feast's online values (from presage-train features, offline) against Presage's online feature vectors."""
    got = store.get_online_features(features=[f"{VIEW}:{c}" for c in features], entity_rows=[{"user_id": u} for u in ids]).to_dict()
    identical, differing = 0, {}
    for i, u in enumerate(ids):
        ok = True
        for c in features:
            a, b = got[c][i], presage_features[u].get(c)
            if isinstance(a, float) and a != a:
                a = None
            if a is None or b is None:
                same = a is None and b is None
            elif isinstance(a, str) or isinstance(b, str):
                same = str(a) == str(b)
            else:
                same = abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)))
            if not same:
                ok = False
                differing[c] = differing.get(c, 0) + 1
        identical += ok
    return {"users": len(ids), "identical_users": identical, "differing_features": differing}


# ---------------------------------------------------------------- report


def fmt(x, spec=",.0f", none="n/a"):
    return none if x is None else format(x, spec)


def ratio(a, b):
    return a / b if a is not None and b else None


def get(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def compute_ratios(results):
    p, f = results["contestants"].get("presage", {}), results["contestants"].get("feast", {})
    pm, fm = p.get("measurements", {}), f.get("measurements", {})
    out = {
        "byid_over_features_sent_rps_32c": ratio(get(pm, "byid_sat", "rps"), get(pm, "features_sat", "rps")),
        "byid_over_features_sent_rps_1c": ratio(get(pm, "byid_1c", "rps"), get(pm, "features_1c", "rps")),
        "feast_over_presage_p99_1c": ratio(get(fm, "byid_1c", "latency_ms", "p99"), get(pm, "byid_1c", "latency_ms", "p99")),
        "feast_over_presage_p50_1c": ratio(get(fm, "byid_1c", "latency_ms", "p50"), get(pm, "byid_1c", "latency_ms", "p50")),
        "feast_over_presage_p99_32c": ratio(get(fm, "byid_sat", "latency_ms", "p99"), get(pm, "byid_sat", "latency_ms", "p99")),
        "presage_over_feast_rps_32c": ratio(get(pm, "byid_sat", "rps"), get(fm, "byid_sat", "rps")),
        "presage_events_over_feast_http_rows_per_s": ratio(get(p, "ingest_events", "items_per_s"), get(f, "ingest_push_http", "items_per_s")),
        "presage_events_over_feast_sdk_rows_per_s": ratio(get(p, "ingest_events", "items_per_s"), get(f, "ingest_push_sdk", "items_per_s")),
        "feast_over_presage_memory_per_user": ratio(get(f, "after_ingest", "memory_bytes_per_user"), get(p, "after_ingest", "memory_bytes_per_user")),
    }
    ps = (get(p, "ingest_users", "seconds") or 0) + (get(p, "ingest_events", "seconds") or 0) if p.get("ingest_events") else None
    fs = get(f, "ingest_push_http", "seconds")
    out["presage_load_seconds"] = ps
    out["feast_load_seconds"] = fs
    out["feast_over_presage_load_seconds"] = ratio(fs, ps)
    return out


def targets(results):
    r = results["ratios"]
    rows = []

    def add(goal, value, text, ok):
        rows.append({"target": goal, "measured": text, "verdict": "n/a" if value is None else ("PASS" if ok else "FAIL")})

    v = r["byid_over_features_sent_rps_32c"]
    add(f"score by id >= {GOAL_BYID_SHARE:.0%} of feature-passing req/s (32 connections)", v,
        "n/a" if v is None else f"{v:.0%}", v is not None and v >= GOAL_BYID_SHARE)
    v = r["feast_over_presage_p99_1c"]
    add(f"p99 by id >= {GOAL_P99_FACTOR:g}x lower than Feast + FastAPI (1 connection)", v,
        "n/a" if v is None else f"{v:.1f}x", v is not None and v >= GOAL_P99_FACTOR)
    v = r["presage_events_over_feast_http_rows_per_s"]
    add(f"ingest rate >= {GOAL_INGEST_FACTOR:g}x Feast's (Presage events/s vs Feast /push rows/s)", v,
        "n/a" if v is None else f"{v:.1f}x", v is not None and v >= GOAL_INGEST_FACTOR)
    errors = sum(m["errors_total"] for c in results["contestants"].values() for m in c.get("measurements", {}).values())
    add("zero errors (every scoring measurement)", errors, f"{errors} errors", errors == 0)
    return rows


def report(results):
    out = []
    cfg = results["config"]
    inputs = results["inputs"]
    p, f = results["contestants"].get("presage", {}), results["contestants"].get("feast", {})

    out.append("")
    out.append(f"== data: {cfg['users']:,} users, seed {cfg['seed']}: {results['extract_events']:,} events in the extract; "
               f"exported {inputs['ndjson']['users']:,} consenting users, {inputs['ndjson']['events']:,} events; "
               f"Feast rows (online table) {fmt(f.get('rows'))} ==")

    out.append("")
    out.append(f"== ingest over HTTP, durable, {BATCH} items per request, {cfg['ingest_connections']} connections ==")
    header = f"{'contestant':<44} {'items':>11} {'seconds':>8} {'items/s':>10} {'req p99 ms':>10}"
    out.append(header)
    out.append("-" * len(header))
    for label, m in (
        ("Presage POST /users (users)", p.get("ingest_users")),
        ("Presage POST /events (events)", p.get("ingest_events")),
        (f"Feast feast serve POST /push (feature rows)", f.get("ingest_push_http")),
        ("Feast SDK FeatureStore.push, in-process (rows)", f.get("ingest_push_sdk")),
    ):
        if not m:
            out.append(f"{label:<44} {'n/a':>11}")
            continue
        out.append(f"{label:<44} {m['items']:>11,} {m['seconds']:>8.1f} {fmt(m['items_per_s']):>10} "
                   f"{fmt(get(m, 'request_ms', 'p99'), '.1f', '-'):>10}")
    ev = get(p, "ingest_events", "answers") or {}
    if ev:
        out.append("   Presage event outcomes: " + ", ".join(f"{k} {v:,}" for k, v in ev.items() if v))
    out.append("   Presage ingests raw events and aggregates them itself; Feast ingests one precomputed feature row per user")
    out.append("   (a batch job computes them first: presage-train features took "
               f"{fmt(get(inputs, 'seconds', 'features_online'), '.1f')} s here). Redis: AOF, appendfsync {cfg['redis_fsync']}.")

    out.append("")
    out.append("== store after ingest ==")
    header = f"{'contestant':<24} {'users':>10} {'RSS MiB':>9} {'store MiB':>10} {'B/user':>8} {'disk MiB':>9} {'restart s':>10}"
    out.append(header)
    out.append("-" * len(header))
    if p.get("after_ingest"):
        a, r = p["after_ingest"], p.get("recovery", {})
        out.append(f"{'Presage (presage-serve)':<24} {fmt(a['users']):>10} {fmt(mib(a['rss_kib'] * 1024), '.0f'):>9} "
                   f"{fmt(mib(a['store_memory_bytes']), '.0f'):>10} {fmt(a.get('memory_bytes_per_user')):>8} "
                   f"{fmt(mib(a['store_disk_bytes_du']), '.0f'):>9} {fmt(r.get('spawn_to_ready_s'), '.2f'):>10}")
    if f.get("after_ingest"):
        a, r = f["after_ingest"], f.get("recovery", {})
        out.append(f"{'Feast (redis-server)':<24} {fmt(a['keys']):>10} {fmt(mib(a['rss_kib'] * 1024), '.0f'):>9} "
                   f"{fmt(mib(a['used_memory']), '.0f'):>10} {fmt(a.get('memory_bytes_per_user')):>8} "
                   f"{fmt(mib(a['disk_bytes_du']), '.0f'):>9} {fmt(r.get('spawn_to_ready_s'), '.2f'):>10}")
    if p.get("after_ingest"):
        a, r = p["after_ingest"], p.get("recovery", {})
        out.append(f"   Presage: store = presage_online_store_memory_bytes (raw events of the retained days); peak RSS during ingest "
                   f"{fmt(mib((a.get('peak_rss_kib') or 0) * 1024), '.0f')} MiB; restart: listening after "
                   f"{fmt(r.get('spawn_to_listening_s'), '.2f')} s, /readyz 200 after {fmt(r.get('spawn_to_ready_s'), '.2f')} s, "
                   f"presage_online_recovery_seconds {fmt(r.get('recovery_seconds_metric'), '.3f')}, "
                   f"{fmt(r.get('users'))} users, same score after restart: {r.get('same_score_after_restart')}")
    if f.get("after_ingest"):
        out.append(f"   Feast: store = Redis used_memory (33 feature values per user); feast serve RSS (all workers) "
                   f"{fmt(mib((f.get('feast_serve_rss_kib') or 0) * 1024), '.0f')} MiB; restart = redis-server spawn to PING "
                   "after loading its AOF")

    out.append("")
    out.append(f"== POST /predict/churn, {cfg['sample_users']:,} distinct users in turn, wrk {cfg['seconds']} s ==")
    header = (f"{'contestant':<38} {'conns':>5} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'wrk p99':>8} "
              f"{'req/s':>9} {'errors':>6}")
    out.append(header)
    out.append("-" * len(header))
    rows = (
        ("Presage by id (online features)", p, "byid"),
        ("Presage with features sent", p, "features"),
        ("Feast + LightGBM (FastAPI) by id", f, "byid"),
    )
    for label, c, key in rows:
        for k in ("1c", "sat"):
            m = get(c, "measurements", f"{key}_{k}")
            if not m:
                out.append(f"{label:<38} {'n/a':>5}  ({c.get('error') or 'not run'})")
                continue
            lat = m["latency_ms"]
            out.append(f"{label:<38} {m['connections']:>5} {lat['p50']:>8.3f} {lat['p99']:>8.3f} {lat['p999']:>9.3f} "
                       f"{m['wrk_latency_ms']['p99']:>8.3f} {m['rps']:>9,.0f} {m['errors_total']:>6}")
    out.append("   1 connection: per-request latencies (uncorrected); 32: wrk's corrected histogram. 'wrk p99' is always wrk's.")

    out.append("")
    out.append("== ratios ==")
    r = results["ratios"]

    def line(text, v, unit="x"):
        out.append(f"  {text:<72} {'n/a' if v is None else (f'{v:.0%}' if unit == '%' else f'{v:.2f}x')}")

    line("Presage by id / features sent, req/s at 32 connections (goal >= 50%)", r["byid_over_features_sent_rps_32c"], "%")
    line("Presage by id / features sent, req/s at 1 connection", r["byid_over_features_sent_rps_1c"], "%")
    line("Feast p99 / Presage by-id p99, 1 connection (goal >= 10x)", r["feast_over_presage_p99_1c"])
    line("Feast p50 / Presage by-id p50, 1 connection", r["feast_over_presage_p50_1c"])
    line("Feast p99 / Presage by-id p99, 32 connections", r["feast_over_presage_p99_32c"])
    line("Presage by-id req/s / Feast req/s, 32 connections", r["presage_over_feast_rps_32c"])
    line("Presage events/s / Feast /push rows/s (goal >= 10x)", r["presage_events_over_feast_http_rows_per_s"])
    line("Presage events/s / Feast SDK push rows/s", r["presage_events_over_feast_sdk_rows_per_s"])
    line("Feast seconds to load the users / Presage's (rows pushed vs users + events)", r["feast_over_presage_load_seconds"])
    line("Redis bytes per user / Presage store bytes per user", r["feast_over_presage_memory_per_user"])

    out.append("")
    out.append("== targets ==")
    for t in results["targets"]:
        out.append(f"  [{t['verdict']:>4}] {t['target']}: {t['measured']}")

    out.append("")
    out.append("== models and parity ==")
    pm, lm = inputs.get("presage_model", {}), inputs.get("lightgbm_model", {})
    out.append(f"  Presage : {pm.get('trees')} trees, test AUC {fmt(pm.get('test_auc'), '.4f')}")
    out.append(f"  LightGBM: {lm.get('trees')} trees, test AUC {fmt(lm.get('test_auc'), '.4f')}")
    if p.get("check"):
        c = p["check"]
        out.append(f"  Presage by id vs features sent: {c['same_probability_by_id_and_features_sent']}/{c['users']} identical probabilities")
    if f.get("parity"):
        q = f["parity"]
        out.append(f"  Feast's online features vs Presage's (GET /users/{{id}}/features): {q['identical_users']}/{q['users']} users identical"
                   + (f"; differing: {q['differing_features']}" if q["differing_features"] else ""))

    out.append("")
    m = results["machine"]
    v = m["versions"]
    out.append("== machine ==")
    out.append(f"  CPU: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}; load at start {m['loadavg_at_start']}")
    out.append("  load before each side: " + ", ".join(f"{n} {c.get('loadavg_before')}" for n, c in results["contestants"].items()))
    out.append("  " + " | ".join(f"{k} {val}" for k, val in v.items()))
    out.append(f"  wrk: {cfg['seconds']} s per measurement after {cfg['warmup_seconds']} s warm-up; {cfg['threads']} threads at "
               f"{cfg['connections']} connections. No CPU pinning: servers and load generators share the cores.")
    return "\n".join(out)


def markdown(results):
    cfg, r = results["config"], results["ratios"]
    p, f = results["contestants"].get("presage", {}), results["contestants"].get("feast", {})
    lines = [f"| {cfg['users']:,} users | Presage | Feast + Redis | ratio |", "|---|---:|---:|---:|"]

    def lat(c, key, q):
        return get(c, "measurements", key, "latency_ms", q)

    def add(label, a, b, rv, spec=",.0f", rfmt="{:.1f}x"):
        lines.append(f"| {label} | {fmt(a, spec)} | {fmt(b, spec)} | {'n/a' if rv is None else rfmt.format(rv)} |")

    add("ingest, items/s (Presage events, Feast /push rows)", get(p, "ingest_events", "items_per_s"),
        get(f, "ingest_push_http", "items_per_s"), r["presage_events_over_feast_http_rows_per_s"])
    add("seconds to load the users (Presage users + events; Feast rows)", r["presage_load_seconds"], r["feast_load_seconds"],
        r["feast_over_presage_load_seconds"], ",.1f")
    add("store bytes per user", get(p, "after_ingest", "memory_bytes_per_user"), get(f, "after_ingest", "memory_bytes_per_user"),
        r["feast_over_presage_memory_per_user"])
    add("restart to ready, s", get(p, "recovery", "spawn_to_ready_s"), get(f, "recovery", "spawn_to_ready_s"), None, ".2f")
    add("score by id p50 ms, 1 connection", lat(p, "byid_1c", "p50"), lat(f, "byid_1c", "p50"), r["feast_over_presage_p50_1c"], ".3f")
    add("score by id p99 ms, 1 connection", lat(p, "byid_1c", "p99"), lat(f, "byid_1c", "p99"), r["feast_over_presage_p99_1c"], ".3f")
    add("score by id req/s, 32 connections", get(p, "measurements", "byid_sat", "rps"), get(f, "measurements", "byid_sat", "rps"),
        r["presage_over_feast_rps_32c"])
    lines.append(f"| Presage by id / features sent, req/s at 32 connections | "
                 f"{fmt(get(p, 'measurements', 'byid_sat', 'rps'))} / {fmt(get(p, 'measurements', 'features_sat', 'rps'))} | | "
                 f"{'n/a' if r['byid_over_features_sent_rps_32c'] is None else format(r['byid_over_features_sent_rps_32c'], '.0%')} |")
    return "\n".join(lines)


def summary_json(results):
    p, f = results["contestants"].get("presage", {}), results["contestants"].get("feast", {})
    return {
        "users": results["config"]["users"],
        "quick": results["config"]["quick"],
        "presage": {
            "users_per_s": get(p, "ingest_users", "items_per_s"),
            "events_per_s": get(p, "ingest_events", "items_per_s"),
            "rss_mib": mib((get(p, "after_ingest", "rss_kib") or 0) * 1024) if p.get("after_ingest") else None,
            "store_bytes_per_user": get(p, "after_ingest", "memory_bytes_per_user"),
            "disk_mib": mib(get(p, "after_ingest", "store_disk_bytes_du")),
            "ready_after_restart_s": get(p, "recovery", "spawn_to_ready_s"),
            "recovery_seconds_metric": get(p, "recovery", "recovery_seconds_metric"),
            **{f"{k}_{q}": get(p, "measurements", k, *(("rps",) if q == "rps" else ("latency_ms", q)))
               for k in ("byid_1c", "byid_sat", "features_1c", "features_sat") for q in ("p50", "p99", "rps")},
        },
        "feast": {
            "push_http_rows_per_s": get(f, "ingest_push_http", "items_per_s"),
            "push_sdk_rows_per_s": get(f, "ingest_push_sdk", "items_per_s"),
            "redis_bytes_per_user": get(f, "after_ingest", "memory_bytes_per_user"),
            "redis_rss_mib": mib((get(f, "after_ingest", "rss_kib") or 0) * 1024) if f.get("after_ingest") else None,
            "disk_mib": mib(get(f, "after_ingest", "disk_bytes_du")),
            "ready_after_restart_s": get(f, "recovery", "spawn_to_ready_s"),
            **{f"{k}_{q}": get(f, "measurements", k, *(("rps",) if q == "rps" else ("latency_ms", q)))
               for k in ("byid_1c", "byid_sat") for q in ("p50", "p99", "rps")},
        },
        "ratios": results["ratios"],
        "targets": {t["target"]: t["verdict"] for t in results["targets"]},
    }


def machine_info(serve_bin):
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

    def first_line(argv):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            text = (done.stdout + done.stderr).strip()
            return text.splitlines()[0] if text else None
        except OSError:
            return None

    wrk_v = first_line(["wrk", "-v"])
    return {
        "cpu": cpu or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "kernel": platform.release(),
        "loadavg_at_start": loadavg(),
        "versions": {
            "presage-serve": first_line([str(serve_bin), "--version"]),
            "redis-server": first_line(["redis-server", "--version"]),
            "wrk": wrk_v.split("[")[0].strip() if wrk_v else None,
            "python": platform.python_version(),
            **{k: version_of(k) for k in ("feast", "redis", "lightgbm", "fastapi", "uvicorn", "pandas", "pyarrow", "numpy", "orjson")},
        },
    }


# ---------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description="Online store benchmark: presage-serve vs. Feast + Redis (see README.md).")
    parser.add_argument("--quick", action="store_true", help="20,000 users, 2 s per measurement, 2,000 sampled users (smoke test)")
    parser.add_argument("--users", type=int, help="users in the extract (default 1,000,000; 20,000 with --quick)")
    parser.add_argument("--seed", type=int, default=1, help="datagen seed (default 1, bench/features' extract)")
    parser.add_argument("--duration", help="seconds per wrk measurement, e.g. 10s (default 10s, 2s with --quick)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads at 32 connections (default 2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections for throughput (default 32)")
    parser.add_argument("--ingest-connections", type=int, default=4, help="ingest connections (default 4)")
    parser.add_argument("--sample", type=int, help="distinct users the scoring cycles through (default 10,000; 2,000 with --quick)")
    parser.add_argument("--retain-days", type=int, default=7, help="Presage retain_days_after_signup and retain_last_days (default 7)")
    parser.add_argument("--feast-workers", type=int, default=2, help="feast serve and app_feast workers (default 2)")
    parser.add_argument("--feast-sync", action="store_true", help="app_feast with the synchronous get_online_features")
    parser.add_argument("--sdk-push-rows", type=int, help="rows for the in-process SDK push reference (default 100,000; 0 = skip)")
    parser.add_argument("--redis-fsync", choices=("always", "everysec", "no"), default="always", help="Redis appendfsync (default always)")
    parser.add_argument("--only", help="presage, feast or presage,feast (default both)")
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached inputs (model, NDJSON, tables)")
    parser.add_argument("--out", type=Path, default=HERE / "out")
    args = parser.parse_args()
    args.users = args.users or (20_000 if args.quick else 1_000_000)
    seconds = seconds_of(args.duration) if args.duration else (2 if args.quick else 10)
    warmup = 1 if seconds <= 2 else 2
    args.sample = args.sample or (2_000 if args.quick else 10_000)
    if args.sdk_push_rows is None:
        args.sdk_push_rows = 20_000 if args.quick else 100_000
    names = ["presage", "feast"] if not args.only else [n.strip() for n in args.only.split(",") if n.strip()]
    if not set(names) <= {"presage", "feast"}:
        raise SystemExit("--only takes presage, feast or both")

    target = Path(os.environ.get("CARGO_TARGET_DIR") or "/root/.cache/presage-target") / "release"
    bins = {"serve": target / "presage-serve", "train": target / "presage-train", "datagen": target / "presage-datagen"}
    for b in bins.values():
        if not os.access(b, os.X_OK):
            raise SystemExit(f"{b} is missing: build with `cargo build --release --workspace`")
    for tool in ("wrk",) + (("redis-server",) if "feast" in names else ()):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (run.sh installs it with apt-get)")

    out = args.out.resolve()
    work = out / f"{args.users}_seed{args.seed}"
    run_dir, logs = work / "run", work / "run" / "logs"
    pidfile = Path(os.environ.get("ONLINE_BENCH_PIDFILE") or out / "servers.pids")
    out.mkdir(parents=True, exist_ok=True)
    pidfile.touch()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    machine = machine_info(bins["serve"])
    inputs = prepare_inputs(bins, args.users, args.seed, args.fresh, work)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    logs.mkdir(parents=True)
    (run_dir / "bodies").mkdir()
    ids = sample_ids(work, args.sample)
    (run_dir / "bodies" / "byid.ndjson").write_text("".join(json.dumps({"user_id": u}) + "\n" for u in ids))
    ctx = {
        "args": args, "bins": bins, "work": work, "run": run_dir, "logs": logs, "pidfile": pidfile, "inputs": inputs,
        "ids": ids, "bodies": run_dir / "bodies", "plan": score_plan(args.threads, args.connections),
        "seconds": seconds, "warmup": warmup,
    }
    results = {
        "started_at": started.isoformat(timespec="seconds"),
        "config": {
            "users": args.users, "seed": args.seed, "quick": args.quick, "seconds": seconds, "warmup_seconds": warmup,
            "threads": args.threads, "connections": args.connections, "ingest_connections": args.ingest_connections,
            "batch": BATCH, "sample_users": len(ids), "retain_days": args.retain_days, "feast_workers": args.feast_workers,
            "feast_sync": args.feast_sync, "redis_fsync": args.redis_fsync, "sdk_push_rows": args.sdk_push_rows,
        },
        "machine": machine,
        "inputs": inputs,
        "extract_events": extract_events(inputs["data"]),
        "contestants": {},
    }
    failed = False
    try:
        for name in names:
            entry = results["contestants"][name] = {"loadavg_before": loadavg(), "measurements": {}, "error": None}
            try:
                (bench_presage if name == "presage" else bench_feast)(entry, ctx)
            except (Interrupted, KeyboardInterrupt):
                entry["error"] = "interrupted"
                raise
            except Exception as e:  # one side failing must not stop the other
                entry["error"] = f"{type(e).__name__}: {e}"
                failed = True
                log(f"{name}: FAILED: {entry['error']}")
    except (Interrupted, KeyboardInterrupt):
        log("interrupted; servers stopped; partial results follow")
        results["interrupted"] = True
    results["ratios"] = compute_ratios(results)
    results["targets"] = targets(results)
    results["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    results["wall_seconds"] = time.perf_counter() - t0
    text = json.dumps(results, indent=1, default=str)
    (out / "results.json").write_text(text)
    (out / f"results-{args.users}-{started.strftime('%Y%m%dT%H%M%SZ')}.json").write_text(text)
    print(report(results))
    print("\n== markdown summary ==\n")
    print(markdown(results))
    print("\n== JSON summary ==\n")
    print(json.dumps(summary_json(results), default=str))
    print(f"\nwall time {results['wall_seconds']:.0f} s; results: {out / 'results.json'}; logs and raw wrk output: {logs}")
    return 1 if failed or results.get("interrupted") else 0


if __name__ == "__main__":
    sys.exit(main())
