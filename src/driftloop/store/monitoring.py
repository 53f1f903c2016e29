"""Monitor windows, alerts and loop runs: what the monitor and the closed loop found and did.

:class:`MonitoringQueries` is the :class:`~driftloop.store.Store` mixin behind them, like
:mod:`driftloop.store.serving`: each method is one transaction and hands out frozen records,
never ORM objects.

Examples
--------
>>> from driftloop.store import Store, utcnow
>>> store = Store.open("sqlite://")
>>> w = store.add_window(model_name="m", version=1, first_log_id=1, last_log_id=100,
...                      start_at=utcnow(), end_at=utcnow(), rows=100, status="ok",
...                      drift_detected=True, share_drifted=0.5, prediction_drift=False,
...                      report={"features": []}, estimated={"accuracy": {"value": 0.9}})
>>> [(x.id, x.rows, x.drift_detected) for x in store.list_windows("m")]
[(1, 100, True)]
>>> store.set_realised(w.id, {"accuracy": {"value": 0.8}, "labelled": 40})["labelled"]
40
>>> a = store.add_alert(model_name="m", window_id=w.id, kind="dataset_drift",
...                     message="5 of 10 features drifted", details={"share": 0.5})
>>> [x.kind for x in store.list_alerts("m")]
['dataset_drift']
>>> run = store.start_loop_run("m", champion_version=1)
>>> store.finish_loop_run(run.id, outcome="no_trigger", details={"steps": []}).outcome
'no_trigger'
>>> store.close()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from driftloop.errors import ConflictError, NotFoundError
from driftloop.store.clock import utcnow
from driftloop.store.core import StoreCore
from driftloop.store.tables import Alert, LoopRun, MonitorWindow, PredictionLogEntry

WINDOW_STATUSES = ("ok", "not_testable", "partial")
LOOP_OUTCOMES = (
    "running", "no_trigger", "cooldown", "daily_limit", "suspect_feedback", "promoted", "kept",
    "rolling_out",
    "failed",
)


@dataclass(frozen=True)
class WindowRecord:
    """One monitored window (see :class:`~driftloop.store.tables.MonitorWindow`)."""

    id: int
    model_name: str
    version: int
    first_log_id: int
    last_log_id: int
    start_at: datetime
    end_at: datetime
    rows: int
    status: str
    drift_detected: bool
    share_drifted: float | None
    prediction_drift: bool
    report: dict[str, Any]
    estimated: dict[str, Any]
    realised: dict[str, Any] | None
    created_at: datetime


@dataclass(frozen=True)
class WindowSummary:
    """A window without its drift report: what a timeline of many windows needs."""

    id: int
    version: int
    start_at: datetime
    end_at: datetime
    rows: int
    status: str
    drift_detected: bool
    prediction_drift: bool
    share_drifted: float | None
    estimated: dict[str, Any]
    realised: dict[str, Any] | None


@dataclass(frozen=True)
class AlertRecord:
    """An alert and the outcome of each webhook delivery."""

    id: int
    model_name: str
    window_id: int | None
    kind: str
    message: str
    details: dict[str, Any]
    deliveries: list[dict[str, Any]]
    at: datetime


@dataclass(frozen=True)
class LoopRunRecord:
    """One iteration of the closed loop."""

    id: int
    model_name: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    trigger: dict[str, Any] | None
    champion_version: int | None
    challenger_version: int | None
    promoted: bool
    details: dict[str, Any]


class MonitoringQueries(StoreCore):
    """Monitor windows, alerts and loop runs (a :class:`~driftloop.store.Store` mixin)."""

    def add_window(self, *, log_ids: Sequence[int] = (), **fields: Any) -> WindowRecord:
        """Store one window and claim its prediction-log rows, in one transaction.

        ``fields`` are the columns of :class:`WindowRecord` less ``id``; ``log_ids`` the rows
        the window holds. They must all be unclaimed: a row another window holds raises
        :class:`~driftloop.errors.ConflictError` and nothing is stored, so two monitors can
        never window a row twice.

        Examples
        --------
        >>> from driftloop.store import Store, utcnow
        >>> store = Store.open("sqlite://")
        >>> store.add_predictions([{"request_id": f"r{i}", "model_name": "m",
        ...     "version": 1, "at": utcnow(), "features": {}, "output": {}} for i in range(3)])
        3
        >>> def window(ids):
        ...     return store.add_window(log_ids=ids, model_name="m", version=1,
        ...         first_log_id=ids[0], last_log_id=ids[-1], start_at=utcnow(), end_at=utcnow(),
        ...         rows=len(ids), status="ok", drift_detected=False, share_drifted=0.0,
        ...         prediction_drift=False, report={}, estimated={})
        >>> w = window([1, 2])
        >>> [r.id for r in store.unwindowed_predictions("m")]
        [3]
        >>> window([2, 3])
        Traceback (most recent call last):
        ...
        driftloop.errors.ConflictError: 1 of the 2 prediction-log rows of this window of 'm' are already in another window (another monitor of 'm' ran at the same time); nothing was stored. Run the monitor again.
        >>> store.close()
        """  # noqa: E501
        if fields.get("status") not in WINDOW_STATUSES:
            raise ValueError(f"window status must be one of {WINDOW_STATUSES}, got "
                             f"{fields.get('status')!r}")
        model = fields.get("model_name")
        try:
            with self.session() as session:
                row = MonitorWindow(**fields)
                session.add(row)
                session.flush()
                claimed = _claim_rows(session, row.id, row.model_name, list(log_ids))
                if claimed != len(log_ids):  # raising rolls the window back with the claims
                    raise _window_taken(model, len(log_ids) - claimed, len(log_ids))
                return _window(row)
        except sa_exc.IntegrityError:  # the same window (model, version, first id) is stored
            raise _window_taken(model, len(log_ids), len(log_ids)) from None

    def list_windows(
        self, model_name: str | None = None, *, limit: int | None = None,
        since_id: int = 0, created_after: datetime | None = None,
    ) -> list[WindowRecord]:
        """Windows (of ``model_name``) with id > ``since_id`` (and made after ``created_after``),
        oldest first; the newest ``limit``."""
        query = select(MonitorWindow).where(MonitorWindow.id > since_id)
        if created_after is not None:
            query = query.where(MonitorWindow.created_at > created_after)
        if model_name is not None:
            query = query.where(MonitorWindow.model_name == model_name)
        query = query.order_by(MonitorWindow.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.session(write=False) as session:
            return [_window(r) for r in reversed(list(session.scalars(query)))]

    def window_timeline(self, model_name: str, limit: int) -> list[WindowSummary]:
        """The newest ``limit`` windows of ``model_name``, oldest first, without their reports.

        Cheaper than :meth:`list_windows` for many windows: it reads a few columns and never
        parses a window's full report (tens of KB of JSON each).

        Examples
        --------
        >>> from driftloop.store import Store, utcnow
        >>> store = Store.open("sqlite://")
        >>> for n in (10, 20, 30):
        ...     _ = store.add_window(model_name="m", version=1, first_log_id=n, last_log_id=n,
        ...                          start_at=utcnow(), end_at=utcnow(), rows=n, status="ok",
        ...                          drift_detected=False, share_drifted=0.0,
        ...                          prediction_drift=False, report={}, estimated={})
        >>> [(w.id, w.rows) for w in store.window_timeline("m", 2)]
        [(2, 20), (3, 30)]
        >>> store.close()
        """
        query = (select(MonitorWindow.id, MonitorWindow.version, MonitorWindow.start_at,
                        MonitorWindow.end_at, MonitorWindow.rows, MonitorWindow.status,
                        MonitorWindow.drift_detected, MonitorWindow.prediction_drift,
                        MonitorWindow.share_drifted, MonitorWindow.estimated,
                        MonitorWindow.realised)
                 .where(MonitorWindow.model_name == model_name)
                 .order_by(MonitorWindow.id.desc()).limit(limit))
        with self.session(write=False) as session:
            rows = session.execute(query).all()
        return [WindowSummary(*row) for row in reversed(rows)]

    def get_window(self, window_id: int) -> WindowRecord:
        """One window by id."""
        with self.session(write=False) as session:
            row = session.get(MonitorWindow, window_id)
            if row is None:
                raise NotFoundError(f"no monitor window {window_id}. List them with "
                                    "`driftloop monitor --model NAME --json`.")
            return _window(row)

    def set_realised(self, window_id: int, realised: Mapping[str, Any]) -> dict[str, Any]:
        """Replace a window's realised metrics (late labels arrived); returns what was stored."""
        with self.session() as session:
            row = session.get(MonitorWindow, window_id)
            if row is None:
                raise NotFoundError(f"no monitor window {window_id}.")
            row.realised = dict(realised)
            return dict(row.realised)

    def add_alert(
        self, *, model_name: str, kind: str, message: str,
        details: Mapping[str, Any], window_id: int | None = None,
        deliveries: Sequence[Mapping[str, Any]] = (),
    ) -> AlertRecord:
        """Store an alert (deliveries may be recorded later with :meth:`set_deliveries`)."""
        with self.session() as session:
            row = Alert(model_name=model_name, window_id=window_id, kind=kind, message=message,
                        details=dict(details), deliveries=[dict(d) for d in deliveries],
                        at=utcnow())
            session.add(row)
            session.flush()
            return _alert(row)

    def set_deliveries(
        self, alert_id: int, deliveries: Sequence[Mapping[str, Any]]
    ) -> AlertRecord:
        """Record the webhook deliveries of an alert."""
        with self.session() as session:
            row = session.get(Alert, alert_id)
            if row is None:
                raise NotFoundError(f"no alert {alert_id}.")
            row.deliveries = [dict(d) for d in deliveries]
            session.flush()
            return _alert(row)

    def list_alerts(
        self, model_name: str | None = None, *, limit: int = 1000
    ) -> list[AlertRecord]:
        """The newest ``limit`` alerts (of ``model_name``), oldest first."""
        query = select(Alert).order_by(Alert.id.desc()).limit(limit)
        if model_name is not None:
            query = query.where(Alert.model_name == model_name)
        with self.session(write=False) as session:
            return [_alert(r) for r in reversed(list(session.scalars(query)))]

    def alerts_of_kind(
        self, model_name: str, kind: str, *, limit: int = 100
    ) -> list[AlertRecord]:
        """The newest ``limit`` alerts of one ``kind`` raised for ``model_name``, newest first.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> store = Store.open("sqlite://")
        >>> for kind in ("concept_drift", "dataset_drift", "concept_drift"):
        ...     _ = store.add_alert(model_name="m", kind=kind, message="", details={})
        >>> [a.id for a in store.alerts_of_kind("m", "concept_drift")]
        [3, 1]
        >>> store.close()
        """
        query = (select(Alert).where(Alert.model_name == model_name, Alert.kind == kind)
                 .order_by(Alert.id.desc()).limit(limit))
        with self.session(write=False) as session:
            return [_alert(r) for r in session.scalars(query)]

    def start_loop_run(
        self, model_name: str, *, champion_version: int | None
    ) -> LoopRunRecord:
        """Record that a loop iteration started (outcome ``running``)."""
        with self.session() as session:
            row = LoopRun(model_name=model_name, started_at=utcnow(), outcome="running",
                          champion_version=champion_version, promoted=False, details={})
            session.add(row)
            session.flush()
            return _loop_run(row)

    def finish_loop_run(
        self, run_id: int, *, outcome: str, details: Mapping[str, Any],
        trigger: Mapping[str, Any] | None = None, challenger_version: int | None = None,
        promoted: bool = False,
    ) -> LoopRunRecord:
        """Record how a loop iteration ended."""
        if outcome not in LOOP_OUTCOMES:
            raise ValueError(f"loop outcome must be one of {LOOP_OUTCOMES}, got {outcome!r}")
        with self.session() as session:
            row = session.get(LoopRun, run_id)
            if row is None:
                raise NotFoundError(f"no loop run {run_id}.")
            row.finished_at = utcnow()
            row.outcome = outcome
            row.details = dict(details)
            row.trigger = None if trigger is None else dict(trigger)
            row.challenger_version = challenger_version
            row.promoted = promoted
            session.flush()
            return _loop_run(row)

    def list_loop_runs(
        self, model_name: str | None = None, *, limit: int = 1000
    ) -> list[LoopRunRecord]:
        """The newest ``limit`` loop iterations (of ``model_name``), oldest first."""
        query = select(LoopRun).order_by(LoopRun.id.desc()).limit(limit)
        if model_name is not None:
            query = query.where(LoopRun.model_name == model_name)
        with self.session(write=False) as session:
            return [_loop_run(r) for r in reversed(list(session.scalars(query)))]


