"""The monitor: cut a model's prediction log into windows and test each against its reference.

:func:`monitor` reads the log rows after the last stored window, cuts them into windows of
``N`` rows or of a fixed duration (never across a version change: a version's rows are
compared with that version's reference profile), and for each window stores the drift report,
the label-free performance estimate (CBPE, :mod:`driftloop.monitor.performance`) and the
realised performance on the rows whose feedback arrived. It then refreshes the realised
performance of earlier windows that got late labels, runs the streaming detectors on the
error stream, and raises alerts.

Decided where the issue was silent:

* A count window waits until it is full; the rows of a version that is no longer served (a
  newer version has rows after them) are closed as one ``partial`` window. A time window is
  processed once its end has passed.
* A window with fewer than ``monitor.min_rows`` rows is stored as ``not_testable`` (its
  drift tests are not run), so the timeline has no holes and nothing is silently skipped.
* Realised metrics are recomputed for the newest ``REFRESH_WINDOWS`` windows each run, so
  labels that arrive late are counted.

Everything is per model and per version: log ids are shared by every model, so a window is
its model's and version's rows between two ids (never an id range alone), and the seeds of a
window's simulated and bootstrap draws come from its model and first row, not its log id, so
a model's numbers are the same whatever other models log in between. The watched
metric follows the model's task (``monitor.performance_metric`` unset: accuracy, or RMSE
for regression). Feedback labels are read as the model's classes with
:func:`~driftloop.models.labels.coerce_label` (``1``, ``1.0``, ``"1"`` are one integer
class) in the realised metrics and the error stream alike; a label that is not a class (or
not a finite number, for regression) is counted in the window's ``unusable_labels``, never
scored and never counted as an error.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from driftloop.config import Settings
from driftloop.data.preprocess import TargetEncoder
from driftloop.errors import UsageError
from driftloop.evaluate.metrics import watched_metric, worse_by
from driftloop.models.labels import coerce_label
from driftloop.monitor.alerts import raise_alert
from driftloop.monitor.detectors import detect_changes, error_stream, reference_scale
from driftloop.monitor.drift import DriftReport, compare
from driftloop.monitor.estimator import (
    PerformanceEstimator,
    estimate_window,
    reference_estimator,
)
from driftloop.monitor.performance import realised_performance
from driftloop.monitor.profile import FeatureProfile, Profile, profile_like
from driftloop.monitor.reference import load_reference
from driftloop.monitor.skew import SkewReport, skew_of_windows
from driftloop.monitor.webhooks import WebhookSender
from driftloop.registry import Registry
from driftloop.store.clock import utcnow
from driftloop.store.monitoring import AlertRecord, WindowRecord
from driftloop.store.serving import PredictionRow

REFRESH_WINDOWS = 50
STREAM_ROWS = 20_000
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class WindowSpec:
    """Windows of ``rows`` log rows, or of ``seconds`` of serving time."""

    rows: int | None = None
    seconds: float | None = None

    @classmethod
    def parse(cls, text: str | int) -> WindowSpec:
        """``"1000"`` or ``1000`` → 1000 rows; ``"1h"``, ``"15m"``, ``"30s"``, ``"1d"``.

        Examples
        --------
        >>> WindowSpec.parse("1000"), WindowSpec.parse("15m")
        (WindowSpec(rows=1000, seconds=None), WindowSpec(rows=None, seconds=900.0))
        """
        value = str(text).strip()
        if value.isdigit() and int(value) > 0:
            return cls(rows=int(value))
        match = _DURATION.match(value)
        if match and float(match.group(1)) > 0:
            return cls(seconds=float(match.group(1)) * _UNITS[match.group(2)])
        raise UsageError(
            f"window {text!r} is neither a row count (e.g. 1000) nor a duration (e.g. 1h, 15m, "
            "30s, 1d)."
        )


@dataclass
class MonitorResult:
    """What one monitor run did."""

    model: str
    windows: list[WindowRecord] = field(default_factory=list)
    alerts: list[AlertRecord] = field(default_factory=list)
    refreshed: int = 0
    pending_rows: int = 0
    change_points: dict[str, list[int]] = field(default_factory=dict)
    skew: list[SkewReport] = field(default_factory=list)  # versions with feature views only

    def to_json(self) -> dict[str, Any]:
        """A plain-JSON summary (the ``--json`` output of ``driftloop monitor``)."""
        return {
            "model": self.model,
            "windows": [window_json(w) for w in self.windows],
            "alerts": [{"id": a.id, "kind": a.kind, "message": a.message,
                        "window_id": a.window_id, "deliveries": a.deliveries}
                       for a in self.alerts],
            "refreshed_windows": self.refreshed,
            "pending_rows": self.pending_rows,
            "change_points": self.change_points,
            "skew": [r.to_json() for r in self.skew],
        }


def window_json(window: WindowRecord) -> dict[str, Any]:
    """A stored window as plain JSON (the drift report without its histograms)."""
    report = {k: v for k, v in window.report.items() if k != "histograms"}
    return {
        "id": window.id, "version": window.version, "status": window.status,
        "rows": window.rows, "first_log_id": window.first_log_id,
        "last_log_id": window.last_log_id, "start_at": window.start_at.isoformat(),
        "end_at": window.end_at.isoformat(), "drift_detected": window.drift_detected,
        "share_drifted": window.share_drifted, "prediction_drift": window.prediction_drift,
        "estimated": window.estimated, "realised": window.realised, "drift": report,
    }


def monitor(
    model: str,
    *,
    window: str | int | None = None,
    settings: Settings | None = None,
    registry: Registry | None = None,
    now: datetime | None = None,
) -> MonitorResult:
    """Process the prediction log of ``model`` since the last run into stored windows.

    Returns the new windows, the alerts raised and how many rows wait for a full window.
    ``registry``: the one to read and write (kept open); None: open the one ``settings``
    names and close it afterwards.
    """
    settings = settings or Settings.load()
    if registry is None:
        with Registry.open(settings) as opened:
            return monitor(model, window=window, settings=settings, registry=opened, now=now)
    spec = WindowSpec.parse(window if window is not None else settings.monitor.window)
    latest = registry.get(model)  # NotFoundError naming the model when it is unknown
    # one monitor per model at a time, across processes and hosts: two would alert twice
    with registry.store.model_lock(model, wait_s=settings.monitor.lock_wait_s):
        return _monitor_locked(model, spec, latest.task, settings, registry, now)


def _monitor_locked(
    model: str, spec: WindowSpec, task: str, settings: Settings, registry: Registry,
    now: datetime | None,
) -> MonitorResult:
    # refused before anything is stored: a metric the task never reports would never alert
    metric = watched_metric(settings.monitor.performance_metric, task,
                            setting="monitor.performance_metric")
    store = registry.store
    rows = store.unwindowed_predictions(model)
    chunks, pending = cut_windows(rows, spec, now or utcnow())
    result = MonitorResult(model=model, pending_rows=pending)
    context = _Context(registry, settings, model, metric)
    delivered: dict[int, AlertRecord] = {}
    cfg = settings.monitor
    context.sender = WebhookSender(
        cfg.webhooks, lambda i, d: delivered.update({i: store.set_deliveries(i, d)}),
        retries=cfg.webhook_retries, backoff_s=cfg.webhook_backoff_s,
        timeout_s=cfg.webhook_timeout_s, wait_s=cfg.webhook_wait_s)
    for chunk, status in chunks:
        stored = _process_window(context, chunk, status)
        result.windows.append(stored)
        result.alerts.extend(_window_alerts(context, stored))
    result.skew = skew_of_windows(registry, settings, model, result.windows)
    result.alerts.extend(_skew_alerts(context, result))
    result.refreshed = _refresh_realised(context)
    result.change_points = _concept_drift(context, result,
                                          [row for chunk, _ in chunks for row in chunk])
    context.sender.finish()  # every webhook together, at most webhook_wait_s
    result.alerts = [delivered.get(a.id, a) for a in result.alerts]
    return result


def cut_windows(
    rows: Sequence[PredictionRow], spec: WindowSpec, now: datetime
) -> tuple[list[tuple[list[PredictionRow], str]], int]:
    """Closed windows of ``rows`` (each with status ``ok`` or ``partial``) and rows left over.

    Examples
    --------
    >>> from datetime import timezone
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> rows = [PredictionRow(i, str(i), "m", 1 if i < 7 else 2, t, {}, {}) for i in range(11)]
    >>> chunks, left = cut_windows(rows, WindowSpec(rows=3), t)
    >>> [([r.id for r in c], s) for c, s in chunks], left
    ([([0, 1, 2], 'ok'), ([3, 4, 5], 'ok'), ([6], 'partial'), ([7, 8, 9], 'ok')], 1)
    """
    runs: list[list[PredictionRow]] = []
    for row in rows:
        if runs and runs[-1][-1].version == row.version:
            runs[-1].append(row)
        else:
            runs.append([row])
    out: list[tuple[list[PredictionRow], str]] = []
    pending = 0
    for i, run in enumerate(runs):
        last_run = i == len(runs) - 1
        pieces = _by_rows(run, spec.rows) if spec.rows else _by_time(run, spec.seconds or 0.0)
        for piece in pieces:
            closed = (len(piece) == spec.rows) if spec.rows else (
                _window_end(piece[0].at, spec.seconds or 0.0) <= now)
            if closed:
                out.append((piece, "ok"))
            elif not last_run:
                out.append((piece, "partial"))
            else:
                pending += len(piece)
    return out, pending


def _by_rows(rows: list[PredictionRow], size: int) -> list[list[PredictionRow]]:
    return [rows[i:i + size] for i in range(0, len(rows), size)]


def _by_time(rows: list[PredictionRow], seconds: float) -> list[list[PredictionRow]]:
    pieces: list[list[PredictionRow]] = []
    for row in rows:
        start = _window_start(row.at, seconds)
        if pieces and _window_start(pieces[-1][0].at, seconds) == start:
            pieces[-1].append(row)
        else:
            pieces.append([row])
    return pieces


def _window_start(at: datetime, seconds: float) -> float:
    stamp = at.timestamp()
    return stamp - stamp % seconds


def _window_end(at: datetime, seconds: float) -> datetime:
    return datetime.fromtimestamp(_window_start(at, seconds) + seconds, tz=at.tzinfo)


class _Context:
    """What every window of one run needs, loaded once per version."""

    def __init__(self, registry: Registry, settings: Settings, model: str, metric: str) -> None:
        self.registry = registry
        self.settings = settings
        self.model = model
        self.metric = metric  # the watched metric, resolved from the model's task
        self.sender: WebhookSender | None = None  # set by monitor(): one per run
        self._references: dict[int, Profile] = {}
        self._classes: dict[int, list[Any] | None] = {}
        self._metrics: dict[int, dict[str, Any]] = {}
        self._estimators: dict[int, tuple[PerformanceEstimator | None, dict[str, Any]]] = {}

    def reference(self, version: int) -> Profile:
        if version not in self._references:
            self._references[version] = load_reference(self.registry, self.model, version)
        return self._references[version]

    def estimator(self, version: int) -> tuple[PerformanceEstimator | None, dict[str, Any]]:
        """The label-free estimator fitted on the version's labelled reference (None: an old
        reference without labels) and the note a window's report keeps about it."""
        if version not in self._estimators:
            self._estimators[version] = reference_estimator(self.reference(version))
        return self._estimators[version]

    def classes(self, version: int) -> list[Any] | None:
        """Class labels in output order (as trained: numbers stay numbers), or None for
        regression."""
        if version not in self._classes:
            record = self.registry.get(self.model, version)
            bundle = self.registry.bundle(record)
            if bundle.task == "regression":
                self._classes[version] = None
            else:
                encoder = TargetEncoder.from_json(bundle.target_encoder)
                self._classes[version] = list(encoder.classes_)
            self._metrics[version] = dict(record.metrics)
        return self._classes[version]

    def reference_metrics(self, version: int) -> dict[str, Any]:
        self.classes(version)
        return self._metrics[version]


