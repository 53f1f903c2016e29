"""The loop runner: monitor → trigger → retrain → compare → gate → promote, explained and audited.

:func:`run_once` is one iteration; :func:`watch` repeats it until SIGINT/SIGTERM (between steps,
never in the middle of one), logging a crash of one iteration and going on with the next.
Every step is printed through ``say`` and audited (actions ``loop_trigger``, ``loop_hold``,
``loop_retrain``, ``loop_decision``), and each iteration is stored in ``loop_runs``.

The challenger is trained with the champion's recipe (model, epochs, batch size, learning
rate, ...) on the loop's training snapshot, data-parallel, as a version whose parent is the
champion. Champion and challenger are then evaluated on the same holdout of the newest
labelled rows, and :meth:`~driftloop.registry.Registry.promote` runs the gates on that
evidence: every gate must pass (the holder gate compares the two on the holdout), otherwise
the champion keeps serving.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from driftloop.config import Settings, TrainSettings
from driftloop.errors import DriftloopError, UsageError
from driftloop.evaluate.metrics import primary_metric, watched_metric
from driftloop.loop.dataset import assemble, count_new_labels
from driftloop.loop.policy import Trigger, find_trigger, hold_reason
from driftloop.loop.screening import screen_window
from driftloop.monitor.alerts import raise_alert
from driftloop.monitor.windows import MonitorResult, monitor
from driftloop.registry import Registry
from driftloop.registry.evidence import evaluations
from driftloop.registry.gates import GateRefused
from driftloop.store.clock import utcnow
from driftloop.store.monitoring import LoopRunRecord

ACTOR = "driftloop loop"
Say = Callable[[str, str], None]


@dataclass
class LoopOutcome:
    """What one iteration found and did."""

    model: str
    outcome: str
    trigger: Trigger | None = None
    champion_version: int | None = None
    challenger_version: int | None = None
    promoted: bool = False
    steps: list[dict[str, Any]] = field(default_factory=list)
    gates: list[dict[str, Any]] = field(default_factory=list)
    comparison: dict[str, Any] = field(default_factory=dict)
    monitor: MonitorResult | None = None
    loop_run_id: int | None = None
    rollout_id: int | None = None  # loop.rollout.enabled: the rollout the challenger started

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` output of ``driftloop loop run-once``."""
        return {
            "model": self.model, "outcome": self.outcome, "loop_run_id": self.loop_run_id,
            "trigger": None if self.trigger is None else self.trigger.to_json(),
            "champion_version": self.champion_version,
            "challenger_version": self.challenger_version, "promoted": self.promoted,
            "rollout_id": self.rollout_id, "comparison": self.comparison, "gates": self.gates,
            "steps": self.steps,
            "new_windows": 0 if self.monitor is None else len(self.monitor.windows),
            "alerts": [] if self.monitor is None else [
                {"kind": a.kind, "message": a.message} for a in self.monitor.alerts],
        }


def run_once(
    model: str,
    *,
    settings: Settings | None = None,
    registry: Registry | None = None,
    say: Say | None = None,
    now: datetime | None = None,
    progress: bool = False,
) -> LoopOutcome:
    """One loop iteration for ``model``; see the module docstring.

    ``registry``: the one to work in (kept open); None: open the one ``settings`` names for
    this iteration and close it afterwards.
    """
    settings = settings or Settings.load()
    if registry is None:
        with Registry.open(settings) as opened:
            return run_once(model, settings=settings, registry=opened, say=say, now=now,
                            progress=progress)
    # one iteration per model at a time, across processes and hosts: two would retrain twice
    with registry.store.model_lock(model, wait_s=settings.monitor.lock_wait_s):
        return _run_locked(model, settings, registry, say, now, progress)


def _run_locked(
    model: str, settings: Settings, registry: Registry, say: Say | None,
    now: datetime | None, progress: bool,
) -> LoopOutcome:
    loop = settings.loop
    champion = registry.holder(model, loop.alias)
    if champion is None:
        registry.get(model)  # an unknown model is named as such
        raise UsageError(f"{model} has no '{loop.alias}' alias to defend: promote a version "
                         f"first (`driftloop models promote {model} VERSION --to {loop.alias}`).")
    # a metric the champion's task never reports would never trigger: refused up front
    watched_metric(loop.metric, champion.task, setting="loop.metric")
    watched_metric(settings.monitor.performance_metric, champion.task,
                   setting="monitor.performance_metric")
    record = registry.store.start_loop_run(model, champion_version=champion.version)
    result = LoopOutcome(model=model, outcome="running", champion_version=champion.version,
                         loop_run_id=record.id)
    note = _narrator(result, say)
    try:
        _iterate(registry, settings, champion, result, note, now or utcnow(), progress)
    except BaseException as exc:
        note("error", f"iteration failed: {exc}")
        result.outcome = "failed"
        _finish(registry, record, result, error=str(exc))
        raise
    _finish(registry, record, result)
    return result


