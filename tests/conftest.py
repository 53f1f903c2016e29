"""Fixtures shared by every test folder.

``DRIFTLOOP_TEST_STORE=postgresql`` points every ``dl_settings`` store at a fresh database in a
throw-away PostgreSQL cluster (see ``pg_server.py``); unset, the store is SQLite in the test's
own folder. ``s3_url`` is a fresh prefix on a loopback ``moto_server`` (see ``s3_server.py``).
``haproxy_balancer`` (``lb_server.py``) starts Debian's haproxy in front of test servers.
``redis_url`` is an emptied loopback ``redis-server`` (see ``redis_server.py``).
"""

from __future__ import annotations

import os

import pytest

from driftloop.config import Settings
from lb_server import haproxy_balancer  # noqa: F401
from pg_server import TEST_STORE, postgres_cluster, postgres_url, store_overrides  # noqa: F401
from redis_server import redis_server, redis_url  # noqa: F401
from s3_server import s3_server, s3_url  # noqa: F401


@pytest.fixture
def store_url(tmp_path, request) -> str:
    """A fresh store URL of this pass's database: an SQLite file, or a PostgreSQL database."""
    return store_overrides(request).get("store_url", f"sqlite:///{tmp_path / 'store' / 'dl.db'}")


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store_url(tmp_path, request) -> str:
    """A fresh store URL on each database in turn: for the tests of what concurrent writers do,
    which run on both in every pass."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_cluster").fresh_database_url()
    return f"sqlite:///{tmp_path / 'store' / 'dl.db'}"


@pytest.fixture
def store_backend() -> str:
    """The database the tests' stores use: 'sqlite' or 'postgresql'."""
    return TEST_STORE


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A fresh current folder with no DRIFTLOOP_* variable set: what a CLI test runs in."""
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("DRIFTLOOP_")]:
        monkeypatch.delenv(key)
    return tmp_path


@pytest.fixture
def dl_settings(tmp_path, request):
    """Settings whose store, artifacts and runs live in a fresh folder, ignoring the environment."""
    home = tmp_path / "home"
    overrides: dict = {"home": str(home), "train": {"patience": 100}, **store_overrides(request)}
    return Settings.load(overrides=overrides, environ={}, cwd=tmp_path)