def _process_window(context: _Context, rows: list[PredictionRow], status: str) -> WindowRecord:
    version = rows[0].version
    settings = context.settings
    reference = context.reference(version)
    classes = context.classes(version)
    frame = pd.DataFrame.from_records([r.features for r in rows])
    outputs = _outputs(rows, classes)
    testable = len(rows) >= settings.monitor.min_rows
    current = profile_like(reference, frame, outputs=outputs, settings=settings.drift)
    if testable:
        report = compare(reference, current, settings=settings.drift)
        report_json = report.to_dict()
    else:
        report = None
        report_json = {"drift_detected": False, "share_drifted": None,
                       "status": "not_testable",
                       "reason": f"{len(rows)} rows, fewer than monitor.min_rows = "
                                 f"{settings.monitor.min_rows}", "features": [],
                       "prediction": {"drift_detected": False, "outputs": []}}
    report_json["histograms"] = histograms(reference, current)
    estimated: dict[str, Any] = {}
    if classes is not None and testable:
        estimator, how = context.estimator(version)
        estimated = estimate_window(estimator, outputs, seed=window_seed(context.model, rows))
        report_json["performance_estimate"] = how
    return context.registry.store.add_window(
        log_ids=[r.id for r in rows], model_name=context.model, version=version,
        first_log_id=rows[0].id, last_log_id=rows[-1].id, start_at=rows[0].at,
        end_at=rows[-1].at, rows=len(rows),
        status=status if testable else "not_testable",
        drift_detected=bool(report and report.drift_detected),
        share_drifted=None if report is None else report.share_drifted,
        prediction_drift=bool(report and _prediction_drift(report)),
        report=report_json, estimated=estimated,
        realised=_realised(context, rows, classes),
    )


