"""The membership-inference attacks' maths on score arrays with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from driftloop.errors import DataError, UsageError
from driftloop.evaluate.privacy import (
    PrivacyReport,
    attack_result,
    audit,
    lira_offline_scores,
    logit_confidence,
    loss_scores,
)

MEMBER = np.r_[np.ones(300, bool), np.zeros(300, bool)]


def test_perfectly_separable_scores_give_auc_one_and_every_member_exposed():
    rng = np.random.default_rng(0)
    scores = np.where(MEMBER, 2.0, 0.0) + rng.uniform(0, 1, 600)
    result = attack_result("loss", scores, MEMBER, n_resamples=200)
    assert result.auc.value == 1.0 and result.auc.low == pytest.approx(1.0)
    assert result.tpr_at_fpr["0.01"].value == 1.0 and result.tpr_at_fpr["0.001"].value == 1.0
    assert (result.exposed, result.exposed_share) == (300, 1.0)


def test_identical_distributions_give_an_interval_around_one_half():
    rng = np.random.default_rng(1)
    result = attack_result("loss", rng.normal(size=600), MEMBER, n_resamples=300)
    assert result.auc.low < 0.5 < result.auc.high
    assert result.auc.high - result.auc.low < 0.15  # 300 vs 300 rows: a usable interval
    assert result.exposed_share < 0.05


def test_auc_matches_sklearn_and_a_shift_is_detected():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=600) + 0.8 * MEMBER
    result = attack_result("loss", scores, MEMBER, n_resamples=200)
    assert result.auc.value == pytest.approx(roc_auc_score(MEMBER, scores))
    assert result.auc.low > 0.6
    tpr = result.tpr_at_fpr["0.01"]
    assert tpr.low <= tpr.value <= tpr.high


def test_exposed_counts_members_above_the_one_percent_threshold():
    # non-members 0..99 (one per value), members: 5 above every non-member, 95 at the bottom
    member = np.r_[np.ones(100, bool), np.zeros(100, bool)]
    scores = np.r_[np.full(5, 1000.0), np.full(95, -1.0), np.arange(100.0)]
    result = attack_result("loss", scores, member, n_resamples=50)
    # the threshold that flags 1 of 100 non-members is 99: the 5 high members are exposed
    assert result.exposed == 5 and result.tpr_at_fpr["0.01"].value == 0.05


def test_loss_and_logit_scores_of_known_probabilities():
    proba = np.array([[0.25, 0.75], [0.9, 0.1]])
    y = np.array([1, 1])
    assert loss_scores(proba, y) == pytest.approx(np.log([0.75, 0.1]))
    assert logit_confidence(proba, y) == pytest.approx(np.log([3.0, 1 / 9]))


def test_lira_calibrates_away_row_difficulty_the_loss_attack_cannot():
    """Half the rows are hard (low confidence for every model); members gain a fixed bump in
    logit. The loss attack confuses easy non-members with members; LiRA subtracts each row's
    reference mean and separates them."""
    rng = np.random.default_rng(3)
    n = 600
    member = np.arange(n) < n // 2
    difficulty = np.where(rng.random(n) < 0.5, -3.0, 3.0)  # logit of an out model
    y = np.zeros(n, int)

    def proba(logit):
        p = 1 / (1 + np.exp(-logit))
        return np.column_stack([p, 1 - p])

    refs = [proba(difficulty + rng.normal(0, 0.3, n)) for _ in range(4)]
    target = proba(difficulty + 1.5 * member + rng.normal(0, 0.3, n))
    report = audit(target, y, member, refs, n_resamples=200)
    loss, lira = report.attacks["loss"], report.attacks["lira"]
    assert lira.auc.low > loss.auc.high and lira.auc.value > 0.95
    assert report.strongest.attack == "lira"
    assert lira_offline_scores(target, y, refs).shape == (n,)


def test_report_round_trips_and_slices_by_class():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 600)
    p_true = np.where(MEMBER, 0.9, 0.6) + rng.uniform(-0.05, 0.05, 600)
    proba = np.column_stack([p_true, 1 - p_true])
    proba[y == 1] = proba[y == 1, ::-1]
    report = audit(proba, y, MEMBER, classes=["no", "yes"], min_count=50, n_resamples=100)
    assert PrivacyReport.from_json(report.to_json()) == report
    assert {s["value"] for s in report.slices} == {"no", "yes"}
    assert all(s["auc"]["value"] == 1.0 for s in report.slices)
    assert report.to_json()["strongest"] == "loss" and "lira" not in report.attacks
    assert any("privacy audit: 300 training rows" in line for line in report.summary_lines())


def test_bad_input_is_named():
    with pytest.raises(DataError, match="both members and non-members"):
        attack_result("loss", np.zeros(4), np.ones(4, bool))
    with pytest.raises(UsageError, match="at least 2 reference models"):
        lira_offline_scores(np.eye(2), np.array([0, 1]), [np.eye(2)])
    with pytest.raises(DataError, match="non-finite"):
        attack_result("loss", np.array([np.nan, 1.0]), np.array([True, False]))
