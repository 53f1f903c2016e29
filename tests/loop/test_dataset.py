"""The loop's snapshots: labelled log rows, with each row's subject recorded beside them."""

from __future__ import annotations

import io

import pandas as pd
import pyarrow.parquet as pq

from driftloop.config import LoopSettings
from driftloop.data.subjects import subjects_of
from driftloop.loop.dataset import assemble
from driftloop.store import ArtifactStore, Store, utcnow


def _store(n: int) -> Store:
    store = Store.open("sqlite://")
    store.add_predictions([
        {"request_id": f"r{i}", "model_name": "m", "version": 1, "at": utcnow(),
         "features": {"x": float(i)}, "output": {}, "subject": ["ha", "hb", None][i % 3]}
        for i in range(n)])
    store.add_feedback([(f"r{i}", i % 2) for i in range(n)])
    return store


def _read(artifacts: ArtifactStore, name: str):
    return pq.read_table(io.BytesIO(artifacts.read_named(name)))


def test_snapshots_record_each_rows_subject_and_no_subject_column(tmp_path):
    artifacts = ArtifactStore(str(tmp_path / "artifacts"))
    with _store(90) as store:
        data = assemble(store, "m", target="y", loop=LoopSettings(), artifacts=artifacts,
                        tag="t1")
    tables = [_read(artifacts, data.train_name), _read(artifacts, data.holdout_name)]
    assert [t.column_names for t in tables] == [["x", "y"], ["x", "y"]]
    rows = [(x, s) for t in tables
            for x, s in zip(t.column("x").to_pylist(), subjects_of(t.schema, t.num_rows),
                            strict=True)]
    assert rows == [(float(i), ["ha", "hb", None][i % 3]) for i in range(90)]


def test_rows_of_the_original_source_record_no_subject(tmp_path):
    artifacts = ArtifactStore(str(tmp_path / "artifacts"))
    source = tmp_path / "source.csv"
    pd.DataFrame({"x": [100.0, 101.0], "y": [0, 1], "other": [1, 2]}).to_csv(source,
                                                                               index=False)
    with _store(90) as store:
        data = assemble(store, "m", target="y", artifacts=artifacts, tag="t2",
                        loop=LoopSettings(data_window="expanding"), source=str(source))
    train = _read(artifacts, data.train_name)
    assert data.source_rows == 2 and train.column_names == ["x", "y"]
    subjects = subjects_of(train.schema, train.num_rows)
    assert subjects[:2] == [None, None] and subjects[2:5] == ["ha", "hb", None]
