"""``driftloop serve`` under load: dynamic batching, prediction logging, and the runtimes.

What is measured
    The server runs in its own process on loopback (uvicorn, one worker); this process drives
    it with an async httpx client: ``C`` concurrent clients each send one-instance requests to
    ``POST /v1/models/{name}/predict`` back to back for ``--seconds``. Reported per run:
    throughput (answered requests/s), p50/p99 latency, and refusals (503).

    Sweep: concurrency 1, 8, 32, 128 × batching off (``max_batch_size 1``) and on
    (``max_batch_size 64``, ``max_latency_ms 5``) × prediction logging on and off, for two
    models: ``wide`` (tabular MLP, three 1024-wide hidden layers: single-sample inference is a
    real cost) and ``small`` (the default tabular MLP, 128/64).

    Runtimes: eager torch, int8 (dynamic quantisation) and ONNX Runtime, served at concurrency
    1 and 32 (batching on) for the wide MLP; plus their in-process inference time for batches
    of 1 and 64, their size on disk (ONNX fp32 vs ONNX int8) and, for the small MLP trained on
    the synthetic task, the accuracy of int8 beside fp32.

Baseline
    Batching off is the baseline of batching on (``ratio`` = on / off throughput at each
    model's best concurrency); logging off is the baseline of logging on; eager torch of int8
    and ONNX.

How to run (from the repository root)::

    .venv/bin/python benchmarks/bench_serve.py                  # full sweep, 3 s per point
    .venv/bin/python benchmarks/bench_serve.py --seconds 1 --concurrency 1 32

Prints JSON lines on stdout, one per measurement, then a summary line. Exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
MODELS = ("wide", "small")
N_FEATURES = 32


def wide_mlp(inputs: dict[str, Any], n_outputs: int) -> Any:
    """The tabular MLP with three 1024-wide hidden layers (a model-factory reference)."""
    from driftloop.train.models import TabularMLP

    return TabularMLP(int(inputs["n_numeric"]), list(inputs.get("cardinalities", [])),
                      n_outputs, hidden=(1024, 1024, 1024))


def _frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, N_FEATURES))
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(N_FEATURES)])
    frame["colour"] = rng.choice(["red", "green", "blue"], rows)
    logit = x[:, :4].sum(axis=1) + (frame["colour"] == "red") * 1.0
    frame["label"] = np.where(logit + rng.normal(scale=0.5, size=rows) > 0, "yes", "no")
    return frame


def _register(home: str) -> dict[str, Any]:
    """Register the two models (small: trained a few epochs; wide: random weights)."""
    import torch
    from safetensors.torch import save

    from driftloop.config import Settings
    from driftloop.data.prepare import prepare
    from driftloop.registry import ModelBundle, Registry
    from driftloop.train.models import build_model

    settings = Settings.load(overrides={"home": home}, environ={}, cwd=home)
    registry = Registry.open(settings)
    data = prepare(_frame(6000), "label", seed=0)
    facts: dict[str, Any] = {}
    for name, arch in (("small", "mlp"), ("wide", "bench_serve:wide_mlp")):
        torch.manual_seed(0)
        module = build_model(arch, data.model_inputs, data.n_classes)
        if name == "small":
            _fit(module, data)
        bundle = ModelBundle(task=data.task, input_kind="table", model=arch,
                             model_inputs=data.model_inputs, n_outputs=data.n_classes,
                             classes=data.classes, schema=data.schema.to_json(),
                             preprocessor=data.preprocessor, target_encoder=data.target_encoder)
        record = registry.register(name, run_id=None, bundle=bundle,
                                   weights=save(module.state_dict()), metrics={},
                                   actor="bench", reason="benchmark")
        registry.promote(name, record.version, to="production", force=True, reason="benchmark")
        facts[name] = {"parameters": sum(p.numel() for p in module.parameters())}
    return facts


def _fit(module: Any, data: Any, epochs: int = 8) -> None:
    import torch

    split = data.splits["train"]
    x, x_cat = torch.from_numpy(split.x), torch.from_numpy(split.x_cat)
    y = torch.from_numpy(split.y)
    opt = torch.optim.Adam(module.parameters(), lr=3e-3)
    module.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(y)).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(module(x[idx], x_cat[idx]), y[idx]).backward()
            opt.step()
    module.eval()


def _serve_worker(args: argparse.Namespace) -> None:
    import uvicorn

    from driftloop.config import Settings
    from driftloop.registry import Registry
    from driftloop.serve.app import create_app

    settings = Settings.load(overrides={"home": args.home}, environ={}, cwd=args.home)
    cfg = settings.serve.model_copy(update={
        "max_batch_size": args.batch, "max_latency_ms": 5.0, "log_predictions": args.log,
        "runtime": args.runtime, "max_queue": 100_000})
    app = create_app(Registry.open(settings), [args.model], cfg)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="error", access_log=False)


class _Server:
    def __init__(self, home: str, model: str, batch: int, log: bool, runtime: str) -> None:
        from driftloop.serve.server import free_port

        self.port = free_port()
        cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-worker", "--home", home,
               "--model", model, "--batch", str(batch), "--runtime", runtime,
               "--port", str(self.port)] + (["--log"] if log else [])
        env = {**os.environ, "PYTHONPATH": str(HERE) + os.pathsep + os.environ.get(
            "PYTHONPATH", "")}
        self.proc = subprocess.Popen(cmd, env=env)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        import httpx

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/v2/health/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


async def _drive(url: str, model: str, bodies: list[bytes], concurrency: int,
                 seconds: float) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    refused = errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        path = f"/v1/models/{model}/predict"
        headers = {"content-type": "application/json"}
        for body in bodies[:concurrency]:  # warm connections
            await client.post(path, content=body, headers=headers)
        stop = time.perf_counter() + seconds

        async def worker(i: int) -> None:
            nonlocal refused, errors
            j = i
            while time.perf_counter() < stop:
                t = time.perf_counter()
                r = await client.post(path, content=bodies[j % len(bodies)], headers=headers)
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - t)
                elif r.status_code == 503:
                    refused += 1
                else:
                    errors += 1
                j += concurrency

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    lat = np.array(latencies) * 1000
    return {"requests_per_s": round(len(lat) / elapsed, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 2) if len(lat) else None,
            "p99_ms": round(float(np.percentile(lat, 99)), 2) if len(lat) else None,
            "answered": len(lat), "refused": refused, "errors": errors}


def _emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def _runtime_facts(home: str, out: list[dict[str, Any]]) -> None:
    """In-process inference time, size on disk and int8 accuracy of the three runtimes."""
    from driftloop.config import Settings
    from driftloop.data.prepare import apply_preprocessing
    from driftloop.registry import Registry
    from driftloop.serve.export import export_edge_package
    from driftloop.serve.runtimes import build_runtime

    settings = Settings.load(overrides={"home": home}, environ={}, cwd=home)
    registry = Registry.open(settings)
    test = _frame(4000, seed=1)
    for name in MODELS:
        loaded = registry.load(name)
        x, x_cat = apply_preprocessing(loaded.bundle.preprocessor, test.drop(columns="label"))
        package = export_edge_package(registry, name, None, Path(home) / f"edge-{name}",
                                      int8=True)
        sizes = {"onnx_fp32_bytes": package.files["model.onnx"],
                 "onnx_int8_bytes": package.files["model.int8.onnx"]}
        sizes["int8_size_ratio"] = round(sizes["onnx_fp32_bytes"] / sizes["onnx_int8_bytes"], 2)
        truth = (test["label"] == "yes").to_numpy().astype(int)
        for kind in ("torch", "int8", "onnx"):
            runtime = build_runtime(kind, loaded.module, "table", loaded.bundle.model_inputs)
            timings = {}
            for batch in (1, 64):
                xs, cs = x[:batch], x_cat[:batch]
                runtime.logits(xs, cs)
                reps = 300 if batch == 1 else 60
                t = time.perf_counter()
                for _ in range(reps):
                    runtime.logits(xs, cs)
                timings[f"batch{batch}_ms"] = round((time.perf_counter() - t) / reps * 1000, 3)
            pred = runtime.logits(x, x_cat).argmax(1)
            yes = loaded.bundle.classes.index("yes")
            record = {"bench": "runtime", "model": name, "runtime": kind, **timings,
                      "accuracy": round(float(((pred == yes).astype(int) == truth).mean()), 4),
                      **sizes}
            out.append(record)
            _emit(record)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--serve-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--home")
    parser.add_argument("--model")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--runtime", default="torch")
    parser.add_argument("--port", type=int)
    parser.add_argument("--log", action="store_true")
    args = parser.parse_args()
    if args.serve_worker:
        _serve_worker(args)
        return
    sys.path.insert(0, str(HERE))
    home = tempfile.mkdtemp(prefix="bench-serve-")
    facts = _register(home)
    _emit({"bench": "setup", "machine": platform.machine(), "cpus": os.cpu_count(),
           "python": platform.python_version(), "models": facts})
    bodies = {}
    for name in args.models:
        rows = _frame(256, seed=2).drop(columns="label").to_dict(orient="records")
        bodies[name] = [json.dumps({"instances": [r]}).encode() for r in rows]
    results: list[dict[str, Any]] = []
    for name in args.models:
        for batch, log in ((1, False), (64, False), (64, True), (1, True)):
            server = _Server(home, name, batch, log, "torch")
            try:
                server.wait_ready()
                for c in args.concurrency:
                    record = {"bench": "serve", "model": name, "batching": batch > 1,
                              "max_batch_size": batch, "logging": log, "concurrency": c,
                              **asyncio.run(_drive(server.url, name, bodies[name], c,
                                                   args.seconds))}
                    results.append(record)
                    _emit(record)
            finally:
                server.stop()
    runtime_model = "wide" if "wide" in args.models else args.models[0]
    for kind in ("torch", "int8", "onnx"):
        server = _Server(home, runtime_model, 64, False, kind)
        try:
            server.wait_ready()
            for c in (1, 32):
                record = {"bench": "serve_runtime", "model": runtime_model, "runtime": kind,
                          "concurrency": c,
                          **asyncio.run(_drive(server.url, runtime_model,
                                               bodies[runtime_model], c, args.seconds))}
                results.append(record)
                _emit(record)
        finally:
            server.stop()
    runtime_rows: list[dict[str, Any]] = []
    _runtime_facts(home, runtime_rows)
    _emit({"bench": "summary", **_summary(results)})


def _summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in {r["model"] for r in results if r["bench"] == "serve"}:
        def rows(batching: bool, log: bool, name: str = name) -> list[dict[str, Any]]:
            return [r for r in results if r["bench"] == "serve" and r["model"] == name
                    and r["batching"] == batching and r["logging"] == log]
        on = max(rows(True, False), key=lambda r: r["requests_per_s"])
        off = max(rows(False, False), key=lambda r: r["requests_per_s"])
        same_c_off = next(r for r in rows(False, False) if r["concurrency"] == on["concurrency"])
        logged = next(r for r in rows(True, True) if r["concurrency"] == on["concurrency"])
        out[name] = {
            "batching_ratio_best": round(on["requests_per_s"] / off["requests_per_s"], 2),
            "best_concurrency_on": on["concurrency"], "best_concurrency_off": off["concurrency"],
            "p99_on_ms": on["p99_ms"], "p99_off_same_concurrency_ms": same_c_off["p99_ms"],
            "p99_off_best_ms": off["p99_ms"],
            "logging_cost": round(1 - logged["requests_per_s"] / on["requests_per_s"], 3),
        }
    return out


if __name__ == "__main__":
    main()
