#!/usr/bin/env python3
"""Soak load generator for presage-serve (Python standard library only).

Run through run.sh, which trains the registry, starts the server and stops
it again (see bench/soak/README.md):

    bench/soak/run.sh --smoke          # 1 minute
    bench/soak/run.sh                  # 20 minutes (idle machine!)

Two subcommands:

  load    mixed load against a running server for --seconds, then prints
          the table and writes OUT/results.json (exit 1 on any failure);
  finish  after run.sh stopped the server: adds how it stopped (exit code on
          SIGTERM, seconds, whether SIGKILL was needed) and the server log's
          warning/error counts to results.json, prints the verdict (exit 1
          on any failure, including those of `load`).

Load, all against 127.0.0.1 only, every loop bounded by the run's deadline
and every socket operation by a timeout:

  well-formed   WORKERS threads, closed loop on keep-alive connections, each
                paced at RATE requests/s (the next request goes when the
                previous answer has arrived and its slot has come; a late
                worker does not burst). Each picks from a fixed weighted mix:
                POST /predict/churn, ?explain=5, /predict/churn/batch (100
                rows), V2 infer in JSON and in Triton's binary mode,
                GET /healthz, GET /models/churn. Every answer is checked
                (status 200, body shape, n results, the binary framing); a
                connection is reopened after 1 s idle so the server's
                2 s idle/header timeout never races a request.
  malformed     one thread, a request every 0.5 s on a fresh connection,
                cycling through the classes of MALFORMED (each expects one
                4xx status and error code).
  slow clients  SLOWLORIS threads trickling header lines every 250 ms and
                never finishing them (expected: the server closes the
                connection about header_read_timeout_ms after the connect);
                one thread sending part of a body then stalling (expected:
                408 body_timeout after body_read_timeout_ms); one thread
                trickling a body one byte every 500 ms (expected: 408 too,
                since the README says a body "that has not arrived by then"
                is answered 408).
  scraper       with --scrape-every S only: GET /metrics every S seconds.
  swaps         every 10 s (--swap-every) PUT /models/churn/aliases/champion {"version": N},
                alternating 2, 1, 2, ... (v1 is the champion at start).
  RSS           VmRSS, threads and open fds of the server from /proc/PID every
                10 s; "start" is the sample after the warm-up, "end" one
                taken after the load stopped.

Failures (exit 1): any 5xx; a well-formed request dropped (reset or closed
without a complete answer, or timed out) or answered other than 200 with a
body of the expected shape; a hostile request with an outcome other than the
expected one; a swap not answered 200; a prediction whose version does not
follow the swaps; RSS growth beyond --rss-tolerance-mb; the server dying;
and (finish) the server not exiting 0 on SIGTERM within 15 s.
"""

import argparse
import bisect
import csv
import http.client
import json
import os
import platform
import random
import select
import signal
import socket
import struct
import sys
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DATA = REPO / "datasets/telco_churn/WA_Fn-UseC_-Telco-Customer-Churn.csv"
MODEL = "churn"
BATCH_ROWS = 100
V2_ROWS = 10
EXPLAIN = 5
MAX_BATCH_ROWS = 10_000  # the server's default max_batch_rows
MAX_BODY_BYTES = 1 << 20  # the server's default max_body_bytes
SWAP_EVERY_S = 10.0
RSS_EVERY_S = 10.0
IDLE_REOPEN_S = 1.0  # below the server's 2 s header/idle timeout
WELL_FORMED_TIMEOUT_S = 35.0  # above request_timeout_ms (30 s)

# Well-formed mix: (key, weight).
MIX = [
    ("predict", 40),
    ("predict_explain", 12),
    ("batch", 8),
    ("v2_json", 14),
    ("v2_binary", 14),
    ("healthz", 6),
    ("models", 6),
]
LABELS = {
    "predict": "POST /predict/churn",
    "predict_explain": "POST /predict/churn?explain=5",
    "batch": "POST /predict/churn/batch (100 rows)",
    "v2_json": "POST /v2/models/churn/infer (JSON)",
    "v2_binary": "POST /v2/models/churn/infer (binary)",
    "healthz": "GET /healthz",
    "models": "GET /models/churn",
    "metrics": "GET /metrics (scraper)",
    "swap": "PUT /models/churn/aliases/champion",
    "slowloris": "slowloris (headers never finished)",
    "slow_body_stalled": "slow body: half sent, then silence",
    "slow_body_trickle": "slow body: 1 byte every 500 ms",
}
WELL_FORMED = [k for k, _ in MIX] + ["metrics"]

# Malformed classes: key -> (label, expected status, expected error code).
MALFORMED = {
    "truncated_json": ("POST /predict/churn, truncated JSON", 400, "malformed_json"),
    "wrong_types": ("POST /predict/churn, string for tenure", 422, "wrong_type"),
    "v2_truncated_json": ("POST /v2 infer, truncated JSON", 400, "malformed_json"),
    "v2_wrong_datatype": ("POST /v2 infer, BYTES for tenure", 422, None),
    "v2_huge_shape": ("POST /v2 infer, shape [1e11], no data", 422, "batch_too_large"),
    "v2_bad_binary_header": ("POST /v2 infer, header length > body", 400, "invalid_binary_header"),
    "batch_too_many_rows": ("POST /predict/churn/batch, 10,001 rows", 422, "batch_too_large"),
    "body_too_large": ("POST /predict/churn/batch, body > 1 MiB", 413, "body_too_large"),
}
for _k, (_label, _s, _c) in MALFORMED.items():
    LABELS[_k] = _label
HOSTILE = list(MALFORMED) + ["slowloris", "slow_body_stalled", "slow_body_trickle"]
ORDER = WELL_FORMED + HOSTILE + ["swap"]


def log(message):
    print(f"[soak] {message}", file=sys.stderr, flush=True)


def now():
    return time.monotonic()


# ---------------------------------------------------------------- recording


