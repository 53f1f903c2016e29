"""Row overlap (exact and rounded), group overlap and single-feature AUCs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftloop.data.leakage import feature_aucs, row_overlap, value_overlap


def test_row_overlap_ignores_dtype_and_column_order_but_not_values():
    data = pd.DataFrame({"a": [1, 2, 3, 4], "b": ["x", "y", "z", "w"]})
    other = pd.DataFrame({"b": ["y", "w", "q"], "a": [2.0, 4.0, 9.0], "extra": [0, 0, 0]})
    exact, rounded = row_overlap(data, other)
    assert exact.tolist() == [1, 3] and rounded.tolist() == []


def test_rounding_catches_copies_that_went_through_a_number_format():
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"x": rng.normal(size=50), "t": rng.normal(size=50).astype(str)})
    other = data.iloc[[5, 6, 7]].copy()
    other["x"] = other["x"].round(6)  # written with 6 decimals
    other["t"] = [str(round(float(v), 6)) for v in other["t"]]  # numbers kept as text
    exact, rounded = row_overlap(data, other, decimals=3)
    assert exact.tolist() == [] and rounded.tolist() == [5, 6, 7]
    assert row_overlap(data, pd.DataFrame({"z": [1]}))[0].tolist() == []  # nothing shared


def test_value_overlap_counts_shared_values_and_their_rows():
    rows, shared = value_overlap(pd.Series([1, 2, 2, None, 5]), pd.Series([2.0, 5.0, None]))
    assert rows.tolist() == [1, 2, 4] and shared == 2


def test_single_feature_auc_finds_a_target_copy_but_not_honest_or_unique_columns():
    rng = np.random.default_rng(1)
    n = 3000
    y = rng.integers(0, 2, n)
    frame = pd.DataFrame({
        "copy": y + rng.normal(0, 0.2, n),       # target plus noise
        "inverse": -y + rng.normal(0, 0.2, n),   # either direction counts
        "useful": y + rng.normal(0, 1.5, n),     # predictive, honestly
        "uid": [f"u{i}" for i in range(n)],      # unique per row: must not look predictive
        "has_gaps": np.where(rng.random(n) < 0.3, np.nan, rng.normal(size=n)),
    })
    kinds = {"copy": "numeric", "inverse": "numeric", "useful": "numeric",
             "uid": "categorical", "has_gaps": "numeric"}
    aucs = feature_aucs(frame, kinds, y)
    assert aucs["copy"] >= 0.99 and aucs["inverse"] >= 0.99
    assert 0.6 < aucs["useful"] < 0.9
    assert aucs["uid"] < 0.6 and aucs["has_gaps"] < 0.6


def test_a_categorical_that_spells_out_a_multiclass_target_leaks():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 2000)
    names = np.array(["cat-a", "cat-b", "cat-c", "cat-d"])
    frame = pd.DataFrame({"label_text": names[y], "noise": rng.choice(["p", "q"], 2000)})
    aucs = feature_aucs(frame, {"label_text": "categorical", "noise": "categorical"}, y)
    assert aucs["label_text"] == pytest.approx(1.0) and aucs["noise"] < 0.6


def test_large_tables_are_sampled_and_regression_targets_split_at_the_median():
    rng = np.random.default_rng(3)
    price = rng.normal(100, 10, 5000)
    frame = pd.DataFrame({"twice": price * 2, "noise": rng.normal(size=5000)})
    aucs = feature_aucs(frame, {"twice": "numeric", "noise": "numeric"}, price,
                        regression=True, max_rows=1000)
    assert aucs["twice"] == pytest.approx(1.0) and aucs["noise"] < 0.6
    assert feature_aucs(frame, {"twice": "numeric"}, np.zeros(5000)) == {}
