"""Infer which columns are features, of which kind, and which learning task the target poses.

Rules, applied to the non-missing values of each column (blank text counts as missing):

- excluded, with a warning: all values missing; constant (at most one distinct value);
  datetime or other unsupported types; id-like (every value distinct, more than 20 values,
  and text or an integer dtype -- floats are never id-like);
- ``boolean``: bool dtype, or exactly the two words true/false or yes/no (any case);
- ``categorical``: text that does not parse as numbers; integer-valued numbers (an integer
  dtype, or floats that are all whole) with at most 20 distinct values that are also at most
  5% of the non-missing values, so that each category repeats about 20 times on average;
- ``numeric``: other numbers, and text that parses fully as numbers. Text of which at least 90%
  parses as numbers but not all is a typo, not a category: it raises DataError.

The target's task: text or booleans give classification; integer-valued numbers with at most
``max_classes`` (20) distinct values give classification; other numbers give regression.
Classification is ``binary`` with 2 classes and ``multiclass`` otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd

from driftloop.data.values import (
    bad_cell_error,
    category_keys,
    is_text,
    looks_boolean,
    missing_mask,
    parse_numbers,
    show,
)
from driftloop.errors import DataError

ColumnKind = Literal["numeric", "categorical", "boolean"]
Task = Literal["binary", "multiclass", "regression"]

COLUMN_KINDS: tuple[str, ...] = get_args(ColumnKind)
TASKS: tuple[str, ...] = get_args(Task)
MAX_CATEGORY_VALUES = 20
MAX_CATEGORY_SHARE = 0.05
MIN_ID_ROWS = 20
NUMERIC_TYPO_SHARE = 0.9
MAX_TABLE_CLASSES = 20


@dataclass(frozen=True)
class ColumnSpec:
    """One feature column and its kind."""

    name: str
    kind: ColumnKind


@dataclass(frozen=True)
class Schema:
    """Features, target and task of a table, plus the columns left out and why."""

    features: tuple[ColumnSpec, ...]
    target: str
    task: Task
    excluded: dict[str, str] = field(default_factory=dict)

    @property
    def feature_names(self) -> list[str]:
        """Names of the feature columns, in table order."""
        return [spec.name for spec in self.features]

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-able dict that :meth:`from_json` turns back into this schema.

        Examples
        --------
        >>> schema = Schema((ColumnSpec("age", "numeric"),), "label", "binary", {"id": "id-like"})
        >>> Schema.from_json(schema.to_json()) == schema
        True
        """
        return {
            "features": [{"name": spec.name, "kind": spec.kind} for spec in self.features],
            "target": self.target,
            "task": self.task,
            "excluded": dict(self.excluded),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Schema:
        """Rebuild a schema from :meth:`to_json` output."""
        try:
            features = tuple(ColumnSpec(str(f["name"]), f["kind"]) for f in data["features"])
            schema = cls(features, str(data["target"]), data["task"], dict(data["excluded"]))
        except (KeyError, TypeError) as exc:
            raise DataError(f"schema JSON is malformed (missing or bad field {exc}).") from None
        bad = [spec.kind for spec in features if spec.kind not in COLUMN_KINDS]
        if bad or schema.task not in TASKS:
            raise DataError(f"schema JSON holds an unknown kind or task: {bad or schema.task!r}.")
        return schema


def infer_schema(
    frame: pd.DataFrame,
    target: str,
    task: Task | None = None,
    *,
    exclude: Sequence[str] | Mapping[str, str] = (),
    source: str = "data",
) -> tuple[Schema, list[str]]:
    """Infer the schema of ``frame`` for predicting ``target``; return it and warnings.

    Parameters
    ----------
    frame
        The table; row numbers in messages are its index labels.
    target
        The column to predict.
    task
        Force the task instead of inferring it.
    exclude
        Columns to leave out of the features: names, or a mapping name -> reason.
    source
        What to call the table in messages (a file name).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({
    ...     "id": np.arange(40),
    ...     "age": rng.normal(40, 10, 40).round(1),
    ...     "city": rng.choice(["Oslo", "Rome"], 40),
    ...     "member": rng.choice(["yes", "no"], 40),
    ...     "label": rng.choice(["churn", "stay"], 40),
    ... })
    >>> schema, warnings = infer_schema(frame, "label")
    >>> [(spec.name, spec.kind) for spec in schema.features], schema.task
    ([('age', 'numeric'), ('city', 'categorical'), ('member', 'boolean')], 'binary')
    >>> warnings
    ["column 'id' excluded: every value is unique (looks like an identifier)"]
    """
    if target not in frame.columns:
        raise DataError(
            f"{source}: target column {target!r} not found. Available columns: "
            f"{_names(frame.columns)}. Pass --target with one of them."
        )
    excluded = _requested_exclusions(frame, exclude, target, source)
    resolved = infer_task(frame[target], task, name=target, source=source)
    features: list[ColumnSpec] = []
    warnings: list[str] = []
    for name in frame.columns:
        if name == target or name in excluded:
            continue
        kind, reason = classify_column(frame[name], name=str(name), source=source)
        if kind is None:
            excluded[str(name)] = reason
            warnings.append(f"column {name!r} excluded: {reason}")
        else:
            features.append(ColumnSpec(str(name), kind))
    if not features:
        reasons = "; ".join(f"{name!r}: {why}" for name, why in excluded.items()) or "none"
        raise DataError(
            f"{source}: no usable feature column besides target {target!r} "
            f"(excluded: {reasons}). Add at least one informative column."
        )
    return Schema(tuple(features), str(target), resolved, excluded), warnings


def classify_column(
    column: pd.Series, *, name: str, source: str = "data"
) -> tuple[ColumnKind | None, str]:
    """Return a feature column's kind, or None and the reason it is excluded.

    Examples
    --------
    >>> import pandas as pd
    >>> classify_column(pd.Series([1.5, 2.5, None]), name="x")
    ('numeric', '')
    >>> classify_column(pd.Series(["a", "a"]), name="x")
    (None, "constant (every value is 'a')")
    """
    present = column[~missing_mask(column)]
    if len(present) == 0:
        return None, "all values are missing"
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return None, "datetime column (not a feature; use it as the time column to split by time)"
    if not (is_text(column) or pd.api.types.is_numeric_dtype(column.dtype)):
        return None, f"unsupported type {column.dtype}"
    n_distinct = _n_distinct(present)
    if n_distinct <= 1:
        return None, f"constant (every value is {show(present.iloc[0])})"
    if looks_boolean(present):
        return "boolean", ""
    if is_text(column):
        return _classify_text(present, name=name, source=source)
    if pd.api.types.is_integer_dtype(column.dtype) and _is_id_like(present, n_distinct):
        return None, "every value is unique (looks like an identifier)"
    values = present.to_numpy(dtype=np.float64, na_value=np.nan)
    return _classify_numbers(values, n_distinct), ""


def infer_task(
    target: pd.Series,
    task: Task | None = None,
    *,
    name: str,
    source: str = "data",
    max_classes: int = MAX_TABLE_CLASSES,
) -> Task:
    """Infer (or check a forced) task for the target values; missing values are ignored.

    Examples
    --------
    >>> import pandas as pd
    >>> infer_task(pd.Series([0, 1, 1]), name="y"), infer_task(pd.Series([0.5, 1.7]), name="y")
    ('binary', 'regression')
    >>> infer_task(pd.Series([0, 1, 1]), "regression", name="y")
    'regression'
    """
    if task is not None and task not in TASKS:
        raise DataError(f"task must be one of {', '.join(TASKS)}. Got {task!r} instead.")
    present = target[~missing_mask(target)]
    if len(present) == 0:
        raise DataError(
            f"{source}: target column {name!r} has no values (all missing). "
            "Fill it in or pick another target."
        )
    values, bad = parse_numbers(present)
    if np.isinf(values).any():
        raise bad_cell_error(present, np.isinf(values), "a finite number", name=name, source=source)
    numeric = not looks_boolean(present) and not bad.any()
    n_distinct = _n_distinct(present)
    whole = numeric and bool(np.all(values == np.round(values)))
    if task is None:
        classify = not numeric or (whole and n_distinct <= max_classes)
    else:
        classify = task != "regression"
        _check_forced(task, numeric, whole, n_distinct, present, name, source, max_classes)
    if not classify:
        if n_distinct < 2:
            raise DataError(
                f"{source}: target column {name!r} is constant ({show(present.iloc[0])}); "
                "there is nothing to predict. Pick another target."
            )
        return "regression"
    if n_distinct < 2:
        raise DataError(
            f"{source}: target column {name!r} has a single class ({show(present.iloc[0])}); "
            "classification needs at least 2. Add rows of another class or pick another target."
        )
    if task == "binary" and n_distinct != 2:
        raise DataError(
            f"{source}: task 'binary' needs exactly 2 classes but target column {name!r} has "
            f"{n_distinct}. Use task 'multiclass'."
        )
    return task or ("binary" if n_distinct == 2 else "multiclass")


def _check_forced(
    task: Task,
    numeric: bool,
    whole: bool,
    n_distinct: int,
    present: pd.Series,
    name: str,
    source: str,
    max_classes: int,
) -> None:
    if task == "regression" and not numeric:
        example = next(v for v in present if isinstance(v, str) or not _is_number(v))
        raise DataError(
            f"{source}: task 'regression' needs a numeric target, but column {name!r} holds "
            f"labels such as {show(example)}. Use task 'binary' or 'multiclass', "
            "or a numeric target."
        )
    if task != "regression" and numeric and not whole and n_distinct > max_classes:
        raise DataError(
            f"{source}: task {task!r} needs a few classes, but target column {name!r} holds "
            f"{n_distinct} distinct non-integer numbers. Use task 'regression' or bin the target."
        )


def _classify_text(present: pd.Series, *, name: str, source: str) -> tuple[ColumnKind | None, str]:
    values, bad = parse_numbers(present)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return "numeric", ""
    if len(present) - n_bad >= NUMERIC_TYPO_SHARE * len(present):
        raise bad_cell_error(present, bad, "a number", name=name, source=source)
    if _is_id_like(present, _n_distinct(present)):
        return None, "every value is unique (looks like an identifier)"
    return "categorical", ""


def _classify_numbers(values: np.ndarray, n_distinct: int) -> ColumnKind:
    whole = bool(np.all(values == np.round(values)))
    few = n_distinct <= MAX_CATEGORY_VALUES and n_distinct <= MAX_CATEGORY_SHARE * len(values)
    return "categorical" if whole and few else "numeric"


def _is_id_like(present: pd.Series, n_distinct: int) -> bool:
    return len(present) > MIN_ID_ROWS and n_distinct == len(present)


def _n_distinct(present: pd.Series) -> int:
    # Text goes through category keys so that, say, 1 and 1.0 in one column count once.
    if is_text(present):
        return len(set(category_keys(present)))
    return int(present.nunique())


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))


def _requested_exclusions(
    frame: pd.DataFrame, exclude: Sequence[str] | Mapping[str, str], target: str, source: str
) -> dict[str, str]:
    if isinstance(exclude, Mapping):
        requested = {str(name): str(reason) for name, reason in exclude.items()}
    else:
        requested = {str(name): "excluded on request" for name in exclude}
    unknown = [name for name in requested if name not in frame.columns]
    if unknown:
        raise DataError(
            f"{source}: column {unknown[0]!r} (asked to be excluded) not found. Available "
            f"columns: {_names(frame.columns)}."
        )
    if target in requested:
        raise DataError(
            f"{source}: column {target!r} is the target and cannot also be excluded "
            f"({requested[target]}). Pick a different target or column."
        )
    return requested


def _names(columns: pd.Index) -> str:
    return ", ".join(str(name) for name in columns)
