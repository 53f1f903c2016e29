"""Leakage: information about the answer that a model could see in training but not in use.

- :func:`row_overlap`: rows of DATA that also appear in OTHER (say, train rows that are also
  test rows), compared on the columns both share — exactly, and after rounding numbers (which
  catches copies that went through a float format or a CSV round trip);
- :func:`value_overlap`: values of a group or id column present in both tables (the same
  customer in train and test);
- :func:`feature_aucs`: how well each feature alone predicts the target, as a ROC AUC. A
  feature with AUC ≥ 0.99 on its own is most likely derived from the target.

The single-feature AUC is model-free: the feature is cut into bins (numbers into up to 100
quantile bins, categories as they are, missing values as one more bin), each bin is scored by
the target rate among the *other* half of the rows (two folds, so a column of unique values
cannot look predictive), and the AUC of that score is taken one-vs-rest per class (weighted by
class share). For a binary target the plain rank AUC of a numeric feature counts too (either
direction). A regression target is split at its median.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 2, 1000)
>>> frame = pd.DataFrame({"leak": y + rng.normal(0, 0.1, 1000), "noise": rng.normal(size=1000),
...                       "city": rng.choice(["a", "b"], 1000)})
>>> aucs = feature_aucs(frame, {"leak": "numeric", "noise": "numeric", "city": "categorical"}, y)
>>> {k: round(v, 2) for k, v in aucs.items()}
{'leak': 1.0, 'noise': 0.53, 'city': 0.48}
>>> other = frame.iloc[[3, 5]].copy()
>>> other["noise"] += 1e-9                          # a float round trip
>>> exact, rounded = row_overlap(frame, other, decimals=6)
>>> exact.tolist(), rounded.tolist()
([], [3, 5])
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from driftloop.config import CheckSettings
from driftloop.data.values import category_keys, missing_mask, parse_booleans, parse_numbers

_DEFAULTS = CheckSettings()
MAX_BINS = 100
MIN_ROWS_PER_BIN = 20
SMOOTHING = 1.0  # pseudo-rows of the overall class share added to every bin


def row_overlap(
    data: pd.DataFrame, other: pd.DataFrame, *, decimals: int = _DEFAULTS.round_decimals
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of ``data`` found in ``other``: exact copies, and copies after rounding.

    Rows are compared on the columns both tables have; numbers compare as float64 (so ``3``
    and ``3.0`` agree), everything else as text. The second array holds only rows that match
    after rounding numbers to ``decimals`` places but not exactly.
    """
    shared = [c for c in data.columns if c in set(other.columns)]
    if not shared:
        return np.array([], np.int64), np.array([], np.int64)
    exact = np.isin(_row_hashes(data, shared, None), _row_hashes(other, shared, None))
    rounded = np.isin(_row_hashes(data, shared, decimals), _row_hashes(other, shared, decimals))
    return np.flatnonzero(exact), np.flatnonzero(rounded & ~exact)


def value_overlap(data: pd.Series, other: pd.Series) -> tuple[np.ndarray, int]:
    """Row positions of ``data`` whose value also occurs in ``other``, and how many distinct
    values the two share (missing values never match).

    >>> value_overlap(pd.Series(["a", "b", "c", "a"]), pd.Series(["a", "x"]))
    (array([0, 3]), 1)
    """
    left, right = category_keys(data), category_keys(other)
    right_values = pd.unique(right[pd.notna(right)])
    hit = pd.Series(left).isin(right_values).to_numpy() & pd.notna(left)
    shared = len(set(left[hit]))
    return np.flatnonzero(hit), shared


def feature_aucs(
    frame: pd.DataFrame,
    kinds: Mapping[str, str],
    y: np.ndarray,
    *,
    regression: bool = False,
    max_rows: int = _DEFAULTS.leakage_max_rows,
    seed: int = _DEFAULTS.seed,
) -> dict[str, float]:
    """Single-feature ROC AUC of each feature in ``kinds`` (name -> numeric, boolean,
    categorical) for target codes ``y`` (or a numeric target with ``regression=True``).

    At most ``max_rows`` rows (a seeded sample) are used.
    """
    rng = np.random.default_rng(seed)
    rows = np.arange(len(frame))
    if len(rows) > max_rows:
        rows = np.sort(rng.choice(len(frame), max_rows, replace=False))
    y = np.asarray(y)[rows]
    if regression:
        y = (y > np.median(y)).astype(np.int64)
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        return {}
    folds = rng.permutation(len(rows)) % 2
    out = {}
    for name, kind in kinds.items():
        column = frame[name].iloc[rows]
        bins, numbers = _bins(column, kind)
        auc = _binned_auc(bins, codes, len(classes), folds)
        if numbers is not None and len(classes) == 2:
            filled = np.where(np.isnan(numbers), np.nanmin(numbers) - 1.0, numbers)
            direct = rank_auc(codes == 1, filled)
            auc = max(auc, direct, 1.0 - direct)
        out[name] = float(auc)
    return out


