"""The workbench's data side: uploads kept by content, their preview and the target's task.

An upload is streamed to ``HOME/uploads/`` in chunks (never held in memory), hashed while it is
written, and renamed to its sha256 with the suffix of its kind (``.csv`` or ``.parquet``): no
part of the name a person sent becomes a path. It is refused (:class:`Refused`, 4xx) when it is
over ``ui.upload_limit_bytes`` (as soon as it passes it), not a table, or a table without a
header row; nothing half-written is kept.

Examples
--------
>>> import asyncio, tempfile
>>> from pathlib import Path
>>> folder = Path(tempfile.mkdtemp())
>>> async def chunks():
...     yield b"age,income,approved\\n30,1000,yes\\n"
...     yield b"41,2000,no\\n52,1500,yes\\n"
>>> sha = asyncio.run(save_upload(chunks(), folder, "loans.csv", limit=1000))
>>> p = preview(folder, sha)
>>> p["rows"], p["columns"][2]["name"], p["suggested"][0]
(3, 'approved', 'approved')
>>> describe_target(folder, sha, "approved")["task_words"]
'yes/no: one of two answers'
>>> asyncio.run(save_upload(chunks(), folder, "loans.csv", limit=10))
Traceback (most recent call last):
...
driftloop.http.errors.Refused: the file is over the upload limit of 10 bytes (ui.upload_limit_bytes); upload a smaller file or raise the limit.
"""  # noqa: E501

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pandas as pd

from driftloop.data.read import CSV_SUFFIXES, PARQUET_SUFFIXES, read_table, table_suffix
from driftloop.data.schema import infer_task
from driftloop.errors import DriftloopError
from driftloop.http import Refused

PREVIEW_ROWS = 10
SHA = re.compile(r"^[0-9a-f]{64}$")
TASK_WORDS = {"binary": "yes/no: one of two answers",
              "multiclass": "one of several answers",
              "regression": "a number"}
_ID_LIKE = re.compile(r"(^|_)(id|uuid|key)$", re.IGNORECASE)


def kind_of(filename: str) -> str:
    """``.csv`` or ``.parquet`` from the name a person sent (422 for anything else).

    >>> kind_of("Loans 2024.CSV"), kind_of("x.pq")
    ('.csv', '.parquet')
    """
    suffix = table_suffix(filename or "")
    if suffix in CSV_SUFFIXES and suffix == ".csv":
        return ".csv"
    if suffix in PARQUET_SUFFIXES:
        return ".parquet"
    raise Refused(422, "not_a_table", f"'{_shown(filename)}' is not a CSV or Parquet file; "
                  "upload a .csv or .parquet table with a header row.")


async def save_upload(chunks: AsyncIterator[bytes], folder: Path, filename: str, *,
                      limit: int) -> str:
    """Stream ``chunks`` into ``folder`` under their sha256; returns the sha256."""
    suffix = kind_of(filename)
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".partial-{uuid.uuid4().hex}"
    digest, size = hashlib.sha256(), 0
    try:
        with open(partial, "wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise Refused(413, "too_large", f"the file is over the upload limit of "
                                  f"{limit} bytes (ui.upload_limit_bytes); upload a smaller "
                                  "file or raise the limit.")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size == 0:
            raise Refused(422, "empty", "the file is empty; upload a table with a header row.")
        sha = digest.hexdigest()
        final = folder / f"{sha}{suffix}"
        _check_table(partial, suffix, filename)
        os.replace(partial, final)
        return sha
    finally:
        partial.unlink(missing_ok=True)


def upload_path(folder: Path, sha: str) -> Path:
    """The stored file of upload ``sha`` (404 when there is none)."""
    if not SHA.match(sha or ""):
        raise Refused(404, "not_found", "no such upload: upload the file again.")
    for suffix in (".csv", ".parquet"):
        path = folder / f"{sha}{suffix}"
        if path.is_file():
            return path
    raise Refused(404, "not_found", "no such upload: upload the file again.")


def read_upload(folder: Path, sha: str) -> pd.DataFrame:
    """The table of upload ``sha``."""
    return read_table(upload_path(folder, sha)).frame


