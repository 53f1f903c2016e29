"""``driftloop audit show|verify|anchor``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from driftloop.cli.output import JsonFlag, Typer, emit_json, err, open_registry, out, table
from driftloop.errors import CheckFailed

app = Typer(help="Read and verify the hash-chained audit log.", no_args_is_help=True)


@app.command("show")
def audit_show_cmd(
    subject: Annotated[str | None, typer.Option(help="Only this subject, e.g. credit:v3.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. promote.")] = None,
    limit: Annotated[int | None, typer.Option(min=0, help="Only the newest N entries.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """List audit entries, oldest first."""
    with open_registry() as registry:
        entries = registry.audit.entries(subject=subject, limit=limit, action=action)
    if json_out:
        emit_json([e.__dict__ for e in entries])
        return
    rows = table("seq", "at (UTC)", "actor", "action", "subject", "details", fold=True)
    for e in entries:
        rows.add_row(str(e.seq), f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.action, e.subject,
                     json.dumps(e.details, default=str)[:160])
    out.print(rows if entries else "no audit entries match.")


@app.command("verify")
def audit_verify_cmd(
    anchor: Annotated[
        Path | None, typer.Option(help="Anchor file from `driftloop audit anchor`.")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Recompute the hash chain and check it against an anchor — --anchor FILE, else the
    newest one kept in the artifact store — to detect a truncated tail (exit 1 if bad)."""
    from driftloop.store import Anchor
    from driftloop.store.audit_anchors import newest_anchor

    with open_registry() as registry:
        kept = Anchor.read(anchor) if anchor is not None else newest_anchor(registry.artifacts)
        report = registry.audit.verify(kept)
    if kept is None and not json_out:
        err.print("no anchor kept yet: a cut-off tail of the log cannot be seen; take one with "
                  "`driftloop audit anchor`.")
    if json_out:
        emit_json(report.__dict__)
    elif report.ok:
        out.print(f"[green]ok[/] {report.reason} head {report.head}")
    if not report.ok:
        raise CheckFailed(f"audit log verification failed at entry {report.first_bad_seq}: "
                          f"{report.reason}")


@app.command("anchor")
def audit_anchor_cmd() -> None:
    """Print the newest entry's seq and hash as JSON (keep it elsewhere for `verify --anchor`)
    and keep it in the artifact store, where `verify` and the dashboard check against it."""
    from driftloop.store.audit_anchors import keep_anchor

    with open_registry() as registry:
        emit_json(keep_anchor(registry.artifacts, registry.audit.anchor()).to_json())
