"""``driftloop serve`` under load: dynamic batching and prediction logging (and the runtimes).

What is measured
    Each configuration runs as its own server process on loopback, started the way ``driftloop
    serve --model NAME`` starts (:func:`driftloop.serve.server.serve`: uvicorn, one worker, the
    HTTP and event-loop implementations uvicorn picks, reported in the ``setup`` line). The load
    generator is ``wrk`` (C, epoll; ``benchmarks/bench_serve_post.lua`` POSTs one-instance
    bodies round-robin and counts 503s), so a request costs the client a few microseconds and
    the server, not the client, is measured. When ``wrk`` is not installed the benchmark says
    so and falls back to ``benchmarks/bench_serve_client.py``: raw HTTP/1.1 keep-alive
    connections spread over ``--client-procs`` processes. ``C`` connections send requests back
    to back for ``--seconds`` (closed loop); reported per point: answered requests/s, p50/p99
    latency, refusals (503) and failures, the server's CPU per request split into its event
    loop (main thread) and its other threads (inference, log writer), how busy the event loop
    was, the machine's idle share and load average.

    Models: ``cnn`` (driftloop's ``cnn``, 1x28x28 images, 10 classes), ``wide`` (tabular MLP,
    32 numeric + 1 categorical input, three 1024-wide hidden layers) and ``small`` (the default
    tabular MLP, 128/64, trained a few epochs); ``cnn`` and ``wide`` keep their seeded random
    weights (the work per request does not depend on them). Before the sweep, each model's
    inference is timed in process at batch 1 and batch 64 (torch, the threads the servers use).

    Sweep: concurrency 1, 8, 32, 128 x four servers per model: batching off (``max_batch_size
    1``) or on (``max_batch_size 64``, ``max_latency_ms 5``) x prediction logging off or on.
    The four servers of a model run side by side and every point is taken ``--repeats`` times,
    interleaved (for each repeat, for each C, every configuration once, the order rotated
    between repeats), so load from other jobs on a shared machine falls on all of them alike;
    the summary gives medians over repeats and the min-max spread.

Baseline and ratios
    Batching off is the baseline of batching on. At batching's best concurrency (highest median
    throughput), ``batching_ratio_same_c`` = on / off throughput at that same C, beside both
    p99s; ``batching_ratio_best`` compares with no batching at its own best C (target: >= 3x at
    equal or lower p99); ``batching_ratio_by_c`` gives every C. Logging off is the baseline of
    logging on: ``logging_cost_best`` = 1 - on / off throughput at batching's best C (target:
    <= 5 %), and the per-C medians of the per-repeat paired costs, with batching on and off.
    What bounds the server: its event loop's CPU per request and how busy the loop was, beside
    the model's in-process inference time at batch 1 and per sample at batch 64.

Runtimes (``--runtimes``)
    Eager torch, int8 (dynamic quantisation) and ONNX Runtime served at concurrency 1 and 32
    (batching on) for the wide MLP; their in-process inference time for batches of 1 and 64,
    their size on disk (ONNX fp32 vs ONNX int8) and, for the small MLP, the accuracy of int8
    beside fp32.

Workers (``--workers N``)
    Instead of the sweep: for each model, ``driftloop serve --workers N`` (N uvicorn worker
    processes on one port, batching and logging on) against the same server with 1 worker,
    beside the sweep's baseline (batching and logging off, 1 worker), interleaved as above;
    ``summary_workers`` gives the medians, ``workers_ratio_by_c`` (N workers / 1 worker) and
    ``ratio_to_baseline_by_c``. CPU per request is summed over the workers' processes. The
    ratio can only exceed 1 with idle cores for the extra workers: report it with ``cpus`` and
    the load average.

Shadow (``--shadow``)
    Instead of the sweep: for each table model, the server with batching and logging on (the
    defaults) against the same server while a rollout holds a second version of the model in
    shadow (issue 16): every request is also scored by the candidate off the request path,
    batched on its own batcher, and both answers are written to the rollout's evidence, which
    the server judges every ``check_s`` (the defaults). The shadow server has its own copy of
    the store (the rollout is store state every server of the model follows). Interleaved as
    above; ``summary_shadow`` gives per C the median throughput and p99 of both, the ratios
    of the closed-loop points, then both servers at the *same offered load* (open loop, the
    Python client paced at ``--paced-shares`` of the no-shadow server's best throughput,
    latency counted from when each request was due): ``paced[share].p99_ratio`` is the target
    (holder p99 with shadow within +10 % of without); and how many rows the shadow actually
    scored (so the figures are known to include the shadow's work).

How to run (from the repository root; ``apt-get install wrk`` for the C load generator)::

    .venv/bin/python benchmarks/bench_serve.py                     # the sweep, ~12 min
    .venv/bin/python benchmarks/bench_serve.py --models wide --concurrency 1 32 --repeats 1
    .venv/bin/python benchmarks/bench_serve.py --runtimes --models wide small
    .venv/bin/python benchmarks/bench_serve.py --workers 2 --models small --concurrency 32
    .venv/bin/python benchmarks/bench_serve.py --shadow --models small --concurrency 1 8 32

Prints JSON lines on stdout, one per measurement, then one ``summary`` line per model, and the
results as a markdown table on stderr. Exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
MODELS = ("cnn", "wide", "small")
N_FEATURES = 32
IMAGE_SHAPE = (1, 28, 28)
# (max_batch_size, prediction logging): off/off first, the baseline of the others
CONFIGS = ((1, False), (64, False), (64, True), (1, True))


def wide_mlp(inputs: dict[str, Any], n_outputs: int) -> Any:
    """The tabular MLP with three 1024-wide hidden layers (a model-factory reference)."""
    from driftloop.models.architectures import TabularMLP

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


def _images(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.random((rows, *IMAGE_SHAPE), dtype=np.float32).round(3),
            rng.integers(0, 10, rows))


def _register(home: str, models: list[str]) -> dict[str, Any]:
    """Register the models (small: trained a few epochs; wide and cnn: seeded random weights)."""
    import torch
    from safetensors.torch import save

    from driftloop.config import Settings
    from driftloop.data.prepare import prepare
    from driftloop.models.architectures import build_model
    from driftloop.registry import ModelBundle, Registry

    settings = Settings.load(overrides={"home": home}, environ={}, cwd=home)
    registry = Registry.open(settings)
    table = prepare(_frame(6000), "label", seed=0)
    x, y = _images(600)
    np.savez(Path(home) / "images.npz", X=x, y=y)
    images = prepare(str(Path(home) / "images.npz"), None, seed=0, input_kind="image")
    facts: dict[str, Any] = {}
    for name in models:
        data, arch = {"small": (table, "mlp"), "wide": (table, "bench_serve:wide_mlp"),
                      "cnn": (images, "cnn")}[name]
        torch.manual_seed(0)
        module = build_model(arch, data.model_inputs, data.n_classes, allowed=["bench_serve"])
        if name == "small":
            _fit(module, data)
        bundle = ModelBundle(task=data.task, input_kind=data.input_kind, model=arch,
                             model_inputs=data.model_inputs, n_outputs=data.n_classes,
                             classes=data.classes,
                             schema=None if data.schema is None else data.schema.to_json(),
                             preprocessor=data.preprocessor, target_encoder=data.target_encoder)
        record = registry.register(name, run_id=None, bundle=bundle,
                                   weights=save(module.state_dict()), metrics={},
                                   actor="bench", reason="benchmark")
        registry.promote(name, record.version, to="production", force=True, reason="benchmark")
        facts[name] = {"parameters": sum(p.numel() for p in module.parameters()),
                       **_inference_times(module.eval(), data)}
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


def _inference_times(module: Any, data: Any) -> dict[str, float]:
    """Milliseconds of one forward pass at batch 1 and per sample at batch 64 (eager torch)."""
    import torch

    split = data.splits["train"]
    out = {}
    for batch in (1, 64):
        inputs = [torch.from_numpy(split.x[:batch])]
        if split.x_cat is not None:
            inputs.append(torch.from_numpy(split.x_cat[:batch]))
        reps = 40 if batch == 1 else 8
        with torch.inference_mode():
            module(*inputs)
            best = float("inf")
            # best of many short trials: other jobs on a shared machine only ever slow it down,
            # and a short trial fits in a quiet moment
            for _ in range(15):
                t = time.perf_counter()
                for _ in range(reps):
                    module(*inputs)
                best = min(best, (time.perf_counter() - t) / reps)
        key = "infer_ms_batch1" if batch == 1 else "infer_ms_per_sample_batch64"
        out[key] = round(best * 1000 / batch, 4)
    return out


def _bodies(model: str, n: int = 64) -> list[bytes]:
    """``n`` one-instance request bodies for ``model``."""
    if model == "cnn":
        x, _ = _images(n, seed=2)
        return [json.dumps({"instances": [image.tolist()]}).encode() for image in x]
    rows = _frame(n, seed=2).drop(columns="label").to_dict(orient="records")
    return [json.dumps({"instances": [row]}).encode() for row in rows]


def _serve_worker(args: argparse.Namespace) -> None:
    """What ``driftloop serve --model NAME`` runs (:func:`driftloop.serve.server.serve`)."""
    import torch

    from driftloop.config import Settings
    from driftloop.serve.server import serve

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    settings = Settings.load(overrides={"home": args.home, "serve": {
        "port": args.port, "max_batch_size": args.batch, "max_latency_ms": args.latency_ms,
        "log_predictions": args.log, "runtime": args.runtime, "max_queue": 100_000},
        "security": {"model_factories": ["bench_serve"]}}, environ={}, cwd=args.home)
    serve(settings, [args.model], workers=args.workers, factory="driftloop.cli.serve:worker_app")


def _affinity(cpus: list[int] | None) -> Any:
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


class _Server:
    """One ``driftloop`` server process (a configuration) on a free loopback port."""

    def __init__(self, home: str, model: str, batch: int, log: bool, args: argparse.Namespace,
                 runtime: str = "torch", workers: int = 1, shadow: bool = False) -> None:
        from driftloop.serve.server import free_port

        self.model, self.batch, self.log, self.runtime = model, batch, log, runtime
        self.workers, self.shadow = workers, shadow
        self.port = free_port()
        cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-worker", "--home", home,
               "--model", model, "--batch", str(batch), "--runtime", runtime,
               "--latency-ms", str(args.latency_ms), "--port", str(self.port),
               "--torch-threads", str(args.torch_threads), "--workers", str(workers)] + (
                   ["--log"] if log else [])
        env = {**os.environ, "PYTHONPATH": str(HERE) + os.pathsep + os.environ.get(
            "PYTHONPATH", "")}
        self.proc = subprocess.Popen(cmd, env=env, preexec_fn=_affinity(args.server_cpus))
        self.url = f"http://127.0.0.1:{self.port}"
        self.path = f"/v1/models/{model}/predict"

    @property
    def label(self) -> dict[str, Any]:
        return {"model": self.model, "batching": self.batch > 1,
                "max_batch_size": self.batch, "logging": self.log, "workers": self.workers,
                "shadow": self.shadow}

    def wait_ready(self) -> None:
        import httpx

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server {self.label} exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/v2/health/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server {self.label} did not become ready")

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU seconds so far of the main threads (the event loops) and of all other threads,
        over the server process and its uvicorn workers (``--workers``)."""
        tick = os.sysconf("SC_CLK_TCK")
        main = other = 0.0
        for pid in _process_tree(self.proc.pid):
            for task in _tasks(pid):
                try:
                    fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:  # the thread ended
                    continue
                seconds = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
                if task.name == str(pid):
                    main += seconds
                else:
                    other += seconds
        return main, other

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _tasks(pid: int) -> list[Path]:
    try:
        return list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:  # the process ended
        return []


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a ``--workers`` server's uvicorn workers)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        for task in _tasks(current):
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                continue
    return out