class Stats:
    """Per class: statuses, latencies, outcomes, and a few examples of each
    unexpected outcome. Appends from many threads go through one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.statuses = defaultdict(Counter)
        self.latencies = defaultdict(list)
        self.unexpected = Counter()
        self.dropped = Counter()  # class -> count
        self.drop_kinds = defaultdict(Counter)
        self.examples = defaultdict(list)
        self.versions = []  # (t_start, t_end, version, class)
        self.swaps = []  # dicts

    def record(self, cls, status, latency_s, ok, detail=None, drop=None):
        with self.lock:
            self.statuses[cls][str(status) if status is not None else "none"] += 1
            self.latencies[cls].append(latency_s)
            if drop is not None:
                self.dropped[cls] += 1
                self.drop_kinds[cls][drop] += 1
            if not ok:
                self.unexpected[cls] += 1
            if (not ok or drop is not None) and detail is not None and len(self.examples[cls]) < 5:
                self.examples[cls].append(detail)


STATS = Stats()


def snippet(data, limit=400):
    if data is None:
        return None
    text = data[:limit].decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else str(data)[:limit]
    return text


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, int(round(q * len(sorted_values) + 0.5)) - 1))
    return sorted_values[rank]


# ---------------------------------------------------------------- requests


def read_rows():
    with open(DATA, newline="") as f:
        return list(csv.DictReader(f))


def features_of(row, inputs):
    """A CSV row as the server's features: numbers for FP64 inputs (blank as
    null), strings for BYTES inputs."""
    out = {}
    for name, datatype in inputs:
        value = row[name]
        if datatype == "BYTES":
            out[name] = value
        else:
            value = value.strip()
            out[name] = float(value) if value else None
            if out[name] is not None and out[name].is_integer():
                out[name] = int(out[name])
    return out


def v2_json_body(rows, inputs):
    tensors = []
    for name, datatype in inputs:
        data = [features_of(r, inputs)[name] for r in rows]
        tensors.append({"name": name, "shape": [len(rows)], "datatype": datatype, "data": data})
    return json.dumps({"id": "soak-json", "inputs": tensors}).encode()


def v2_binary_body(rows, inputs):
    """Triton's binary extension: JSON header, then each input's bytes in
    order (FP64 little-endian; BYTES as 4-byte LE length + bytes)."""
    tensors, blobs = [], []
    for name, datatype in inputs:
        if datatype == "BYTES":
            blob = b"".join(struct.pack("<I", len(r[name].encode())) + r[name].encode() for r in rows)
        else:
            values = [features_of(r, inputs)[name] for r in rows]
            blob = struct.pack(f"<{len(rows)}d", *[float("nan") if v is None else float(v) for v in values])
        tensors.append({"name": name, "shape": [len(rows)], "datatype": datatype,
                        "parameters": {"binary_data_size": len(blob)}})
        blobs.append(blob)
    header = json.dumps({"id": "soak-binary", "inputs": tensors,
                         "parameters": {"binary_data_output": True}}).encode()
    return header, header + b"".join(blobs)


class Bodies:
    """Every request body, built once from the Telco table and the model's
    V2 metadata."""

    def __init__(self, rows, inputs):
        self.inputs = inputs
        usable = [r for r in rows if r["TotalCharges"].strip()]
        self.singles = [json.dumps({"user_id": r["customerID"], "features": features_of(r, inputs)}).encode()
                        for r in rows[:500]]
        self.batch = json.dumps({"rows": [{"user_id": r["customerID"], "features": features_of(r, inputs)}
                                          for r in rows[:BATCH_ROWS]]}).encode()
        self.v2_json = [v2_json_body(usable[i:i + V2_ROWS], inputs) for i in range(0, 200, V2_ROWS)]
        self.v2_binary = [v2_binary_body(usable[i:i + V2_ROWS], inputs) for i in range(0, 200, V2_ROWS)]
        one = rows[1]
        # Malformed bodies.
        full = json.dumps({"user_id": "bad-1", "features": features_of(one, inputs)}).encode()
        self.truncated = full[: len(full) // 2]
        self.wrong_types = json.dumps({"user_id": "bad-2", "features": {**features_of(one, inputs), "tenure": "forty"}}).encode()
        self.v2_truncated = v2_json_body(usable[:V2_ROWS], inputs)[:120]
        self.v2_wrong_datatype = json.dumps({"inputs": [{"name": "tenure", "shape": [1], "datatype": "BYTES", "data": ["forty"]}]}).encode()
        self.v2_huge_shape = b'{"inputs":[{"name":"tenure","shape":[100000000000],"datatype":"FP64","data":[]}]}'
        self.v2_bad_binary = self.v2_binary[0][1][:200]
        self.too_many_rows = ("{\"rows\":[" + ",".join(['{"features":{"tenure":1}}'] * (MAX_BATCH_ROWS + 1)) + "]}").encode()
        assert len(self.too_many_rows) < MAX_BODY_BYTES
        row_json = json.dumps({"user_id": "big", "features": features_of(one, inputs)})
        copies = MAX_BODY_BYTES // len(row_json) + 50
        self.too_large = ("{\"rows\":[" + ",".join([row_json] * copies) + "]}").encode()
        assert len(self.too_large) > MAX_BODY_BYTES


JSON_HEADERS = {"Content-Type": "application/json"}


def request_spec(kind, bodies, i):
    """(method, path, body, headers) of well-formed request number i of a kind."""
    if kind == "predict":
        return "POST", f"/predict/{MODEL}", bodies.singles[i % len(bodies.singles)], JSON_HEADERS
    if kind == "predict_explain":
        return "POST", f"/predict/{MODEL}?explain={EXPLAIN}", bodies.singles[i % len(bodies.singles)], JSON_HEADERS
    if kind == "batch":
        return "POST", f"/predict/{MODEL}/batch", bodies.batch, JSON_HEADERS
    if kind == "v2_json":
        return "POST", f"/v2/models/{MODEL}/infer", bodies.v2_json[i % len(bodies.v2_json)], JSON_HEADERS
    if kind == "v2_binary":
        header, body = bodies.v2_binary[i % len(bodies.v2_binary)]
        return "POST", f"/v2/models/{MODEL}/infer", body, {
            "Content-Type": "application/octet-stream",
            "Inference-Header-Content-Length": str(len(header)),
        }
    if kind == "healthz":
        return "GET", "/healthz", None, {}
    if kind == "models":
        return "GET", f"/models/{MODEL}", None, {}
    if kind == "metrics":
        return "GET", "/metrics", None, {}
    raise ValueError(kind)


class BadAnswer(Exception):
    pass


def check_answer(kind, status, headers, data):
    """Checks a well-formed request's answer; returns the version that
    scored (None for routes without one). Raises BadAnswer."""
    if status != 200:
        raise BadAnswer(f"status {status}")
    if kind == "healthz":
        return None
    if kind == "metrics":
        if b"presage_requests_total" not in data:
            raise BadAnswer("no presage_requests_total in /metrics")
        return None
    if kind == "v2_binary":
        length = headers.get("inference-header-content-length")
        if length is None:
            raise BadAnswer("no Inference-Header-Content-Length in the answer")
        length = int(length)
        answer = json.loads(data[:length])
        rest = data[length:]
        outputs = {o["name"]: o for o in answer["outputs"]}
        sizes = [o["parameters"]["binary_data_size"] for o in answer["outputs"]]
        if sum(sizes) != len(rest):
            raise BadAnswer(f"binary sizes {sizes} but {len(rest)} bytes follow the JSON")
        offset = 0
        for o in answer["outputs"]:
            size = o["parameters"]["binary_data_size"]
            blob = rest[offset:offset + size]
            offset += size
            if o["name"] == "probability":
                if size != 8 * V2_ROWS:
                    raise BadAnswer(f"probability has {size} bytes, want {8 * V2_ROWS}")
                values = struct.unpack(f"<{V2_ROWS}d", blob)
                if not all(0.0 <= v <= 1.0 for v in values):
                    raise BadAnswer(f"probabilities out of [0, 1]: {values}")
            elif o["name"] == "segment":
                n, p = 0, 0
                while p < len(blob):
                    (k,) = struct.unpack_from("<I", blob, p)
                    p += 4 + k
                    n += 1
                if n != V2_ROWS or p != len(blob):
                    raise BadAnswer(f"segment has {n} BYTES elements, want {V2_ROWS}")
        if set(outputs) != {"probability", "segment"}:
            raise BadAnswer(f"outputs {sorted(outputs)}")
        return int(answer["model_version"])
    answer = json.loads(data)
    if kind == "models":
        if answer.get("name") != MODEL:
            raise BadAnswer("GET /models/churn without the model's name")
        return None
    if kind == "v2_json":
        outputs = {o["name"]: o for o in answer["outputs"]}
        p = outputs["probability"]["data"]
        if len(p) != V2_ROWS or not all(0.0 <= v <= 1.0 for v in p) or len(outputs["segment"]["data"]) != V2_ROWS:
            raise BadAnswer("V2 outputs of the wrong length or range")
        return int(answer["model_version"])
    if kind == "batch":
        results = answer["results"]
        if len(results) != BATCH_ROWS or not all(0.0 <= r["probability"] <= 1.0 for r in results):
            raise BadAnswer(f"{len(results)} batch results")
        return int(answer["version"])
    # predict, predict_explain
    if not 0.0 <= answer["probability"] <= 1.0 or not answer.get("segment"):
        raise BadAnswer("no probability or segment")
    if kind == "predict_explain" and len(answer.get("reasons") or []) != EXPLAIN:
        raise BadAnswer(f"{len(answer.get('reasons') or [])} reasons, want {EXPLAIN}")
    return int(answer["version"])


def raw_exchange(addr, chunks, timeout=10.0, pause=0.0, stop=None):
    """Sends `chunks` on a fresh connection (sleeping `pause` seconds between
    them, stopping early once `stop` is set), then reads until the server
    closes. Returns (status or None,
    headers dict, body bytes, error string or None, seconds)."""
    started = now()
    received = b""
    error = None
    sock = None
    try:
        sock = socket.create_connection(addr, timeout=timeout)
        sock.settimeout(timeout)
        for i, chunk in enumerate(chunks):
            if i and pause:
                # Stop sending early if the server already answered or closed.
                readable, _, _ = select.select([sock], [], [], pause)
                if readable:
                    break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError) as e:
                error = f"send: {type(e).__name__}"
                break
            if stop is not None and stop.is_set():
                break  # the run is over: stop trickling, read the answer
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                error = (error + "; " if error else "") + "recv: ConnectionResetError"
                break
            if not data:
                break
            received += data
    except socket.timeout:
        error = (error + "; " if error else "") + "timeout"
    except OSError as e:
        error = (error + "; " if error else "") + f"{type(e).__name__}: {e}"
    finally:
        if sock is not None:
            sock.close()
    elapsed = now() - started
    status, headers, body = parse_response(received)
    return status, headers, body, error, elapsed


def parse_response(received):
    if not received.startswith(b"HTTP/"):
        return None, {}, received
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return None, {}, received
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def http_request(host, port, method, path, body, headers, timeout=10.0):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


# ---------------------------------------------------------------- load threads


class Run:
    def __init__(self, args, addr, bodies, token):
        self.args = args
        self.addr = addr
        self.bodies = bodies
        self.token = token
        self.t0 = now()
        self.deadline = self.t0 + args.seconds
        self.stop = threading.Event()
        self.skip = set(args.skip)

    def running(self, needed=0.0):
        return not self.stop.is_set() and now() + needed < self.deadline


def well_formed_worker(run, worker):
    rng = random.Random(run.args.seed * 1000 + worker)
    kinds = [k for k, w in MIX if k not in run.skip for _ in range(w)]
    interval = 1.0 / run.args.rate if run.args.rate > 0 else 0.0
    host, port = run.addr
    conn, last_used, reused = None, 0.0, False
    next_at = now() + rng.random() * interval
    i = 0
    while run.running():
        if interval:
            delay = next_at - now()
            if delay > 0:
                run.stop.wait(delay)
                if not run.running():
                    break
            next_at = max(next_at + interval, now())
        kind = rng.choice(kinds)
        i += 1
        method, path, body, headers = request_spec(kind, run.bodies, i)
        if conn is not None and now() - last_used > IDLE_REOPEN_S:
            conn.close()
            conn = None
        if conn is None:
            conn = http.client.HTTPConnection(host, port, timeout=WELL_FORMED_TIMEOUT_S)
            reused = False
        idle = now() - last_used if reused else 0.0
        started = now()
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            status = response.status
            rheaders = {k.lower(): v for k, v in response.getheaders()}
            will_close = response.will_close
        except (OSError, http.client.HTTPException) as e:
            elapsed = now() - started
            STATS.record(kind, None, elapsed, ok=False, drop=type(e).__name__, detail={
                "t": round(started - run.t0, 3), "request": f"{method} {path}", "error": repr(e),
                "connection_reused": reused, "idle_before_s": round(idle, 3),
                "after_ms": round(elapsed * 1000, 1)})
            conn.close()
            conn = None
            last_used = now()
            continue
        ended = now()
        last_used = ended
        reused = True
        if will_close:
            conn.close()
            conn = None
        try:
            version = check_answer(kind, status, rheaders, data)
            ok = True
        except (BadAnswer, ValueError, KeyError, TypeError, struct.error) as e:
            version, ok = None, False
            detail = {"t": round(started - run.t0, 3), "request": f"{method} {path}", "status": status,
                      "problem": f"{type(e).__name__}: {e}", "body": snippet(data)}
        STATS.record(kind, status, ended - started, ok=ok, detail=None if ok else detail)
        if version is not None:
            STATS.versions.append((started - run.t0, ended - run.t0, version, kind))
    if conn is not None:
        conn.close()


def malformed_chunks(key, bodies, host):
    def post(path, body, content_type="application/json", extra=""):
        head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n{extra}Connection: close\r\n\r\n").encode()
        return [head + body]

    infer = f"/v2/models/{MODEL}/infer"
    if key == "truncated_json":
        return post(f"/predict/{MODEL}", bodies.truncated)
    if key == "wrong_types":
        return post(f"/predict/{MODEL}", bodies.wrong_types)
    if key == "v2_truncated_json":
        return post(infer, bodies.v2_truncated)
    if key == "v2_wrong_datatype":
        return post(infer, bodies.v2_wrong_datatype)
    if key == "v2_huge_shape":
        return post(infer, bodies.v2_huge_shape)
    if key == "v2_bad_binary_header":
        return post(infer, bodies.v2_bad_binary, "application/octet-stream",
                    "Inference-Header-Content-Length: 999999\r\n")
    if key == "batch_too_many_rows":
        return post(f"/predict/{MODEL}/batch", bodies.too_many_rows)
    if key == "body_too_large":
        return post(f"/predict/{MODEL}/batch", bodies.too_large)
    raise ValueError(key)


def error_code(body):
    """The error code of an error body: REST's {"error": {"code", ...}} or
    the V2 routes' protocol shape {"error": "<message>", "code", "field"}."""
    try:
        answer = json.loads(body)
        error = answer["error"]
        return error["code"] if isinstance(error, dict) else answer["code"]
    except (ValueError, KeyError, TypeError):
        return None


