"""Right to erasure: remove one data subject's rows and audit it without ever storing the id.

Where a subject's rows live, and how they are found:

- ``prediction_log``: one row per served instance, found two ways. 1) Its ``subject``: the
  request sent the id beside the instances (``"ids"``, see ``driftloop.serve.validation``)
  and the log stored :func:`driftloop.data.hashing.hash_value` of the id's text under the
  store's PII key (:func:`driftloop.store.secrets.pii_key`, shared by every host of the
  store), never the id: the id is hashed here under that key and every key in
  ``serve.previous_pii_hash_keys`` and looked up (an indexed column). 2) The feature column
  ``governance.id_column`` (``--id-column``) of the row's ``features``, stored as sent or, for
  a column the data check flagged as personal data, hashed under the same keys. Both forms
  are matched. Rows ingested from an edge package (``driftloop ingest``) were hashed on the
  device under the model's edge key (:func:`driftloop.data.hashing.edge_key` of each of those
  keys), so the id is hashed under every model's edge key too.
- ``feedback``: the labels of those rows, joined by request id (a request of several instances
  logs ``<rid>-0``, ``<rid>-1``, …, one id per row, so only the subject's own labels go).
- the loop's dataset snapshots: Parquet named objects ``loop/snapshots/**`` in the artifact
  store (shared by every host that shares the store), and the files an older driftloop wrote
  under ``<home>/loop/snapshots/**/*.parquet``. A row goes when its id column matches, or when
  the subjects the snapshot records in its Parquet metadata (:mod:`driftloop.data.subjects`:
  the log's ``subject`` of each row, kept out of the columns so it never becomes a feature)
  name the subject's hash; the rows and their recorded subjects are rewritten together, in
  one object. Snapshots with neither the id column nor recorded subjects are left alone and
  reported.

Ids match as text: a stored value matches when ``str(value)`` is the id, so ``42`` and
``"42"`` both match ``--subject-id 42`` and ``420`` does not. An id written as a number
(``42``, ``42.0``) also matches the other spelling of the same number, since JSON and Parquet
may keep 42 as 42.0.

Order of the work, and why. 1) Every affected snapshot is rewritten without the subject's rows
and staged: a local file to a synced temporary file next to it, a named object to a staging
object ``loop/erase-staging/<token>/…`` in the artifact store. A snapshot that cannot be read
or staged stops the erasure before anything changed. 2) One database transaction deletes the
log rows and their feedback and appends the audit entry: this is the commit point. 3) The
staged content replaces each snapshot: ``os.replace`` for a file (atomic on one file system),
one PUT of the final key for an object (atomic per object on S3: a reader sees the old or the
new snapshot, never half of one), then the staging object is deleted. The snapshots are
replaced one after another, not all at once: a reader between two replacements may see one
snapshot already without the rows and another still with them, and if step 3 fails or the
process dies during it, the error names the snapshots whose rows are still there; running
``driftloop erase`` again removes them (the database part finds nothing more and is audited
again with zero counts). Each erasure starts by deleting staging objects a dead one left
behind. Rewriting snapshots after the commit (rather than before it) means a failed
transaction never leaves snapshots already changed.

The audit entry (action ``erase``) holds the counts and an HMAC-SHA256 of the id keyed with a
secret salt kept as the named object ``secrets/erasure.salt`` in the artifact store (created
once, create-only, with 32 random bytes; a local file ``<home>/erasure.salt`` from an older
driftloop is moved into it), so every host that shares the store uses the same salt: the same
id always gives the same hash, so an auditor holding an id can confirm it was erased
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
import io
import json
import math
import os
import secrets
from collections.abc import Iterable
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.orm import Session

from driftloop.config import Settings
from driftloop.data.hashing import edge_key, hash_value
from driftloop.data.subjects import drop_rows, subjects_of
from driftloop.errors import ConfigError, DataError, DriftloopError, UsageError
from driftloop.store import ArtifactStore, AuditRecord, Store
from driftloop.store.artifacts import LOOP_SNAPSHOTS
from driftloop.store.erasure import ErasedRows
from driftloop.store.secrets import pii_key

if TYPE_CHECKING:
    from driftloop.registry import Registry

SALT_OBJECT = "secrets/erasure.salt"
SALT_FILE = "erasure.salt"  # where an older driftloop kept the salt, in <home>: moved on use
SNAPSHOT_PREFIX = LOOP_SNAPSHOTS  # the loop's snapshots in the artifact store
STAGING_PREFIX = "loop/erase-staging"
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
        Rows removed per snapshot file that has the id column or records its rows' subjects
        (0 when the subject was not in it).
    skipped_snapshots
        Snapshot files with neither, left alone.
    shared_request_ids
        Request ids of the subject's rows that other rows share (a client reused a V2 ``id``);
        their feedback cannot be told apart and was removed with the subject's.
    audit_seq
        The audit entry that records the erasure (None for a dry run).
    dry_run
        True when nothing was changed.
    by_subject
        Of the ``prediction_log`` rows, those found by the ``subject`` their request sent in
        ``ids`` (the others matched the id column only).
    online_features
        The subject's rows (as an entity of the feature store) removed from the online table:
        the store's database and, when ``features.online_url`` is one, Redis.

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
    by_subject: int = 0
    online_features: int = 0

    @property
    def erased(self) -> int:
        """Rows removed everywhere."""
        return (self.prediction_log + self.feedback + sum(self.snapshots.values())
                + self.online_features)

    def to_json(self) -> dict[str, Any]:
        return {
            "subject_hash": self.subject_hash, "id_column": self.id_column,
            "prediction_log": self.prediction_log, "feedback": self.feedback,
            "snapshots": dict(self.snapshots), "skipped_snapshots": list(self.skipped_snapshots),
            "shared_request_ids": self.shared_request_ids, "erased": self.erased,
            "audit_seq": self.audit_seq, "dry_run": self.dry_run, "by_subject": self.by_subject,
            "online_features": self.online_features,
        }


class _Snapshot(Protocol):
    """One snapshot: its content, and staging and replacing a rewritten version of it."""

    label: str  # results and messages: the file's path or the object's URL
    relative: str  # the audit entry: the name below the snapshot folder

    @property
    def staged(self) -> bool: ...

    def read(self) -> bytes: ...
    def stage(self, data: bytes) -> None: ...
    def commit(self) -> None: ...
    def drop(self) -> None: ...


class _FileSnapshot:
    """A snapshot file an older driftloop wrote under ``<home>/loop/snapshots``."""

    def __init__(self, path: Path, root: Path) -> None:
        self.path, self.label, self.relative = path, str(path), _relative(path, root)
        self.tmp: Path | None = None

    @property
    def staged(self) -> bool:
        return self.tmp is not None

    def read(self) -> bytes:
        return self.path.read_bytes()

    def stage(self, data: bytes) -> None:
        self.tmp = self.path.with_name(f".{self.path.name}{_TMP_SUFFIX}")
        _write_synced(data, self.tmp)

    def commit(self) -> None:
        assert self.tmp is not None
        try:
            os.replace(self.tmp, self.path)
            _sync_folder(self.path.parent)
        finally:
            self.drop()

    def drop(self) -> None:
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)
            self.tmp = None


class _NamedSnapshot:
    """A snapshot in the artifact store (named object ``loop/snapshots/…``)."""

    def __init__(self, artifacts: ArtifactStore, name: str, token: str) -> None:
        self.artifacts, self.name = artifacts, name
        self.label = artifacts.named_url(name)
        self.relative = name[len(SNAPSHOT_PREFIX) + 1:]
        self._staging = f"{STAGING_PREFIX}/{token}/{self.relative}"
        self._data: bytes | None = None

    @property
    def staged(self) -> bool:
        return self._data is not None

    def read(self) -> bytes:
        return self.artifacts.read_named(self.name)

    def stage(self, data: bytes) -> None:
        self.artifacts.write_named(self._staging, data)  # proves the store takes the write
        self._data = data

    def commit(self) -> None:
        assert self._data is not None
        self.artifacts.write_named(self.name, self._data)  # one PUT: atomic per object
        self.drop()

    def drop(self) -> None:
        if self._data is not None:
            with suppress(DriftloopError):
                self.artifacts.delete_named(self._staging)
            self._data = None


@dataclass
class _Rewrite:
    """One snapshot with the id column and the rows to remove from it."""

    snapshot: _Snapshot
    removed: int


@dataclass
class _Plan:
    """The snapshots: those with the id column or recorded subjects (to rewrite) and those
    with neither (skipped). ``targets`` match the id column, ``hashed`` the subjects."""

    column: str
    targets: frozenset[str]
    hashed: frozenset[str] = frozenset()
    rewrites: list[_Rewrite] = field(default_factory=list)
    skipped: list[_Snapshot] = field(default_factory=list)

    def keep(self, values: list[Any] | None, subjects: list[str | None] | None) -> list[bool]:
        """Per row of a snapshot: True unless its id column or its subject matches."""
        n = len(values) if values is not None else len(subjects or [])
        return [not ((values is not None and _matches(values[i], self.targets))
                     or (subjects is not None and subjects[i] in self.hashed))
                for i in range(n)]


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


def erasure_salt(settings: Settings) -> bytes:
    """This store's secret erasure salt: the named object ``secrets/erasure.salt`` in the
    artifact store, created (create-only, 32 random bytes) on first use, so every host that
    shares the artifact store gets the same salt.

    A salt file ``<home>/erasure.salt`` left by an older driftloop becomes the shared salt when
    there is none yet; one that differs from the shared salt is a :class:`ConfigError`.

    Examples
    --------
    >>> import tempfile
    >>> home = tempfile.mkdtemp()
    >>> settings = Settings.load(overrides={"home": home}, environ={}, cwd=home)
    >>> salt = erasure_salt(settings)
    >>> len(salt), erasure_salt(settings) == salt
    (32, True)
    >>> path = ArtifactStore(settings.artifacts_url).named_url(SALT_OBJECT)
    >>> path.endswith("named/secrets/erasure.salt"), oct(os.stat(path).st_mode & 0o777)
    (True, '0o600')
    """
    return _salt(ArtifactStore(settings.artifacts_url), settings.home)


def _salt(artifacts: ArtifactStore, home: str | os.PathLike[str]) -> bytes:
    legacy = Path(home) / SALT_FILE
    local = _read_legacy_salt(legacy)
    if not artifacts.named_exists(SALT_OBJECT):
        fresh = local if local is not None else secrets.token_hex(32)
        artifacts.create_named(SALT_OBJECT, f"{fresh}\n".encode("ascii"), private=True)
    where = artifacts.named_url(SALT_OBJECT)
    try:
        text = artifacts.read_named(SALT_OBJECT).decode("ascii").strip()
    except UnicodeDecodeError as exc:
        raise ConfigError(_bad_salt(where, str(exc))) from None
    salt = _parse_salt(text, where)
    if local is not None and local != text:
        raise ConfigError(
            f"two erasure salts: {legacy} (this host's, from an older driftloop) differs from "
            f"the shared {where}. Erasures audited on this host before the upgrade can only be "
            f"confirmed with the old one: keep a backup of {legacy} with your secrets, then "
            "delete it from the home folder so this host uses the shared salt."
        )
    return salt


def _read_legacy_salt(path: Path) -> str | None:
    if not path.exists():
        return None
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(_bad_salt(str(path), str(exc))) from None
    _parse_salt(text, str(path))
    return text


def _parse_salt(text: str, where: str) -> bytes:
    try:
        salt = bytes.fromhex(text)
    except ValueError as exc:
        raise ConfigError(_bad_salt(where, str(exc))) from None
    if len(salt) != 32:
        raise ConfigError(_bad_salt(where, f"it holds {len(text)} characters, not 64"))
    return salt


def _write_synced(data: bytes, path: Path) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _bad_salt(where: str, why: str) -> str:
    return (f"the erasure salt {where} cannot be used ({why}). Restore it from a backup: it "
            "must hold the 64 hexadecimal characters written when it was created, and without "
            "it past erasures can no longer be confirmed by id. Do not edit it.")


def subject_hash(settings: Settings, subject_id: str | int) -> str:
    """HMAC-SHA256 (hex) of the id's text under the store's erasure salt.

    Examples
    --------
    >>> import tempfile
    >>> home = tempfile.mkdtemp()
    >>> settings = Settings.load(overrides={"home": home}, environ={}, cwd=home)
    >>> subject_hash(settings, 42) == subject_hash(settings, "42") != subject_hash(settings, "420")
    True
    """
    return _hmac(erasure_salt(settings), subject_id)


def _hmac(salt: bytes, subject_id: str | int) -> str:
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
        The subject's id as a request sent it in ``ids`` or as stored in ``id_column``
        (matched as text).
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
        digest = subject_hash(settings_or_registry, subject_id)
        with Store.open(settings_or_registry.store_url) as store:
            return AuditLog(store).entries(subject=f"subject:{digest}", action="erase")
    registry = settings_or_registry
    digest = _hmac(_salt(registry.artifacts, registry.settings.home), subject_id)
    return registry.audit.entries(subject=f"subject:{digest}", action="erase")


# -- the work ----------------------------------------------------------------------------------


def _erase(registry: Registry, subject_id: str, column: str, actor: str,
           dry_run: bool) -> ErasureResult:

    settings, store = registry.settings, registry.store
    texts = id_texts(subject_id)
    keys = [pii_key(settings.serve.pii_hash_key, registry.artifacts),
            *settings.serve.previous_pii_hash_keys]  # rows hashed before a key rotation too
    # rows ingested from edge packages were hashed on the device under each model's key
    keys += [edge_key(key, model) for key in keys if key for model in store.model_names()]
    hashed = frozenset(hash_value(t, key) for t in texts for key in keys if key)
    targets = texts | hashed
    digest = _hmac(_salt(registry.artifacts, settings.home), subject_id)
    if not dry_run:
        _drop_stale_staging(registry.artifacts)
    snapshots = _snapshots(registry.artifacts, Path(settings.home) / "loop" / "snapshots")
    plan = _plan_snapshots(snapshots, column, targets, hashed)
    rows, request_ids, by_subject = _log_matches(store, column, targets, hashed)
    if not rows and not any(r.removed for r in plan.rewrites):
        _require_known_column(store, column, plan)
    skipped = [s.label for s in plan.skipped]
    # the subject as an entity of the feature store: its online rows are keyed by the same hash
    entity_hashes = sorted(hashed)
    if dry_run:
        return ErasureResult(
            digest, column, len(rows), store.count_feedback(request_ids),
            {r.snapshot.label: r.removed for r in plan.rewrites}, skipped,
            store.count_shared_request_ids(request_ids, excluding=rows), None, dry_run=True,
            by_subject=by_subject, online_features=store.count_online_entities(entity_hashes))
    in_redis = _erase_from_redis(settings, entity_hashes)  # before the commit: a retry redoes it

    def audit(session: Session, erased: ErasedRows) -> AuditRecord:
        details = _audit_details(digest, column, erased.prediction_log, erased.feedback, plan)
        details["prediction_log_by_subject"] = by_subject
        if erased.online_features + in_redis:  # the subject was an entity of a feature view
            details["counts"]["online_features"] = erased.online_features + in_redis
        return registry.audit.append_in(session, actor, "erase", f"subject:{digest}", details)

    try:
        _stage_all(plan)  # 1) rewritten snapshots staged: nothing changed yet
        erased = store.erase_log_rows(rows, request_ids, audit=audit,  # 2) the commit point
                                      entity_hashes=entity_hashes)
    except BaseException:
        _drop_staged(plan)
        raise
    _replace_all(plan, erased.audit_seq)  # 3) each snapshot replaced atomically
    return ErasureResult(digest, column, erased.prediction_log, erased.feedback,
                         {r.snapshot.label: r.removed for r in plan.rewrites}, skipped,
                         erased.shared_request_ids, erased.audit_seq,
                         by_subject=by_subject,
                         online_features=erased.online_features + in_redis)


def _erase_from_redis(settings: Settings, entity_hashes: list[str]) -> int:
    """Remove the subject's records from a Redis online table, when one is configured."""
    from driftloop.features.online import RedisOnlineStore

    url = settings.features.online_url.strip()
    if not url or not url.startswith(("redis://", "rediss://", "unix://")):
        return 0
    online = RedisOnlineStore(url)
    try:
        return online.delete([v.name for v in settings.features.views], entity_hashes)
    finally:
        online.close()


