"""Rollouts in the store: the stage every serving replica follows, and the paired evidence.

A rollout row says which candidate is on its way to which alias, in which stage (``shadow``,
``canary`` at a share, then ``promoted``, ``rolled_back``, ``expired`` or ``aborted``) and
with which policy. Serving replicas poll it and follow it; the replica that first sees a
decision moves it with :meth:`RolloutQueries.move_rollout`, which compares ``revision`` so
that two replicas deciding at once move it once (the loser gets None and reads the new
state). Each move runs its audit hook in the same transaction.

Observations are the served rows of the rollout: both versions' answers to the same request
(by request id, which feedback joins later), latencies and candidate failures.
:meth:`RolloutQueries.rollout_evidence` hands them out as columns, with each row's label
where feedback without conflict arrived, and the order in which labels arrived (what a
sequential test on labelled rows must follow).

Examples
--------
>>> from driftloop.store import Store
>>> store = Store.open("sqlite://")
>>> r = store.start_rollout("m", "production", candidate_version=2, holder_version=1,
...                         policy={"shares": [0.1, 0.5]}, actor="ops")
>>> r.stage, r.share, r.revision, r.active
('shadow', 0.0, 1, True)
>>> store.add_rollout_observations([{"rollout_id": r.id, "request_id": "q1", "stage": "shadow",
...     "answered_by": 1, "holder_output": "yes", "candidate_output": "no",
...     "holder_confidence": 0.9, "candidate_confidence": 0.6, "holder_ms": 3.0,
...     "candidate_ms": 4.0, "candidate_error": None}])
1
>>> _ = store.add_feedback([("q1", "no")])
>>> ev = store.rollout_evidence(r.id)
>>> ev.rows, ev.labels, ev.label_order
(1, ['no'], [0])
>>> moved = store.move_rollout(r.id, expected_revision=1, stage="canary", share=0.1, step=0)
>>> moved.stage, moved.revision, moved.stage_rows_from
('canary', 2, 1)
>>> store.move_rollout(r.id, expected_revision=1, stage="aborted") is None  # stale revision
True
>>> store.close()
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from driftloop.errors import ConflictError, NotFoundError
from driftloop.store.canonical import canonical_json
from driftloop.store.clock import utcnow
from driftloop.store.core import StoreCore, _require_text
from driftloop.store.records import ROLLOUT_STAGES, AuditRecord, record_from
from driftloop.store.tables import FeedbackEntry, Rollout, RolloutObservation

RolloutHook = Callable[[Session, "RolloutRecord"], AuditRecord | None]
"""``hook(session, rollout)``: called inside a rollout's start or move transaction (its audit)."""
LIVE_STAGES = ("shadow", "canary")


@dataclass(frozen=True)
class RolloutRecord:
    """A rollout as the store holds it (see :class:`~driftloop.store.tables.Rollout`)."""

    id: int
    model_name: str
    alias: str
    candidate_version: int
    holder_version: int | None
    stage: str
    share: float
    step: int
    active: bool
    revision: int
    policy: dict[str, Any]
    evidence: dict[str, Any]
    decision: str | None
    actor: str
    started_at: datetime
    stage_started_at: datetime
    stage_rows_from: int
    ended_at: datetime | None


@dataclass(frozen=True)
class RolloutEvidence:
    """A rollout's observations as columns, oldest first (one entry per served row).

    ``labels[i]`` is row i's ground truth (None: no label yet, or two different ones);
    ``label_order`` lists the labelled rows' indices in the order their labels arrived."""

    rows: int = 0
    stage: list[str] = field(default_factory=list)
    answered_by: list[int] = field(default_factory=list)
    holder_output: list[Any] = field(default_factory=list)
    candidate_output: list[Any] = field(default_factory=list)
    holder_confidence: list[float | None] = field(default_factory=list)
    candidate_confidence: list[float | None] = field(default_factory=list)
    holder_ms: list[float | None] = field(default_factory=list)
    candidate_ms: list[float | None] = field(default_factory=list)
    candidate_error: list[str | None] = field(default_factory=list)
    labels: list[Any] = field(default_factory=list)
    label_order: list[int] = field(default_factory=list)


_COLUMNS = ("stage", "answered_by", "holder_output", "candidate_output", "holder_confidence",
            "candidate_confidence", "holder_ms", "candidate_ms", "candidate_error")