def _bins(column: pd.Series, kind: str) -> tuple[np.ndarray, np.ndarray | None]:
    # integer bin per row (0 = missing) and, for numbers, the values themselves
    missing = missing_mask(column)
    if kind == "categorical":
        _, codes = np.unique(category_keys(column).astype(str), return_inverse=True)
        return np.where(missing, 0, codes + 1), None
    values = parse_booleans(column)[0] if kind == "boolean" else parse_numbers(column)[0]
    present = values[~missing & np.isfinite(values)]
    n_bins = int(np.clip(len(present) // MIN_ROWS_PER_BIN, 2, MAX_BINS))
    if len(np.unique(present)) <= n_bins:
        edges = np.unique(present)
        which = np.searchsorted(edges, values)
    else:
        edges = np.unique(np.quantile(present, np.linspace(0, 1, n_bins + 1))[1:-1])
        which = np.searchsorted(edges, values, side="right")
    bins = np.where(np.isfinite(values), which + 1, 0)
    return bins, values


def rank_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of ``score`` for the boolean ``positive``: the Mann–Whitney statistic with ties
    counted half, the value ``sklearn.metrics.roc_auc_score`` gives (to float rounding).

    Written here because sklearn's checks and curve building cost ~5× this one sort on the
    200k-row columns the data check scores (issue 21), and the tie groups are all it needs.

    >>> rank_auc(np.array([0, 0, 1, 1], bool), np.array([.1, .4, .35, .8]))
    0.75
    """
    _, group = np.unique(score, return_inverse=True)
    pos = np.bincount(group, weights=positive.astype(np.float64))
    neg = np.bincount(group).astype(np.float64) - pos
    return _grouped_auc(pos, neg)


def _grouped_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    # pos / neg: positive and negative rows per tie group, groups in ascending score order
    total = pos.sum() * neg.sum()
    below = np.cumsum(neg) - neg
    return float(np.dot(pos, below + 0.5 * neg) / total)


def _binned_auc(bins: np.ndarray, codes: np.ndarray, n_classes: int, folds: np.ndarray) -> float:
    # a row's score is its bin's smoothed class rate in the other fold, so rows of one
    # (fold, bin) share a score: the AUC is computed on those groups' class counts (exactly the
    # per-row AUC, without sorting every row)
    n_bins = int(bins.max()) + 1
    prior = np.bincount(codes, minlength=n_classes) / len(codes)
    # rows per (fold, bin, class) in one pass; a fold's scores come from the other fold's counts
    counts = np.bincount((folds * n_bins + bins) * n_classes + codes,
                         minlength=2 * n_bins * n_classes).reshape(2, n_bins, n_classes)
    scores = []
    for fold in (0, 1):
        per_class = counts[1 - fold]
        rows = per_class.sum(axis=1).astype(np.float64)
        scores.append((per_class + SMOOTHING * prior) / (rows[:, None] + SMOOTHING))
    score, count = np.concatenate(scores), counts.reshape(2 * n_bins, n_classes).astype(float)
    aucs = []
    for c in range(1, 2) if n_classes == 2 else range(n_classes):
        values, group = np.unique(score[:, c], return_inverse=True)
        pos = np.bincount(group, weights=count[:, c], minlength=len(values))
        neg = np.bincount(group, weights=count.sum(axis=1) - count[:, c], minlength=len(values))
        aucs.append(_grouped_auc(pos, neg))
    return aucs[0] if n_classes == 2 else float(np.dot(aucs, prior))


def _row_hashes(frame: pd.DataFrame, columns: list[str], decimals: int | None) -> np.ndarray:
    normal = {}
    for name in columns:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(
            column.dtype
        ):
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            normal[name] = values if decimals is None else np.round(values, decimals) + 0.0
        else:
            keys = category_keys(column)
            if decimals is not None:  # text that holds numbers rounds like numbers
                numbers, bad = parse_numbers(column)
                ok = ~bad & np.isfinite(numbers)
                keys = keys.copy()
                keys[ok] = np.round(numbers[ok], decimals).astype(str)
            normal[name] = keys
    return pd.util.hash_pandas_object(pd.DataFrame(normal), index=False).to_numpy()


__all__ = ["feature_aucs", "rank_auc", "row_overlap", "value_overlap"]
