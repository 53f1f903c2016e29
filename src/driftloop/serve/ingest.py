"""Import an edge package's prediction log into the store (``driftloop ingest``).

An edge device writes its own log (:mod:`driftloop.serve.edge.log`); once it is copied back
(days later for a device that was offline), :func:`ingest_edge_log` adds its rows to the same
``prediction_log`` the server writes, so ``monitor``, the loop and feedback (by the row's
request id) work for edge predictions as for served ones. Rows keep the device's timestamps;
``replica`` is ``"edge"`` (where the row came from).

- Every file is read and checked before anything is stored: a bad line stops the import with
  one message naming the file and line, and nothing is imported. A torn last line (no
  newline: the device died mid-write) is skipped and counted, not refused.
- Each file is imported in one transaction with its audit entry (``ingest``: who, how many rows,
  the file's sha256), so a file is imported whole or not at all.
- Idempotent: a row whose request id the model's log already holds is skipped, so importing
  the same folder twice, or a folder that grew since, adds only what is new. The model's lock
  (:meth:`~driftloop.store.Store.model_lock`) is held, so two imports cannot race.
- Files the device deleted to stay within its bounds are reported (``dropped_files``,
  ``dropped_rows`` from the newest header): rows lost on the device, not here.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from driftloop.errors import UsageError
from driftloop.registry import Registry
from driftloop.serve.edge.log import FILE_PATTERN, LOG_FORMAT

SOURCE = "edge"


@dataclass(frozen=True)
class IngestedFile:
    """One log file: rows it holds, rows new to the store, a torn last line skipped."""

    name: str
    sha256: str
    rows: int
    added: int
    torn: bool


@dataclass(frozen=True)
class IngestResult:
    """What one ``driftloop ingest`` did."""

    model: str
    files: list[IngestedFile] = field(default_factory=list)
    dropped_files: int = 0
    dropped_rows: int = 0

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def added(self) -> int:
        return sum(f.added for f in self.files)

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "rows": self.rows, "added": self.added,
                "already_held": self.rows - self.added,
                "dropped_on_device": {"files": self.dropped_files, "rows": self.dropped_rows},
                "files": [asdict(f) for f in self.files]}


@dataclass(frozen=True)
class _Parsed:
    name: str
    sha256: str
    rows: list[dict[str, Any]]
    torn: bool
    header: dict[str, Any]


def ingest_edge_log(registry: Registry, folder: str | os.PathLike[str], model: str, *,
                    actor: str | None = None) -> IngestResult:
    """Import the edge log ``folder`` of ``model`` (see the module docstring).

    Examples
    --------
    >>> import tempfile
    >>> from driftloop.config import Settings
    >>> home = tempfile.mkdtemp()
    >>> registry = Registry.open(Settings.load(overrides={"home": home}, environ={}, cwd=home))
    >>> try:
    ...     ingest_edge_log(registry, home, "churn")
    ... except UsageError as exc:
    ...     print(str(exc).split("; ")[1])
    point at the folder the edge package logs to (--log-dir).
    >>> registry.close()
    """
    base = Path(folder)
    if not base.is_dir():
        raise UsageError(f"{base} is not a folder; point at the edge package's log folder.")
    paths = sorted(p for p in base.iterdir() if FILE_PATTERN.match(p.name))
    if not paths:
        raise UsageError(f"{base} holds no edge log files (edge-00000001.jsonl, …); point at "
                         "the folder the edge package logs to (--log-dir).")
    versions = {r.version for r in registry.versions(model)}
    if not versions:
        raise UsageError(f"no model '{model}' is registered; check --model.")
    parsed = [_parse(p, model, versions) for p in paths]  # all checked before any is stored
    who = actor or registry.actor
    done: list[IngestedFile] = []
    with registry.store.model_lock(model):
        for file in parsed:
            def audit(session: Any, added: int, file: _Parsed = file) -> Any:
                if not added:
                    return None  # nothing changed: a repeated import leaves no trace
                return registry.audit.append_in(session, who, "ingest", model, {
                    "source": SOURCE, "file": file.name, "sha256": file.sha256,
                    "rows": len(file.rows), "added": added})

            added = registry.store.import_predictions(model, file.rows, audit=audit)
            done.append(IngestedFile(file.name, file.sha256, len(file.rows), added, file.torn))
    newest = parsed[-1].header
    return IngestResult(model, done, int(newest.get("dropped_files", 0)),
                        int(newest.get("dropped_rows", 0)))


def _parse(path: Path, model: str, versions: set[int]) -> _Parsed:
    data = path.read_bytes()
    lines = data.split(b"\n")
    torn = bool(lines[-1])  # the last line lacks its newline: the device stopped mid-write
    body = lines[:-1]
    if not body:
        raise UsageError(f"{path}: line 1: the file has no header line; it is not an edge log.")
    header = _line(path, 1, body[0])
    if header.get("kind") != "header" or header.get("format") != LOG_FORMAT:
        raise UsageError(f"{path}: line 1: not an edge log header of format {LOG_FORMAT} "
                         "(written by another program, or a newer driftloop).")
    if header.get("model") != model:
        raise UsageError(f"{path}: the log is of model {header.get('model')!r}, not "
                         f"{model!r}; check --model or the folder.")
    rows = [_row(path, i, _line(path, i, text), model, versions)
            for i, text in enumerate(body[1:], start=2) if text.strip()]
    return _Parsed(path.name, hashlib.sha256(data).hexdigest(), rows, torn, header)


def _line(path: Path, number: int, text: bytes) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{path}: line {number}: not valid JSON ({exc}); the file was "
                         "changed after the device wrote it. Fix or remove the line.") from None
    if not isinstance(value, dict):
        raise UsageError(f"{path}: line {number}: expected a JSON object.")
    return value


def _row(path: Path, number: int, row: dict[str, Any], model: str,
         versions: set[int]) -> dict[str, Any]:
    where = f"{path}: line {number}"
    rid, version, subject = row.get("request_id"), row.get("version"), row.get("subject")
    if row.get("kind") != "row" or row.get("model") != model:
        raise UsageError(f"{where}: not a prediction row of model {model!r}.")
    if not isinstance(rid, str) or not 0 < len(rid) <= 64:
        raise UsageError(f"{where}: 'request_id' must be text of 1 to 64 characters.")
    if type(version) is not int or version not in versions:
        raise UsageError(f"{where}: version {version!r} of {model!r} is not registered "
                         f"(registered: {', '.join(map(str, sorted(versions)))}).")
    if not isinstance(row.get("features"), dict) or not isinstance(row.get("output"), dict):
        raise UsageError(f"{where}: 'features' and 'output' must be JSON objects.")
    if subject is not None and not (isinstance(subject, str) and len(subject) == 64):
        raise UsageError(f"{where}: 'subject' must be a keyed hash (64 hex digits) or null.")
    try:
        at = datetime.fromisoformat(str(row.get("at")))
    except ValueError:
        raise UsageError(
            f"{where}: 'at' must be an ISO 8601 time, got {row.get('at')!r}.") from None
    if at.tzinfo is None:
        raise UsageError(f"{where}: 'at' must carry its UTC offset, got {row.get('at')!r}.")
    return {"request_id": rid, "model_name": model, "version": version, "at": at,
            "features": row["features"], "output": row["output"], "subject": subject,
            "replica": SOURCE, "client_ref": None}


__all__ = ["IngestResult", "IngestedFile", "ingest_edge_log"]