def _iterate(
    registry: Registry, settings: Settings, champion: Any, result: LoopOutcome,
    note: Say, now: datetime, progress: bool,
) -> None:
    model, loop = result.model, settings.loop
    result.monitor = monitor(model, settings=settings, registry=registry, now=now)
    note("monitor", f"{len(result.monitor.windows)} new window(s), "
         f"{len(result.monitor.alerts)} alert(s), {result.monitor.pending_rows} row(s) pending")
    retrains = _retrain_times(registry, model)
    since = max(retrains) if retrains else champion.created_at
    # the champion's windows only: they are what its test metrics are compared with
    windows = [w for w in registry.store.list_windows(model, created_after=since)
               if w.version == champion.version]
    trigger = find_trigger(
        windows, reference_metrics=dict(champion.metrics), task=champion.task,
        new_labels=count_new_labels(registry.store, model, since), since=since, now=now,
        loop=loop, monitor=settings.monitor)
    if trigger is None:
        result.outcome = "no_trigger"
        stamp = f"{since:%Y-%m-%d %H:%M:%S}"
        note("trigger", f"no trigger fired ({len(windows)} window(s) of v{champion.version} "
             f"since {stamp} UTC)")
        return
    result.trigger = trigger
    note("trigger", f"trigger '{trigger.kind}': {trigger.message}")
    _audit(registry, "loop_trigger", model, trigger.to_json())
    held = hold_reason(loop, retrains, now)
    if held is not None:
        result.outcome = held
        why = (f"cooldown: the last retrain was {(now - max(retrains)).total_seconds():.0f} s "
               f"ago (< loop.cooldown_s = {loop.cooldown_s:.0f})" if held == "cooldown" else
               f"daily limit: {loop.max_per_day} retrain(s) in the last 24 h")
        note("hold", f"not retraining — {why}")
        _audit(registry, "loop_hold", model, {"reason": held, "detail": why})
        return
    if loop.screen_feedback and _feedback_held(registry, settings, champion, result, note):
        return
    _retrain_and_decide(registry, settings, champion, result, note, progress)


def _feedback_held(registry: Registry, settings: Settings, champion: Any, result: LoopOutcome,
                   note: Say) -> bool:
    """Screen the window's labels by sender (:mod:`driftloop.loop.screening`); when one is
    suspect, hold the retrain with an alert to the webhooks and an audit entry naming it."""
    screen = screen_window(registry, result.model, champion, settings.loop)
    if screen is None:
        return False
    result.comparison["feedback_screen"] = screen.to_json()
    note("screen", screen.message())
    if not screen.held:
        return False
    result.outcome = "suspect_feedback"
    cfg = settings.monitor
    raise_alert(registry.store, model_name=result.model, kind="suspect_feedback",
                message=screen.message(), details=screen.to_json(), webhooks=cfg.webhooks,
                retries=cfg.webhook_retries, backoff_s=cfg.webhook_backoff_s,
                timeout_s=cfg.webhook_timeout_s, wait_s=cfg.webhook_wait_s)
    _audit(registry, "loop_hold", result.model, {
        "reason": "suspect_feedback", "sources": screen.flagged, "detail": screen.message(),
        "senders": [s.__dict__ for s in screen.senders if s.flagged]})
    return True


