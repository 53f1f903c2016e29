"""Rollouts in the server: route each request, record both answers, and move the stages.

A rollout (``driftloop models rollout``, or the loop) is a row in the store; every replica
follows it (:class:`RolloutDriver`, one per served model, polling every ``serve.poll_s``):

- it loads the candidate beside the holder (its own batcher and inference thread), and drops
  it when the rollout ends;
- **shadow**: the holder answers every request; the same rows go to the candidate's batcher
  off the request path (the holder's answer never waits for it), and both answers are
  recorded against the request ids (:class:`RolloutLog`, batched writes like the prediction
  log);
- **canary**: a request whose bucket (``sha256(rollout id, subject id)`` in [0, 1), the
  request id when no subject id was sent) is below the share is answered by the candidate;
  the holder still scores it off the path, so the comparison stays paired on every row. A
  candidate that raises, times out (``timeout_ms``) or is overloaded fails only its own row
  of the evidence: the holder answers the client. The response names the version;
- every ``check_s`` the replica reads the whole evidence and judges it
  (:func:`driftloop.evaluate.live.compare_live`), then moves the stage when the schedule or
  the verdict says so (:func:`next_move`): one transaction with its audit entry, guarded by
  the rollout's revision so that replicas deciding at once move it once; an alert goes to the
  monitor's webhooks. A promotion moves the alias through the registry (its gates run again),
  which every replica then serves through the normal hot swap.

Examples
--------
>>> 0.0 <= bucket(7, "customer-42") < 1.0, bucket(7, "customer-42") == bucket(7, "customer-42")
(True, True)
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from driftloop.config import RolloutSettings, ServeSettings
from driftloop.errors import DriftloopError
from driftloop.evaluate.live import LiveComparison, compare_live
from driftloop.http.errors import logged_error
from driftloop.monitor.alerts import raise_alert
from driftloop.registry import Registry
from driftloop.registry.gates import GateRefused
from driftloop.serve.batcher import QueueFull
from driftloop.serve.metrics import ServeMetrics
from driftloop.serve.prediction_log import PredictionLog, row_ids
from driftloop.serve.swap import ModelSlot, ServedModel
from driftloop.store import EvidenceCursor, RolloutRecord, Store, utcnow

logger = logging.getLogger("driftloop.serve")
ACTOR = "driftloop-rollout"
Answer = dict[str, list[Any]]
RunOn = Callable[[ServedModel, Any], Awaitable[np.ndarray]]
"""``run(served, rows)``: the rows' outputs from that version's batcher."""


def bucket(rollout_id: int, key: str) -> float:
    """Where ``key`` falls in [0, 1) for rollout ``rollout_id``: the same key always falls in
    the same place within a rollout (sticky), and independently across rollouts."""
    digest = hashlib.sha256(f"{rollout_id}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


@dataclass(frozen=True)
class Observation:
    """One request during a rollout: both versions' raw outputs (None: the candidate failed).

    The outputs stay arrays until the log's writer thread turns them into answers, so the
    event loop pays for neither the label decoding nor the lists."""

    rollout_id: int
    stage: str
    request_ids: Sequence[str]
    answered_by: int
    holder: ServedModel
    holder_outputs: np.ndarray
    candidate: ServedModel
    candidate_outputs: np.ndarray | None
    holder_ms: float | None
    candidate_ms: float | None
    error: str | None  # error | timeout, of the candidate


def _confidence(answer: Answer | None, i: int) -> float | None:
    probs = None if answer is None else answer.get("probabilities")
    return None if probs is None else float(max(probs[i]))


def _output(answer: Answer | None, i: int) -> Any:
    return None if answer is None else answer["predictions"][i]


class RolloutLog(PredictionLog):
    """The rollout's observations, buffered and written off the request path (one insert per
    ``flush_ms``, dropped and counted when full or when the store is down, like the log)."""

    thread_name = "driftloop-rollout-log"

    def observe(self, observation: Observation) -> bool:
        """Queue one request's observation; False when dropped."""
        return self._enqueue(observation, len(observation.request_ids))

    def _rows_of(self, entry: Observation) -> list[dict[str, Any]]:
        now = utcnow()
        held = entry.holder.answer(entry.holder_outputs)
        error, candidate = entry.error, None
        if entry.candidate_outputs is not None:
            try:
                candidate = entry.candidate.answer(entry.candidate_outputs)
            except Exception:  # noqa: BLE001 - outputs it cannot turn into answers: a failure
                error = "error"
        return [{"rollout_id": entry.rollout_id, "request_id": rid, "stage": entry.stage,
                 "answered_by": entry.answered_by, "holder_output": _output(held, i),
                 "candidate_output": _output(candidate, i),
                 "holder_confidence": _confidence(held, i),
                 "candidate_confidence": _confidence(candidate, i),
                 "holder_ms": entry.holder_ms, "candidate_ms": entry.candidate_ms,
                 "candidate_error": error, "at": now, "replica": self.replica}
                for i, rid in enumerate(entry.request_ids)]

    def _write(self, rows: list[dict[str, Any]]) -> None:
        self.store.add_rollout_observations(rows)

    def _dropped(self, reason: str, n: int) -> None:
        self.metrics.log_dropped.labels(f"rollout_{reason}").inc(n)

    def _written(self, n: int) -> None:
        pass  # driftloop_rollout_answers counts them as they are answered


