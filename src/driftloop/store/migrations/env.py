"""Alembic environment of the driftloop store.

:mod:`driftloop.store.migrate` runs this file with an open connection in
``config.attributes["connection"]`` (already inside the transaction that holds the migration
lock); ``sqlalchemy.url`` is the fallback for offline (``--sql``) runs.
"""

from __future__ import annotations

from typing import Any

from alembic import context

from driftloop.store.tables import Base, UTCDateTime


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # generated migrations must not import driftloop: they stay valid when tables.py changes
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations() -> None:
    """Run the pending migrations on the connection the caller handed over."""
    options: dict[str, Any] = {
        "target_metadata": Base.metadata,
        "render_as_batch": True,
        "render_item": _render_item,
    }
    connection = context.config.attributes.get("connection")
    if connection is None:
        url = context.config.get_main_option("sqlalchemy.url")
        context.configure(url=url, literal_binds=True, **options)
    else:
        context.configure(connection=connection, **options)
    with context.begin_transaction():
        context.run_migrations()


# pytest --doctest-modules imports every module under src; only Alembic installs the proxy
if getattr(context, "_proxy", None) is not None:
    run_migrations()