def malformed_worker(run):
    keys = [k for k in MALFORMED if k not in run.skip]
    if not keys:
        return
    host = f"{run.addr[0]}:{run.addr[1]}"
    i = 0
    while run.running(needed=1.0):
        key = keys[i % len(keys)]
        i += 1
        status, headers, body, error, elapsed = raw_exchange(run.addr, malformed_chunks(key, run.bodies, host), timeout=15.0)
        _, want_status, want_code = MALFORMED[key]
        code = error_code(body)
        ok = status == want_status and (want_code is None or code == want_code)
        STATS.record(key, status, elapsed, ok=ok, detail={
            "t": round(now() - run.t0, 3), "status": status, "code": code, "error": error,
            "body": snippet(body), "want": f"{want_status} {want_code or ''}".strip()})
        run.stop.wait(0.5)


def slowloris_worker(run, n):
    host = f"{run.addr[0]}:{run.addr[1]}"
    timeout_s = run.args.header_timeout_ms / 1000
    while run.running(needed=timeout_s + 3.0):
        started = now()
        closed, received, error = False, b"", None
        sock = None
        try:
            sock = socket.create_connection(run.addr, timeout=5.0)
            sock.sendall(f"POST /predict/{MODEL} HTTP/1.1\r\nHost: {host}\r\n".encode())
            line = 0
            give_up = started + timeout_s + 8.0
            while now() < give_up and not run.stop.is_set():
                readable, _, _ = select.select([sock], [], [], 0.25)
                if readable:
                    try:
                        data = sock.recv(65536)
                    except ConnectionResetError:
                        closed, error = True, "reset"
                        break
                    if not data:
                        closed = True
                        break
                    received += data
                    continue
                line += 1
                try:
                    sock.sendall(f"X-Slow-{line}: {'a' * 8}\r\n".encode())
                except (BrokenPipeError, ConnectionResetError) as e:
                    closed, error = True, type(e).__name__
                    break
        except OSError as e:
            error = f"{type(e).__name__}: {e}"
        finally:
            if sock is not None:
                sock.close()
        elapsed = now() - started
        status, _, body = parse_response(received)
        # Closed by the server within the timeout plus scheduling slack, and
        # never a 5xx if it answered anything.
        ok = closed and timeout_s * 0.9 <= elapsed <= timeout_s + 3.0 and (status is None or status < 500)
        STATS.record("slowloris", status if status is not None else ("closed" if closed else "open"), elapsed, ok=ok,
                     detail={"t": round(started - run.t0, 3), "closed": closed, "after_s": round(elapsed, 3),
                             "error": error, "received": snippet(received),
                             "want": f"closed after about {timeout_s:g} s"})
        run.stop.wait(0.5)


