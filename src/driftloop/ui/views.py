"""What each dashboard page shows, as plain JSON built from the registry and the store.

One function per page (and per drill-down): :func:`models_view`, :func:`version_view`,
:func:`monitoring_view`, :func:`window_view`, :func:`loop_view`, :func:`rollouts_view`,
:func:`audit_view`. They
return dicts of JSON values only (times as ISO 8601 text, NaN as None), so the router just
serialises them and the browser draws them. Nothing here writes.

Examples
--------
>>> import tempfile
>>> from driftloop.config import Settings
>>> from driftloop.registry import Registry
>>> from driftloop.store import utcnow
>>> home = tempfile.mkdtemp()
>>> reg = Registry.open(Settings.load(overrides={"home": home}, environ={}, cwd=home))
>>> v = reg.store.add_version("churn", None, "binary", "table", "a" * 64, "b" * 64,
...                           {"accuracy": 0.9}, 10)
>>> [(m["name"], m["health"]["status"]) for m in models_view(reg)["models"]]
[('churn', 'no traffic')]
>>> w = reg.store.add_window(model_name="churn", version=1, first_log_id=1, last_log_id=50,
...                start_at=utcnow(), end_at=utcnow(), rows=50, status="ok",
...                drift_detected=True, share_drifted=0.5, prediction_drift=False,
...                report={"features": [{"name": "age", "drifted": True}]},
...                estimated={"accuracy": {"value": 0.89}})
>>> models_view(reg)["models"][0]["health"]["label"]
'⚠ drifting'
>>> found = monitoring_view(reg, "churn")
>>> found["windows"][0]["share_drifted"], found["latest"]["drifted"]
(0.5, ['age'])
>>> reg.store.close()
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from driftloop.errors import NotFoundError
from driftloop.evaluate.metrics import drop_bound, primary_metric, watched_metric
from driftloop.registry import Registry
from driftloop.registry.evidence import data_checks, evaluations
from driftloop.registry.runtime_choice import applied_runtime, latest_optimization
from driftloop.store import VersionRecord
from driftloop.store.audit_anchors import newest_anchor
from driftloop.store.monitoring import AlertRecord, LoopRunRecord, WindowRecord
from driftloop.store.rollouts import RolloutRecord
from driftloop.ui.health import health

KEY_METRICS = {
    "classification": ("accuracy", "roc_auc", "macro_f1", "ece"),
    "regression": ("rmse", "mae", "r2"),
}
"""The metrics shown for each version in the models table."""
MAX_WINDOWS = 5000
MAX_ROWS = 2000
MAX_ROLLOUTS = 200
_HISTORY = 1000  # audited stage changes read per model for the rollouts page
_AUDIT_OF_VERSION = 50
_FINDING_COLUMNS = 10


def plain(value: Any) -> Any:
    """``value`` as JSON values: dataclasses as dicts, times as ISO text, NaN and ±inf as None.

    >>> from datetime import datetime, timezone
    >>> plain({"at": datetime(2024, 1, 2, tzinfo=timezone.utc), "x": [float("nan"), 1.5]})
    {'at': '2024-01-02T00:00:00+00:00', 'x': [None, 1.5]}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if hasattr(value, "item"):  # a numpy scalar
        return plain(value.item())
    return str(value)