def _machine_idle() -> tuple[float, float]:
    with open("/proc/stat") as f:
        values = [float(v) for v in f.readline().split()[1:]]
    return values[3] + values[4], sum(values)  # idle + iowait, total


class _Load:
    """Drive a server with wrk or, without it, the raw-socket Python client processes."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.wrk = None if args.client == "python" else shutil.which("wrk")
        if args.client == "wrk" and self.wrk is None:
            raise SystemExit("--client wrk: wrk is not on PATH (apt-get install wrk).")
        self.args, self.workdir = args, workdir
        self.lua = HERE / "bench_serve_post.lua"

    @property
    def name(self) -> str:
        return "wrk" if self.wrk else f"python raw-socket client x{self.args.client_procs}"

    def body_file(self, model: str, bodies: list[bytes]) -> Path:
        path = self.workdir / f"bodies-{model}.jsonl"
        path.write_bytes(b"\n".join(bodies) + b"\n")
        return path

    def run(self, server: _Server, body_file: Path, concurrency: int,
            seconds: int) -> dict[str, Any]:
        if self.wrk:
            return self._wrk(server, body_file, concurrency, seconds)
        return self._python(server, body_file, concurrency, seconds)

    def _wrk(self, server: _Server, body_file: Path, concurrency: int,
             seconds: int) -> dict[str, Any]:
        cmd = [str(self.wrk), "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "30s",
               "-s", str(self.lua), server.url + server.path]
        done = subprocess.run(cmd, env={**os.environ, "BODY_FILE": str(body_file)},
                              capture_output=True, text=True, check=True,
                              preexec_fn=_affinity(self.args.client_cpus))
        line = next(x for x in done.stdout.splitlines() if x.startswith("WRKJSON "))
        r = json.loads(line[len("WRKJSON "):])
        answered = r["requests"] - r["refused"] - r["failed"]
        return {"requests_per_s": round(answered / (r["duration_us"] / 1e6), 1),
                "p50_ms": r["p50_us"] / 1000, "p99_ms": r["p99_us"] / 1000,
                "answered": answered, "refused": r["refused"],
                "errors": r["failed"] + r["socket_errors"] + r["timeouts"]}

    def _python(self, server: _Server, body_file: Path, concurrency: int,
                seconds: int, rate: float | None = None) -> dict[str, Any]:
        """The raw-socket client; ``rate``: requests/s in all, paced (open loop)."""
        procs = min(self.args.client_procs, concurrency)
        shares = [concurrency // procs + (i < concurrency % procs) for i in range(procs)]
        paced = [] if rate is None else ["--rate"]
        running = [subprocess.Popen(
            [sys.executable, str(HERE / "bench_serve_client.py"), "--url", server.url,
             "--path", server.path, "--body-file", str(body_file), "--connections", str(k),
             "--seconds", str(seconds)]
            + (paced and [*paced, str(rate * k / concurrency)]), stdout=subprocess.PIPE,
            text=True, preexec_fn=_affinity(self.args.client_cpus)) for k in shares]
        results = [json.loads(p.communicate()[0]) for p in running]
        statuses: dict[str, int] = {}
        for r in results:
            for k, v in r["statuses"].items():
                statuses[k] = statuses.get(k, 0) + v
        lat = np.array([x for r in results for x in r["latencies"]]) * 1000
        elapsed = max(r["seconds"] for r in results)
        answered = statuses.get("200", 0)
        return {"requests_per_s": round(answered / elapsed, 1),
                "p50_ms": round(float(np.percentile(lat, 50)), 3) if len(lat) else None,
                "p99_ms": round(float(np.percentile(lat, 99)), 3) if len(lat) else None,
                "answered": answered, "refused": statuses.get("503", 0),
                "errors": sum(v for k, v in statuses.items() if k not in ("200", "503"))}


def _measure(load: _Load, server: _Server, body_file: Path, concurrency: int,
             seconds: int) -> dict[str, Any]:
    """One point: the load's figures plus the server's CPU and the machine's idle share."""
    cpu0, idle0 = server.cpu_seconds(), _machine_idle()
    t0 = time.perf_counter()
    result = load.run(server, body_file, concurrency, seconds)
    wall = time.perf_counter() - t0
    cpu1, idle1 = server.cpu_seconds(), _machine_idle()
    n = max(result["answered"], 1)
    return {**result,
            "loop_cpu_ms_per_req": round((cpu1[0] - cpu0[0]) / n * 1000, 3),
            "other_cpu_ms_per_req": round((cpu1[1] - cpu0[1]) / n * 1000, 3),
            "loop_busy": round((cpu1[0] - cpu0[0]) / wall, 2),
            "machine_idle": round((idle1[0] - idle0[0]) / max(idle1[1] - idle0[1], 1), 2),
            "load_avg_1m": round(os.getloadavg()[0], 2)}