def slow_body_worker(run, trickle):
    cls = "slow_body_trickle" if trickle else "slow_body_stalled"
    host = f"{run.addr[0]}:{run.addr[1]}"
    body_timeout = run.args.body_timeout_ms / 1000
    # A trickled body is not finished before the server's request_timeout_ms
    # (30 s), so each attempt may take that long.
    needed = 35.0 if trickle else body_timeout + 3.0
    full = b'{"user_id": "slow", "features": {"tenure": 3}}'
    length = 200
    full = full + b" " * (length - len(full))
    head = (f"POST /predict/{MODEL} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\nConnection: close\r\n\r\n").encode()
    while run.running(needed=needed):
        if trickle:
            chunks = [head] + [full[i:i + 1] for i in range(length - 1)]  # never the last byte
            status, _, body, error, elapsed = raw_exchange(run.addr, chunks, timeout=40.0, pause=0.5, stop=run.stop)
        else:
            chunks = [head + full[: length // 2]]
            status, _, body, error, elapsed = raw_exchange(run.addr, chunks, timeout=15.0)
        code = error_code(body)
        ok = status == 408 and code == "body_timeout" and elapsed <= body_timeout + 3.0
        STATS.record(cls, status, elapsed, ok=ok, detail={
            "t": round(now() - run.t0 - elapsed, 3), "status": status, "code": code, "error": error,
            "after_s": round(elapsed, 3), "body": snippet(body),
            "want": f"408 body_timeout within about {body_timeout:g} s of the last byte"
                    + (" (README: a body that has not arrived by then)" if trickle else "")})
        run.stop.wait(1.0)


def scrape_worker(run):
    """A Prometheus stand-in: GET /metrics every --scrape-every seconds."""
    host, port = run.addr
    every = run.args.scrape_every
    next_at = run.t0 + every
    while not run.stop.wait(max(0.0, next_at - now())) and run.running():
        next_at += every
        started = now()
        try:
            status, headers, data = http_request(host, port, "GET", "/metrics", None, {}, timeout=WELL_FORMED_TIMEOUT_S)
        except (OSError, http.client.HTTPException) as e:
            STATS.record("metrics", None, now() - started, ok=False, drop=type(e).__name__,
                         detail={"t": round(started - run.t0, 3), "request": "GET /metrics", "error": repr(e)})
            continue
        elapsed = now() - started
        try:
            check_answer("metrics", status, headers, data)
            STATS.record("metrics", status, elapsed, ok=True)
        except BadAnswer as e:
            STATS.record("metrics", status, elapsed, ok=False, detail={
                "t": round(started - run.t0, 3), "request": "GET /metrics", "status": status,
                "problem": str(e), "body": snippet(data)})


def swap_worker(run):
    host, port = run.addr
    target = 2
    every = run.args.swap_every
    next_at = run.t0 + every
    while True:
        if run.stop.wait(max(0.0, next_at - now())):
            break
        if not run.running(needed=2.0):
            break
        next_at += every
        body = json.dumps({"version": target}).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {run.token}"}
        t_req = now()
        try:
            status, _, data = http_request(host, port, "PUT", f"/models/{MODEL}/aliases/champion", body, headers, timeout=30.0)
            error = None
        except (OSError, http.client.HTTPException) as e:
            status, data, error = None, b"", repr(e)
        t_done = now()
        ok = status == 200
        STATS.record("swap", status, t_done - t_req, ok=ok, drop=None if error is None else error.split("(")[0],
                     detail={"t": round(t_req - run.t0, 3), "status": status, "error": error, "body": snippet(data)})
        STATS.swaps.append({"t_request": t_req - run.t0, "t_done": t_done - run.t0, "version": target, "ok": ok})
        if ok:
            target = 1 if target == 2 else 2


def proc_sample(pid):
    try:
        fields = {}
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if "VmRSS" not in fields or fields.get("State", "").startswith("Z"):
            return None
        return {
            "rss_kib": int(fields["VmRSS"].split()[0]),
            "hwm_kib": int(fields["VmHWM"].split()[0]),
            "threads": int(fields["Threads"]),
            "fds": len(os.listdir(f"/proc/{pid}/fd")),
        }
    except (OSError, ValueError, KeyError):
        return None


class RssSampler:
    def __init__(self, run, pid):
        self.run, self.pid = run, pid
        self.samples = []
        self.start = None
        self.died_at = None

    def take(self, label=None):
        sample = proc_sample(self.pid)
        t = round(now() - self.run.t0, 1)
        if sample is None:
            if self.died_at is None:
                self.died_at = t
            return None
        sample["t"] = t
        if label:
            sample["label"] = label
        self.samples.append(sample)
        return sample

    def loop(self):
        # A sample every RSS_EVERY_S from the start; the first one at or
        # after the warm-up is "start".
        next_at = self.run.t0
        while not self.run.stop.is_set() and now() < self.run.deadline:
            if now() >= next_at:
                warm = self.start is None and now() - self.run.t0 >= self.run.args.warmup - 0.05
                sample = self.take("start (after warm-up)" if warm else None)
                if warm and sample is not None:
                    self.start = sample
                next_at += RSS_EVERY_S
            self.run.stop.wait(max(0.05, min(next_at, self.run.deadline) - now()))


# ---------------------------------------------------------------- report


def summarize_class(cls):
    lat = sorted(STATS.latencies.get(cls, []))
    return {
        "label": LABELS.get(cls, cls),
        "requests": len(lat),
        "statuses": dict(sorted(STATS.statuses.get(cls, Counter()).items())),
        "p50_ms": None if not lat else round(percentile(lat, 0.50) * 1000, 3),
        "p99_ms": None if not lat else round(percentile(lat, 0.99) * 1000, 3),
        "max_ms": None if not lat else round(lat[-1] * 1000, 3),
        "unexpected": STATS.unexpected.get(cls, 0),
        "dropped": STATS.dropped.get(cls, 0),
        "drop_kinds": dict(STATS.drop_kinds.get(cls, Counter())),
        "examples": STATS.examples.get(cls, []),
    }


def version_check(swaps, versions, initial):
    """Requests entirely inside a settled interval (after a swap's answer,
    before the next swap's request) must carry that interval's version;
    requests overlapping a swap may carry either side's."""
    settled = []  # (from, to, version)
    start, current = 0.0, initial
    for s in swaps:
        if not s["ok"]:
            continue
        settled.append((start, s["t_request"], current))
        start, current = s["t_done"], s["version"]
    settled.append((start, float("inf"), current))
    starts = [a for a, _, _ in settled]
    by_version = Counter()
    checked = transition = wrong = 0
    mismatches = []
    for t_start, t_end, version, kind in versions:
        by_version[version] += 1
        j = bisect.bisect_right(starts, t_start) - 1
        interval = settled[j] if j >= 0 and t_end <= settled[j][1] else None
        if interval is None:
            transition += 1
            continue
        checked += 1
        if version != interval[2]:
            wrong += 1
            if len(mismatches) < 10:
                mismatches.append({"route": LABELS[kind], "t_start": round(t_start, 3), "t_end": round(t_end, 3),
                                   "version": version, "expected": interval[2]})
    return {
        "initial_champion": initial,
        "responses_with_version": len(versions),
        "by_version": {str(k): v for k, v in sorted(by_version.items())},
        "checked_in_settled_intervals": checked,
        "overlapping_a_swap": transition,
        "mismatches": wrong,
        "mismatch_examples": mismatches,
    }


def fmt_ms(v):
    return "-" if v is None else (f"{v:.2f}" if v < 100 else f"{v:.0f}")


def fmt_statuses(statuses):
    return " ".join(f"{k}:{v}" for k, v in statuses.items()) or "-"


def print_table(classes):
    header = ["class", "n", "statuses", "p50 ms", "p99 ms", "max ms", "unexp", "dropped"]
    rows = []
    for group, keys in (("well-formed", WELL_FORMED), ("hostile", HOSTILE), ("admin", ["swap"])):
        rows.append((f"-- {group}",) + ("",) * 7)
        for k in keys:
            c = classes.get(k)
            if c is None:
                continue
            rows.append((c["label"], str(c["requests"]), fmt_statuses(c["statuses"]), fmt_ms(c["p50_ms"]),
                         fmt_ms(c["p99_ms"]), fmt_ms(c["max_ms"]), str(c["unexpected"]), str(c["dropped"])))
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]
    line = "  ".join(h.ljust(w) if i < 3 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths)))
    print(line)
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(v.ljust(w) if i < 3 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))))