def _retrain_and_decide(
    registry: Registry, settings: Settings, champion: Any, result: LoopOutcome, note: Say,
    progress: bool,
) -> None:
    from driftloop.train.launcher import train

    model, loop = result.model, settings.loop
    params = registry.store.get_run(champion.run_id).params if champion.run_id else {}
    target = params.get("target")
    if not target:
        raise UsageError(f"{model} v{champion.version} has no training run with a target "
                         "column to retrain from.")
    since = None if result.trigger is None else result.trigger.numbers.get("since_log_id")
    bundle = registry.bundle(champion)
    data = assemble(registry.store, model, target=target, loop=loop,
                    artifacts=registry.artifacts, tag=f"loop{result.loop_run_id}",
                    source=params.get("source"), since_log_id=since, bundle=bundle)
    window = (f"labelled rows since the change (log id {since})" if data.after_change
              else f"{loop.data_window} window")
    note("data", f"training set: {data.train_rows} rows ({window}; {data.source_rows} from the "
         f"original source), holdout: {data.holdout_rows} newest labelled rows → "
         f"{data.train_name.rsplit('/', 1)[-1]}")
    recipe = {k: params[k] for k in TrainSettings.model_fields if k in params}
    train_settings = settings.updated({"train": recipe})
    note("retrain", f"retraining with {recipe.get('workers', settings.train.workers)} workers, "
         f"the champion's recipe (model {params.get('model', 'auto')})")
    trained = train(
        data.train_uri, target, model=params.get("model", "auto"), name=model,
        task=params.get("task"), settings=train_settings, progress=progress,
        parent=champion.id,
        # a version trained with feature views retrains from its joined table plus logged rows
        # (which hold the looked-up values): the challenger keeps looking them up when served
        feature_uses=bundle.feature_views,
    )
    result.challenger_version = trained.version
    _audit(registry, "loop_retrain", model, {
        "challenger_version": trained.version, "champion_version": champion.version,
        "run_id": trained.run_id, "train_rows": data.train_rows,
        "trigger": None if result.trigger is None else result.trigger.kind})
    trigger = result.trigger.kind if result.trigger else "manual"
    reason = (f"loop retrain ({trigger}), compared on the newest {data.holdout_rows} labelled "
              "rows")
    if loop.rollout.enabled:  # gate on the holdout now; the rollout decides on live traffic
        report = registry.gate(model, trained.version, to=loop.alias, data=data.holdout_uri)
        refused = None if report.passed else GateRefused(report)
    else:
        try:
            promotion = registry.promote(model, trained.version, to=loop.alias, actor=ACTOR,
                                         reason=reason, data=data.holdout_uri)
            report, refused = promotion.gates, None
        except GateRefused as exc:
            report, refused = exc.report, exc
    # promote evaluated both versions on the holdout and stored the reports: read them back
    result.comparison = holdout_comparison(registry, model, champion.version, trained.version,
                                           report.evaluation)
    cmp = result.comparison
    # the holder gate's paired difference (challenger - champion on the same rows) and interval
    paired = next((r.details for r in report.results if r.name == "holder" and r.details), None)
    cmp["paired"] = paired
    note("compare", f"on the holdout ({cmp['rows']} rows): champion v{champion.version} "
         f"{cmp['metric']} {cmp['champion']:.3f}, challenger v{trained.version} "
         f"{cmp['challenger']:.3f}" + ("" if paired is None else
         f"; paired difference {paired['difference']:+.3f}, {paired['confidence']:.0%} "
         f"interval [{paired['interval'][0]:+.3f}, {paired['interval'][1]:+.3f}]"))
    result.gates = [_gate(r) for r in report.results]
    if refused is not None:
        result.outcome = "kept"
        failed = ", ".join(r.name for r in report.failed)
        note("decision", f"kept champion v{champion.version}: gate(s) failed: {failed}")
        _audit(registry, "loop_decision", model, {"decision": "kept", "failed_gates": failed,
                                                  **cmp})
        return
    if loop.rollout.enabled:
        _roll_out(registry, result, loop, trained.version, reason, note)
        _audit(registry, "loop_decision", model, {"decision": "rolling_out",
                                                  "rollout": result.rollout_id, **cmp})
        return
    result.promoted = True
    result.outcome = "promoted"
    note("decision", f"promoted v{trained.version} to {loop.alias}; every gate passed")
    _audit(registry, "loop_decision", model, {"decision": "promoted", **cmp})


# triggers after which the holder's own confidence is known to be off: its label-free
# estimate (and the agreement bound built on it) would judge the challenger against a
# holder that only believes it is right, so such a rollout waits for labels
_CALIBRATION_IN_DOUBT = ("metric", "drift")


def _roll_out(registry: Registry, result: LoopOutcome, loop: Any, version: int, reason: str,
              note: Say) -> None:
    """Start the challenger's rollout (shadow, canary) instead of moving the alias now."""
    from driftloop.registry.rollouts import start_rollout

    policy = loop.rollout
    kind = None if result.trigger is None else result.trigger.kind
    if kind in _CALIBRATION_IN_DOUBT and policy.use_estimate:
        policy = policy.model_copy(update={"use_estimate": False})
    record = start_rollout(registry, result.model, version, to=loop.alias, policy=policy,
                           actor=ACTOR, reason=reason)
    result.rollout_id = record.id
    result.outcome = "rolling_out"
    shares = ", ".join(f"{s:.0%}" for s in policy.shares) or "none"
    basis = "on labels, and on the label-free estimate until they arrive"
    if not policy.use_estimate:
        basis = "on labels only" + (f" (the holder's own estimate is in doubt after a {kind} "
                                    "trigger)" if kind in _CALIBRATION_IN_DOUBT else "")
    note("decision", f"every gate passed on the holdout; v{version} is rolling out (rollout "
         f"{record.id}: {record.stage} first, canary shares {shares}); the servers promote it "
         f"or roll it back on live traffic, deciding {basis}")