def preview(folder: Path, sha: str) -> dict[str, Any]:
    """The first rows, each column's kind and distinct count, and the likely targets."""
    frame = read_upload(folder, sha)
    columns = [{"name": str(c), "distinct": int(frame[c].nunique(dropna=True)),
                "missing": int(frame[c].isna().sum()), "dtype": str(frame[c].dtype)}
               for c in frame.columns]
    head = frame.head(PREVIEW_ROWS).astype(object).where(frame.head(PREVIEW_ROWS).notna(), None)
    return {"upload": sha, "rows": len(frame), "columns": columns,
            "head": [[_cell(v) for v in row] for row in head.itertuples(index=False)],
            "suggested": suggest_targets(frame)}


def suggest_targets(frame: pd.DataFrame) -> list[str]:
    """Likely columns to predict: few distinct values (answers), the last column first
    (tables usually end with the outcome); id-like and constant columns never.

    >>> suggest_targets(pd.DataFrame({"id": [1, 2, 3], "age": [3, 4, 5], "ok": ["y", "n", "y"]}))
    ['ok']
    """
    picks = []
    for name in reversed(list(frame.columns)):
        distinct = frame[name].nunique(dropna=True)
        if _ID_LIKE.search(str(name)) or distinct < 2:
            continue
        if distinct <= max(2, min(20, len(frame) // 10)):
            picks.append(str(name))
    return picks[:3]


def describe_target(folder: Path, sha: str, target: str) -> dict[str, Any]:
    """The task the target implies, in words; 422 naming the problem when it cannot be one
    (a single value, all missing, not a column)."""
    frame = read_upload(folder, sha)
    if target not in frame.columns:
        raise Refused(422, "no_column", f"the table has no column '{_shown(target)}'; pick one "
                      "of its columns.")
    try:
        task = infer_task(frame[target], name=target, source="the uploaded table")
    except DriftloopError as exc:
        raise Refused(422, "bad_target", str(exc)) from None
    counts = frame[target].value_counts(dropna=True)
    answers = [str(v) for v in counts.index[:10]] if task != "regression" else []
    return {"target": target, "task": task, "task_words": TASK_WORDS[task], "answers": answers}


def _check_table(path: Path, suffix: str, filename: str) -> None:
    named = path.with_name(path.name + suffix)  # read_table knows the kind by the suffix
    os.replace(path, named)
    try:
        try:
            frame = read_table(named).frame
        except DriftloopError as exc:
            raise Refused(422, "not_a_table", f"'{_shown(filename)}' could not be read as a "
                          f"table: {_first_line(exc)}") from None
        except Exception:  # a reader's own error on bytes that are no table at all
            raise Refused(422, "not_a_table", f"'{_shown(filename)}' is not a table the "
                          "workbench can read; upload a CSV or Parquet file.") from None
        if frame.shape[1] < 2 or len(frame) == 0:
            raise Refused(422, "not_a_table", f"'{_shown(filename)}' has {frame.shape[1]} "
                          f"column(s) and {len(frame)} row(s); a table to learn from needs a "
                          "header row, a column to predict and at least one other column.")
        if _no_header(frame):
            raise Refused(422, "no_header", f"'{_shown(filename)}' has no header row (its "
                          f"first line holds values: {', '.join(map(str, frame.columns[:3]))}"
                          "…); add a first line naming each column.")
    finally:
        os.replace(named, path)


def _no_header(frame: pd.DataFrame) -> bool:
    """The first line was data: every name is a number, or blank."""
    def value_like(name: object) -> bool:
        text = str(name).strip()
        if not text or text.startswith("Unnamed:"):
            return True
        try:
            float(text)
        except ValueError:
            return False
        return True
    return all(value_like(c) for c in frame.columns)


def _cell(value: object) -> object:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _shown(text: str) -> str:
    return "".join(c for c in str(text)[:80] if c.isprintable())


__all__ = ["PREVIEW_ROWS", "TASK_WORDS", "describe_target", "kind_of", "preview",
           "read_upload", "save_upload", "suggest_targets", "upload_path"]
