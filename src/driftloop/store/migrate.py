"""Alembic, driven from code: no ``alembic.ini``; the scripts ship inside the package.

To change the schema, edit :mod:`driftloop.store.tables`, then write the migration with::

    python -m driftloop.store.migrate "add aliases"

which compares the tables with a database at head and writes ``versions/000N_….py``; read it,
tidy it, and commit it.

Examples
--------
>>> from driftloop.store.engine import make_engine
>>> engine = make_engine("sqlite://")
>>> upgrade(engine)
>>> current_revision(engine) == head_revision()
True
>>> engine.dispose()
"""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from driftloop.errors import UsageError
from driftloop.store.engine import make_engine, safe_url

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_PG_LOCK_KEY = 0x64726966  # any constant shared by every driftloop process: "drif"


def alembic_config(
    connection: Connection | None = None, script_location: str | Path | None = None
) -> Config:
    """Build the Alembic configuration in code, optionally bound to an open connection.

    Examples
    --------
    >>> alembic_config().get_main_option("script_location").endswith("migrations")
    True
    """
    config = Config()
    config.set_main_option("script_location", str(script_location or MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """Return the newest revision this version of driftloop knows.

    Examples
    --------
    >>> head_revision()
    '0012'
    """
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "driftloop ships at least one migration"
    return head


def current_revision(engine: Engine) -> str | None:
    """Return the revision the database is at, or None when it was never migrated.

    Examples
    --------
    >>> from driftloop.store.engine import make_engine
    >>> current_revision(make_engine("sqlite://")) is None
    True
    """
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Migrate the database to head; safe to call again and from several processes at once.

    One transaction holds a lock (SQLite's write lock, a PostgreSQL advisory lock) for the
    whole upgrade, so a second process waits, then finds the schema at head and does nothing.

    Raises
    ------
    UsageError
        When the database is at a revision this driftloop does not know (a newer driftloop
        migrated it).
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        config = alembic_config(conn)
        _refuse_unknown_revision(conn, config, engine)
        command.upgrade(config, "head")


def _refuse_unknown_revision(conn: Connection, config: Config, engine: Engine) -> None:
    current = MigrationContext.configure(conn).get_current_revision()
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    if current is not None and current not in known:
        raise UsageError(
            f"the store at {safe_url(engine.url)} has schema revision '{current}', which this "
            f"driftloop does not know (newest known: '{head_revision()}'); a newer driftloop "
            "wrote it. Upgrade driftloop (pip install -U driftloop) or use another store URL."
        )


def new_revision(message: str, script_location: str | Path | None = None) -> Path:
    """Write a migration for the difference between the tables and a database at head.

    Parameters
    ----------
    message
        One line saying what changes; it becomes the docstring and part of the file name.
    script_location
        The migrations folder (default: the one inside the package).

    Returns
    -------
    Path
        The new file, numbered after the current head (``0002_…``).
    """
    location = Path(script_location or MIGRATIONS_DIR)
    head = ScriptDirectory.from_config(alembic_config(None, location)).get_current_head()
    rev_id = f"{int(head or 0) + 1:04d}"
    engine = make_engine("sqlite://")
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn, location), "head")
            script = command.revision(
                alembic_config(conn, location), message, autogenerate=True, rev_id=rev_id
            )
    finally:
        engine.dispose()
    assert script is not None and not isinstance(script, list)
    return Path(script.path)


def main(argv: list[str] | None = None) -> int:
    """``python -m driftloop.store.migrate "message"``: write the next migration."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print('usage: python -m driftloop.store.migrate "what the migration changes"')
        return 2
    print(new_revision(args[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revision",
    "head_revision",
    "new_revision",
    "upgrade",
]