@dataclass(frozen=True)
class Move:
    """A stage change :func:`next_move` asks for."""

    stage: str
    share: float
    step: int
    decision: str | None = None


def _stage_done(rows: int, seconds: float, need_rows: int | None, need_s: float | None) -> bool:
    if need_rows is None and need_s is None:
        return True
    return ((need_rows is not None and rows >= need_rows)
            or (need_s is not None and seconds >= need_s))


def next_move(rollout: RolloutRecord, comparison: LiveComparison, policy: RolloutSettings,
              now: datetime) -> Move | None:
    """The stage change the evidence and the schedule call for now (None: stay).

    Any stage rolls back on a ``rollback`` verdict; past ``max_duration_s`` the rollout
    expires with the holder kept; shadow lasts ``shadow_rows`` rows or ``shadow_s`` seconds,
    each canary share ``step_rows``/``step_s``; after the last share the candidate is promoted
    once the verdict says ``promote``.
    """
    if comparison.verdict == "rollback":
        return Move("rolled_back", rollout.share, rollout.step, comparison.reason)
    if (now - rollout.started_at).total_seconds() > policy.max_duration_s:
        return Move("expired", rollout.share, rollout.step,
                    f"undecided after {policy.max_duration_s:g} s ({comparison.reason}); "
                    "the holder keeps the alias")
    rows = comparison.rows - rollout.stage_rows_from
    seconds = (now - rollout.stage_started_at).total_seconds()
    shares = policy.shares
    if rollout.stage == "shadow":
        if not _stage_done(rows, seconds, policy.shadow_rows or None, policy.shadow_s):
            return None
        if shares:
            return Move("canary", shares[0], 0)
    elif rollout.stage == "canary":
        if not _stage_done(rows, seconds, policy.step_rows, policy.step_s):
            return None
        if rollout.step + 1 < len(shares):
            return Move("canary", shares[rollout.step + 1], rollout.step + 1)
    if comparison.verdict == "promote":
        return Move("promoted", 1.0, rollout.step, comparison.reason)
    return None


FRESH_READ_S = 600.0  # reread a rollout's whole evidence this often (rows committed late)
JUDGE_SHARE = 10.0  # wait >= 10 x the last judgement's duration: judging costs <= ~10 %


