"""Sends a file to an HTTP endpoint as a stream of POST requests over
keep-alive HTTP/1.1 connections and reports the sustained rate.

    python ingest.py HOST:PORT PATH FILE [--lines-per-request 1000]
                     [--connections 4] [--content-type application/x-ndjson]
                     [--items-per-request N]

FILE is read as it is sent (never whole into memory): each request carries
the next --lines-per-request lines of it (joined with newlines), so
`--lines-per-request 1000` sends an NDJSON file in batches of 1,000 items,
and `--lines-per-request 1` sends a file whose every line is a ready request
body (then --items-per-request says how many items one body holds, for the
rate). --connections connections each wait for their answer before sending
the next request (closed loop). presage-serve answers an ingest request only
once it is durable (fsynced); whatever the server does before answering is
inside the measurement.

Prints one JSON line: requests, items, seconds, items_per_s, the request
latency p50/p99 in ms, and the sum of every integer field of the JSON
answers (presage-serve's accepted, duplicates, rejected, ...). A non-2xx
answer stops the run with its status and body.
"""

import argparse
import asyncio
import itertools
import json
import time


class Source:
    """The file's requests, read on demand; shared by the workers (one event loop)."""

    def __init__(self, path, lines_per_request, items_per_request):
        self.file = open(path, "rb")
        self.lines = lines_per_request
        self.items_per_request = items_per_request
        self.items = 0
        self.requests = 0

    def next_body(self):
        chunk = list(itertools.islice(self.file, self.lines))
        if not chunk:
            return None
        self.requests += 1
        self.items += len(chunk) if self.items_per_request is None else self.items_per_request
        return b"".join(chunk).rstrip(b"\n")


async def read_answer(reader):
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split()[1])
    length, chunked = None, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        body = b""
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                await reader.readline()
                break
            body += await reader.readexactly(size)
            await reader.readline()
    else:
        body = await reader.readexactly(length or 0)
    return status, body


async def worker(host, port, path, content_type, source, totals, latencies):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            body = source.next_body()
            if body is None:
                return
            head = (
                f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            started = time.perf_counter()
            writer.write(head + body)
            await writer.drain()
            status, answer = await read_answer(reader)
            latencies.append(time.perf_counter() - started)
            if not 200 <= status < 300:
                raise SystemExit(f"POST {path}: {status} {answer[:500]!r}")
            if answer:
                try:
                    parsed = json.loads(answer)
                except ValueError:
                    parsed = None
                if isinstance(parsed, dict):
                    for key, value in parsed.items():
                        if isinstance(value, int) and not isinstance(value, bool):
                            totals[key] = totals.get(key, 0) + value
    finally:
        writer.close()


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(round(q / 100 * (len(sorted_values) - 1))))]


async def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("addr", help="HOST:PORT")
    p.add_argument("path", help="the request path, e.g. /events")
    p.add_argument("file")
    p.add_argument("--lines-per-request", type=int, default=1000)
    p.add_argument("--items-per-request", type=int, help="items in one request (default: its line count)")
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--content-type", default="application/x-ndjson")
    a = p.parse_args()
    host, port = a.addr.rsplit(":", 1)
    source = Source(a.file, a.lines_per_request, a.items_per_request)
    totals, latencies = {}, []
    started = time.perf_counter()
    await asyncio.gather(*(
        worker(host, int(port), a.path, a.content_type, source, totals, latencies)
        for _ in range(a.connections)
    ))
    seconds = time.perf_counter() - started
    latencies.sort()
    print(json.dumps({
        "requests": source.requests,
        "items": source.items,
        "seconds": round(seconds, 3),
        "items_per_s": round(source.items / seconds) if seconds > 0 else None,
        "request_ms": {
            "p50": round(percentile(latencies, 50) * 1000, 3) if latencies else None,
            "p99": round(percentile(latencies, 99) * 1000, 3) if latencies else None,
        },
        "connections": a.connections,
        "answers": totals,
    }))


if __name__ == "__main__":
    asyncio.run(main())