def _window_taken(model: Any, taken: int, total: int) -> ConflictError:
    return ConflictError(
        f"{taken} of the {total} prediction-log rows of this window of '{model}' are already "
        f"in another window (another monitor of '{model}' ran at the same time); nothing was "
        "stored. Run the monitor again.")


_CLAIM_CHUNK = 5000  # ids per UPDATE: well under SQLite's and PostgreSQL's parameter limits


def _claim_rows(session: Session, window_id: int, model_name: str, log_ids: list[int]) -> int:
    """Mark the unclaimed rows among ``log_ids`` as held by ``window_id``; how many were."""
    claimed = 0
    for start in range(0, len(log_ids), _CLAIM_CHUNK):
        chunk = log_ids[start:start + _CLAIM_CHUNK]
        result = session.execute(
            update(PredictionLogEntry)
            .where(PredictionLogEntry.id.in_(chunk), PredictionLogEntry.model_name == model_name,
                   PredictionLogEntry.window_id.is_(None))
            .values(window_id=window_id)
            .execution_options(synchronize_session=False))
        claimed += result.rowcount
    return claimed


def _window(row: MonitorWindow) -> WindowRecord:
    return WindowRecord(
        row.id, row.model_name, row.version, row.first_log_id, row.last_log_id, row.start_at,
        row.end_at, row.rows, row.status, row.drift_detected, row.share_drifted,
        row.prediction_drift, dict(row.report), dict(row.estimated),
        None if row.realised is None else dict(row.realised), row.created_at,
    )


def _alert(row: Alert) -> AlertRecord:
    return AlertRecord(row.id, row.model_name, row.window_id, row.kind, row.message,
                       dict(row.details), [dict(d) for d in row.deliveries], row.at)


def _loop_run(row: LoopRun) -> LoopRunRecord:
    return LoopRunRecord(
        row.id, row.model_name, row.started_at, row.finished_at, row.outcome,
        None if row.trigger is None else dict(row.trigger), row.champion_version,
        row.challenger_version, row.promoted, dict(row.details),
    )


__all__ = [
    "LOOP_OUTCOMES",
    "WINDOW_STATUSES",
    "AlertRecord",
    "LoopRunRecord",
    "MonitoringQueries",
    "WindowRecord",
    "WindowSummary",
]
