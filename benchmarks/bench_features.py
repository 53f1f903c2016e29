"""Point-in-time retrieval: driftloop's ``join_as_of`` vs Feast's local offline store vs pandas.

What is measured (each implementation in its own fresh subprocess, so its peak RSS is its own)
    1. driftloop: ``pyarrow.parquet.read_table`` of each view's file, then
       ``driftloop.features.historical.join_as_of(rows, views, time_column="ts")`` (DuckDB's
       ``ASOF JOIN``), leak guard on (the default; ``created_time == event_time`` in this data,
       so the guard filters nothing and the semantics equal Feast's — see "The data").
    2. Feast (``benchmarks/feast_pit.py``, run with ``--feast-python``, Feast's own venv):
       ``get_historical_features(entity_df, features).to_df()`` with the default local ``file``
       (dask) offline store and, when ``ibis`` is installed there, its ``duckdb`` offline store.
       Feast is run once per shape (it is the slow one) and killed after ``--feast-timeout``
       seconds or above ``--rss-cap-mb``: reported as "did not finish", never guessed.
    3. naive pandas: ``pd.read_parquet`` + ``pd.merge_asof`` per view (both sides sorted by time,
       ``by=`` the key, ``tolerance=`` the TTL, ``direction="backward"``), then the rows' order
       restored.
    Wall time includes reading the view files (each implementation reads them its own way) and
    excludes writing the result. driftloop and pandas: median of ``--repeats`` (3) runs.
    Peak RSS: ``VmHWM`` of the child, and the parent's poll of the child's ``VmRSS``.
    Equality: every implementation's result is written as Parquet and compared by a child,
    sorted by row id, column by column, exactly (no arithmetic happens: a value is copied or
    missing), NaN == NaN. ``identical: false`` for any pair makes the script exit 1.

The data (seeded; written once to a temporary folder as Parquet)
    Entities ``0 .. entities-1``; each view holds ``snapshots`` (5) rows per entity at distinct,
    increasing event times (one every 2 days plus a random offset below 1 day, from 2026-01-01
    UTC), ``created_time == event_time``, float64 features from a standard normal. TTL 3 days,
    so a row more than 3 days after its entity's latest value gets missing features. Entity
    rows: keys drawn from ``0 .. 1.05 × entities`` (≈5 % unknown entities: missing), times
    uniform over the snapshots' span plus 4 days (some before the first value: missing; some
    after expiry: missing), in random order (so "same order" is tested).
    Shapes: ``a`` 1,000,000 rows × 3 views × 50 features, 100,000 entities × 5 = 500,000 rows
    per view; ``b`` (Feast #3003) 17,000 rows × 10 views × 100 features = 1,000 features, 10,000
    entities × 5 = 50,000 rows per view; ``quick`` 20,000 rows × 3 views × 10 features, 5,000
    entities.

Online lookup latency (``--online``): p50/p99 of looking up 1 and 100 entities per request in
the online store after materialising 10,000 entities × 50 features (the SQL store on an SQLite
file; a loopback Redis when ``redis-server`` is installed): the store's batched read, and
serving's whole lookup (``FeatureLookup.fill``); see :func:`child_online`.

How to run (from the repository root)::

    .venv/bin/python -m compileall -q src
    flock /tmp/bench.lock .venv/bin/python benchmarks/bench_features.py --quick
    flock /tmp/bench.lock .venv/bin/python benchmarks/bench_features.py --shape a --shape b --online

Prints JSON lines on stdout. Exits 1 when two implementations that finished disagree.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FEAST_SPEEDUP_TARGET = 10.0
BIG_JOIN_BUDGET_S = 60.0
TTL_SECONDS = 3 * 86_400
DAY = 86_400
START = np.datetime64("2026-01-01T00:00:00", "s")

SHAPES = {
    "a": {"rows": 1_000_000, "views": 3, "features": 50, "entities": 100_000, "snapshots": 5},
    "b": {"rows": 17_000, "views": 10, "features": 100, "entities": 10_000, "snapshots": 5},
    "quick": {"rows": 20_000, "views": 3, "features": 10, "entities": 5_000, "snapshots": 5},
}


# ---------------------------------------------------------------- data
def write_data(folder: Path, shape: dict[str, int], seed: int = 0) -> dict[str, object]:
    """Write the seeded view files and entity rows; return the spec every child reads."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_ent, snaps = shape["entities"], shape["snapshots"]
    views = []
    for v in range(shape["views"]):
        keys = np.repeat(np.arange(n_ent, dtype=np.int64), snaps)
        offsets = (np.tile(np.arange(snaps, dtype=np.int64) * 2 * DAY, n_ent)
                   + rng.integers(0, DAY, n_ent * snaps))
        times = pd.to_datetime(START + offsets, utc=True)
        names = [f"v{v}_f{j:03d}" for j in range(shape["features"])]
        values = rng.standard_normal((n_ent * snaps, shape["features"]))
        frame = pd.DataFrame(values, columns=names)
        frame.insert(0, "entity_id", keys)
        frame.insert(1, "event_time", times)
        frame.insert(2, "created_time", times)
        order = rng.permutation(len(frame))  # sources are not sorted in real life either
        path = folder / f"view{v}.parquet"
        frame.iloc[order].reset_index(drop=True).to_parquet(path, row_group_size=250_000)
        views.append({"name": f"view{v}", "path": str(path), "event_time": "event_time",
                      "created_time": "created_time", "ttl_seconds": TTL_SECONDS,
                      "features": names})
    span = (snaps - 1) * 2 * DAY + 4 * DAY
    rows = pd.DataFrame({
        "row_id": np.arange(shape["rows"], dtype=np.int64),
        "entity_id": rng.integers(0, int(n_ent * 1.05), shape["rows"]).astype(np.int64),
        "ts": pd.to_datetime(START - DAY + rng.integers(0, span + DAY, shape["rows"]), utc=True),
        "label": rng.integers(0, 2, shape["rows"]),
    })
    rows_path = folder / "rows.parquet"
    rows.to_parquet(rows_path)
    spec = {"rows": str(rows_path), "key": "entity_id", "time_column": "ts", "row_id": "row_id",
            "views": views}
    (folder / "spec.json").write_text(json.dumps(spec))
    return spec


