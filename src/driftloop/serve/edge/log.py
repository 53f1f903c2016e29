"""An edge device's own prediction log: append-only JSON Lines files, bounded and rotating.

``driftloop ingest LOG_DIR --model NAME`` reads these files into the store's prediction log,
so monitoring, the loop and feedback treat edge predictions as served ones. The folder holds
``edge-00000001.jsonl``, ``edge-00000002.jsonl``, …; each file starts with a header line
(``{"kind": "header", "format": 1, "model", "version", "seq", "dropped_files",
"dropped_rows"}``) followed by one line per predicted row (``{"kind": "row", "request_id",
"at", "model", "version", "features", "output", "subject"}``). A file is closed once it
passes ``max_bytes``; past ``max_files`` files the oldest is deleted and the next header
counts what was lost (``dropped_files``, ``dropped_rows``, cumulative), so an offline device
never fills its disk and the loss is visible on ingest.

Every batch is appended under a ``flock`` of ``.lock`` with one ``write`` then ``flush`` +
``fsync``; a crash can leave only the last line torn (no newline), which ingest skips.
Columns flagged as personal data and the subject ids are stored as :func:`hash_value` under
the package's key (never in clear).

Examples
--------
>>> import json, tempfile
>>> folder = tempfile.mkdtemp()
>>> log = EdgeLog(folder, model="churn", version=3, key="k", pii=frozenset({"email"}))
>>> log.append(["r1"], {"email": ["a@x.org"], "age": [30]}, {"predictions": ["yes"]})
>>> lines = [json.loads(t) for t in log.files()[0].read_text("utf-8").splitlines()]
>>> lines[0]["kind"], lines[1]["features"]["age"], lines[1]["features"]["email"] != "a@x.org"
('header', 30, True)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .shared import hash_value

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOG_FORMAT = 1
FILE_PATTERN = re.compile(r"^edge-(\d{8})\.jsonl$")


class EdgeLog:
    """Append predictions to ``folder`` (created when missing).

    Parameters
    ----------
    folder
        The log folder (one per device and model).
    model, version
        What every line names.
    key
        HMAC key of the personal-data columns and subject ids.
    pii
        The columns stored hashed.
    max_bytes
        A file past this size is closed and the next batch starts a new one.
    max_files
        Most files kept; the oldest go first (counted in the next header).
    """

    def __init__(self, folder: str | os.PathLike[str], *, model: str, version: int, key: str,
                 pii: frozenset[str] = frozenset(), max_bytes: int = 10_000_000,
                 max_files: int = 20) -> None:
        if max_files < 1 or max_bytes < 1:
            raise ValueError("max_files and max_bytes must be at least 1")
        self.folder = Path(folder)
        self.model, self.version, self.key, self.pii = model, version, key, pii
        self.max_bytes, self.max_files = max_bytes, max_files
        self.folder.mkdir(parents=True, exist_ok=True)

    def files(self) -> list[Path]:
        """The log's files, oldest first."""
        return sorted(p for p in self.folder.iterdir() if FILE_PATTERN.match(p.name))

    def append(self, request_ids: Sequence[str], columns: Mapping[str, list[Any]],
               outputs: Mapping[str, list[Any]],
               subjects: Sequence[str | None] | None = None) -> None:
        """Append one batch: a line per request id (row ``i`` of every column and output)."""
        at = datetime.now(timezone.utc).isoformat()
        hashed = {name: [None if v is None else hash_value(v, self.key) for v in values]
                  if name in self.pii else list(values) for name, values in columns.items()}
        subject = [None if s is None else hash_value(s, self.key)
                   for s in subjects or [None] * len(request_ids)]
        text = "".join(json.dumps(
            {"kind": "row", "request_id": rid, "at": at, "model": self.model,
             "version": self.version, "subject": subject[i],
             "features": {n: v[i] for n, v in hashed.items()},
             "output": {n: v[i] for n, v in outputs.items()}},
            allow_nan=False, separators=(",", ":")) + "\n" for i, rid in enumerate(request_ids))
        with _locked(self.folder / ".lock"):
            path = self._current(len(text.encode("utf-8")))
            with open(path, "a", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())

    def _current(self, size: int) -> Path:
        files = self.files()
        if files and files[-1].stat().st_size + size <= self.max_bytes:
            return files[-1]
        if files and files[-1].stat().st_size <= _header_bytes(files[-1]):
            return files[-1]  # a file of only its header takes the batch, however large
        seq = int(FILE_PATTERN.match(files[-1].name).group(1)) + 1 if files else 1  # type: ignore[union-attr]
        dropped = _header(files[-1]) if files else {}
        dropped_files = int(dropped.get("dropped_files", 0))
        dropped_rows = int(dropped.get("dropped_rows", 0))
        while len(files) >= self.max_files:
            oldest = files.pop(0)
            dropped_files += 1
            dropped_rows += _row_count(oldest)
            oldest.unlink()
        path = self.folder / f"edge-{seq:08d}.jsonl"
        header = {"kind": "header", "format": LOG_FORMAT, "model": self.model,
                  "version": self.version, "seq": seq, "dropped_files": dropped_files,
                  "dropped_rows": dropped_rows}
        with open(path, "x", encoding="utf-8") as f:
            f.write(json.dumps(header, separators=(",", ":")) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return path


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``: several processes predicting on one device
    (each ``python -m PKG predict``) append and rotate one at a time. Where there is no
    ``fcntl`` (Windows) one writer per folder is assumed."""
    with open(path, "a") as f:
        if fcntl is not None:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        yield


def _header(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        try:
            data = json.loads(f.readline())
        except ValueError:
            return {}
    return data if isinstance(data, dict) else {}


def _header_bytes(path: Path) -> int:
    with open(path, "rb") as f:
        return len(f.readline())


def _row_count(path: Path) -> int:
    with open(path, "rb") as f:
        return max(sum(1 for line in f if line.strip()) - 1, 0)


__all__ = ["FILE_PATTERN", "LOG_FORMAT", "EdgeLog"]
