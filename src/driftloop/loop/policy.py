"""The retraining policy: which trigger fires, and whether cooldown or the daily limit hold it.

Each trigger from the monitor's windows also says where the change began (``since_log_id``:
the first row of the trailing run of windows that meet its condition), so the loop retrains on
data from after the change rather than on a mix of the old and the new concept.

Triggers, checked in this order on what the monitor stored for the champion's version since
the last retrain (windows of earlier versions that were already retrained on never fire
again; windows of other versions are not the champion's evidence):

``drift``
    dataset drift in the last ``loop.drift_windows`` consecutive tested windows;
``metric``
    the watched metric (``loop.metric``; unset: accuracy, or RMSE for regression) is worse
    than a bound: ``loop.metric_min`` (the worst acceptable value) or the champion's test
    value made worse by ``loop.metric_drop`` (absolute for metrics in [0, 1], relative for
    unbounded ones; :func:`~driftloop.evaluate.metrics.drop_bound`). "Worse" follows the
    metric's direction (lower accuracy, higher RMSE). A window's reading is its realised
    metric when at least ``monitor.min_rows`` rows are labelled, else its label-free
    estimate. With ``loop.trigger_on: interval`` (the default) the decision rests on the
    newest window's interval: it fires only when even the best end of the realised metric's
    confidence interval (or of the estimate's band) is past the bound; with ``consecutive``
    it fires when the values of the last ``loop.consecutive_windows`` windows are all past it;
``labels``
    at least ``loop.min_new_labels`` feedback labels arrived since the last retrain;
``schedule``
    ``loop.schedule_s`` seconds passed since the last retrain (or since the version was made).

Examples
--------
>>> from datetime import datetime, timezone
>>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> from driftloop.config import LoopSettings
>>> hold_reason(LoopSettings(cooldown_s=3600), [t], t.replace(minute=30)) is not None
True
>>> hold_reason(LoopSettings(cooldown_s=60, max_per_day=1), [t], t.replace(hour=5))
'daily_limit'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from driftloop.config import LoopSettings, MonitorSettings
from driftloop.evaluate.metrics import (
    METRICS,
    best_end,
    drop_bound,
    is_worse,
    watched_metric,
    worse_by,
)
from driftloop.store.monitoring import WindowRecord


@dataclass(frozen=True)
class Trigger:
    """A reason to retrain, with the numbers behind it."""

    kind: str
    message: str
    numbers: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, **self.numbers}


@dataclass(frozen=True)
class Reading:
    """A window's value of a metric and its interval, and where they came from (``realised``,
    ``estimated`` or ``none``)."""

    source: str
    value: float | None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class _Bound:
    value: float
    setting: str
    text: str


def find_trigger(
    windows: Sequence[WindowRecord],
    *,
    reference_metrics: dict[str, Any],
    task: str,
    new_labels: int,
    since: datetime,
    now: datetime,
    loop: LoopSettings,
    monitor: MonitorSettings,
) -> Trigger | None:
    """The first trigger that fires on ``windows`` (oldest first, since the last retrain, of
    the version whose test metrics are ``reference_metrics``; ``task`` picks the watched
    metric when ``loop.metric`` is unset).

    Examples
    --------
    >>> from datetime import timezone
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> find_trigger([], reference_metrics={}, task="binary", new_labels=600, since=t, now=t,
    ...              loop=LoopSettings(min_new_labels=500), monitor=MonitorSettings()).kind
    'labels'
    """
    metric = watched_metric(loop.metric, task, setting="loop.metric")
    found = _drift(windows, loop)
    if found is None:
        found = _metric(windows, reference_metrics, metric, loop, monitor)
    if found is not None:
        return found
    if loop.min_new_labels is not None and new_labels >= loop.min_new_labels:
        return Trigger("labels", f"{new_labels} new labelled rows since the last retrain "
                       f"(>= loop.min_new_labels = {loop.min_new_labels})",
                       {"new_labels": new_labels, "bound": loop.min_new_labels})
    if loop.schedule_s is not None and (now - since).total_seconds() >= loop.schedule_s:
        age = (now - since).total_seconds()
        return Trigger("schedule", f"{age:.0f} s since the last retrain (>= loop.schedule_s = "
                       f"{loop.schedule_s:.0f})", {"seconds": age, "bound": loop.schedule_s})
    return None


def _drift(windows: Sequence[WindowRecord], loop: LoopSettings) -> Trigger | None:
    tested = [w for w in windows if w.status != "not_testable"]
    recent = tested[-loop.drift_windows:]
    if len(recent) < loop.drift_windows or not all(w.drift_detected for w in recent):
        return None
    shares = [w.share_drifted for w in recent]
    drifted = sorted({f["name"] for w in recent for f in w.report.get("features", [])
                      if f.get("drifted")})
    since = _streak_start(tested, lambda w: w.drift_detected)
    return Trigger(
        "drift",
        f"dataset drift in the last {len(recent)} windows (ids "
        f"{', '.join(str(w.id) for w in recent)}; share of drifted features "
        f"{', '.join('-' if s is None else f'{s:.2f}' for s in shares)}; drifted: "
        f"{', '.join(drifted[:8]) or 'outputs only'})",
        {"windows": [w.id for w in recent], "share_drifted": shares, "features": drifted,
         "since_log_id": since},
    )


def _bounds(metric: str, reference: Any, loop: LoopSettings) -> list[_Bound]:
    """The values past which ``metric`` triggers: ``loop.metric_min``, then the test value
    made worse by ``loop.metric_drop``."""
    out = []
    if loop.metric_min is not None:
        out.append(_Bound(float(loop.metric_min), "loop.metric_min",
                          f"loop.metric_min = {loop.metric_min:g}"))
    if loop.metric_drop is not None and _finite(reference):
        ref = float(reference)
        bound = drop_bound(metric, ref, loop.metric_drop)
        known = METRICS.get(metric)
        how = (f"{loop.metric_drop:g}" if known is None or known.bounded
               else f"{loop.metric_drop:.0%}")
        out.append(_Bound(bound, "loop.metric_drop",
                          f"the test value {ref:.3f} made worse by {how} "
                          f"(loop.metric_drop = {loop.metric_drop:g})"))
    return out


def _metric(
    windows: Sequence[WindowRecord], reference: dict[str, Any], metric: str,
    loop: LoopSettings, monitor: MonitorSettings,
) -> Trigger | None:
    tested = [w for w in windows if w.status != "not_testable"]
    bounds = _bounds(metric, reference.get(metric), loop)
    if not tested or not bounds:
        return None

    def past(window: WindowRecord) -> bool:
        value = metric_reading(window, metric, monitor.min_rows).value
        return value is not None and any(is_worse(metric, value, b.value) for b in bounds)

    known = METRICS.get(metric)
    side = "below" if known is None or known.greater_is_better else "above"
    ref = reference.get(metric)
    numbers: dict[str, Any] = {"metric": metric, "trigger_on": loop.trigger_on,
                               "since_log_id": _streak_start(tested, past)}
    if _finite(ref):
        numbers["reference"] = float(ref)
    if loop.trigger_on == "interval":
        newest = tested[-1]
        reading = metric_reading(newest, metric, monitor.min_rows)
        if reading.value is None or reading.low is None or reading.high is None:
            return None
        best = best_end(metric, reading.low, reading.high)
        for bound in bounds:
            if is_worse(metric, best, bound.value):
                return Trigger(
                    "metric",
                    f"{reading.source} {metric} {reading.value:.3f} "
                    f"[{reading.low:.3f}, {reading.high:.3f}] in window {newest.id}: the whole "
                    f"interval is {side} {bound.value:.3f} ({bound.text})",
                    {**numbers, **_gap(metric, reading.value, ref), "window": newest.id,
                     "source": reading.source, "value": reading.value,
                     "interval": [reading.low, reading.high], "bound": bound.value,
                     "bound_setting": bound.setting})
        return None
    recent = tested[-loop.consecutive_windows:]
    if len(recent) < loop.consecutive_windows:
        return None
    readings = [metric_reading(w, metric, monitor.min_rows) for w in recent]
    for bound in bounds:
        if all(r.value is not None and is_worse(metric, r.value, bound.value)
               for r in readings):
            shown = ", ".join(f"{r.value:.3f}" for r in readings if r.value is not None)
            return Trigger(
                "metric",
                f"{metric} {side} {bound.value:.3f} ({bound.text}) in the last {len(recent)} "
                f"windows (ids {', '.join(str(w.id) for w in recent)}: {shown}; "
                f"loop.consecutive_windows = {loop.consecutive_windows})",
                {**numbers, **_gap(metric, readings[-1].value, ref), "window": recent[-1].id,
                 "windows": [w.id for w in recent], "source": readings[-1].source,
                 "value": readings[-1].value, "values": [r.value for r in readings],
                 "sources": [r.source for r in readings], "bound": bound.value,
                 "bound_setting": bound.setting})
    return None


def _gap(metric: str, value: float | None, reference: Any) -> dict[str, float]:
    if value is None or not _finite(reference):
        return {}
    worse = worse_by(metric, value, float(reference))
    return {"drop": worse.by, "compared": worse.compared}


def _finite(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _streak_start(windows: Sequence[WindowRecord], bad: Any) -> int | None:
    """First log id of the trailing run of windows for which ``bad`` holds: where the
    change began, so the loop can retrain on data from after it."""
    start = None
    for window in reversed(windows):
        if not bad(window):
            break
        start = window.first_log_id
    return start


def metric_reading(window: WindowRecord, metric: str, min_labelled: int) -> Reading:
    """The window's realised ``metric`` with its interval when at least ``min_labelled`` rows
    are labelled, else its label-free estimate with its band.

    Examples
    --------
    >>> from datetime import timezone
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> w = WindowRecord(1, "m", 1, 1, 100, t, t, 100, "ok", False, 0.0, False, {},
    ...                  {"accuracy": {"value": 0.8, "low": 0.7, "high": 0.9}},
    ...                  {"labelled": 10, "accuracy": {"value": 0.6, "low": 0.3, "high": 0.9}}, t)
    >>> metric_reading(w, "accuracy", 30)
    Reading(source='estimated', value=0.8, low=0.7, high=0.9)
    >>> metric_reading(w, "accuracy", 10).source
    'realised'
    """
    realised = window.realised or {}
    found = realised.get(metric)
    if realised.get("labelled", 0) >= min_labelled and isinstance(found, dict) \
            and _finite(found.get("value")):
        return Reading("realised", float(found["value"]), _float(found.get("low")),
                       _float(found.get("high")))
    estimated = (window.estimated or {}).get(metric)
    if isinstance(estimated, dict) and _finite(estimated.get("value")):
        return Reading("estimated", float(estimated["value"]), _float(estimated.get("low")),
                       _float(estimated.get("high")))
    return Reading("none", None)


def metric_value(
    window: WindowRecord, metric: str, min_labelled: int
) -> tuple[str, float | None]:
    """The window's realised ``metric`` when enough rows are labelled, else its estimate."""
    reading = metric_reading(window, metric, min_labelled)
    return reading.source, reading.value


def _float(value: Any) -> float | None:
    return float(value) if _finite(value) else None


def hold_reason(
    loop: LoopSettings, retrains: Sequence[datetime], now: datetime
) -> str | None:
    """``"cooldown"`` or ``"daily_limit"`` when a fired trigger must wait, else None."""
    if retrains and (now - max(retrains)).total_seconds() < loop.cooldown_s:
        return "cooldown"
    if sum(1 for t in retrains if now - t < timedelta(days=1)) >= loop.max_per_day:
        return "daily_limit"
    return None


__all__ = ["Reading", "Trigger", "find_trigger", "hold_reason", "metric_reading",
           "metric_value"]
