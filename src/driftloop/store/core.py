"""The core of the store: the engine, sessions and transactions every query runs in.

:class:`StoreCore` connects to any SQLAlchemy URL and migrates it; the queries live in one
module per aggregate (:mod:`~driftloop.store.datasets`, :mod:`~driftloop.store.runs`,
:mod:`~driftloop.store.versions`, :mod:`~driftloop.store.aliases`,
:mod:`~driftloop.store.serving`, :mod:`~driftloop.store.erasure`,
:mod:`~driftloop.store.keys`, :mod:`~driftloop.store.monitoring`), each a mixin over this
core, and :class:`driftloop.store.Store` is all of them together. Use ``Store``; the core is
the seam the mixins share.

Examples
--------
>>> from driftloop.store import Store
>>> with Store.open("sqlite://") as store:
...     isinstance(store, StoreCore), store.schema_revision() == Store.head_revision()
(True, True)
"""

from __future__ import annotations

import random
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import stamina
from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from driftloop.errors import ConfigError, DriftloopError, UsageError
from driftloop.store import migrate
from driftloop.store.engine import READ_ONLY, make_engine, safe_url

T = TypeVar("T")
S = TypeVar("S", bound="StoreCore")
EventHook = Callable[[Session, str, str, dict[str, Any]], object]
"""``hook(session, action, subject, details)``, called inside the transaction of a recorded
dataset or a run that starts, finishes, fails or resumes (see :attr:`StoreCore.on_event`)."""

_ATTEMPTS = 20  # with capped exponential backoff: up to ~5 s of contention before giving up


def _sqlite_open_race(exc: Exception) -> bool:
    """True for SQLite's "database is locked" (another process is opening the same file)."""
    return isinstance(exc, sa_exc.OperationalError) and "database is locked" in str(exc.orig)

class StoreCore:
    """Engine, sessions and transactions of a store at any SQLAlchemy URL.

    Parameters
    ----------
    url
        ``sqlite:///path/to/driftloop.db`` (the folder is created), ``sqlite://`` (in memory),
        ``postgresql+psycopg://user@host/db``, ...
    on_event
        Called inside the transaction of a recorded dataset or run (see :data:`EventHook`).
    """

    def __init__(self, url: str, *, on_event: EventHook | None = None) -> None:
        self.url = url
        # set by Registry.open to the audit log's recorder: datasets and runs are audited in
        # the transaction that records them, without the queries depending on the audit log
        self.on_event = on_event
        self._engine = make_engine(url)
        self._reader = self._engine.execution_options(**{READ_ONLY: True})
        # a store dropped without close() still closes its pooled connections (a server's
        # PostgreSQL connection slots are few), instead of leaving them to the garbage collector
        weakref.finalize(self, self._engine.dispose)

    @classmethod
    def open(cls: type[S], url: str) -> S:
        """Connect to ``url`` and migrate it to head (idempotent, safe across processes).

        Examples
        --------
        >>> from driftloop.store import Store
        >>> store = Store.open("sqlite://")
        >>> store.model_names()
        []
        >>> store.close()
        """
        store = cls(url)
        try:
            store.upgrade()
        except BaseException:
            store.close()
            raise
        return store

    def __repr__(self) -> str:
        return f"Store({safe_url(self.url)!r})"

    def __enter__(self: S) -> S:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for migrations and tests; prefer the methods)."""
        return self._engine

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def upgrade(self) -> None:
        """Migrate the schema to head; see :func:`driftloop.store.migrate.upgrade`."""
        try:
            # Processes opening a new SQLite file at the same moment race to switch it to WAL
            # and to take the migration lock; SQLite answers "database is locked" at once there
            # rather than waiting out the busy timeout (seen with 3 processes on a loaded CI
            # machine). A short retry finds the file in WAL and the schema at head.
            for attempt in stamina.retry_context(
                on=_sqlite_open_race, attempts=8, timeout=None, wait_initial=0.05,
                wait_max=1.0, wait_jitter=0.05,
            ):
                with attempt:
                    migrate.upgrade(self._engine)
        except sa_exc.OperationalError as exc:
            raise ConfigError(
                f"cannot open the store {safe_url(self.url)}: {exc.orig}. Check the store URL "
                "(DRIFTLOOP_STORE_URL) and that the database is reachable and writable."
            ) from None

    def schema_revision(self) -> str | None:
        """Return the schema revision of the database, or None if it was never migrated.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> store = Store("sqlite://")
        >>> store.schema_revision() is None
        True
        >>> store.upgrade()
        >>> store.schema_revision() == Store.head_revision()
        True
        >>> store.close()
        """
        return migrate.current_revision(self._engine)

    @staticmethod
    def head_revision() -> str:
        """Return the newest schema revision this driftloop knows."""
        return migrate.head_revision()

    @contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """Open a session inside a transaction: commit on success, roll back on error.

        Parameters
        ----------
        write
            False for a read-only session, which never waits for another process's write.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> from sqlalchemy import select, func
        >>> from driftloop.store.tables import Run
        >>> with Store.open("sqlite://") as store, store.session(write=False) as s:
        ...     s.scalar(select(func.count()).select_from(Run))
        0
        """
        bind = self._engine if write else self._reader
        try:
            with Session(bind, expire_on_commit=False) as session, session.begin():
                yield session
        except sa_exc.DataError as exc:  # a value the database cannot hold, e.g. text with NUL
            raise UsageError(
                f"the store {safe_url(self.url)} refused a value: {_first_line(exc.orig)}. "
                "Remove the character or value it names (PostgreSQL text cannot hold NUL bytes) "
                "and try again; nothing was stored."
            ) from None

    def transact(self, work: Callable[[Session], T], *, attempts: int = _ATTEMPTS) -> T:
        """Run ``work(session)`` in one transaction, retrying it when a unique key collides.

        Two processes that append to the same sequence (version numbers, the audit chain)
        can collide on a unique key; the loser's transaction is rolled back and ``work`` runs
        again on the new state, so ``work`` must be safe to repeat.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> from driftloop.store.tables import Dataset
        >>> with Store.open("sqlite://") as store:
        ...     store.transact(lambda s: s.get(Dataset, 1)) is None
        True
        """
        for attempt in range(1, attempts + 1):
            try:
                with self.session() as session:
                    return work(session)
            except sa_exc.IntegrityError as exc:
                if not _is_unique_violation(exc):
                    raise
                if attempt == attempts:
                    raise DriftloopError(
                        f"another process kept writing the same records; gave up after "
                        f"{attempts} attempts ({exc.orig}). Try again."
                    ) from exc
                # full jitter, doubling to a 0.5 s cap: writers that collided spread out
                time.sleep(random.uniform(0.0, min(0.5, 0.005 * 2 ** attempt)))
        raise AssertionError("unreachable")  # pragma: no cover

    def _emit(self, session: Session, action: str, subject: str, details: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(session, action, subject, details)


def _first_line(error: object) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _is_unique_violation(exc: sa_exc.IntegrityError) -> bool:
    if getattr(exc.orig, "sqlstate", None) == "23505":  # PostgreSQL unique_violation
        return True
    message = str(exc.orig).lower()
    return "unique constraint" in message or "duplicate key" in message


def _require_text(name: str, value: str, *, max_len: int) -> None:
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise UsageError(f"{name} must be text of 1 to {max_len} characters, got {value!r}.")


__all__ = ["EventHook", "StoreCore"]