class RolloutQueries(StoreCore):
    """The store's rollout methods (a :class:`~driftloop.store.Store` mixin)."""

    def start_rollout(self, model_name: str, alias: str, *, candidate_version: int,
                      holder_version: int | None, policy: Mapping[str, Any], actor: str,
                      stage: str = "shadow", share: float = 0.0, step: int = -1,
                      audit: RolloutHook | None = None) -> RolloutRecord:
        """Start a rollout (one transaction with its audit entry); :class:`ConflictError` when
        the model already has an active rollout to ``alias``."""
        _require_text("model name", model_name, max_len=128)
        _require_text("actor", actor, max_len=128)
        if stage not in LIVE_STAGES:
            raise ValueError(f"a rollout starts in one of {LIVE_STAGES}, not {stage!r}")
        now = utcnow()

        def work(session: Session) -> RolloutRecord:
            current = session.scalars(select(Rollout).where(
                Rollout.model_name == model_name, Rollout.alias == alias,
                Rollout.active.is_(True))).first()
            if current is not None:
                raise ConflictError(
                    f"{model_name}@{alias} already has a rollout under way "
                    f"(v{current.candidate_version}, {current.stage}, rollout {current.id}); "
                    f"wait for its decision or stop it with `driftloop models rollout "
                    f"{model_name} --abort`.")
            row = Rollout(model_name=model_name, alias=alias, candidate_version=candidate_version,
                          holder_version=holder_version, stage=stage, share=float(share),
                          step=step, active=True, revision=1, policy=dict(policy), evidence={},
                          decision=None, actor=actor, started_at=now, stage_started_at=now,
                          stage_rows_from=0, ended_at=None)
            session.add(row)
            session.flush()  # a second process starting one at once collides here, and retries
            record = record_from(RolloutRecord, row)
            if audit is not None:
                audit(session, record)
            return record

        return self.transact(work)

    def active_rollout(self, model_name: str, alias: str) -> RolloutRecord | None:
        """The rollout under way for ``model_name`` to ``alias`` (None: none)."""
        query = select(Rollout).where(Rollout.model_name == model_name, Rollout.alias == alias,
                                      Rollout.active.is_(True))
        with self.session(write=False) as session:
            row = session.scalars(query).first()
            return None if row is None else record_from(RolloutRecord, row)

    def get_rollout(self, rollout_id: int) -> RolloutRecord:
        """One rollout by id (:class:`NotFoundError` when there is none)."""
        with self.session(write=False) as session:
            row = session.get(Rollout, rollout_id)
            if row is None:
                raise NotFoundError(f"no rollout {rollout_id}")
            return record_from(RolloutRecord, row)

    def list_rollouts(self, model_name: str | None = None, *, limit: int = 20
                      ) -> list[RolloutRecord]:
        """The newest ``limit`` rollouts (of ``model_name``), newest first."""
        query = select(Rollout).order_by(Rollout.id.desc()).limit(limit)
        if model_name is not None:
            query = query.where(Rollout.model_name == model_name)
        with self.session(write=False) as session:
            return [record_from(RolloutRecord, r) for r in session.scalars(query)]

    def move_rollout(self, rollout_id: int, *, expected_revision: int, stage: str | None = None,
                     share: float | None = None, step: int | None = None,
                     evidence: Mapping[str, Any] | None = None, decision: str | None = None,
                     audit: RolloutHook | None = None) -> RolloutRecord | None:
        """Move a rollout to ``stage`` (and/or record ``evidence``) if its revision is still
        ``expected_revision``; None when another process moved it first. A stage past the
        live ones ends it (``active`` false, ``ended_at`` now). One transaction with ``audit``.
        """
        if stage is not None and stage not in ROLLOUT_STAGES:
            raise ValueError(f"rollout stage must be one of {ROLLOUT_STAGES}, got {stage!r}")

        def work(session: Session) -> RolloutRecord | None:
            values: dict[str, Any] = {"revision": expected_revision + 1}
            if evidence is not None:
                values["evidence"] = dict(evidence)
            if stage is not None:
                now = utcnow()
                observed = session.scalar(select(func.count()).select_from(RolloutObservation)
                                          .where(RolloutObservation.rollout_id == rollout_id))
                values.update(stage=stage, stage_started_at=now, stage_rows_from=int(observed))
                if stage not in LIVE_STAGES:
                    values.update(active=False, ended_at=now, decision=decision)
            if share is not None:
                values["share"] = float(share)
            if step is not None:
                values["step"] = step
            done = session.execute(update(Rollout).where(
                Rollout.id == rollout_id, Rollout.revision == expected_revision).values(**values))
            if done.rowcount != 1:
                return None
            record = record_from(RolloutRecord, session.get(Rollout, rollout_id,
                                                            populate_existing=True))
            if audit is not None:
                audit(session, record)
            return record

        return self.transact(work)

    def add_rollout_observations(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Append observations (keys as :class:`RolloutObservation`'s columns less ``id``;
        ``at`` defaults to now) in one write; returns how many."""
        if rows:
            now = utcnow()
            with self.session() as session:
                session.execute(RolloutObservation.__table__.insert(),
                                [{"at": now, "replica": None, **r} for r in rows])
        return len(rows)

    def count_rollout_observations(self, rollout_id: int) -> int:
        """How many rows the rollout has observed so far."""
        with self.session(write=False) as session:
            return int(session.scalar(select(func.count()).select_from(RolloutObservation)
                                      .where(RolloutObservation.rollout_id == rollout_id)))

    def rollout_evidence(self, rollout_id: int, cursor: EvidenceCursor | None = None
                         ) -> RolloutEvidence:
        """Every observation of the rollout with its label (see :class:`RolloutEvidence`).

        With a ``cursor`` (kept by the caller between calls) only what was written since its
        last read is fetched — the rows and labels past the newest ids it saw, less a lookback
        (:data:`LOOKBACK_IDS`) that catches writers committing out of id order — so a
        replica judging a long rollout every few seconds does not reread it all. A fresh
        cursor reads everything; the serving driver starts a fresh one now and then.
        """
        cursor = cursor if cursor is not None else EvidenceCursor(rollout_id)
        if cursor.rollout_id != rollout_id:
            raise ValueError(f"the cursor follows rollout {cursor.rollout_id}, not {rollout_id}")
        obs = RolloutObservation
        new_rows = (select(obs.id, *(getattr(obs, c) for c in _COLUMNS))
                    .where(obs.rollout_id == rollout_id,
                           obs.id > cursor.last_observation - LOOKBACK_IDS)
                    .order_by(obs.id))
        new_labels = (select(FeedbackEntry.id, obs.id, FeedbackEntry.label)
                      .join(obs, FeedbackEntry.request_id == obs.request_id)
                      .where(obs.rollout_id == rollout_id,
                             FeedbackEntry.id > cursor.last_feedback - LOOKBACK_IDS)
                      .order_by(FeedbackEntry.id))
        with self.session(write=False) as session:
            for row in session.execute(new_rows):
                cursor.add_row(row[0], row[1:])
            for feedback_id, obs_id, label in session.execute(new_labels):
                cursor.add_label(feedback_id, obs_id, label)
        return cursor.evidence()


LOOKBACK_IDS = 5000
"""Ids re-read behind the newest one a cursor saw: on PostgreSQL two replicas' transactions
may commit out of id order, so a row with a smaller id can appear after a larger one was read."""


@dataclass
class EvidenceCursor:
    """What one reader has read of a rollout's evidence (see
    :meth:`RolloutQueries.rollout_evidence`): the rows by observation id, each row's first
    label and whether a second, different label arrived (a conflict, held out)."""

    rollout_id: int
    columns: dict[str, list[Any]] = field(
        default_factory=lambda: {c: [] for c in _COLUMNS})
    last_observation: int = 0
    last_feedback: int = 0
    _index: dict[int, int] = field(default_factory=dict)  # observation id -> row
    _labels: list[Any] = field(default_factory=list)
    _first_label: list[tuple[int, int]] = field(default_factory=list)  # (feedback id, row)
    _feedback_seen: set[int] = field(default_factory=set)
    _labelled: set[int] = field(default_factory=set)
    _conflicted: set[int] = field(default_factory=set)

    def add_row(self, obs_id: int, values: Sequence[Any]) -> None:
        """Append an observation unless it was read before."""
        if obs_id in self._index:
            return
        self._index[obs_id] = len(self._labels)
        for name, value in zip(_COLUMNS, values, strict=True):
            self.columns[name].append(value)
        self._labels.append(None)
        self.last_observation = max(self.last_observation, obs_id)

    def add_label(self, feedback_id: int, obs_id: int, label: Any) -> None:
        """Apply a feedback entry once; one for a row not read yet waits for the next read."""
        index = self._index.get(obs_id)
        if index is None or feedback_id in self._feedback_seen:
            return
        self._feedback_seen.add(feedback_id)
        self.last_feedback = max(self.last_feedback, feedback_id)
        if index not in self._labelled:
            self._labels[index] = label
            self._labelled.add(index)
            self._first_label.append((feedback_id, index))
        elif canonical_json(label) != canonical_json(self._labels[index]):
            self._conflicted.add(index)  # two different labels: held out, like monitoring

    def evidence(self) -> RolloutEvidence:
        """The evidence read so far, as columns (copies: the cursor goes on reading)."""
        conflicted = self._conflicted
        labels = [None if i in conflicted else label for i, label in enumerate(self._labels)]
        order = [i for _, i in sorted(self._first_label) if i not in conflicted]
        return RolloutEvidence(rows=len(labels), labels=labels, label_order=order,
                               **{c: list(v) for c, v in self.columns.items()})


__all__ = ["LIVE_STAGES", "LOOKBACK_IDS", "EvidenceCursor", "RolloutEvidence", "RolloutHook",
           "RolloutQueries", "RolloutRecord"]
