"""The health badge rule, case by case (no server, no training)."""

from __future__ import annotations

import pytest

from driftloop.evaluate.metrics import drop_bound, worse_by
from driftloop.ui.health import ICONS, STATUSES, health

TEST = {"accuracy": 0.90, "rmse": 10.0}


def _window(drift=False, prediction=False, share=0.0, estimated=None, realised=None):
    return {"id": 3, "drift_detected": drift, "prediction_drift": prediction,
            "share_drifted": share, "estimated": estimated or {}, "realised": realised}


@pytest.mark.parametrize("window,metric,status", [
    (None, "accuracy", "no traffic"),
    (_window(), "accuracy", "ok"),
    (_window(estimated={"accuracy": {"value": 0.86}}), "accuracy", "ok"),  # within 0.05
    (_window(estimated={"accuracy": {"value": 0.84}}), "accuracy", "degraded"),
    (_window(realised={"accuracy": {"value": 0.80}, "labelled": 30}), "accuracy", "degraded"),
    # enough labels: the realised value decides over the estimate, either way
    (_window(estimated={"accuracy": {"value": 0.60}},
             realised={"accuracy": {"value": 0.89}, "labelled": 200}), "accuracy", "ok"),
    (_window(estimated={"accuracy": {"value": 0.89}},
             realised={"accuracy": {"value": 0.60}, "labelled": 200}), "accuracy", "degraded"),
    # too few labels to trust: the estimate decides
    (_window(estimated={"accuracy": {"value": 0.89}},
             realised={"accuracy": {"value": 0.60}, "labelled": 29}), "accuracy", "ok"),
    (_window(estimated={"accuracy": {"value": 0.60}},
             realised={"accuracy": {"value": 0.89}, "labelled": 29}), "accuracy", "degraded"),
    (_window(drift=True, share=0.6), "accuracy", "drifting"),
    (_window(prediction=True), "accuracy", "drifting"),
    # degraded outranks drifting: the loss of performance is what to act on
    (_window(drift=True, share=0.6, estimated={"accuracy": {"value": 0.7}}), "accuracy",
     "degraded"),
    # an error metric: higher is worse, and the drop is relative (0.05 of 10 = 0.5)
    (_window(estimated={"rmse": {"value": 10.4}}), "rmse", "ok"),
    (_window(estimated={"rmse": {"value": 10.6}}), "rmse", "degraded"),
    (_window(estimated={"rmse": {"value": 5.0}}), "rmse", "ok"),  # better is never degraded
    # nothing to compare with: no metric in the window, or none recorded for the version
    (_window(estimated={"roc_auc": {"value": 0.1}}), "accuracy", "ok"),
    (_window(estimated={"accuracy": {"value": float("nan")}}), "accuracy", "ok"),
])
def test_badge(window, metric, status):
    found = health(window, TEST, metric=metric, drop=0.05, min_labelled=30)
    assert found.status == status
    assert found.label == f"{ICONS[status]} {status}" and status in STATUSES
    assert found.reason  # every badge says why
    assert found.to_json()["window_id"] == (None if window is None else 3)


def test_reasons_name_the_numbers():
    found = health(_window(drift=True, share=0.25, realised={"accuracy": {"value": 0.8}}),
                   TEST, metric="accuracy", drop=0.05)
    assert found.reason == ("latest window #3: realised accuracy 0.800 is 0.100 below the test "
                            "0.900 (allowed 0.050); 25% of features drifted")
    rmse = health(_window(estimated={"rmse": 12.0}), TEST, metric="rmse", drop=0.05)
    assert rmse.reason == ("latest window #3: estimated rmse 12.000 is 2.000 above the test "
                           "10.000 (allowed 0.050)")


def test_bound_and_gap_agree_with_the_rule():
    for metric, test in (("accuracy", 0.9), ("rmse", 10.0), ("r2", 0.5)):
        bound = drop_bound(metric, test, 0.05)
        assert worse_by(metric, bound, test)[1] == pytest.approx(0.05)
    assert worse_by("rmse", 1.0, 0.0) == (1.0, float("inf"))
    assert worse_by("custom_score", 0.7, 0.8)[1] == pytest.approx(0.1)  # unknown: bounded, up
