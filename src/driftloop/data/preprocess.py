"""Turn table columns into model inputs, and targets into codes, identically at fit and serve.

Hand-written rather than built from sklearn transformers: sklearn estimators can only be
persisted with pickle, which driftloop forbids, so the learned state is plain JSON instead.

Output of :meth:`TablePreprocessor.transform`:

- a float32 N×F block: each numeric or boolean column, median-imputed and standardised (a
  column with standard deviation 0 is divided by 1), followed by one 0/1 missing-indicator
  column for each of those columns that had missing values at fit time (the indicators are not
  standardised);
- an int64 N×C block: per categorical column, 0 for a missing or unseen value and 1..K for the
  K categories seen at fit time, sorted as strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError

from driftloop.data.schema import TASKS, Schema, Task
from driftloop.data.values import (
    bad_cell_error,
    category_keys,
    missing_mask,
    parse_numbers,
    show,
    to_float,
)
from driftloop.errors import DataError

FORMAT_VERSION = 1
# Axes reduced over for per-channel (image) and per-feature (sequence) statistics.
ARRAY_AXES: dict[str, tuple[int, ...]] = {"image": (0, 2, 3), "sequence": (0, 1)}


@dataclass(frozen=True)
class _NumericColumn:
    name: str
    kind: str
    median: float
    mean: float
    std: float
    indicator: bool


class TablePreprocessor:
    """Impute, standardise and encode the feature columns of a :class:`Schema`.

    Parameters
    ----------
    schema
        Which columns are features and of which kind.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from driftloop.data.schema import ColumnSpec, Schema
    >>> schema = Schema((ColumnSpec("age", "numeric"), ColumnSpec("city", "categorical")),
    ...                 "label", "binary", {})
    >>> train = pd.DataFrame({"age": [20.0, np.nan, 40.0], "city": ["Rome", "Oslo", "Rome"]})
    >>> pre = TablePreprocessor(schema).fit(train)
    >>> x, x_cat = pre.transform(pd.DataFrame({"age": [30.0, None], "city": ["Oslo", "Lima"]}))
    >>> x.round(3).tolist(), x_cat.tolist()
    ([[0.0, 0.0], [0.0, 1.0]], [[1], [0]])
    >>> pre.numeric_feature_names_, pre.cardinalities_
    (['age', 'age__missing'], [3])
    """

    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    def fit(self, frame: pd.DataFrame, *, source: str = "data") -> TablePreprocessor:
        """Learn medians, means, standard deviations and categories from ``frame``."""
        self._check_columns(frame, source)
        if len(frame) == 0:
            raise DataError(f"{source}: cannot fit preprocessing on zero rows.")
        numeric = []
        for spec in self.schema.features:
            if spec.kind != "categorical":
                values = to_float(frame[spec.name], spec.kind, name=spec.name, source=source)
                numeric.append(_fit_numeric(spec.name, spec.kind, values))
        self.numeric_ = tuple(numeric)
        self.categories_ = {
            spec.name: _fit_categories(frame[spec.name])
            for spec in self.schema.features
            if spec.kind == "categorical"
        }
        return self

    def transform(
        self, frame: pd.DataFrame, *, source: str = "data"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the float32 N×F numeric block and the int64 N×C category codes."""
        self._check_fitted()
        self._check_columns(frame, source)
        values, indicators = [], []
        for column in self.numeric_:
            raw = to_float(frame[column.name], column.kind, name=column.name, source=source)
            missing = np.isnan(raw)
            values.append((np.where(missing, column.median, raw) - column.mean) / column.std)
            if column.indicator:
                indicators.append(missing.astype(np.float64))
        blocks = values + indicators
        x = np.column_stack(blocks) if blocks else np.zeros((len(frame), 0))
        codes = [_encode(frame[name], categories) for name, categories in self.categories_.items()]
        x_cat = np.column_stack(codes) if codes else np.zeros((len(frame), 0))
        return x.astype(np.float32), x_cat.astype(np.int64)

    @property
    def numeric_feature_names_(self) -> list[str]:
        """Names of the columns of the numeric block (indicators end in ``__missing``)."""
        self._check_fitted()
        names = [column.name for column in self.numeric_]
        return names + [f"{c.name}__missing" for c in self.numeric_ if c.indicator]

    @property
    def cardinalities_(self) -> list[int]:
        """Number of codes per categorical column: K seen categories + 1 unknown bucket."""
        self._check_fitted()
        return [len(categories) + 1 for categories in self.categories_.values()]

    def to_json(self) -> dict[str, Any]:
        """Return the fitted state as a JSON-able dict; :meth:`from_json` rebuilds it."""
        self._check_fitted()
        return {
            "kind": "table",
            "format": FORMAT_VERSION,
            "schema": self.schema.to_json(),
            "numeric": [asdict(column) for column in self.numeric_],
            "categorical": [
                {"name": name, "categories": list(categories)}
                for name, categories in self.categories_.items()
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TablePreprocessor:
        """Rebuild a fitted preprocessor from :meth:`to_json` output."""
        if data.get("kind") != "table" or data.get("format") != FORMAT_VERSION:
            raise DataError(
                f"preprocessor JSON has kind {data.get('kind')!r}, format "
                f"{data.get('format')!r}; expected kind 'table', format {FORMAT_VERSION}."
            )
        try:
            preprocessor = cls(Schema.from_json(data["schema"]))
            preprocessor.numeric_ = tuple(_NumericColumn(**c) for c in data["numeric"])
            preprocessor.categories_ = {
                str(c["name"]): tuple(str(k) for k in c["categories"]) for c in data["categorical"]
            }
        except (KeyError, TypeError) as exc:
            raise DataError(f"preprocessor JSON is malformed (bad field {exc}).") from None
        return preprocessor

    def _check_fitted(self) -> None:
        if not hasattr(self, "numeric_"):
            raise NotFittedError(
                "TablePreprocessor is not fitted yet. Call 'fit' with the training rows "
                "before using this preprocessor."
            )

    def _check_columns(self, frame: pd.DataFrame, source: str) -> None:
        missing = [name for name in self.schema.feature_names if name not in frame.columns]
        if missing:
            listed = ", ".join(repr(name) for name in missing)
            raise DataError(
                f"{source}: feature column{'s' if len(missing) > 1 else ''} {listed} not found. "
                f"The model needs columns: {', '.join(self.schema.feature_names)}. "
                "Add the missing columns (extra columns are ignored)."
            )


class TargetEncoder:
    """Encode a target: class codes 0..K-1 (classes sorted) or a standardised float32 value.

    Examples
    --------
    >>> encoder = TargetEncoder().fit(["stay", "churn", "stay"], "binary")
    >>> encoder.classes_, encoder.transform(["stay", "churn"]).tolist()
    (['churn', 'stay'], [1, 0])
    >>> encoder.inverse_transform([0, 1]).tolist()
    ['churn', 'stay']
    >>> regression = TargetEncoder().fit([1.0, 2.0, 3.0], "regression")
    >>> regression.transform([2.0, 3.0]).tolist()
    [0.0, 1.2247449159622192]
    """

    def fit(self, y: Sequence[Any] | np.ndarray | pd.Series, task: Task) -> TargetEncoder:
        """Learn the classes (classification) or mean and std (regression) of ``y``."""
        if task not in TASKS:
            raise DataError(f"task must be one of {', '.join(TASKS)}. Got {task!r} instead.")
        series = _target_series(y)
        self.task_: Task = task
        if task == "regression":
            values = _target_numbers(series)
            std = float(values.std())
            self.mean_, self.std_ = float(values.mean()), std if std > 0 else 1.0
            self._set_classes([])
        else:
            distinct = series.drop_duplicates()
            keys = category_keys(distinct)
            labels = {key: _json_value(cell) for key, cell in zip(keys, distinct, strict=True)}
            self._set_classes(_sorted_labels(list(labels.values())))
            self.mean_, self.std_ = 0.0, 1.0
        return self

    def transform(self, y: Sequence[Any] | np.ndarray | pd.Series) -> np.ndarray:
        """Return int64 class codes, or the float32 standardised target for regression."""
        self._check_fitted()
        series = _target_series(y)
        if self.task_ == "regression":
            return ((_target_numbers(series) - self.mean_) / self.std_).astype(np.float32)
        codes = self._index.get_indexer(category_keys(series))
        unknown = np.flatnonzero(codes < 0)
        if len(unknown):
            raise DataError(
                f"target label {show(series.iloc[unknown[0]])} in row {series.index[unknown[0]]} "
                f"was not seen in training. Known classes: "
                f"{', '.join(map(str, self.classes_))}. Drop those rows or retrain with them."
            )
        return codes.astype(np.int64)

    def inverse_transform(self, encoded: Sequence[Any] | np.ndarray) -> np.ndarray:
        """Map codes back to labels, or standardised values back to the target scale."""
        self._check_fitted()
        values = np.asarray(encoded)
        if self.task_ == "regression":
            return values.astype(np.float64) * self.std_ + self.mean_
        codes = values.astype(np.int64)
        if codes.size and (codes.min() < 0 or codes.max() >= len(self.classes_)):
            raise DataError(
                f"class codes must be in 0..{len(self.classes_) - 1}. "
                f"Got {int(codes.min())}..{int(codes.max())}."
            )
        return np.array(self.classes_)[codes]

    @property
    def classes_(self) -> list[Any]:
        """Class labels in code order (JSON-able values); [] for regression."""
        self._check_fitted()
        return list(self._classes)

    def to_json(self) -> dict[str, Any]:
        """Return the fitted state as a JSON-able dict; :meth:`from_json` rebuilds it."""
        self._check_fitted()
        return {
            "task": self.task_,
            "classes": list(self._classes),
            "mean": self.mean_,
            "std": self.std_,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TargetEncoder:
        """Rebuild a fitted encoder from :meth:`to_json` output."""
        try:
            encoder = cls()
            encoder.task_ = data["task"]
            encoder.mean_, encoder.std_ = float(data["mean"]), float(data["std"])
            encoder._set_classes(list(data["classes"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"target encoder JSON is malformed (bad field {exc}).") from None
        if encoder.task_ not in TASKS:
            raise DataError(f"target encoder JSON has unknown task {encoder.task_!r}.")
        return encoder

    def _set_classes(self, classes: list[Any]) -> None:
        self._classes = classes
        self._index = pd.Index(category_keys(pd.Series(classes, dtype=object)), dtype=object)

    def _check_fitted(self) -> None:
        if not hasattr(self, "task_"):
            raise NotFittedError(
                "TargetEncoder is not fitted yet. Call 'fit' with the training target first."
            )


def _fit_numeric(name: str, kind: str, values: np.ndarray) -> _NumericColumn:
    missing = np.isnan(values)
    median = float(np.median(values[~missing])) if (~missing).any() else 0.0
    filled = np.where(missing, median, values)
    mean, std = float(filled.mean()), float(filled.std())
    # Rounding leaves a tiny non-zero std on constant columns; dividing by it would blow up.
    tiny = 1e3 * np.finfo(np.float64).eps * max(abs(mean), 1.0)
    return _NumericColumn(name, kind, median, mean, std if std > tiny else 1.0, bool(missing.any()))


def _fit_categories(column: pd.Series) -> tuple[str, ...]:
    return tuple(sorted({key for key in category_keys(column) if key is not None}))


def _encode(column: pd.Series, categories: Sequence[str]) -> np.ndarray:
    # get_indexer gives -1 for unseen and missing keys, so +1 maps them to bucket 0.
    positions = pd.Index(list(categories), dtype=object).get_indexer(category_keys(column))
    return (positions + 1).astype(np.int64)


def _target_series(y: Sequence[Any] | np.ndarray | pd.Series) -> pd.Series:
    series = y if isinstance(y, pd.Series) else pd.Series(np.asarray(y))
    missing = missing_mask(series)
    if missing.any():
        row = series.index[int(np.flatnonzero(missing)[0])]
        raise DataError(
            f"target has {int(missing.sum())} missing values (first in row {row}). "
            "Drop those rows or fill in their labels."
        )
    return series


def _target_numbers(series: pd.Series) -> np.ndarray:
    values, bad = parse_numbers(series)
    if bad.any():
        name = "target" if series.name is None else str(series.name)
        raise bad_cell_error(series, bad, "a finite number", name=name, source="data")
    return values


def _json_value(cell: Any) -> Any:
    if isinstance(cell, (bool, np.bool_)):
        return bool(cell)
    if isinstance(cell, (int, np.integer)):
        return int(cell)
    if isinstance(cell, (float, np.floating)):
        return int(cell) if float(cell).is_integer() else float(cell)
    return str(cell)


def _sorted_labels(labels: list[Any]) -> list[Any]:
    if all(isinstance(v, bool) for v in labels) or all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in labels
    ):
        return sorted(labels)
    return sorted(labels, key=str)


def fit_array_scaler(x: np.ndarray, input_kind: str) -> dict[str, Any]:
    """Learn per-channel (image N×C×H×W) or per-feature (sequence N×T×F) mean and std.

    Returns the JSON-able state :func:`apply_array_scaler` applies; std 0 becomes 1.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(5.0, 2.0, size=(50, 3, 4)).astype("float32")
    >>> state = fit_array_scaler(x, "sequence")
    >>> state["kind"], len(state["mean"]), apply_array_scaler(state, x).mean().round(6) == 0
    ('array', 4, np.True_)
    """
    if input_kind not in ARRAY_AXES:
        raise DataError(f"input_kind must be 'image' or 'sequence'. Got {input_kind!r} instead.")
    axes = ARRAY_AXES[input_kind]
    mean = x.mean(axis=axes, dtype=np.float64)
    std = x.std(axis=axes, dtype=np.float64)
    return {
        "kind": "array",
        "format": FORMAT_VERSION,
        "input_kind": input_kind,
        "mean": [float(v) for v in mean],
        "std": [float(v) if v > 0 else 1.0 for v in std],
    }


def apply_array_scaler(state: Mapping[str, Any], x: np.ndarray) -> np.ndarray:
    """Standardise ``x`` with the state from :func:`fit_array_scaler`; return float32.

    An image batch given as N×H×W is read as N×1×H×W.
    """
    input_kind = state.get("input_kind")
    if state.get("kind") != "array" or input_kind not in ARRAY_AXES:
        raise DataError(f"array preprocessor JSON is malformed (input_kind {input_kind!r}).")
    values = np.asarray(x)
    if not (np.issubdtype(values.dtype, np.number) or values.dtype == np.bool_):
        raise DataError(f"inputs have dtype {values.dtype}; they must be numeric.")
    if input_kind == "image" and values.ndim == 3:
        values = values[:, np.newaxis]
    mean, std = np.asarray(state["mean"]), np.asarray(state["std"])
    expected = "N×C×H×W" if input_kind == "image" else "N×T×F"
    axis = 1 if input_kind == "image" else 2
    if values.ndim != len(ARRAY_AXES[input_kind]) + 1 or values.shape[axis] != len(mean):
        raise DataError(
            f"inputs have shape {values.shape}; the model expects {expected} with "
            f"{len(mean)} {'channels' if input_kind == 'image' else 'features'}."
        )
    if not np.isfinite(values).all():
        raise DataError("inputs hold non-finite values (NaN or inf). Remove or fill them.")
    shape = (1, -1, 1, 1) if input_kind == "image" else (1, 1, -1)
    # Cast to float32 first, as read_arrays does, so training and serving round alike.
    values = values.astype(np.float32).astype(np.float64)
    return ((values - mean.reshape(shape)) / std.reshape(shape)).astype(np.float32)
