"""Prepare a data source for training: read, infer, split, preprocess, fingerprint.

:func:`prepare` is the one entry point the training launcher calls; :func:`apply_preprocessing`
repeats the fitted transform (stored as JSON) at evaluation and serving time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

from driftloop.data.fingerprint import fingerprint_arrays, fingerprint_frame
from driftloop.data.preprocess import (
    TablePreprocessor,
    TargetEncoder,
    apply_array_scaler,
    fit_array_scaler,
)
from driftloop.data.read import ARRAY_SUFFIXES, ArrayKind, read_arrays, read_table
from driftloop.data.schema import Schema, Task, infer_schema, infer_task
from driftloop.data.split import SplitIndices, split_rows
from driftloop.data.values import missing_mask
from driftloop.errors import DataError

InputKind = Literal["table", "image", "sequence"]
INPUT_KINDS = ("table", "image", "sequence")
MAX_ARRAY_CLASSES = 100
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitArrays:
    """Model-ready arrays of one split."""

    x: np.ndarray  # float32: N×F (table numeric block), N×C×H×W (image), N×T×F (sequence)
    x_cat: np.ndarray | None  # int64 N×C category codes for tables (N×0 if none); None for arrays
    y: np.ndarray  # int64 class codes or float32 standardised target
    rows: np.ndarray  # int64 row positions in the source


@dataclass(frozen=True)
class PreparedData:
    """Everything training needs from a data source, and what serving needs to repeat it."""

    input_kind: InputKind
    task: Task
    n_classes: int  # 0 for regression
    classes: list[Any]  # original labels (JSON-able), [] for regression
    schema: Schema | None  # None for arrays
    preprocessor: dict[str, Any] | None  # JSON state for apply_preprocessing
    target_encoder: dict[str, Any]  # TargetEncoder.to_json()
    model_inputs: dict[str, Any]  # table: n_numeric, cardinalities; arrays: shape without N
    splits: dict[str, SplitArrays]  # "train", "val", "test"
    source_uri: str
    fingerprints: dict[str, str]  # "source", "train", "val", "test"
    row_counts: dict[str, int]  # "source", "train", "val", "test"
    warnings: list[str]


def prepare(
    source: str | os.PathLike[str] | pd.DataFrame,
    target: str | None = None,
    *,
    task: Task | None = None,
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    time_column: str | None = None,
    group_column: str | None = None,
    input_kind: InputKind | None = None,
    exclude: Mapping[str, str] | None = None,
) -> PreparedData:
    """Read ``source``, split it and fit preprocessing on the train rows only.

    Parameters
    ----------
    source
        A CSV/TSV/Parquet file or DataFrame (a table), or an ``.npz`` file with ``X`` and ``y``.
    target
        The column to predict; required for tables, ignored (with a warning) for arrays.
    task
        Force ``binary``, ``multiclass`` or ``regression`` instead of inferring it.
    seed, val_fraction, test_fraction
        Passed to :func:`~driftloop.data.split.split_rows`.
    time_column, group_column
        Split a table by time or by group; the column is not used as a feature.
    input_kind
        ``table``, ``image`` or ``sequence``; inferred from the source when None.
    exclude
        Table columns to leave out of the features, with the reason (e.g. columns holding
        personal data); the schema lists them as excluded.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"x": rng.normal(size=100), "colour": rng.choice(["r", "g"], 100)})
    >>> frame["label"] = np.where(frame["x"] > 0, "pos", "neg")
    >>> data = prepare(frame, "label", seed=0)
    >>> data.task, data.classes, data.row_counts
    ('binary', ['neg', 'pos'], {'source': 100, 'train': 70, 'val': 15, 'test': 15})
    >>> data.model_inputs, data.splits["train"].x.shape, data.splits["train"].x_cat.shape
    ({'n_numeric': 1, 'cardinalities': [3]}, (70, 1), (70, 1))
    """
    if input_kind not in (None, *INPUT_KINDS):
        raise DataError(
            f"input_kind must be one of {', '.join(INPUT_KINDS)} or None. Got {input_kind!r}."
        )
    if time_column is not None and group_column is not None:
        raise DataError("Split by time or by group, not both. Pass only one of the two columns.")
    name = "the DataFrame" if isinstance(source, pd.DataFrame) else str(source)
    fractions = {"seed": seed, "val_fraction": val_fraction, "test_fraction": test_fraction}
    if isinstance(source, pd.DataFrame) or not name.lower().endswith(ARRAY_SUFFIXES):
        if input_kind in ("image", "sequence"):
            raise DataError(f"{name}: input_kind {input_kind!r} needs an .npz file with X and y.")
        return _prepare_table(
            source, name, target, task, time_column, group_column, fractions, exclude or {}
        )
    if input_kind == "table":
        raise DataError(f"{name}: an .npz file holds arrays, not a table. Use a CSV or Parquet.")
    if time_column is not None or group_column is not None:
        raise DataError(f"{name}: time and group splits need a table (CSV or Parquet).")
    kind = cast("ArrayKind | None", input_kind)
    return _prepare_arrays(source, name, target, task, kind, fractions)


def apply_preprocessing(
    preprocessor: dict[str, Any], frame_or_array: pd.DataFrame | np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """Rebuild a fitted transform from its JSON state and apply it.

    Returns ``(x, x_cat)`` for tables and ``(x, None)`` for arrays, exactly as :func:`prepare`
    built the splits.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> frame = pd.DataFrame({"x": np.arange(30.0), "y": np.arange(30) % 2})
    >>> data = prepare(frame, "y", seed=1)
    >>> x, x_cat = apply_preprocessing(data.preprocessor, frame.iloc[data.splits["val"].rows])
    >>> np.array_equal(x, data.splits["val"].x), x_cat.shape
    (True, (4, 0))
    """
    kind = preprocessor.get("kind")
    if kind == "table":
        if not isinstance(frame_or_array, pd.DataFrame):
            raise DataError(
                f"a table model needs a DataFrame of feature columns, got "
                f"{type(frame_or_array).__name__}."
            )
        return TablePreprocessor.from_json(preprocessor).transform(frame_or_array)
    if kind == "array":
        return apply_array_scaler(preprocessor, np.asarray(frame_or_array)), None
    raise DataError(f"preprocessor JSON has unknown kind {kind!r}; expected 'table' or 'array'.")


def _prepare_table(
    source: str | os.PathLike[str] | pd.DataFrame,
    name: str,
    target: str | None,
    task: Task | None,
    time_column: str | None,
    group_column: str | None,
    fractions: dict[str, Any],
    exclude: Mapping[str, str],
) -> PreparedData:
    table = read_table(source)
    frame = table.frame
    columns = ", ".join(map(str, frame.columns))
    if target is None:
        raise DataError(
            f"{name}: a table needs a target column. Pass --target with one of: {columns}."
        )
    split_columns: dict[str, str] = {}
    for role, column in (("time", time_column), ("group", group_column)):
        if column is not None:
            if column not in frame.columns:
                raise DataError(
                    f"{name}: {role} column {column!r} not found. Available columns: {columns}."
                )
            split_columns[column] = f"{role} column (used to split, not as a feature)"
    unknown = [column for column in exclude if column not in frame.columns]
    if unknown:
        raise DataError(f"{name}: column {unknown[0]!r} (asked to be excluded) not found. "
                        f"Available columns: {columns}.")
    excluded = {**{c: r for c, r in exclude.items() if c != target}, **split_columns}
    schema, warnings = infer_schema(frame, target, task, exclude=excluded, source=name)
    kept = np.flatnonzero(~missing_mask(frame[target])).astype(np.int64)
    if len(kept) < len(frame):
        dropped = np.setdiff1d(np.arange(len(frame)), kept)
        warnings.append(
            f"dropped {len(dropped)} rows with a missing target {target!r} "
            f"(first: row {dropped[0]})"
        )
    kept_frame = frame.iloc[kept]
    classify = schema.task != "regression"
    split = split_rows(
        len(kept),
        stratify=kept_frame[target] if classify and not split_columns else None,
        time_values=None if time_column is None else kept_frame[time_column],
        group_values=None if group_column is None else kept_frame[group_column],
        **fractions,
    )
    rows = {part: kept[positions] for part, positions in split.as_dict().items()}
    preprocessor = TablePreprocessor(schema).fit(frame.iloc[rows["train"]], source=name)
    # Classes are the label set of every kept row (a class seen only in test still needs an
    # output); regression statistics come from train rows only.
    encoder = TargetEncoder().fit(
        kept_frame[target] if classify else frame[target].iloc[rows["train"]], schema.task
    )
    splits = {}
    for part, positions in rows.items():
        part_frame = frame.iloc[positions]
        x, x_cat = preprocessor.transform(part_frame, source=name)
        splits[part] = SplitArrays(x, x_cat, encoder.transform(part_frame[target]), positions)
    warnings += _absent_class_warnings(encoder, splits)
    return PreparedData(
        input_kind="table",
        task=schema.task,
        n_classes=len(encoder.classes_),
        classes=encoder.classes_,
        schema=schema,
        preprocessor=preprocessor.to_json(),
        target_encoder=encoder.to_json(),
        model_inputs={
            "n_numeric": len(preprocessor.numeric_feature_names_),
            "cardinalities": preprocessor.cardinalities_,
        },
        splits=splits,
        source_uri=table.uri,
        fingerprints={
            "source": fingerprint_frame(frame),
            **{p: fingerprint_frame(frame.iloc[r]) for p, r in rows.items()},
        },
        row_counts=_row_counts(len(frame), split),
        warnings=warnings,
    )


def _prepare_arrays(
    source: str | os.PathLike[str],
    name: str,
    target: str | None,
    task: Task | None,
    input_kind: ArrayKind | None,
    fractions: dict[str, Any],
) -> PreparedData:
    arrays = read_arrays(source, kind=input_kind)
    warnings = []
    if target not in (None, "y"):
        warnings.append(f"target {target!r} is ignored for arrays: labels are read from 'y'")
    labels = pd.Series(arrays.y)
    source_name = Path(name).name
    resolved = infer_task(labels, task, name="y", source=source_name, max_classes=MAX_ARRAY_CLASSES)
    classify = resolved != "regression"
    split = split_rows(len(labels), stratify=labels if classify else None, **fractions)
    rows = split.as_dict()
    scaler = fit_array_scaler(arrays.x[rows["train"]], arrays.kind)
    encoder = TargetEncoder().fit(labels if classify else labels.iloc[rows["train"]], resolved)
    splits = {
        part: SplitArrays(
            x=apply_array_scaler(scaler, arrays.x[positions]),
            x_cat=None,
            y=encoder.transform(labels.iloc[positions]),
            rows=positions,
        )
        for part, positions in rows.items()
    }
    warnings += _absent_class_warnings(encoder, splits)
    return PreparedData(
        input_kind=arrays.kind,
        task=resolved,
        n_classes=len(encoder.classes_),
        classes=encoder.classes_,
        schema=None,
        preprocessor=scaler,
        target_encoder=encoder.to_json(),
        model_inputs={"shape": list(arrays.x.shape[1:])},
        splits=splits,
        source_uri=arrays.uri,
        fingerprints={
            "source": fingerprint_arrays(arrays.x, arrays.y),
            **{
                part: fingerprint_arrays(arrays.x[r], arrays.y[r])
                for part, r in rows.items()
            },
        },
        row_counts=_row_counts(len(labels), split),
        warnings=warnings,
    )


def _row_counts(n_source: int, split: SplitIndices) -> dict[str, int]:
    return {"source": n_source, **{p: len(r) for p, r in split.as_dict().items()}}


def _absent_class_warnings(encoder: TargetEncoder, splits: dict[str, SplitArrays]) -> list[str]:
    if encoder.task_ == "regression":
        return []
    seen = set(splits["train"].y.tolist())
    absent = [label for code, label in enumerate(encoder.classes_) if code not in seen]
    if not absent:
        return []
    return [
        f"class{'es' if len(absent) > 1 else ''} {', '.join(map(repr, absent))} "
        "not in the train split; the model cannot learn to predict them. Add more rows."
    ]
