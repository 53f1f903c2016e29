"""Read tables (CSV, Parquet, DataFrame) and arrays (NPZ) into typed sources.

Every problem with the input raises :class:`~driftloop.errors.DataError` with one message that
names the file and says what to do; nothing here is loaded with pickle.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.core import split_protocol

from driftloop.data.fingerprint import fingerprint_frame
from driftloop.errors import ConfigError, DataError
from driftloop.store.remote import bucket_message, no_such_bucket, remote_errors, remote_fs

ArrayKind = Literal["image", "sequence"]

CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv")
PARQUET_SUFFIXES = (".parquet", ".pq")
TABLE_SUFFIXES = CSV_SUFFIXES + PARQUET_SUFFIXES
ARRAY_SUFFIXES = (".npz",)

# Errors the CSV and Parquet readers raise on a corrupt or unreadable file.
_READ_ERRORS = (ValueError, OSError, UnicodeDecodeError, EOFError, zlib.error, pa.ArrowException)


@dataclass(frozen=True)
class TableSource:
    """A table read into memory and the URI it came from."""

    frame: pd.DataFrame
    uri: str


@dataclass(frozen=True)
class ArraySource:
    """Arrays read from an NPZ file: ``x`` float32 (N×C×H×W or N×T×F) and labels ``y``."""

    x: np.ndarray
    y: np.ndarray
    uri: str
    kind: ArrayKind


def table_suffix(path: str | os.PathLike[str]) -> str | None:
    """Return the supported table suffix ``path`` ends with (lower case), or None.

    Examples
    --------
    >>> table_suffix("runs/Data.CSV.gz"), table_suffix("x.pq"), table_suffix("x.json")
    ('.csv.gz', '.pq', None)
    """
    name = Path(path).name.lower()
    # Longest first so that ".csv.gz" wins over a bare ".gz" check.
    for suffix in sorted(TABLE_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    return None


def read_table(source: str | os.PathLike[str] | pd.DataFrame) -> TableSource:
    """Read a CSV, TSV, Parquet file or a DataFrame into a :class:`TableSource`.

    The frame gets a fresh 0-based ``RangeIndex``, so row labels are data-row positions
    (the header is not counted). Column names of a DataFrame are turned into strings.

    Parameters
    ----------
    source
        A path ending in ``.csv``, ``.csv.gz``, ``.tsv``, ``.parquet`` or ``.pq``, an fsspec
        URL of such a file (``s3://bucket/data.csv``: s3fs reads it, honouring
        ``AWS_ENDPOINT_URL``; the URL is the table's URI), or a DataFrame (copied; its URI
        is ``dataframe:`` plus the first 16 hex digits of its content fingerprint).

    Examples
    --------
    >>> import pandas as pd
    >>> table = read_table(pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}))
    >>> table.frame.shape, table.uri.startswith("dataframe:"), len(table.uri)
    ((2, 2), True, 26)
    """
    if isinstance(source, pd.DataFrame):
        frame = _frame_copy(source)
        _check_frame(frame, "the DataFrame")
        digest = fingerprint_frame(frame)[:16]
        return TableSource(frame=frame, uri=f"dataframe:{digest}")
    if is_url(source):
        url = str(source)
        _table_suffix_of(url)  # refuse an unknown type before downloading anything
        with _fetched(url) as local:
            return _read_table_file(local, url, url)
    path = _existing_file(source)
    return _read_table_file(path, str(path), _file_uri(path))


def is_url(source: object) -> bool:
    """True when ``source`` is a URL of a remote file system (``s3://…``), not a local path.

    Examples
    --------
    >>> is_url("s3://bucket/a.csv"), is_url("data/a.csv"), is_url("file:///a.csv")
    (True, False, False)
    """
    if not isinstance(source, str):
        return False
    protocol, _ = split_protocol(source)
    return protocol not in (None, "file", "local")


def _table_suffix_of(name: str) -> str:
    suffix = table_suffix(name)
    if suffix is None:
        raise DataError(
            f"{name}: unknown file type. Supported table files: {', '.join(TABLE_SUFFIXES)}; "
            "arrays: .npz. Rename the file or convert it to one of these."
        )
    return suffix


def _read_table_file(path: Path, name: str, uri: str) -> TableSource:
    suffix = _table_suffix_of(name)
    if suffix in CSV_SUFFIXES:
        frame = _read_csv(path, suffix, name)
    else:
        frame = _read_parquet(path, name)
    _check_frame(frame, name)
    return TableSource(frame=frame.reset_index(drop=True), uri=uri)


@contextmanager
def _fetched(url: str) -> Iterator[Path]:
    """A local copy of the remote file ``url`` (same file name), deleted afterwards."""
    fs, remote = remote_fs(url, "the data file")
    with tempfile.TemporaryDirectory(prefix="driftloop-fetch-") as folder:
        local = Path(folder) / (remote.rstrip("/").rsplit("/", 1)[-1] or "data")
        try:
            with remote_errors(url, "the data file"):
                if not fs.isfile(remote):
                    raise FileNotFoundError(remote)
                fs.get_file(remote, str(local))
        except FileNotFoundError as exc:
            if no_such_bucket(exc):
                raise ConfigError(bucket_message(url, "the data file")) from None
            raise DataError(f"{url}: file not found. Check the URL (bucket, prefix and "
                            "name).") from None
        yield local


def read_arrays(path: str | os.PathLike[str], kind: ArrayKind | None = None) -> ArraySource:
    """Read an NPZ file holding arrays ``X`` and ``y`` into an :class:`ArraySource`.

    ``X`` is N×H×W or N×C×H×W (images; N×H×W becomes N×1×H×W) or N×T×F (sequences), and is
    cast to float32. A 4-D ``X`` is an image batch. A 3-D ``X`` is read as ``kind`` when given,
    else as the ``kind`` string stored in the file when present, else as images when dims 1 and
    2 are equal and as sequences otherwise. The file is loaded with ``allow_pickle=False``.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> rng = np.random.default_rng(0)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     np.savez(f"{folder}/digits.npz", X=rng.random((5, 8, 8)), y=np.arange(5))
    ...     arrays = read_arrays(f"{folder}/digits.npz")
    >>> arrays.kind, arrays.x.shape, arrays.x.dtype
    ('image', (5, 1, 8, 8), dtype('float32'))
    """
    path = _existing_file(path)
    if not path.name.lower().endswith(ARRAY_SUFFIXES):
        raise DataError(f"{path}: arrays must be an .npz file holding 'X' and 'y'.")
    if kind not in (None, "image", "sequence"):
        raise DataError(f"kind must be 'image', 'sequence' or None. Got {kind!r} instead.")
    x, y, stored_kind = _load_npz(path)
    x, y = _check_arrays(path, x, y)
    resolved = _resolve_kind(path, x, kind or stored_kind)
    if resolved == "image" and x.ndim == 3:
        x = x[:, np.newaxis, :, :]
    return ArraySource(
        x=np.ascontiguousarray(x, dtype=np.float32), y=y, uri=_file_uri(path), kind=resolved
    )


def _existing_file(source: str | os.PathLike[str]) -> Path:
    protocol, local = split_protocol(os.fspath(source))
    path = Path(local if protocol in ("file", "local") else source)  # a file:// URI is a path
    if not path.exists():
        raise DataError(f"{path}: file not found. Check the path (working dir: {Path.cwd()}).")
    if not path.is_file():
        raise DataError(f"{path}: is a directory, not a data file. Pass a file path.")
    return path


def _frame_copy(frame: pd.DataFrame) -> pd.DataFrame:
    copy = frame.reset_index(drop=True)
    copy.columns = [str(name) for name in copy.columns]
    return copy


def _file_uri(path: Path) -> str:
    return "file://" + str(path.resolve())


def _read_csv(path: Path, suffix: str, name: str) -> pd.DataFrame:
    sep = "\t" if suffix == ".tsv" else ","
    try:
        header = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False)
        _check_unique_names([str(column) for column in header.iloc[0]], name)
        return pd.read_csv(path, sep=sep)
    except pd.errors.EmptyDataError:
        raise DataError(f"{name}: the file is empty. Write a header row and data rows.") from None
    except _READ_ERRORS as exc:
        raise DataError(
            f"{name}: cannot be read as {'TSV' if sep == chr(9) else 'CSV'} ({_first_line(exc)}). "
            "Check that the file is a complete, uncompressed-or-gzip text table."
        ) from None


def _read_parquet(path: Path, name: str) -> pd.DataFrame:
    try:
        table = pq.read_table(path)
    except _READ_ERRORS as exc:
        raise DataError(
            f"{name}: cannot be read as Parquet ({_first_line(exc)}). "
            "Check that the file is complete and was written as Parquet."
        ) from None
    _check_unique_names(table.column_names, name)
    return table.to_pandas()


def _check_frame(frame: pd.DataFrame, name: str) -> None:
    _check_unique_names([str(column) for column in frame.columns], name)
    if frame.shape[1] == 0:
        raise DataError(f"{name}: has no columns. Provide a table with a header row.")
    if len(frame) == 0:
        raise DataError(f"{name}: has a header but zero data rows. Provide at least one row.")


def _check_unique_names(names: list[str], name: str) -> None:
    seen: set[str] = set()
    duplicates = [column for column in names if column in seen or seen.add(column)]
    if duplicates:
        listed = ", ".join(repr(column) for column in dict.fromkeys(duplicates))
        raise DataError(f"{name}: duplicate column names: {listed}. Rename them to be unique.")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray, str | None]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [key for key in ("X", "y") if key not in npz.files]
            if missing:
                raise DataError(
                    f"{path}: array {' and '.join(repr(k) for k in missing)} not found. "
                    f"Arrays in the file: {', '.join(npz.files) or 'none'}. "
                    "Save features as 'X' and labels as 'y' (np.savez(path, X=..., y=...))."
                )
            stored_kind = str(npz["kind"]) if "kind" in npz.files else None
            return npz["X"], npz["y"], stored_kind
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{path}: cannot be read as NPZ ({_first_line(exc)}). Save it with np.savez from "
            "numeric or string arrays (object arrays need pickle, which driftloop refuses)."
        ) from None


def _check_arrays(path: Path, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DataError(f"{path}: X has dtype {x.dtype}; it must be numeric. Save X as numbers.")
    if x.ndim not in (3, 4):
        raise DataError(
            f"{path}: X has shape {x.shape} ({x.ndim}-D); expected N×H×W or N×C×H×W for images "
            "or N×T×F for sequences. Reshape X (tables go in a CSV or Parquet file)."
        )
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{path}: y has shape {y.shape}; expected one label per sample (N,).")
    if len(x) != len(y):
        raise DataError(
            f"{path}: X has {len(x)} samples but y has {len(y)}. Save one label per sample."
        )
    if len(x) == 0:
        raise DataError(f"{path}: X and y hold zero samples. Provide at least one sample.")
    _check_finite(path, "X", x)
    if np.issubdtype(y.dtype, np.floating):
        _check_finite(path, "y", y)
    return x, y


def _check_finite(path: Path, name: str, values: np.ndarray) -> None:
    if np.issubdtype(values.dtype, np.floating):
        finite = np.isfinite(values).reshape(len(values), -1).all(axis=1)
        if not finite.all():
            bad = np.flatnonzero(~finite)
            raise DataError(
                f"{path}: {name} has non-finite values (NaN or inf) in sample {bad[0]} "
                f"({len(bad)} samples in all). Remove or fill those samples."
            )


def _resolve_kind(path: Path, x: np.ndarray, kind: str | None) -> ArrayKind:
    if kind not in (None, "image", "sequence"):
        raise DataError(f"{path}: stored kind {kind!r} is not 'image' or 'sequence'. Fix it.")
    if x.ndim == 4:
        if kind == "sequence":
            raise DataError(
                f"{path}: X is 4-D {x.shape}, an image batch, but kind 'sequence' needs N×T×F."
            )
        return "image"
    if kind is not None:
        return "image" if kind == "image" else "sequence"
    return "image" if x.shape[1] == x.shape[2] else "sequence"