def holdout_comparison(
    registry: Registry, model: str, champion: int, challenger: int,
    evaluation: dict[str, Any] | None,
) -> dict[str, Any]:
    """Accuracy (or RMSE) of both versions, with intervals, from the evaluation reports the
    promotion stored on the holdout (``evaluation`` names its data by fingerprint)."""
    fingerprint = (evaluation or {}).get("fingerprint")
    out: dict[str, Any] = {"rows": (evaluation or {}).get("rows")}
    for role, version in (("champion", champion), ("challenger", challenger)):
        record = registry.get(model, version)
        metric = primary_metric(record.task)
        found = [e for e in evaluations(registry.store, registry.artifacts, record)
                 if e.dataset_fingerprint == fingerprint]
        if not found:
            raise DriftloopError(f"{model} v{version} has no evaluation on the loop's holdout "
                                 f"(fingerprint {str(fingerprint)[:12]}).")
        interval = found[0].body["metrics"][metric]
        out["metric"] = metric
        out[role] = interval["value"]
        out[f"{role}_interval"] = [interval["low"], interval["high"]]
    return out

def watch(
    model: str,
    *,
    interval_s: float,
    settings: Settings | None = None,
    say: Say | None = None,
    max_iterations: int | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run :func:`run_once` every ``interval_s`` seconds until stopped; returns iterations run.

    SIGINT and SIGTERM set the stop flag, which is read between steps, so an iteration in
    progress finishes cleanly. A failed iteration is reported and the next one runs.
    """
    stop = stop or threading.Event()
    settings = settings or Settings.load()
    say = say or (lambda step, message: None)
    restore = _install_stop_handlers(stop)
    done = 0
    registry = Registry.open(settings)  # once: engine, migration check and pool for every iteration
    try:
        while not stop.is_set() and (max_iterations is None or done < max_iterations):
            started = time.monotonic()
            try:
                run_once(model, settings=settings, registry=registry, say=say)
            except DriftloopError as exc:
                say("error", f"iteration {done + 1} failed: {exc}")
            except Exception as exc:  # noqa: BLE001 - one bad iteration must not end the watch
                say("error", f"iteration {done + 1} crashed: {type(exc).__name__}: {exc}")
            done += 1
            stop.wait(max(0.0, interval_s - (time.monotonic() - started)))
    finally:
        registry.close()
        restore()
    return done


def _install_stop_handlers(stop: threading.Event) -> Callable[[], None]:
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return restore


def _retrain_times(registry: Registry, model: str) -> list[datetime]:
    return [r.started_at for r in registry.store.list_loop_runs(model)
            if r.challenger_version is not None]


def _narrator(result: LoopOutcome, say: Say | None) -> Say:
    def note(step: str, message: str) -> None:
        result.steps.append({"step": step, "message": message})
        if say is not None:
            say(step, message)
    return note


def _audit(registry: Registry, action: str, model: str, details: dict[str, Any]) -> None:
    registry.audit.append(ACTOR, action, f"model:{model}", details)


def _gate(result: Any) -> dict[str, Any]:
    return {"name": result.name, "passed": result.passed, "value": result.measured,
            "bound": result.bound, "message": result.detail}


def _finish(
    registry: Registry, record: LoopRunRecord, result: LoopOutcome, error: str | None = None
) -> None:
    details: dict[str, Any] = {"steps": result.steps, "gates": result.gates,
                               **{f"accuracy_{k}": v for k, v in result.comparison.items()
                                  if k in ("champion", "challenger")},
                               "comparison": result.comparison}
    if error is not None:
        details["error"] = error
    registry.store.finish_loop_run(
        record.id, outcome=result.outcome, details=details,
        trigger=None if result.trigger is None else result.trigger.to_json(),
        challenger_version=result.challenger_version, promoted=result.promoted)


__all__ = ["LoopOutcome", "holdout_comparison", "run_once", "watch"]