def _emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def _sweep(home: str, models: list[str], load: _Load, args: argparse.Namespace,
           workdir: Path) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for model in models:
        servers = [_Server(home, model, batch, log, args) for batch, log in CONFIGS]
        results += _interleaved(servers, load, args, "serve")
    return results


def _paced(servers: list[_Server], load: _Load, args: argparse.Namespace,
           rate: float) -> list[dict[str, Any]]:
    """Every server at ``rate`` requests/s (open loop, the Python client, the largest
    ``--concurrency`` connections), ``--repeats`` times, interleaved."""
    body_file = load.body_file(servers[0].model, _bodies(servers[0].model))
    c = max(args.concurrency)
    results = []
    for rep in range(args.repeats):
        for server in (servers if rep % 2 == 0 else servers[::-1]):
            record = {"bench": "serve_shadow_paced", **server.label, "concurrency": c,
                      "rate_per_s": rate, "repeat": rep,
                      **load._python(server, body_file, c, args.seconds, rate)}
            results.append(record)
            _emit(record)
    return results


def _interleaved(servers: list[_Server], load: _Load, args: argparse.Namespace,
                 bench: str, *, stop: bool = True) -> list[dict[str, Any]]:
    """Every server at every concurrency, ``--repeats`` times, interleaved (the order rotated
    between repeats); the servers are stopped afterwards."""
    results: list[dict[str, Any]] = []
    body_file = load.body_file(servers[0].model, _bodies(servers[0].model))
    try:
        for server in servers:
            server.wait_ready()
            load.run(server, body_file, 8, 1)  # warm-up, not recorded
        for rep in range(args.repeats):
            for c in args.concurrency:
                shift = rep % len(servers)
                for server in servers[shift:] + servers[:shift]:
                    record = {"bench": bench, **server.label, "concurrency": c,
                              "repeat": rep, **_measure(load, server, body_file, c,
                                                        args.seconds)}
                    results.append(record)
                    _emit(record)
    finally:
        if stop:
            for server in servers:
                server.stop()
    return results


