"""Fixtures shared by every test folder.

``DRIFTLOOP_TEST_STORE=postgresql`` points every ``dl_settings`` store at a fresh database in a
throw-away PostgreSQL cluster (see ``pg_server.py``); unset, the store is SQLite in the test's
own folder.
"""

from __future__ import annotations

import os

import pytest

from driftloop.config import Settings
from pg_server import postgres_cluster, postgres_url  # noqa: F401  (fixtures)

TEST_STORE = os.environ.get("DRIFTLOOP_TEST_STORE", "sqlite")


@pytest.fixture
def store_backend() -> str:
    """The database the tests' stores use: 'sqlite' or 'postgresql'."""
    return TEST_STORE


@pytest.fixture
def dl_settings(tmp_path, request):
    """Settings whose store, artifacts and runs live in a fresh folder, ignoring the environment."""
    home = tmp_path / "home"
    overrides: dict = {"home": str(home), "train": {"patience": 100}}
    if TEST_STORE == "postgresql":
        overrides["store_url"] = request.getfixturevalue("postgres_cluster").fresh_database_url()
    return Settings.load(overrides=overrides, environ={}, cwd=tmp_path)
