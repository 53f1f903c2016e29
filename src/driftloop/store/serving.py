"""The prediction log and its feedback: what the server answered, and the ground truth later;
and what serving replicas poll (the alias holder and the reload generation, in one query).

:class:`ServingQueries` is the :class:`~driftloop.store.Store` mixin behind them; the server's
writes (many small batches from a background thread) read as one concept, each method is one
transaction and hands out frozen records, never ORM objects. Feedback joins the log by request
id and records who sent it; a request that got two *different* labels is a conflict: both are
kept (and counted) but the request is held out of what monitoring and the loop read as ground
truth, so nobody can silently overwrite a label.

Examples
--------
>>> from driftloop.store import Store, utcnow
>>> store = Store.open("sqlite://")
>>> store.add_predictions([{"request_id": "r1", "model_name": "m", "version": 1,
...                         "at": utcnow(), "features": {"x": 1.0}, "output": {"p": 0.3}}])
1
>>> [(r.request_id, r.features) for r in store.list_predictions("m")]
[('r1', {'x': 1.0})]
>>> store.add_feedback([("r1", "yes")])
1
>>> [(f.request_id, f.label) for f in store.list_feedback()]
[('r1', 'yes')]
>>> [(r.features, r.label) for r in store.labelled_rows("m")], store.count_labels("m")
([({'x': 1.0}, 'yes')], 1)
>>> store.close()
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from driftloop.store.canonical import canonical_json
from driftloop.store.clock import utcnow
from driftloop.store.core import StoreCore, _require_text
from driftloop.store.records import AuditRecord
from driftloop.store.tables import (
    FeedbackEntry,
    ModelAlias,
    ModelVersion,
    PredictionLogEntry,
    ReloadSignal,
)

ReloadHook = Callable[[Session, str, int], AuditRecord | None]
"""``hook(session, model_name, generation)``, called inside :meth:`ServingQueries.signal_reload`'s
transaction for each model (the audit entry of the reload)."""


@dataclass(frozen=True)
class PredictionRow:
    """One row of the prediction log."""

    id: int
    request_id: str
    model_name: str
    version: int
    at: datetime
    features: dict[str, Any]
    output: dict[str, Any]
    replica: str | None = None  # the serving process that answered (None: before 0009)
    subject: str | None = None  # the keyed hash of the subject/entity id (None: none sent)


@dataclass(frozen=True)
class ServingState:
    """What a serving replica polls for one model: the version its alias points at (None: no
    holder) and the model's reload generation (0: never signalled)."""

    version_id: int | None
    version: int | None
    generation: int


@dataclass(frozen=True)
class FeedbackRow:
    """Ground truth recorded for a request, and who sent it (an API key's prefix, "open")."""

    id: int
    request_id: str
    label: Any
    at: datetime
    source: str | None = None


@dataclass(frozen=True)
class LabelledRow:
    """A prediction-log row whose request got feedback without conflict: its features, the
    label, who sent it, and the row's subject hash (None when the request named none)."""

    log_id: int
    features: dict[str, Any]
    label: Any
    source: str | None = None
    subject: str | None = None
    version: int | None = None  # the model version that answered


