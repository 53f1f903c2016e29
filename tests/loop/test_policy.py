"""The retraining policy's metric trigger: on intervals or consecutive windows, by the metric's
direction, with the metric chosen from the task (no store, no training)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from driftloop.config import LoopSettings, MonitorSettings
from driftloop.errors import UsageError
from driftloop.loop.policy import find_trigger, metric_reading
from driftloop.store.monitoring import WindowRecord

T = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _window(i: int, metric: str, value: float, low: float, high: float, *,
            labelled: int = 100, estimated: dict[str, Any] | None = None,
            status: str = "ok") -> WindowRecord:
    realised = {"labelled": labelled, metric: {"value": value, "low": low, "high": high}}
    return WindowRecord(i, "m", 1, 100 * i + 1, 100 * i + 100, T, T, 100, status, False, 0.0,
                        False, {}, estimated or {}, realised, T)


def _trigger(windows: list[WindowRecord], reference: dict[str, float], task: str = "binary",
             **loop: Any) -> Any:
    return find_trigger(windows, reference_metrics=reference, task=task, new_labels=0,
                        since=T, now=T, loop=LoopSettings(**loop), monitor=MonitorSettings())


def test_interval_mode_fires_only_when_the_whole_interval_is_past_the_bound() -> None:
    reference = {"accuracy": 0.90}  # bound: 0.90 - 0.05 = 0.85
    wide = _window(1, "accuracy", 0.80, 0.70, 0.88)
    assert _trigger([wide], reference) is None  # the point is past it, the interval is not
    narrow = _window(2, "accuracy", 0.80, 0.76, 0.84)
    found = _trigger([wide, narrow], reference)
    assert found is not None and found.kind == "metric"
    assert found.numbers["bound"] == pytest.approx(0.85) and found.numbers["window"] == 2
    assert found.numbers["interval"] == [0.76, 0.84] and found.numbers["since_log_id"] == 101
    assert "whole interval is below 0.850" in found.message


def test_consecutive_mode_needs_k_windows_in_a_row() -> None:
    reference = {"accuracy": 0.90}
    low = [_window(i, "accuracy", 0.80, 0.60, 0.99) for i in range(1, 4)]
    fine = _window(4, "accuracy", 0.89, 0.80, 0.95)
    settings = {"trigger_on": "consecutive", "consecutive_windows": 3}
    assert _trigger(low[:2], reference, **settings) is None  # only two so far
    found = _trigger(low, reference, **settings)
    assert found is not None and found.numbers["windows"] == [1, 2, 3]
    assert _trigger([*low, fine], reference, **settings) is None
    assert _trigger(low, reference) is None  # the default decides on the interval


def test_regression_watches_rmse_by_default_and_higher_is_worse() -> None:
    reference = {"rmse": 1.0, "mae": 0.8}  # bound: 1.0 * (1 + 0.05), relative
    worse = _window(1, "rmse", 1.30, 1.10, 1.50)
    found = _trigger([worse], reference, task="regression")
    assert found is not None and found.numbers["metric"] == "rmse"
    assert found.numbers["bound"] == pytest.approx(1.05)
    assert found.numbers["compared"] == pytest.approx(0.30)  # 30 % worse, relative
    assert "above 1.050" in found.message
    assert _trigger([_window(1, "rmse", 0.5, 0.4, 0.6)], reference, task="regression") is None
    # metric_min is the worst acceptable value: for RMSE a ceiling
    found = _trigger([_window(1, "rmse", 0.95, 0.91, 0.99)], reference, task="regression",
                     metric_drop=None, metric_min=0.9)
    assert found is not None and found.numbers["bound_setting"] == "loop.metric_min"
    assert _trigger([worse], reference, task="regression", metric="mae") is None  # no mae


def test_a_metric_the_task_does_not_report_is_refused_with_what_is_allowed() -> None:
    with pytest.raises(UsageError, match="loop.metric = 'accuracy'.*rmse, mae, r2"):
        _trigger([], {"rmse": 1.0}, task="regression", metric="accuracy")


def test_the_estimate_band_decides_when_too_few_rows_are_labelled() -> None:
    band = {"accuracy": {"value": 0.70, "low": 0.65, "high": 0.75}}
    few = _window(1, "accuracy", 0.95, 0.50, 1.0, labelled=5, estimated=band)
    reading = metric_reading(few, "accuracy", MonitorSettings().min_rows)
    assert reading.source == "estimated" and (reading.low, reading.high) == (0.65, 0.75)
    found = _trigger([few], {"accuracy": 0.90})
    assert found is not None and found.numbers["source"] == "estimated"
    untested = _window(2, "accuracy", 0.1, 0.0, 0.2, status="not_testable")
    assert _trigger([untested], {"accuracy": 0.90}) is None
