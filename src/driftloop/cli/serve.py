"""``driftloop serve`` and ``driftloop ui``."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from driftloop.cli.output import err, settings, warn


class RuntimeKind(str, Enum):
    torch = "torch"
    int8 = "int8"
    onnx = "onnx"
    onnx_int8 = "onnx_int8"
    auto = "auto"


def serve_cmd(
    model: Annotated[list[str] | None, typer.Option(
        "--model", help="Model to serve (repeat for more); default: every model with a "
        "version under the alias.")] = None,
    alias: Annotated[str | None, typer.Option(help="Alias whose version is served.")] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
    runtime: Annotated[RuntimeKind | None, typer.Option(
        help="Inference runtime for every version (default serve.runtime: auto, the runtime "
        "`models optimize --apply` recorded for the version, else torch).")] = None,
    max_batch_size: Annotated[int | None, typer.Option(
        help="Samples per batch; 1 turns batching off.")] = None,
    max_latency_ms: Annotated[float | None, typer.Option(
        help="How long a batch waits for more requests.")] = None,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="Beyond loopback with no API key, start anyway, open to anyone who "
        "reaches the port (only behind a proxy that authenticates).")] = False,
    workers: Annotated[int, typer.Option(
        help="Server processes on the port (uvicorn workers), each with its own models, "
        "batchers and log writer; about one per core.")] = 1,
) -> None:
    """Serve models over HTTP (predict, KServe V2 infer, feedback, health, metrics)."""
    from driftloop.serve.server import check_workers, serve
    from driftloop.ui import mount_dashboard

    check_workers(workers)

    flags = {"alias": alias, "host": host, "port": port, "max_batch_size": max_batch_size,
             "max_latency_ms": max_latency_ms,
             "runtime": None if runtime is None else runtime.value,
             "insecure": insecure or None}
    current = settings(serve={k: v for k, v in flags.items() if v is not None})
    cfg = current.serve
    err.print(f"serving on http://{cfg.host}:{cfg.port} (alias {cfg.alias}, runtime "
              f"{cfg.runtime}, {workers} worker{'s' if workers > 1 else ''}); docs at /docs")
    serve(current, model or None, warn=warn, mount=[mount_dashboard],  # the dashboard at /
          workers=workers, factory="driftloop.cli.serve:worker_app")


def worker_app() -> object:
    """The app of one ``driftloop serve --workers N`` worker: the dashboard mounted at /."""
    from driftloop.serve.server import worker_app as build
    from driftloop.ui import mount_dashboard

    return build(mount=[mount_dashboard])


def ui_cmd(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
) -> None:
    """Serve the dashboard alone (no model needed); `driftloop serve` also serves it at /."""
    from driftloop.ui import serve_ui

    flags = {"host": host, "port": port}
    current = settings(serve={k: v for k, v in flags.items() if v is not None})
    err.print(f"dashboard on http://{current.serve.host}:{current.serve.port}/")
    serve_ui(current, warn=warn)