def server_5xx_from_metrics(host, port):
    """Sums presage_requests_total by status from GET /metrics."""
    try:
        status, _, data = http_request(host, port, "GET", "/metrics", None, {}, timeout=10.0)
    except (OSError, http.client.HTTPException) as e:
        return {"error": repr(e)}
    if status != 200:
        return {"error": f"status {status}"}
    by_status = Counter()
    for line in data.decode().splitlines():
        if line.startswith("presage_requests_total{"):
            labels, _, value = line.rpartition(" ")
            status_label = labels.split('status="', 1)[1].split('"', 1)[0] if 'status="' in labels else "?"
            by_status[status_label] += int(float(value))
    return {"requests_by_status": dict(sorted(by_status.items())),
            "5xx": sum(v for k, v in by_status.items() if k.startswith("5"))}


def machine_info():
    info = {"cores": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()}
    try:
        info["loadavg"] = open("/proc/loadavg").read().split()[:3]
    except OSError:
        pass
    return info


def load(args):
    out = Path(args.out)
    host, _, port = args.addr.rpartition(":")
    addr = (host, int(port))
    if host != "127.0.0.1":
        raise SystemExit("soak.py only loads 127.0.0.1")
    token = os.environ.get("PRESAGE_ADMIN_TOKEN", "")
    if len(token) < 16:
        raise SystemExit("PRESAGE_ADMIN_TOKEN (>= 16 characters) must be set")

    # Ready?
    ready_by = now() + 60
    while True:
        try:
            status, _, _ = http_request(host, addr[1], "GET", "/readyz", None, {}, timeout=5.0)
            if status == 200:
                break
        except (OSError, http.client.HTTPException):
            pass
        if now() > ready_by:
            raise SystemExit("the server did not become ready within 60 s")
        time.sleep(0.2)
    status, _, data = http_request(host, addr[1], "GET", f"/v2/models/{MODEL}", None, {})
    if status != 200:
        raise SystemExit(f"GET /v2/models/{MODEL}: {status} {snippet(data)}")
    meta = json.loads(data)
    inputs = [(i["name"], i["datatype"]) for i in meta["inputs"]]
    initial = int(meta["parameters"]["champion"])
    log(f"model inputs: {len(inputs)} ({sum(d == 'BYTES' for _, d in inputs)} BYTES, "
        f"{sum(d != 'BYTES' for _, d in inputs)} FP64); champion v{initial}; versions {meta['versions']}")
    bodies = Bodies(read_rows(), inputs)

    # One of each well-formed request first: a broken harness fails here, fast.
    for kind in WELL_FORMED:
        method, path, body, headers = request_spec(kind, bodies, 0)
        status, rheaders, data = http_request(host, addr[1], method, path, body, headers)
        try:
            check_answer(kind, status, rheaders, data)
        except (BadAnswer, ValueError, KeyError, TypeError, struct.error) as e:
            raise SystemExit(f"pre-check {method} {path}: {e}; status {status}; body {snippet(data)}")
    log("pre-check: every well-formed request answered as expected")

    run = Run(args, addr, bodies, token)
    sampler = RssSampler(run, args.pid)
    threads = [threading.Thread(target=sampler.loop, name="rss", daemon=True)]
    threads += [threading.Thread(target=well_formed_worker, args=(run, w), name=f"worker-{w}", daemon=True)
                for w in range(args.workers)]
    threads.append(threading.Thread(target=malformed_worker, args=(run,), name="malformed", daemon=True))
    if "slowloris" not in run.skip:
        threads += [threading.Thread(target=slowloris_worker, args=(run, n), name=f"slowloris-{n}", daemon=True)
                    for n in range(args.slowloris)]
    if "slow_body_stalled" not in run.skip:
        threads.append(threading.Thread(target=slow_body_worker, args=(run, False), name="slow-body", daemon=True))
    if "slow_body_trickle" not in run.skip:
        threads.append(threading.Thread(target=slow_body_worker, args=(run, True), name="slow-trickle", daemon=True))
    if args.scrape_every > 0:
        threads.append(threading.Thread(target=scrape_worker, args=(run,), name="scrape", daemon=True))
    if "swap" not in run.skip:
        threads.append(threading.Thread(target=swap_worker, args=(run,), name="swap", daemon=True))
    load_start = machine_info()
    interrupted = False
    log(f"load: {args.seconds:g} s, {args.workers} workers at {args.rate:g} req/s each, warm-up {args.warmup:g} s")
    for t in threads:
        t.start()
    try:
        while now() < run.deadline:
            time.sleep(min(5.0, max(0.0, run.deadline - now())))
            if sampler.died_at is not None:
                log(f"the server is gone (at {sampler.died_at} s); stopping the load")
                break
            elapsed = now() - run.t0
            if int(elapsed) % 30 < 5:
                total = sum(len(v) for v in STATS.latencies.values())
                log(f"{elapsed:5.0f} s: {total} requests")
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted")
    run.stop.set()
    # Every thread's operations are bounded by socket timeouts.
    join_by = now() + 45
    for t in threads:
        t.join(timeout=max(0.1, join_by - now()))
    stuck = [t.name for t in threads if t.is_alive()]
    end_sample = sampler.take("end (load stopped)")
    load_seconds = now() - run.t0
    metrics = server_5xx_from_metrics(host, addr[1]) if sampler.died_at is None else {"error": "server gone"}

    classes = {k: summarize_class(k) for k in ORDER if k in STATS.latencies}
    total_5xx = sum(v for c in classes.values() for s, v in c["statuses"].items() if s.isdigit() and int(s) >= 500)
    well_formed_dropped = sum(classes[k]["dropped"] for k in WELL_FORMED if k in classes)
    well_formed_unexpected = sum(classes[k]["unexpected"] - classes[k]["dropped"] for k in WELL_FORMED if k in classes)
    hostile_unexpected = sum(classes[k]["unexpected"] for k in HOSTILE if k in classes)
    swaps_ok = sum(1 for s in STATS.swaps if s["ok"])
    versions = version_check(sorted(STATS.swaps, key=lambda s: s["t_request"]), STATS.versions, initial)
    start = sampler.start
    rss = {
        "samples": sampler.samples,
        "start_kib": start["rss_kib"] if start else None,
        "end_kib": end_sample["rss_kib"] if end_sample else None,
        "max_kib": max((s["rss_kib"] for s in sampler.samples), default=None),
        "tolerance_mib": args.rss_tolerance_mb,
    }
    if start and end_sample:
        rss["growth_mib"] = round((end_sample["rss_kib"] - start["rss_kib"]) / 1024, 2)
        rss["flat"] = rss["growth_mib"] <= args.rss_tolerance_mb
        rss["threads_start_end"] = [start["threads"], end_sample["threads"]]
        rss["fds_start_end"] = [start["fds"], end_sample["fds"]]
    else:
        rss["growth_mib"], rss["flat"] = None, False

    failures = []
    if total_5xx:
        failures.append(f"{total_5xx} responses with a 5xx status")
    if well_formed_dropped:
        failures.append(f"{well_formed_dropped} well-formed requests dropped (no complete answer)")
    if well_formed_unexpected:
        failures.append(f"{well_formed_unexpected} well-formed requests answered other than 200 with a valid body")
    if hostile_unexpected:
        bad = ", ".join(f"{k} {classes[k]['unexpected']}" for k in HOSTILE if k in classes and classes[k]["unexpected"])
        failures.append(f"hostile requests with an unexpected outcome: {bad}")
    failed_swaps = len(STATS.swaps) - swaps_ok
    if failed_swaps:
        failures.append(f"{failed_swaps} champion swaps not answered 200")
    if "swap" not in run.skip and swaps_ok == 0 and args.seconds >= 2 * args.swap_every:
        failures.append("no champion swap happened")
    if versions["mismatches"]:
        failures.append(f"{versions['mismatches']} predictions whose version did not follow the swaps")
    if not rss["flat"]:
        failures.append(f"server RSS grew {rss['growth_mib']} MiB from the start (after warm-up) to the end "
                        f"(tolerance {args.rss_tolerance_mb:g} MiB)" if rss["growth_mib"] is not None
                        else "no RSS start/end sample")
    if sampler.died_at is not None:
        failures.append(f"the server process was gone at {sampler.died_at} s")
    if interrupted:
        failures.append(f"the run was interrupted after {load_seconds:.0f} of {args.seconds:g} s")
    if stuck:
        failures.append(f"load threads still running after the deadline: {stuck}")
    if isinstance(metrics.get("5xx"), int) and metrics["5xx"]:
        failures.append(f"the server's own metrics count {metrics['5xx']} 5xx responses")

    results = {
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": {
            "seconds": args.seconds, "warmup_s": args.warmup, "workers": args.workers,
            "rate_per_worker": args.rate, "slowloris_connections": args.slowloris, "skip": sorted(run.skip),
            "header_read_timeout_ms": args.header_timeout_ms, "body_read_timeout_ms": args.body_timeout_ms,
            "mix": dict(MIX), "swap_every_s": args.swap_every, "scrape_every_s": args.scrape_every, "rss_every_s": RSS_EVERY_S, "seed": args.seed,
        },
        "server": {"addr": args.addr, "pid": args.pid},
        "machine_at_start": load_start,
        "machine_at_end": machine_info(),
        "load_seconds": round(load_seconds, 1),
        "classes": classes,
        "totals": {
            "requests": sum(c["requests"] for c in classes.values()),
            "well_formed_requests": sum(classes[k]["requests"] for k in WELL_FORMED if k in classes),
            "hostile_requests": sum(classes[k]["requests"] for k in HOSTILE if k in classes),
            "5xx": total_5xx,
            "well_formed_dropped": well_formed_dropped,
            "well_formed_unexpected": well_formed_unexpected,
            "hostile_unexpected": hostile_unexpected,
        },
        "server_metrics": metrics,
        "swaps": {"done": swaps_ok, "failed": failed_swaps, "list": STATS.swaps},
        "versions": versions,
        "rss": rss,
        "load_failures": failures,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    print()
    print(f"presage-serve soak: {load_seconds:.0f} s of load, {results['totals']['requests']} requests "
          f"({results['totals']['well_formed_requests']} well-formed, {results['totals']['hostile_requests']} hostile), "
          f"{args.workers} workers x {args.rate:g} req/s")
    print()
    print_table(classes)
    print()
    print(f"5xx responses: {total_5xx} (server's /metrics: {metrics.get('5xx', metrics.get('error'))})")
    print(f"dropped well-formed connections: {well_formed_dropped}")
    print(f"champion swaps: {swaps_ok} done, {failed_swaps} failed; versions seen {versions['by_version']}; "
          f"{versions['checked_in_settled_intervals']} checked against the swaps, "
          f"{versions['overlapping_a_swap']} overlapping one, {versions['mismatches']} mismatched")
    if start and end_sample:
        print(f"server RSS: start {start['rss_kib'] / 1024:.1f} MiB (t={start['t']:g} s, after warm-up), "
              f"max {rss['max_kib'] / 1024:.1f} MiB, end {end_sample['rss_kib'] / 1024:.1f} MiB: "
              f"{rss['growth_mib']:+.1f} MiB, {'flat' if rss['flat'] else 'GREW'} (tolerance {args.rss_tolerance_mb:g} MiB); "
              f"threads {start['threads']} -> {end_sample['threads']}, fds {start['fds']} -> {end_sample['fds']}")
        print("RSS samples (MiB): " + " ".join(f"{s['t']:g}s={s['rss_kib'] / 1024:.1f}" for s in sampler.samples))
    for f in failures:
        print(f"FAIL: {f}")
    for k in ORDER:
        c = classes.get(k)
        if c and c["examples"]:
            print(f"examples of {c['label']}:")
            for e in c["examples"][:3]:
                print("   ", json.dumps(e))
    print(f"results: {out / 'results.json'}")
    return 1 if failures else 0


