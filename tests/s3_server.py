"""A throw-away S3 server for the tests: ``moto_server`` on a free loopback port.

``s3_server`` (session-scoped) starts moto's S3-compatible server (``moto[s3]`` with flask, in the
``dev`` extra) as a subprocess on 127.0.0.1, waits until it answers, creates the bucket
``driftloop-test`` and stops the server at the end. ``s3_url`` (per test) points the AWS
variables that s3fs and boto read (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``) at it for that test only and returns an
``s3://driftloop-test/<unique prefix>`` URL. Nothing is mocked: every request goes over HTTP to
the server, exactly as it would to AWS or MinIO.

Where moto or s3fs is missing the S3 tests skip, except under ``DRIFTLOOP_REQUIRE_SERVICES=1``
(set by ``.ci/run``), where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pg_server import free_port, skip_or_fail

BUCKET = "driftloop-test"
_START_S = 20.0


@dataclass
class S3Server:
    """A running moto server: where it listens and the environment that reaches it."""

    endpoint: str
    process: subprocess.Popen[bytes]

    @property
    def environ(self) -> dict[str, str]:
        """The AWS variables a client (s3fs, boto3, another process) needs to reach it."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "driftloop-test",
                "AWS_SECRET_ACCESS_KEY": "driftloop-test", "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self):  # noqa: ANN201 - a boto3 client, for tests that tamper behind our back
        import boto3

        env = self.environ
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])

    def keys(self, prefix: str = "") -> list[str]:
        """Every key in the test bucket under ``prefix``."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET,
                                                                         Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _moto_command(port: int) -> list[str]:
    script = Path(sys.executable).with_name("moto_server")
    if script.exists():
        return [str(script), "-H", "127.0.0.1", "-p", str(port)]
    found = shutil.which("moto_server")
    if found:
        return [found, "-H", "127.0.0.1", "-p", str(port)]
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


def _wait_until_up(endpoint: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode} before answering")
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"moto_server did not answer on {endpoint} within {_START_S:.0f} s")


def start_server(log: Path, *, enforce_auth: bool = False) -> S3Server:
    """Start ``moto_server`` on a free loopback port and create the test bucket.

    ``enforce_auth``: the server checks every request's credentials against its (empty) IAM,
    so any key is refused, and no bucket is created."""
    for module, extra in (("moto", "moto[s3]"), ("flask", "flask"), ("s3fs", "s3fs"),
                          ("boto3", "boto3")):
        try:
            __import__(module)
        except ImportError:
            skip_or_fail(f"{module} is not installed (pip install '{extra}', or the dev extra)")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, **({"INITIAL_NO_AUTH_ACTION_COUNT": "0"} if enforce_auth else {})}
    with open(log, "wb") as out:
        process = subprocess.Popen(_moto_command(port), stdout=out, stderr=subprocess.STDOUT,
                                   env=env)
    server = S3Server(endpoint=endpoint, process=process)
    try:
        _wait_until_up(endpoint, process)
        if not enforce_auth:
            server.client().create_bucket(Bucket=BUCKET)
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """An S3 server for this test session, stopped at the end."""
    log = tmp_path_factory.mktemp("moto") / "moto_server.log"
    server = start_server(log)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_url(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """``s3://driftloop-test/<unique prefix>`` with this test's environment pointed at the
    server (restored afterwards)."""
    for key, value in s3_server.environ.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE",
                "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(key, raising=False)
    return f"s3://{BUCKET}/t-{uuid.uuid4().hex[:12]}"
