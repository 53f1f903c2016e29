"""Who may read the dashboard when nothing is trained yet (issue 15): open on loopback until the
first key is created, closed for good afterwards (revoking every key does not reopen it), and
closed from the start when bound beyond loopback."""

from __future__ import annotations

import httpx
import pytest

from driftloop.config import Settings
from driftloop.registry import Registry
from driftloop.serve.auth import create_key, revoke_key
from driftloop.serve.server import BackgroundServer
from driftloop.ui.server import create_ui_app


def _settings(tmp_path, host: str = "127.0.0.1") -> Settings:
    return Settings.load(overrides={"home": str(tmp_path / "home"),
                                    "serve": {"host": host, "key_cache_s": 0.0}},
                         environ={}, cwd=tmp_path)


def test_open_on_loopback_until_a_key_exists_and_revoking_it_does_not_reopen(tmp_path):
    registry = Registry.open(_settings(tmp_path))
    with BackgroundServer(create_ui_app(registry)) as server:
        assert httpx.get(server.url + "/ui/api/models").status_code == 200
        key = create_key(registry.store, registry.audit, "dash", "read", actor="test")
        assert httpx.get(server.url + "/ui/api/models").status_code == 401
        assert httpx.get(server.url + "/ui/api/models",
                         headers={"X-API-Key": key.secret}).status_code == 200
        revoke_key(registry.store, registry.audit, "dash", actor="test")
        assert httpx.get(server.url + "/ui/api/models").status_code == 401  # still closed
        assert httpx.get(server.url + "/ui/api/models",
                         headers={"X-API-Key": key.secret}).status_code == 401
    registry.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10"])
def test_bound_beyond_loopback_it_is_closed_without_any_key(tmp_path, host):
    # the app is what decides; the test reaches it on loopback but it was built for `host`
    registry = Registry.open(_settings(tmp_path, host))
    with BackgroundServer(create_ui_app(registry)) as server:
        answer = httpx.get(server.url + "/ui/api/models")
        assert answer.status_code == 401 and "role read" in answer.json()["error"]["message"]
    registry.close()
