"""``driftloop ingest``: import an edge package's prediction log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from driftloop.cli.output import JsonFlag, emit_json, open_registry, out


def ingest_cmd(
    log_dir: Annotated[Path, typer.Argument(help="The edge package's log folder (--log-dir).")],
    model: Annotated[str, typer.Option("--model", help="The model the edge package serves.")],
    actor: Annotated[str | None, typer.Option(help="Audited as this role or service id.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Import an edge package's prediction log, so monitor and the loop see edge predictions.

    Idempotent: rows already imported (same request id) are skipped.
    """
    from driftloop.serve.ingest import ingest_edge_log

    with open_registry() as registry:
        result = ingest_edge_log(registry, log_dir, model, actor=actor)
    if json_out:
        emit_json(result.to_json())
        return
    out.print(f"{model}: {result.added} new row(s) imported from {len(result.files)} file(s) "
              f"({result.rows - result.added} already held)")
    for f in result.files:
        torn = ", torn last line skipped" if f.torn else ""
        out.print(f"  {f.name}: {f.rows} row(s), {f.added} new{torn}")
    if result.dropped_files:
        out.print(f"  the device dropped {result.dropped_files} old file(s) "
                  f"({result.dropped_rows} row(s)) to stay within its log bounds")
