"""The health badge of a model: ok, drifting, degraded or no traffic, from its latest window.

The rule, checked in this order (the first that holds names the badge):

1. **no traffic** — the model has no monitoring window yet.
2. **degraded** — in the latest window, the watched metric (``monitor.performance_metric``;
   unset: accuracy, or RMSE for a regression model) is worse than the window's version scored on its test split by more
   than ``monitor.performance_drop``. The realised value decides when it rests on at least
   ``monitor.min_rows`` labels (as the monitor's ``performance_drop`` alert does); otherwise
   the value estimated without labels decides. The drop is absolute for metrics in [0, 1]
   (accuracy, F1, AUC) and relative to the test value for unbounded ones (RMSE, log loss), as
   slice tolerances are; "worse" follows the metric's direction (lower accuracy, higher RMSE):
   :func:`driftloop.evaluate.metrics.worse_by`, the rule the monitor's alert and the loop's
   trigger use too.
3. **drifting** — the latest window found dataset drift or prediction drift.
4. **ok** — otherwise (a window too small to test counts as traffic and is ok).

Degraded comes before drifting: a measured or estimated loss of performance is what a person
must act on; drift alone is an early warning that may not hurt the model.

Examples
--------
>>> window = {"drift_detected": True, "prediction_drift": False, "share_drifted": 0.4,
...           "estimated": {"accuracy": {"value": 0.91}}, "realised": None, "id": 7}
>>> health(window, {"accuracy": 0.93}, metric="accuracy", drop=0.05).status
'drifting'
>>> low = dict(window, realised={"accuracy": {"value": 0.80}, "labelled": 50})
>>> found = health(low, {"accuracy": 0.93}, metric="accuracy", drop=0.05, min_labelled=30)
>>> found.status, found.reason
('degraded', 'latest window #7: realised accuracy 0.800 is 0.130 below the test 0.930 (allowed 0.050); 40% of features drifted')
>>> few = dict(low, realised={"accuracy": {"value": 0.80}, "labelled": 9})
>>> health(few, {"accuracy": 0.93}, metric="accuracy", drop=0.05, min_labelled=30).status
'drifting'
>>> health(None, {"accuracy": 0.93}, metric="accuracy", drop=0.05).label
'○ no traffic'
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from driftloop.evaluate.metrics import METRICS, worse_by

STATUSES = ("ok", "drifting", "degraded", "no traffic")
ICONS = {"ok": "✓", "drifting": "⚠", "degraded": "▼", "no traffic": "○"}
"""A symbol per status, so the badge reads without colour."""


@dataclass(frozen=True)
class Health:
    """A model's badge and the one sentence that explains it."""

    status: str
    reason: str
    window_id: int | None = None

    @property
    def label(self) -> str:
        """Symbol and status, e.g. ``⚠ drifting``."""
        return f"{ICONS[self.status]} {self.status}"

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "label": self.label, "icon": ICONS[self.status],
                "reason": self.reason, "window_id": self.window_id}


def health(
    window: Mapping[str, Any] | None,
    reference: Mapping[str, Any],
    *,
    metric: str,
    drop: float,
    min_labelled: int = 0,
) -> Health:
    """The badge of a model whose latest window is ``window`` (None: no window yet).

    Parameters
    ----------
    window
        The latest window as a mapping with ``drift_detected``, ``prediction_drift``,
        ``share_drifted``, ``estimated``, ``realised`` and ``id`` (a
        :class:`~driftloop.store.monitoring.WindowRecord`'s fields).
    reference
        The metrics of the window's version on its test split (``VersionRecord.metrics``).
    metric, drop, min_labelled
        ``monitor.performance_metric``, ``monitor.performance_drop`` and ``monitor.min_rows``
        (fewer labels than this: the realised value is not trusted over the estimate).
    """
    if window is None:
        return Health("no traffic", "no monitoring window yet: no prediction has been "
                      "monitored (run `driftloop monitor`).")
    window_id = window.get("id")
    drift = _drift_text(window)
    source = "realised" if _trusted(window.get("realised"), metric, min_labelled) else (
        "estimated")
    loss = _loss(source, window.get(source), reference, metric, drop)
    losses = [loss] if loss else []
    where = f"latest window #{window_id}: "
    if losses:
        return Health("degraded", where + "; ".join(losses + ([drift] if drift else [])),
                      window_id)
    if drift:
        return Health("drifting", where + drift, window_id)
    return Health("ok", f"latest window #{window_id}: no drift, {metric} within "
                  f"{drop:g} of the test value.", window_id)


def _loss(source: str, values: Any, reference: Mapping[str, Any], metric: str,
          drop: float) -> str | None:
    if not isinstance(values, Mapping):
        return None
    found = values.get(metric)
    value = found.get("value") if isinstance(found, Mapping) else found
    test = reference.get(metric)
    if not _number(value) or not _number(test):
        return None
    gap, compared = worse_by(metric, float(value), float(test))
    if compared <= drop:
        return None
    known = METRICS.get(metric)
    direction = "below" if known is None or known.greater_is_better else "above"
    return (f"{source} {metric} {float(value):.3f} is {abs(gap):.3f} {direction} the test "
            f"{float(test):.3f} (allowed {drop:.3f})")


def _trusted(realised: Any, metric: str, min_labelled: int) -> bool:
    """Whether the realised value of ``metric`` exists and rests on enough labels."""
    if not isinstance(realised, Mapping):
        return False
    found = realised.get(metric)
    value = found.get("value") if isinstance(found, Mapping) else found
    labelled = realised.get("labelled")
    return _number(value) and (not _number(labelled) or labelled >= min_labelled)


def _drift_text(window: Mapping[str, Any]) -> str | None:
    parts = []
    if window.get("drift_detected"):
        share = window.get("share_drifted")
        parts.append(f"{share:.0%} of features drifted" if _number(share)
                     else "dataset drift detected")
    if window.get("prediction_drift"):
        parts.append("the predictions drifted")
    return " and ".join(parts) or None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


__all__ = ["ICONS", "STATUSES", "Health", "health"]