def window_seed(model: str, rows: Sequence[PredictionRow]) -> int:
    """The seed of a window's simulated and bootstrap draws, from what the window holds: its
    model, version and first row (features and output). A log id would move when other
    models log in between, and a request id is new every time the same traffic is served.

    Examples
    --------
    >>> from datetime import timezone
    >>> t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    >>> a = window_seed("m", [PredictionRow(7, "r1", "m", 1, t, {"x": 1.5}, {"p": 0})])
    >>> b = window_seed("m", [PredictionRow(99, "q", "m", 1, t, {"x": 1.5}, {"p": 0})])
    >>> a == b, 0 <= a < 2**32, a == window_seed("n", [PredictionRow(7, "r1", "n", 1, t,
    ...                                                 {"x": 1.5}, {"p": 0})])
    (True, True, False)
    """
    first = rows[0]
    text = json.dumps([model, first.version, first.features, first.output], sort_keys=True,
                      default=str)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _prediction_drift(report: DriftReport) -> bool:
    return bool(report.prediction.get("drift_detected", False))


def _outputs(rows: list[PredictionRow], classes: list[Any] | None) -> np.ndarray:
    if classes is None:
        return np.array([float(r.output.get("predictions", np.nan)) for r in rows])
    return np.array([r.output.get("probabilities") or [np.nan] * len(classes) for r in rows],
                    dtype=np.float64)