def _workers(home: str, model: str, load: _Load, args: argparse.Namespace) -> dict[str, Any]:
    """``driftloop serve --workers N`` against 1 worker (batching and logging on, the
    defaults), beside the sweep's baseline (batching and logging off), in one run; the
    summary's ``workers_ratio_by_c`` is N workers' / 1 worker's median throughput."""
    servers = [_Server(home, model, 1, False, args), _Server(home, model, 64, True, args),
               _Server(home, model, 64, True, args, workers=args.workers)]
    results = _interleaved(servers, load, args, "serve_workers")

    def median(batch: int, workers: int, c: int, key: str = "requests_per_s") -> float:
        return _median([r for r in results if r["max_batch_size"] == batch
                        and r["workers"] == workers and r["concurrency"] == c], key)

    cs = list(args.concurrency)
    return {"bench": "summary_workers", "model": model, "workers": args.workers,
            "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
            "requests_per_s_baseline_by_c": {c: median(1, 1, c) for c in cs},
            "requests_per_s_1_worker_by_c": {c: median(64, 1, c) for c in cs},
            f"requests_per_s_{args.workers}_workers_by_c": {c: median(64, args.workers, c)
                                                             for c in cs},
            "p99_ms_1_worker_by_c": {c: median(64, 1, c, "p99_ms") for c in cs},
            f"p99_ms_{args.workers}_workers_by_c": {c: median(64, args.workers, c, "p99_ms")
                                                     for c in cs},
            "workers_ratio_by_c": {c: round(median(64, args.workers, c) / median(64, 1, c), 2)
                                   for c in cs},
            "ratio_to_baseline_by_c": {c: round(median(64, args.workers, c)
                                                / median(1, 1, c), 2) for c in cs},
            "errors": sum(r["errors"] for r in results),
            "refused": sum(r["refused"] for r in results)}