def finish(args):
    out = Path(args.out)
    path = out / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {"load_failures": ["the load step wrote no results"]}
    shutdown = {"exit_code": args.exit_code, "seconds": args.seconds, "sigkill": bool(args.killed)}
    levels = Counter()
    messages = Counter()
    log_path = Path(args.server_log) if args.server_log else None
    if log_path and log_path.exists():
        for line in log_path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                levels["unparsed"] += 1
                continue
            level = entry.get("level", "?")
            levels[level] += 1
            if level in ("WARN", "ERROR"):
                messages[f"{level} {entry.get('message', '')}"] += 1
    shutdown["server_log_levels"] = dict(levels)
    shutdown["server_log_warnings"] = dict(messages.most_common(20))
    failures = list(results.get("load_failures", []))
    if args.exit_code != 0 or args.killed:
        failures.append(f"the server did not exit 0 on SIGTERM (exit code {args.exit_code}"
                        f"{', needed SIGKILL' if args.killed else ''})")
    if args.load_exit not in (0, 1):
        failures.append(f"the load generator failed (exit code {args.load_exit}); see above")
    results["shutdown"] = shutdown
    results["failures"] = failures
    results["verdict"] = "FAIL" if failures else "PASS"
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"SIGTERM: server exited {args.exit_code} after {args.seconds:.1f} s"
          f"{' (SIGKILL needed)' if args.killed else ''}; server log lines by level: {dict(levels)}")
    for m, n in messages.most_common(5):
        print(f"  server log: {n} x {m}")
    print(f"verdict: {results['verdict']}" + ("" if not failures else " (" + "; ".join(failures) + ")"))
    return 1 if failures else 0


