"""``driftloop …``: a thin shell over the public functions of each stage; no logic lives here.

Each command module parses a group's arguments, calls the stage and prints through
:mod:`driftloop.cli.output`; this module puts the commands together in ``--help`` order and
runs them. Heavy stage modules (torch, the server) are imported inside the commands, so
``driftloop --help`` stays quick.

Exit codes: 0 ok, 1 a check failed, 2 bad input or usage.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from driftloop import __version__
from driftloop.cli import (
    audit,
    data,
    features,
    ingest,
    keys,
    loop,
    models,
    monitor,
    report,
    serve,
    train,
)
from driftloop.cli.output import Typer, exit_status, out, report_error
from driftloop.errors import DriftloopError

app = Typer(
    name="driftloop",
    help="Train PyTorch models data-parallel and keep them healthy after deployment.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"driftloop {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version_callback, is_eager=True)
    ] = False,
) -> None:
    """Train PyTorch models data-parallel and keep them healthy after deployment."""


for _name, _command in (
    ("train", train.train_cmd), ("distill", train.distill_cmd), ("worker", train.worker_cmd),
    ("evaluate", train.evaluate_cmd), ("drift", monitor.drift_cmd),
    ("demo", loop.demo_cmd), ("serve", serve.serve_cmd), ("ui", serve.ui_cmd),
    ("monitor", monitor.monitor_cmd), ("ingest", ingest.ingest_cmd),
    ("erase", report.erase_cmd),
):
    app.command(_name)(_command)

for _name, _group in (
    ("data", data.app), ("models", models.app), ("audit", audit.app), ("keys", keys.app),
    ("loop", loop.app), ("report", report.app), ("features", features.app),
):
    app.add_typer(_group, name=_name)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the CLI and turn driftloop's errors into messages and exit codes.

    Usage errors of the command line itself (unknown flag, missing argument) are reported by
    typer, which exits 2.
    """
    # webhook retries are reported with each alert's deliveries; stamina's own warning per
    # retry would only repeat them on stderr
    logging.getLogger("stamina").setLevel(logging.ERROR)
    try:
        app(args=argv)
    except DriftloopError as exc:
        return report_error(exc)
    except SystemExit as exc:
        return exit_status(exc)
    return 0


__all__ = ["app", "main"]
