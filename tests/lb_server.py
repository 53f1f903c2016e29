"""A real load balancer for the tests: Debian's ``haproxy`` on loopback, in front of servers
the test started.

``haproxy_balancer`` (function-scoped) is a factory: ``haproxy_balancer([(host, port), ...])``
writes a config (one loopback frontend on a free port, the given servers as one round-robin
backend, health checks ``GET /v2/health/ready``, ``retries 3``, ``option redispatch``, short
timeouts), checks it with ``haproxy -c``, starts ``haproxy -f CFG -db`` (foreground) and
returns a :class:`Balancer`; every balancer is stopped at the end of the test. Where haproxy
is missing the test skips, except under ``DRIFTLOOP_REQUIRE_SERVICES=1`` (set by ``.ci/run``,
which installs it), where it fails.

The config written is the one ``docs/scaling-out.md`` shows (:func:`haproxy_config`).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from pg_server import free_port, skip_or_fail


def haproxy_config(port: int, backends: Sequence[tuple[str, int]], *,
                   check_ms: int = 200) -> str:
    """The haproxy config: ``port`` on 127.0.0.1 balancing over ``backends``.

    Examples
    --------
    >>> print(haproxy_config(8080, [("127.0.0.1", 8001)]).splitlines()[-1].strip())
    server r0 127.0.0.1:8001 check
    """
    servers = "\n".join(f"    server r{i} {host}:{p} check"
                        for i, (host, p) in enumerate(backends))
    return f"""global
    maxconn 512

defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s
    retries 3
    option redispatch
    retry-on conn-failure empty-response response-timeout

frontend driftloop
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /v2/health/ready
    default-server inter {check_ms}ms fall 2 rise 1
{servers}
"""


@dataclass
class Balancer:
    """A running haproxy: its URL, config file and process."""

    url: str
    config: Path
    process: subprocess.Popen[bytes]

    def wait_up(self, timeout_s: float = 30.0) -> Balancer:
        """Wait until a request through the balancer reaches a ready backend."""
        import httpx

        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self.process.returncode}")
            try:
                if httpx.get(self.url + "/v2/health/ready", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"no ready backend behind {self.url} within {timeout_s} s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_haproxy(folder: Path, backends: Sequence[tuple[str, int]]) -> Balancer:
    """Write the config under ``folder``, check it and start haproxy in the foreground."""
    binary = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/sbin/haproxy") if Path(p).exists()), None)
    if binary is None:
        skip_or_fail("haproxy not found (apt-get install -y haproxy)")
    assert binary is not None
    port = free_port()
    config = folder / "haproxy.cfg"
    config.write_text(haproxy_config(port, backends))
    checked = subprocess.run([binary, "-c", "-q", "-f", str(config)], capture_output=True,
                             text=True)
    if checked.returncode != 0:
        raise RuntimeError(f"haproxy refused {config}: {checked.stderr or checked.stdout}")
    with (folder / "haproxy.log").open("wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen([binary, "-f", str(config), "-db"], stdout=log,
                                   stderr=subprocess.STDOUT)
    return Balancer(f"http://127.0.0.1:{port}", config, process)


@pytest.fixture
def haproxy_balancer(tmp_path: Path) -> Iterator:
    """A factory of haproxy balancers in front of ``[(host, port), ...]``, stopped afterwards."""
    started: list[Balancer] = []

    def make(backends: Sequence[tuple[str, int]]) -> Balancer:
        folder = tmp_path / f"haproxy-{len(started)}"
        folder.mkdir()
        balancer = start_haproxy(folder, backends)
        started.append(balancer)
        return balancer

    try:
        yield make
    finally:
        for balancer in started:
            balancer.stop()
