"""The artifact store on a real S3 server (``moto_server`` on a loopback port, see
``tests/s3_server.py``), through s3fs: what a write leaves in the bucket, what a read checks,
and the message a misconfigured store gives."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from driftloop.errors import ConfigError, IntegrityError, NotFoundError, UsageError
from driftloop.store import ArtifactStore
from pg_server import free_port
from s3_server import BUCKET, S3Server, start_server

pytestmark = pytest.mark.slow


def _prefix(url: str) -> str:
    return url.split(f"s3://{BUCKET}/", 1)[1]


def test_put_and_get_round_trip_with_no_temporary_objects(s3_url: str, s3_server: S3Server,
                                                          tmp_path: Path) -> None:
    artifacts = ArtifactStore(s3_url)
    sha = artifacts.put_bytes(b"hello")
    big = os.urandom(3 * (1 << 20) + 17)  # more than one read chunk
    (tmp_path / "weights.bin").write_bytes(big)
    big_sha = artifacts.put_file(tmp_path / "weights.bin")
    streamed = artifacts._write(iter([b"a", b"b"]))
    assert artifacts.put_bytes(b"hello") == sha  # already there: skipped

    assert artifacts.get_bytes(sha) == b"hello" and artifacts.get_bytes(big_sha) == big
    assert big_sha == hashlib.sha256(big).hexdigest()
    assert artifacts.get_bytes(streamed) == b"ab"
    prefix = _prefix(s3_url)
    keys = s3_server.keys(prefix)
    assert keys == sorted(f"{prefix}/{s[:2]}/{s}" for s in (sha, big_sha, streamed))
    assert not [k for k in keys if ".tmp-" in k]
    assert artifacts.path_of(sha) == f"{s3_url}/{sha[:2]}/{sha}"


def test_a_corrupted_object_is_detected_on_read(s3_url: str, s3_server: S3Server) -> None:
    artifacts = ArtifactStore(s3_url)
    sha = artifacts.put_bytes(b"hello")
    s3_server.client().put_object(Bucket=BUCKET, Key=f"{_prefix(s3_url)}/{sha[:2]}/{sha}",
                                  Body=b"jello")  # behind the store's back
    with pytest.raises(IntegrityError) as info:
        ArtifactStore(s3_url).get_bytes(sha)
    assert sha in str(info.value) and artifacts.path_of(sha) in str(info.value)
    with pytest.raises(NotFoundError, match="no artifact 000…000"):
        artifacts.get_bytes("0" * 64)


def test_a_missing_bucket_is_one_clear_message(s3_url: str) -> None:
    artifacts = ArtifactStore("s3://no-such-bucket-here/p")
    for action in (lambda: artifacts.put_bytes(b"x"), lambda: artifacts.get_bytes("a" * 64),
                   lambda: artifacts.write_named("a", b"x"), lambda: artifacts.list_named()):
        with pytest.raises(ConfigError, match="bucket 'no-such-bucket-here' does not exist at "
                           "the endpoint http://127.0.0.1:.*Create it"):
            action()


def test_an_unreachable_endpoint_is_one_clear_message(s3_url: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nobody there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(ConfigError, match="cannot reach the endpoint http://127.0.0.1:.*"
                       "AWS_ENDPOINT_URL"):
        ArtifactStore(s3_url).put_bytes(b"x")


def test_refused_credentials_are_one_clear_message(s3_url: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    strict = start_server(tmp_path / "moto.log", enforce_auth=True)  # knows no key at all
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", strict.endpoint)
        with pytest.raises(ConfigError, match=r"'s3://.*' \(trying to .*\): access denied.*"
                           "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
            ArtifactStore(s3_url).put_bytes(b"x")
    finally:
        strict.stop()


def test_named_objects_round_trip_and_are_listed(s3_url: str, s3_server: S3Server) -> None:
    artifacts = ArtifactStore(s3_url)
    assert artifacts.write_named("loop/snapshots/m-1-train.parquet", b"v1").startswith(s3_url)
    artifacts.write_named("loop/snapshots/m-1-train.parquet", b"v2")
    artifacts.write_named("loop/snapshots/sub/m-2-holdout.parquet", b"h")
    artifacts.write_named("secrets/other", b"s")
    assert artifacts.read_named("loop/snapshots/m-1-train.parquet") == b"v2"
    assert artifacts.list_named("loop/snapshots") == [
        "loop/snapshots/m-1-train.parquet", "loop/snapshots/sub/m-2-holdout.parquet"]
    assert artifacts.delete_named("secrets/other") and not artifacts.delete_named("secrets/other")
    with pytest.raises(NotFoundError, match="no object 'secrets/other'"):
        artifacts.read_named("secrets/other")
    with pytest.raises(UsageError, match="not a valid object name"):
        artifacts.write_named("../escape", b"x")
    assert not [k for k in s3_server.keys(_prefix(s3_url)) if ".tmp-" in k]


_RACER = textwrap.dedent("""
    import sys
    from driftloop.store import ArtifactStore
    sys.stdin.readline()  # both start together
    won = ArtifactStore(sys.argv[1]).create_named("secrets/erasure.salt", sys.argv[2].encode())
    print("won" if won else "lost")
""")


def test_create_only_race_between_two_processes_has_one_winner(s3_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    racers = [subprocess.Popen([sys.executable, "-c", _RACER, s3_url, f"salt-{i}"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
              for i in range(2)]
    for p in racers:
        p.stdin.write("go\n")
        p.stdin.flush()
    outcomes = [p.communicate(timeout=60)[0].strip() for p in racers]
    assert sorted(outcomes) == ["lost", "won"]
    winner = outcomes.index("won")
    assert ArtifactStore(s3_url).read_named("secrets/erasure.salt") == f"salt-{winner}".encode()