def models_view(registry: Registry) -> dict[str, Any]:
    """Every model: its aliases, versions (newest first) with key metrics, and health badge."""
    store, cfg = registry.store, registry.settings.monitor
    versions = store.list_versions()
    aliases = store.list_aliases()
    by_id = {v.id: v for v in versions}
    models = []
    for name in store.model_names():
        mine = [v for v in versions if v.model_name == name]
        held = [a for a in aliases if a.model_name == name]
        latest = (store.list_windows(name, limit=1) or [None])[0]
        reference = next((v.metrics for v in mine
                          if latest is not None and v.version == latest.version), {})
        metric = watched_metric(cfg.performance_metric, mine[-1].task,
                                setting="monitor.performance_metric")
        badge = health(None if latest is None else _badge_fields(latest), reference,
                       metric=metric, drop=cfg.performance_drop,
                       min_labelled=cfg.min_rows)
        kind = "regression" if mine[-1].task == "regression" else "classification"
        models.append({
            "name": name,
            "task": mine[-1].task,
            "key_metrics": list(KEY_METRICS[kind]),
            "primary_metric": primary_metric(mine[-1].task),
            "aliases": [{"alias": a.alias, "version": a.version, "since": a.updated_at}
                        for a in held],
            "latest_version": mine[-1].version,
            "health": badge.to_json(),
            "latest_window": None if latest is None else _window_summary(latest),
            "versions": [_version_row(v, held, by_id, KEY_METRICS[kind]) for v in reversed(mine)],
        })
    watched = cfg.performance_metric or "the task's metric (accuracy; rmse for regression)"
    return plain({"models": models, "monitor": {"metric": watched,
                                                "drop": cfg.performance_drop}})


def version_view(registry: Registry, name: str, version: int) -> dict[str, Any]:
    """One version: model card, lineage, evaluation (metrics, calibration, slices), training
    curve and the data-check findings of its training data."""
    found = registry.lineage(name, version)
    record = found.version
    evaluation = next(iter(evaluations(registry.store, registry.artifacts, record)), None)
    checks = data_checks(registry.store, registry.artifacts, record)
    run = found.run
    return plain({
        "version": _version_fields(record),
        "aliases": found.aliases,
        "model_aliases": [{"alias": a.alias, "version": a.version}
                          for a in registry.store.list_aliases(name)],
        "versions": [v.version for v in registry.store.list_versions(name)],
        "card": registry.card(name, version).to_json(),
        "run": None if run is None else {
            "id": run.id, "status": run.status, "world_size": run.world_size,
            "started_at": run.started_at, "duration_s": run.duration_s,
            "samples_per_s": run.samples_per_s, "git_commit": run.git_commit,
            "params": run.params, "error": run.error,
        },
        "epochs": found.epochs,
        "datasets": {role: {"fingerprint": d.fingerprint, "source": d.source_uri,
                            "rows": d.rows} for role, d in found.datasets.items()},
        "ancestors": [v.version for v in found.ancestors],
        "children": [v.version for v in found.children],
        "moves": found.moves,
        "audit": found.audit[-_AUDIT_OF_VERSION:],
        "evaluation": None if evaluation is None else {
            "report": evaluation.report.artifact_sha256,
            "created_at": evaluation.report.created_at,
            "dataset": evaluation.dataset,
            "metrics": evaluation.body.get("metrics") or {},
            "calibration": evaluation.body.get("calibration"),
            "slices": evaluation.slices,
            "diagram": bool(evaluation.body.get("diagram_sha256")),
            "warnings": evaluation.body.get("warnings") or [],
        },
        "runtime": _runtime(registry, record),
        "data_checks": [{
            "report": c.report.artifact_sha256, "label": c.label(), "passed": c.passed,
            "counts": c.body.get("counts") or c.report.summary,
            "findings": [_finding(f) for f in c.body.get("findings") or []],
        } for c in checks],
    })


def reliability_png(registry: Registry, name: str, version: int) -> bytes:
    """The reliability diagram (PNG) of a version's newest evaluation."""
    record = registry.get(name, version)
    for evaluation in evaluations(registry.store, registry.artifacts, record):
        sha = evaluation.body.get("diagram_sha256")
        if sha:
            return registry.artifacts.get_bytes(sha)
    raise NotFoundError(f"{name} v{version} has no reliability diagram (not evaluated, or a "
                        "regression model). Evaluate it with `driftloop evaluate`.")


