"""``driftloop models rollout``: start, follow, or stop a shadow -> canary -> alias rollout."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.markup import escape

from driftloop.cli.output import JsonFlag, emit_json, open_registry, out, version_number
from driftloop.errors import CheckFailed, UsageError
from driftloop.store import RolloutRecord


def _interval(evidence: dict[str, Any], key: str) -> str:
    value = evidence.get(key) or {}
    if not value.get("rows"):
        return "no rows yet"
    mean = value.get("mean")
    shown = "n/a" if mean is None else f"{mean:+.3f}"
    return f"{shown} [{value['low']:+.3f}, {value['high']:+.3f}] on {value['rows']} rows"


def describe(record: RolloutRecord) -> list[str]:
    """Plain lines about a rollout: stage, share, the live comparison, the decision."""
    lines = [f"rollout {record.id}: {record.model_name} v{record.candidate_version} against "
             f"v{record.holder_version} for {record.alias} — {record.stage}"
             + (f" at {record.share:.0%}" if record.stage == "canary" else "")]
    ev = record.evidence
    if ev:
        lines += [f"  rows observed: {ev.get('rows', 0)}, labelled: {ev.get('labelled', 0)}",
                  f"  accuracy difference (labels): {_interval(ev, 'accuracy_difference')}",
                  f"  estimate difference (no labels): {_interval(ev, 'estimate_difference')}",
                  f"  agreement: {_interval(ev, 'agreement')}",
                  f"  candidate error rate: {_interval(ev, 'error_rate')}"]
        latency = ev.get("latency_ms", {})
        for role in ("holder", "candidate"):
            p = latency.get(role, {})
            if p.get("p50") is not None:
                lines.append(f"  {role} latency p50 {p['p50']:.1f} ms, p99 {p['p99']:.1f} ms")
        lines.append(f"  verdict: {ev.get('verdict')} — {ev.get('reason')}")
    if record.decision:
        lines.append(f"  decision: {record.decision}")
    return lines


def models_rollout_cmd(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str | None, typer.Argument(
        help="Candidate version (3 or v3); leave out with --status or --abort.")] = None,
    shadow: Annotated[str | None, typer.Option(
        help="Shadow stage length: rows (500) or a duration (90s, 10m, 2h); 0: none.")] = None,
    canary: Annotated[str | None, typer.Option(
        help="Canary shares in order, e.g. 10%,50% ('' for none).")] = None,
    step: Annotated[str | None, typer.Option(
        help="Length of each canary share: rows or a duration.")] = None,
    to: Annotated[str, typer.Option("--to", help="Alias the candidate is rolled out to.")
                  ] = "production",
    policy: Annotated[str | None, typer.Option(
        help="non_inferior (default) or better.")] = None,
    margin: Annotated[float | None, typer.Option(
        help="Accuracy the candidate may lose and still be non-inferior.")] = None,
    status: Annotated[bool, typer.Option("--status", help="Show the rollout and exit.")
                      ] = False,
    abort: Annotated[bool, typer.Option("--abort", help="Stop it, the holder kept "
                                        "(needs --reason).")] = False,
    wait: Annotated[float | None, typer.Option(
        help="Follow it for at most this many seconds; exit 1 unless it was promoted.")
                    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why (audited; no personal data).")] = None,
    actor: Annotated[
        str | None, typer.Option(help="Audited as this role or service id.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Roll a version out to an alias: shadow, then canary shares, then promotion by itself
    when the live comparison says so — or an automatic rollback.

    The model's running servers carry it out (every replica follows the store). Decisions
    rest on confidence sequences over the paired rows: see docs/serving.md.
    """
    from driftloop.registry.rollouts import (
        abort_rollout,
        canary_shares,
        stage_length,
        start_rollout,
    )

    with open_registry() as registry:
        if status or (abort and version is None):
            current = registry.store.active_rollout(name, to)
            if abort:
                record = abort_rollout(registry, name, to, reason=reason or "", actor=actor)
            elif current is None:
                past = registry.store.list_rollouts(name, limit=1)
                if not past:
                    raise UsageError(f"{name} has never been rolled out; start one with "
                                     f"`driftloop models rollout {name} VERSION`.")
                record = past[0]
            else:
                record = current
            _show(record, json_out)
            return
        if version is None:
            raise UsageError("name the candidate version: `driftloop models rollout NAME "
                             "VERSION` (or use --status / --abort).")
        updates: dict[str, Any] = {}
        if shadow is not None:
            rows, seconds = stage_length(shadow)
            updates.update(shadow_rows=rows or 0, shadow_s=seconds)
        if canary is not None:
            updates["shares"] = canary_shares(canary)
        if step is not None:
            rows, seconds = stage_length(step)
            updates.update(step_rows=rows, step_s=seconds)
        if policy is not None:
            updates["policy"] = policy
        if margin is not None:
            updates["margin"] = margin
        from driftloop.config import RolloutSettings

        try:
            chosen = RolloutSettings.model_validate(
                {**registry.settings.loop.rollout.model_dump(), **updates})
        except ValueError as exc:
            raise UsageError(f"the rollout options are not valid: {exc}") from None
        record = start_rollout(registry, name, version_number(version), to=to, policy=chosen,
                               actor=actor, reason=reason)
        if not json_out:
            out.print(f"[bold]{escape(name)}[/] v{record.candidate_version}: rollout "
                      f"{record.id} started in {record.stage} against v{record.holder_version} "
                      f"(audited). The model's servers carry it out; follow it with "
                      f"`driftloop models rollout {escape(name)} --status`.", highlight=False)
        if wait is not None:
            record = _follow(registry, record, wait, json_out)
        elif json_out:
            emit_json(record.__dict__)
    if wait is not None and record.stage != "promoted":
        raise CheckFailed(f"rollout {record.id} ended {record.stage}: {record.decision}"
                          if not record.active else
                          f"rollout {record.id} is still in {record.stage} after {wait:g} s")


def _follow(registry: Any, record: RolloutRecord, wait: float, json_out: bool
            ) -> RolloutRecord:
    deadline = time.monotonic() + wait
    seen = (record.stage, record.share)
    while record.active and time.monotonic() < deadline:
        time.sleep(1.0)
        record = registry.store.get_rollout(record.id)
        if (record.stage, record.share) != seen and not json_out:
            seen = (record.stage, record.share)
            out.print(f"  → {record.stage}" + (f" at {record.share:.0%}"
                                               if record.stage == "canary" else ""))
    _show(record, json_out)
    return record


def _show(record: RolloutRecord, json_out: bool) -> None:
    if json_out:
        emit_json(record.__dict__)
        return
    for line in describe(record):
        out.print(escape(line), highlight=False)