def on_sigterm(_signum, _frame):
    raise KeyboardInterrupt  # run.sh forwards SIGTERM/SIGINT: stop the load, still report


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    parser = argparse.ArgumentParser(description="presage-serve soak load generator (see run.sh)")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("load")
    p.add_argument("--addr", required=True, help="127.0.0.1:PORT")
    p.add_argument("--pid", type=int, required=True, help="server process id (for /proc/PID/status)")
    p.add_argument("--out", required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--warmup", type=float, default=60.0, help="seconds before the RSS start sample")
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--rate", type=float, default=40.0, help="requests/s per well-formed worker (0: unpaced)")
    p.add_argument("--slowloris", type=int, default=2, help="concurrent slowloris connections")
    p.add_argument("--skip", default="", help="comma-separated classes to leave out")
    p.add_argument("--rss-tolerance-mb", type=float, default=8.0)
    p.add_argument("--header-timeout-ms", type=int, default=2000)
    p.add_argument("--body-timeout-ms", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--scrape-every", type=float, default=0.0,
                   help="GET /metrics every this many seconds, as Prometheus would (0: never during the load)")
    p.add_argument("--swap-every", type=float, default=SWAP_EVERY_S, help="seconds between champion swaps")
    f = sub.add_parser("finish")
    f.add_argument("--out", required=True)
    f.add_argument("--exit-code", type=int, required=True)
    f.add_argument("--seconds", type=float, required=True)
    f.add_argument("--killed", type=int, default=0)
    f.add_argument("--load-exit", type=int, default=0)
    f.add_argument("--server-log")
    args = parser.parse_args()
    if args.command == "load":
        args.skip = [s.strip() for s in args.skip.split(",") if s.strip()]
        unknown = [s for s in args.skip if s not in ORDER]
        if unknown:
            parser.error(f"--skip: unknown classes {unknown}; known: {', '.join(ORDER)}")
        args.warmup = min(args.warmup, args.seconds / 2)
        return load(args)
    return finish(args)


if __name__ == "__main__":
    sys.exit(main())