# ---------------------------------------------------------------- children
def child_driftloop(spec: dict, out: str) -> dict[str, object]:
    import pandas as pd
    import pyarrow.parquet as pq

    from driftloop.features.historical import ViewFrame, join_as_of

    started = time.perf_counter()
    rows = pd.read_parquet(spec["rows"])
    views = [ViewFrame(name=v["name"], keys=[spec["key"]], event_time=v["event_time"],
                       created_time=v["created_time"], ttl_seconds=v["ttl_seconds"],
                       features=v["features"], table=pq.read_table(v["path"]))
             for v in spec["views"]]
    result = join_as_of(rows, views, time_column=spec["time_column"])
    seconds = time.perf_counter() - started
    if out:
        write_result(result.frame, spec, out)
    missing = sum(sum(f.values()) for f in result.missing.values())
    return {"seconds": seconds, "rows": len(result.frame), "missing_values": missing}


def child_pandas(spec: dict, out: str) -> dict[str, object]:
    import pandas as pd

    started = time.perf_counter()
    rows = pd.read_parquet(spec["rows"])
    frame = rows.sort_values(spec["time_column"], kind="stable")
    for v in spec["views"]:
        right = pd.read_parquet(v["path"], columns=[spec["key"], v["event_time"], *v["features"]])
        right = right.sort_values(v["event_time"], kind="stable")
        frame = pd.merge_asof(frame, right, left_on=spec["time_column"],
                              right_on=v["event_time"], by=spec["key"],
                              tolerance=pd.Timedelta(seconds=v["ttl_seconds"]),
                              direction="backward").drop(columns=[v["event_time"]])
    frame = frame.sort_values(spec["row_id"], kind="stable").reset_index(drop=True)
    seconds = time.perf_counter() - started
    if out:
        write_result(frame, spec, out)
    return {"seconds": seconds, "rows": len(frame)}


def write_result(frame, spec: dict, out: str) -> None:  # noqa: ANN001 (pandas frame)
    features = [f for v in spec["views"] for f in v["features"]]
    frame[[spec["row_id"], *features]].to_parquet(out)


