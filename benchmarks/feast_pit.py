"""Feast's point-in-time retrieval over the benchmark's Parquet files, in Feast's own venv.

``benchmarks/bench_features.py`` runs this script with the Python of a separate virtual
environment that has ``feast`` installed (driftloop's venv never imports feast)::

    /work/feast-venv/bin/python benchmarks/feast_pit.py SPEC.json OUT.parquet --offline file

``SPEC.json`` (written by the main script) names the entity-rows Parquet file, its key, time and
row-id columns, and each view: its Parquet file, event-time and created-time columns, TTL in
seconds and feature columns. The script builds a throw-away Feast repository in a temporary
folder (``provider: local``, an SQLite registry, the chosen offline store: ``file`` is Feast's
default dask-based local store, ``duckdb`` its ibis/DuckDB one), one ``Entity``, one
``FeatureView`` per view over a ``FileSource`` of that Parquet file (``timestamp_field`` = the
event time, ``created_timestamp_column`` = the created time, which Feast uses as a tie-breaker
only), applies it, and times ``get_historical_features(entity_df, features).to_df()``. The result,
sorted by row id, is written to ``OUT.parquet``; stdout gets one JSON line: seconds, peak RSS
(``VmHWM``), rows, the feast version and the offline store.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's own peak RSS (``VmHWM``; ``ru_maxrss`` survives exec on Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def repo_yaml(offline: str, folder: Path) -> str:
    return (f"project: bench\nregistry: {folder / 'registry.db'}\nprovider: local\n"
            f"online_store:\n  type: sqlite\n  path: {folder / 'online.db'}\n"
            f"offline_store:\n  type: {offline}\nentity_key_serialization_version: 3\n")


def build(spec: dict, folder: Path, offline: str):  # noqa: ANN201 (feast types)
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    (folder / "feature_store.yaml").write_text(repo_yaml(offline, folder))
    store = FeatureStore(repo_path=str(folder))
    entity = Entity(name="entity", join_keys=[spec["key"]], value_type=ValueType.INT64)
    views = []
    for view in spec["views"]:
        source = FileSource(name=f"{view['name']}_source", path=view["path"],
                            timestamp_field=view["event_time"],
                            created_timestamp_column=view["created_time"] or "")
        views.append(FeatureView(
            name=view["name"], entities=[entity], ttl=timedelta(seconds=view["ttl_seconds"]),
            schema=[Field(name=f, dtype=Float64) for f in view["features"]],
            source=source, online=False))
    store.apply([entity, *views])
    refs = [f"{v['name']}:{f}" for v in spec["views"] for f in v["features"]]
    return store, refs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("spec")
    parser.add_argument("out")
    parser.add_argument("--offline", choices=["file", "duckdb"], default="file")
    args = parser.parse_args()
    import feast
    import pandas as pd

    spec = json.loads(Path(args.spec).read_text())
    with tempfile.TemporaryDirectory() as tmp:
        store, refs = build(spec, Path(tmp), args.offline)
        started = time.perf_counter()
        rows = pd.read_parquet(spec["rows"])
        # Feast names the entity table's time column by convention.
        rows = rows.rename(columns={spec["time_column"]: "event_timestamp"})
        frame = store.get_historical_features(entity_df=rows, features=refs).to_df()
        seconds = time.perf_counter() - started
    frame = frame.sort_values(spec["row_id"], kind="stable").reset_index(drop=True)
    features = [f for v in spec["views"] for f in v["features"]]
    frame[[spec["row_id"], *features]].to_parquet(args.out)
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "rows": len(frame),
                      "feast": feast.__version__, "offline_store": args.offline}))


if __name__ == "__main__":
    sys.exit(main())
