"""Split rows into train, validation and test sets: at random, by time or by group.

Each split gets ``max(1, round(n * fraction))`` of the ``n`` rows (random and time splits) or
of the ``n`` groups (group splits); train gets the rest. A split that would be empty raises
DataError. The same seed always gives the same split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from driftloop.data.values import missing_mask, show
from driftloop.errors import DataError

MIN_ROWS_PER_CLASS = 3  # fewer and a class cannot appear in every split: fall back to random


@dataclass(frozen=True)
class SplitIndices:
    """Row positions of each split: int64 arrays, sorted ascending, disjoint."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def as_dict(self) -> dict[str, np.ndarray]:
        """Return ``{"train": ..., "val": ..., "test": ...}``."""
        return {"train": self.train, "val": self.val, "test": self.test}


def split_rows(
    n_rows: int | pd.DataFrame,
    /,
    *,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    stratify: Sequence[Any] | np.ndarray | pd.Series | None = None,
    time_values: Sequence[Any] | np.ndarray | pd.Series | None = None,
    group_values: Sequence[Any] | np.ndarray | pd.Series | None = None,
) -> SplitIndices:
    """Split ``n_rows`` row positions (or a frame's rows) into train, val and test.

    Parameters
    ----------
    n_rows
        The number of rows, or a frame whose rows are split.
    seed
        Seed of the numpy Generator that shuffles rows or groups.
    val_fraction, test_fraction
        Share of rows (or groups) for validation and test; each in (0, 1), together below 1.
    stratify
        Class labels: keep class shares equal across splits (random split only). Ignored
        (plain random split) when a class has fewer than 3 rows.
    time_values
        Times (datetimes, date strings or numbers): the newest rows go to test, the next to
        val. Rows tied with the oldest test (or val) time go to the later split, so train
        holds no row as new as any val or test row.
    group_values
        Group labels: whole groups go to one split, chosen by a seeded shuffle of groups.

    Examples
    --------
    >>> split = split_rows(10, seed=0, val_fraction=0.2, test_fraction=0.2)
    >>> split.train.tolist(), split.val.tolist(), split.test.tolist()
    ([0, 1, 3, 5, 8, 9], [2, 7], [4, 6])
    >>> days = ["2024-01-01"] * 4 + ["2024-01-02"] * 3 + ["2024-01-03"] * 3
    >>> by_time = split_rows(10, seed=0, val_fraction=0.2, test_fraction=0.2, time_values=days)
    >>> by_time.train.tolist(), by_time.val.tolist(), by_time.test.tolist()
    ([0, 1, 2, 3], [4, 5, 6], [7, 8, 9])
    """
    n = len(n_rows) if isinstance(n_rows, pd.DataFrame) else int(n_rows)
    _check_fractions(val_fraction, test_fraction)
    if time_values is not None and group_values is not None:
        raise DataError("Split by time or by group, not both. Pass only one of the two columns.")
    if time_values is not None:
        times = _parse_times(_series(time_values, n, "time"))
        return _split_by_time(times, val_fraction, test_fraction)
    if group_values is not None:
        groups = _series(group_values, n, "group")
        return _split_by_group(groups, seed, val_fraction, test_fraction)
    classes = None if stratify is None else _series(stratify, n, "stratify")
    return _split_random(n, seed, val_fraction, test_fraction, classes)


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 < value < 1:
            raise DataError(f"{name} must be between 0 and 1 (exclusive). Got {value!r} instead.")
    if val_fraction + test_fraction >= 1:
        raise DataError(
            f"val_fraction + test_fraction must be below 1 so that rows are left to train. "
            f"Got {val_fraction!r} + {test_fraction!r}."
        )


def _series(values: Any, n: int, what: str) -> pd.Series:
    # A Series keeps its index, so messages name the caller's row labels.
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if len(series) != n:
        raise DataError(f"{what} values have {len(series)} entries but there are {n} rows.")
    return series


def _label(series: pd.Series, what: str) -> str:
    return f"{what} column {series.name!r}" if series.name is not None else f"{what} values"


def _sizes(n: int, val_fraction: float, test_fraction: float, unit: str) -> tuple[int, int]:
    n_test = max(1, round(n * test_fraction))
    n_val = max(1, round(n * val_fraction))
    if n - n_test - n_val < 1:
        raise DataError(
            f"Cannot split {n} {unit} into non-empty train, val and test sets "
            f"(val_fraction={val_fraction}, test_fraction={test_fraction}). "
            f"Provide at least 3 {unit}, or lower the fractions."
        )
    return n_val, n_test


def _indices(train: np.ndarray, val: np.ndarray, test: np.ndarray) -> SplitIndices:
    return SplitIndices(*(np.sort(np.asarray(part, dtype=np.int64)) for part in (train, val, test)))