def _shadow_home(home: str, model: str) -> tuple[str, Any]:
    """A copy of ``home`` where a second version of ``model`` is rolled out and stays in
    shadow; returns the copy and a function counting the rows the shadow scored."""
    from driftloop.config import RolloutSettings, Settings
    from driftloop.registry import Registry
    from driftloop.registry.rollouts import start_rollout

    copy = tempfile.mkdtemp(prefix="bench-serve-shadow-")
    shutil.copytree(home, copy, dirs_exist_ok=True)
    gates = ["metrics", "calibration", "slices", "data_check", "pii", "card", "holder"]
    settings = Settings.load(overrides={"home": copy, "gates": {"skip": gates}, "security": {
        "model_factories": ["bench_serve"]}}, environ={}, cwd=copy)
    registry = Registry.open(settings)
    holder = registry.holder(model, "production")
    candidate = registry.register(model, run_id=None, bundle=registry.bundle(holder),
                                  weights=registry.artifacts.get_bytes(holder.weights_sha256),
                                  metrics={}, actor="bench", reason="shadow candidate")
    # a shadow that never ends during the run, judged at the default cadence
    policy = RolloutSettings(shadow_rows=10**9, use_estimate=False, min_labels=10**9)
    rollout = start_rollout(registry, model, candidate.version, to="production", policy=policy)
    registry.close()

    def scored() -> int:
        with Registry.open(settings) as reader:
            return reader.store.count_rollout_observations(rollout.id)
    return copy, scored


