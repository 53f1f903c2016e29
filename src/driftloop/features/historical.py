"""Point-in-time (as-of) joins: each training row gets every view's value as of its own time.

For a row at time ``t`` and a view, the value used is the one of the source row with the same
entity key whose event time is ``<= t`` and, when the view has a created (ingested) time and
``leak_guard`` is on, whose created time is ``<= t`` too: a value back-filled after ``t`` never
reaches that row. Among those, the latest event time wins, ties broken by the latest created
time, then by the last row in source order. A winner older than ``t - ttl`` leaves all of the
view's features missing, never an older value. Rows with a missing key or time get missing
features. Times are compared as UTC (naive times are UTC).

DuckDB's ``ASOF JOIN`` does the join (in-process, on Arrow data, no row-by-row Python).

Examples
--------
>>> import pandas as pd
>>> stats = pd.DataFrame({"customer_id": [1, 1], "ts": ["2024-01-01", "2024-01-10"],
...                       "spend": [10.0, 99.0]})
>>> view = ViewFrame(name="stats", keys=["customer_id"], event_time="ts", created_time=None,
...                  ttl_seconds=None, features=["spend"], table=stats)
>>> rows = pd.DataFrame({"customer_id": [1, 1, 2], "at": ["2024-01-05", "2024-02-01",
...                      "2024-02-01"], "label": [0, 1, 0]})
>>> result = join_as_of(rows, [view], time_column="at")
>>> result.frame["spend"].tolist(), result.missing
([10.0, 99.0, nan], {'stats': {'spend': 1}})
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from driftloop.data.values import category_keys
from driftloop.errors import DataError, UsageError

# The created time given to source rows that have none when the leak guard is off: older than
# any real time, so they lose created-time ties.
_OLDEST_NS = -(2**63) + 1


@dataclass(frozen=True)
class ViewFrame:
    """One view's source rows, ready to join: key, time and feature columns of ``table``."""

    name: str
    keys: list[str]
    event_time: str
    created_time: str | None
    ttl_seconds: int | None
    features: list[str]
    table: pa.Table | pd.DataFrame


@dataclass(frozen=True)
class JoinResult:
    """``rows`` in the same order with each view's features appended, and what stayed missing."""

    frame: pd.DataFrame
    missing: dict[str, dict[str, int]]


def join_as_of(rows: pd.DataFrame, views: Sequence[ViewFrame], *, time_column: str,
               leak_guard: bool = True) -> JoinResult:
    """Join every view to ``rows`` as of each row's ``time_column`` (see the module docstring).

    Parameters
    ----------
    rows
        The entity table: each view's key columns, ``time_column`` and anything else (labels,
        request-time features), kept as they are.
    views
        The views to join; their feature names must differ from each other's and from the
        columns of ``rows`` (a :class:`~driftloop.errors.UsageError` names the clash).
    leak_guard
        Also require created time ``<= t`` for views that have a created time (the default);
        off, a value back-filled later than ``t`` is used as if it had been known at ``t``.

    Examples
    --------
    A back-filled value (created after the row's time) is not used unless the guard is off:

    >>> import pandas as pd
    >>> src = pd.DataFrame({"id": ["a", "a"], "ev": ["2024-01-01", "2024-01-02"],
    ...                     "cr": ["2024-01-01", "2024-03-01"], "x": [1.0, 2.0]})
    >>> view = ViewFrame("v", ["id"], "ev", "cr", None, ["x"], src)
    >>> rows = pd.DataFrame({"id": ["a"], "t": ["2024-02-01"]})
    >>> join_as_of(rows, [view], time_column="t").frame["x"].tolist()
    [1.0]
    >>> join_as_of(rows, [view], time_column="t", leak_guard=False).frame["x"].tolist()
    [2.0]
    """
    _check_names(rows, views, time_column)
    row_times = _time_ns(rows[time_column], f"the rows' time column {time_column!r}")
    columns: dict[str, object] = {}
    missing: dict[str, dict[str, int]] = {}
    with duckdb.connect() as con:
        for view in views:
            source = _source_frame(view)
            picked = _pick(con, rows, row_times, view, source, leak_guard)
            missing[view.name] = {}
            for name in view.features:
                # pandas' take with allow_fill: -1 becomes the dtype's missing value (ints
                # become floats with NaN, as a CSV round trip would read them).
                # numpy-backed columns as ndarrays (pandas < 2.3 warns on a NumpyExtensionArray)
                column = source[name]
                data = column.to_numpy() if isinstance(column.dtype, np.dtype) else column.array
                values = pd.api.extensions.take(data, picked, allow_fill=True)
                columns[name] = values
                missing[view.name][name] = int(pd.isna(values).sum())
    features = pd.DataFrame(columns, index=range(len(rows)))
    frame = pd.concat([rows.reset_index(drop=True), features], axis=1)
    frame.index = rows.index
    return JoinResult(frame=frame, missing=missing)