def _split_random(
    n: int, seed: int, val_fraction: float, test_fraction: float, classes: pd.Series | None
) -> SplitIndices:
    n_val, n_test = _sizes(n, val_fraction, test_fraction, "rows")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    if classes is not None:
        codes = pd.factorize(classes, use_na_sentinel=False)[0]
        if np.bincount(codes).min() >= MIN_ROWS_PER_CLASS:
            order = _stratified_order(order, codes)
    return _indices(order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test])


def _stratified_order(order: np.ndarray, codes: np.ndarray) -> np.ndarray:
    # Each row's quantile within its own class, after shuffling: taking the lowest quantiles
    # first hands every class the same share of each split (within one row).
    shuffled_codes = codes[order]
    rank = np.zeros(len(order), dtype=np.float64)
    counts = np.bincount(shuffled_codes)
    for code, count in enumerate(counts):
        members = np.flatnonzero(shuffled_codes == code)
        rank[members] = (np.arange(count) + 0.5) / count
    return order[np.argsort(rank, kind="stable")]


def _parse_times(series: pd.Series) -> np.ndarray:
    label = _label(series, "time")
    missing = missing_mask(series)
    if missing.any():
        row = series.index[int(np.flatnonzero(missing)[0])]
        raise DataError(
            f"{label} is missing in row {row} ({_rows(int(missing.sum()))} in all). "
            "Fill in those times or drop those rows."
        )
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return _datetimes_to_ns(series)
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=np.float64)
    parsed = _to_datetime(series.astype(str))
    bad = parsed.isna().to_numpy()
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{label}, row {series.index[first]}: value {show(series.iloc[first])} cannot be "
            "parsed as a date/time "
            f"({_rows(int(bad.sum()))} in all). Use ISO 8601 (2024-01-31 or 2024-01-31T12:00) "
            "or numbers."
        )
    return _datetimes_to_ns(parsed)


def _to_datetime(texts: pd.Series) -> pd.Series:
    # ISO 8601 is fast and unambiguous; other spellings are parsed one by one.
    parsed = pd.to_datetime(texts, format="ISO8601", errors="coerce", utc=True)
    if parsed.isna().any():
        parsed = pd.to_datetime(texts, format="mixed", errors="coerce", utc=True)
    return parsed


def _datetimes_to_ns(series: pd.Series) -> np.ndarray:
    if getattr(series.dtype, "tz", None) is not None:
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    return series.astype("datetime64[ns]").to_numpy().view(np.int64)


def _split_by_time(times: np.ndarray, val_fraction: float, test_fraction: float) -> SplitIndices:
    n = len(times)
    n_val, n_test = _sizes(n, val_fraction, test_fraction, "rows")
    ordered = np.sort(times, kind="stable")
    test_from = ordered[n - n_test]
    n_before_test = int(np.sum(times < test_from))
    if n_before_test - n_val < 1:
        raise _time_error(n, times, "val and train")
    val_from = ordered[n_before_test - n_val]
    if not np.any(times < val_from):
        raise _time_error(n, times, "train")
    positions = np.arange(n)
    return _indices(
        positions[times < val_from],
        positions[(times >= val_from) & (times < test_from)],
        positions[times >= test_from],
    )


def _time_error(n: int, times: np.ndarray, empty: str) -> DataError:
    return DataError(
        f"A time split of {n} rows with {len(np.unique(times))} distinct times leaves {empty} "
        "empty: rows tied at a boundary time all go to the later split. Provide rows with more "
        "distinct times, or lower val_fraction/test_fraction."
    )


def _split_by_group(
    groups: pd.Series, seed: int, val_fraction: float, test_fraction: float
) -> SplitIndices:
    missing = missing_mask(groups)
    if missing.any():
        row = groups.index[int(np.flatnonzero(missing)[0])]
        raise DataError(
            f"{_label(groups, 'group')} is missing in row {row} ({_rows(int(missing.sum()))} in "
            "all). Fill in those groups or drop those rows."
        )
    codes, uniques = pd.factorize(groups)
    n_groups = len(uniques)
    try:
        n_val, n_test = _sizes(n_groups, val_fraction, test_fraction, "groups")
    except DataError:
        raise DataError(
            f"A group split needs at least 3 groups, one per split, but "
            f"{_label(groups, 'group')} has {n_groups} across {len(groups)} rows. "
            "Use a column with more groups, or split at random."
        ) from None
    order = np.random.default_rng(seed).permutation(n_groups)
    split_of_group = np.zeros(n_groups, dtype=np.int64)  # 0 train, 1 val, 2 test
    split_of_group[order[:n_test]] = 2
    split_of_group[order[n_test : n_test + n_val]] = 1
    split_of_row = split_of_group[codes]
    positions = np.arange(len(groups))
    return _indices(*(positions[split_of_row == part] for part in (0, 1, 2)))


def _rows(count: int) -> str:
    return f"{count} row{'s' if count != 1 else ''}"
