"""The data check's single-feature AUC (computed on tie groups) equals scikit-learn's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from driftloop.data.leakage import SMOOTHING, _binned_auc, _bins, feature_aucs, rank_auc


@pytest.mark.parametrize("decimals", [0, 1, 6])
def test_rank_auc_matches_sklearn_with_and_without_ties(decimals):
    rng = np.random.default_rng(decimals)
    positive = rng.random(3000) < 0.3
    score = np.round(rng.normal(size=3000) + positive * 0.8, decimals)
    assert rank_auc(positive, score) == pytest.approx(roc_auc_score(positive, score), abs=1e-12)


def _per_row_binned_auc(bins, codes, n_classes, folds):
    # the definition, row by row with sklearn: each row scored by its bin's smoothed class rate
    # in the other fold; one-vs-rest AUCs weighted by class share
    prior = np.bincount(codes, minlength=n_classes) / len(codes)
    scores = np.zeros((len(codes), n_classes))
    for fold in (0, 1):
        fit = folds != fold
        for b in np.unique(bins):
            in_bin = fit & (bins == b)
            rate = (np.bincount(codes[in_bin], minlength=n_classes) + SMOOTHING * prior) / (
                in_bin.sum() + SMOOTHING)
            scores[(folds == fold) & (bins == b)] = rate
    if n_classes == 2:
        return roc_auc_score(codes == 1, scores[:, 1])
    return float(np.dot([roc_auc_score(codes == c, scores[:, c]) for c in range(n_classes)],
                        prior))


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_grouped_binned_auc_is_the_per_row_auc(n_classes):
    rng = np.random.default_rng(n_classes)
    codes = rng.integers(0, n_classes, 4000)
    column = pd.Series(codes + rng.normal(0, 1.5, 4000))
    column[rng.random(4000) < 0.05] = np.nan
    bins, _ = _bins(column, "numeric")
    folds = rng.permutation(4000) % 2
    assert _binned_auc(bins, codes, n_classes, folds) == pytest.approx(
        _per_row_binned_auc(bins, codes, n_classes, folds), abs=1e-12)


def test_a_leaky_column_is_still_found_and_noise_is_not():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 5000)
    frame = pd.DataFrame({"leak": y + rng.normal(0, 0.05, 5000), "noise": rng.normal(size=5000),
                          "city": rng.choice(["a", "b", "c"], 5000)})
    aucs = feature_aucs(frame, {"leak": "numeric", "noise": "numeric", "city": "categorical"}, y)
    assert aucs["leak"] >= 0.99 and aucs["noise"] < 0.55 and aucs["city"] < 0.55