def _check_names(rows: pd.DataFrame, views: Sequence[ViewFrame], time_column: str) -> None:
    if time_column not in rows.columns:
        raise DataError(f"the rows have no time column {time_column!r}; columns: "
                        f"{', '.join(map(str, rows.columns))}. Pass the column that holds each "
                        "row's time.")
    owner: dict[str, str] = {str(c): "the rows" for c in rows.columns}
    for view in views:
        absent = [k for k in view.keys if k not in rows.columns]
        if absent:
            raise DataError(f"view {view.name}: the rows have no entity key column "
                            f"{', '.join(map(repr, absent))}. Add it to the rows table.")
        for name in view.features:
            if name in owner:
                raise UsageError(f"feature {name!r} of view {view.name} clashes with {name!r} "
                                 f"of {owner[name]}. Rename one of them or join the views "
                                 "separately.")
            owner[name] = f"view {view.name}"


def _source_frame(view: ViewFrame) -> pd.DataFrame:
    table = view.table
    names = [str(c) for c in table.columns] if isinstance(table, pd.DataFrame) else (
        table.column_names)
    needed = list(dict.fromkeys([*view.keys, view.event_time,
                                 *([view.created_time] if view.created_time else []),
                                 *view.features]))
    absent = [c for c in needed if c not in names]
    if absent:
        raise DataError(f"view {view.name}: its source has no column "
                        f"{', '.join(map(repr, absent))}; columns: {', '.join(names)}. Fix the "
                        "view's declaration or its source.")
    if isinstance(table, pd.DataFrame):
        return table.reset_index(drop=True)
    return table.select(needed).to_pandas()


def _pick(con: duckdb.DuckDBPyConnection, rows: pd.DataFrame, row_times: np.ndarray,
          view: ViewFrame, table: pd.DataFrame, leak_guard: bool) -> np.ndarray:
    """The source row index each row takes from ``view`` (-1: none, or expired)."""
    if len(table) == 0 or len(rows) == 0:
        return np.full(len(rows), -1, dtype=np.int64)
    keys = [f"k{i}" for i in range(len(view.keys))]
    left = {"row_id": np.arange(len(rows), dtype=np.int64), "t": _nullable(row_times)}
    right = {"s": np.arange(len(table), dtype=np.int64),
             "e": _nullable(_time_ns(table[view.event_time],
                                     f"view {view.name}: event time column {view.event_time!r}"))}
    for alias, key in zip(keys, view.keys, strict=True):
        left[alias], right[alias] = _key_arrays(rows[key], table[key])
    guard = leak_guard and view.created_time is not None
    if view.created_time is not None:
        created = _time_ns(table[view.created_time],
                           f"view {view.name}: created time column {view.created_time!r}")
        right["c"] = _nullable(created) if guard else pa.array(
            np.where(created == np.iinfo(np.int64).min, _OLDEST_NS, created))
    else:
        right["c"] = pa.array(np.zeros(len(table), dtype=np.int64))
    con.register("dl_rows", pa.table(left))
    con.register("dl_view", pa.table(right))
    ttl = [] if view.ttl_seconds is None else [int(view.ttl_seconds) * 10**9]
    result = con.execute(_pick_sql(keys, guard, ttl_ns=bool(ttl)), ttl).fetchnumpy()
    con.unregister("dl_rows")
    con.unregister("dl_view")
    picked = np.full(len(rows), -1, dtype=np.int64)
    chosen = np.asarray(np.ma.filled(result["s"], -1), dtype=np.int64)
    picked[np.asarray(result["row_id"], dtype=np.int64)] = chosen
    return picked


