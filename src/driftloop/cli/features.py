"""``driftloop features apply|list|show|retrieve|materialize``: registered feature views,
point-in-time retrieval and the online table. One command per function, so that more commands
merge in cleanly."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from driftloop.cli.output import (
    JsonFlag,
    Typer,
    emit_json,
    open_registry,
    out,
    plain,
    settings,
    table,
)
from driftloop.errors import UsageError

if TYPE_CHECKING:
    from driftloop.store import FeatureViewRecord

app = Typer(help="Feature views: register them, list them, join them as of each row's time, "
            "materialise them for serving.",
            no_args_is_help=True)


def _record_json(record: FeatureViewRecord) -> dict[str, Any]:
    return {"name": record.name, "version": record.version, "spec_hash": record.spec_hash,
            "actor": record.actor, "created_at": record.created_at.isoformat(),
            "spec": record.spec}


@app.command("apply")
def features_apply_cmd(
    actor: Annotated[str | None, typer.Option(help="Audited as this role or service id.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Register every declared view: a changed declaration gets the next version (audited)."""
    from driftloop.features.registry import apply_views

    with open_registry() as registry:
        applied = apply_views(registry.store, registry.settings, actor=actor or registry.actor)
    if json_out:
        emit_json([{**_record_json(a.record), "created": a.created} for a in applied])
        return
    if not applied:
        out.print("no feature views declared: add features.entities and features.views to "
                  "driftloop.yaml (or features.yaml).")
    for a in applied:
        state = "registered" if a.created else "unchanged"
        plain(f"{a.record.name} v{a.record.version}  {state}  sha256 {a.record.spec_hash[:12]}")


@app.command("list")
def features_list_cmd(json_out: JsonFlag = False) -> None:
    """List registered views (latest version of each)."""
    with open_registry() as registry:
        records = registry.store.feature_views()
    if json_out:
        emit_json([_record_json(r) for r in records])
        return
    if not records:
        out.print("no feature views registered: run `driftloop features apply`.")
        return
    rows = table("view", "version", "entity", "features", "ttl", "sha256", right=("version",))
    for r in records:
        view, entity = r.spec["view"], r.spec["entity"]
        rows.add_row(r.name, str(r.version), f"{entity['name']} ({', '.join(entity['keys'])})",
                     str(len(view["features"])), view.get("ttl") or "-", r.spec_hash[:12])
    out.print(rows)


@app.command("show")
def features_show_cmd(
    view: Annotated[str, typer.Argument(help="The view's name.")],
    version: Annotated[int | None, typer.Option(help="A version (default: the latest).")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Show one registered view version: its source, keys, times, TTL and features."""
    with open_registry() as registry:
        record = registry.store.feature_view(view, version)
    if json_out:
        emit_json(_record_json(record))
        return
    spec, entity = record.spec["view"], record.spec["entity"]
    plain(f"view {record.name} v{record.version}  (sha256 {record.spec_hash})")
    plain(f"  registered  {record.created_at:%Y-%m-%d %H:%M} by {record.actor}")
    source = spec.get("source") or (f"table {spec['table']} of "
                                     f"{spec.get('database_url') or 'the store database'}")
    plain(f"  source      {source}")
    plain(f"  entity      {entity['name']} keyed by {', '.join(entity['keys'])}")
    plain(f"  event time  {spec['event_time']}")
    plain(f"  created     {spec.get('created_time') or '- (no ingestion time column)'}")
    plain(f"  ttl         {spec.get('ttl') or '- (values never expire)'}")
    plain(f"  features    {', '.join(spec['features'])}")


@app.command("retrieve")
def features_retrieve_cmd(
    rows: Annotated[Path, typer.Argument(help="The entity table (CSV/Parquet): entity keys, "
                                              "a time column and anything else.")],
    views: Annotated[str, typer.Option("--views", help="VIEW[,VIEW...] to join.")],
    time_column: Annotated[str, typer.Option("--time-column", help="The column holding each "
                                             "row's time.")],
    output: Annotated[Path, typer.Option("--out", help="Where to write the joined table "
                                         "(.parquet or .csv).")],
    actor: Annotated[str | None, typer.Option(help="Audited as this role or service id.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Join views to ROWS as of each row's time (no value known later ever leaks in)."""
    from driftloop.data.read import read_table
    from driftloop.features.retrieve import historical_features, parse_view_names, write_table

    names = parse_view_names(views)
    with open_registry() as registry:
        table_ = read_table(rows).frame
        got = historical_features(registry.store, registry.settings, table_, names,
                                  time_column=time_column, actor=actor or registry.actor)
    written = write_table(got.result.frame, output)
    if json_out:
        emit_json({"out": str(written), "rows": len(got.result.frame),
                   "views": [u.to_json() for u in got.uses], "missing": got.result.missing})
        return
    plain(f"wrote {len(got.result.frame)} rows to {written}")
    for use in got.uses:
        counts = got.result.missing[use.view]
        gaps = ", ".join(f"{n} {c}" for n, c in counts.items() if c) or "none"
        plain(f"  {use.view} v{use.version}: {len(use.features)} features, missing: {gaps}")


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