def _shadow(home: str, model: str, load: _Load, args: argparse.Namespace) -> dict[str, Any]:
    """The default server (batching and logging on) with and without a candidate in shadow,
    interleaved; the summary's ratios are with / without."""
    copy, scored = _shadow_home(home, model)
    servers = [_Server(home, model, 64, True, args),
               _Server(copy, model, 64, True, args, shadow=True)]
    try:
        results = _interleaved(servers, load, args, "serve_shadow", stop=False)
        # the same offered load for both: shares of the no-shadow server's best throughput
        best = max(r["requests_per_s"] for r in results if not r["shadow"])
        paced = {share: _paced(servers, load, args, round(share * best, 1))
                 for share in args.paced_shares}
        rows = scored()
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(copy, ignore_errors=True)

    def median(shadow: bool, c: int, key: str = "requests_per_s") -> float:
        return _median([r for r in results if r["shadow"] is shadow
                        and r["concurrency"] == c], key)

    cs = list(args.concurrency)
    return {"bench": "summary_shadow", "model": model, "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "requests_per_s_off_by_c": {c: median(False, c) for c in cs},
            "requests_per_s_shadow_by_c": {c: median(True, c) for c in cs},
            "p99_ms_off_by_c": {c: median(False, c, "p99_ms") for c in cs},
            "p99_ms_shadow_by_c": {c: median(True, c, "p99_ms") for c in cs},
            "throughput_ratio_by_c": {c: round(median(True, c) / median(False, c), 3)
                                      for c in cs},
            "p99_ratio_by_c": {c: round(median(True, c, "p99_ms") / median(False, c, "p99_ms"),
                                        3) for c in cs},
            "paced": {share: _paced_summary(rows_of) for share, rows_of in paced.items()},
            "shadow_rows_scored": rows,
            "answered_with_shadow": sum(r["answered"] for r in results if r["shadow"]),
            "errors": sum(r["errors"] for r in results),
            "refused": sum(r["refused"] for r in results)}


def _paced_summary(paced: list[dict[str, Any]]) -> dict[str, Any]:
    """Median p50/p99 off and on at one offered rate, and their ratios (on / off)."""
    off = [r for r in paced if not r["shadow"]]
    on = [r for r in paced if r["shadow"]]
    return {"rate_per_s": paced[0]["rate_per_s"],
            "p50_ms_off": _median(off, "p50_ms"), "p50_ms_shadow": _median(on, "p50_ms"),
            "p99_ms_off": _median(off, "p99_ms"), "p99_ms_shadow": _median(on, "p99_ms"),
            "p50_ratio": round(_median(on, "p50_ms") / _median(off, "p50_ms"), 3),
            "p99_ratio": round(_median(on, "p99_ms") / _median(off, "p99_ms"), 3)}


def _median(rows: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in rows), 3)


