"""Content-addressed artifacts, checked when read, and a few named objects beside them.

A local folder by default; any fsspec URL (``memory://``, ``s3://bucket/prefix``, ...)
otherwise. Artifacts live at ``ab/abcdef…`` (the first two hex digits, then the whole sha256)
and are immutable. How a write stays whole:

- in a folder, a file is written under a temporary name, fsynced and renamed into place, so a
  reader never sees half of one;
- on an object store the content is hashed first (streamed through a local temporary file),
  then sent in one PUT to its final key, skipped when that key exists. An S3 PUT is atomic
  (a reader sees the old object, no object, or the whole new one), so no temporary object is
  ever written and nothing is renamed (``mv`` on S3 is copy + delete and leaves orphans).

Every read hashes the content again and raises :class:`~driftloop.errors.IntegrityError`,
naming the object, when it does not match.

Named objects (``named/<name>``: ``write_named``, ``read_named``, ``create_named``, …) hold
what is not content-addressed but must be shared by every host that shares the store: the
loop's dataset snapshots, the erasure salt. A name is ``/``-separated segments of letters,
digits, ``.``, ``_`` and ``-`` that do not start with a dot (so no ``..``, no absolute path).
A named write replaces the whole object atomically; ``create_named`` writes only when the name
is free (``O_EXCL`` semantics: a hard link in a folder, a conditional ``If-None-Match: *`` PUT
on S3), so two hosts racing to create one get one winner.

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
>>> artifacts.create_named("secrets/demo", b"one"), artifacts.create_named("secrets/demo", b"two")
(True, False)
>>> artifacts.read_named("secrets/demo"), artifacts.list_named("secrets")
(b'one', ['secrets/demo'])
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import fsspec
from fsspec.core import split_protocol

from driftloop.errors import ConfigError, IntegrityError, NotFoundError, UsageError
from driftloop.store.canonical import canonical_json
from driftloop.store.remote import bucket_message, no_such_bucket, remote_errors, remote_fs

_CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TMP_PREFIX = ".tmp-"
_NAMED = "named"
_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9._-]*"
_NAME = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
_NAME_MAX = 512

LOOP_SNAPSHOTS = "loop/snapshots"
"""Where the loop writes its dataset snapshots, and erasure looks for them (named objects)."""


class ArtifactStore:
    """Store and load immutable blobs named by their sha256, and a few named objects.

    Parameters
    ----------
    url
        A folder (``.driftloop/artifacts``, ``file:///srv/artifacts``) or any fsspec URL
        (``memory://artifacts``, ``s3://bucket/prefix`` with ``driftloop[s3]`` installed;
        ``AWS_ENDPOINT_URL`` points s3fs at a server that is not AWS).

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
            self._fs, self._root = remote_fs(self.url, "artifact store")

    def __repr__(self) -> str:
        return f"ArtifactStore({self.url!r})"

    @property
    def is_local(self) -> bool:
        """True for a folder on this host's disk (not shared unless the folder is).

        Examples
        --------
        >>> ArtifactStore("/tmp/a").is_local, ArtifactStore("memory://a").is_local
        (True, False)
        """
        return self._fs is None

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
        if self.exists(sha):
            return sha
        if self._fs is None:
            return self._write_local([data])
        with self._remote(f"write artifact {sha}"):
            self._fs.pipe_file(self._location(sha), data)
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
            if self._fs is not None:  # hash first, then one upload of the final key
                return self._upload(os.fspath(path), _hash_file(path))
            with open(path, "rb") as source:
                return self._write_local(iter(lambda: source.read(_CHUNK), b""))
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
            data = self._read(self._location(sha), f"read artifact {sha}")
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
        return self._exists(self._location(sha))

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
        return self._url_of(self._location(sha))

    # -- named objects -----------------------------------------------------------------------

    def write_named(self, name: str, data: bytes) -> str:
        """Write (or replace) the named object ``name`` atomically; return where it is.

        Examples
        --------
        >>> artifacts = ArtifactStore("memory://write-named-example")
        >>> artifacts.write_named("loop/snapshots/a.parquet", b"v1")
        'memory:///write-named-example/named/loop/snapshots/a.parquet'
        >>> _ = artifacts.write_named("loop/snapshots/a.parquet", b"v2")
        >>> artifacts.read_named("loop/snapshots/a.parquet")
        b'v2'
        """
        location = self._named(name)
        if self._fs is None:
            _replace_local(location, data, private=False)
        else:
            with self._remote(f"write {name}"):
                self._fs.pipe_file(location, data)
        return self._url_of(location)

    def create_named(self, name: str, data: bytes, *, private: bool = False) -> bool:
        """Write ``name`` only if no object has that name; True when this call created it.

        Two processes (or hosts) racing get exactly one True. ``private``: a local file is
        made readable by its owner only (mode 0600); an object store's access is its policy's.

        Examples
        --------
        >>> artifacts = ArtifactStore("memory://create-named-example")
        >>> artifacts.create_named("salt", b"a"), artifacts.create_named("salt", b"b")
        (True, False)
        >>> artifacts.read_named("salt")
        b'a'
        """
        location = self._named(name)
        if self._fs is None:
            return _create_local(location, data, private=private)
        try:
            with self._remote(f"create {name}"):
                self._fs.pipe_file(location, data, mode="create")
        except FileExistsError:
            return False
        return True

    def read_named(self, name: str) -> bytes:
        """The content of the named object ``name``.

        Raises
        ------
        NotFoundError
            When there is no object ``name``.

        Examples
        --------
        >>> ArtifactStore("memory://read-named-example").read_named("nope/x")
        Traceback (most recent call last):
        ...
        driftloop.errors.NotFoundError: no object 'nope/x' in memory://read-named-example (looked for memory:///read-named-example/named/nope/x).
        """  # noqa: E501
        location = self._named(name)
        try:
            return self._read(location, f"read {name}")
        except FileNotFoundError:
            raise NotFoundError(f"no object '{name}' in {self.url} (looked for "
                                f"{self._url_of(location)}).") from None

    def named_exists(self, name: str) -> bool:
        """True when the named object ``name`` exists.

        Examples
        --------
        >>> ArtifactStore("memory://named-exists-example").named_exists("a/b")
        False
        """
        return self._exists(self._named(name))

    def list_named(self, prefix: str = "") -> list[str]:
        """The names of the objects in folder ``prefix`` and below it, sorted.

        Examples
        --------
        >>> artifacts = ArtifactStore("memory://list-named-example")
        >>> for name in ("loop/b", "loop/sub/a", "other"):
        ...     _ = artifacts.write_named(name, b"")
        >>> artifacts.list_named("loop"), len(artifacts.list_named())
        (['loop/b', 'loop/sub/a'], 3)
        """
        base = self._named(prefix.strip("/")) if prefix.strip("/") else self._named_root()
        if self._fs is None:
            found = [str(p) for p in Path(base).rglob("*") if p.is_file()]
        else:
            with self._remote(f"list {prefix or 'named objects'}"):
                found = list(self._fs.find(base))
        root = self._named_root()
        if self._fs is None:
            names = [os.path.relpath(p, root).replace(os.sep, "/") for p in found]
        else:
            names = [p[len(root.rstrip("/")) + 1:] for p in found]
        return sorted(n for n in names if _NAME.fullmatch(n))

    def delete_named(self, name: str) -> bool:
        """Delete the named object ``name``; True when it existed.

        Examples
        --------
        >>> artifacts = ArtifactStore("memory://delete-named-example")
        >>> _ = artifacts.write_named("x", b"1")
        >>> artifacts.delete_named("x"), artifacts.delete_named("x")
        (True, False)
        """
        location = self._named(name)
        if self._fs is None:
            try:
                os.unlink(location)
            except FileNotFoundError:
                return False
            return True
        with self._remote(f"delete {name}"):
            if not self._fs.exists(location):
                return False
            self._fs.rm_file(location)
        return True

    def named_url(self, name: str) -> str:
        """Where the named object ``name`` is (or would be): a local path or a full URL.

        Examples
        --------
        >>> ArtifactStore("memory://b/p").named_url("loop/x.parquet")
        'memory:///b/p/named/loop/x.parquet'
        >>> ArtifactStore("memory://b/p").named_url("../x")
        Traceback (most recent call last):
        ...
        driftloop.errors.UsageError: '../x' is not a valid object name: use /-separated parts of letters, digits, '.', '_' and '-' that do not start with '.' (at most 512 characters).
        """  # noqa: E501
        return self._url_of(self._named(name))

    # -- internals ---------------------------------------------------------------------------

    def _location(self, sha: str) -> str:
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            raise UsageError(f"{sha!r} is not a sha256 digest (64 characters 0-9, a-f).")
        return self._join(sha[:2], sha)

    def _named_root(self) -> str:
        return self._join(_NAMED)

    def _named(self, name: str) -> str:
        if not isinstance(name, str) or len(name) > _NAME_MAX or not _NAME.fullmatch(name):
            raise UsageError(
                f"{name!r} is not a valid object name: use /-separated parts of letters, "
                "digits, '.', '_' and '-' that do not start with '.' (at most "
                f"{_NAME_MAX} characters)."
            )
        return self._join(_NAMED, *name.split("/"))

    def _join(self, *parts: str) -> str:
        if self._fs is None:
            return os.path.join(self._root, *parts)
        return "/".join([self._root.rstrip("/"), *parts])

    def _url_of(self, location: str) -> str:
        return location if self._fs is None else self._fs.unstrip_protocol(location)

    @contextmanager
    def _remote(self, action: str) -> Iterator[None]:
        """Errors of a remote call: a missing bucket or bad credentials become ConfigError."""
        try:
            with remote_errors(self.url, "the artifact store", action):
                yield
        except FileNotFoundError as exc:
            if no_such_bucket(exc):
                raise ConfigError(bucket_message(self.url, "the artifact store")) from None
            raise

    def _exists(self, location: str) -> bool:
        if self._fs is None:
            return os.path.isfile(location)
        with self._remote("look up an object"):
            return bool(self._fs.exists(location))

    def _read(self, location: str, action: str) -> bytes:
        if self._fs is None:
            return Path(location).read_bytes()
        with self._remote(action):
            return bytes(self._fs.cat_file(location))

    def _write(self, chunks: Iterable[bytes]) -> str:
        if self._fs is None:
            return self._write_local(chunks)
        # hash while spooling to a local temp file, then one PUT of the final key
        with tempfile.TemporaryDirectory(prefix="driftloop-upload-") as folder:
            spool = os.path.join(folder, "blob")
            with open(spool, "wb") as out:
                sha = _copy_hashing(chunks, out.write)
            return self._upload(spool, sha)

    def _upload(self, local: str, sha: str) -> str:
        assert self._fs is not None
        final = self._location(sha)
        if not self.exists(sha):
            with self._remote(f"write artifact {sha}"):
                self._fs.put_file(local, final)
        return sha

    def _write_local(self, chunks: Iterable[bytes]) -> str:
        os.makedirs(self._root, exist_ok=True)
        tmp = os.path.join(self._root, f"{_TMP_PREFIX}{uuid.uuid4().hex}")
        try:
            # O_EXCL: never write into a file someone else created; mode 0o666 honours umask
            fd = os.open(tmp, _EXCL_FLAGS, 0o666)
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


_EXCL_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def _hash_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        for chunk in iter(lambda: source.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_temp_beside(final: str, data: bytes, mode: int) -> str:
    """``data`` in a synced temporary file in ``final``'s folder; returns its path."""
    folder = os.path.dirname(final)
    os.makedirs(folder, exist_ok=True)
    tmp = os.path.join(folder, f"{_TMP_PREFIX}{uuid.uuid4().hex}")
    fd = os.open(tmp, _EXCL_FLAGS, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return tmp


def _replace_local(final: str, data: bytes, *, private: bool) -> None:
    tmp = _write_temp_beside(final, data, 0o600 if private else 0o666)
    try:
        os.replace(tmp, final)
        _fsync_dir(os.path.dirname(final))
    finally:
        with suppress(FileNotFoundError):
            os.unlink(tmp)


def _create_local(final: str, data: bytes, *, private: bool) -> bool:
    # written under a private name, then linked into place: os.link fails if another process
    # created the name meanwhile, so the first one wins and nobody reads a half-written file
    tmp = _write_temp_beside(final, data, 0o600 if private else 0o666)
    try:
        os.link(tmp, final)
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: create in place, still exclusively
        try:
            fd = os.open(final, _EXCL_FLAGS, 0o600 if private else 0o666)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    finally:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
    _fsync_dir(os.path.dirname(final))
    return True


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


__all__ = ["LOOP_SNAPSHOTS", "ArtifactStore"]
