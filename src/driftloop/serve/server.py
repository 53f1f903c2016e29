"""Run the app on uvicorn: :func:`serve` for ``driftloop serve`` (one process, or ``--workers
N`` uvicorn worker processes built by :func:`worker_app`), :class:`BackgroundServer` for tests
and benchmarks (a real server on a loopback port, in a thread).

Binding anywhere but loopback fails closed: with no active API key the server refuses to start
(nobody could call it, and an open server there would serve anyone), unless ``--insecure`` says
a proxy in front authenticates — then it starts open and warns.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

import uvicorn

from driftloop.config import Settings
from driftloop.errors import UsageError
from driftloop.http import is_loopback
from driftloop.registry import Registry
from driftloop.serve.app import Mount, create_app

logger = logging.getLogger("driftloop.serve")


def served_models(registry: Registry, alias: str, models: Sequence[str] | None) -> list[str]:
    """The models to serve: those named, or every model with a version under ``alias``."""
    if models:
        return list(models)
    names = sorted({a.model_name for a in registry.aliases() if a.alias == alias})
    if not names:
        raise UsageError(f"no model has a version under alias '{alias}'. Promote one "
                         f"(`driftloop models promote NAME VERSION --to {alias}`) or name the "
                         "model with --model.")
    return names


def exposure_warning(registry: Registry, host: str, *, insecure: bool = False) -> str | None:
    """The warning to print when ``host`` is not loopback and no API key exists (``insecure``),
    or :class:`UsageError` when that server would start without ``insecure``."""
    if is_loopback(host) or registry.store.list_api_keys():
        return None
    if not insecure:
        raise UsageError(
            f"refusing to serve on {host} with no API key: the server fails closed beyond "
            "loopback. Create a key first (`driftloop keys create NAME --role predict`), bind "
            "to 127.0.0.1, or pass --insecure if a proxy in front of it authenticates (then "
            "predictions and the dashboard are open to whoever reaches the port)."
        )
    return (f"--insecure: serving on {host} with no API key; anyone who reaches this port can "
            "predict and read the dashboard until the first key is created "
            "(`driftloop keys create NAME --role predict`).")


WORKER_SPEC_ENV = "_DRIFTLOOP_SERVE_WORKER"
"""The environment variable that hands each uvicorn worker its settings and models (JSON);
not ``DRIFTLOOP_*``: the workers' settings come from it alone, not from the environment."""


def check_workers(workers: int) -> int:
    """``workers`` when it is a usable number of server processes, else a :class:`UsageError`.

    Examples
    --------
    >>> check_workers(2)
    2
    >>> check_workers(0)
    Traceback (most recent call last):
    ...
    driftloop.errors.UsageError: --workers must be at least 1 (one server process per worker), got 0.
    """  # noqa: E501
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise UsageError(f"--workers must be at least 1 (one server process per worker), got "
                         f"{workers!r}.")
    return workers


def serve(settings: Settings, models: Sequence[str] | None = None, *,
          warn: Any = None, mount: Sequence[Mount] = (), workers: int = 1,
          factory: str | None = None) -> None:
    """Serve until interrupted (``driftloop serve``); ``mount`` as in
    :func:`~driftloop.serve.app.create_app` (the CLI mounts the dashboard).

    ``workers`` > 1 runs that many uvicorn worker processes on one port, each with its own
    models, batchers, prediction-log writer and poll (an admin reload reaches them all through
    the store, as it reaches replicas). They are started from ``factory``, the import path
    (``"package.module:function"``) of a function that calls :func:`worker_app` with the same
    ``mount`` (the CLI's is ``driftloop.cli.serve:worker_app``)."""
    check_workers(workers)
    if workers > 1 and factory is None:
        raise UsageError("serving with several workers needs the import path of an app factory "
                         "(factory='package.module:function', see driftloop.serve.server)")
    cfg = settings.serve
    registry = Registry.open(settings)
    names = served_models(registry, cfg.alias, models)
    message = exposure_warning(registry, cfg.host, insecure=cfg.insecure)
    if message is not None:
        (warn or logger.warning)(message)
    run = {"host": cfg.host, "port": cfg.port, "log_level": "warning", "access_log": False}
    if workers == 1:
        app = create_app(registry, names, cfg, mount=mount)
        freeze_startup_heap()
        uvicorn.run(app, **run)
        return
    registry.close()  # each worker opens its own
    os.environ[WORKER_SPEC_ENV] = json.dumps({"settings": settings.model_dump(mode="json"),
                                              "models": names})
    uvicorn.run(factory, factory=True, workers=workers, **run)