def _realised(
    context: _Context, rows: list[PredictionRow], classes: list[Any] | None
) -> dict[str, Any] | None:
    """Metrics on the window's rows with a usable label; ``labelled`` counts those rows and
    ``unusable_labels`` the rows whose label is not one of the classes (None: no label)."""
    labels = context.registry.store.labels_for([r.request_id for r in rows])
    labelled = [r for r in rows if r.request_id in labels]
    if not labelled:
        return None
    coerced = [(r, coerce_label(labels[r.request_id], classes)) for r in labelled]
    usable = [(r, label) for r, label in coerced if label is not None]
    seed = window_seed(context.model, rows)
    if classes is None:
        y = np.array([float(label) for _, label in usable])
        pred = np.array([float(r.output.get("predictions", np.nan)) for r, _ in usable])
        out = realised_performance(y, pred, task="regression", seed=seed)
    else:
        y = np.array([classes.index(label) for _, label in usable], dtype=np.int64)
        proba = _outputs([r for r, _ in usable], classes)
        out = realised_performance(y, proba.reshape(len(usable), len(classes)),
                                   task="binary" if len(classes) == 2 else "multiclass",
                                   seed=seed)
    out["unusable_labels"] = len(labelled) - len(usable)
    return out


def histograms(reference: Profile, current: Profile) -> dict[str, dict[str, Any]]:
    """Reference vs current shares per bin or category, for the dashboard's drill-down.

    Examples
    --------
    >>> from driftloop.monitor.profile import build_reference
    >>> ref = build_reference(pd.DataFrame({"x": np.arange(100.0)}))
    >>> cur = profile_like(ref, pd.DataFrame({"x": np.arange(50.0)}))
    >>> h = histograms(ref, cur)["x"]
    >>> h["kind"], round(sum(h["reference"]), 6), round(sum(h["current"]), 6)
    ('numeric', 1.0, 1.0)
    """
    out: dict[str, dict[str, Any]] = {}
    for name, ref in {**reference.features, **reference.outputs}.items():
        cur = current.features.get(name) or current.outputs.get(name)
        if cur is None:
            continue
        out[name] = {"kind": ref.kind, "labels": _labels(ref),
                     "reference": _shares(ref), "current": _shares(cur)}
    return out


