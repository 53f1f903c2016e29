"""Historical retrieval: join the named views to an entity table as of each row's time.

This is what ``driftloop features retrieve`` and ``driftloop train --features`` call: resolve
the views (declared, current declaration registered), read their sources, join.

Examples
--------
>>> import tempfile, pandas as pd
>>> from pathlib import Path
>>> from driftloop.config import Settings
>>> from driftloop.store import Store
>>> folder = Path(tempfile.mkdtemp())
>>> pd.DataFrame({"cid": [1, 1], "ts": ["2024-01-01", "2024-01-09"], "spend": [5.0, 9.0]}
...              ).to_csv(folder / "s.csv", index=False)
>>> settings = Settings(features={"entities": [{"name": "c", "keys": ["cid"]}],
...     "views": [{"name": "stats", "entity": "c", "source": str(folder / "s.csv"),
...                "event_time": "ts", "features": ["spend"]}]})
>>> rows = pd.DataFrame({"cid": [1, 1], "at": ["2024-01-05", "2024-01-10"], "y": [0, 1]})
>>> with Store.open("sqlite://") as store:
...     got = historical_features(store, settings, rows, ["stats"], time_column="at",
...                               actor="ci")
>>> got.result.frame["spend"].tolist(), [(u.view, u.version) for u in got.uses]
([5.0, 9.0], [('stats', 1)])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from driftloop.config import Settings
from driftloop.data.read import CSV_SUFFIXES, PARQUET_SUFFIXES, table_suffix
from driftloop.errors import UsageError
from driftloop.features.historical import JoinResult, join_as_of
from driftloop.features.registry import resolve_views
from driftloop.features.spec import FeatureUse
from driftloop.store import Store


@dataclass(frozen=True)
class Retrieved:
    """The joined table and the registered view versions it was joined from."""

    uses: list[FeatureUse]
    result: JoinResult


def parse_view_names(text: str) -> list[str]:
    """``"a, b"`` -> ``["a", "b"]`` (the ``--features``/``--views`` flag).

    >>> parse_view_names("stats, clicks")
    ['stats', 'clicks']
    """
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError("no feature view named: pass VIEW[,VIEW...], e.g. --features stats.")
    return names


def historical_features(store: Store, settings: Settings, rows: pd.DataFrame,
                        views: Sequence[str], *, time_column: str, actor: str,
                        leak_guard: bool = True) -> Retrieved:
    """Join ``views`` to ``rows`` as of ``rows[time_column]`` (see :func:`join_as_of`)."""
    if time_column not in rows.columns:
        raise UsageError(f"the entity table has no time column {time_column!r} (columns: "
                         f"{', '.join(map(str, rows.columns))}). Pass --time-column COLUMN.")
    resolved = resolve_views(store, settings, views, actor=actor)
    result = join_as_of(rows, [frame for _, frame in resolved], time_column=time_column,
                        leak_guard=leak_guard)
    return Retrieved(uses=[use for use, _ in resolved], result=result)


def write_table(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` atomically as Parquet or CSV, chosen by ``path``'s suffix."""
    target = Path(path)
    suffix = table_suffix(target)
    if suffix not in (".csv", ".parquet", ".pq"):
        raise UsageError(f"{target}: write the table as .parquet, .pq or .csv (got "
                         f"{suffix or target.suffix or 'no suffix'}).")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    if suffix in CSV_SUFFIXES:
        frame.to_csv(tmp, index=False)
    elif suffix in PARQUET_SUFFIXES:
        frame.to_parquet(tmp, index=False)
    tmp.replace(target)
    return target


__all__ = ["Retrieved", "historical_features", "parse_view_names", "write_table"]
