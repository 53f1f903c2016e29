"""Starting and stopping rollouts: checked here, followed by every serving replica.

:func:`start_rollout` checks that the candidate can stand beside the holder (a classification
model with the holder's features and classes) and that the promotion gates pass now, then
stores the rollout with its policy (audited). The serving replicas take it from there
(:mod:`driftloop.serve.rollout`). :func:`abort_rollout` stops one with the holder kept.

Also here: reading the CLI's shorthand for stage lengths and canary shares.

Examples
--------
>>> stage_length("500"), stage_length("90s"), stage_length("10m"), stage_length("2h")
((500, None), (None, 90.0), (None, 600.0), (None, 7200.0))
>>> canary_shares("10%,50%"), canary_shares("0.25"), canary_shares("")
([0.1, 0.5], [0.25], [])
"""

from __future__ import annotations

import re
from typing import Any

from driftloop.config import RolloutSettings
from driftloop.errors import UsageError
from driftloop.registry.aliases import check_alias
from driftloop.registry.gates import GateRefused
from driftloop.registry.registry import Registry
from driftloop.store import RolloutRecord

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def stage_length(text: str) -> tuple[int | None, float | None]:
    """``(rows, seconds)`` of ``--shadow`` / a canary step: ``500`` rows or ``30s``, ``10m``,
    ``2h``, ``1d``."""
    value = text.strip().lower()
    if re.fullmatch(r"\d+( ?rows?)?", value):
        return int(re.sub(r"\D", "", value)), None
    match = re.fullmatch(r"(\d+(?:\.\d+)?) ?([smhd])", value)
    if match is None:
        raise UsageError(f"a stage length must be a number of rows (500) or a duration (90s, "
                         f"10m, 2h, 1d), got {text!r}.")
    return None, float(match.group(1)) * _UNITS[match.group(2)]


def canary_shares(text: str) -> list[float]:
    """Canary shares from ``10%,50%`` or ``0.1,0.5`` (increasing, each in (0, 1))."""
    shares: list[float] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            share = float(part[:-1]) / 100.0 if part.endswith("%") else float(part)
        except ValueError:
            raise UsageError(f"a canary share must be a percentage (10%) or a fraction (0.1), "
                             f"got {part!r}.") from None
        if not 0.0 < share < 1.0 or (shares and share <= shares[-1]):
            raise UsageError(f"canary shares must increase and lie strictly between 0 and 100 %, "
                             f"got {text!r}; the last step is the promotion to 100 %.")
        shares.append(share)
    return shares


def _compatible(registry: Registry, name: str, candidate: int, holder: int) -> None:
    cand = registry.bundle(registry.get(name, candidate))
    held = registry.bundle(registry.get(name, holder))
    if cand.task == "regression":
        raise UsageError(f"{name} v{candidate} is a regression model: rollouts judge per-row "
                         "correctness, so they need a classification model. Promote it with "
                         "`driftloop models promote` instead.")
    fields = [(f["name"], f["kind"]) for f in (cand.schema or {}).get("features", [])]
    held_fields = [(f["name"], f["kind"]) for f in (held.schema or {}).get("features", [])]
    if cand.schema is None or fields != held_fields:
        raise UsageError(f"{name} v{candidate} takes other features than the holder "
                         f"v{holder}; a rollout sends the same requests to both. Promote it "
                         "with `driftloop models promote` instead.")
    if list(cand.classes) != list(held.classes):
        raise UsageError(f"{name} v{candidate} predicts other classes ({list(cand.classes)}) "
                         f"than the holder v{holder} ({list(held.classes)}); a rollout compares "
                         "their answers row by row.")


def start_rollout(registry: Registry, name: str, version: int, *, to: str,
                  policy: RolloutSettings | None = None, actor: str | None = None,
                  reason: str | None = None) -> RolloutRecord:
    """Start rolling ``name`` ``version`` out to alias ``to`` (shadow first, unless the policy
    has no shadow); raises :class:`GateRefused` when the promotion gates refuse it now and
    :class:`~driftloop.errors.ConflictError` when a rollout of the model is under way."""
    alias = check_alias(to)
    policy = policy or registry.settings.loop.rollout
    holder = registry.holder(name, alias)
    registry.get(name, version)  # an unknown version is named as such
    if holder is None:
        raise UsageError(f"no version of {name} holds {alias!r}, so there is nothing to roll "
                         f"out against; promote a first one with `driftloop models promote "
                         f"{name} {version} --to {alias}`.")
    if holder.version == version:
        raise UsageError(f"{name} v{version} already holds {alias!r}; nothing to roll out.")
    _compatible(registry, name, version, holder.version)
    report = registry.gate(name, version, to=alias)
    if not report.passed:
        raise GateRefused(report)
    who = actor or registry.actor
    shadow = bool(policy.shadow_rows) or policy.shadow_s is not None
    stage, share, step = ("shadow", 0.0, -1) if shadow or not policy.shares else (
        "canary", policy.shares[0], 0)

    def audit(session: Any, record: RolloutRecord) -> object:
        return registry.audit.append_in(session, who, "rollout_start", f"model:{name}", {
            "rollout": record.id, "version": version, "holder": holder.version,
            "alias": alias, "stage": stage, "policy": record.policy, "reason": reason,
            "gates": report.to_json()})

    return registry.store.start_rollout(
        name, alias, candidate_version=version, holder_version=holder.version,
        policy=policy.model_dump(mode="json"), actor=who, stage=stage, share=share, step=step,
        audit=audit)


def abort_rollout(registry: Registry, name: str, alias: str, *, reason: str,
                  actor: str | None = None) -> RolloutRecord:
    """Stop the rollout under way with the holder kept (audited)."""
    if not reason.strip():
        raise UsageError("--abort needs --reason TEXT: say why the rollout is stopped (audited).")
    who = actor or registry.actor
    for _ in range(5):
        current = registry.store.active_rollout(name, check_alias(alias))
        if current is None:
            raise UsageError(f"{name}@{alias} has no rollout under way.")

        def audit(session: Any, record: RolloutRecord, before: str = current.stage) -> object:
            return registry.audit.append_in(session, who, "rollout_stage", f"model:{name}", {
                "rollout": record.id, "version": record.candidate_version,
                "holder": record.holder_version, "from": before, "to": "aborted",
                "share": record.share, "decision": reason, "evidence": record.evidence})

        moved = registry.store.move_rollout(current.id, expected_revision=current.revision,
                                            stage="aborted", decision=f"aborted: {reason}",
                                            audit=audit)
        if moved is not None:
            return moved
    raise UsageError(f"the rollout of {name} kept moving while it was being stopped; try again.")


__all__ = ["abort_rollout", "canary_shares", "stage_length", "start_rollout"]