def worker_app(mount: Sequence[Mount] = ()) -> Any:
    """The app of one uvicorn worker of :func:`serve`, from :data:`WORKER_SPEC_ENV`.

    Examples
    --------
    >>> import json, os, tempfile
    >>> home = tempfile.mkdtemp()
    >>> settings = Settings.load(overrides={"home": home}, environ={}, cwd=home)
    >>> os.environ[WORKER_SPEC_ENV] = json.dumps({"settings": settings.model_dump(mode="json"),
    ...                                           "models": ["m"]})
    >>> sorted(worker_app().state.slots)
    ['m']
    >>> import gc; gc.unfreeze(); del os.environ[WORKER_SPEC_ENV]
    """
    spec = os.environ.get(WORKER_SPEC_ENV)
    if spec is None:
        raise UsageError(f"{WORKER_SPEC_ENV} is not set: worker_app runs inside the workers "
                         "that serve(..., workers=N) starts.")
    loaded = json.loads(spec)
    settings = Settings(**loaded["settings"])
    if settings.serve.instance:  # one name for N workers: each adds its pid to tell them apart
        settings.serve.instance = f"{settings.serve.instance[:50]}:{os.getpid()}"
    app = create_app(Registry.open(settings), loaded["models"], settings.serve, mount=mount,
                     load_first=True)  # a worker accepts once it can answer (shared port)
    freeze_startup_heap()
    return app


def freeze_startup_heap() -> None:
    """Move every object alive now out of the cyclic garbage collector's reach.

    A server's start-up heap (torch, pandas, FastAPI, the app: ~350k objects) lives as long as
    the process, yet every full collection walks it, and under load the per-request garbage
    triggers one every second or so: 150-250 ms pauses that made the p99 latency
    (``benchmarks/RESULTS.md``, serving). :func:`gc.freeze` (after a collection, so no garbage
    is kept) leaves full collections only the objects made since: ~2 ms. Called by
    :func:`serve`, the process entry point, not by the app factory (an app embedded in another
    process should not change that process's collector).

    Examples
    --------
    >>> import gc
    >>> freeze_startup_heap()
    >>> gc.get_freeze_count() > 0
    True
    >>> gc.unfreeze()  # give this (test) process its collector back
    """
    gc.collect()
    gc.freeze()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class BackgroundServer:
    """A uvicorn server for ``app`` in a daemon thread on a free loopback port.

    Use as a context manager; ``url`` is the base URL once started.
    """

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int | None = None,
                 timeout_s: float = 30.0) -> None:
        self.host, self.port = host, port or free_port(host)
        config = uvicorn.Config(app, host=self.host, port=self.port, log_level="warning",
                                access_log=False, lifespan="on", timeout_keep_alive=30)
        self.server = uvicorn.Server(config)
        self.timeout_s = timeout_s
        self._thread = threading.Thread(target=self.server.run, name="driftloop-uvicorn",
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + self.timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> BackgroundServer:
        """Wait until ``/v2/health/ready`` answers 200 (every model loaded and warmed)."""
        import httpx

        deadline = time.monotonic() + timeout_s
        while httpx.get(self.url + "/v2/health/ready").status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server on {self.url} did not become ready within "
                                   f"{timeout_s:.0f} s")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(self.timeout_s)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["WORKER_SPEC_ENV", "BackgroundServer", "check_workers", "exposure_warning", "free_port",
           "freeze_startup_heap", "serve", "served_models", "worker_app"]
