"""Content-addressed artifacts: every file is named by its sha256 and checked when read.

A local folder by default; any fsspec URL (``memory://``, ``s3://bucket/prefix``, ...)
otherwise. Files live at ``ab/abcdef…`` (the first two hex digits, then the whole digest). A
file is written under a temporary name and renamed into place, so a reader never sees half of
one.

Examples
--------
>>> import tempfile
>>> artifacts = ArtifactStore(tempfile.mkdtemp())
>>> sha = artifacts.put_bytes(b"hello")
>>> sha
'2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824'
>>> artifacts.get_bytes(sha)
b'hello'
>>> artifacts.path_of(sha).endswith("/2c/" + sha)
True
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path
from typing import Any

import fsspec
from fsspec.core import split_protocol, url_to_fs

from driftloop.errors import ConfigError, IntegrityError, NotFoundError, UsageError
from driftloop.store.canonical import canonical_json

_CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TMP_PREFIX = ".tmp-"


class ArtifactStore:
    """Store and load immutable blobs named by their sha256.

    Parameters
    ----------
    url
        A folder (``.driftloop/artifacts``, ``file:///srv/artifacts``) or any fsspec URL
        (``memory://artifacts``, ``s3://bucket/prefix`` with s3fs installed).

    Examples
    --------
    >>> artifacts = ArtifactStore("memory://doc-example")
    >>> sha = artifacts.put_json({"b": 1, "a": [1, 2]})
    >>> artifacts.get_bytes(sha)
    b'{"a":[1,2],"b":1}'
    >>> artifacts.get_json(sha)
    {'a': [1, 2], 'b': 1}
    """

    def __init__(self, url: str | os.PathLike[str]) -> None:
        self.url = os.fspath(url)
        protocol, path = split_protocol(self.url)
        self._fs: fsspec.AbstractFileSystem | None = None
        if protocol in (None, "file", "local"):
            self._root = os.path.abspath(os.path.expanduser(path))
        else:
            self._fs, self._root = _remote_fs(self.url)

    def __repr__(self) -> str:
        return f"ArtifactStore({self.url!r})"

    # -- writing -----------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` (a no-op when it is already there) and return its sha256.

        Examples
        --------
        >>> artifacts = ArtifactStore("memory://put-bytes-example")
        >>> artifacts.put_bytes(b"x") == artifacts.put_bytes(b"x")
        True
        """
        sha = hashlib.sha256(data).hexdigest()
        if not self.exists(sha):
            self._write([data])
        return sha

    def put_file(self, path: str | os.PathLike[str]) -> str:
        """Store the file at ``path``, reading it in chunks, and return its sha256.

        Examples
        --------
        >>> import tempfile
        >>> with tempfile.NamedTemporaryFile(delete=False) as f:
        ...     _ = f.write(b"weights")
        >>> artifacts = ArtifactStore("memory://put-file-example")
        >>> artifacts.get_bytes(artifacts.put_file(f.name))
        b'weights'
        """
        try:
            with open(path, "rb") as source:
                return self._write(iter(lambda: source.read(_CHUNK), b""))
        except FileNotFoundError:
            raise NotFoundError(f"cannot store '{path}': no such file.") from None

    def put_json(self, obj: Any) -> str:
        """Store ``obj`` as canonical JSON (sorted keys, UTF-8, no NaN) and return its sha256.

        Examples
        --------
        >>> artifacts = ArtifactStore("memory://put-json-example")
        >>> artifacts.put_json({"a": 1, "b": 2}) == artifacts.put_json({"b": 2, "a": 1})
        True
        """
        return self.put_bytes(canonical_json(obj))

    # -- reading -----------------------------------------------------------------------------

    def get_bytes(self, sha: str) -> bytes:
        """Return the content stored under ``sha`` after checking it still hashes to ``sha``.

        Raises
        ------
        NotFoundError
            When no artifact ``sha`` is stored.
        IntegrityError
            When the stored file no longer matches its name (it is corrupt).

        Examples
        --------
        >>> ArtifactStore("memory://get-example").get_bytes("0" * 64)
        Traceback (most recent call last):
        ...
        driftloop.errors.NotFoundError: no artifact 000…000 in memory://get-example (looked for memory:///get-example/00/0000000000000000000000000000000000000000000000000000000000000000). Re-create it by re-running the step that wrote it, or point to the right artifact store.
        """  # noqa: E501
        path = self.path_of(sha)
        try:
            data = self._read(sha)
        except FileNotFoundError:
            raise NotFoundError(
                f"no artifact {sha[:3]}…{sha[-3:]} in {self.url} (looked for {path}). Re-create "
                "it by re-running the step that wrote it, or point to the right artifact store."
            ) from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha:
            raise IntegrityError(
                f"artifact {sha} at {path} is corrupt: its content hashes to {actual}. Delete "
                "the file and re-run the step that wrote it."
            )
        return data

    def get_json(self, sha: str) -> Any:
        """Load a JSON artifact written by :meth:`put_json`.

        Examples
        --------
        >>> artifacts = ArtifactStore("memory://get-json-example")
        >>> artifacts.get_json(artifacts.put_json([1, "two"]))
        [1, 'two']
        """
        data = self.get_bytes(sha)
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UsageError(
                f"artifact {sha} is not JSON ({exc}); load it with get_bytes instead."
            ) from None

    def exists(self, sha: str) -> bool:
        """Return True when an artifact ``sha`` is stored (its content is not checked).

        Examples
        --------
        >>> ArtifactStore("memory://exists-example").exists("0" * 64)
        False
        """
        location = self._location(sha)
        if self._fs is None:
            return os.path.isfile(location)
        return bool(self._fs.exists(location))

    def path_of(self, sha: str) -> str:
        """Return where artifact ``sha`` is (or would be): a local path or a full URL.

        Examples
        --------
        >>> ArtifactStore("memory://b/p").path_of("ab" * 32)[:28]
        'memory:///b/p/ab/abababababa'
        >>> ArtifactStore("memory://b/p").path_of("not-a-hash")
        Traceback (most recent call last):
        ...
        driftloop.errors.UsageError: 'not-a-hash' is not a sha256 digest (64 characters 0-9, a-f).
        """
        location = self._location(sha)
        return location if self._fs is None else self._fs.unstrip_protocol(location)

    # -- internals ---------------------------------------------------------------------------

    def _location(self, sha: str) -> str:
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            raise UsageError(f"{sha!r} is not a sha256 digest (64 characters 0-9, a-f).")
        if self._fs is None:
            return os.path.join(self._root, sha[:2], sha)
        return f"{self._root.rstrip('/')}/{sha[:2]}/{sha}"

    def _read(self, sha: str) -> bytes:
        location = self._location(sha)
        if self._fs is None:
            return Path(location).read_bytes()
        with self._fs.open(location, "rb") as f:
            return f.read()

    def _write(self, chunks: Iterable[bytes]) -> str:
        if self._fs is None:
            return self._write_local(chunks)
        return self._write_remote(chunks)

    def _write_local(self, chunks: Iterable[bytes]) -> str:
        os.makedirs(self._root, exist_ok=True)
        tmp = os.path.join(self._root, f"{_TMP_PREFIX}{uuid.uuid4().hex}")
        try:
            # O_EXCL: never write into a file someone else created; mode 0o666 honours umask
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            fd = os.open(tmp, flags, 0o666)
            with os.fdopen(fd, "wb") as out:
                sha = _copy_hashing(chunks, out.write)
                out.flush()
                os.fsync(out.fileno())
            final = self._location(sha)
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.replace(tmp, final)  # same content if it was already there
            _fsync_dir(os.path.dirname(final))
        finally:
            with suppress(FileNotFoundError):
                os.unlink(tmp)
        return sha

    def _write_remote(self, chunks: Iterable[bytes]) -> str:
        assert self._fs is not None
        fs = self._fs
        tmp = f"{self._root.rstrip('/')}/{_TMP_PREFIX}{uuid.uuid4().hex}"
        try:
            fs.makedirs(self._root, exist_ok=True)
            with fs.open(tmp, "wb") as out:
                sha = _copy_hashing(chunks, out.write)
            final = self._location(sha)
            if not fs.exists(final):
                fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
                fs.mv(tmp, final)
        finally:
            with suppress(FileNotFoundError):
                if fs.exists(tmp):
                    fs.rm(tmp)
        return sha


def _copy_hashing(chunks: Iterable[bytes], write: Any) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
        write(chunk)
    return digest.hexdigest()


def _fsync_dir(path: str) -> None:
    # the rename is durable only once the folder entry is on disk; Windows cannot open folders
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remote_fs(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    try:
        return url_to_fs(url)
    except ImportError as exc:
        raise ConfigError(
            f"artifact URL '{url}' needs a package that is not installed: {exc}."
        ) from None
    except ValueError as exc:
        raise ConfigError(f"artifact URL '{url}' cannot be used: {exc}.") from None


__all__ = ["ArtifactStore"]
