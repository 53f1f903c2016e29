"""The model registry: versions of named models, their aliases, gates, lineage and cards.

Versions live in the store and the artifact store; an alias (``production``, ``staging``)
points at one version and moves only through :meth:`Registry.promote` (gated, audited) and
:meth:`Registry.rollback` (audited), and is removed only by :meth:`Registry.deactivate`
(audited; ``promote`` restores it).

Examples
--------
>>> import tempfile, driftloop as dl
>>> from driftloop.config import Settings
>>> home = tempfile.mkdtemp()
>>> reg = dl.Registry.open(Settings.load(overrides={"home": home}, environ={}, cwd=home))
>>> reg.versions()
[]

Two versions with no evidence stored: the gates refuse, naming what is missing; a forced
promotion is audited with the failed gates; a rollback returns to the previous holder.

>>> bundle = ModelBundle(task="binary", input_kind="table", model="mlp", model_inputs={},
...                      n_outputs=2, classes=[0, 1], schema=None, preprocessor=None,
...                      target_encoder={"task": "binary"})
>>> for n in (1, 2):
...     _ = reg.register("churn", run_id=None, bundle=bundle, weights=bytes([n]),
...                      metrics={"accuracy": 0.9}, actor="ci:train", reason="demo")
>>> reg.gate("churn", 1, to="production").failed[0].detail[:40]
'missing evidence: churn v1 has no measur'
>>> for n in (1, 2):
...     _ = reg.promote("churn", n, to="production", force=True, reason="bootstrap")
>>> reg.holder("churn", "production").version
2
>>> reg.rollback("churn", "production", reason="bad canary").to_version
1
>>> [e.action for e in reg.audit.entries(subject="churn:v2")]
['register', 'gate_override', 'promote']
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from driftloop.config import Settings
from driftloop.errors import DriftloopError, NotFoundError, UsageError
from driftloop.evaluate.report import EvaluationReport
from driftloop.models.bundle import ModelBundle
from driftloop.models.loaded import LoadedModel
from driftloop.registry.aliases import Promotion, check_alias, deactivation, rollback_target
from driftloop.registry.card import ModelCard, build_card, card_text, missing_text
from driftloop.registry.distillation import distill_record
from driftloop.registry.evaluation import evaluate_version
from driftloop.registry.evidence import Evaluation, data_checks, evaluations, features
from driftloop.registry.gates import Evidence, GateRefused, GateReport, run_gates
from driftloop.registry.lineage import Lineage, lineage
from driftloop.registry.names import check_model_name
from driftloop.store import (
    AliasMoved,
    AliasMoveRecord,
    AliasRecord,
    ArtifactStore,
    AuditLog,
    AuditRecord,
    Store,
    VersionRecord,
    canonical_json,
    pseudonymous_actor,
)

_MOVE_ATTEMPTS = 5  # decide again this often when another process moves the alias meanwhile
Data = str | os.PathLike[str] | pd.DataFrame


class Registry:
    """Register, list and load model versions.

    Parameters
    ----------
    store, artifacts, audit
        The database, the artifact store and the audit log; pass them explicitly or build all
        three from settings with :meth:`Registry.open`.
    settings
        The gate policy (``gates:``), the model card text (``card:``) and the audit ``actor``
        come from here; None: the defaults.
    """

    def __init__(
        self,
        store: Store,
        artifacts: ArtifactStore,
        audit: AuditLog,
        settings: Settings | None = None,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.audit = audit
        self.settings = settings or Settings()

    @classmethod
    def open(cls, settings: Settings | None = None) -> Registry:
        """Open (creating or upgrading) the store and artifact store named by ``settings``.

        Datasets recorded and runs started, finished or failed through this registry's store
        are audited as ``settings.actor``.
        """
        settings = settings or Settings.load()
        store = Store.open(settings.store_url)
        audit = AuditLog(store)
        registry = cls(store, ArtifactStore(settings.artifacts_url), audit, settings)
        store.on_event = audit.event_recorder(registry.actor)
        return registry

    def close(self) -> None:
        """Release the store's connections; the registry is unusable afterwards."""
        self.store.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def actor(self) -> str:
        """Who this registry's changes are audited as: ``settings.actor`` or a pseudonym."""
        return self.settings.actor or pseudonymous_actor()

    def record_dataset(self, run_id: str, role: str, prepared: Any) -> None:
        """Record one split (or the source) of prepared data as the run's dataset ``role``."""
        columns = (
            [{"name": c.name, "kind": c.kind} for c in prepared.schema.features]
            if prepared.schema is not None
            else None
        )
        rows = prepared.row_counts[role]  # "source" counts every row once
        self.store.upsert_dataset(
            prepared.fingerprints[role], prepared.source_uri, rows, columns
        )
        self.store.link_run_dataset(run_id, role, prepared.fingerprints[role])

    def register(
        self,
        name: str,
        *,
        run_id: str | None,
        bundle: ModelBundle,
        weights: bytes,
        metrics: dict[str, float],
        actor: str,
        reason: str,
        parent_id: int | None = None,
    ) -> VersionRecord:
        """Store weights and bundle as artifacts and add version N+1 of ``name``, audited."""
        check_model_name(name)
        weights_sha = self.artifacts.put_bytes(weights)
        bundle_sha = self.artifacts.put_json(bundle.to_json())
        return self.store.add_version(
            name, run_id=run_id, task=bundle.task, input_kind=bundle.input_kind,
            weights_sha256=weights_sha, bundle_sha256=bundle_sha, metrics=metrics,
            size_bytes=len(weights), parent_id=parent_id,
            audit=self.audit.recorder(actor=actor, action="register", reason=reason),
        )

    def versions(self, name: str | None = None) -> list[VersionRecord]:
        """All versions of ``name`` (of every model when None), oldest first."""
        return self.store.list_versions(name)

    def get(self, name: str, version: int | None = None) -> VersionRecord:
        """One version (the latest when ``version`` is None)."""
        return self.store.get_version(name, version)

    def bundle(self, record: VersionRecord) -> ModelBundle:
        """The verified bundle of a version."""
        return ModelBundle.from_json(self.artifacts.get_json(record.bundle_sha256))

    def load(self, name: str, version: int | None = None) -> LoadedModel:
        """Load a version for inference; weights and bundle are verified against their hashes."""
        record = self.get(name, version)
        return LoadedModel(self.bundle(record), self.artifacts.get_bytes(record.weights_sha256),
                           allowed_factories=self.settings.security.model_factories)

    def evaluate(
        self,
        version: str | VersionRecord,
        data: Data,
        slices: Sequence[str] = (),
        *,
        target: str | None = None,
        store: bool = True,
    ) -> EvaluationReport:
        """Evaluate ``version`` (``NAME[:VERSION]`` or a record) on ``data`` and, unless
        ``store=False``, store the report with the version (see :func:`evaluate`)."""
        return evaluate_version(self, version, data, slices, target=target,
                                settings=self.settings, store=store)

    def describe(self, record: VersionRecord) -> dict[str, Any]:
        """One version as people and machines see it in ``models list|show``: the record, the
        aliases pointing at it, its data fingerprints by role, and from its newest evaluation
        report the ECE and the worst slice (None when not evaluated)."""
        evaluation = next(iter(evaluations(self.store, self.artifacts, record)), None)
        datasets = self.store.run_datasets(record.run_id) if record.run_id else {}
        ece = evaluation.ece if evaluation is not None else record.metrics.get("ece")
        return {
            **asdict(record),
            "aliases": [a.alias for a in self.store.list_aliases(record.model_name)
                        if a.version_id == record.id],
            "fingerprints": {role: d.fingerprint for role, d in datasets.items()},
            "ece": ece,
            "worst_slice": None if evaluation is None else evaluation.worst_slice,
            "evaluation_report": None if evaluation is None else (
                evaluation.report.artifact_sha256),
        }

    # -- aliases -----------------------------------------------------------------------------

    def aliases(self, name: str | None = None) -> list[AliasRecord]:
        """The aliases of ``name`` (of every model when None) and the versions they point at."""
        return self.store.list_aliases(name)

    def holder(self, name: str, alias: str) -> VersionRecord | None:
        """The version ``alias`` of ``name`` points at, or None."""
        found = self.store.alias_holder(name, check_alias(alias))
        return None if found is None else self.store.get_version_by_id(found.version_id)

    def moves(self, name: str, alias: str | None = None) -> list[AliasMoveRecord]:
        """Every move of the aliases of ``name`` (of one ``alias``), oldest first."""
        return self.store.alias_moves(name, alias)

    def gate(
        self, name: str, version: int, *, to: str, data: Data | None = None
    ) -> GateReport:
        """Run the promotion gates of ``name`` ``version`` for alias ``to`` without promoting.

        Parameters
        ----------
        data
            Evaluation data (CSV/Parquet file or DataFrame with the target column): the
            candidate and the alias's holder are evaluated on it first (the reports are
            stored), and the gates read those reports. Without it they read the stored ones.
        """
        alias = check_alias(to)
        candidate = self.get(name, version)
        holder = self.holder(name, alias)
        fingerprint = self._evaluate(data, candidate, holder)
        return self._run_gates(candidate, alias, holder, fingerprint)

    def promote(
        self,
        name: str,
        version: int,
        *,
        to: str,
        reason: str | None = None,
        actor: str | None = None,
        force: bool = False,
        data: Data | None = None,
    ) -> Promotion:
        """Point alias ``to`` at ``name`` ``version`` if every gate passes; audited.

        Parameters
        ----------
        reason
            Why (audited; required with ``force``). Write no personal data here.
        actor
            Who, for the audit log (default: :attr:`actor`).
        force
            Promote although gates failed; the override and the failed gates are audited.
        data
            Evaluation data to evaluate candidate and holder on first (see :meth:`gate`).

        Raises
        ------
        GateRefused
            (a :class:`driftloop.errors.CheckFailed`) when a gate failed and ``force`` is off;
            it lists every failed gate with its measured value and bound.
        """
        alias = check_alias(to)
        if force and not (reason or "").strip():
            raise UsageError("--force needs --reason TEXT: say why the failed gates may be "
                             "overridden (the reason and the failed gates are audited).")
        who = actor or self.actor
        candidate = self.get(name, version)
        evaluated: dict[int, str] = {}
        for _ in range(_MOVE_ATTEMPTS):
            holder = self.holder(name, alias)
            fingerprint = self._evaluate(data, candidate, holder, evaluated)
            report = self._run_gates(candidate, alias, holder, fingerprint)
            if holder is not None and holder.id == candidate.id:
                return Promotion(None, report)
            if not report.passed and not force:
                raise GateRefused(report)
            forced = not report.passed
            try:
                move = self.store.move_alias(
                    name, alias, candidate.id,
                    expected_version_id=None if holder is None else holder.id,
                    action="promote", actor=who, reason=reason, forced=forced,
                    gates=report.to_json(), audit=self._move_audit(who, report, forced),
                )
            except AliasMoved:
                continue  # another process moved the alias: gate again against its new holder
            return Promotion(move, report, forced)
        raise DriftloopError(f"{name}@{alias} kept moving while it was being promoted "
                             f"({_MOVE_ATTEMPTS} attempts); try again.")

    def rollback(
        self, name: str, alias: str, *, reason: str | None = None, actor: str | None = None
    ) -> AliasMoveRecord:
        """Point ``alias`` back at the version that held it before the current holder; audited.

        Rolling back is an emergency exit and runs no gates: the version it returns to held
        the alias before. Rolling back again goes one holder further back.
        """
        check_alias(alias)
        self.get(name)  # an unknown model is named as such
        who = actor or self.actor
        for _ in range(_MOVE_ATTEMPTS):
            current = self.store.alias_holder(name, alias)
            if current is None:
                raise UsageError(self._not_held(name, alias, "roll back"))
            target = rollback_target(self.store.alias_moves(name, alias))
            if target is None:
                raise UsageError(
                    f"{name}@{alias} has had only one holder (v{current.version}); there is no "
                    "previous holder to roll back to. Promote another version instead."
                )
            try:
                return self.store.move_alias(
                    name, alias, target, expected_version_id=current.version_id,
                    action="rollback", actor=who, reason=reason,
                    audit=self._move_audit(who, None, False),
                )
            except AliasMoved:
                continue
        raise DriftloopError(f"{name}@{alias} kept moving while it was being rolled back; "
                             "try again.")

    def deactivate(
        self, name: str, alias: str, *, reason: str, actor: str | None = None
    ) -> AliasMoveRecord:
        """Remove ``alias`` of ``name`` so nothing holds it and servers stop serving it; audited.

        The alias row is deleted, and the move (action ``deactivate``) and its audit entry are
        written in the same transaction, only if the alias still points where it did when it
        was read. A move always names a version it went to (``to_version_id`` is required), so
        a deactivation records the deactivated version as both ``from`` and ``to``.
        :meth:`promote` restores the alias (gated); :meth:`rollback` refuses while nothing holds
        it, since undoing a deliberate stop should be a deliberate, gated promotion.

        Parameters
        ----------
        reason
            Why (required, audited). Write no personal data here.
        actor
            Who, for the audit log (default: :attr:`actor`).
        """
        check_alias(alias)
        if not (reason or "").strip():
            raise UsageError("deactivating needs --reason TEXT: say why the model is taken out "
                             "of service (the reason is audited).")
        self.get(name)  # an unknown model is named as such
        who = actor or self.actor
        for _ in range(_MOVE_ATTEMPTS):
            current = self.store.alias_holder(name, alias)
            if current is None:
                raise UsageError(self._not_held(name, alias, "deactivate"))
            try:
                return self._remove_alias(name, alias, current.version_id, who, reason)
            except AliasMoved:
                continue
        raise DriftloopError(f"{name}@{alias} kept moving while it was being deactivated; "
                             "try again.")

    # -- lineage and cards -------------------------------------------------------------------

    def lineage(self, name: str, version: int | None = None) -> Lineage:
        """Run, datasets, parents, reports, alias moves and audit entries of one version."""
        return lineage(self, name, version)

    def card(
        self, name: str, version: int | None = None, text: Mapping[str, str] | None = None
    ) -> ModelCard:
        """The model card of one version; ``text`` overrides the ``card:`` settings."""
        record = self.get(name, version)
        return build_card(self, record, card_text(self.settings.card, name, text))

    # -- internals ---------------------------------------------------------------------------

    def _evaluate(
        self, data: Data | None, candidate: VersionRecord, holder: VersionRecord | None,
        evaluated: dict[int, str] | None = None,
    ) -> str | None:
        """Evaluate candidate (and holder) on ``data``, sliced by their first feature columns
        as training does; return the data's fingerprint. ``evaluated`` (version id ->
        fingerprint) skips versions already evaluated in this decision."""
        if data is None:
            return None
        done = {} if evaluated is None else evaluated
        for record in [candidate] + ([holder] if holder and holder.id != candidate.id else []):
            if record.id not in done:
                columns = features(self.bundle(record).schema) or []
                report = self.evaluate(
                    record, data, slices=columns[: self.settings.evaluate.max_slice_columns],
                )
                done[record.id] = report.dataset["fingerprint"]
        return done[candidate.id]

    def _run_gates(
        self, candidate: VersionRecord, alias: str, holder: VersionRecord | None,
        fingerprint: str | None,
    ) -> GateReport:
        mine = evaluations(self.store, self.artifacts, candidate)
        theirs = evaluations(self.store, self.artifacts, holder) if holder is not None else []
        evaluation, holder_evaluation = _pick_evaluations(mine, theirs, fingerprint)
        text = card_text(self.settings.card, candidate.model_name)
        evidence = Evidence(
            candidate=candidate, alias=alias, holder=holder, evaluation=evaluation,
            holder_evaluation=holder_evaluation,
            same_test_split=holder is not None and self._same_test_split(candidate, holder),
            data_check=next(iter(data_checks(self.store, self.artifacts, candidate)), None),
            features=features(self.bundle(candidate).schema),
            card_missing=missing_text(text, self.settings.gates.card_required),
            privacy=next((e for e in mine if e.body.get("privacy")), None),
            **self._teacher_evidence(candidate, mine),
        )
        return run_gates(evidence, self.settings.gates)

    def _teacher_evidence(
        self, candidate: VersionRecord, mine: list[Evaluation]
    ) -> dict[str, Any]:
        """A distilled candidate's teacher and both versions' newest reports on the same data
        (the student gate's evidence); nothing for other versions."""
        record = distill_record(candidate)
        if record is None:
            return {}
        try:
            teacher = self.store.get_version_by_id(record.teacher_id)
        except NotFoundError:
            return {}
        theirs = evaluations(self.store, self.artifacts, teacher)
        student, paired = _pick_evaluations(mine, theirs, None)
        return {"teacher": teacher, "student_evaluation": student if paired else None,
                "teacher_evaluation": paired}

    def _same_test_split(self, a: VersionRecord, b: VersionRecord) -> bool:
        if a.run_id is None or b.run_id is None:
            return False
        mine, theirs = self.store.run_datasets(a.run_id), self.store.run_datasets(b.run_id)
        return "test" in mine and "test" in theirs and (
            mine["test"].fingerprint == theirs["test"].fingerprint
        )

    def _move_audit(
        self, actor: str, report: GateReport | None, forced: bool
    ) -> Callable[[Session, AliasMoveRecord], AuditRecord]:
        """The audit hook of one alias move: policy change, gate override, then the move."""

        def hook(session: Session, move: AliasMoveRecord) -> AuditRecord:
            subject = f"{move.model_name}:v{move.to_version}"
            details: dict[str, Any] = {
                "alias": move.alias, "from_version": move.from_version,
                "to_version": move.to_version, "reason": move.reason,
            }
            if report is not None:
                self._audit_policy(session, actor, report)
                details["forced"] = forced
                details["gates"] = {
                    "passed": report.passed,
                    "policy_sha256": report.policy_sha256,
                    "evidence_sha256": hashlib.sha256(
                        canonical_json(report.to_json())).hexdigest(),
                    "results": [{k: r.to_json()[k] for k in ("name", "passed", "measured",
                                                              "bound")}
                                for r in report.results],
                }
            if forced and report is not None:
                self.audit.append_in(session, actor, "gate_override", subject, {
                    "alias": move.alias, "reason": move.reason,
                    "failed": [r.to_json() for r in report.failed],
                })
            return self.audit.append_in(session, actor, move.action, subject, details)

        return hook

    def _remove_alias(
        self, name: str, alias: str, version_id: int, actor: str, reason: str
    ) -> AliasMoveRecord:
        """Delete the alias row if it still points at ``version_id``; record and audit the move
        (:meth:`driftloop.store.Store.remove_alias`, with the same audit hook as a move)."""
        return self.store.remove_alias(
            name, alias, expected_version_id=version_id, actor=actor, reason=reason,
            audit=self._move_audit(actor, None, False),
        )

    def _not_held(self, name: str, alias: str, verb: str) -> str:
        """Why ``verb`` cannot act on ``name@alias``: it was deactivated, or never held."""
        stopped = deactivation(self.store.alias_moves(name, alias))
        if stopped is not None:
            return (f"{name}@{alias} is deactivated (v{stopped.to_version} was taken out at "
                    f"{stopped.at:%Y-%m-%d %H:%M:%S} UTC by {stopped.actor}); nothing holds it, "
                    f"so there is nothing to {verb}. Restore a version with `driftloop models "
                    f"promote {name} VERSION --to {alias}` (gated).")
        held = ", ".join(a.alias for a in self.aliases(name)) or "none"
        return f"{name} has no alias '{alias}' to {verb} (its aliases: {held})."

    def _audit_policy(self, session: Session, actor: str, report: GateReport) -> None:
        """Append ``policy_change`` when the gate policy differs from the last one recorded."""
        last = self.audit.last_in(session, "policy_change", "policy:gates")
        previous = None if last is None else last.details.get("sha256")
        if previous != report.policy_sha256:
            self.audit.append_in(session, actor, "policy_change", "policy:gates", {
                "sha256": report.policy_sha256, "previous_sha256": previous,
                "policy": report.policy,
            })