def _labels(profile: FeatureProfile) -> list[str]:
    if profile.kind == "categorical":
        return [*(profile.categories or []), "other"]
    edges = profile.edges or []
    return [f"{lo:.4g}–{hi:.4g}" for lo, hi in zip(edges[:-1], edges[1:], strict=False)]


def _shares(profile: FeatureProfile) -> list[float]:
    counts = np.asarray(profile.counts, dtype=np.float64)
    total = counts.sum()
    return (counts / total).round(6).tolist() if total > 0 else [0.0] * len(counts)


def _window_alerts(context: _Context, window: WindowRecord) -> list[AlertRecord]:
    found: list[tuple[str, str, dict[str, Any]]] = []
    report = window.report
    drifted = [f["name"] for f in report.get("features", []) if f.get("drifted")]
    if window.drift_detected:
        found.append(("dataset_drift",
                      f"dataset drift in window {window.id} (v{window.version}, {window.rows} "
                      f"rows): {len(drifted)} feature(s) drifted"
                      + (f" ({', '.join(drifted[:8])})" if drifted else ""),
                      {"share_drifted": window.share_drifted, "drifted": drifted}))
    if window.prediction_drift:
        found.append(("prediction_drift",
                      f"the model's output distribution drifted in window {window.id}",
                      {"outputs": report.get("prediction", {}).get("outputs", [])}))
    drop = _performance_drop(context, window)
    if drop is not None:
        found.append(drop)
    return [raise_alert(context.registry.store, model_name=context.model, kind=kind,
                        message=message, details=details, window_id=window.id,
                        sender=context.sender)
            for kind, message, details in found]


def _skew_alerts(context: _Context, result: MonitorResult) -> list[AlertRecord]:
    """One ``feature_skew`` alert per version whose skew check flagged a feature (on the
    version's newest window of this run)."""
    alerts = []
    for report in result.skew:
        if not report.flagged:
            continue
        window = [w for w in result.windows if w.version == report.version][-1]
        shown = ", ".join(f"{f.feature} ({f.share.low:.1%} or more)"
                          for f in report.features if f.flagged and f.share.low is not None)
        alerts.append(raise_alert(
            context.registry.store, model_name=context.model, kind="feature_skew",
            message=f"training-serving skew in v{report.version}: the served values of "
                    f"{shown} differ from the offline values (above "
                    f"monitor.skew_max_share = {report.max_share})",
            details=report.to_json(), window_id=window.id, sender=context.sender))
    return alerts