class RolloutDriver:
    """Follows (and moves) the rollout of one served model on this replica."""

    def __init__(self, slot: ModelSlot, registry: Registry, settings: ServeSettings,
                 log: RolloutLog, metrics: ServeMetrics, replica: str) -> None:
        self.slot, self.registry, self.settings = slot, registry, settings
        self.log, self.metrics, self.replica = log, metrics, replica
        self.rollout: RolloutRecord | None = None  # routed only once the candidate is loaded
        self.candidate: ServedModel | None = None
        self.comparison: LiveComparison | None = None
        self.error: str | None = None
        self._judged_at = 0.0
        self._pending: set[asyncio.Task[None]] = set()
        self._judge_cost = 0.0  # seconds to wait at least between judgements
        self._cursor: EvidenceCursor | None = None  # what this replica has read of the evidence
        self._cursor_at = 0.0
        self._policy_of: tuple[tuple[int, int] | None, RolloutSettings] = (
            None, RolloutSettings())

    @property
    def store(self) -> Store:
        return self.registry.store

    # -- the request path ----------------------------------------------------------------

    async def answer(self, holder: ServedModel, rows: Any, key: str, rid: str, n: int,
                     run: RunOn) -> tuple[np.ndarray, ServedModel]:
        """The outputs for one request and the version that answered; the other version
        scores the same rows off the path. Never fails because of the candidate."""
        rollout, candidate = self.rollout, self.candidate
        if rollout is None or candidate is None or holder.version == candidate.version:
            return await run(holder, rows), holder
        ids = row_ids(rid, n)
        canary = rollout.stage == "canary" and bucket(rollout.id, key) < rollout.share
        if not canary:
            started = time.perf_counter()
            outputs = await run(holder, rows)
            held_ms = (time.perf_counter() - started) * 1000.0
            self._shadow(rollout, candidate, holder, rows, ids, outputs, held_ms)
            self.metrics.rollout_answers.labels(holder.name, rollout.stage, "holder").inc(n)
            return outputs, holder
        started = time.perf_counter()
        cand_out, error = await self._try_candidate(candidate, rows)
        cand_ms = (time.perf_counter() - started) * 1000.0
        if cand_out is None:  # the holder answers the client instead
            started = time.perf_counter()
            outputs = await run(holder, rows)
            self._record(rollout, ids, holder.version, holder, outputs,
                         (time.perf_counter() - started) * 1000.0, candidate, None, cand_ms,
                         error)
            self.metrics.rollout_answers.labels(holder.name, rollout.stage, "holder").inc(n)
            return outputs, holder
        self._spawn(self._score_holder(rollout, candidate, holder, rows, ids, cand_out, cand_ms,
                                       run))
        self.metrics.rollout_answers.labels(holder.name, rollout.stage, "candidate").inc(n)
        return cand_out, candidate

    async def _try_candidate(self, candidate: ServedModel, rows: Any
                             ) -> tuple[np.ndarray | None, str | None]:
        try:
            return await asyncio.wait_for(candidate.batcher.submit(rows),
                                          self._policy().timeout_ms / 1000.0), None
        except TimeoutError:
            return None, self._failed(candidate, "timeout")
        except Exception as exc:  # noqa: BLE001 - the candidate's failure must not reach the client
            return None, self._failed(candidate, exc)

    def _failed(self, candidate: ServedModel, failure: BaseException | str) -> str:
        """Count a candidate failure and name its kind: timeout, overloaded or error."""
        if isinstance(failure, str):
            kind = failure
        elif isinstance(failure, QueueFull):
            kind = "overloaded"
        else:
            kind = "error"
            if not isinstance(failure, DriftloopError):  # preprocessing refusals are expected
                logger.error("the rollout candidate %s v%s failed a request", candidate.name,
                             candidate.version, exc_info=failure)
        self.metrics.rollout_failures.labels(candidate.name, kind).inc()
        return kind

    def _shadow(self, rollout: RolloutRecord, candidate: ServedModel, holder: ServedModel,
                rows: Any, ids: list[str], outputs: np.ndarray, held_ms: float) -> None:
        """Queue the candidate on the same rows with a callback and a timer, no task: the
        holder's request pays only for the enqueue (see ``benchmarks/bench_serve.py
        --shadow``)."""
        started = time.perf_counter()
        try:
            future = candidate.batcher.submit(rows)
        except Exception as exc:  # noqa: BLE001 - overloaded or closing: no evidence either way
            self._failed(candidate, exc)
            return
        timer = asyncio.get_running_loop().call_later(self._policy().timeout_ms / 1000.0,
                                                      future.cancel)

        def scored(done: asyncio.Future[np.ndarray]) -> None:
            timer.cancel()
            cand_out, error = None, None
            if done.cancelled():
                error = self._failed(candidate, "timeout")
            elif done.exception() is not None:
                error = self._failed(candidate, done.exception())  # type: ignore[arg-type]
                if error == "overloaded":
                    return
            else:
                cand_out = done.result()
            self._record(rollout, ids, holder.version, holder, outputs, held_ms, candidate,
                         cand_out, (time.perf_counter() - started) * 1000.0, error)
        future.add_done_callback(scored)

    async def _score_holder(self, rollout: RolloutRecord, candidate: ServedModel,
                            holder: ServedModel, rows: Any, ids: list[str],
                            cand_out: np.ndarray, cand_ms: float, run: RunOn) -> None:
        started = time.perf_counter()
        try:
            outputs = await run(holder, rows)
        except Exception:  # noqa: BLE001 - nothing to compare against; the client has its answer
            return
        self._record(rollout, ids, candidate.version, holder, outputs,
                     (time.perf_counter() - started) * 1000.0, candidate, cand_out, cand_ms, None)

    def _record(self, rollout: RolloutRecord, ids: list[str], answered_by: int,
                holder: ServedModel, outputs: np.ndarray, held_ms: float,
                candidate: ServedModel, cand_out: np.ndarray | None, cand_ms: float,
                error: str | None) -> None:
        self.log.observe(Observation(rollout.id, rollout.stage, ids, answered_by, holder,
                                     outputs, candidate, cand_out, held_ms,
                                     None if error == "timeout" else cand_ms, error))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    # -- following and judging -----------------------------------------------------------

    def _policy(self) -> RolloutSettings:
        rollout = self.rollout
        if rollout is None:
            return RolloutSettings()
        key = (rollout.id, rollout.revision)
        if self._policy_of[0] != key:  # validated once per rollout change, not per request
            self._policy_of = (key, RolloutSettings.model_validate(rollout.policy))
        return self._policy_of[1]

    async def run(self) -> None:
        """:meth:`tick` every ``serve.poll_s`` until cancelled."""
        while True:
            await self.tick()
            await asyncio.sleep(self.settings.poll_s)

    async def tick(self) -> None:
        """Follow the store's rollout of this model; judge it when ``check_s`` has passed."""
        try:
            record = await asyncio.to_thread(self.store.active_rollout, self.slot.name,
                                             self.settings.alias)
        except Exception as exc:  # noqa: BLE001 - the store may be down: keep what we follow
            self.error = logged_error(logger, f"cannot read the rollout of {self.slot.name}",
                                      exc)
            return
        if record is None:
            self._drop()
            return
        if self.candidate is None or self.candidate.version != record.candidate_version:
            self._drop()
            try:
                version = await asyncio.to_thread(self.registry.get, self.slot.name,
                                                  record.candidate_version)
                self.candidate = await asyncio.to_thread(self.slot.build, version)
            except Exception as exc:  # noqa: BLE001 - a candidate that cannot load is rolled back
                what = logged_error(logger, f"cannot load the rollout candidate "
                                    f"{self.slot.name} v{record.candidate_version}", exc)
                await self._apply(record, Move("rolled_back", record.share, record.step,
                                               f"the candidate could not be loaded ({what})"),
                                  None)
                return
        self.rollout = record
        policy = self._policy()
        self._tune(self.candidate, record.stage, policy)
        if time.monotonic() - self._judged_at >= max(policy.check_s, self._judge_cost):
            started = self._judged_at = time.monotonic()
            await self.judge(record, policy)
            # comparing (and now and then rereading) grows with the rollout: a long one is
            # judged less often, so that judging takes at most about a tenth of the time
            self._judge_cost = JUDGE_SHARE * (time.monotonic() - started)

    def _tune(self, candidate: ServedModel, stage: str, policy: RolloutSettings) -> None:
        """Shadow batches wait ``shadow_batch_ms``, hold 4x the rows and yield to the holder's
        batches; canary ones are the server's (the candidate then answers clients)."""
        shadow = stage == "shadow"
        wait_ms = policy.shadow_batch_ms if shadow else self.settings.max_latency_ms
        batcher = candidate.batcher
        batcher.max_latency_s = max(wait_ms, self.settings.max_latency_ms) / 1000.0
        batcher.max_batch_size = self.settings.max_batch_size * (4 if shadow else 1)
        holder = self.slot.current
        # in shadow the candidate's batches also wait (up to shadow_batch_ms more) for the
        # holder's batcher to be idle: its CPU time comes out of the holder's gaps
        batcher.yield_to = ((holder.batcher, policy.shadow_batch_ms / 1000.0)
                            if shadow and holder is not None else None)

    def _drop(self) -> None:
        if self.candidate is not None:
            self.slot.retire(self.candidate)
        self.rollout, self.candidate, self.comparison = None, None, None

    async def judge(self, record: RolloutRecord, policy: RolloutSettings) -> None:
        """Compare the versions on the evidence so far; move the stage when called for."""
        try:
            now = time.monotonic()
            if (self._cursor is None or self._cursor.rollout_id != record.id
                    or now - self._cursor_at > FRESH_READ_S):
                self._cursor, self._cursor_at = EvidenceCursor(record.id), now
            evidence = await asyncio.to_thread(self.store.rollout_evidence, record.id,
                                               self._cursor)
            comparison = compare_live(evidence, policy)
        except Exception as exc:  # noqa: BLE001 - judge again at the next check
            self.error = logged_error(logger, f"cannot judge rollout {record.id}", exc)
            return
        self.comparison = comparison
        holder = await asyncio.to_thread(self.registry.holder, record.model_name, record.alias)
        if (None if holder is None else holder.version) != record.holder_version:
            move: Move | None = Move("aborted", record.share, record.step,
                                     f"{record.model_name}@{record.alias} moved to "
                                     f"v{None if holder is None else holder.version} during "
                                     "the rollout; the rollout stopped")
        else:
            move = next_move(record, comparison, policy, utcnow())
        await self._apply(record, move, comparison)

    async def _apply(self, record: RolloutRecord, move: Move | None,
                     comparison: LiveComparison | None) -> None:
        evidence = comparison.to_json() if comparison is not None else record.evidence
        if move is not None and move.stage == "promoted":
            move = await asyncio.to_thread(self._promote, record, move)
        moved = await asyncio.to_thread(self._move, record, move, evidence)
        if moved is None or move is None:
            if moved is not None:
                self.rollout = moved
            return
        self.rollout = moved if moved.active else None
        logger.warning("rollout %s of %s v%s: %s -> %s (%s)", record.id, record.model_name,
                       record.candidate_version, record.stage, move.stage,
                       move.decision or f"share {move.share:.0%}")
        await asyncio.to_thread(self._alert, record, move, evidence)
        if not moved.active:
            self._drop()

    def _promote(self, record: RolloutRecord, move: Move) -> Move:
        try:
            self.registry.promote(record.model_name, record.candidate_version, to=record.alias,
                                  actor=ACTOR, reason=f"rollout {record.id}: {move.decision}")
        except GateRefused as exc:
            return Move("rolled_back", record.share, record.step,
                        f"the live comparison passed but the promotion gates refused: {exc}")
        return move

    def _move(self, record: RolloutRecord, move: Move | None, evidence: dict[str, Any]
              ) -> RolloutRecord | None:
        def audit(session: Any, moved: RolloutRecord) -> object:
            return self.registry.audit.append_in(session, ACTOR, "rollout_stage",
                                                 f"model:{record.model_name}", {
                "rollout": record.id, "version": record.candidate_version,
                "holder": record.holder_version, "from": record.stage, "to": moved.stage,
                "share": moved.share, "decision": moved.decision, "replica": self.replica,
                "evidence": evidence})
        if move is None:  # the evidence only, for the dashboard and `models rollout --status`
            return self.store.move_rollout(record.id, expected_revision=record.revision,
                                           evidence=evidence)
        return self.store.move_rollout(record.id, expected_revision=record.revision,
                                       stage=move.stage, share=move.share, step=move.step,
                                       evidence=evidence, decision=move.decision, audit=audit)

    def _alert(self, record: RolloutRecord, move: Move, evidence: dict[str, Any]) -> None:
        monitor = self.registry.settings.monitor
        message = (f"rollout {record.id} of {record.model_name} v{record.candidate_version}: "
                   f"{record.stage} -> {move.stage}"
                   + (f" ({move.decision})" if move.decision else f" at {move.share:.0%}"))
        try:
            raise_alert(self.store, model_name=record.model_name, kind="rollout",
                        message=message, details={"rollout": record.id, "stage": move.stage,
                                                  "share": move.share, "evidence": evidence},
                        webhooks=monitor.webhooks, retries=monitor.webhook_retries,
                        backoff_s=monitor.webhook_backoff_s,
                        timeout_s=monitor.webhook_timeout_s, wait_s=monitor.webhook_wait_s)
        except Exception as exc:  # noqa: BLE001 - the move is stored and audited already
            logged_error(logger, f"cannot raise the alert of rollout {record.id}", exc)

    async def close(self) -> None:
        """Let the off-path scoring finish, then retire the candidate."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self.candidate is not None:
            await self.candidate.batcher.close()


__all__ = ["Move", "Observation", "RolloutDriver", "RolloutLog", "bucket", "next_move"]
