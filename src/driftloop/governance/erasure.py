"""Right to erasure: remove one data subject's rows and audit it without ever storing the id.

Where a subject's rows live, and how they are found:

- ``prediction_log``: one row per served instance. The subject's id is the feature column
  ``governance.id_column`` (``--id-column``) of the row's ``features``, stored as sent or, for
  a column the data check flagged as personal data, as
  :func:`driftloop.data.hashing.hash_value` of it under ``serve.pii_hash_key``. Both
  forms are matched.
- ``feedback``: the labels of those rows, joined by request id (a request of several instances
  logs ``<rid>-0``, ``<rid>-1``, …, one id per row, so only the subject's own labels go).
- ``<home>/loop/snapshots/**/*.parquet``: training sets the closed loop assembled. Files
  without the id column are left alone and reported.

Ids match as text: a stored value matches when ``str(value)`` is the id, so ``42`` and
``"42"`` both match ``--subject-id 42`` and ``420`` does not. An id written as a number
(``42``, ``42.0``) also matches the other spelling of the same number, since JSON and Parquet
may keep 42 as 42.0.

Order of the work, and why. 1) Every affected snapshot is rewritten to a temporary file next
to it and fsynced: a snapshot that cannot be read or written stops the erasure before anything
changed. 2) One database transaction deletes the log rows and their feedback and appends the
audit entry: this is the commit point. 3) The temporary files replace the snapshots
(``os.replace``, atomic on one file system). Step 3 cannot half-write a file; if it fails at
all (a permission changed between 1 and 3), the error names the file, whose rows are then
still there, and running ``driftloop erase`` again removes them (the database part finds
nothing more and is audited again with zero counts). Rewriting snapshots after the commit
(rather than before it) means a failed transaction never leaves snapshots already changed.

The audit entry (action ``erase``) holds the counts and an HMAC-SHA256 of the id keyed with a
secret salt kept in ``<home>/erasure.salt`` (created with mode 0600 on first use): the same id
always gives the same hash, so an auditor holding an id can confirm it was erased
(:func:`find_erasures`), but the log never holds the id. An id that matches nothing is audited
too (counts 0): the request was received and answered. Nothing in the audit chain is edited.

Not covered: aggregates (monitor windows, alerts, drift reports hold statistics, not rows),
the training data a user supplied, run folders, and models already trained on the rows (a model
cannot unlearn; retrain without them). Rows logged after the erasure started are not erased.

Examples
--------
>>> sorted(id_texts("42")), sorted(id_texts("042")), sorted(id_texts("a@x.org"))
(['42', '42.0'], ['042'], ['a@x.org'])
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import secrets
from collections.abc import Iterable
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from driftloop.config import Settings
from driftloop.data.hashing import hash_value
from driftloop.errors import ConfigError, DataError, DriftloopError, UsageError
from driftloop.store import AuditRecord, Store
from driftloop.store.erasure import ErasedRows

if TYPE_CHECKING:
    from driftloop.registry import Registry

SALT_FILE = "erasure.salt"
SNAPSHOT_SUFFIXES = (".parquet", ".pq")
_TMP_SUFFIX = ".erase-tmp"
_KEY_SAMPLE = 200  # rows read to tell whether the id column exists at all


@dataclass(frozen=True)
class ErasureResult:
    """What :func:`erase_subject` removed (or, with ``dry_run``, would remove).

    Attributes
    ----------
    subject_hash
        HMAC-SHA256 of the id under this store's erasure salt (what the audit entry holds).
    id_column
        The feature column the id was looked up in.
    prediction_log, feedback
        Rows removed from each table.
    snapshots
        Rows removed per snapshot file that has the id column (0 when the subject was not in it).
    skipped_snapshots
        Snapshot files without the id column, left alone.
    shared_request_ids
        Request ids of the subject's rows that other rows share (a client reused a V2 ``id``);
        their feedback cannot be told apart and was removed with the subject's.
    audit_seq
        The audit entry that records the erasure (None for a dry run).
    dry_run
        True when nothing was changed.

    Examples
    --------
    >>> r = ErasureResult("ab" * 32, "customer_id", 3, 1, {"s.parquet": 2}, [], 0, 7)
    >>> r.erased, r.to_json()["snapshots"]
    (6, {'s.parquet': 2})
    """

    subject_hash: str
    id_column: str
    prediction_log: int
    feedback: int
    snapshots: dict[str, int]
    skipped_snapshots: list[str]
    shared_request_ids: int
    audit_seq: int | None
    dry_run: bool = False

    @property
    def erased(self) -> int:
        """Rows removed everywhere."""
        return self.prediction_log + self.feedback + sum(self.snapshots.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "subject_hash": self.subject_hash, "id_column": self.id_column,
            "prediction_log": self.prediction_log, "feedback": self.feedback,
            "snapshots": dict(self.snapshots), "skipped_snapshots": list(self.skipped_snapshots),
            "shared_request_ids": self.shared_request_ids, "erased": self.erased,
            "audit_seq": self.audit_seq, "dry_run": self.dry_run,
        }


@dataclass
class _Rewrite:
    """One snapshot file with the id column: rows to remove and the rewritten temp file."""

    path: Path
    removed: int
    tmp: Path | None = None


@dataclass
class _Plan:
    """The snapshots: those with the id column (to rewrite) and those without (skipped)."""

    column: str
    targets: frozenset[str]
    rewrites: list[_Rewrite] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)


def id_texts(subject_id: str) -> frozenset[str]:
    """The texts a stored value of this id may have: the id, and for an id written as a number
    in its plain form, both spellings of that number (``42`` and ``42.0``).

    ``042`` or ``4.2e1`` are kept as written: they may be ids in their own right.

    Examples
    --------
    >>> sorted(id_texts("7.5")), sorted(id_texts("1e3"))
    (['7.5'], ['1e3'])
    """
    texts = {subject_id}
    try:
        number = float(subject_id)
    except ValueError:
        return frozenset(texts)
    if not math.isfinite(number):
        return frozenset(texts)
    whole = str(int(number)) if number.is_integer() else None
    if subject_id in (repr(number), whole):
        texts.add(repr(number))
        if whole is not None:
            texts.add(whole)
    return frozenset(texts)


def erasure_salt(home: str | os.PathLike[str]) -> bytes:
    """This store's secret erasure salt, from ``<home>/erasure.salt`` (created, mode 0600, with
    32 random bytes on first use).

    Examples
    --------
    >>> import tempfile
    >>> home = tempfile.mkdtemp()
    >>> salt = erasure_salt(home)
    >>> len(salt), erasure_salt(home) == salt, oct(os.stat(f"{home}/erasure.salt").st_mode & 0o777)
    (32, True, '0o600')
    """
    path = Path(home) / SALT_FILE
    if not path.exists():
        _create_salt(path)
    try:
        text = path.read_text(encoding="ascii").strip()
        salt = bytes.fromhex(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(_bad_salt(path, str(exc))) from None
    if len(salt) != 32:
        raise ConfigError(_bad_salt(path, f"it holds {len(text)} characters, not 64"))
    return salt


def _create_salt(path: Path) -> None:
    # written under a private name, then linked into place: os.link fails if another process
    # created the salt meanwhile, so the first salt wins and nobody reads a half-written one
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    _write_private(tmp, secrets.token_hex(32) + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    except OSError:  # a file system without hard links: create it in place, still exclusively
        with suppress(FileExistsError):
            _write_private(path, tmp.read_text(encoding="ascii"))
    finally:
        tmp.unlink(missing_ok=True)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _bad_salt(path: Path, why: str) -> str:
    return (f"the erasure salt {path} cannot be used ({why}). Restore it from a backup: it must "
            "hold the 64 hexadecimal characters written when it was created, and without it "
            "past erasures can no longer be confirmed by id. Do not edit it.")


def subject_hash(home: str | os.PathLike[str], subject_id: str | int) -> str:
    """HMAC-SHA256 (hex) of the id's text under the store's erasure salt.

    Examples
    --------
    >>> import tempfile
    >>> home = tempfile.mkdtemp()
    >>> subject_hash(home, 42) == subject_hash(home, "42") != subject_hash(home, "420")
    True
    """
    salt = erasure_salt(home)
    return hmac.new(salt, _subject_text(subject_id).encode("utf-8"), hashlib.sha256).hexdigest()


def erase_subject(
    settings_or_registry: Settings | Registry,
    subject_id: str | int,
    *,
    id_column: str | None = None,
    actor: str | None = None,
    dry_run: bool = False,
) -> ErasureResult:
    """Remove one data subject's rows from the prediction log, the feedback and the loop's
    dataset snapshots, and audit it under a salted hash of the id (see the module docstring).

    Parameters
    ----------
    settings_or_registry
        Settings (the store is opened and closed here) or an open :class:`Registry`.
    subject_id
        The subject's id as stored in ``id_column`` (matched as text).
    id_column
        The feature column holding the id; default ``governance.id_column``.
    actor
        Who, for the audit log (default: the registry's actor).
    dry_run
        Count what would be removed; change and audit nothing.

    Raises
    ------
    UsageError
        An empty id, or an id column that no stored row or snapshot has.
    DataError
        A snapshot that cannot be read or rewritten (nothing was changed).

    Examples
    --------
    >>> import tempfile
    >>> from driftloop.store import utcnow
    >>> home = tempfile.mkdtemp()
    >>> settings = Settings.load(overrides={"home": home}, environ={}, cwd=home)
    >>> with Store.open(settings.store_url) as store:
    ...     _ = store.add_predictions([
    ...         {"request_id": rid, "model_name": "m", "version": 1, "at": utcnow(),
    ...          "features": {"customer_id": cid, "x": 1.0}, "output": {}}
    ...         for rid, cid in [("r1", 42), ("r2", 420), ("r3", "42")]])
    ...     _ = store.add_feedback([("r1", "yes"), ("r2", "no")])
    >>> result = erase_subject(settings, 42)
    >>> result.prediction_log, result.feedback, result.audit_seq
    (2, 1, 1)
    >>> with Store.open(settings.store_url) as store:
    ...     [r.features["customer_id"] for r in store.list_predictions()]
    [420]
    """
    from driftloop.registry import Registry

    owned = not isinstance(settings_or_registry, Registry)
    registry = (Registry.open(settings_or_registry) if owned
                else settings_or_registry)  # type: ignore[arg-type]
    try:
        settings = registry.settings
        column = settings.governance.id_column if id_column is None else id_column
        return _erase(registry, _subject_text(subject_id), _column(column),
                      actor or registry.actor, dry_run)
    finally:
        if owned:
            registry.close()


def find_erasures(
    settings_or_registry: Settings | Registry, subject_id: str | int
) -> list[AuditRecord]:
    """The audit entries of erasures of this id (an auditor confirming a request), oldest first.

    Examples
    --------
    >>> import tempfile
    >>> home = tempfile.mkdtemp()
    >>> settings = Settings.load(overrides={"home": home}, environ={}, cwd=home)
    >>> _ = erase_subject(settings, "c-17")
    >>> [e.action for e in find_erasures(settings, "c-17")], find_erasures(settings, "c-18")
    (['erase'], [])
    """
    from driftloop.store import AuditLog

    if isinstance(settings_or_registry, Settings):
        digest = subject_hash(settings_or_registry.home, subject_id)
        with Store.open(settings_or_registry.store_url) as store:
            return AuditLog(store).entries(subject=f"subject:{digest}", action="erase")
    registry = settings_or_registry
    digest = subject_hash(registry.settings.home, subject_id)
    return registry.audit.entries(subject=f"subject:{digest}", action="erase")


# -- the work ----------------------------------------------------------------------------------


def _erase(registry: Registry, subject_id: str, column: str, actor: str,
           dry_run: bool) -> ErasureResult:

    settings, store = registry.settings, registry.store
    texts = id_texts(subject_id)
    targets = texts | {hash_value(t, settings.serve.pii_hash_key) for t in texts}
    digest = subject_hash(settings.home, subject_id)
    root = Path(settings.home) / "loop" / "snapshots"

    plan = _plan_snapshots(root, column, targets)
    rows, request_ids = _log_matches(store, column, targets)
    if not rows and not any(r.removed for r in plan.rewrites):
        _require_known_column(store, column, plan, root)
    skipped = [str(p) for p in plan.skipped]
    if dry_run:
        return ErasureResult(
            digest, column, len(rows), store.count_feedback(request_ids),
            {str(r.path): r.removed for r in plan.rewrites}, skipped,
            store.count_shared_request_ids(request_ids, excluding=rows), None, dry_run=True)

    def audit(session: Session, erased: ErasedRows) -> AuditRecord:
        details = _audit_details(digest, column, erased.prediction_log, erased.feedback, plan,
                                 root)
        return registry.audit.append_in(session, actor, "erase", f"subject:{digest}", details)

    try:
        _write_temps(plan)  # 1) snapshots to synced temp files: nothing changed yet
        erased = store.erase_log_rows(rows, request_ids, audit=audit)  # 2) the commit point
    except BaseException:
        _drop_temps(plan)
        raise
    _replace_all(plan, erased.audit_seq)  # 3) atomic renames
    return ErasureResult(digest, column, erased.prediction_log, erased.feedback,
                         {str(r.path): r.removed for r in plan.rewrites}, skipped,
                         erased.shared_request_ids, erased.audit_seq)


def _audit_details(digest: str, column: str, logged: int, feedback: int, plan: _Plan,
                   root: Path) -> dict[str, Any]:
    """What the audit entry holds: the salted hash and counts, never the id (snapshot paths are
    relative to the snapshot folder)."""
    return {
        "subject_hash": digest,
        "hash": "hmac-sha256 keyed with the store's erasure salt",
        "id_column": column,
        "counts": {"prediction_log": logged, "feedback": feedback,
                   "snapshots": sum(r.removed for r in plan.rewrites)},
        "snapshots": {_relative(r.path, root): r.removed for r in plan.rewrites if r.removed},
        "snapshots_checked": len(plan.rewrites),
        "snapshots_without_column": len(plan.skipped),
    }


def _subject_text(subject_id: str | int) -> str:
    if isinstance(subject_id, bool) or not isinstance(subject_id, (str, int)):
        raise UsageError(f"the subject id must be text or a whole number, got "
                         f"{type(subject_id).__name__}.")
    text = str(subject_id)
    if not text.strip() or len(text) > 1024:
        raise UsageError("the subject id must be 1 to 1024 characters and not blank; pass it "
                         "with --subject-id ID.")
    return text


def _column(column: str) -> str:
    if not isinstance(column, str) or not column.strip():
        raise UsageError("the id column must be a column name; pass it with --id-column COL or "
                         "set governance.id_column in driftloop.yaml.")
    return column


def _matches(value: Any, targets: frozenset[str]) -> bool:
    return value is not None and not isinstance(value, (dict, list)) and str(value) in targets


def _json_needles(texts: Iterable[str]) -> list[str] | None:
    """The texts as they appear inside stored JSON, or None when that cannot be relied on.

    The needles narrow the scan of the log in SQL (``LIKE``); every candidate is checked
    exactly in Python. A text JSON would escape (non-ASCII, quotes, control characters) may be
    stored in either form, so it gets no needle and the whole log is scanned instead: a missed
    row here would be a row not erased.
    """
    needles = []
    for text in texts:
        encoded = json.dumps(text)[1:-1]
        if encoded != text:
            return None
        needles.append(text)
    return needles


def _log_matches(store: Store, column: str, targets: frozenset[str]) -> tuple[list[int], list[str]]:
    """Ids and request ids of the log rows whose ``column`` matches."""
    ids: list[int] = []
    request_ids: dict[str, None] = {}
    for row in store.iter_log_features(containing=_json_needles(targets)):
        features = row.features if isinstance(row.features, dict) else {}
        if _matches(features.get(column), targets):
            ids.append(row.id)
            request_ids[row.request_id] = None
    return ids, list(request_ids)


def _require_known_column(store: Store, column: str, plan: _Plan, root: Path) -> None:
    """Raise :class:`UsageError` when data is stored but no row or snapshot has ``column``."""
    if plan.rewrites:
        return
    needles = _json_needles([column])
    if needles is not None:  # only keys are written as "name" (a value's quotes are escaped)
        sample = store.iter_log_features(containing=[json.dumps(column)], newest_first=True,
                                         limit=_KEY_SAMPLE)
    else:
        sample = store.iter_log_features(newest_first=True)
    with closing(sample):
        if any(isinstance(r.features, dict) and column in r.features for r in sample):
            return
    last = list(store.iter_log_features(newest_first=True, limit=1))
    newest = last[0].features if last else None
    if newest is None and not plan.skipped:
        return  # nothing stored at all: nothing to erase, and no column to check against
    seen = sorted(newest) if isinstance(newest, dict) else []
    where = []
    if newest is not None:
        where.append(f"the prediction log's features are {', '.join(seen) or 'none'}")
    if plan.skipped:
        where.append(f"{len(plan.skipped)} snapshot(s) under {root} have other columns")
    raise UsageError(
        f"no stored row has the id column '{column}' ({'; '.join(where)}). Name the column "
        "that holds the subject's id with --id-column COL (or governance.id_column in "
        "driftloop.yaml)."
    )


# -- snapshots ---------------------------------------------------------------------------------


def _snapshot_files(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*")
                  if p.suffix in SNAPSHOT_SUFFIXES and p.is_file() and not p.name.startswith("."))


def _plan_snapshots(root: Path, column: str, targets: frozenset[str]) -> _Plan:
    plan = _Plan(column, targets)
    for path in _snapshot_files(root):
        try:
            parquet = pq.ParquetFile(path)
            if column not in parquet.schema_arrow.names:
                plan.skipped.append(path)
                continue
            values = parquet.read(columns=[column]).column(column).to_pylist()
        except (OSError, pa.ArrowException) as exc:
            raise DataError(f"snapshot {path} cannot be read as Parquet ({exc}); nothing was "
                            "erased. Repair or remove the file, then run erase again.") from None
        plan.rewrites.append(_Rewrite(path, sum(_matches(v, targets) for v in values)))
    return plan


def _write_temps(plan: _Plan) -> None:
    """Write each affected snapshot, less the subject's rows, to a synced temp file beside it.

    The rows are matched again on the whole file as read now, so the counts are those of the
    file that is replaced."""
    for rewrite in plan.rewrites:
        if not rewrite.removed:
            continue
        path = rewrite.path
        try:
            table = pq.ParquetFile(path).read()
            keep = [not _matches(v, plan.targets) for v in table.column(plan.column).to_pylist()]
            rewrite.removed = keep.count(False)
            rewrite.tmp = path.with_name(f".{path.name}{_TMP_SUFFIX}")
            # filter keeps the schema and its metadata (pandas index, field metadata) as it was
            _write_table(table.filter(pa.array(keep, pa.bool_())), rewrite.tmp)
        except (OSError, pa.ArrowException, KeyError) as exc:
            raise DataError(f"snapshot {path} cannot be rewritten ({exc}); nothing was erased. "
                            "Check the file and its folder's permissions, then run erase "
                            "again.") from None


def _write_table(table: pa.Table, tmp: Path) -> None:
    with open(tmp, "wb") as fh:
        pq.write_table(table, fh)
        fh.flush()
        os.fsync(fh.fileno())


def _drop_temps(plan: _Plan) -> None:
    for rewrite in plan.rewrites:
        if rewrite.tmp is not None:
            rewrite.tmp.unlink(missing_ok=True)
            rewrite.tmp = None


def _replace_all(plan: _Plan, audit_seq: int | None) -> None:
    failed = []
    for rewrite in plan.rewrites:
        if rewrite.tmp is None:
            continue
        try:
            os.replace(rewrite.tmp, rewrite.path)
            _sync_folder(rewrite.path.parent)
        except OSError as exc:
            rewrite.tmp.unlink(missing_ok=True)
            failed.append(f"{rewrite.path} ({exc.strerror or exc})")
    if failed:
        raise DriftloopError(
            f"the subject's database rows were erased (audit entry {audit_seq}), but "
            f"{len(failed)} snapshot(s) could not be replaced: {'; '.join(failed)}. Their rows "
            "are still there: fix the cause and run `driftloop erase` again with the same id.")


def _sync_folder(folder: Path) -> None:
    # makes the rename itself durable; folders cannot be opened this way on Windows
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


__all__ = [
    "SALT_FILE",
    "ErasureResult",
    "erase_subject",
    "erasure_salt",
    "find_erasures",
    "id_texts",
    "subject_hash",
]
