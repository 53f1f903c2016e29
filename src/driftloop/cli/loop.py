"""``driftloop loop run-once|watch`` and ``driftloop demo``: the closed loop."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from driftloop.cli.data import print_check
from driftloop.cli.output import JsonFlag, Typer, emit_json, out, say_step, settings
from driftloop.cli.train import print_training
from driftloop.errors import UsageError

app = Typer(help="The closed loop: monitor, retrain on a trigger, gate, promote.",
            no_args_is_help=True)


@app.command("run-once")
def loop_run_once_cmd(
    model: Annotated[str, typer.Option("--model", help="Registered model name.")],
    json_out: JsonFlag = False,
) -> None:
    """Monitor, evaluate the triggers, and when one fires: retrain, compare, gate, promote."""
    from driftloop.loop.runner import run_once

    result = run_once(model, settings=settings(), say=None if json_out else say_step)
    if json_out:
        emit_json(result.to_json())


@app.command("watch")
def loop_watch_cmd(
    model: Annotated[str, typer.Option("--model", help="Registered model name.")],
    interval: Annotated[str, typer.Option(help="Time between iterations: 60s, 5m, 1h.")] = "60s",
    iterations: Annotated[
        int | None, typer.Option(help="Stop after this many iterations (default: never).")
    ] = None,
) -> None:
    """Run the loop every INTERVAL until SIGINT/SIGTERM (stops cleanly between steps)."""
    from driftloop.loop.runner import watch
    from driftloop.monitor.windows import WindowSpec

    spec = WindowSpec.parse(interval)
    if spec.seconds is None:
        raise UsageError(f"--interval {interval!r} must be a duration such as 60s, 5m or 1h.")
    done = watch(model, interval_s=spec.seconds, settings=settings(), say=say_step,
                 max_iterations=iterations)
    out.print(f"stopped after {done} iteration(s)")


def demo_cmd(
    folder: Annotated[Path, typer.Option(help="Where the demo writes its data and report.")] = Path(
        "driftloop-demo"
    ),
    rows: Annotated[int, typer.Option(min=500, help="Pre-change rows to train on.")] = 6000,
    traffic: Annotated[int, typer.Option(min=1000, help="Post-change rows sent.")] = 4000,
    workers: Annotated[int, typer.Option(min=1, help="Data-parallel processes.")] = 2,
    json_out: JsonFlag = False,
) -> None:
    """The whole closed loop: train data-parallel, serve, send drifting traffic, monitor,
    retrain, gate, promote, hot swap; writes FOLDER/report.html and tells the story."""
    from driftloop.loop.demo import run_demo

    def say(step: str, payload: Any) -> None:
        if json_out:
            return
        if step == "check-done":
            print_check(payload)
        else:
            out.print(f"[bold cyan]▸ {step}[/] {escape(str(payload))}")

    result = run_demo(folder, rows=rows, traffic_rows=traffic, workers=workers,
                      settings=settings(), progress=not json_out, on_step=say)
    if json_out:
        emit_json(result.to_json())
        return
    print_training(result.training)
    out.print("[bold cyan]▸ the story[/]")
    for line in result.story:
        out.print(f"  {escape(line)}")
    out.print("[bold cyan]▸ where everything went[/]")
    out.print(f"  report     {result.report_path}")
    out.print(f"  data       {result.data_path}")
    out.print(f"  store      {result.store_url}")
    home = Path(result.folder) / ".driftloop"
    out.print(f"  next: DRIFTLOOP_HOME={home} driftloop models lineage "
              f"{result.training.model}")