def child_compare(spec: dict, left: str, right: str) -> dict[str, object]:
    """Exact equality of two results, row by row (by row id), NaN == NaN.

    ``identical`` needs the same rows and the same values. Feast's ``file`` store drops an
    entity row whose entity has values but none within the TTL window (instead of returning it
    with missing features), so the rows both hold are compared too (``identical_on_common_rows``)
    and each dropped row is checked to be one the other side left missing for some view.
    """
    import pyarrow.parquet as pq

    row_id = spec["row_id"]
    a, b = pq.read_table(left).sort_by(row_id), pq.read_table(right).sort_by(row_id)
    ids_a = a[row_id].to_numpy()
    ids_b = b[row_id].to_numpy()
    common = np.intersect1d(ids_a, ids_b, assume_unique=True)
    in_a, in_b = np.isin(ids_a, common), np.isin(ids_b, common)
    differing: list[str] = []
    views_missing_a = np.zeros(len(ids_a), dtype=bool)
    for view in spec["views"]:
        all_missing = np.ones(len(ids_a), dtype=bool)
        for name in view["features"]:
            x = a[name].to_numpy(zero_copy_only=False).astype(np.float64)
            y = b[name].to_numpy(zero_copy_only=False).astype(np.float64)
            all_missing &= np.isnan(x)
            x, y = x[in_a], y[in_b]
            same = (x == y) | (np.isnan(x) & np.isnan(y))
            if not same.all():
                differing.append(f"{name}: {int((~same).sum())} rows")
        views_missing_a |= all_missing
    only_a, only_b = int((~in_a).sum()), int((~in_b).sum())
    return {"identical": not differing and only_a == 0 and only_b == 0,
            "identical_on_common_rows": not differing, "rows_compared": len(common),
            "rows_only_left": only_a, "rows_only_right": only_b,
            "rows_only_left_all_missing_a_view": bool(views_missing_a[~in_a].all()),
            "columns_differing": len(differing), "differing": differing[:5]}


ONLINE_ENTITIES, ONLINE_FEATURES = 10_000, 50


def child_online(folder: str, quick: bool) -> dict[str, object]:
    """p50/p99 of online lookups of 1 and 100 entities per request, per online store.

    One view of ``ONLINE_ENTITIES`` entities × ``ONLINE_FEATURES`` float features, materialised
    with the product's ``materialize_view`` into the SQL store (SQLite file) and, when
    ``redis-server`` is on this machine, into a throw-away loopback Redis. ``read``: the
    store's batched read by entity hash; ``fill``: what serving does per request
    (``FeatureLookup.fill``: hash the keys, read, check the TTL, fill the instances).
    """
    import pandas as pd

    from driftloop.config import EntitySettings, FeatureViewSettings
    from driftloop.data.hashing import hash_value
    from driftloop.features.materialize import materialize_view
    from driftloop.features.online import RedisOnlineStore, SqlOnlineStore
    from driftloop.features.spec import FeatureUse
    from driftloop.serve.entity_features import FeatureLookup
    from driftloop.store import Store, utcnow

    rng = np.random.default_rng(0)
    names = [f"f{j:02d}" for j in range(ONLINE_FEATURES)]
    now = pd.Timestamp(utcnow())
    table = pd.DataFrame(rng.standard_normal((ONLINE_ENTITIES, ONLINE_FEATURES)), columns=names)
    table.insert(0, "customer_id", np.arange(ONLINE_ENTITIES))
    table.insert(1, "ts", now - pd.Timedelta(hours=1))
    entity = EntitySettings(name="customer", keys=["customer_id"])
    view = FeatureViewSettings(name="stats", entity="customer", source="unused.parquet",
                               event_time="ts", ttl="30d", features=names)
    use = FeatureUse("stats", 1, "0" * 64, "customer", ["customer_id"], "ts", names, 30 * 86_400)
    key = "bench-pii-key"
    repeats = {1: 200 if quick else 2000, 100: 50 if quick else 500}
    store = Store.open(f"sqlite:///{folder}/dl.db")
    stores: list[tuple[str, object]] = [("sql_sqlite", SqlOnlineStore(store))]
    redis = _redis_server(folder)
    if redis is not None:
        stores.append(("redis", RedisOnlineStore(redis[1])))
    out: dict[str, object] = {"entities": ONLINE_ENTITIES, "features": ONLINE_FEATURES}
    try:
        for label, online in stores:
            started = time.perf_counter()
            materialize_view(store, online, view, entity, 1, table, key=key, actor="bench")
            out[f"{label}_materialize_s"] = time.perf_counter() - started
            lookup = FeatureLookup([use], names, online, key=key, missing="refuse")
            for batch, n in repeats.items():
                reads, fills = [], []
                for _ in range(n):
                    ids = rng.integers(0, ONLINE_ENTITIES, batch)
                    hashes = [hash_value(str(i), key) for i in ids]
                    t0 = time.perf_counter()
                    found = online.read("stats", hashes)  # type: ignore[attr-defined]
                    reads.append(time.perf_counter() - t0)
                    assert len(found) == len(set(hashes))
                    instances = [{"customer_id": int(i)} for i in ids]
                    t0 = time.perf_counter()
                    lookup.fill(instances)
                    fills.append(time.perf_counter() - t0)
                for what, times in (("read", reads), ("fill", fills)):
                    ms = np.array(times) * 1000
                    out[f"{label}_{what}_{batch}_p50_ms"] = float(np.percentile(ms, 50))
                    out[f"{label}_{what}_{batch}_p99_ms"] = float(np.percentile(ms, 99))
    finally:
        store.close()
        if redis is not None:
            redis[0].kill()
            redis[0].wait()
    return out


