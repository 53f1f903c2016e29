"""The store under load: prediction-log ingest rows/s and monitor time per window, SQLite vs
PostgreSQL, with 1 and 2 writer processes, each beside the raw driver on the same database.

What is measured
    1. **Ingest.** ``--writers`` processes (1, then 2) write ``--rows`` prediction-log rows in
       total between them through driftloop's own write path: :class:`PredictionLog`
       ``submit`` (one entry of ``--batch`` rows, as one request of that many instances, or
       many small requests collected during one ``flush_ms``) then ``flush`` →
       :meth:`Store.add_predictions`, one transaction per flush — what every ``driftloop
       serve`` replica does. The rows are a trained model's real inputs and outputs (the
       breast-cancer table from scikit-learn, 30 features, with its probabilities). Every
       writer imports, connects and prepares its rows, says it is ready, and all start at one
       instant the parent sends once all are ready; rows/s is all rows over (last writer's
       end − first writer's start).
       **Baseline**: the same rows, JSON-encoded, inserted by the bare driver (``sqlite3`` /
       ``psycopg`` ``executemany``, one transaction per batch) into a plain table of the same
       columns in the same database — the floor of what any ORM-based store can do.
    2. **Monitor.** ``driftloop.monitor`` over the rows the 1-writer run logged, cut into
       ``--window``-row windows (each: claim its rows, profile, drift tests against the stored
       reference, label-free estimate, store window and alerts), seconds per window; beside it
       the time to read the same rows back (``Store.unwindowed_predictions``).

The PostgreSQL server is a throw-away cluster started the way the tests start it
(``tests/pg_server.py``: Debian's ``postgresql``, ``fsync=off``, ``synchronous_commit=off``:
durability is not what is measured, and both driftloop and the baseline run on it). SQLite is a
file in a temporary folder, WAL mode (driftloop's default) for both.

How to run (from the repository root)::

    .venv/bin/python -m compileall -q src
    .venv/bin/python benchmarks/bench_store.py                  # 20,000 rows, batch 100
    .venv/bin/python benchmarks/bench_store.py --rows 50000 --backends postgresql

Prints one JSON line per measurement and a table at the end. Always exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODEL = "bench-store"
_START_DELAY_S = 0.2  # after every writer said it is ready: they start at one instant


# -- the writer processes (argv in, one JSON line out: no pickling of anything) ---------------

def _writer(kind: str, url: str, rows_file: str, first: int, count: int, batch: int) -> None:
    rows = json.loads(Path(rows_file).read_text())
    n = len(rows)
    mine = [rows[(first + i) % n] for i in range(count)]
    ids = [f"w{first}-{i}" for i in range(count)]
    write = _driftloop_writer(url) if kind == "driftloop" else _raw_writer(url)
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())  # the parent's "go": every writer is ready
    time.sleep(max(0.0, start_at - time.time()))
    started = time.time()
    for lo in range(0, count, batch):
        write(ids[lo:lo + batch], mine[lo:lo + batch])
    ended = time.time()
    print(json.dumps({"started": started, "ended": ended, "rows": count}))


def _driftloop_writer(url: str) -> Any:
    from driftloop.serve.prediction_log import PredictionLog
    from driftloop.store import Store

    store = Store.open(url)
    log = PredictionLog(store, max_rows=10_000_000)

    def write(ids: list[str], rows: list[dict[str, Any]]) -> None:
        columns = {k: [r["features"][k] for r in rows] for k in rows[0]["features"]}
        outputs = {k: [r["output"][k] for r in rows] for k in rows[0]["output"]}
        log.submit(MODEL, 1, ids, columns, outputs)
        if log.flush() != len(ids):
            raise SystemExit("driftloop writer: a flush dropped rows")

    return write


def _raw_writer(url: str) -> Any:
    sql = ("INSERT INTO bench_raw (request_id, model_name, version, at, features, output) "
           "VALUES ({0}, {0}, {0}, {0}, {0}, {0})")
    if url.startswith("sqlite"):
        conn: Any = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None,
                                    timeout=60)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=60000")
        statement = sql.format("?")
    else:
        import psycopg

        conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
        statement = sql.format("%s")

    def write(ids: list[str], rows: list[dict[str, Any]]) -> None:
        now = time.strftime("%Y-%m-%d %H:%M:%S")
        params = [(rid, MODEL, 1, now, json.dumps(r["features"]), json.dumps(r["output"]))
                  for rid, r in zip(ids, rows, strict=True)]
        if isinstance(conn, sqlite3.Connection):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(statement, params)
            conn.execute("COMMIT")
        else:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(statement, params)

    return write


# -- the parent -------------------------------------------------------------------------------

def _model_rows(settings: Any) -> list[dict[str, Any]]:
    """Register a quickly trained model (with its reference profile) and return its inputs and
    outputs on the whole table as prediction-log rows."""
    from sklearn.datasets import load_breast_cancer

    from driftloop.registry import Registry

    sys.path.insert(0, str(ROOT / "tests"))  # the tests' quick model: trained in one second
    from quick_model import register_quick

    frame = load_breast_cancer(as_frame=True).frame.rename(columns={"target": "label"})
    with Registry.open(settings) as registry:
        register_quick(registry, frame, MODEL)
        loaded = registry.load(MODEL, 1)
    features = frame.drop(columns="label")
    proba = loaded.predict_raw(features)
    return [{"features": {k: float(v) for k, v in features.iloc[i].items()},
             "output": {"predictions": int(proba[i].argmax()),
                        "probabilities": proba[i].tolist()}}
            for i in range(len(frame))]


def _create_raw_table(url: str) -> None:
    ddl = ("CREATE TABLE IF NOT EXISTS bench_raw (id {id}, request_id TEXT NOT NULL, "
           "model_name TEXT NOT NULL, version INTEGER NOT NULL, at TIMESTAMP NOT NULL, "
           "features {json} NOT NULL, output {json} NOT NULL)")
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute(ddl.format(id="INTEGER PRIMARY KEY AUTOINCREMENT", json="TEXT"))
        return
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"),
                         autocommit=True) as conn:
        conn.execute(ddl.format(id="BIGSERIAL PRIMARY KEY", json="JSONB"))


def _ingest(kind: str, url: str, rows_file: Path, total: int, writers: int,
            batch: int) -> dict[str, Any]:
    share = total // writers
    procs = [subprocess.Popen(
        [sys.executable, __file__, "--_writer", kind, url, str(rows_file), str(w * share),
         str(share), str(batch)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
        for w in range(writers)]
    for proc in procs:  # wait until every writer has imported, connected and read its rows
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit(f"{kind} writer failed before it was ready")
    start_at = time.time() + _START_DELAY_S
    results = []
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(f"{start_at!r}\n")
        proc.stdin.flush()
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"{kind} writer failed (exit {proc.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    late = max(r["started"] for r in results) - start_at
    seconds = max(r["ended"] for r in results) - min(r["started"] for r in results)
    return {"rows": share * writers, "seconds": seconds, "rows_per_s": share * writers / seconds,
            "late_start_s": late}


def _monitor(settings: Any, window: int) -> dict[str, Any]:
    from driftloop.monitor.windows import monitor
    from driftloop.registry import Registry

    with Registry.open(settings) as registry:
        started = time.perf_counter()
        rows = registry.store.unwindowed_predictions(MODEL)
        read_s = time.perf_counter() - started
        started = time.perf_counter()
        result = monitor(MODEL, window=window, settings=settings, registry=registry)
        seconds = time.perf_counter() - started
    n = len(result.windows)
    return {"rows": len(rows), "windows": n, "window_rows": window, "read_s": read_s,
            "monitor_s": seconds, "s_per_window": seconds / n if n else None}


def _settings(home: Path, url: str) -> Any:
    from driftloop.config import Settings

    return Settings.load(overrides={"home": str(home), "store_url": url,
                                    "monitor": {"min_rows": 20}}, environ={}, cwd=home)


def _fresh_url(backend: str, folder: Path, cluster: Any) -> str:
    if backend == "sqlite":
        folder.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{folder / 'dl.db'}"
    return cluster.fresh_database_url()


def _start_postgres(root: Path) -> Any:
    sys.path.insert(0, str(ROOT / "tests"))
    from pg_server import start_cluster  # the tests' throw-away cluster, same settings

    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    return start_cluster(root / "cluster")


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    tmp = Path(tempfile.mkdtemp(prefix="driftloop-bench-store-"))
    os.chmod(tmp, 0o755)
    cluster = _start_postgres(tmp / "pg") if "postgresql" in args.backends else None
    out: list[dict[str, Any]] = []
    try:
        model_rows: list[dict[str, Any]] | None = None
        rows_file = tmp / "rows.json"
        for backend in args.backends:
            for writers in args.writers:
                for kind in ("driftloop", "baseline"):
                    figures = []
                    for repeat in range(args.repeats):
                        home = tmp / f"{backend}-{writers}-{kind}-{repeat}"
                        url = _fresh_url(backend, home / "store", cluster)
                        settings = _settings(home, url)
                        if model_rows is None:
                            model_rows = _model_rows(settings)
                            rows_file.write_text(json.dumps(model_rows))
                        else:
                            _register_again(settings)
                        _create_raw_table(url)
                        figure = _ingest("driftloop" if kind == "driftloop" else "raw", url,
                                         rows_file, args.rows, writers, args.batch)
                        figures.append(figure)
                        if kind == "driftloop" and writers == 1 and repeat == 0:
                            line = {"part": "monitor", "backend": backend,
                                    **_monitor(settings, args.window)}
                            print(json.dumps(line), flush=True)
                            out.append(line)
                    line = {"part": "ingest", "backend": backend, "writers": writers,
                            "kind": kind, "batch": args.batch,
                            "rows_per_s": statistics.median(f["rows_per_s"] for f in figures),
                            "each": [round(f["rows_per_s"]) for f in figures],
                            "late_start_s": max(f["late_start_s"] for f in figures)}
                    print(json.dumps(line), flush=True)
                    out.append(line)
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _register_again(settings: Any) -> None:
    from sklearn.datasets import load_breast_cancer

    from driftloop.registry import Registry
    from quick_model import register_quick  # on sys.path since _model_rows

    frame = load_breast_cancer(as_frame=True).frame.rename(columns={"target": "label"})
    with Registry.open(settings) as registry:
        register_quick(registry, frame, MODEL)


def table(lines: list[dict[str, Any]]) -> str:
    """The Markdown table of RESULTS.md from the JSON lines."""
    ingest = {(x["backend"], x["writers"], x["kind"]): x for x in lines if x["part"] == "ingest"}
    text = ["| store | writers | driftloop rows/s | baseline rows/s | ratio |",
            "|---|---:|---:|---:|---:|"]
    for (backend, writers, kind), x in ingest.items():
        if kind != "driftloop":
            continue
        base = ingest.get((backend, writers, "baseline"))
        ratio = f"{x['rows_per_s'] / base['rows_per_s']:.2f}" if base else "–"
        text.append(f"| {backend} | {writers} | {x['rows_per_s']:,.0f} | "
                    f"{base['rows_per_s'] if base else 0:,.0f} | {ratio} |")
    text += ["", "| store | rows | windows | read (s) | monitor (s) | s / window |",
             "|---|---:|---:|---:|---:|---:|"]
    for x in lines:
        if x["part"] == "monitor":
            text.append(f"| {x['backend']} | {x['rows']:,} | {x['windows']} | "
                        f"{x['read_s']:.2f} | {x['monitor_s']:.2f} | "
                        f"{x['s_per_window'] or 0:.3f} |")
    return "\n".join(text)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_writer":
        kind, url, rows_file, first, count, batch = sys.argv[2:8]
        _writer(kind, url, rows_file, int(first), int(count), int(batch))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="rows per run, all writers")
    parser.add_argument("--batch", type=int, default=100, help="rows per flush / transaction")
    parser.add_argument("--writers", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 2])
    parser.add_argument("--backends", type=lambda s: s.split(","),
                        default=["sqlite", "postgresql"])
    parser.add_argument("--window", type=int, default=1000, help="monitor window rows")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps({"part": "setup", "date": time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                                               time.gmtime()),
                      "cores": os.cpu_count(), "load": os.getloadavg(), **vars(args)}),
          flush=True)
    lines = run(args)
    print(table(lines))


if __name__ == "__main__":
    main()
