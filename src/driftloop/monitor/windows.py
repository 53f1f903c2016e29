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
"""

from __future__ import annotations

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
from driftloop.monitor.alerts import raise_alert
from driftloop.monitor.detectors import detect_changes
from driftloop.monitor.drift import DriftReport, compare
from driftloop.monitor.performance import (
    estimate_performance,
    realised_performance,
    worse_by,
)
from driftloop.monitor.profile import FeatureProfile, Profile, profile_like
from driftloop.monitor.reference import load_reference
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
    registry.get(model)  # NotFoundError naming the model when it is unknown
    store = registry.store
    rows = store.predictions_after(model, store.last_window_log_id(model))
    chunks, pending = cut_windows(rows, spec, now or utcnow())
    result = MonitorResult(model=model, pending_rows=pending)
    context = _Context(registry, settings, model)
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

    def __init__(self, registry: Registry, settings: Settings, model: str) -> None:
        self.registry = registry
        self.settings = settings
        self.model = model
        self.sender: WebhookSender | None = None  # set by monitor(): one per run
        self._references: dict[int, Profile] = {}
        self._classes: dict[int, list[str] | None] = {}
        self._metrics: dict[int, dict[str, Any]] = {}

    def reference(self, version: int) -> Profile:
        if version not in self._references:
            self._references[version] = load_reference(self.registry, self.model, version)
        return self._references[version]

    def classes(self, version: int) -> list[str] | None:
        """Class labels in output order (as text), or None for regression."""
        if version not in self._classes:
            record = self.registry.get(self.model, version)
            bundle = self.registry.bundle(record)
            if bundle.task == "regression":
                self._classes[version] = None
            else:
                encoder = TargetEncoder.from_json(bundle.target_encoder)
                self._classes[version] = [str(c) for c in encoder.classes_]
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
    estimated = (estimate_performance(outputs, seed=rows[0].id)
                 if classes is not None and testable else {})
    return context.registry.store.add_window(
        model_name=context.model, version=version,
        first_log_id=rows[0].id, last_log_id=rows[-1].id, start_at=rows[0].at,
        end_at=rows[-1].at, rows=len(rows),
        status=status if testable else "not_testable",
        drift_detected=bool(report and report.drift_detected),
        share_drifted=None if report is None else report.share_drifted,
        prediction_drift=bool(report and _prediction_drift(report)),
        report=report_json, estimated=estimated,
        realised=_realised(context, rows, classes),
    )


def _prediction_drift(report: DriftReport) -> bool:
    return bool(report.prediction.get("drift_detected", False))


def _outputs(rows: list[PredictionRow], classes: list[str] | None) -> np.ndarray:
    if classes is None:
        return np.array([float(r.output.get("predictions", np.nan)) for r in rows])
    return np.array([r.output.get("probabilities") or [np.nan] * len(classes) for r in rows],
                    dtype=np.float64)


def _realised(
    context: _Context, rows: list[PredictionRow], classes: list[str] | None
) -> dict[str, Any] | None:
    labels = context.registry.store.labels_for([r.request_id for r in rows])
    labelled = [r for r in rows if r.request_id in labels]
    if not labelled:
        return None
    if classes is None:
        y = np.array([float(labels[r.request_id]) for r in labelled])
        pred = np.array([float(r.output.get("predictions", np.nan)) for r in labelled])
        return realised_performance(y, pred, task="regression", seed=rows[0].id)
    index = {c: i for i, c in enumerate(classes)}
    known = [r for r in labelled if str(labels[r.request_id]) in index]
    y = np.array([index[str(labels[r.request_id])] for r in known], dtype=np.int64)
    proba = _outputs(known, classes)
    out = realised_performance(y, proba, task="binary" if len(classes) == 2 else "multiclass",
                               seed=rows[0].id)
    out["unknown_labels"] = len(labelled) - len(known)
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


def _performance_drop(
    context: _Context, window: WindowRecord
) -> tuple[str, str, dict[str, Any]] | None:
    metric = context.settings.monitor.performance_metric
    reference = context.reference_metrics(window.version).get(metric)
    if reference is None:
        return None
    for source, values in (("realised", window.realised), ("estimated", window.estimated)):
        value = (values or {}).get(metric)
        if isinstance(value, dict) and value.get("value") is not None:
            if source == "realised" and (window.realised or {}).get("labelled", 0) < \
                    context.settings.monitor.min_rows:
                continue
            dropped = worse_by(metric, float(reference), float(value["value"]))
            if dropped > context.settings.monitor.performance_drop:
                return ("performance_drop",
                        f"{source} {metric} {value['value']:.3f} in window {window.id} is "
                        f"{dropped:.3f} worse than the reference {float(reference):.3f}",
                        {"metric": metric, "source": source, "value": value["value"],
                         "reference": float(reference), "drop": dropped})
            return None
    return None


def _refresh_realised(context: _Context) -> int:
    """Recompute realised metrics of recent windows whose labels may have arrived late."""
    store = context.registry.store
    refreshed = 0
    for window in store.list_windows(context.model, limit=REFRESH_WINDOWS):
        labelled = (window.realised or {}).get("labelled", 0)
        if labelled >= window.rows:
            continue
        rows = [r for r in store.predictions_after(
                    context.model, window.first_log_id - 1,
                    limit=window.last_log_id - window.first_log_id + 1)
                if r.version == window.version]
        realised = _realised(context, rows, context.classes(window.version))
        if realised is not None and realised.get("labelled", 0) > labelled:
            store.set_realised(window.id, realised)
            refreshed += 1
    return refreshed


def _concept_drift(
    context: _Context, result: MonitorResult, rows: list[PredictionRow]
) -> dict[str, list[int]]:
    """Run the detectors over the labelled error stream of the newest version seen, from the
    start of its serving (up to ``STREAM_ROWS`` rows), and report the change points that fall
    in the newly windowed rows: the detectors see the context before, not a cold start."""
    if not rows:
        return {}
    version = rows[-1].version
    stream = context.registry.store.recent_predictions(context.model, version,
                                                       up_to_id=rows[-1].id, limit=STREAM_ROWS)
    labels = context.registry.store.labels_for([r.request_id for r in stream])
    labelled = [r for r in stream if r.request_id in labels]
    if len(labelled) < context.settings.monitor.min_rows:
        return {}
    classes = context.classes(version)
    if classes is None:
        errors = np.array([abs(float(labels[r.request_id]) - float(r.output["predictions"]))
                           for r in labelled])
    else:
        errors = np.array([str(labels[r.request_id]) != str(r.output.get("predictions"))
                           for r in labelled], dtype=np.float64)
    found = detect_changes(errors, binary=classes is not None)
    first_new = rows[0].id
    points = {name: [labelled[i].id for i in positions if labelled[i].id >= first_new]
              for name, positions in found.items()}
    cfg = context.settings.monitor
    fired = {name: ids for name, ids in points.items() if ids and name in cfg.alert_detectors}
    if fired:
        first = min(ids[0] for ids in fired.values())
        result.alerts.append(raise_alert(
            context.registry.store, model_name=context.model, kind="concept_drift",
            message=f"the error rate of v{version} changed (detectors "
                    f"{', '.join(sorted(fired))}; first change at prediction-log id {first})",
            details={"change_points": points, "labelled": len(labelled), "version": version},
            window_id=result.windows[-1].id, sender=context.sender))
    return points


__all__ = ["MonitorResult", "WindowSpec", "cut_windows", "histograms", "monitor", "window_json"]
