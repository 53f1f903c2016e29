"""The Python load generator of ``bench_serve.py`` when ``wrk`` is missing: raw HTTP/1.1.

One process drives ``--connections`` keep-alive connections for ``--seconds``, each sending the
pre-encoded requests of ``--body-file`` (one JSON body per line) back to back and reading each
response by its ``Content-Length``: no HTTP library, so a request costs this side a few tens of
microseconds, far below the server's. ``bench_serve.py`` starts several of these processes and
merges what they print: one JSON object with every latency (seconds) and the status counts.

Run alone (from the repository root)::

    .venv/bin/python benchmarks/bench_serve_client.py --url http://127.0.0.1:8000 \\
        --path /v1/models/m/predict --body-file bodies.jsonl --connections 8 --seconds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from urllib.parse import urlsplit

_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


def encode_requests(host: str, path: str, bodies: list[bytes]) -> list[bytes]:
    """One complete HTTP/1.1 POST per body."""
    return [(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
             f"Content-Length: {len(body)}\r\n\r\n").encode() + body for body in bodies]


async def _connection(host: str, port: int, requests: list[bytes], first: int, stop_at: float,
                      latencies: list[float], statuses: dict[int, int],
                      interval: float | None = None) -> None:
    """Back to back (closed loop), or with ``interval`` one request per interval on a fixed
    schedule (open loop): a request's latency counts from when it was due, so a server that
    falls behind is charged for the wait it caused (no coordinated omission)."""
    reader, writer = await asyncio.open_connection(host, port)
    i = first
    due = time.perf_counter() + (0.0 if interval is None else interval * first / 1000.0)
    try:
        while time.perf_counter() < stop_at:
            if interval is not None:
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            started = time.perf_counter() if interval is None else due
            if interval is not None:
                due += interval
            writer.write(requests[i % len(requests)])
            head = await reader.readuntil(b"\r\n\r\n")
            match = _LENGTH.search(head)
            if match is not None:
                await reader.readexactly(int(match.group(1)))
            latencies.append(time.perf_counter() - started)
            status = int(head[9:12])
            statuses[status] = statuses.get(status, 0) + 1
            i += 1
    finally:
        writer.close()


async def drive(url: str, path: str, bodies: list[bytes], connections: int,
                seconds: float, rate: float | None = None) -> dict[str, object]:
    """Latencies (s) and status counts of ``connections`` clients for ``seconds`` (``rate``:
    requests per second in all, paced open-loop; None: back to back)."""
    interval = None if rate is None else connections / rate
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    requests = encode_requests(f"{host}:{port}", path, bodies)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    await asyncio.gather(*(_connection(host, port, requests, k, started + seconds, latencies,
                                       statuses, interval) for k in range(connections)))
    return {"seconds": time.perf_counter() - started, "latencies": latencies,
            "statuses": {str(k): v for k, v in statuses.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--body-file", required=True)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rate", type=float, help="requests/s in all, open loop (default: "
                        "back to back)")
    args = parser.parse_args()
    with open(args.body_file, "rb") as f:
        bodies = [line.rstrip(b"\n") for line in f if line.strip()]
    print(json.dumps(asyncio.run(drive(args.url, args.path, bodies, args.connections,
                                       args.seconds, args.rate))))


if __name__ == "__main__":
    main()
