"""The retraining policy: which trigger fires, and whether cooldown or the daily limit hold it.

Each trigger from the monitor's windows also says where the change began (``since_log_id``:
the first row of the trailing run of windows that meet its condition), so the loop retrains on
data from after the change rather than on a mix of the old and the new concept.

Triggers, checked in this order on what the monitor stored since the last retrain (windows
of earlier versions that were already retrained on never fire again):

``drift``
    dataset drift in the last ``loop.drift_windows`` consecutive tested windows;
``metric``
    the newest window's realised metric (when at least ``monitor.min_rows`` rows are labelled)
    or else its estimated metric is below ``loop.metric_min``, or below the version's
    reference (test) value by more than ``loop.metric_drop``;
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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from driftloop.config import LoopSettings, MonitorSettings
from driftloop.monitor.performance import worse_by
from driftloop.store.monitoring import WindowRecord


@dataclass(frozen=True)
class Trigger:
    """A reason to retrain, with the numbers behind it."""

    kind: str
    message: str
    numbers: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, **self.numbers}


def find_trigger(
    windows: Sequence[WindowRecord],
    *,
    reference_metrics: dict[str, Any],
    new_labels: int,
    since: datetime,
    now: datetime,
    loop: LoopSettings,
    monitor: MonitorSettings,
) -> Trigger | None:
    """The first trigger that fires on ``windows`` (oldest first, since the last retrain).

    Examples
    --------
    >>> from datetime import timezone
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> find_trigger([], reference_metrics={}, new_labels=600, since=t, now=t,
    ...              loop=LoopSettings(min_new_labels=500), monitor=MonitorSettings()).kind
    'labels'
    """
    for check in (_drift, _metric):
        found = check(windows, reference_metrics, loop, monitor)
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


def _drift(
    windows: Sequence[WindowRecord], _: dict[str, Any], loop: LoopSettings,
    __: MonitorSettings,
) -> Trigger | None:
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


def _metric(
    windows: Sequence[WindowRecord], reference: dict[str, Any], loop: LoopSettings,
    monitor: MonitorSettings,
) -> Trigger | None:
    tested = [w for w in windows if w.status != "not_testable"]
    if not tested:
        return None
    newest = tested[-1]
    source, value = metric_value(newest, loop.metric, monitor.min_rows)
    if value is None:
        return None
    ref = reference.get(loop.metric)

    def low(window: WindowRecord) -> bool:
        v = metric_value(window, loop.metric, monitor.min_rows)[1]
        return v is not None and (
            (loop.metric_min is not None and v < loop.metric_min)
            or (loop.metric_drop is not None and ref is not None
                and worse_by(loop.metric, float(ref), v) > loop.metric_drop))

    numbers: dict[str, Any] = {"window": newest.id, "metric": loop.metric, "source": source,
                               "value": value, "since_log_id": _streak_start(tested, low)}
    if loop.metric_min is not None and value < loop.metric_min:
        return Trigger("metric", f"{source} {loop.metric} {value:.3f} in window {newest.id} is "
                       f"below loop.metric_min = {loop.metric_min:.3f}",
                       {**numbers, "bound": loop.metric_min})
    drop = None if ref is None else worse_by(loop.metric, float(ref), value)
    if loop.metric_drop is not None and drop is not None and drop > loop.metric_drop:
        return Trigger("metric", f"{source} {loop.metric} {value:.3f} in window {newest.id} is "
                       f"{drop:.3f} worse than the reference {float(ref):.3f} "
                       f"(> loop.metric_drop = {loop.metric_drop:.3f})",
                       {**numbers, "reference": float(ref), "drop": drop,
                        "bound": loop.metric_drop})
    return None


def _streak_start(windows: Sequence[WindowRecord], bad: Any) -> int | None:
    """First log id of the trailing run of windows for which ``bad`` holds: where the
    change began, so the loop can retrain on data from after it."""
    start = None
    for window in reversed(windows):
        if not bad(window):
            break
        start = window.first_log_id
    return start


def metric_value(
    window: WindowRecord, metric: str, min_labelled: int
) -> tuple[str, float | None]:
    """The window's realised ``metric`` when enough rows are labelled, else its estimate."""
    realised = window.realised or {}
    if realised.get("labelled", 0) >= min_labelled and isinstance(realised.get(metric), dict):
        return "realised", float(realised[metric]["value"])
    estimated = (window.estimated or {}).get(metric)
    if isinstance(estimated, dict) and estimated.get("value") is not None:
        return "estimated", float(estimated["value"])
    return "none", None


def hold_reason(
    loop: LoopSettings, retrains: Sequence[datetime], now: datetime
) -> str | None:
    """``"cooldown"`` or ``"daily_limit"`` when a fired trigger must wait, else None."""
    if retrains and (now - max(retrains)).total_seconds() < loop.cooldown_s:
        return "cooldown"
    if sum(1 for t in retrains if now - t < timedelta(days=1)) >= loop.max_per_day:
        return "daily_limit"
    return None


__all__ = ["Trigger", "find_trigger", "hold_reason", "metric_value"]
