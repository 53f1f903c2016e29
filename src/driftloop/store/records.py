"""Plain, frozen records that the store hands out; ORM objects never leave the store.

Every timestamp is a timezone-aware UTC ``datetime``. JSON fields hold plain dicts and lists
(copies: changing them changes nothing stored).

Examples
--------
>>> from datetime import datetime, timezone
>>> r = DatasetRecord(1, "ab" * 32, "data.csv", 10, None, datetime(2024, 1, 1, tzinfo=timezone.utc))
>>> r.rows
10
>>> r.rows = 11
Traceback (most recent call last):
...
dataclasses.FrozenInstanceError: cannot assign to field 'rows'
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal, TypeVar

RunStatus = Literal["running", "succeeded", "failed"]
DatasetRole = Literal["train", "val", "test", "source"]
RUN_STATUSES: tuple[str, ...] = ("running", "succeeded", "failed")
DATASET_ROLES: tuple[str, ...] = ("train", "val", "test", "source")
REPORT_KINDS: tuple[str, ...] = ("evaluation", "data_check", "profile", "drift")
ALIAS_ACTIONS: tuple[str, ...] = ("promote", "rollback", "deactivate")
ROLLOUT_STAGES: tuple[str, ...] = ("shadow", "canary", "promoted", "rolled_back", "expired",
                                   "aborted")
R = TypeVar("R")


@dataclass(frozen=True)
class DatasetRecord:
    """A dataset known to the store, named by its content fingerprint.

    Attributes
    ----------
    id, fingerprint, source_uri, rows, columns, created_at
        ``columns`` is a list of ``{"name": ..., "kind": ...}`` or None when unknown.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> DatasetRecord(1, "0" * 64, "x.csv", 3, [{"name": "a", "kind": "numeric"}],
    ...               datetime(2024, 1, 1, tzinfo=timezone.utc)).columns[0]["kind"]
    'numeric'
    """

    id: int
    fingerprint: str
    source_uri: str
    rows: int
    columns: list[dict[str, Any]] | None
    created_at: datetime


@dataclass(frozen=True)
class RunRecord:
    """One training run: what was asked, where its files are and how it ended.

    Attributes
    ----------
    id
        32 hexadecimal characters (a uuid4).
    status
        ``"running"``, ``"succeeded"`` or ``"failed"``.
    duration_s, samples_per_s, finished_at, error
        None until :meth:`driftloop.store.Store.finish_run` fills them.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> run = RunRecord("a" * 32, "churn", "running", {"lr": 0.1}, 2,
    ...                 datetime(2024, 1, 1, tzinfo=timezone.utc), None, None, None,
    ...                 {"torch": "2.4"}, None, "runs/a", None)
    >>> run.status, run.world_size
    ('running', 2)
    """

    id: str
    model_name: str
    status: str
    params: dict[str, Any]
    world_size: int
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    samples_per_s: float | None
    package_versions: dict[str, Any]
    git_commit: str | None
    run_dir: str
    error: str | None


@dataclass(frozen=True)
class VersionRecord:
    """One registered version of a model; its files are artifacts named by sha256.

    Attributes
    ----------
    id
        Store-wide id (``parent_id`` of a retrained version points at it).
    version
        1, 2, 3, ... per ``model_name``.
    weights_sha256, bundle_sha256
        Artifacts: safetensors weights and the JSON bundle (spec, preprocessing, schema).

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> v = VersionRecord(1, "churn", 1, None, datetime(2024, 1, 1, tzinfo=timezone.utc),
    ...                   "binary", "tabular", "a" * 64, "b" * 64, {"auc": 0.9}, 1024, None, None)
    >>> f"{v.model_name}:v{v.version}"
    'churn:v1'
    """

    id: int
    model_name: str
    version: int
    run_id: str | None
    created_at: datetime
    task: str
    input_kind: str
    weights_sha256: str
    bundle_sha256: str
    metrics: dict[str, Any]
    size_bytes: int
    parent_id: int | None
    description: str | None


@dataclass(frozen=True)
class AuditRecord:
    """One entry of the hash-chained audit log.

    Attributes
    ----------
    seq
        Position in the log (increasing; gaps are possible, order is what counts).
    prev_hash
        ``hash`` of the entry before (64 zeros for the first entry).
    hash
        sha256 over the canonical JSON of at, actor, action, subject, details and prev_hash.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> e = AuditRecord(1, datetime(2024, 1, 1, tzinfo=timezone.utc), "alice", "register",
    ...                 "churn:v1", {}, "0" * 64, "f" * 64)
    >>> e.actor, e.subject
    ('alice', 'churn:v1')
    """

    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ReportRecord:
    """A stored report (an evaluation or a data check) and what it is about.

    Attributes
    ----------
    kind
        ``"evaluation"`` or ``"data_check"``.
    dataset_fingerprint
        The dataset the report was computed on.
    version_id, run_id
        The model version evaluated and the run that produced the report (None when none).
    artifact_sha256
        The report's JSON artifact; ``summary`` holds a few headline numbers from it.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> r = ReportRecord(1, "evaluation", "f" * 64, 3, None, "a" * 64, {"accuracy": 0.9},
    ...                  datetime(2024, 1, 1, tzinfo=timezone.utc))
    >>> r.kind, r.summary["accuracy"]
    ('evaluation', 0.9)
    """

    id: int
    kind: str
    dataset_fingerprint: str
    version_id: int | None
    run_id: str | None
    artifact_sha256: str
    summary: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class AliasRecord:
    """An alias of a model and the version it points at now.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> a = AliasRecord("churn", "production", 7, 3, datetime(2024, 1, 1, tzinfo=timezone.utc))
    >>> f"{a.model_name}@{a.alias} -> v{a.version}"
    'churn@production -> v3'
    """

    model_name: str
    alias: str
    version_id: int
    version: int
    updated_at: datetime


@dataclass(frozen=True)
class AliasMoveRecord:
    """One move of an alias (``action`` ``"promote"`` or ``"rollback"``) and its evidence.

    Attributes
    ----------
    from_version_id, from_version
        The holder before the move (None when the alias was new).
    forced
        True when the promotion overrode failed gates (``reason`` says why).
    gates
        The gate report the move was decided on (None for a rollback).
    audit_seq
        The audit entry that records the move.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> m = AliasMoveRecord(1, "churn", "production", "promote", None, None, 7, 3, "ci", "better",
    ...                     False, {"passed": True}, 12, datetime(2024, 1, 1, tzinfo=timezone.utc))
    >>> m.from_version, m.to_version, m.gates["passed"]
    (None, 3, True)
    """

    id: int
    model_name: str
    alias: str
    action: str
    from_version_id: int | None
    from_version: int | None
    to_version_id: int
    to_version: int
    actor: str
    reason: str | None
    forced: bool
    gates: dict[str, Any] | None
    audit_seq: int | None
    at: datetime


@dataclass(frozen=True)
class OnlineFeatureRecord:
    """The latest materialised values of one view for one entity (its keyed hash).

    ``values``: feature name -> value (None: missing in the source row).
    """

    view_name: str
    view_version: int
    entity_hash: str
    values: dict[str, Any]
    event_time: datetime
    created_time: datetime | None
    materialized_at: datetime


@dataclass(frozen=True)
class MaterializationRecord:
    """One ``features materialize`` run of a view: the range it read and what it wrote.

    ``until`` is the run's watermark: the latest created time read when the view has a
    created-time column, otherwise the latest event time; the next run starts there.
    """

    id: int
    view_name: str
    view_version: int
    since: datetime | None
    until: datetime
    rows_read: int
    rows_written: int
    target: str
    actor: str
    at: datetime


def record_from(cls: type[R], obj: object) -> R:
    """Build record ``cls`` from the same-named attributes of ``obj`` (copying JSON values).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from datetime import timezone
    >>> row = SimpleNamespace(id=1, fingerprint="f" * 64, source_uri="a.csv", rows=2,
    ...                       columns=None, created_at=datetime(2024, 1, 1, tzinfo=timezone.utc))
    >>> record_from(DatasetRecord, row).source_uri
    'a.csv'
    """
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    return cls(**{name: copy.deepcopy(getattr(obj, name)) for name in names})


__all__ = [
    "ALIAS_ACTIONS",
    "DATASET_ROLES",
    "ROLLOUT_STAGES",
    "RUN_STATUSES",
    "AliasMoveRecord",
    "AliasRecord",
    "AuditRecord",
    "DatasetRecord",
    "DatasetRole",
    "FeatureViewRecord",
    "MaterializationRecord",
    "OnlineFeatureRecord",
    "REPORT_KINDS",
    "ReportRecord",
    "RunRecord",
    "RunStatus",
    "VersionRecord",
    "record_from",
]


@dataclass(frozen=True)
class FeatureViewRecord:
    """One registered version of a feature view: its declaration (``spec``) and its hash.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> FeatureViewRecord(1, "stats", 2, "ab" * 32, {"view": {}, "entity": {}}, "ci",
    ...                   datetime(2024, 1, 1, tzinfo=timezone.utc)).version
    2
    """

    id: int
    name: str
    version: int
    spec_hash: str
    spec: dict[str, Any]
    actor: str
    created_at: datetime