def monitoring_view(registry: Registry, name: str, *, limit: int = 1000) -> dict[str, Any]:
    """The newest ``limit`` windows of ``name`` (drift share, estimated and realised metric,
    the test value and the degraded bound of their version), its alerts, and the latest
    window in full."""
    store, cfg = registry.store, registry.settings.monitor
    versions = store.list_versions(name)
    if not versions:
        store.get_version(name)  # names the missing model and the models there are
    metric = watched_metric(cfg.performance_metric, versions[-1].task,
                            setting="monitor.performance_metric")
    drop = cfg.performance_drop
    tests = {v.version: v.metrics.get(metric) for v in versions}
    rows = []
    for w in store.window_timeline(name, max(1, min(limit, MAX_WINDOWS))):
        test = tests.get(w.version)
        rows.append({
            "id": w.id, "version": w.version, "start_at": w.start_at, "end_at": w.end_at,
            "rows": w.rows, "status": w.status, "drift_detected": w.drift_detected,
            "prediction_drift": w.prediction_drift, "share_drifted": w.share_drifted,
            "estimated": _interval((w.estimated or {}).get(metric)),
            "realised": None if w.realised is None else {
                **(_interval(w.realised.get(metric)) or {}),
                "labelled": w.realised.get("labelled")},
            "test": test,
            "bound": None if not _number(test) else drop_bound(metric, float(test), drop),
        })
    latest = (store.list_windows(name, limit=1) or [None])[0]
    reference = next((v.metrics for v in versions if latest and v.version == latest.version), {})
    badge = health(None if latest is None else _badge_fields(latest), reference, metric=metric,
                   drop=drop, min_labelled=cfg.min_rows)
    return plain({
        "model": name, "metric": metric, "drop": drop,
        "share_threshold": registry.settings.drift.share_threshold,
        "health": badge.to_json(),
        "windows": rows,
        "alerts": [_alert(a) for a in reversed(store.list_alerts(name, limit=200))],
        "latest": None if latest is None else _window_full(latest),
    })


def window_view(registry: Registry, window_id: int) -> dict[str, Any]:
    """One window in full: every feature's test, the prediction drift and the histograms."""
    return plain(_window_full(registry.store.get_window(window_id)))


def loop_view(registry: Registry, name: str | None = None, *, limit: int = 200
              ) -> dict[str, Any]:
    """Loop iterations, newest first: trigger and its numbers, champion and challenger, the
    gates with their values and bounds, and the steps taken."""
    runs = registry.store.list_loop_runs(name, limit=max(1, min(limit, MAX_ROWS)))
    return plain({"model": name, "runs": [_loop_run(r) for r in reversed(runs)]})


