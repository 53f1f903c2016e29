"""Per-row outcomes and the paired bootstrap: encoding, alignment, bounded size, orientation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from driftloop.errors import UsageError
from driftloop.evaluate.paired import ROW_LIMITS, RowOutcomes, paired_difference


def _classified(y: np.ndarray, predicted: np.ndarray) -> RowOutcomes:
    return RowOutcomes.from_predictions("binary", y, np.eye(2)[predicted])


def test_a_million_rows_of_correctness_stay_compact_and_round_trip():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 1_000_000)
    outcomes = _classified(y, np.where(rng.random(len(y)) < 0.9, y, 1 - y))
    body = outcomes.to_json()
    assert outcomes.kept == outcomes.rows == 1_000_000 and body["sample"] is None
    assert len(json.dumps(body)) < 170_000  # one bit a row, base64
    assert RowOutcomes.from_json(json.loads(json.dumps(body))) == outcomes


def test_past_the_limit_every_report_on_the_data_keeps_the_same_spread_rows():
    rows = ROW_LIMITS["residual"] * 3
    y = np.zeros(rows)
    a = RowOutcomes.from_predictions("regression", y, np.arange(rows, dtype=np.float64))
    b = RowOutcomes.from_predictions("regression", y, -np.arange(rows, dtype=np.float64))
    assert a.kept == ROW_LIMITS["residual"] and a.rows == rows and a.aligned_with(b) is None
    kept = a.values.astype(np.int64)  # residual = row number: the kept rows themselves
    assert np.array_equal(kept, -b.values.astype(np.int64))  # the same rows for both models
    assert np.all(np.diff(kept) > 0) and kept[-1] > 0.99 * rows  # in order, across all rows
    assert a.to_json()["sample"] == "splitmix64-lowest"
    assert len(json.dumps(a.to_json())) < 550_000


def test_records_of_other_rows_do_not_align():
    y = np.array([0, 1, 1, 0] * 50)
    a = _classified(y, y)
    assert "200 vs 199 rows" in a.aligned_with(_classified(y[:-1], y[:-1]))
    assert "targets differ" in a.aligned_with(_classified(1 - y, y))
    regression = RowOutcomes.from_predictions("regression", y.astype(float), y.astype(float))
    assert "correct and the other residual" in a.aligned_with(regression)
    with pytest.raises(UsageError, match="not scored on the same rows"):
        paired_difference("accuracy", a, _classified(1 - y, y))
    with pytest.raises(UsageError, match="needs residual outcomes"):
        paired_difference("rmse", a, a)
    with pytest.raises(UsageError, match="cannot compute 'roc_auc'"):
        paired_difference("roc_auc", a, a)


def test_swapping_candidate_and_holder_negates_the_difference_and_its_interval():
    rng = np.random.default_rng(1)
    y = rng.normal(0, 1, 500)
    a = RowOutcomes.from_predictions("regression", y, y + rng.normal(0, 0.5, 500))
    b = RowOutcomes.from_predictions("regression", y, y + rng.normal(0, 0.6, 500))
    ab, ba = paired_difference("mae", a, b, seed=3), paired_difference("mae", b, a, seed=3)
    assert ab.difference == pytest.approx(ab.holder - ab.candidate) and ab.difference > 0
    assert ba.difference == pytest.approx(-ab.difference)
    assert (ba.low, ba.high) == pytest.approx((-ab.high, -ab.low))
    assert ab.low < ab.difference < ab.high and ab.disagreements == 500


def test_pairing_is_what_narrows_the_interval():
    # two models wrong on nearly the same hard rows: paired, their small difference is clear;
    # the unpaired intervals of each accuracy (about ±0.04 on 500 rows) overlap widely
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 500)
    hard = rng.random(500) < 0.25
    holder = np.where(hard, 1 - y, y)
    fixed = np.flatnonzero(hard)[:15]
    candidate = holder.copy()
    candidate[fixed] = y[fixed]
    c = paired_difference("accuracy", _classified(y, candidate), _classified(y, holder))
    assert c.difference == pytest.approx(0.03) and c.disagreements == 15
    assert c.low > 0
