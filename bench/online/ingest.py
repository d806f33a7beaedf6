"""Sends NDJSON batches to presage-serve over keep-alive HTTP/1.1
connections and reports the sustained rate.

    python ingest.py ADDR PATH FILE [--batch 1000] [--connections 4]

Every line of FILE is sent once, in batches of --batch lines, over
--connections connections, each waiting for its answer (which presage-serve
gives only once the batch is durable) before sending the next. Prints one
JSON line: items, seconds, items_per_s and the summed answer counters.
"""

import argparse
import asyncio
import json
import time


async def worker(host, port, path, batches, totals):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while batches:
            body = batches.pop()
            head = (
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
                f"Content-Type: application/x-ndjson\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            writer.write(head + body)
            await writer.drain()
            status_line = await reader.readline()
            status = int(status_line.split()[1])
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            answer = json.loads(await reader.readexactly(length))
            if status != 200:
                raise SystemExit(f"{path}: {status} {answer}")
            for key in ("accepted", "duplicates", "rejected", "users_updated",
                        "dropped_before_signup", "dropped_expired", "dropped_no_consent"):
                totals[key] = totals.get(key, 0) + answer.get(key, 0)
    finally:
        writer.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("addr")
    p.add_argument("path")
    p.add_argument("file")
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--connections", type=int, default=4)
    a = p.parse_args()
    host, port = a.addr.rsplit(":", 1)
    with open(a.file, "rb") as f:
        lines = f.read().splitlines()
    batches = [b"\n".join(lines[i:i + a.batch]) for i in range(0, len(lines), a.batch)]
    batches.reverse()
    totals = {}
    started = time.perf_counter()
    await asyncio.gather(*(worker(host, int(port), a.path, batches, totals)
                           for _ in range(a.connections)))
    seconds = time.perf_counter() - started
    print(json.dumps({"items": len(lines), "seconds": round(seconds, 3),
                      "items_per_s": round(len(lines) / seconds), **totals}))


asyncio.run(main())
