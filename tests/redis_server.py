"""A throw-away Redis server for the tests: Debian's ``redis-server`` on a free loopback port.

``redis_server`` (session-scoped) starts ``redis-server`` bound to 127.0.0.1 with persistence
off (``--save "" --appendonly no``) in a temporary folder, waits until it answers PING, and
stops it at the end. ``redis_url`` (per test) is a URL of that server after ``FLUSHALL``, so
every test starts from an empty keyspace. Nothing is mocked: every command goes over TCP.

Where ``redis-server`` or the ``redis`` package is missing the Redis tests skip, except under
``DRIFTLOOP_REQUIRE_SERVICES=1`` (set by ``.ci/run``), where they fail.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pg_server import free_port, skip_or_fail

_START_S = 20.0


@dataclass
class RedisServer:
    """A running redis-server: its port and process."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def _start(folder: Path) -> RedisServer:
    binary = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
    if binary is None:
        skip_or_fail("redis-server not found (apt-get install -y redis-server)")
    try:
        import redis
    except ImportError:
        skip_or_fail("the redis package is not installed (pip install 'driftloop[redis]')")
    assert binary is not None
    # redis-server needs an explicit port; a free one can be taken between the probe and the
    # bind, so try a few
    for _ in range(5):
        port = free_port()
        process = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", str(folder), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1.0)
        deadline = time.monotonic() + _START_S
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if client.ping():
                    client.close()
                    return RedisServer(port, process)
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        process.kill()
        process.wait()
    pytest.fail("redis-server did not answer PING on a loopback port")
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server for this test session, stopped at the end."""
    folder = Path(tempfile.mkdtemp(prefix="driftloop-redis-"))
    server = _start(folder)
    try:
        yield server
    finally:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of the session's Redis, emptied for this test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url
