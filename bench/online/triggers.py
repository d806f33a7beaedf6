"""Trigger latency: from an ingest request's start to the webhook receiving
the message it fired, at a paced event rate.

    python3 bench/online/triggers.py [--rate 10000] [--seconds 10]

Standard library only. It trains the adoption model of the shipped extract
(presage-train from $CARGO_TARGET_DIR/release, default
/root/.cache/presage-target/release), measures on a probe server how the
engaged first hours of a fresh user move its probability, and writes a
threshold policy whose `high` band starts half way, with a segment_change
trigger to `high`. Then presage-serve runs with [online] and [triggers]
(webhook: an asyncio receiver in this process), every user is created
(POST /users, signup three hours ago), and the timed phase sends each
user's 12 engaged events in one request (10 users per request, 4
connections, paced to --rate events/s). Each user's request fires exactly
one message; its latency is the time from the start of that request to the
message's arrival at the receiver (both clocks are this process's
perf_counter). The ingest answer comes only once the events, and the
message, are durable, so the latency includes two fsyncs, the scoring
before and after, and the delivery.

Prints a JSON line: events/s achieved, messages expected and received,
latency p50/p99/max in ms.
"""

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BIN = Path(os.environ.get("CARGO_TARGET_DIR", "/root/.cache/presage-target")) / "release"
TOKEN = "trigger-bench-admin-token"
SECRET = "trigger-bench-webhook-secret"
EVENTS = ["session_start", "profile_completed", "project_created", "feature_reports",
          "feature_dashboards", "teammate_invited", "integration_connected", "feature_export",
          "onboarding_completed", "session_start", "feature_api", "feature_sharing"]


def ts(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def engaged(user, signup):
    return [{"user_id": user, "event": name, "occurred_at": ts(signup + timedelta(minutes=5 * (i + 1))),
             "event_id": f"{user}-{i}"} for i, name in enumerate(EVENTS)]


async def http(host, port, method, path, body=None):
    reader, writer = await asyncio.open_connection(host, port)
    data = b"" if body is None else json.dumps(body).encode()
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                 f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n"
                 .encode() + data)
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    return status, (json.loads(rest) if rest.strip() else None)


class Server:
    def __init__(self, work, config):
        env = dict(os.environ, PRESAGE_ADMIN_TOKEN=TOKEN, PRESAGE_LOG="error")
        self.proc = subprocess.Popen([str(BIN / "presage-serve"), "--registry", str(work / "registry"),
                                      "--config", str(config), "--listen", "127.0.0.1:0"],
                                     stdout=subprocess.PIPE, stderr=open(work / "serve.log", "ab"), env=env)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening on http://"):
            raise SystemExit(f"presage-serve did not start: {line}{(work / 'serve.log').read_text()}")
        self.host, port = line.strip().removeprefix("listening on http://").rsplit(":", 1)
        self.port = int(port)

    async def ready(self):
        for _ in range(500):
            try:
                if (await http(self.host, self.port, "GET", "/readyz"))[0] == 200:
                    return
            except OSError:
                pass
            await asyncio.sleep(0.02)
        raise SystemExit("presage-serve did not become ready")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def policy(mid, triggers):
    return (f'mode = "threshold"\n[[segments]]\nname = "low"\nfrom = 0.0\nto = {mid}\nflow = "standard"\n'
            f'[[segments]]\nname = "high"\nfrom = {mid}\nto = 1.0\nflow = "advanced_tutorial"\n{triggers}')


