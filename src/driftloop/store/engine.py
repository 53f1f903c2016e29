"""Engines for any SQLAlchemy URL, with SQLite set up for several processes at once.

SQLite gets WAL (readers never block the writer), foreign keys, and a busy timeout so a
process waits for another's write instead of failing. Write transactions start with
``BEGIN IMMEDIATE``: they take the write lock up front, so two processes that read-then-write
(next version number, audit tail) queue instead of failing with "database is locked".

Examples
--------
>>> engine = make_engine("sqlite://")
>>> with engine.connect() as conn:
...     conn.exec_driver_sql("PRAGMA foreign_keys").scalar()
1
>>> engine.dispose()
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from driftloop.errors import ConfigError

BUSY_TIMEOUT_MS = 30_000
READ_ONLY = "driftloop_read_only"  # execution option: begin SQLite transactions DEFERRED


def parse_url(url: str) -> URL:
    """Parse a store URL, naming the problem and an example when it is not one.

    Examples
    --------
    >>> parse_url("sqlite:///runs/driftloop.db").database
    'runs/driftloop.db'
    >>> parse_url("runs/driftloop.db")
    Traceback (most recent call last):
    ...
    driftloop.errors.ConfigError: store URL 'runs/driftloop.db' is not a SQLAlchemy URL. Use e.g. 'sqlite:///path/to/driftloop.db' or 'postgresql+psycopg://user@host/db'.
    """  # noqa: E501
    try:
        return make_url(url)
    except ArgumentError:
        raise ConfigError(
            f"store URL '{url}' is not a SQLAlchemy URL. Use e.g. "
            "'sqlite:///path/to/driftloop.db' or 'postgresql+psycopg://user@host/db'."
        ) from None


def safe_url(url: str | URL) -> str:
    """Return ``url`` as text with any password hidden, for messages.

    Examples
    --------
    >>> safe_url("postgresql://bob:secret@db/dl")
    'postgresql://bob:***@db/dl'
    """
    return make_url(url).render_as_string(hide_password=True)


def is_sqlite_file(url: URL) -> bool:
    """True when ``url`` names an SQLite database file (not an in-memory one).

    Examples
    --------
    >>> is_sqlite_file(make_url("sqlite:///x.db")), is_sqlite_file(make_url("sqlite://"))
    (True, False)
    """
    database = url.database or ""
    in_memory = database in ("", ":memory:") or "mode=memory" in str(url)
    return url.get_backend_name() == "sqlite" and not in_memory


def make_engine(url: str) -> Engine:
    """Create an engine for ``url``; for SQLite files, create the parent folder first.

    Examples
    --------
    >>> make_engine("sqlite://").dialect.name
    'sqlite'
    """
    parsed = parse_url(url)
    if is_sqlite_file(parsed) and not (parsed.database or "").startswith("file:"):
        folder = Path(parsed.database or "").expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the folder '{folder}' for the store {safe_url(parsed)}: "
                f"{exc.strerror}. Choose another store URL or home folder."
            ) from None
    try:
        engine = create_engine(parsed)
    except NoSuchModuleError:
        raise ConfigError(
            f"store URL '{safe_url(parsed)}' names the database '{parsed.drivername}', which "
            "SQLAlchemy does not know. Use sqlite:///… or postgresql+psycopg://…"
        ) from None
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"store URL '{safe_url(parsed)}' needs the Python package '{exc.name}'. "
            "Install it (for PostgreSQL: pip install 'driftloop[postgres]')."
        ) from None
    if parsed.get_backend_name() == "sqlite":
        _configure_sqlite(engine, wal=is_sqlite_file(parsed))
    return engine


def _configure_sqlite(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # let us emit BEGIN ourselves (pysqlite would defer it and run DDL outside transactions)
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if wal:
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


__all__ = ["BUSY_TIMEOUT_MS", "READ_ONLY", "is_sqlite_file", "make_engine", "parse_url", "safe_url"]
