"""The dashboard: models, versions, monitoring, the loop, rollouts and the audit log, in a
browser.

``driftloop serve`` serves it at ``/`` next to the prediction endpoints; ``driftloop ui`` serves
it alone. Pages draw JSON from the store with a charting library vendored into the package
(``static/vendor/``), so it works with no internet access. See ``docs/dashboard.md``.
"""

from driftloop.ui.health import Health, health
from driftloop.ui.router import create_router, mount_dashboard
from driftloop.ui.server import create_ui_app, serve_ui

__all__ = ["Health", "create_router", "create_ui_app", "health", "mount_dashboard", "serve_ui"]
