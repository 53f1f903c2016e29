"""``driftloop ui`` serves the dashboard alone, as a real process, from the store in settings
(the dashboard fixture's, which real runs filled)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from driftloop.cli import main
from driftloop.serve.server import free_port

from .conftest import BADGES, MODEL


@pytest.mark.slow  # a real process that imports torch and the server: 5-12 s
def test_ui_command_serves_the_dashboard_of_the_configured_store(dashboard, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLOOP_")}
    env["DRIFTLOOP_HOME"] = dashboard.settings.home
    env["DRIFTLOOP_STORE_URL"] = dashboard.settings.store_url
    proc = subprocess.Popen([sys.executable, "-m", "driftloop", "ui", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/v2/health/live").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "driftloop ui never answered"
            time.sleep(0.1)
        page = httpx.get(base + "/")
        assert page.status_code == 200 and "/ui/static/models.js" in page.text
        assert httpx.get(base + "/ui/api/models").status_code == 401  # keys exist here
        models = httpx.get(base + "/ui/api/models",
                           headers={"X-API-Key": dashboard.read_key}).json()["models"]
        assert {m["name"]: m["health"]["status"] for m in models} == BADGES
        chart = httpx.get(base + "/ui/static/vendor/chart.umd.min.js")
        assert chart.status_code == 200 and "Chart.js v4" in chart.text[:200]
        assert httpx.post(base + f"/v1/models/{MODEL}/predict").status_code == 404  # not served
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert f"dashboard on http://127.0.0.1:{port}/" in err


def test_ui_help_lists_host_and_port(capsys):
    assert main(["ui", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--host" in out and "--port" in out and "dashboard" in out
