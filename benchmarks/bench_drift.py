"""``dl.drift`` on two large tables, against ``scipy.stats.ks_2samp`` per column as a floor.

What is measured
    1. ``driftloop.drift(ref.parquet, cur.parquet)`` end to end — reading both files (a few
       columns at a time), the reference profile (quantile bins, counts), the current profile
       over the reference's bins, and per column the binned KS test, the normalised Wasserstein
       distance and the missing-rate test, corrected together — in a fresh subprocess, so its
       peak RSS measures only that call and the interpreter with driftloop imported (``VmHWM``
       of ``/proc/self/status``, with ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` next to
       it; see :func:`peak_rss_mb` for why both).
    2. The floor, in a fresh subprocess the same way: ``pandas.read_parquet`` of both files and
       ``scipy.stats.ks_2samp`` on each column pair (no correction, no effect size, no missing
       values handling). ``ratio`` is driftloop's time over the floor's.
    3. The per-window cost of the monitor: ``profile_like`` + ``compare`` of a 10,000-row
       window against the stored reference profile (loaded from its JSON), median of repeats.

The data
    Seeded standard normal columns (``--dtype`` float64 by default, float32 possible), 1,000,000
    rows × 100 columns per file; in the current file the first ``--shifted`` (10) columns are
    shifted by ``--shift`` (0.2) standard deviations, so exactly 10 features should drift and
    the dataset should not (10 % < the 50 % share threshold). Written once as Parquet (one
    row group per 250,000 rows, snappy) to a temporary folder.

How to run (from the repository root)::

    .venv/bin/python benchmarks/bench_drift.py                 # 1,000,000 × 100, float64
    .venv/bin/python benchmarks/bench_drift.py --rows 200000 --columns 20

Prints JSON lines on stdout, one per measurement. Always exits 0 (it is a measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TIME_BUDGET_S = 10.0
RSS_BUDGET_MB = 2048.0


def write_table(path: Path, rows: int, columns: int, seed: int, shifted: int, shift: float,
                dtype: str) -> None:
    """The seeded table described in the module docstring, written as Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    arrays = []
    for i in range(columns):
        values = rng.standard_normal(rows, dtype=np.float64)
        if i < shifted:
            values += shift
        arrays.append(pa.array(values.astype(dtype)))
    table = pa.table(arrays, names=[f"x{i:03d}" for i in range(columns)])
    pq.write_table(table, path, row_group_size=250_000)


def child_driftloop(ref: str, cur: str) -> dict[str, object]:
    started = time.perf_counter()
    import driftloop as dl
    from driftloop.config import DriftSettings

    dl.drift  # noqa: B018  # the lazy import, timed on its own
    imported = time.perf_counter()
    report = dl.drift(ref, cur, settings=DriftSettings())
    seconds = time.perf_counter() - imported
    return {"seconds": seconds, "import_seconds": imported - started, "drifted": report.drifted,
            "drift_detected": report.drift_detected, "n_tests": report.n_tests}


def child_floor(ref: str, cur: str) -> dict[str, object]:
    import pandas as pd
    from scipy.stats import ks_2samp

    started = time.perf_counter()
    a, b = pd.read_parquet(ref), pd.read_parquet(cur)
    significant = [c for c in a.columns
                   if ks_2samp(a[c].to_numpy(), b[c].to_numpy()).pvalue < 0.05]
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "significant_uncorrected": len(significant)}


def child_window(ref: str, cur: str, window: int, repeats: int) -> dict[str, object]:
    import pandas as pd
    import pyarrow.parquet as pq

    from driftloop.config import DriftSettings
    from driftloop.monitor import Profile, build_reference, compare, profile_like

    settings = DriftSettings()
    reference = Profile.from_json(json.loads(json.dumps(
        build_reference(pd.read_parquet(ref), settings=settings).to_json())))
    frame = pq.ParquetFile(cur).read_row_group(0).to_pandas()
    times = []
    for i in range(repeats):
        chunk = frame.iloc[i * window:(i + 1) * window]
        started = time.perf_counter()
        compare(reference, profile_like(reference, chunk, settings=settings), settings=settings)
        times.append(time.perf_counter() - started)
    return {"seconds_median": statistics.median(times), "seconds_max": max(times),
            "repeats": repeats, "window_rows": window}


def peak_rss_mb() -> float:
    """This process's peak resident set size: ``VmHWM`` (Linux), else ``ru_maxrss``.

    On Linux ``ru_maxrss`` survives ``execve``: a child started by a parent that holds 1 GB
    reports at least 1 GB. ``VmHWM`` belongs to the process's own address space. The parent
    stays small anyway (the tables are written by a child), so both agree; both are printed.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(*args: str, options: list[str] | None = None) -> dict[str, object]:
    """Run this script in child mode in a fresh interpreter; its peak RSS is its own."""
    proc = subprocess.run([sys.executable, __file__, *(options or []), "--child", *args],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=100)
    parser.add_argument("--shifted", type=int, default=10)
    parser.add_argument("--shift", type=float, default=0.2)
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--window", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, ref, cur, *rest = args.child
        if kind == "write":
            write_table(Path(ref), args.rows, args.columns, 1, 0, 0.0, args.dtype)
            write_table(Path(cur), args.rows, args.columns, 2, args.shifted, args.shift,
                        args.dtype)
            result: dict[str, object] = {}
        elif kind == "driftloop":
            result = child_driftloop(ref, cur)
        elif kind == "floor":
            result = child_floor(ref, cur)
        else:
            result = child_window(ref, cur, int(rest[0]), int(rest[1]))
        result["peak_rss_mb"] = peak_rss_mb()
        result["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    common = {"rows": args.rows, "columns": args.columns, "shifted": args.shifted,
              "shift": args.shift, "dtype": args.dtype, "python": platform.python_version(),
              "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as folder:
        ref, cur = Path(folder) / "ref.parquet", Path(folder) / "cur.parquet"
        started = time.perf_counter()
        options = [f"--rows={args.rows}", f"--columns={args.columns}",
                   f"--shifted={args.shifted}", f"--shift={args.shift}", f"--dtype={args.dtype}"]
        run_child("write", str(ref), str(cur), options=options)
        print(json.dumps({"bench": "write", "seconds": time.perf_counter() - started,
                          "bytes": ref.stat().st_size + cur.stat().st_size}), flush=True)
        ours = run_child("driftloop", str(ref), str(cur))
        print(json.dumps({"bench": "drift", **common, **ours}), flush=True)
        floor = run_child("floor", str(ref), str(cur))
        ratio = (ours["seconds"] / floor["seconds"]  # type: ignore[operator]
                 if "seconds" in ours and "seconds" in floor else None)
        print(json.dumps({"bench": "ks_2samp_floor", **common, **floor}), flush=True)
        verdict = {
            "bench": "summary", "driftloop_s": ours.get("seconds"),
            "floor_s": floor.get("seconds"), "ratio": ratio,
            "driftloop_peak_rss_mb": ours.get("peak_rss_mb"),
            "floor_peak_rss_mb": floor.get("peak_rss_mb"),
            "within_time_budget": ours.get("seconds", 1e9) <= TIME_BUDGET_S,  # type: ignore
            "within_rss_budget": ours.get("peak_rss_mb", 1e9) <= RSS_BUDGET_MB,  # type: ignore
        }
        print(json.dumps(verdict), flush=True)
        window = run_child("window", str(ref), str(cur), str(args.window), str(args.repeats))
        print(json.dumps({"bench": "window", "columns": args.columns, **window}), flush=True)


if __name__ == "__main__":
    main()
