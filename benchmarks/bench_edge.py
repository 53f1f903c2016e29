"""Edge package vs cloud: one-row latency, import time and memory (issue 18).

What is measured
    A small tabular model (the breast-cancer table plus a 3-level categorical column; the
    default MLP, 3 epochs, 1 worker) is trained and promoted in a temporary home, then
    exported with ``--format edge``.

    Latency of one row, ``--requests`` times after ``--warmup`` calls, as p50/p99 in ms:
    - ``edge``: the edge package's ``EdgeModel.predict([row])`` in this process (validation,
      numpy preprocessing, ONNX Runtime, answer), without its log; ``edge_logged``: the same
      with its prediction log on (one JSON line appended and fsync'ed per call);
    - ``cloud``: ``POST /v1/models/NAME/predict`` with one instance to ``driftloop serve``
      (its own process, started as the CLI starts it: uvicorn, torch runtime, batching and
      prediction logging on, the defaults) over a keep-alive httpx connection on loopback;
      ``cloud_onnx``: the same server with ``--runtime onnx``; ``cloud_unbatched``: with
      ``--max-batch-size 1`` (batching off: no wait of up to ``serve.max_latency_ms`` = 5 ms
      for other requests to join the batch).
    The edge package runs its ONNX session with one intra-op thread (as on a small device).

    Start-up, each in a fresh interpreter (the median of ``--starts`` runs): the time to import
    the package and load its model (``import PKG; PKG.load()``: manifest checked, ONNX session
    built) and its peak RSS after one prediction (``VmHWM``: ``ru_maxrss`` would carry the
    parent's peak over ``exec`` on Linux), against ``import driftloop`` + opening the
    registry + ``registry.load(NAME, 1)`` (the torch module, as ``driftloop serve`` loads it)
    + one ``predict_raw`` row.

How to run (from the repository root)::

    .venv/bin/python -m compileall -q src
    flock /tmp/bench.lock .venv/bin/python benchmarks/bench_edge.py --requests 2000

Prints JSON lines (one per measurement, then a ``summary`` with the ratios) on stdout, and a
markdown table on stderr. Exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

MODEL = "bench-edge"
ROOT = Path(__file__).resolve().parents[1]


def _train(home: Path) -> tuple[Any, list[dict[str, Any]], Path]:
    from sklearn.datasets import load_breast_cancer

    from driftloop.config import Settings
    from driftloop.registry import Registry
    from driftloop.serve.export import export_edge_project, package_name
    from driftloop.train.launcher import train

    frame = load_breast_cancer(as_frame=True).frame
    frame["band"] = np.random.default_rng(0).choice(["low", "mid", "high"], len(frame))
    settings = Settings.load(overrides={"home": str(home)}, environ={}, cwd=home)
    train(frame, "target", workers=1, epochs=3, batch_size=32, settings=settings,
          progress=False, name=MODEL)
    with Registry.open(settings) as registry:
        registry.promote(MODEL, 1, to="production", force=True, reason="benchmark")
        export_edge_project(registry, MODEL, 1, home / "edge")
    rows = [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
            for r in frame.drop(columns=["target"]).to_dict(orient="records")]
    return settings, rows, home / "edge" / package_name(MODEL, 1)


def _percentiles(times: list[float]) -> dict[str, float]:
    ms = np.array(times) * 1000.0
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(ms.mean())}


def _time_calls(call: Any, rows: list[dict[str, Any]], n: int, warmup: int) -> list[float]:
    for i in range(warmup):
        call(rows[i % len(rows)])
    times = []
    for i in range(n):
        row = rows[i % len(rows)]
        t = time.perf_counter()
        call(row)
        times.append(time.perf_counter() - t)
    return times


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cloud(home: Path, rows: list[dict[str, Any]], args: argparse.Namespace,
           runtime: str, *flags: str) -> list[float]:
    port = _free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")},
           "DRIFTLOOP_HOME": str(home), "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "driftloop", "serve", "--model", MODEL,
                             "--port", str(port), "--runtime", runtime, *flags], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=30.0) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if client.get("/v2/health/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("driftloop serve did not become ready")
                time.sleep(0.2)

            def call(row: dict[str, Any]) -> None:
                r = client.post(f"/v1/models/{MODEL}/predict", json={"instances": [row]})
                r.raise_for_status()

            return _time_calls(call, rows, args.requests, args.warmup)
    finally:
        proc.terminate()
        proc.wait(30)


_EDGE_START = """
import json, sys, time
t = time.perf_counter()
import {package} as pkg
model = pkg.load()
loaded = time.perf_counter() - t
model.predict([json.loads(sys.argv[1])])
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
print(json.dumps({{"start_s": loaded, "rss_mb": int(hwm.split()[1]) / 1024}}))
"""
_FULL_START = """
import json, sys, time
t = time.perf_counter()
import driftloop
from driftloop.config import Settings
from driftloop.registry import Registry
import pandas as pd
registry = Registry.open(Settings.load())
model = registry.load({model!r}, 1)
loaded = time.perf_counter() - t
model.predict_raw(pd.DataFrame([json.loads(sys.argv[1])]))
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
print(json.dumps({{"start_s": loaded, "rss_mb": int(hwm.split()[1]) / 1024}}))
"""


def _starts(code: str, row: dict[str, Any], env: dict[str, str], n: int) -> dict[str, float]:
    runs = []
    for _ in range(n):
        done = subprocess.run([sys.executable, "-c", code, json.dumps(row)], env=env,
                              capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout))
    return {"start_s": statistics.median(r["start_s"] for r in runs),
            "rss_mb": statistics.median(r["rss_mb"] for r in runs)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    from driftloop.serve.edge.runtime import EdgeModel

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        _settings, rows, package = _train(home)
        for name, log_dir in (("edge", None), ("edge_logged", home / "edge-log")):
            edge = EdgeModel(package / "model", log_dir=log_dir)
            results[name] = _percentiles(
                _time_calls(lambda row, m=edge: m.predict([row]), rows, args.requests,
                            args.warmup))
        for name, runtime, flags in (
                ("cloud", "torch", ()), ("cloud_onnx", "onnx", ()),
                ("cloud_unbatched", "torch", ("--max-batch-size", "1"))):
            results[name] = _percentiles(_cloud(home, rows, args, runtime, *flags))
        clean = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
        results["start_edge"] = _starts(
            _EDGE_START.format(package=package.name), rows[0],
            {**clean, "PYTHONPATH": str(package.parent)}, args.starts)
        results["start_full"] = _starts(
            _FULL_START.format(model=MODEL), rows[0],
            {**clean, "PYTHONPATH": str(ROOT / "src"), "DRIFTLOOP_HOME": str(home)},
            args.starts)
    for name, value in results.items():
        print(json.dumps({"bench": "edge", "measure": name, **value}))
    summary = {
        "bench": "edge", "summary": True, "requests": args.requests, "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "cloud_over_edge_p50": results["cloud"]["p50_ms"] / results["edge"]["p50_ms"],
        "cloud_over_edge_p99": results["cloud"]["p99_ms"] / results["edge"]["p99_ms"],
        "cloud_onnx_over_edge_p50": results["cloud_onnx"]["p50_ms"] / results["edge"]["p50_ms"],
        "cloud_unbatched_over_edge_p50": results["cloud_unbatched"]["p50_ms"]
        / results["edge"]["p50_ms"],
        "start_full_over_edge": results["start_full"]["start_s"]
        / results["start_edge"]["start_s"],
        "rss_full_over_edge": results["start_full"]["rss_mb"] / results["start_edge"]["rss_mb"],
    }
    print(json.dumps(summary))
    print("| path | p50 ms | p99 ms |\n|---|---:|---:|", file=sys.stderr)
    for name in ("edge", "edge_logged", "cloud", "cloud_onnx", "cloud_unbatched"):
        r = results[name]
        print(f"| {name} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} |", file=sys.stderr)
    print("\n| start | import + load (s) | peak RSS (MB) |\n|---|---:|---:|", file=sys.stderr)
    for name in ("start_edge", "start_full"):
        r = results[name]
        print(f"| {name} | {r['start_s']:.3f} | {r['rss_mb']:.0f} |", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
