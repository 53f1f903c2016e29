"""Label errors: rows whose label a model trained on the other rows finds implausible.

A quick gradient-boosted model (scikit-learn's ``HistGradientBoostingClassifier``: numbers as
they are, missing values natively, categories as ordinal codes marked categorical) is
cross-validated (stratified folds), giving each row a predicted probability from a model that
never saw it. cleanlab's confident learning (``cleanlab.filter.find_label_issues``) then picks
the rows whose given label is unlikely beyond the per-class confidence thresholds, ranked by
self-confidence (the out-of-fold probability of the given label; lowest first).

Large tables are checked on a seeded sample of rows (``max_rows``); counts and rates then refer
to the sample, and row numbers are positions in the whole table.

Examples
--------
>>> from sklearn.datasets import load_breast_cancer
>>> import numpy as np, pandas as pd
>>> frame = load_breast_cancer(as_frame=True).frame
>>> rng = np.random.default_rng(0)
>>> flipped = rng.choice(len(frame), 28, replace=False)
>>> y = frame.pop("target").to_numpy().copy()
>>> y[flipped] = 1 - y[flipped]                      # 5% of the labels flipped
>>> issues = find_label_errors(frame, dict.fromkeys(frame.columns, "numeric"), y, seed=0)
>>> hits = len(set(issues.rows.tolist()) & set(flipped.tolist()))
>>> issues.count, round(hits / issues.count, 2), round(hits / len(flipped), 2)  # precision, recall
(32, 0.75, 0.86)

References
----------
Northcutt, C., Jiang, L. and Chuang, I. (2021). Confident Learning: Estimating Uncertainty in
Dataset Labels. Journal of Artificial Intelligence Research 70.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from driftloop.config import CheckSettings
from driftloop.data.values import category_keys, missing_mask, parse_booleans, parse_numbers

_DEFAULTS = CheckSettings()
# small and quick: 30 rounds of 15-leaf trees on 63 bins find flipped labels about as well as
# 100 rounds of the defaults (digits, 5% flipped: precision 0.84 / recall 0.90) in a fifth of
# the time; a categorical feature may then hold at most max_bins categories
MODEL_PARAMS = {"max_iter": 30, "learning_rate": 0.3, "max_leaf_nodes": 15, "max_bins": 63,
                "early_stopping": False}
MAX_CATEGORIES = 63


@dataclass(frozen=True)
class LabelIssues:
    """The rows flagged as likely label errors, most suspicious first."""

    rows: np.ndarray  # positions in the table
    scores: np.ndarray  # self-confidence of each flagged row (low = suspicious)
    checked_rows: int  # rows the check ran on (the sample size when sampled)
    folds: int

    @property
    def count(self) -> int:
        return len(self.rows)

    @property
    def rate(self) -> float:
        return self.count / self.checked_rows if self.checked_rows else 0.0


def find_label_errors(
    frame: pd.DataFrame,
    kinds: Mapping[str, str],
    y: np.ndarray,
    *,
    folds: int = _DEFAULTS.label_error_folds,
    max_rows: int = _DEFAULTS.label_error_max_rows,
    seed: int = _DEFAULTS.seed,
) -> LabelIssues | None:
    """Find likely label errors among the rows of ``frame`` for class codes ``y``.

    Parameters
    ----------
    frame, kinds
        The table and its feature columns (name -> numeric, boolean or categorical).
    y
        Integer class codes, one per row.
    folds, max_rows, seed
        Cross-validation folds (fewer when a class has fewer rows), the sample size, the seed.

    Returns None when some class has fewer than two rows (nothing to cross-validate).
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_self_confidence_for_each_label
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    rng = np.random.default_rng(seed)
    rows = np.arange(len(frame))
    if len(rows) > max_rows:
        rows = np.sort(rng.choice(len(frame), max_rows, replace=False))
    _, codes = np.unique(np.asarray(y)[rows], return_inverse=True)
    smallest = int(np.bincount(codes).min())
    if smallest < 2 or codes.max() < 1:
        return None
    n_folds = min(folds, smallest)
    x, categorical = _design(frame.iloc[rows], kinds)
    model = HistGradientBoostingClassifier(
        categorical_features=categorical if categorical.any() else None,
        random_state=seed, **MODEL_PARAMS,
    )
    cv = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
    # one OpenMP thread: on a busy machine (other processes, training ranks) the gradient
    # boosting's threads spin-wait for each other and run 5-10 times slower than one thread
    with threadpool_limits(limits=1, user_api="openmp"):
        proba = cross_val_predict(model, x, codes, cv=cv, method="predict_proba")
    flagged = find_label_issues(
        labels=codes, pred_probs=proba, return_indices_ranked_by="self_confidence", n_jobs=1
    )
    confidence = get_self_confidence_for_each_label(codes, proba)
    return LabelIssues(rows[flagged], confidence[flagged], len(rows), n_folds)


def _design(frame: pd.DataFrame, kinds: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray]:
    columns, categorical = [], []
    for name, kind in kinds.items():
        column = frame[name]
        numbers, bad = parse_numbers(column)
        if kind == "categorical" and (bad.any() or not np.isfinite(numbers).any()):
            keys = category_keys(column)
            codes, uniques = pd.factorize(pd.Series(keys), use_na_sentinel=True)
            values = np.where(codes < 0, np.nan, codes).astype(np.float64)
            categorical.append(len(uniques) <= MAX_CATEGORIES)
        else:
            # small integer codes (schema: categorical) keep their order: a tree splits them
            # like numbers, which suits counts and ratings better than unordered categories
            values, bad = parse_booleans(column) if kind == "boolean" else (numbers, bad)
            values = np.where(bad | missing_mask(column), np.nan, values)
            categorical.append(False)
        columns.append(values)
    return np.column_stack(columns), np.array(categorical, dtype=bool)


__all__ = ["LabelIssues", "find_label_errors"]