def _redis_server(folder: str) -> tuple[subprocess.Popen, str] | None:
    """A loopback ``redis-server`` (persistence off) on a free port, or None without one."""
    import socket

    binary = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
    if binary is None:
        return None
    import redis

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save",
                                "", "--appendonly", "no", "--dir", folder],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1.0)
    for _ in range(200):
        try:
            if client.ping():
                return process, f"redis://127.0.0.1:{port}/0"
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    process.kill()
    return None


def peak_rss_mb() -> float:
    """This process's own peak RSS: ``VmHWM`` (``ru_maxrss`` survives exec on Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- parent
def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run(argv: list[str], timeout: float, rss_cap_mb: float) -> dict[str, object]:
    """Run a child, polling its RSS; kill it past ``timeout`` s or ``rss_cap_mb``."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, text=True)
        polled, why = 0.0, None
        while proc.poll() is None:
            polled = max(polled, rss_mb(proc.pid))
            elapsed = time.perf_counter() - started
            if elapsed > timeout or polled > rss_cap_mb:
                why = (f"did not finish in {timeout:.0f} s" if elapsed > timeout
                       else f"killed above {rss_cap_mb:.0f} MB RSS")
                proc.kill()
                proc.wait()
                break
            time.sleep(0.05)
        out.seek(0)
        err.seek(0)
        if why:
            return {"error": why, "polled_rss_mb": polled,
                    "killed_after_s": time.perf_counter() - started}
        if proc.returncode != 0:
            return {"error": err.read().strip().splitlines()[-3:], "polled_rss_mb": polled}
        result = json.loads(out.read().strip().splitlines()[-1])
        result["polled_rss_mb"] = polled
        return result


def child_argv(kind: str, spec_path: Path, *rest: str) -> list[str]:
    return [sys.executable, __file__, "--child", kind, str(spec_path), *rest]


def timed(kind: str, spec_path: Path, out: Path, repeats: int, timeout: float,
          cap: float) -> dict[str, object]:
    """Median of ``repeats`` fresh runs (the first also writes the result for the check)."""
    runs = [run(child_argv(kind, spec_path, str(out) if i == 0 else ""), timeout, cap)
            for i in range(repeats)]
    failed = [r for r in runs if "error" in r]
    if failed:
        return failed[0]
    seconds = [float(r["seconds"]) for r in runs]  # type: ignore[arg-type]
    return {**runs[0], "seconds": statistics.median(seconds), "seconds_all": seconds,
            "peak_rss_mb": max(float(r["peak_rss_mb"]) for r in runs)}  # type: ignore[arg-type]


def feast_stores(feast_python: str) -> list[str]:
    """``file`` always; ``duckdb`` when Feast's venv has ibis (``feast[duckdb]``)."""
    probe = subprocess.run([feast_python, "-c", "import ibis, duckdb"], capture_output=True,
                           check=False)
    return ["file", "duckdb"] if probe.returncode == 0 else ["file"]


def bench_shape(name: str, args: argparse.Namespace, folder: Path) -> bool:
    """Measure one shape; print its JSON lines; False when two finished results differ."""
    shape = SHAPES[name]
    started = time.perf_counter()
    write_data(folder, shape)
    spec_path = folder / "spec.json"
    common = {"shape": name, **shape, "ttl_seconds": TTL_SECONDS}
    print(json.dumps({"bench": "write", **common, "seconds": time.perf_counter() - started}),
          flush=True)
    results: dict[str, dict[str, object]] = {}
    outs: dict[str, Path] = {}
    for impl in ("driftloop", "pandas"):
        outs[impl] = folder / f"{impl}.parquet"
        results[impl] = timed(impl, spec_path, outs[impl], args.repeats, args.timeout,
                              args.rss_cap_mb)
        print(json.dumps({"bench": impl, **common, **results[impl]}), flush=True)
    if args.feast_python:
        for store in feast_stores(args.feast_python):
            impl = f"feast_{store}"
            outs[impl] = folder / f"{impl}.parquet"
            results[impl] = run([args.feast_python, str(Path(__file__).with_name("feast_pit.py")),
                                 str(spec_path), str(outs[impl]), "--offline", store],
                                args.feast_timeout, args.rss_cap_mb)
            print(json.dumps({"bench": impl, **common, **results[impl]}), flush=True)
    ok = "error" not in results["driftloop"]  # driftloop failing is a failure, not a number
    finished = [i for i in results if "error" not in results[i]]
    for i, first in enumerate(finished):
        for second in finished[i + 1:]:
            # the side that may drop rows (Feast's file store) goes right
            left, right = (second, first) if first == "feast_file" else (first, second)
            check = run(child_argv("compare", spec_path, str(outs[left]), str(outs[right])),
                        args.timeout, args.rss_cap_mb)
            ok = ok and agrees(left, right, check)
            print(json.dumps({"bench": "equality", "shape": name,
                              "pair": f"{left} vs {right}", **check}), flush=True)
    print(json.dumps(summary(name, shape, results)), flush=True)
    for path in outs.values():
        path.unlink(missing_ok=True)
    return ok


