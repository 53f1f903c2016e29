"""``driftloop features …``: feature views and their online table."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

import typer

from driftloop.cli.output import JsonFlag, Typer, emit_json, open_registry, out, settings, table
from driftloop.errors import UsageError

app = Typer(help="Feature views: register, join as of a time, materialise for serving.",
            no_args_is_help=True)


def since_time(text: str | None) -> datetime | None:
    """The ``--since`` time: ISO 8601, naive times are UTC.

    >>> since_time("2024-01-31T12:00:00").isoformat(), since_time(None)
    ('2024-01-31T12:00:00+00:00', None)
    """
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {text!r} is not an ISO 8601 time; write e.g. "
                         "2024-01-31 or 2024-01-31T12:00:00Z.") from None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


@app.command("materialize")
def features_materialize_cmd(
    view: Annotated[list[str] | None, typer.Option(
        "--view", help="A view to materialise (repeat for several; default: every view).")] = None,
    since: Annotated[str | None, typer.Option(
        help="Read rows created (or, without a created-time column, of event time) from this "
        "ISO time on, instead of from the last run's end.")] = None,
    actor: Annotated[str | None, typer.Option(help="Audited as this role or service id.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Write each entity's latest feature values into the online table (incremental,
    idempotent), for serving to look up by entity key."""
    from driftloop.features.materialize import materialize
    from driftloop.store.secrets import pii_key

    current = settings()
    start = since_time(since)
    with open_registry(current) as registry:
        results = materialize(registry.store, current, view, since=start,
                              actor=actor or registry.actor,
                              key=pii_key(current.serve.pii_hash_key, registry.artifacts))
    if json_out:
        emit_json([r.to_json() for r in results])
        return
    if not results:
        out.print("no feature views are declared (features.views in driftloop.yaml).")
        return
    shown = table("view", "version", "since", "until", "read", "written", "into",
                  right=("version", "read", "written"))
    for r in results:
        shown.add_row(r.view, str(r.version), "start" if r.since is None else r.since.isoformat(),
                      r.until.isoformat(), str(r.rows_read), str(r.rows_written), r.target)
    out.print(shown)
