"""The fitted table transform applied straight to validated request columns, without pandas.

:class:`~driftloop.data.preprocess.TablePreprocessor` works on DataFrames; building one and
parsing it column by column costs milliseconds whatever the batch size. Request columns are
already checked by :mod:`driftloop.serve.validation` (numbers or null; booleans; text), so this
module repeats the same arithmetic with numpy from the same JSON state: median imputation,
standardisation, missing indicators after the values, category codes 1..K with 0 for missing
or unseen. A categorical cell holding anything but text or null (numbers, booleans) gets the
key of :func:`~driftloop.data.values.category_keys`, the training-time key function, from
:func:`category_key` (one cell at a time, no pandas). ``tests/serve/test_features.py`` checks
it equals ``apply_preprocessing`` exactly.

This module imports only numpy and the standard library: an edge package
(:mod:`driftloop.serve.edge`) carries a verbatim copy of it, so an edge device preprocesses
with the same code as the server.

Examples
--------
>>> import numpy as np
>>> pre = {"numeric": [{"name": "age", "kind": "numeric", "median": 40.0, "mean": 40.0,
...                     "std": 10.0, "indicator": True}],
...        "categorical": [{"name": "city", "categories": ["Oslo", "Rome"]}]}
>>> t = ColumnTransform(pre)
>>> x, x_cat, unknown = t.transform({"age": [50, None], "city": ["Rome", "Paris"]})
>>> x.tolist(), x_cat.tolist(), unknown
([[1.0, 0.0], [0.0, 1.0]], [[2], [0]], {'city': 1})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

_BOOL_WORDS = {"true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0}


class ColumnTransform:
    """Apply a table preprocessor's JSON state to columns (feature name -> list of values)."""

    def __init__(self, preprocessor: Mapping[str, Any]) -> None:
        self.numeric = [dict(c) for c in preprocessor.get("numeric", [])]
        self.categorical = [
            (str(c["name"]), {str(k): i + 1 for i, k in enumerate(c["categories"])})
            for c in preprocessor.get("categorical", [])
        ]
        # the fitted state as F×1 arrays, so every numeric column is transformed at once
        self._median, self._mean, self._std = (
            np.array([float(c[key]) for c in self.numeric], np.float64)[:, None]
            for key in ("median", "mean", "std"))
        self._indicator = np.array([bool(c["indicator"]) for c in self.numeric], bool)

    def transform(self, columns: Mapping[str, list[Any]]
                  ) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        """``(x float32 N×F, x_cat int64 N×C, unknown-category counts by feature)``."""
        n = len(next(iter(columns.values()))) if columns else 0
        # one F×N array for all numeric columns (None -> NaN in numpy's own conversion), then
        # the same arithmetic as training's, vectorised over features and rows together
        raw = np.array([columns[c["name"]] if c["kind"] == "numeric"
                        else _floats(columns[c["name"]], c["kind"]) for c in self.numeric],
                       np.float64).reshape(len(self.numeric), n)
        missing = np.isnan(raw)
        values = (np.where(missing, self._median, raw) - self._mean) / self._std
        x = np.concatenate([values, missing[self._indicator].astype(np.float64)]).T
        codes, unknown = [], {}
        for name, index in self.categorical:
            column = columns[name]
            if set(map(type, column)) <= {str, type(None)}:
                keys: Any = [None if v is None or not v.strip() else v for v in column]
            else:
                keys = [category_key(v) for v in column]
            code = np.fromiter((index.get(k, 0) if k is not None else 0 for k in keys),
                               np.int64, len(keys))
            missed = sum(1 for k, c in zip(keys, code, strict=True) if k is not None and c == 0)
            if missed:
                unknown[name] = missed
            codes.append(code)
        x_cat = np.column_stack(codes) if codes else np.zeros((n, 0))
        return np.ascontiguousarray(x, np.float32), x_cat.astype(np.int64), unknown


def category_key(cell: Any) -> str | None:
    """The category key of one JSON cell, as :func:`driftloop.data.values.category_keys` gives
    it: None for null, NaN or blank text; integral numbers without a decimal point.

    >>> [category_key(v) for v in (3, 3.0, 2.5, True, " ", "Oslo", None)]
    ['3', '3', '2.5', 'True', None, 'Oslo', None]
    """
    if cell is None or (isinstance(cell, float) and cell != cell):
        return None
    if isinstance(cell, str):
        return cell if cell.strip() else None
    if isinstance(cell, bool):
        return str(cell)
    if isinstance(cell, int) or (isinstance(cell, float) and cell.is_integer()):
        return str(int(cell))
    return str(cell)


def _floats(values: list[Any], kind: str) -> np.ndarray:
    if kind == "boolean":
        return np.fromiter((np.nan if v is None else _BOOL_WORDS[v.strip().lower()]
                            if isinstance(v, str) else float(v) for v in values),
                           np.float64, len(values))
    return np.array([np.nan if v is None else v for v in values], np.float64)


__all__ = ["ColumnTransform", "category_key"]