def agrees(first: str, other: str, check: dict[str, object]) -> bool:
    """Two results agree: identical, or (Feast's ``file`` store only) the same values on every
    row it returned, having dropped only rows the other side left missing for some view."""
    if check.get("identical"):
        return True
    return ("feast_file" in (first, other) and check.get("rows_only_right") == 0
            and bool(check.get("identical_on_common_rows"))
            and bool(check.get("rows_only_left_all_missing_a_view")))


def summary(name: str, shape: dict[str, int], results: dict[str, dict]) -> dict[str, object]:
    ours = results["driftloop"].get("seconds")
    line: dict[str, object] = {"bench": "summary", "shape": name, "driftloop_s": ours}
    for impl, result in results.items():
        if impl == "driftloop":
            continue
        theirs = result.get("seconds")
        line[f"{impl}_s"] = theirs if theirs is not None else result.get("error")
        line[f"speedup_vs_{impl}"] = (theirs / ours if ours and theirs else None)
        line[f"{impl}_peak_rss_mb"] = result.get("peak_rss_mb")
    line["driftloop_peak_rss_mb"] = results["driftloop"].get("peak_rss_mb")
    feast = [k for k in results if k.startswith("feast_")]
    if feast and ours:
        # a Feast store that did not finish in its timeout was at least that slow
        line["target_10x_vs_feast"] = {
            k: (results[k]["seconds"] / ours >= FEAST_SPEEDUP_TARGET
                if "seconds" in results[k] else f"feast: {results[k].get('error')}")
            for k in feast}
    if name == "a" and ours is not None:
        line["target_1m_x_150_within_60s"] = ours <= BIG_JOIN_BUDGET_S
    return line


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", action="append", choices=sorted(SHAPES))
    parser.add_argument("--quick", action="store_true", help="the small shape only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--feast-python", default="/work/feast-venv/bin/python",
                        help="Python of a venv with feast installed ('' to skip Feast)")
    parser.add_argument("--feast-timeout", type=float, default=600.0)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--rss-cap-mb", type=float, default=10_000.0)
    parser.add_argument("--online", action="store_true", help="online lookup latency too")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, spec_path, *rest = args.child
        if kind == "online":  # its argument is a folder, not a spec
            print(json.dumps(child_online(spec_path, rest == ["quick"])))
            return 0
        spec = json.loads(Path(spec_path).read_text())
        if kind == "driftloop":
            result = child_driftloop(spec, rest[0] if rest else "")
        elif kind == "pandas":
            result = child_pandas(spec, rest[0] if rest else "")
        else:
            result = child_compare(spec, rest[0], rest[1])
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return 0
    if args.feast_python and not shutil.which(args.feast_python):
        print(json.dumps({"bench": "feast", "skipped": f"no {args.feast_python}"}), flush=True)
        args.feast_python = ""
    shapes = ["quick"] if args.quick else (args.shape or ["a", "b"])
    print(json.dumps({"bench": "machine", "python": platform.python_version(),
                      "cpus": os.cpu_count(), "shapes": shapes}), flush=True)
    ok = True
    for name in shapes:
        with tempfile.TemporaryDirectory() as folder:
            ok = bench_shape(name, args, Path(folder)) and ok
    if args.online:
        with tempfile.TemporaryDirectory() as folder:
            online = run([sys.executable, __file__, "--child", "online", folder,
                          *(["quick"] if args.quick else [])], args.timeout, args.rss_cap_mb)
        print(json.dumps({"bench": "online_lookup", **online}), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