def evaluate(
    version_or_path: str | VersionRecord,
    data: Data,
    slices: Sequence[str] = (),
    *,
    target: str | None = None,
    settings: Settings | None = None,
    registry: Registry | None = None,
    store: bool = True,
) -> EvaluationReport:
    """Evaluate a registered model version on ``data`` and store the report with the version.

    Parameters
    ----------
    version_or_path
        ``"NAME"`` (latest version), ``"NAME:VERSION"`` or a version record.
    data
        A CSV/Parquet file or DataFrame holding the model's feature columns and its target
        column, or an ``.npz`` file with ``X`` and ``y`` for image/sequence models.
    slices
        Columns of ``data`` to evaluate per value / quantile bin.
    target
        The target column when it is named differently from training.
    registry
        The registry holding the version; None: open the one ``settings`` names (closed again
        before returning).
    store
        Save the report (and the reliability diagram) as artifacts linked to the version and
        to the dataset's fingerprint.

    Examples
    --------
    >>> import driftloop as dl                                          # doctest: +SKIP
    >>> report = dl.evaluate("credit:1", "holdout.csv", slices=["elevel", "age"])  # doctest: +SKIP
    >>> print(report.summary())                                         # doctest: +SKIP
    """
    if registry is not None:
        return evaluate_version(registry, version_or_path, data, slices, target=target,
                                settings=settings or registry.settings, store=store)
    with Registry.open(settings or Settings.load()) as opened:
        return opened.evaluate(version_or_path, data, slices, target=target, store=store)


def _pick_evaluations(
    mine: list[Evaluation], theirs: list[Evaluation], fingerprint: str | None
) -> tuple[Evaluation | None, Evaluation | None]:
    """The candidate's evaluation the gates read, and the holder's on the same data.

    With ``fingerprint``: the newest reports on that data. Otherwise the newest data both
    were evaluated on, or else the candidate's newest report alone.
    """
    if fingerprint is not None:
        return (next((e for e in mine if e.dataset_fingerprint == fingerprint), None),
                next((e for e in theirs if e.dataset_fingerprint == fingerprint), None))
    by_data: dict[str, Evaluation] = {}
    for e in theirs:  # newest first: keep the newest per dataset
        by_data.setdefault(e.dataset_fingerprint, e)
    common = next((e for e in mine if e.dataset_fingerprint in by_data), None)
    if common is not None:
        return common, by_data[common.dataset_fingerprint]
    return (mine[0] if mine else None), None


__all__ = ["Registry", "evaluate"]