def rollouts_view(registry: Registry, name: str | None = None, *, limit: int = 50
                  ) -> dict[str, Any]:
    """The newest ``limit`` rollouts (of ``name``), those under way first: stage, share,
    planned shares, policy, the live comparison of candidate against holder (every check's
    estimate with its confidence-sequence interval, the verdict and what it rests on), the
    decision, and the audited stage changes.

    Examples
    --------
    >>> import tempfile
    >>> from driftloop.config import RolloutSettings, Settings
    >>> from driftloop.evaluate.live import compare_live
    >>> from driftloop.registry import Registry
    >>> from driftloop.store import RolloutEvidence
    >>> home = tempfile.mkdtemp()
    >>> reg = Registry.open(Settings.load(overrides={"home": home}, environ={}, cwd=home))
    >>> for n in (1, 2):
    ...     _ = reg.store.add_version("churn", None, "binary", "table", str(n) * 64, "b" * 64,
    ...                               {}, 10)
    >>> policy = RolloutSettings(shares=[0.1, 0.5])
    >>> r = reg.store.start_rollout("churn", "production", candidate_version=2,
    ...     holder_version=1, policy=policy.model_dump(mode="json"), actor="ops")
    >>> n = 400  # both right on the same rows, 360 labelled: too few to decide yet
    >>> ev = RolloutEvidence(rows=n, stage=["shadow"] * n, answered_by=[1] * n,
    ...     holder_output=[1] * n, candidate_output=[1] * n, holder_confidence=[0.8] * n,
    ...     candidate_confidence=[0.85] * n, holder_ms=[2.0] * n, candidate_ms=[3.0] * n,
    ...     candidate_error=[None] * n, labels=[1] * 360 + [None] * 40,
    ...     label_order=list(range(360)))
    >>> _ = reg.store.move_rollout(r.id, expected_revision=1, stage="canary", share=0.1,
    ...     step=0, evidence=compare_live(ev, policy).to_json())
    >>> shown = rollouts_view(reg, "churn")["rollouts"][0]
    >>> shown["stage"], shown["share_percent"], shown["planned_shares"], shown["active"]
    ('canary', 10.0, [0.1, 0.5], True)
    >>> live = shown["comparison"]
    >>> live["verdict"], live["basis"], live["labelled"], live["rows"]
    ('continue', 'labels', 360, 400)
    >>> deciding = next(c for c in live["checks"] if c["deciding"])
    >>> deciding["name"], deciding["estimate"], deciding["low"] < 0 < deciding["high"]
    ('accuracy_difference', 0.0, True)
    >>> reg.store.close()
    """
    store = registry.store
    if name is not None and not store.list_versions(name):
        store.get_version(name)  # names the missing model and the models there are
    found = store.list_rollouts(name, limit=max(1, min(limit, MAX_ROLLOUTS)))
    found.sort(key=lambda r: (not r.active, -r.id))  # under way first, then newest first
    history: dict[int, list[dict[str, Any]]] = {}
    for model in sorted({r.model_name for r in found}):
        for e in registry.audit.entries(subject=f"model:{model}", action="rollout_stage",
                                        limit=_HISTORY):
            details = e.details
            if isinstance(details.get("rollout"), int):
                history.setdefault(details["rollout"], []).append({
                    "at": e.at, "seq": e.seq, "actor": e.actor, "from": details.get("from"),
                    "to": details.get("to"), "share": details.get("share"),
                    "decision": details.get("decision")})
    return plain({"model": name, "rollouts": [_rollout(r, history.get(r.id, []))
                                              for r in found]})


def audit_view(
    registry: Registry, *, limit: int = 200, action: str | None = None,
    subject: str | None = None,
) -> dict[str, Any]:
    """The newest ``limit`` audit entries (of ``action``, of ``subject``), newest first."""
    entries = registry.audit.entries(subject=subject or None, action=action or None,
                                     limit=max(1, min(limit, MAX_ROWS)))
    return plain({"total": registry.audit.anchor().entries,
                  "entries": [{**dataclasses.asdict(e), "hash": e.hash[:16],
                               "prev_hash": e.prev_hash[:16]} for e in reversed(entries)]})


def verify_view(registry: Registry) -> dict[str, Any]:
    """Recompute the audit chain (:meth:`~driftloop.store.audit.AuditLog.verify`) against the
    newest anchor kept in the artifact store, and say which one (or that there is none)."""
    anchor = newest_anchor(registry.artifacts)
    report = plain(registry.audit.verify(anchor))
    report["anchor"] = None if anchor is None else anchor.to_json()
    report["anchor_note"] = (
        "no anchor kept yet: a cut-off tail of the log cannot be detected; take one with "
        "`driftloop audit anchor`." if anchor is None else
        f"checked against the anchor of entry {anchor.seq} taken {anchor.taken_at}.")
    return report


def _runtime(registry: Registry, record: VersionRecord) -> dict[str, Any]:
    """What `models optimize` measured for the version (no latency samples) and what is
    applied."""
    found = latest_optimization(registry.audit, registry.artifacts, record)
    body = {} if found is None else found.body
    return {
        "applied": applied_runtime(registry.audit, record),
        "recommended": body.get("recommended"), "metric": body.get("metric"),
        "max_drop": body.get("max_drop"), "rows": body.get("rows"), "data": body.get("data"),
        "batch": body.get("batch"), "report": None if found is None else found.report_sha256,
        "measured_at": None if found is None else found.at,
        "runtimes": [{k: v for k, v in r.items() if k != "latency_b1_us"}
                     | {"p50_us": r["latency_b1_us"]["p50"], "p99_us": r["latency_b1_us"]["p99"]}
                     for r in body.get("runtimes", [])],
    }


