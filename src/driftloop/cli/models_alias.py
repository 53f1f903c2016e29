"""``driftloop models promote|rollback|deactivate|gate``: alias moves and their gates.

The ``models`` group itself and the order of its commands are in :mod:`driftloop.cli.models`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from driftloop.cli.output import JsonFlag, emit_json, open_registry, out, plain, version_number
from driftloop.errors import CheckFailed


def models_promote_cmd(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Version to promote (3 or v3).")],
    to: Annotated[str, typer.Option("--to", help="Alias, e.g. production or staging.")],
    reason: Annotated[str | None, typer.Option(help="Why (audited; no personal data).")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Promote despite failed gates (needs --reason).")
    ] = False,
    actor: Annotated[
        str | None, typer.Option(help="Audited as this role or service id.")] = None,
    data: Annotated[
        Path | None, typer.Option(help="Evaluate candidate and holder on this data first.")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Point an alias at a version if every promotion gate passes (exit 1 when refused)."""
    from driftloop.registry import GateRefused

    try:
        with open_registry() as registry:
            result = registry.promote(name, version_number(version), to=to, reason=reason,
                                      actor=actor, force=force, data=data)
    except GateRefused as exc:
        if json_out:
            emit_json({"moved": False, "forced": False, "move": None,
                       "gates": exc.report.to_json()})
        raise
    if json_out:
        emit_json(result.to_json())
        return
    plain(result.gates.summary())
    if result.move is None:
        out.print(f"{name} v{result.gates.version} already holds {to}; nothing moved.")
        return
    m = result.move
    before = f"v{m.from_version}" if m.from_version is not None else "nobody"
    note = " [yellow](forced: failed gates overridden, audited)[/]" if result.forced else ""
    out.print(f"[bold]{escape(name)}@{m.alias}[/]: {before} → v{m.to_version} (audit entry "
              f"{m.audit_seq}){note}")


def models_rollback_cmd(
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Option("--alias", help="Alias to roll back.")],
    reason: Annotated[str | None, typer.Option(help="Why (audited; no personal data).")] = None,
    actor: Annotated[
        str | None, typer.Option(help="Audited as this role or service id.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Point an alias back at the version that held it before the current one."""
    with open_registry() as registry:
        move = registry.rollback(name, alias, reason=reason, actor=actor)
    if json_out:
        emit_json(move.__dict__)
        return
    out.print(f"[bold]{escape(name)}@{move.alias}[/]: v{move.from_version} → v{move.to_version} "
              f"(rolled back; audit entry {move.audit_seq})")


def models_deactivate_cmd(
    name: Annotated[str, typer.Argument(help="Model name.")],
    reason: Annotated[str, typer.Option(help="Why it is taken out of service (audited; no "
                                         "personal data).")],
    alias: Annotated[str, typer.Option("--alias", help="Alias to remove.")] = "production",
    actor: Annotated[
        str | None, typer.Option(help="Audited as this role or service id.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Take a model out of service: remove its alias so servers answer 503 (audited).

    `driftloop models promote NAME VERSION --to ALIAS` restores it (gated).
    """
    from driftloop.registry.aliases import deactivate

    with open_registry() as registry:
        move = deactivate(registry, name, alias, reason=reason, actor=actor)
    if json_out:
        emit_json(move.__dict__)
        return
    out.print(f"[bold]{escape(name)}@{move.alias}[/]: v{move.to_version} → nothing (deactivated; "
              f"audit entry {move.audit_seq}). Servers answer 503 from their next alias check; "
              f"restore with `driftloop models promote {escape(name)} VERSION --to "
              f"{move.alias}`.", highlight=False)


def models_gate_cmd(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Candidate version (3 or v3).")],
    to: Annotated[str, typer.Option("--to", help="Alias it would be promoted to.")],
    data: Annotated[
        Path | None, typer.Option(help="Evaluate candidate and holder on this data first.")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Run the promotion gates without promoting (exit 1 when one fails), e.g. in CI."""
    with open_registry() as registry:
        report = registry.gate(name, version_number(version), to=to, data=data)
    if json_out:
        emit_json(report.to_json())
    else:
        plain(report.summary())
    if not report.passed:
        raise CheckFailed(f"{len(report.failed)} gate(s) failed: "
                          + ", ".join(r.name for r in report.failed))