def _points(results: list[dict[str, Any]], model: str) -> dict[tuple[int, bool, int], Any]:
    """Median figures over repeats for each (max_batch_size, logging, C) of one model."""
    groups: dict[tuple[int, bool, int], list[dict[str, Any]]] = {}
    for r in results:
        if r["bench"] == "serve" and r["model"] == model:
            groups.setdefault((r["max_batch_size"], r["logging"], r["concurrency"]), []).append(r)
    return {key: {"requests_per_s": _median(rows, "requests_per_s"),
                  "min": min(r["requests_per_s"] for r in rows),
                  "max": max(r["requests_per_s"] for r in rows),
                  "p50_ms": _median(rows, "p50_ms"), "p99_ms": _median(rows, "p99_ms"),
                  "loop_cpu_ms_per_req": _median(rows, "loop_cpu_ms_per_req"),
                  "other_cpu_ms_per_req": _median(rows, "other_cpu_ms_per_req"),
                  "loop_busy": _median(rows, "loop_busy"),
                  "refused": sum(r["refused"] for r in rows),
                  "errors": sum(r["errors"] for r in rows), "rows": rows}
            for key, rows in groups.items()}


def _summary(results: list[dict[str, Any]], model: str, facts: dict[str, Any]) -> dict[str, Any]:
    points = _points(results, model)
    cs = sorted({c for _, _, c in points})

    def best(batch: int, log: bool) -> tuple[int, dict[str, Any]]:
        c = max(cs, key=lambda c: points[batch, log, c]["requests_per_s"])
        return c, points[batch, log, c]

    def paired_cost(batch: int, c: int) -> float:
        on = {r["repeat"]: r["requests_per_s"] for r in points[batch, True, c]["rows"]}
        off = {r["repeat"]: r["requests_per_s"] for r in points[batch, False, c]["rows"]}
        return round(statistics.median(1 - on[k] / off[k] for k in on if k in off), 3)

    c_on, on = best(64, False)
    c_off, off = best(1, False)
    same_c = points[1, False, c_on]  # no batching at batching's best concurrency
    loop_on, loop_off = on["loop_cpu_ms_per_req"], off["loop_cpu_ms_per_req"]
    return {
        "bench": "summary", "model": model,
        "batching_ratio_same_c": round(on["requests_per_s"] / same_c["requests_per_s"], 2),
        "p99_on_ms": on["p99_ms"], "p99_off_same_c_ms": same_c["p99_ms"],
        "p99_not_worse_same_c": on["p99_ms"] <= same_c["p99_ms"],
        "batching_ratio_best": round(on["requests_per_s"] / off["requests_per_s"], 2),
        "best_concurrency_on": c_on, "best_concurrency_off": c_off,
        "requests_per_s_on": on["requests_per_s"], "requests_per_s_off": off["requests_per_s"],
        "p99_off_best_ms": off["p99_ms"], "p99_not_worse_best": on["p99_ms"] <= off["p99_ms"],
        "batching_ratio_by_c": {c: round(points[64, False, c]["requests_per_s"]
                                         / points[1, False, c]["requests_per_s"], 2)
                                for c in cs},
        "logging_cost_best": round(1 - best(64, True)[1]["requests_per_s"]
                                   / on["requests_per_s"], 3),
        "logging_cost_paired_on_by_c": {c: paired_cost(64, c) for c in cs},
        "logging_cost_paired_off_by_c": {c: paired_cost(1, c) for c in cs},
        "loop_cpu_ms_per_req_on": loop_on, "loop_cpu_ms_per_req_off": loop_off,
        "loop_busy_on": on["loop_busy"], "loop_busy_off": off["loop_busy"],
        **{k: v for k, v in facts.items() if k.startswith("infer_")},
        "refused": sum(p["refused"] for p in points.values()),
        "errors": sum(p["errors"] for p in points.values()),
    }


