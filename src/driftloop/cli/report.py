"""``driftloop report governance`` and ``driftloop erase``: governance of the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from driftloop.cli.output import (
    JsonFlag,
    TextFormat,
    Typer,
    emit_json,
    err,
    open_registry,
    plain,
    settings,
    version_number,
    write_document,
)
from driftloop.errors import CheckFailed

app = Typer(help="Reports on the store: governance.", no_args_is_help=True)


@app.command("governance")
def report_governance_cmd(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str | None, typer.Option(
        help="Version (default: the served alias's holder, else the newest).")] = None,
    format: Annotated[TextFormat, typer.Option("--format", help="md, html or json.")] = (
        TextFormat.md),
    output: Annotated[Path | None, typer.Option(help="Write to this file, not stdout.")] = None,
    fail_on_gap: Annotated[bool, typer.Option(
        "--fail-on-gap", help="Exit 1 when a subcategory or control has no evidence.")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Map NIST AI RMF 1.0 subcategories and ISO/IEC 42001 Annex A controls to live evidence
    in the store; list the gaps."""
    from driftloop.governance.report import governance_report

    with open_registry() as registry:
        report = governance_report(registry, name,
                                   None if version is None else version_number(version))
    if json_out or format is TextFormat.json:
        text = json.dumps(report.to_json(), indent=1) + "\n"
    else:
        text = report.to_html() if format is TextFormat.html else report.to_markdown()
    if write_document(text, output):
        c = report.counts()
        err.print(f"governance report written to {output} ({c['evidence']} with evidence, "
                  f"{c['gap']} gap(s), {c['attention']} needing attention)")
    if fail_on_gap and report.gaps:
        raise CheckFailed(f"{len(report.gaps)} subcategory(ies) or control(s) without evidence: "
                          + ", ".join(i.id for i in report.gaps))


def erase_cmd(
    subject_id: Annotated[str, typer.Option("--subject-id", help="The data subject's id.")],
    id_column: Annotated[str | None, typer.Option(
        "--id-column", help="Feature column holding the id (default governance.id_column).")
    ] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Count what would be removed; change and audit nothing.")] = False,
    actor: Annotated[str | None, typer.Option(help="Audited as this role or service id.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Erase a data subject's rows: prediction log, their feedback, the loop's snapshots.

    The audit entry holds only a salted hash of the id and the counts.
    """
    from driftloop.governance.erasure import erase_subject

    result = erase_subject(settings(), subject_id, id_column=id_column, actor=actor,
                           dry_run=dry_run)
    if json_out:
        emit_json(result.to_json())
        return
    say = plain
    verb = "would remove" if result.dry_run else "removed"
    if not result.erased:
        say(f"no stored row has {result.id_column} = that id; nothing {verb}.")
    else:
        say(f"{verb} {result.prediction_log} prediction-log row(s), {result.feedback} feedback "
            f"row(s), {sum(result.snapshots.values())} snapshot row(s)")
    for path, n in result.snapshots.items():
        if n:
            say(f"  {path}: {n}")
    if result.skipped_snapshots:
        say(f"  {len(result.skipped_snapshots)} snapshot(s) have no column "
            f"'{result.id_column}' and were left alone")
    if result.online_features:
        say(f"  {result.online_features} online feature row(s) of the subject as an entity "
            "(re-materialising brings them back while the view's source still holds them)")
    if result.shared_request_ids:
        say(f"  {result.shared_request_ids} request id(s) were shared with other rows; their "
            "feedback was removed too")
    if result.audit_seq is not None:
        say(f"audited as entry {result.audit_seq} (subject hash {result.subject_hash}; the id "
            "itself is not stored)")
