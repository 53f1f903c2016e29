from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest

from driftloop.errors import ConfigError, IntegrityError, NotFoundError, UsageError
from driftloop.store import ArtifactStore

HELLO_SHA = hashlib.sha256(b"hello").hexdigest()


@pytest.fixture(params=["folder", "file-url", "memory"])
def artifacts(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    if request.param == "folder":
        yield ArtifactStore(tmp_path / "artifacts")
    elif request.param == "file-url":
        yield ArtifactStore(f"file://{tmp_path / 'artifacts'}")
    else:
        root = f"memory://test-{uuid.uuid4().hex}"
        yield ArtifactStore(root)
        memory = fsspec.filesystem("memory")
        if memory.exists(root):
            memory.rm(root, recursive=True)


def listing(store: ArtifactStore) -> list[str]:
    """Every file below the store's root, relative to it."""
    root = store.path_of(HELLO_SHA).rsplit("/", 2)[0]
    fs, path = fsspec.core.url_to_fs(root)
    return sorted(p[len(path) + 1 :] for p in fs.find(path))


def corrupt(store: ArtifactStore, sha: str, data: bytes) -> None:
    with fsspec.open(store.path_of(sha), "wb") as f:
        f.write(data)


def test_put_and_get_bytes(artifacts: ArtifactStore) -> None:
    sha = artifacts.put_bytes(b"hello")
    assert sha == HELLO_SHA
    assert artifacts.exists(sha)
    assert artifacts.get_bytes(sha) == b"hello"
    assert artifacts.put_bytes(b"hello") == sha
    assert listing(artifacts) == [f"{sha[:2]}/{sha}"]


def test_put_file_streams_and_matches_put_bytes(artifacts: ArtifactStore, tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # more than one read chunk
    path = tmp_path / "weights.bin"
    path.write_bytes(data)
    sha = artifacts.put_file(path)
    assert sha == hashlib.sha256(data).hexdigest()
    assert artifacts.get_bytes(sha) == data
    assert artifacts.put_file(path) == sha
    assert listing(artifacts) == [f"{sha[:2]}/{sha}"]
    with pytest.raises(NotFoundError, match="no such file"):
        artifacts.put_file(tmp_path / "missing.bin")


def test_a_failed_write_leaves_nothing_behind(artifacts: ArtifactStore) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"half of it"
        raise OSError("disk full")

    artifacts.put_bytes(b"hello")
    with pytest.raises(OSError, match="disk full"):
        artifacts._write(chunks())
    assert listing(artifacts) == [f"{HELLO_SHA[:2]}/{HELLO_SHA}"]


def test_corrupt_artifact_raises_integrity_error(artifacts: ArtifactStore) -> None:
    sha = artifacts.put_bytes(b"hello")
    corrupt(artifacts, sha, b"jello")
    with pytest.raises(IntegrityError) as info:
        artifacts.get_bytes(sha)
    message = str(info.value)
    assert sha in message and artifacts.path_of(sha) in message and "corrupt" in message


def test_absent_artifact_raises_not_found(artifacts: ArtifactStore) -> None:
    assert not artifacts.exists("0" * 64)
    with pytest.raises(NotFoundError, match="no artifact 000…000"):
        artifacts.get_bytes("0" * 64)


@pytest.mark.parametrize("bad", ["", "ABC", "g" * 64, "A" * 64, "../" + "a" * 61])
def test_names_that_are_not_sha256_are_refused(artifacts: ArtifactStore, bad: str) -> None:
    with pytest.raises(UsageError, match="is not a sha256 digest"):
        artifacts.get_bytes(bad)


def test_json_is_canonical(artifacts: ArtifactStore) -> None:
    sha = artifacts.put_json({"b": [1, 2.5], "a": "é"})
    assert sha == artifacts.put_json({"a": "é", "b": (1, 2.5)})
    assert artifacts.get_bytes(sha) == '{"a":"é","b":[1,2.5]}'.encode()
    assert artifacts.get_json(sha) == {"a": "é", "b": [1, 2.5]}


def test_json_refuses_nan_and_names_where(artifacts: ArtifactStore) -> None:
    with pytest.raises(UsageError, match=r"\$\.metrics\[1\] is inf"):
        artifacts.put_json({"metrics": [1.0, float("inf")]})
    with pytest.raises(UsageError, match="Convert the value"):
        artifacts.put_json({"when": object()})
    with pytest.raises(UsageError, match="not JSON"):
        artifacts.get_json(artifacts.put_bytes(b"\xff\x00"))


def test_local_store_is_created_on_first_write_with_readable_files(tmp_path: Path) -> None:
    root = tmp_path / "nested" / "artifacts"
    store = ArtifactStore(root)
    assert not root.exists()
    sha = store.put_bytes(b"hello")
    path = Path(store.path_of(sha))
    assert path.parent.parent == root and path.read_bytes() == b"hello"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_unknown_protocol_names_the_missing_package() -> None:
    with pytest.raises(ConfigError, match="needs a package"):
        ArtifactStore("gs://bucket/prefix")


def test_named_objects_round_trip_list_and_delete(artifacts: ArtifactStore) -> None:
    where = artifacts.write_named("loop/snapshots/m-1-train.parquet", b"v1")
    assert where == artifacts.named_url("loop/snapshots/m-1-train.parquet")
    artifacts.write_named("loop/snapshots/m-1-train.parquet", b"v2")  # replaced whole
    artifacts.write_named("loop/other/x", b"o")
    assert artifacts.read_named("loop/snapshots/m-1-train.parquet") == b"v2"
    assert artifacts.list_named("loop/snapshots") == ["loop/snapshots/m-1-train.parquet"]
    assert artifacts.list_named("loop") == ["loop/other/x", "loop/snapshots/m-1-train.parquet"]
    assert artifacts.list_named("nothing-here") == []
    assert artifacts.delete_named("loop/other/x") and not artifacts.delete_named("loop/other/x")
    assert not artifacts.named_exists("loop/other/x")
    with pytest.raises(NotFoundError, match="no object 'loop/other/x'"):
        artifacts.read_named("loop/other/x")
    assert not [p for p in listing(artifacts) if ".tmp-" in p]


def test_create_named_writes_only_once(artifacts: ArtifactStore) -> None:
    assert artifacts.create_named("secrets/salt", b"first", private=True)
    assert not artifacts.create_named("secrets/salt", b"second", private=True)
    assert artifacts.read_named("secrets/salt") == b"first"
    assert not [p for p in listing(artifacts) if ".tmp-" in p]


@pytest.mark.parametrize("bad", ["", "/etc/passwd", "../x", "a/../b", "a/./b", ".hidden",
                                 "a//b", "a/", "tab\there", "new\nline", "x" * 513])
def test_unsafe_object_names_are_refused(artifacts: ArtifactStore, bad: str) -> None:
    with pytest.raises(UsageError, match="not a valid object name"):
        artifacts.write_named(bad, b"x")


def test_a_private_local_object_is_owner_only(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "artifacts")
    store.create_named("secrets/salt", b"s", private=True)
    assert os.stat(store.named_url("secrets/salt")).st_mode & 0o777 == 0o600