def _version_fields(v: VersionRecord) -> dict[str, Any]:
    return {"id": v.id, "model_name": v.model_name, "version": v.version, "task": v.task,
            "input_kind": v.input_kind, "created_at": v.created_at, "metrics": v.metrics,
            "size_bytes": v.size_bytes, "run_id": v.run_id, "description": v.description,
            "weights_sha256": v.weights_sha256}


def _version_row(v: VersionRecord, held: Sequence[Any], by_id: Mapping[int, VersionRecord],
                 keys: Sequence[str]) -> dict[str, Any]:
    parent = by_id.get(v.parent_id) if v.parent_id is not None else None
    return {"version": v.version, "created_at": v.created_at,
            "metrics": {k: v.metrics.get(k) for k in keys},
            "aliases": [a.alias for a in held if a.version_id == v.id],
            "parent": None if parent is None else parent.version,
            "description": v.description}


def _badge_fields(w: WindowRecord) -> dict[str, Any]:
    return {"id": w.id, "drift_detected": w.drift_detected, "prediction_drift":
            w.prediction_drift, "share_drifted": w.share_drifted, "estimated": w.estimated,
            "realised": w.realised}


def _window_summary(w: WindowRecord) -> dict[str, Any]:
    features = w.report.get("features") or []
    return {
        "id": w.id, "version": w.version, "start_at": w.start_at, "end_at": w.end_at,
        "rows": w.rows, "status": w.status, "drift_detected": w.drift_detected,
        "prediction_drift": w.prediction_drift, "share_drifted": w.share_drifted,
        "features": len(features),
        "drifted": [f.get("name") for f in features if isinstance(f, Mapping)
                    and f.get("drifted")],
    }


def _window_full(w: WindowRecord) -> dict[str, Any]:
    report = w.report
    return {
        **_window_summary(w), "model_name": w.model_name,
        "correction": report.get("correction"), "alpha": report.get("alpha"),
        "feature_tests": report.get("features") or [],
        "prediction": report.get("prediction"),
        "histograms": report.get("histograms") or {},
        "estimated": w.estimated, "realised": w.realised,
    }


def _interval(found: Any) -> dict[str, Any] | None:
    if isinstance(found, Mapping) and _number(found.get("value")):
        return {"value": found.get("value"), "low": found.get("low"), "high": found.get("high")}
    if _number(found):
        return {"value": found, "low": None, "high": None}
    return None


def _alert(a: AlertRecord) -> dict[str, Any]:
    return {
        "id": a.id, "at": a.at, "kind": a.kind, "message": a.message,
        "window_id": a.window_id,
        # a webhook URL may carry a token in its path or query: show where it went, not it
        "deliveries": [{"to": _host(d.get("url")), "ok": d.get("ok"),
                        "attempts": d.get("attempts"),
                        "status": d.get("status", d.get("error"))} for d in a.deliveries],
    }


def _loop_run(r: LoopRunRecord) -> dict[str, Any]:
    details = dict(r.details)
    return {
        "id": r.id, "model_name": r.model_name, "started_at": r.started_at,
        "finished_at": r.finished_at, "outcome": r.outcome, "trigger": r.trigger,
        "champion_version": r.champion_version, "challenger_version": r.challenger_version,
        "promoted": r.promoted, "steps": details.pop("steps", []),
        "gates": details.pop("gates", []),
        "accuracy_champion": details.pop("accuracy_champion", None),
        "accuracy_challenger": details.pop("accuracy_challenger", None),
        "details": details,
    }