def _pick_sql(keys: list[str], guard: bool, *, ttl_ns: bool) -> str:
    # ASOF picks the latest "visible from" time <= t, but with the leak guard a row becomes
    # usable only once both its event and its created time have passed (visible from the later
    # of the two), and among usable rows the latest *event* time must win, not the latest
    # visible one: a back-filled correction of an old event becomes visible late yet is not the
    # newest value. So per key, ordered by visible-from, a running max of (event, created,
    # source row) is the winner among everything usable so far, and the ASOF on visible-from
    # then finds, for each t, exactly the rows usable at t.
    # Only fixed aliases (k0.., e, c, s, t) and the TTL as a bound parameter reach the SQL:
    # no user-declared name or value is formatted into it.
    k = ", ".join(keys)
    visible = "greatest(e, c)" if guard else "e"
    ttl = " AND w.best.e >= r.t - $1" if ttl_ns else ""
    on = " AND ".join(f"r.{a} = w.{a}" for a in keys)
    not_null = " AND ".join(f"{a} IS NOT NULL" for a in [*keys, "e", "c"])
    return f"""
        WITH g AS (
            SELECT {k}, {visible} AS vis, max({{'e': e, 'c': c, 's': s}}) AS b
            FROM dl_view WHERE {not_null} GROUP BY {k}, vis),
        w AS (
            SELECT {k}, vis, max(b) OVER (PARTITION BY {k} ORDER BY vis
                                          ROWS UNBOUNDED PRECEDING) AS best
            FROM g)
        SELECT r.row_id, CASE WHEN w.best.s IS NOT NULL{ttl} THEN w.best.s END AS s
        FROM dl_rows r ASOF LEFT JOIN w ON {on} AND r.t >= w.vis"""


def _key_arrays(left: pd.Series, right: pd.Series) -> tuple[pa.Array, pa.Array]:
    """Both sides' keys as comparable arrays: integers as they are, anything else as the
    category-key text that serving hashes (so 42, 42.0 and "42" are one entity)."""
    if pd.api.types.is_integer_dtype(left.dtype) and pd.api.types.is_integer_dtype(right.dtype):
        return (pa.array(left, type=pa.int64(), from_pandas=True),
                pa.array(right, type=pa.int64(), from_pandas=True))
    return (pa.array(category_keys(left), type=pa.string()),
            pa.array(category_keys(right), type=pa.string()))


def _time_ns(column: pd.Series, what: str) -> np.ndarray:
    """``column`` as UTC nanoseconds since the epoch (int64; NaT's minimum where missing)."""
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(
            column.dtype):
        if column.isna().all():
            return np.full(len(column), np.iinfo(np.int64).min, dtype=np.int64)
        raise DataError(f"{what} holds numbers, not times. Write times as ISO 8601 text "
                        "(2024-01-31T12:00:00Z) or as a timestamp column.")
    try:
        if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(
                column.dtype):
            times = pd.to_datetime(column, utc=True)
        else:
            times = pd.to_datetime(column, utc=True, format="ISO8601")
    except (ValueError, TypeError, OverflowError) as exc:
        raise DataError(f"{what} has a value that is not a time ({str(exc).splitlines()[0]}). "
                        "Write times as ISO 8601 text, e.g. 2024-01-31T12:00:00Z.") from None
    return times.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view(np.int64)


def _nullable(ns: np.ndarray) -> pa.Array:
    missing = ns == np.iinfo(np.int64).min
    return pa.array(ns, mask=missing if missing.any() else None)


__all__ = ["JoinResult", "ViewFrame", "join_as_of"]
