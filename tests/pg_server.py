"""A throw-away PostgreSQL cluster for the tests: Debian's server binaries, a temp folder, loopback.

``postgres_cluster`` (session-scoped) runs ``initdb`` into a temporary folder and starts the
server with ``pg_ctl`` on a free 127.0.0.1 port, tuned for tests (no fsync: the cluster is
thrown away). ``fresh_database_url()`` creates an empty database in it for one test and returns
its SQLAlchemy URL (``postgresql+psycopg://…``). PostgreSQL refuses to run as root, so when the
tests run as root (CI) the server runs as the ``postgres`` user that Debian's package creates.

Set ``DRIFTLOOP_TEST_STORE=postgresql`` to run every test that uses ``dl_settings`` against
PostgreSQL instead of SQLite (``make test`` does this for the store, registry, serving,
monitoring, loop and governance tests). Where the binaries are missing the PostgreSQL tests
skip, except under ``DRIFTLOOP_REQUIRE_SERVICES=1`` (set by ``.ci/run``), where they fail.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

REQUIRE_SERVICES = os.environ.get("DRIFTLOOP_REQUIRE_SERVICES") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip a test that needs a missing service, or fail it when CI requires the services."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (DRIFTLOOP_REQUIRE_SERVICES=1: CI must not skip it)")
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class PostgresCluster:
    """A running throw-away cluster: where it listens and how to make databases in it."""

    bin_dir: Path
    data_dir: Path
    port: int
    user: str

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/postgres"

    def url_of(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def fresh_database_url(self) -> str:
        """Create an empty database and return its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=self.user, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # name is ours, not user input
        return self.url_of(name)

    def stop(self) -> None:
        _run_as_owner([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate",
                       "stop"], check=False)


def _as_owner(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def _run_as_owner(command: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_as_owner(command), check=check, capture_output=True, text=True)


def start_cluster(root: Path) -> PostgresCluster:
    """``initdb`` a cluster under ``root`` and start it on a free loopback port."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        skip_or_fail("PostgreSQL server binaries not found (apt-get install -y postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        skip_or_fail("psycopg is not installed (pip install 'driftloop[postgres]')")
    assert bin_dir is not None
    root.mkdir(parents=True, exist_ok=True)
    data_dir = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
    _run_as_owner([str(bin_dir / "initdb"), "-D", str(data_dir), "-U", user, "-A", "trust",
                   "-E", "UTF8", "--no-sync"])
    port = free_port()
    options = (f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} "
               "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
               "-c max_connections=300 -c shared_buffers=64MB")
    _run_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-l", str(root / "server.log"),
                   "-o", options, "-w", "start"])
    return PostgresCluster(bin_dir=bin_dir, data_dir=data_dir, port=port, user=user)


@pytest.fixture(scope="session")
def postgres_cluster():
    """A PostgreSQL server for this test session, stopped and deleted at the end."""
    root = Path(tempfile.mkdtemp(prefix="driftloop-pg-"))
    os.chmod(root, 0o755)
    cluster = start_cluster(root / "cluster")
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_cluster):
    """The URL of an empty PostgreSQL database for one test."""
    return postgres_cluster.fresh_database_url()


TEST_STORE = os.environ.get("DRIFTLOOP_TEST_STORE", "sqlite")


def store_overrides(request: pytest.FixtureRequest) -> dict[str, str]:
    """Settings overrides that put a fixture's store where this pass tests it: ``{}`` for
    SQLite (the store stays in the fixture's home), a fresh PostgreSQL database's URL under
    ``DRIFTLOOP_TEST_STORE=postgresql``."""
    if TEST_STORE != "postgresql":
        return {}
    return {"store_url": request.getfixturevalue("postgres_cluster").fresh_database_url()}