class ServingQueries(StoreCore):
    """The prediction log and its feedback (a :class:`~driftloop.store.Store` mixin)."""

    # -- the prediction log ----------------------------------------------------------------

    def add_predictions(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Append prediction-log rows (keys as :class:`PredictionRow` less ``id``) in one write."""
        if rows:
            with self.session() as session:
                session.execute(PredictionLogEntry.__table__.insert(), [dict(r) for r in rows])
        return len(rows)

    def import_predictions(
        self, model_name: str, rows: Sequence[Mapping[str, Any]], *,
        audit: Callable[[Session, int], AuditRecord | None] | None = None,
    ) -> int:
        """Append the ``rows`` of ``model_name`` whose ``request_id`` the log does not hold
        yet, and run ``audit(session, added)`` in the same transaction; returns how many
        were added. Importing the same rows again adds nothing (edge logs synced twice).

        Callers importing one model from several processes hold
        :meth:`~driftloop.store.Store.model_lock`: two transactions could otherwise both
        find a request id absent.

        Examples
        --------
        >>> from driftloop.store import Store, utcnow
        >>> store = Store.open("sqlite://")
        >>> rows = [{"request_id": r, "model_name": "m", "version": 1, "at": utcnow(),
        ...          "features": {}, "output": {}, "replica": "edge"} for r in ("a", "b")]
        >>> store.import_predictions("m", rows), store.import_predictions("m", rows)
        (2, 0)
        >>> store.count_predictions()
        2
        >>> store.close()
        """
        wanted = sorted({str(r["request_id"]) for r in rows})

        def work(session: Session) -> int:
            held: set[str] = set()
            for start in range(0, len(wanted), 500):
                held.update(session.scalars(select(PredictionLogEntry.request_id).where(
                    PredictionLogEntry.model_name == model_name,
                    PredictionLogEntry.request_id.in_(wanted[start:start + 500]))))
            new, seen = [], set(held)
            for r in rows:
                if r["request_id"] not in seen:
                    seen.add(r["request_id"])
                    new.append({**r, "model_name": model_name})
            if new:
                session.execute(PredictionLogEntry.__table__.insert(), new)
            if audit is not None:
                audit(session, len(new))
            return len(new)

        return self.transact(work)

    def list_predictions(
        self, model_name: str | None = None, *, limit: int = 1000
    ) -> list[PredictionRow]:
        """The newest ``limit`` prediction-log rows (of ``model_name``), oldest first."""
        query = select(PredictionLogEntry).order_by(PredictionLogEntry.id.desc()).limit(limit)
        if model_name is not None:
            query = query.where(PredictionLogEntry.model_name == model_name)
        with self.session(write=False) as session:
            rows = list(session.scalars(query))
        return [_prediction(r) for r in reversed(rows)]

    def predictions_after(
        self, model_name: str, after_id: int = 0, *, limit: int | None = None
    ) -> list[PredictionRow]:
        """Prediction-log rows of ``model_name`` with id > ``after_id``, oldest first.

        Examples
        --------
        >>> from driftloop.store import Store, utcnow
        >>> store = Store.open("sqlite://")
        >>> _ = store.add_predictions([{"request_id": f"r{i}", "model_name": "m", "version": 1,
        ...     "at": utcnow(), "features": {}, "output": {}} for i in range(3)])
        >>> [r.request_id for r in store.predictions_after("m", 1)]
        ['r1', 'r2']
        >>> store.close()
        """
        query = (select(PredictionLogEntry)
                 .where(PredictionLogEntry.model_name == model_name,
                        PredictionLogEntry.id > after_id)
                 .order_by(PredictionLogEntry.id))
        if limit is not None:
            query = query.limit(limit)
        with self.session(write=False) as session:
            return [_prediction(r) for r in session.scalars(query)]

    def unwindowed_predictions(
        self, model_name: str, *, limit: int | None = None
    ) -> list[PredictionRow]:
        """The rows of ``model_name`` that no monitor window claimed yet, oldest id first.

        Unlike "ids above the last window's", this never misses a row that committed after
        rows with higher ids (two servers writing at once): it stays unclaimed until a window
        takes it.

        Examples
        --------
        >>> from driftloop.store import Store, utcnow
        >>> store = Store.open("sqlite://")
        >>> _ = store.add_predictions([{"request_id": f"r{i}", "model_name": "m", "version": 1,
        ...     "at": utcnow(), "features": {}, "output": {}} for i in range(3)])
        >>> [r.request_id for r in store.unwindowed_predictions("m")]
        ['r0', 'r1', 'r2']
        >>> store.close()
        """
        query = (select(PredictionLogEntry)
                 .where(PredictionLogEntry.model_name == model_name,
                        PredictionLogEntry.window_id.is_(None))
                 .order_by(PredictionLogEntry.id))
        if limit is not None:
            query = query.limit(limit)
        with self.session(write=False) as session:
            return [_prediction(r) for r in session.scalars(query)]

    def window_predictions(self, window_id: int) -> list[PredictionRow]:
        """The log rows a monitor window claimed, oldest first.

        Examples
        --------
        >>> from driftloop.store import Store, utcnow
        >>> store = Store.open("sqlite://")
        >>> _ = store.add_predictions([{"request_id": f"r{i}", "model_name": "m",
        ...     "version": 1, "at": utcnow(), "features": {}, "output": {}} for i in range(4)])
        >>> w = store.add_window(log_ids=[2, 4], model_name="m", version=1, first_log_id=2,
        ...     last_log_id=4, start_at=utcnow(), end_at=utcnow(), rows=2, status="ok",
        ...     drift_detected=False, share_drifted=0.0, prediction_drift=False, report={},
        ...     estimated={})
        >>> [r.request_id for r in store.window_predictions(w.id)]
        ['r1', 'r3']
        >>> store.close()
        """
        query = (select(PredictionLogEntry)
                 .where(PredictionLogEntry.window_id == window_id)
                 .order_by(PredictionLogEntry.id))
        with self.session(write=False) as session:
            return [_prediction(r) for r in session.scalars(query)]

    def recent_predictions(
        self, model_name: str, version: int, *, up_to_id: int, limit: int
    ) -> list[PredictionRow]:
        """The newest ``limit`` log rows of one version with id <= ``up_to_id``, oldest first.

        Examples
        --------
        >>> from driftloop.store import Store, utcnow
        >>> store = Store.open("sqlite://")
        >>> _ = store.add_predictions([{"request_id": f"r{i}", "model_name": "m",
        ...     "version": i % 2, "at": utcnow(), "features": {}, "output": {}} for i in range(8)])
        >>> [r.request_id for r in store.recent_predictions("m", 1, up_to_id=6, limit=2)]
        ['r3', 'r5']
        >>> store.close()
        """
        query = (select(PredictionLogEntry)
                 .where(PredictionLogEntry.model_name == model_name,
                        PredictionLogEntry.version == version, PredictionLogEntry.id <= up_to_id)
                 .order_by(PredictionLogEntry.id.desc()).limit(limit))
        with self.session(write=False) as session:
            rows = list(session.scalars(query))
        return [_prediction(r) for r in reversed(rows)]

    def version_predictions(
        self, model_name: str, version: int, *, since: datetime | None = None,
        until: datetime | None = None, limit: int | None = None,
    ) -> list[PredictionRow]:
        """The log rows of one version served in ``[since, until]`` (the newest ``limit``),
        oldest first.

        Examples
        --------
        >>> from datetime import timedelta
        >>> from driftloop.store import Store, utcnow
        >>> store = Store.open("sqlite://")
        >>> t = utcnow()
        >>> _ = store.add_predictions([{"request_id": f"r{i}", "model_name": "m",
        ...     "version": 1 + i % 2, "at": t + timedelta(seconds=i), "features": {},
        ...     "output": {}, "subject": "h"} for i in range(8)])
        >>> rows = store.version_predictions("m", 1, since=t + timedelta(seconds=2), limit=2)
        >>> [r.request_id for r in rows], rows[0].subject
        (['r4', 'r6'], 'h')
        >>> store.close()
        """
        query = (select(PredictionLogEntry)
                 .where(PredictionLogEntry.model_name == model_name,
                        PredictionLogEntry.version == version)
                 .order_by(PredictionLogEntry.id.desc()))
        if since is not None:
            query = query.where(PredictionLogEntry.at >= since)
        if until is not None:
            query = query.where(PredictionLogEntry.at <= until)
        if limit is not None:
            query = query.limit(limit)
        with self.session(write=False) as session:
            rows = list(session.scalars(query))
        return [_prediction(r) for r in reversed(rows)]

    def models_of_requests(self, request_ids: Sequence[str]) -> dict[str, tuple[str, int]]:
        """The ``(model_name, version)`` that answered each request id found in the log.

        Ids not in the log are left out; the newest row wins when an id was logged twice (a
        KServe V2 client may reuse its ``id``).

        Examples
        --------
        >>> from driftloop.store import Store, utcnow
        >>> store = Store.open("sqlite://")
        >>> _ = store.add_predictions([{"request_id": rid, "model_name": m, "version": v,
        ...     "at": utcnow(), "features": {}, "output": {}}
        ...     for rid, m, v in [("a", "m", 1), ("b", "n", 2), ("a", "m", 3)]])
        >>> store.models_of_requests(["a", "b", "c"])
        {'a': ('m', 3), 'b': ('n', 2)}
        >>> store.close()
        """
        out: dict[str, tuple[str, int]] = {}
        ids = list(dict.fromkeys(request_ids))
        with self.session(write=False) as session:
            for start in range(0, len(ids), 900):  # SQLite's bound-parameter limit
                rows = session.execute(
                    select(PredictionLogEntry.request_id, PredictionLogEntry.model_name,
                           PredictionLogEntry.version)
                    .where(PredictionLogEntry.request_id.in_(ids[start:start + 900]))
                    .order_by(PredictionLogEntry.id))
                for request_id, model_name, version in rows:
                    out[request_id] = (model_name, version)
        return out

    def count_predictions(self) -> int:
        """How many rows the prediction log holds."""
        with self.session(write=False) as session:
            return int(session.scalar(select(func.count()).select_from(PredictionLogEntry)) or 0)

    # -- what serving replicas poll ---------------------------------------------------------

    def serving_state(self, model_name: str, alias: str) -> ServingState:
        """The holder of ``alias`` and the reload generation of ``model_name``, in one query.

        A replica runs this every ``serve.poll_s``: one round trip of primary-key lookups.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> store = Store.open("sqlite://")
        >>> store.serving_state("m", "production")
        ServingState(version_id=None, version=None, generation=0)
        >>> v = store.add_version("m", None, "binary", "tabular", "a" * 64, "b" * 64, {}, 1)
        >>> _ = store.move_alias("m", "production", v.id, expected_version_id=None,
        ...                      action="promote", actor="ci")
        >>> store.signal_reload(["m"], actor="ops")
        {'m': 1}
        >>> store.serving_state("m", "production")
        ServingState(version_id=1, version=1, generation=1)
        >>> store.close()
        """
        held = (ModelAlias.model_name == model_name, ModelAlias.alias == alias)
        version_id = select(ModelAlias.version_id).where(*held).scalar_subquery()
        version = (select(ModelVersion.version)
                   .join(ModelAlias, ModelAlias.version_id == ModelVersion.id)
                   .where(*held).scalar_subquery())
        generation = (select(ReloadSignal.generation)
                      .where(ReloadSignal.model_name == model_name).scalar_subquery())
        with self.session(write=False) as session:
            row = session.execute(select(version_id, version, generation)).one()
        return ServingState(row[0], row[1], int(row[2] or 0))

    def signal_reload(self, model_names: Sequence[str], *, actor: str,
                      audit: ReloadHook | None = None) -> dict[str, int]:
        """Bump the reload generation of each model (every replica reloads when its poll sees
        it); returns the new generations. One transaction with each model's audit entry.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> store = Store.open("sqlite://")
        >>> store.signal_reload(["a", "b"], actor="ops"), store.signal_reload(["a"], actor="ops")
        ({'a': 1, 'b': 1}, {'a': 2})
        >>> store.close()
        """
        _require_text("actor", actor, max_len=128)
        for name in model_names:
            _require_text("model name", name, max_len=128)

        def work(session: Session) -> dict[str, int]:
            out: dict[str, int] = {}
            for name in dict.fromkeys(model_names):
                row = session.get(ReloadSignal, name, with_for_update=True)
                if row is None:
                    row = ReloadSignal(model_name=name, generation=0)
                    session.add(row)
                row.generation, row.actor, row.requested_at = row.generation + 1, actor, utcnow()
                session.flush()  # a second process inserting the same model collides here
                out[name] = int(row.generation)
                if audit is not None:
                    audit(session, name, out[name])
            return out

        return self.transact(work)

    # -- feedback --------------------------------------------------------------------------

    def add_feedback(self, items: Iterable[tuple[str, Any]], *, source: str | None = None
                     ) -> int:
        """Record ``(request_id, label)`` pairs of ground truth sent by ``source``; returns how
        many."""
        now = utcnow()
        rows = [{"request_id": rid, "label": label, "at": now, "source": source}
                for rid, label in items]
        if rows:
            with self.session() as session:
                session.execute(FeedbackEntry.__table__.insert(), rows)
        return len(rows)

    def list_feedback(self, *, limit: int = 1000) -> list[FeedbackRow]:
        """The newest ``limit`` feedback rows, oldest first."""
        with self.session(write=False) as session:
            rows = list(session.scalars(
                select(FeedbackEntry).order_by(FeedbackEntry.id.desc()).limit(limit)))
        return [FeedbackRow(r.id, r.request_id, r.label, r.at, r.source) for r in reversed(rows)]

    def feedback_of(self, request_ids: Sequence[str]) -> dict[str, list[tuple[Any, str | None]]]:
        """Every ``(label, source)`` recorded for each of ``request_ids`` that has any, oldest
        first."""
        out: dict[str, list[tuple[Any, str | None]]] = {}
        ids = list(dict.fromkeys(request_ids))
        with self.session(write=False) as session:
            for start in range(0, len(ids), 900):  # SQLite's bound-parameter limit
                rows = session.execute(
                    select(FeedbackEntry.request_id, FeedbackEntry.label, FeedbackEntry.source)
                    .where(FeedbackEntry.request_id.in_(ids[start:start + 900]))
                    .order_by(FeedbackEntry.id))
                for request_id, label, source in rows:
                    out.setdefault(request_id, []).append((label, source))
        return out

    def labels_for(self, request_ids: Sequence[str]) -> dict[str, Any]:
        """The label of each request id that has feedback without conflict (a request given
        two different labels is left out; the same label twice is one label).

        Examples
        --------
        >>> from driftloop.store import Store
        >>> store = Store.open("sqlite://")
        >>> _ = store.add_feedback([("a", 1), ("b", 0), ("a", 0), ("b", 0)])
        >>> store.labels_for(["a", "b", "c"]), store.conflicting(["a", "b", "c"])
        ({'b': 0}, ['a'])
        >>> store.close()
        """
        return {rid: labels[0][0] for rid, labels in self.feedback_of(request_ids).items()
                if not _in_conflict(labels)}

    def conflicting(self, request_ids: Sequence[str]) -> list[str]:
        """Those of ``request_ids`` that got two or more different labels."""
        return [rid for rid, labels in self.feedback_of(request_ids).items()
                if _in_conflict(labels)]

    def labelled_rows(self, model_name: str) -> list[LabelledRow]:
        """Every log row of ``model_name`` whose request got feedback without conflict, oldest
        first (the closed loop's training data).

        Examples
        --------
        >>> from driftloop.store import Store, utcnow
        >>> store = Store.open("sqlite://")
        >>> _ = store.add_predictions([{"request_id": f"r{i}", "model_name": "m", "version": 1,
        ...     "at": utcnow(), "features": {"x": i}, "output": {}} for i in range(4)])
        >>> _ = store.add_feedback([("r1", "no"), ("r3", "no")], source="k1")
        >>> _ = store.add_feedback([("r1", "yes"), ("r3", "no")], source="k2")
        >>> [(r.log_id, r.features["x"], r.label, r.source) for r in store.labelled_rows("m")]
        [(4, 3, 'no', 'k1')]
        >>> store.close()
        """
        query = (select(PredictionLogEntry.id, PredictionLogEntry.features,
                        PredictionLogEntry.subject, PredictionLogEntry.version,
                        FeedbackEntry.label, FeedbackEntry.source)
                 .join(FeedbackEntry, FeedbackEntry.request_id == PredictionLogEntry.request_id)
                 .where(PredictionLogEntry.model_name == model_name)
                 .order_by(PredictionLogEntry.id, FeedbackEntry.id))
        with self.session(write=False) as session:
            rows = session.execute(query).all()
        grouped: dict[int, list[Any]] = {}
        for row in rows:
            grouped.setdefault(row.id, []).append(row)
        out = []
        for log_id, labelled in grouped.items():
            if _in_conflict([(r.label, r.source) for r in labelled]):
                continue
            first = labelled[0]
            out.append(LabelledRow(log_id, first.features, first.label, first.source,
                                   first.subject, first.version))
        return out

    def count_labels(self, model_name: str, *, since: datetime | None = None) -> int:
        """Feedback labels received for ``model_name``'s predictions (that arrived after
        ``since``).

        Examples
        --------
        >>> from driftloop.store import Store, utcnow
        >>> store = Store.open("sqlite://")
        >>> _ = store.add_predictions([{"request_id": "r1", "model_name": "m", "version": 1,
        ...     "at": utcnow(), "features": {}, "output": {}}])
        >>> _ = store.add_feedback([("r1", 1), ("r1", 0), ("other", 1)])
        >>> store.count_labels("m"), store.count_labels("m", since=utcnow())
        (2, 0)
        >>> store.close()
        """
        query = (select(func.count()).select_from(FeedbackEntry)
                 .join(PredictionLogEntry,
                       PredictionLogEntry.request_id == FeedbackEntry.request_id)
                 .where(PredictionLogEntry.model_name == model_name))
        if since is not None:
            query = query.where(FeedbackEntry.at > since)
        with self.session(write=False) as session:
            return int(session.scalar(query) or 0)


def _in_conflict(labels: Sequence[tuple[Any, str | None]]) -> bool:
    """Two or more different labels (compared as canonical JSON: 1 and 1.0 differ only when
    the feedback path did not coerce them to the model's classes)."""
    return len({canonical_json(label) for label, _ in labels}) > 1


def _prediction(r: PredictionLogEntry) -> PredictionRow:
    return PredictionRow(r.id, r.request_id, r.model_name, r.version, r.at, r.features, r.output,
                         r.replica, r.subject)


__all__ = [
    "FeedbackRow",
    "LabelledRow",
    "PredictionRow",
    "ReloadHook",
    "ServingQueries",
    "ServingState",
]