async def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rate", type=int, default=10000, help="events per second to send (default 10000)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of the timed phase (default 10)")
    p.add_argument("--connections", type=int, default=4)
    a = p.parse_args()
    per_request = 10 * len(EVENTS)
    n_users = int(a.rate * a.seconds / len(EVENTS))
    work = Path(tempfile.mkdtemp(prefix="presage-trigger-bench-"))
    try:
        subprocess.run([str(BIN / "presage-train"), "--registry", str(work / "registry"), "fit", "--config",
                        str(REPO / "datasets/configs/adoption.toml")], check=True, capture_output=True)
        # Probe: how far the engaged events move a fresh user's probability.
        (work / "policy.toml").write_text(policy(0.5, ""))
        base = f'[policies]\nadoption = "policy.toml"\n[online]\ndir = "store"\nretain_days_after_signup = 30\nretain_last_days = 30\n'
        (work / "probe.toml").write_text(base)
        server = Server(work, work / "probe.toml")
        await server.ready()
        signup = datetime.now(timezone.utc) - timedelta(hours=3)
        await http(server.host, server.port, "POST", "/users",
                   [{"user_id": "probe", "signup_at": ts(signup), "consent": True}])
        before = (await http(server.host, server.port, "POST", "/predict/adoption", {"user_id": "probe"}))[1]["probability"]
        await http(server.host, server.port, "POST", "/events", engaged("probe", signup))
        after = (await http(server.host, server.port, "POST", "/predict/adoption", {"user_id": "probe"}))[1]["probability"]
        server.stop()
        shutil.rmtree(work / "store")
        if not after > before:
            raise SystemExit(f"the engaged events do not raise the probability ({before} -> {after})")
        mid = (before + after) / 2
        (work / "policy.toml").write_text(policy(mid, '[[triggers]]\nname = "ready"\non = "segment_change"\nto = "high"\n'))

        arrivals = {}

        async def receive(reader, writer):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next(l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")))
                body = await reader.readexactly(length)
                arrivals.setdefault(json.loads(body)["user_id"], time.perf_counter())
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()

        receivers = set()

        async def serve_receiver(reader, writer):
            receivers.add(writer)
            try:
                await receive(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
                pass
            finally:
                receivers.discard(writer)
                writer.close()

        hook = await asyncio.start_server(serve_receiver, "127.0.0.1", 0)
        hook_port = hook.sockets[0].getsockname()[1]
        (work / "serve.toml").write_text(
            base + f'[triggers]\nwebhook_url = "http://127.0.0.1:{hook_port}/hook"\nwebhook_secret = "{SECRET}"\n')
        server = Server(work, work / "serve.toml")
        await server.ready()
        users = [f"b{i:07d}" for i in range(n_users)]
        signup = datetime.now(timezone.utc) - timedelta(hours=3)
        for i in range(0, n_users, 1000):
            status, body = await http(server.host, server.port, "POST", "/users",
                                      [{"user_id": u, "signup_at": ts(signup), "consent": True} for u in users[i:i + 1000]])
            assert status == 200, body
        bodies = [sum((engaged(u, signup) for u in users[i:i + 10]), []) for i in range(0, n_users, 10)]
        sent = {}
        interval = per_request / a.rate
        started = time.perf_counter()
        nxt = iter(range(len(bodies)))

        async def sender():
            reader, writer = await asyncio.open_connection(server.host, server.port)
            for i in nxt:
                due = started + i * interval
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                data = json.dumps(bodies[i]).encode()
                t0 = time.perf_counter()
                for e in bodies[i][::len(EVENTS)]:
                    sent[e["user_id"]] = t0
                writer.write(f"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next(l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")))
                answer = json.loads(await reader.readexactly(length))
                if not head.startswith(b"HTTP/1.1 200") or answer.get("accepted") != len(bodies[i]):
                    raise SystemExit(f"request {i}: {head[:40]!r} {answer}")
            writer.close()

        await asyncio.gather(*(sender() for _ in range(a.connections)))
        elapsed = time.perf_counter() - started
        deadline = time.perf_counter() + 10
        while len(arrivals) < n_users and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        latencies = sorted((arrivals[u] - sent[u]) * 1000 for u in users if u in arrivals)
        pct = lambda q: round(latencies[min(len(latencies) - 1, int(q / 100 * (len(latencies) - 1)))], 3) if latencies else None  # noqa: E731
        server.stop()
        hook.close()
        for writer in list(receivers):
            writer.close()
        await asyncio.sleep(0.1)
        print(json.dumps({
            "rate_asked": a.rate, "events_per_s": round(n_users * len(EVENTS) / elapsed),
            "users": n_users, "messages_expected": n_users, "messages_received": len(arrivals),
            "latency_ms": {"p50": pct(50), "p99": pct(99), "max": pct(100)},
            "connections": a.connections, "events_per_request": per_request,
        }))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