_CHECKS = (  # (evidence key, what it is, the evidence basis that rests on it, signed)
    ("accuracy_difference", "accuracy difference, candidate − holder (labelled rows)",
     "labels", True),
    ("estimate_difference", "estimated accuracy difference, candidate − holder (calibrated "
     "confidence, no labels)", "estimate", True),
    ("agreement", "agreement (share of rows answered alike)", "agreement", False),
    ("holder_estimate", "holder's estimated accuracy (no labels)", None, False),
    ("candidate_estimate", "candidate's estimated accuracy (no labels)", None, False),
    ("error_rate", "candidate error rate (raised or timed out)", "errors", False),
    ("slow_share", "share of candidate rows slower than max_p99_ms", "latency", False),
)


_POLICY_SHOWN = ("margin", "confidence", "min_labels", "use_estimate", "shadow_rows", "shadow_s",
                 "step_rows", "step_s", "max_error_rate", "max_p99_ms", "max_duration_s")


def _rollout(r: RolloutRecord, history: list[dict[str, Any]]) -> dict[str, Any]:
    policy = r.policy
    shares = [s for s in policy.get("shares") or [] if _number(s)]
    return {
        "id": r.id, "model": r.model_name, "alias": r.alias,
        "candidate_version": r.candidate_version, "holder_version": r.holder_version,
        "stage": r.stage, "active": r.active, "share": r.share,
        "share_percent": round(100.0 * r.share, 1), "step": r.step,
        "planned_shares": shares,
        "policy": {"name": policy.get("policy"),
                   **{key: policy.get(key) for key in _POLICY_SHOWN}},
        "actor": r.actor, "started_at": r.started_at, "stage_started_at": r.stage_started_at,
        "ended_at": r.ended_at, "decision": r.decision,
        "comparison": _comparison(r.evidence, r.stage_rows_from),
        "history": history,
    }


def _comparison(ev: Mapping[str, Any], stage_rows_from: int) -> dict[str, Any] | None:
    """The live comparison stored by the serving replicas (see
    :meth:`driftloop.evaluate.live.LiveComparison.to_json`); None before the first judgement."""
    if not ev or not isinstance(ev, Mapping) or "verdict" not in ev:
        return None
    basis = ev.get("basis")
    checks = []
    for key, label, rests_on, signed in _CHECKS:
        found = ev.get(key)
        if not isinstance(found, Mapping):
            continue
        checks.append({"name": key, "label": label, "signed": signed,
                       "estimate": found.get("mean"), "low": found.get("low"),
                       "high": found.get("high"), "rows": found.get("rows"),
                       "deciding": rests_on is not None and rests_on == basis})
    rows = ev.get("rows")
    return {
        "verdict": ev.get("verdict"), "basis": basis, "reason": ev.get("reason"),
        "rows": rows, "labelled": ev.get("labelled"),
        "stage_rows": max(0, rows - stage_rows_from) if _number(rows) else None,
        "checks": checks,
        "candidate_accuracy_bound": ev.get("candidate_accuracy_bound"),
        "holder_accuracy": ev.get("holder_accuracy"),
        "candidate_accuracy": ev.get("candidate_accuracy"),
        "prediction_shift": ev.get("prediction_shift"),
        "latency_ms": ev.get("latency_ms") or {},
    }


def _finding(f: Mapping[str, Any]) -> dict[str, Any]:
    # rows and details are left out: they may quote data, and the page needs the message
    columns = list(f.get("columns") or [])
    return {"check": f.get("check"), "severity": f.get("severity"),
            "message": f.get("message"), "advice": f.get("advice"),
            "count": f.get("count"), "columns": columns[:_FINDING_COLUMNS],
            "more_columns": max(0, len(columns) - _FINDING_COLUMNS)}


def _host(url: Any) -> str | None:
    if not isinstance(url, str):
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" if parts.hostname else None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


__all__ = [
    "KEY_METRICS",
    "MAX_ROLLOUTS",
    "audit_view",
    "loop_view",
    "models_view",
    "monitoring_view",
    "plain",
    "reliability_png",
    "rollouts_view",
    "verify_view",
    "version_view",
    "window_view",
]
