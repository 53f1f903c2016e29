"""``driftloop models optimize`` on a wide MLP and a CNN: the runtime table, ratios vs fp32.

What is measured
    Two versions are trained in process and registered: ``wide`` (tabular MLP, 32 numeric + 1
    categorical input, three 1024-wide hidden layers, ``bench_serve.wide_mlp``) on a synthetic
    two-class table, and ``cnn`` (driftloop's ``cnn``, 1x28x28 images, 10 classes) on noise
    images whose class is the position of a bright patch. Each is then optimised exactly as
    ``driftloop models optimize NAME 1 --data HOLDOUT`` does
    (:func:`driftloop.loop.optimize.optimize_version`) on a held-out set drawn from the same
    distribution: eager fp32 torch (the baseline), torch int8 (torch.ao dynamic quantisation),
    ONNX Runtime fp32 and ONNX Runtime int8, timed in interleaved rounds.

Output
    One JSON line per model and runtime: batch-1 latency p50/p99 (µs), its ratio to fp32 with
    the bootstrap interval over rounds, rows/s at batch ``--batch`` and that time's ratio, size
    on disk, the metric with its interval, the upper bound of the paired drop, eligibility and
    why refused; then one line per model with the recommendation.

Run (one timed benchmark at a time on a shared machine)::

    .venv/bin/python -m compileall -q src
    flock /tmp/bench.lock .venv/bin/python benchmarks/bench_optimize.py
    PYTHONPATH=src:/path/to/torchao flock /tmp/bench.lock .venv/bin/python \
        benchmarks/bench_optimize.py --torchao   # torchao beside them, and its import time
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serve import IMAGE_SHAPE, _fit, _frame  # noqa: E402


def _patch_images(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise images with an 8x8 patch somewhere whose brightness is the class (0-9): a task a
    CNN that pools over positions can learn."""
    rng = np.random.default_rng(seed)
    x = rng.random((rows, *IMAGE_SHAPE), dtype=np.float32) * 0.3
    y = rng.integers(0, 10, rows)
    for i, c in enumerate(y):
        r, col = rng.integers(0, IMAGE_SHAPE[1] - 8, 2)
        x[i, 0, r:r + 8, col:col + 8] += 0.1 + 0.07 * int(c)
    return x.round(3), y


def _fit_images(module: Any, data: Any, epochs: int) -> None:
    import torch

    split = data.splits["train"]
    x, y = torch.from_numpy(split.x), torch.from_numpy(split.y)
    opt = torch.optim.Adam(module.parameters(), lr=3e-3)
    module.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(y)).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(module(x[idx]), y[idx]).backward()
            opt.step()
    module.eval()


def _register(registry: Any, home: Path, name: str, epochs: int) -> Any:
    import torch
    from safetensors.torch import save

    from driftloop.data.prepare import prepare
    from driftloop.models.architectures import build_model
    from driftloop.registry import ModelBundle

    torch.manual_seed(0)
    if name == "wide":
        data = prepare(_frame(6000), "label", seed=0)
        arch = "bench_serve:wide_mlp"
        module = build_model(arch, data.model_inputs, data.n_classes, allowed=["bench_serve"])
        _fit(module, data, epochs=epochs)
        holdout: Any = _frame(2000, seed=1)
    else:
        x, y = _patch_images(3000, seed=0)
        np.savez(home / "images.npz", X=x, y=y)
        data = prepare(str(home / "images.npz"), None, seed=0, input_kind="image")
        arch = "cnn"
        module = build_model(arch, data.model_inputs, data.n_classes)
        _fit_images(module, data, epochs)
        hx, hy = _patch_images(1000, seed=1)
        holdout = home / "holdout.npz"
        np.savez(holdout, X=hx, y=hy)
    bundle = ModelBundle(task=data.task, input_kind=data.input_kind, model=arch,
                         model_inputs=data.model_inputs, n_outputs=data.n_classes,
                         classes=data.classes,
                         schema=None if data.schema is None else data.schema.to_json(),
                         preprocessor=data.preprocessor, target_encoder=data.target_encoder)
    record = registry.register(name, run_id=None, bundle=bundle,
                               weights=save(module.state_dict()), metrics={}, actor="bench",
                               reason="benchmark")
    return record, holdout


