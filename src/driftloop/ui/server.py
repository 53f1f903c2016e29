"""``driftloop ui``: the dashboard alone, without serving a model.

``driftloop serve`` mounts the same dashboard next to the prediction endpoints; ``driftloop ui``
is for a machine that only looks at the store (an analyst's laptop, a second host reading the
same PostgreSQL store).

Examples
--------
>>> import tempfile
>>> from driftloop.config import Settings
>>> from driftloop.registry import Registry
>>> home = tempfile.mkdtemp()
>>> app = create_ui_app(Registry.open(Settings.load(overrides={"home": home}, environ={},
...                                                 cwd=home)))
>>> str(app.url_path_for("dashboard-static", path="dashboard.js"))
'/ui/static/dashboard.js'
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from driftloop.config import Settings
from driftloop.http.exposure import exposure_warning as http_exposure_warning
from driftloop.registry import Registry
from driftloop.ui.router import mount_dashboard

logger = logging.getLogger("driftloop.ui")


def create_ui_app(registry: Registry) -> FastAPI:
    """An app with the dashboard and ``/v2/health/live`` only."""
    app = FastAPI(title="driftloop dashboard", version="1",
                  description="Models, monitoring, the loop and the audit log at a glance.")

    @app.get("/v2/health/live", tags=["health"])
    def live() -> dict[str, bool]:
        """The process answers."""
        return {"live": True}

    return mount_dashboard(app, registry)


def exposure_warning(host: str) -> str | None:
    """The note to print when the dashboard binds beyond loopback (where it fails closed).

    >>> exposure_warning("127.0.0.1") is None, exposure_warning("0.0.0.0")[:40]
    (True, 'the dashboard on 0.0.0.0 needs an API ke')
    """
    return http_exposure_warning(
        host, f"the dashboard on {host} needs an API key of role read or admin for every "
        "read (beyond loopback it is never open); create one with `driftloop keys create "
        "NAME --role read`, and serve it over HTTPS (a proxy) so the key is not sent in "
        "clear.")


def serve_ui(settings: Settings, *, warn: Callable[[str], object] | None = None) -> None:
    """Serve the dashboard on ``settings.serve.host``:``port`` until interrupted."""
    cfg = settings.serve
    message = exposure_warning(cfg.host)
    if message is not None:
        (warn or logger.warning)(message)
    app = create_ui_app(Registry.open(settings))
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning", access_log=False)


__all__ = ["create_ui_app", "exposure_warning", "serve_ui"]
