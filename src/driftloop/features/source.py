"""Read a feature view's source (a CSV/Parquet file or a folder of them, local or any fsspec
URL, or a table of a SQL database) into a :class:`~driftloop.features.historical.ViewFrame`.

Files are read with :func:`driftloop.data.read.read_table`, so a view's source is read exactly
like a training table (same types, same messages). A folder's table files are read in name
order (sub-folders included) and stacked; that order is the "source order" that breaks the
last ties of a point-in-time join. A SQL table is reflected and its declared columns selected
through SQLAlchemy (no query text is built from settings); its rows come in primary-key order
when it has one.

Examples
--------
>>> import tempfile, pandas as pd
>>> from driftloop.config import EntitySettings, FeatureViewSettings
>>> entity = EntitySettings(name="customer", keys=["customer_id"])
>>> with tempfile.TemporaryDirectory() as folder:
...     pd.DataFrame({"customer_id": [1], "ts": ["2024-01-01"], "spend": [3.5]}).to_csv(
...         f"{folder}/stats.csv", index=False)
...     view = FeatureViewSettings(name="stats", entity="customer", source=f"{folder}/stats.csv",
...                                event_time="ts", features=["spend"])
...     frame = read_view_source(view, entity)
>>> frame.keys, frame.features, len(frame.table)
(['customer_id'], ['spend'], 1)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import MetaData, Table, select
from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

from driftloop.config import EntitySettings, FeatureViewSettings
from driftloop.data.read import is_url, read_table, table_suffix
from driftloop.errors import DataError
from driftloop.features.historical import ViewFrame
from driftloop.store.engine import make_engine, safe_url
from driftloop.store.remote import remote_errors, remote_fs


def read_view_source(view: FeatureViewSettings, entity: EntitySettings,
                     store_url: str = "") -> ViewFrame:
    """The source rows of ``view`` (keys of ``entity``), checked to hold every declared column.

    ``store_url`` is the database a ``table`` source without its own ``database_url`` is read
    from. Raises :class:`~driftloop.errors.DataError` naming the view and the missing column,
    or the file or table that cannot be read.
    """
    needed = list(dict.fromkeys([*entity.keys, view.event_time,
                                 *([view.created_time] if view.created_time else []),
                                 *view.features]))
    if view.table:
        return _frame(view, entity, _read_sql_table(view, needed, view.database_url or store_url))
    files = _source_files(view)
    frames = [read_table(f).frame for f in files]
    for name, frame in zip(files, frames, strict=True):
        absent = [c for c in needed if c not in frame.columns]
        if absent:
            raise DataError(f"view {view.name}: {name} has no column "
                            f"{', '.join(map(repr, absent))} (columns: "
                            f"{', '.join(map(str, frame.columns))}). Fix the source or the "
                            "view's declaration in features.views.")
    table = frames[0][needed] if len(frames) == 1 else pd.concat(
        [f[needed] for f in frames], ignore_index=True)
    return _frame(view, entity, table)


def _frame(view: FeatureViewSettings, entity: EntitySettings, table: pd.DataFrame) -> ViewFrame:
    return ViewFrame(name=view.name, keys=list(entity.keys), event_time=view.event_time,
                     created_time=view.created_time, ttl_seconds=view.ttl_seconds,
                     features=list(view.features), table=table)


def _read_sql_table(view: FeatureViewSettings, needed: list[str], url: str) -> pd.DataFrame:
    """The ``needed`` columns of ``view.table``, selected through a reflected Table."""
    if not url:
        raise DataError(f"view {view.name}: table {view.table} needs a database: set the view's "
                        "database_url (or read it through a store)")
    schema, _, name = view.table.rpartition(".")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            try:
                table = Table(name, MetaData(), schema=schema or None, autoload_with=conn)
            except NoSuchTableError:
                raise DataError(f"view {view.name}: the database {safe_url(url)} has no table "
                                f"{view.table}. Create it or fix features.views table.") from None
            absent = [c for c in needed if c not in table.c]
            if absent:
                raise DataError(f"view {view.name}: table {view.table} has no column "
                                f"{', '.join(map(repr, absent))} (columns: "
                                f"{', '.join(table.c.keys())}). Fix the table or the view's "
                                "declaration in features.views.")
            query = select(*(table.c[c] for c in needed)).order_by(*table.primary_key.columns)
            return pd.read_sql(query, conn)
    except SQLAlchemyError as exc:
        raise DataError(f"view {view.name}: cannot read table {view.table} from "
                        f"{safe_url(url)}: {exc.__class__.__name__}. Check database_url and "
                        "that the database is reachable.") from None
    finally:
        engine.dispose()


def _source_files(view: FeatureViewSettings) -> list[str]:
    source = view.source
    if is_url(source):
        fs, path = remote_fs(source, f"view {view.name}'s source")
        with remote_errors(source, f"view {view.name}'s source"):
            if not fs.isdir(path):
                return [source]
            protocol = source.split("://", 1)[0]
            found = sorted(p for p in fs.find(path) if table_suffix(p))
        files = [f"{protocol}://{p}" for p in found]
    else:
        folder = Path(source)
        if not folder.is_dir():
            return [source]  # read_table names a missing file
        files = sorted(str(p) for p in folder.rglob("*") if p.is_file() and table_suffix(p))
    if not files:
        raise DataError(f"view {view.name}: the folder {source} holds no CSV or Parquet file. "
                        "Put the view's data there or point features.views source at a file.")
    return files


__all__ = ["read_view_source"]