def _audit_details(digest: str, column: str, logged: int, feedback: int,
                   plan: _Plan) -> dict[str, Any]:
    """What the audit entry holds: the salted hash and counts, never the id (snapshot names are
    relative to the snapshot folder)."""
    return {
        "subject_hash": digest,
        "hash": "hmac-sha256 keyed with the store's erasure salt",
        "id_column": column,
        "counts": {"prediction_log": logged, "feedback": feedback,
                   "snapshots": sum(r.removed for r in plan.rewrites)},
        "snapshots": {r.snapshot.relative: r.removed for r in plan.rewrites if r.removed},
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


def _log_matches(store: Store, column: str, targets: frozenset[str],
                 hashed: frozenset[str] = frozenset()) -> tuple[list[int], list[str], int]:
    """Ids and request ids of the log rows whose ``subject`` is one of ``hashed`` or whose
    ``column`` matches ``targets``, each row once, oldest first; and how many matched by
    ``subject``."""
    found = {row.id: row.request_id for row in store.log_rows_of_subjects(hashed)}
    by_subject = len(found)
    for row in store.iter_log_features(containing=_json_needles(targets)):
        features = row.features if isinstance(row.features, dict) else {}
        if _matches(features.get(column), targets):
            found[row.id] = row.request_id
    ids = sorted(found)
    return ids, list(dict.fromkeys(found[i] for i in ids)), by_subject


def _require_known_column(store: Store, column: str, plan: _Plan) -> None:
    """Raise :class:`UsageError` when data is stored but no row or snapshot has ``column``
    (and no request ever named a subject: then finding nothing is a fair answer)."""
    if plan.rewrites or store.has_subjects():
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
        where.append(f"{len(plan.skipped)} loop snapshot(s) have other columns")
    raise UsageError(
        f"no stored row has the id column '{column}' ({'; '.join(where)}). Name the column "
        "that holds the subject's id with --id-column COL (or governance.id_column in "
        "driftloop.yaml)."
    )


# -- snapshots ---------------------------------------------------------------------------------


def _snapshots(artifacts: ArtifactStore, root: Path) -> list[_Snapshot]:
    """The artifact store's snapshots, then the files an older driftloop wrote in ``root``."""
    token = secrets.token_hex(8)
    named: list[_Snapshot] = [
        _NamedSnapshot(artifacts, name, token) for name in artifacts.list_named(SNAPSHOT_PREFIX)
        if name.endswith(SNAPSHOT_SUFFIXES)]
    return named + [_FileSnapshot(path, root) for path in _snapshot_files(root)]


def _snapshot_files(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*")
                  if p.suffix in SNAPSHOT_SUFFIXES and p.is_file() and not p.name.startswith("."))


def _drop_stale_staging(artifacts: ArtifactStore) -> None:
    """Delete staging objects an erasure that died in step 3 left (they may hold rows of
    subjects erased since)."""
    for name in artifacts.list_named(STAGING_PREFIX):
        artifacts.delete_named(name)


def _plan_snapshots(snapshots: list[_Snapshot], column: str, targets: frozenset[str],
                    hashed: frozenset[str] = frozenset()) -> _Plan:
    plan = _Plan(column, targets, hashed)
    for snapshot in snapshots:
        try:
            parquet = pq.ParquetFile(io.BytesIO(snapshot.read()))
            schema = parquet.schema_arrow
            subjects = subjects_of(schema, parquet.metadata.num_rows)
            if column not in schema.names and subjects is None:
                plan.skipped.append(snapshot)
                continue
            values = (parquet.read(columns=[column]).column(column).to_pylist()
                      if column in schema.names else None)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise DataError(f"snapshot {snapshot.label} cannot be read as Parquet ({exc}); "
                            "nothing was erased. Repair or remove it, then run erase "
                            "again.") from None
        plan.rewrites.append(_Rewrite(snapshot, plan.keep(values, subjects).count(False)))
    return plan


def _stage_all(plan: _Plan) -> None:
    """Stage each affected snapshot, less the subject's rows (see the module docstring).

    The rows are matched again on the whole snapshot as read now, so the counts are those of
    the content that is replaced."""
    for rewrite in plan.rewrites:
        if not rewrite.removed:
            continue
        snapshot = rewrite.snapshot
        try:
            table = pq.ParquetFile(io.BytesIO(snapshot.read())).read()
            values = (table.column(plan.column).to_pylist()
                      if plan.column in table.column_names else None)
            keep = plan.keep(values, subjects_of(table.schema, table.num_rows))
            rewrite.removed = keep.count(False)
            # keeps the schema and its metadata (pandas index, field metadata) as it was, and
            # the recorded subjects of the rows that stay: rows and subjects in one object
            snapshot.stage(_parquet_bytes(drop_rows(table, keep)))
        except (OSError, ValueError, pa.ArrowException, KeyError) as exc:
            raise DataError(f"snapshot {snapshot.label} cannot be rewritten ({exc}); nothing "
                            "was erased. Check it and where it is stored (permissions), then "
                            "run erase again.") from None


def _parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _drop_staged(plan: _Plan) -> None:
    for rewrite in plan.rewrites:
        rewrite.snapshot.drop()


def _replace_all(plan: _Plan, audit_seq: int | None) -> None:
    failed = []
    for rewrite in plan.rewrites:
        if not rewrite.snapshot.staged:
            continue
        try:
            rewrite.snapshot.commit()
        except (OSError, DriftloopError) as exc:
            rewrite.snapshot.drop()
            why = getattr(exc, "strerror", None) or exc
            failed.append(f"{rewrite.snapshot.label} ({why})")
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
    "SALT_OBJECT",
    "SNAPSHOT_PREFIX",
    "ErasureResult",
    "erase_subject",
    "erasure_salt",
    "find_erasures",
    "id_texts",
    "subject_hash",
]
