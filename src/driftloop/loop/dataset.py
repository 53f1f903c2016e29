"""The loop's training data: logged features joined with their feedback labels.

Labelled rows are the prediction-log rows of a model whose request got a feedback label (the
newest label wins). The data window is the newest ``loop.window_rows`` of them (``sliding``) or
all of them (``expanding``); the newest ``loop.holdout_fraction`` of the window is kept out as
the holdout on which champion and challenger are compared, the rest is the training set
(``expanding`` adds the champion's original training source when it is still readable).
Both are written as Parquet snapshots, named objects ``loop/snapshots/<model>-<tag>-train.parquet``
(and ``-holdout``) in the artifact store, so every host that shares the store can read them
(training reads them by URL) and ``driftloop erase`` cleans them wherever it runs.

Labels are read as the champion's classes (:func:`driftloop.models.labels.coerce_label`), the
form ``POST /v1/feedback`` stores them in: feedback stored before that coercion (``"1"`` or
``1.0`` for the class ``1``) joins the same class, and a label that is none of the classes (not
a finite number, for regression) is left out and counted.

Examples
--------
>>> from driftloop.models.bundle import ModelBundle
>>> from driftloop.store import Store, utcnow
>>> store = Store.open("sqlite://")
>>> _ = store.add_predictions([{"request_id": f"r{i}", "model_name": "m", "version": 1,
...     "at": utcnow(), "features": {"x": i}, "output": {}} for i in range(5)])
>>> _ = store.add_feedback([("r1", "1"), ("r2", " 1.0"), ("r3", 0), ("r4", "maybe")])
>>> labelled_frame(store, "m", target="y")[["x", "y"]].to_dict("list")
{'x': [1, 2, 3, 4], 'y': ['1', ' 1.0', 0, 'maybe']}
>>> champion = ModelBundle(task="binary", input_kind="table", model="mlp", model_inputs={},
...     n_outputs=2, classes=[0, 1], schema=None, preprocessor=None, target_encoder={})
>>> frame = labelled_frame(store, "m", target="y", bundle=champion)
>>> frame[["x", "y"]].to_dict("list"), frame.attrs["unknown_labels"]
({'x': [1, 2, 3], 'y': [1, 1, 0]}, 1)
>>> store.close()
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from driftloop.config import LoopSettings
from driftloop.data.read import read_table
from driftloop.errors import DataError
from driftloop.models.bundle import ModelBundle
from driftloop.models.labels import coerce_label
from driftloop.store.artifacts import LOOP_SNAPSHOTS, ArtifactStore
from driftloop.store.database import Store

SNAPSHOT_PREFIX = LOOP_SNAPSHOTS
LOG_ID = "_log_id"


@dataclass(frozen=True)
class LoopData:
    """Where the snapshots went (object name, and the URL or path that reads it) and how many
    rows each holds."""

    train_name: str
    holdout_name: str
    train_uri: str
    holdout_uri: str
    train_rows: int
    holdout_rows: int
    labelled_rows: int
    source_rows: int
    after_change: int = 0
    unknown_labels: int = 0  # labelled rows left out: the label is none of the classes


def labelled_frame(store: Store, model: str, *, target: str,
                   bundle: ModelBundle | None = None) -> pd.DataFrame:
    """Every labelled log row of ``model``: features, ``target`` and log id, oldest first.

    ``bundle``: the champion's; labels are read as its classes and rows whose label is none
    of them are left out (counted in ``frame.attrs["unknown_labels"]``). None: labels as
    stored.
    """
    classes: list[Any] | None = None
    if bundle is not None and bundle.task != "regression":
        classes = list(bundle.classes)
    records, unknown = [], 0
    for r in store.labelled_rows(model):
        label = r.label
        if bundle is not None:
            label = _coerced(label, classes)
            if label is None:
                unknown += 1
                continue
        records.append({**r.features, target: label, LOG_ID: r.log_id})
    frame = pd.DataFrame.from_records(records)
    frame.attrs["unknown_labels"] = unknown
    return frame


def _coerced(label: Any, classes: list[Any] | None) -> Any | None:
    try:
        return coerce_label(label, classes)
    except OverflowError:  # an integer too large for a float is no class nor value
        return None


def count_new_labels(store: Store, model: str, since: datetime) -> int:
    """Feedback labels for ``model``'s predictions that arrived after ``since``."""
    return store.count_labels(model, since=since)


def assemble(
    store: Store, model: str, *, target: str, loop: LoopSettings, artifacts: ArtifactStore,
    tag: str, source: str | None = None, since_log_id: int | None = None,
    bundle: ModelBundle | None = None,
) -> LoopData:
    """Write the training and holdout snapshots of one loop iteration into ``artifacts``.

    ``since_log_id`` keeps only rows logged from there on (where the change began) when at
    least 100 labelled rows are left; otherwise the whole window is used. ``bundle``: the
    champion's, whose classes the labels are read as (see :func:`labelled_frame`).
    Raises :class:`DataError` when there are too few labelled rows to train and compare.
    """
    frame = labelled_frame(store, model, target=target, bundle=bundle)
    unknown = int(frame.attrs.get("unknown_labels", 0))
    after_change = 0
    if since_log_id is not None and len(frame):
        recent = frame[frame[LOG_ID] >= since_log_id]
        if len(recent) >= 100:
            frame, after_change = recent, len(recent)
    if loop.data_window == "sliding":
        frame = frame.iloc[-loop.window_rows:]
    n = len(frame)
    holdout_rows = int(round(n * loop.holdout_fraction))
    if n < 50 or holdout_rows < 20:
        raise DataError(
            f"only {n} labelled prediction(s) of {model} in the loop's data window: it needs "
            "at least 50 (and 20 for the holdout) to retrain and compare. Send feedback with "
            "POST /v1/feedback."
            + (f" ({unknown} labelled row(s) left out: their label is none of the model's "
               "classes.)" if unknown else "")
        )
    holdout = frame.iloc[n - holdout_rows:]
    parts = [frame.iloc[: n - holdout_rows]]
    source_rows = 0
    if loop.data_window == "expanding" and source:
        original = _read_source(source, list(frame.columns))
        if original is not None:
            source_rows = len(original)
            parts.insert(0, original)
    train = pd.concat(parts, ignore_index=True)
    train_name = snapshot_name(model, tag, "train")
    holdout_name = snapshot_name(model, tag, "holdout")
    train_uri = artifacts.write_named(train_name,
                                      _parquet(train.drop(columns=[LOG_ID], errors="ignore")))
    holdout_uri = artifacts.write_named(holdout_name, _parquet(holdout.drop(columns=[LOG_ID])))
    return LoopData(train_name, holdout_name, train_uri, holdout_uri, len(train), len(holdout),
                    n, source_rows, after_change, unknown)


def snapshot_name(model: str, tag: str, part: str) -> str:
    """The artifact-store name of one snapshot.

    Examples
    --------
    >>> snapshot_name("credit", "loop3", "train")
    'loop/snapshots/credit-loop3-train.parquet'
    """
    return f"{SNAPSHOT_PREFIX}/{model}-{tag}-{part}.parquet"


def _read_source(source: str, columns: list[str]) -> pd.DataFrame | None:
    """The original training data, limited to the logged columns; None when unreadable."""
    try:
        frame = read_table(source).frame
    except Exception:  # noqa: BLE001 - a moved or deleted source only narrows the window
        return None
    keep = [c for c in columns if c in frame.columns]
    return frame[keep]


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


__all__ = ["LOG_ID", "SNAPSHOT_PREFIX", "LoopData", "assemble", "count_new_labels",
           "labelled_frame", "snapshot_name"]
