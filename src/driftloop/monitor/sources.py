"""Where drift data comes from: DataFrames and CSV/Parquet files, profiled a few columns at a time.

Parquet files are read a group of columns at a time (at most ``_CELLS_PER_READ`` cells), so a
large table is never in memory as a whole; CSV files are read once.

Examples
--------
>>> import pandas as pd
>>> from driftloop.config import DriftSettings
>>> seen = set()
>>> ref = reference_profile(pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]}), {"y"},
...                         DriftSettings(), seen)
>>> sorted(ref.features), sorted(seen)
(['x'], ['x', 'y'])
>>> current_profile(pd.DataFrame({"x": [2.0, 9.0]}), ref, set(), DriftSettings(), seen).rows
2
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from driftloop.config import DriftSettings
from driftloop.errors import DataError, UsageError
from driftloop.monitor.profile import (
    Profile,
    build_reference,
    current_feature,
    infer_kind,
    reference_feature,
)

_CELLS_PER_READ = 4_000_000  # cells read from Parquet at once (32 MB as float64)


def reference_profile(
    reference: str | os.PathLike[str] | pd.DataFrame | Profile, drop: set[str],
    config: DriftSettings, seen: set[str],
) -> Profile:
    """The reference profile of a Profile, a DataFrame or a CSV/Parquet file (``NAME:VERSION``
    references are :func:`driftloop.monitor.model_outputs.load_model_reference`)."""
    if isinstance(reference, Profile):
        return reference
    if isinstance(reference, pd.DataFrame):
        seen.update(str(c) for c in reference.columns)
        return build_reference(_without(reference, drop), settings=config)
    if not isinstance(reference, (str, os.PathLike)):
        raise UsageError(
            f"reference must be a DataFrame, a CSV/Parquet path, a Profile or NAME:VERSION; "
            f"got {type(reference).__name__}."
        )
    rows, chunks = _chunks(reference, seen, drop=drop)
    features = {
        str(name): reference_feature(str(name), chunk[name], infer_kind(chunk[name]), config)
        for chunk in chunks for name in chunk.columns
    }
    return Profile(features=features, outputs={}, rows=rows)


def current_profile(
    current: str | os.PathLike[str] | pd.DataFrame, reference: Profile, drop: set[str],
    config: DriftSettings, seen: set[str],
) -> Profile:
    """The current data profiled on the reference's bins (columns it lacks are ignored)."""
    if isinstance(current, pd.DataFrame) or (
        isinstance(current, (str, os.PathLike)) and is_file_like(current)
    ):
        wanted = set(reference.features) - drop
        rows, chunks = _chunks(current, seen, keep=wanted)
        features = {
            str(name): current_feature(reference.features[str(name)], chunk[name], rows, config)
            for chunk in chunks for name in chunk.columns
        }
        return Profile(features=features, outputs={}, rows=rows)
    if isinstance(current, (str, os.PathLike)):
        raise DataError(f"{current}: file not found. Check the path (working dir: {Path.cwd()}).")
    raise UsageError(
        f"current must be a DataFrame, a CSV/Parquet path or a Profile; got "
        f"{type(current).__name__}."
    )


def is_file_like(source: str | os.PathLike[str]) -> bool:
    """A path to a table (it exists, has a table suffix, or cannot be NAME:VERSION)."""
    from driftloop.data.read import table_suffix

    path = Path(source)
    return path.exists() or table_suffix(path) is not None or ":" not in str(source)


def _chunks(
    source: str | os.PathLike[str] | pd.DataFrame,
    seen: set[str],
    *,
    drop: set[str] = frozenset(),  # type: ignore[assignment]
    keep: set[str] | None = None,
) -> tuple[int, Iterator[pd.DataFrame]]:
    """Rows and the table's columns in groups (Parquet: read a group at a time)."""
    from driftloop.data.read import PARQUET_SUFFIXES, read_table, table_suffix

    def wanted(names: list[str]) -> list[str]:
        seen.update(names)
        return [n for n in names if n not in drop and (keep is None or n in keep)]

    if isinstance(source, pd.DataFrame):
        frame = source.rename(columns=str)
        if frame.columns.duplicated().any():
            raise DataError("the DataFrame has duplicate column names; rename them.")
        return len(frame), iter([frame[wanted(list(frame.columns))]])
    if table_suffix(source) not in PARQUET_SUFFIXES:
        frame = read_table(source).frame
        return len(frame), iter([frame[wanted(list(frame.columns))]])
    return _parquet_chunks(Path(source), wanted)


def _parquet_chunks(
    path: Path, wanted: Any
) -> tuple[int, Iterator[pd.DataFrame]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from driftloop.data.read import read_table

    if not path.is_file():
        read_table(path)  # raises the house's "file not found" / "is a directory" message
    try:
        file = pq.ParquetFile(path)
        names = list(file.schema_arrow.names)
        rows = file.metadata.num_rows
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise DataError(
            f"{path}: cannot be read as Parquet ({str(exc).splitlines()[0]}). Check that the "
            "file is complete and was written as Parquet."
        ) from None
    if len(set(names)) != len(names):
        raise DataError(f"{path}: duplicate column names. Rename them to be unique.")
    columns = wanted(names)
    step = max(1, _CELLS_PER_READ // max(rows, 1))

    def read() -> Iterator[pd.DataFrame]:
        for start in range(0, len(columns), step):
            yield file.read(columns=columns[start:start + step]).to_pandas()

    return rows, read()


def _without(frame: pd.DataFrame, drop: set[str]) -> pd.DataFrame:
    frame = frame.rename(columns=str)
    return frame.drop(columns=[c for c in drop if c in frame.columns])


__all__ = ["current_profile", "is_file_like", "reference_profile"]
