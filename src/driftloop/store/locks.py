"""Per-model locks, so that two ``monitor`` or ``loop watch`` processes never work on one model
at the same time (they would cut the same windows, raise the same alerts, retrain twice).

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on a connection held
  for as long as the lock; the server drops it when that connection ends, so a killed process
  never leaves a model locked.
- SQLite file: ``flock`` on a file beside the database (``<db>.locks/<hash of the name>``); the
  kernel drops it when the process ends. (SQLite is one host's database, so one host's locks
  are enough.)
- SQLite in memory: a lock of this process (the database is this process's only).

The lock is re-entrant within a process: ``loop`` holds it for a whole iteration and the
monitor the iteration runs takes it again without waiting for itself.

Examples
--------
>>> from driftloop.store import Store
>>> with Store.open("sqlite://") as store:
...     with store.model_lock("churn"):
...         with store.model_lock("churn"):  # re-entrant
...             store.model_lock_held("churn")
True
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text

from driftloop.errors import ConflictError
from driftloop.store.core import StoreCore
from driftloop.store.engine import is_sqlite_file, safe_url

_PG_NAMESPACE = 0x646C6D6C  # "dlml": the first key of every driftloop model lock
_POLL_S = 0.05
_held: dict[tuple[str, str], int] = {}  # (store url, model) -> depth, for re-entrance
_held_guard = threading.Lock()
_memory_locks: dict[tuple[str, str], threading.Lock] = {}


def _model_key(model_name: str) -> int:
    """A signed 32-bit key for ``model_name`` (advisory locks take two int4 keys)."""
    digest = hashlib.sha256(model_name.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


class LockQueries(StoreCore):
    """Per-model locks (see the module docstring)."""

    @contextmanager
    def model_lock(self, model_name: str, *, wait_s: float = 60.0) -> Iterator[None]:
        """Hold the lock on ``model_name`` for the body, waiting at most ``wait_s`` for it.

        Raises
        ------
        ConflictError
            When another process still holds it after ``wait_s`` seconds.
        """
        key = (self.url, model_name)
        with _held_guard:
            depth = _held.get(key, 0)
            if depth:
                _held[key] = depth + 1
        if depth:
            try:
                yield
            finally:
                with _held_guard:
                    _held[key] -= 1
            return
        with self._acquire(model_name, wait_s):
            with _held_guard:
                _held[key] = 1
            try:
                yield
            finally:
                with _held_guard:
                    del _held[key]

    def model_lock_held(self, model_name: str) -> bool:
        """True while this process holds the lock on ``model_name``."""
        with _held_guard:
            return _held.get((self.url, model_name), 0) > 0

    @contextmanager
    def _acquire(self, model_name: str, wait_s: float) -> Iterator[None]:
        backend = self.engine.url.get_backend_name()
        if backend == "postgresql":
            with self._pg_lock(model_name, wait_s):
                yield
        elif is_sqlite_file(self.engine.url):
            with self._file_lock(model_name, wait_s):
                yield
        else:
            lock = _memory_locks.setdefault((self.url, model_name), threading.Lock())
            if not lock.acquire(timeout=wait_s):
                raise self._busy(model_name, wait_s)
            try:
                yield
            finally:
                lock.release()

    @contextmanager
    def _pg_lock(self, model_name: str, wait_s: float) -> Iterator[None]:
        keys = {"ns": _PG_NAMESPACE, "key": _model_key(model_name)}
        with self.engine.connect() as conn:
            deadline = time.monotonic() + wait_s
            while not conn.execute(text("SELECT pg_try_advisory_lock(:ns, :key)"), keys).scalar():
                conn.commit()
                if time.monotonic() >= deadline:
                    raise self._busy(model_name, wait_s)
                time.sleep(_POLL_S)
            conn.commit()  # the lock is the session's, not the transaction's
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:ns, :key)"), keys)
                conn.commit()

    @contextmanager
    def _file_lock(self, model_name: str, wait_s: float) -> Iterator[None]:
        folder = Path(f"{self.engine.url.database}.locks")
        folder.mkdir(exist_ok=True)
        # the file is named by a hash: a model name never becomes a path
        name = hashlib.sha256(model_name.encode("utf-8")).hexdigest()[:32]
        fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise self._busy(model_name, wait_s) from None
                    time.sleep(_POLL_S)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _busy(self, model_name: str, wait_s: float) -> ConflictError:
        return ConflictError(
            f"another driftloop process (a `monitor` or `loop watch`) is working on model "
            f"'{model_name}' in the store {safe_url(self.url)}; waited {wait_s:g} s for it. "
            "Run one monitor or loop per model, or try again when it is done."
        )


__all__ = ["LockQueries"]