def _torchao_candidate(loaded: Any) -> Any:
    """torchao's int8 dynamic quantisation (Int8DynamicActivationInt8WeightConfig) of the
    module, as a runtime the optimizer can time beside the others (``--torchao``; torchao is
    not a driftloop dependency: put it on PYTHONPATH for this run)."""
    import copy

    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    from driftloop.loop.optimize import Candidate, _module_bytes
    from driftloop.serve.runtimes import TorchRuntime

    module = copy.deepcopy(loaded.module).eval()
    quantize_(module, Int8DynamicActivationInt8WeightConfig())
    runtime = TorchRuntime(module, loaded.bundle.input_kind)
    runtime.name = "torchao_int8"  # type: ignore[misc]
    try:
        size = _module_bytes(module)
    except (RuntimeError, TypeError, AttributeError):  # a tensor subclass without storage
        size = 0
    return Candidate(runtime, size)


def _import_seconds(modules: str, repeats: int = 3) -> float:
    """Best wall time of ``python -c 'import MODULES'`` in a fresh interpreter."""
    import subprocess
    import time

    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {modules}"], check=True,
                       capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


def _emit(line: dict[str, Any]) -> None:
    print(json.dumps(line), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["wide", "cnn"],
                        choices=["wide", "cnn"])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--torchao", action="store_true",
                        help="also time torchao's int8 (torchao importable) and its import")
    args = parser.parse_args()

    import torch

    from driftloop.config import Settings
    from driftloop.loop.optimize import optimize_version
    from driftloop.registry import Registry

    home = Path(tempfile.mkdtemp(prefix="bench-optimize-"))
    settings = Settings.load(overrides={"home": str(home), "security": {
        "model_factories": ["bench_serve"]}}, environ={}, cwd=home)
    _emit({"bench": "optimize_setup", "torch": torch.__version__,
           "threads": torch.get_num_threads(), "rounds": args.rounds, "calls": args.calls,
           "batch": args.batch})
    if args.torchao:
        import torchao

        _emit({"bench": "torchao_import", "torchao": torchao.__version__,
               "import_torch_s": round(_import_seconds("torch"), 3),
               "import_torch_torchao_s": round(_import_seconds("torch, torchao"), 3)})
    with Registry.open(settings) as registry:
        for name in args.models:
            record, holdout = _register(registry, home, name, args.epochs)
            candidates = None
            if args.torchao:
                from driftloop.loop.optimize import default_candidates

                loaded = registry.load(name, record.version)
                candidates = [*default_candidates(loaded, record.size_bytes),
                              _torchao_candidate(loaded)]
            report = optimize_version(registry, record, data=holdout, rounds=args.rounds,
                                      calls=args.calls, batch=args.batch,
                                      candidates=candidates)
            for r in report["runtimes"]:
                _emit({
                    "bench": "optimize", "model": name, "runtime": r["name"],
                    "p50_us": round(r["latency_b1_us"]["p50"], 1),
                    "p99_us": round(r["latency_b1_us"]["p99"], 1),
                    "latency_ratio": _interval(r["latency_ratio"]),
                    "rows_per_s": round(r["throughput_rows_per_s"]),
                    "large_batch_ratio": _interval(r["large_batch_ratio"]),
                    "size_bytes": r["size_bytes"],
                    report["metric"]: _interval(r["metric"], 4),
                    "drop_upper_bound": round(r["drop_upper_bound"], 4),
                    "eligible": r["eligible"], "refused": r["refused"],
                })
            _emit({"bench": "optimize_choice", "model": name, "rows": report["rows"],
                   "recommended": report["recommended"], "max_drop": report["max_drop"],
                   "criterion": report["criterion"]})


def _interval(i: dict[str, Any], digits: int = 3) -> list[float | None]:
    return [None if i[k] is None else round(i[k], digits) for k in ("value", "low", "high")]


if __name__ == "__main__":
    main()