def _performance_drop(
    context: _Context, window: WindowRecord
) -> tuple[str, str, dict[str, Any]] | None:
    metric = context.metric
    reference = context.reference_metrics(window.version).get(metric)
    if reference is None:
        return None
    for source, values in (("realised", window.realised), ("estimated", window.estimated)):
        value = (values or {}).get(metric)
        if isinstance(value, dict) and value.get("value") is not None:
            if source == "realised" and (window.realised or {}).get("labelled", 0) < \
                    context.settings.monitor.min_rows:
                continue
            worse = worse_by(metric, float(value["value"]), float(reference))
            allowed = context.settings.monitor.performance_drop
            if worse.compared > allowed:
                how = ("" if worse.compared == worse.by
                       else f" ({worse.compared:.1%} of it)")
                return ("performance_drop",
                        f"{source} {metric} {value['value']:.3f} in window {window.id} is "
                        f"{worse.by:.3f} worse than the reference {float(reference):.3f}{how}; "
                        f"monitor.performance_drop allows {allowed:g}",
                        {"metric": metric, "source": source, "value": value["value"],
                         "reference": float(reference), "drop": worse.by,
                         "compared": worse.compared, "allowed": allowed})
            return None
    return None


def _refresh_realised(context: _Context) -> int:
    """Recompute realised metrics of recent windows whose labels may have arrived late."""
    store = context.registry.store
    refreshed = 0
    for window in store.list_windows(context.model, limit=REFRESH_WINDOWS):
        stored = window.realised or {}
        seen = stored.get("labelled", 0) + stored.get("unusable_labels", 0)
        if seen >= window.rows:
            continue
        rows = store.window_predictions(window.id)  # the rows the window claimed
        realised = _realised(context, rows, context.classes(window.version))
        if realised is not None and realised != stored:
            store.set_realised(window.id, realised)
            refreshed += 1
    return refreshed


def _concept_drift(
    context: _Context, result: MonitorResult, rows: list[PredictionRow]
) -> dict[str, list[int]]:
    """Run the detectors over the labelled error stream of the newest version seen, from the
    start of its serving (up to ``STREAM_ROWS`` rows): the detectors see the context before,
    not a cold start. Report the change points after the last one an earlier alert of this
    version reported. A change in rows that were windowed before their labels came is found
    once the labels are there: labels arrive late, so "in the newly windowed rows" would
    miss it for good."""
    if not rows:
        return {}
    version = rows[-1].version
    cfg = context.settings.monitor
    stream = context.registry.store.recent_predictions(context.model, version,
                                                       up_to_id=rows[-1].id, limit=STREAM_ROWS)
    labels = context.registry.store.labels_for([r.request_id for r in stream])
    labelled = [r for r in stream if r.request_id in labels]
    classes = context.classes(version)
    errors, usable = error_stream([labels[r.request_id] for r in labelled],
                                  [r.output for r in labelled], classes=classes)
    scored = [r for r, ok in zip(labelled, usable, strict=True) if ok]
    if len(scored) < cfg.min_rows:
        return {}
    scale: dict[str, Any] = {}
    if classes is None:  # errors in units of the version's spread: the detectors are scale-free
        value, source = reference_scale(context.reference_metrics(version), errors,
                                        warm_up=cfg.min_rows)
        errors = errors / value
        scale = {"scale": value, "scale_source": source}
    found = detect_changes(errors, binary=classes is not None, settings=cfg)
    reported = _reported_change(context, version)
    points = {name: [scored[i].id for i in positions if scored[i].id > reported]
              for name, positions in found.items()}
    fired = {name: ids for name, ids in points.items() if ids and name in cfg.alert_detectors}
    if fired:
        first = min(ids[0] for ids in fired.values())
        result.alerts.append(raise_alert(
            context.registry.store, model_name=context.model, kind="concept_drift",
            message=f"the error rate of v{version} changed (detectors "
                    f"{', '.join(sorted(fired))}; first change at prediction-log id {first})",
            details={"change_points": points, "labelled": len(scored),
                     "unusable_labels": len(labelled) - len(scored), "version": version,
                     **scale},
            window_id=result.windows[-1].id, sender=context.sender))
    return points


def _reported_change(context: _Context, version: int) -> int:
    """The newest prediction-log id of a change point that a concept_drift alert of
    ``version`` reported (0: none yet)."""
    for alert in context.registry.store.alerts_of_kind(context.model, "concept_drift"):
        if alert.details.get("version") == version:
            return max((i for ids in (alert.details.get("change_points") or {}).values()
                        for i in ids), default=0)
    return 0


__all__ = ["MonitorResult", "WindowSpec", "cut_windows", "histograms", "monitor", "window_json",
           "window_seed"]