def _markdown(results: list[dict[str, Any]], models: list[str]) -> str:
    lines = ["| model | batching | logging | C | req/s (median) | min-max | p50 ms | p99 ms "
             "| loop CPU ms/req |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for model in models:
        points = _points(results, model)
        for batch, log in CONFIGS:
            for c in sorted({c for b, g, c in points if (b, g) == (batch, log)}):
                p = points[batch, log, c]
                lines.append(
                    f"| {model} | {'on (64)' if batch > 1 else 'off (1)'} | "
                    f"{'on' if log else 'off'} | {c} | {p['requests_per_s']:.0f} | "
                    f"{p['min']:.0f}-{p['max']:.0f} | {p['p50_ms']:.2f} | {p['p99_ms']:.1f} | "
                    f"{p['loop_cpu_ms_per_req']:.2f} |")
    return "\n".join(lines)


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
    for name in ("wide", "small"):
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


def _runtimes(home: str, load: _Load, args: argparse.Namespace) -> None:
    body_file = load.body_file("wide", _bodies("wide"))
    for kind in ("torch", "int8", "onnx"):
        server = _Server(home, "wide", 64, False, args, runtime=kind)
        try:
            server.wait_ready()
            load.run(server, body_file, 8, 1)
            for c in (1, 32):
                _emit({"bench": "serve_runtime", "model": "wide", "runtime": kind,
                       "concurrency": c, **_measure(load, server, body_file, c, args.seconds)})
        finally:
            server.stop()
    _runtime_facts(home, [])


def _cpus(text: str | None) -> list[int] | None:
    return None if not text else [int(c) for c in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=3, help="per point")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=5.0,
                        help="max_latency_ms of the batching servers")
    parser.add_argument("--torch-threads", type=int, default=0,
                        help="torch intra-op threads in the servers (0: torch's default)")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator: wrk when installed (auto), or the Python client")
    parser.add_argument("--client-procs", type=int, default=2,
                        help="processes of the Python client")
    parser.add_argument("--server-cpus", help="pin the servers to these CPUs, e.g. 0,1")
    parser.add_argument("--client-cpus", help="pin the load generator to these CPUs, e.g. 1")
    parser.add_argument("--runtimes", action="store_true",
                        help="also serve and time the int8 and ONNX runtimes (wide, small)")
    parser.add_argument("--workers", type=int, default=1,
                        help="N > 1: instead of the sweep, compare `driftloop serve --workers N` "
                        "with 1 worker (and the unbatched baseline) for each model")
    parser.add_argument("--paced-shares", type=float, nargs="+", default=[0.25, 0.5],
                        help="with --shadow: open-loop rates as shares of the best "
                        "no-shadow throughput")
    parser.add_argument("--shadow", action="store_true",
                        help="instead of the sweep: shadow on vs off (table models)")
    parser.add_argument("--serve-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=64, help=argparse.SUPPRESS)
    parser.add_argument("--runtime", default="torch", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--log", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_worker:
        _serve_worker(args)
        return
    args.server_cpus, args.client_cpus = _cpus(args.server_cpus), _cpus(args.client_cpus)
    sys.path.insert(0, str(HERE))
    home = tempfile.mkdtemp(prefix="bench-serve-")
    load = _Load(args, Path(home))
    if load.wrk is None:
        print("bench_serve: wrk not found (apt-get install wrk); falling back to the Python "
              f"raw-socket client in {args.client_procs} processes.", file=sys.stderr)
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    models = list(args.models)
    if args.runtimes:
        models = sorted(set(models) | {"wide", "small"}, key=MODELS.index)
    facts = _register(home, models)
    import importlib.util

    _emit({"bench": "setup", "machine": platform.machine(), "cpus": os.cpu_count(),
           "python": platform.python_version(), "load_generator": load.name,
           "uvicorn_http": "httptools" if importlib.util.find_spec("httptools") else "h11",
           "uvicorn_loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
           "server_cpus": args.server_cpus, "client_cpus": args.client_cpus,
           "torch_threads": args.torch_threads or "default", "latency_ms": args.latency_ms,
           "load_avg": [round(x, 2) for x in os.getloadavg()], "models": facts})
    if args.shadow:
        try:
            for model in args.models:
                if model != "cnn":  # a rollout compares table rows (schema and classes)
                    _emit(_shadow(home, model, load, args))
        finally:
            shutil.rmtree(home, ignore_errors=True)
        return
    if args.workers > 1:
        try:
            for model in args.models:
                _emit(_workers(home, model, load, args))
        finally:
            shutil.rmtree(home, ignore_errors=True)
        return
    try:
        results = _sweep(home, list(args.models), load, args, Path(home))
        for model in args.models:
            _emit(_summary(results, model, facts[model]))
        if args.runtimes:
            _runtimes(home, load, args)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(_markdown(results, list(args.models)), file=sys.stderr)
    print(f"load average at the end: {[round(x, 2) for x in os.getloadavg()]}", file=sys.stderr)


if __name__ == "__main__":
    main()
