"""The store's tables (SQLAlchemy 2 declarative); ``migrations/versions`` creates them.

Change a table here, then add a migration (``python -m driftloop.store.migrate "message"``
writes one); ``tests/store/test_migrations.py`` fails while the two differ.

Examples
--------
>>> print(*sorted(Base.metadata.tables))  # doctest: +NORMALIZE_WHITESPACE
alerts alias_moves api_keys audit_entries datasets feature_materializations feature_online
feature_views feedback jobs loop_runs model_aliases model_versions monitor_windows
prediction_log reload_signals reports rollout_observations rollouts run_datasets run_metrics runs
>>> Run.__table__.c.status.type
String(length=16)
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from driftloop.store.clock import utcnow
from driftloop.store.records import (
    ALIAS_ACTIONS,
    DATASET_ROLES,
    REPORT_KINDS,
    ROLLOUT_STAGES,
    RUN_STATUSES,
)

# Named constraints let SQLite batch migrations drop or alter them later.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Ids of the tables that grow with traffic (the prediction log, feedback) pass 2**31 on a busy
# server: 64-bit on PostgreSQL. SQLite's INTEGER is already 64-bit, and only "INTEGER PRIMARY
# KEY" is its auto-incrementing rowid, so SQLite keeps INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always aware UTC in Python, whatever the database keeps.

    SQLite has no time zones: values are stored as naive UTC and come back aware.

    Examples
    --------
    >>> from datetime import timedelta
    >>> t = datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    >>> UTCDateTime().process_result_value(t, None).isoformat()
    '2024-01-01T10:00:00+00:00'
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"timestamp {value.isoformat()} has no time zone; pass an aware one")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def _one_of(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name)


class Base(DeclarativeBase):
    """Declarative base of every driftloop table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Dataset(Base):
    """A dataset, named by the fingerprint of its content."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    source_uri: Mapped[str] = mapped_column(Text)
    rows: Mapped[int] = mapped_column(BigInteger)
    columns: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Run(Base):
    """A training run."""

    __tablename__ = "runs"
    __table_args__ = (_one_of("status", RUN_STATUSES, "status"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    world_size: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_s: Mapped[float | None] = mapped_column(Float)
    samples_per_s: Mapped[float | None] = mapped_column(Float)
    package_versions: Mapped[dict[str, Any]] = mapped_column(JSON)
    git_commit: Mapped[str | None] = mapped_column(String(64))
    run_dir: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)


class RunDataset(Base):
    """Which dataset a run used in which role (train, val, test, source)."""

    __tablename__ = "run_datasets"
    __table_args__ = (_one_of("role", DATASET_ROLES, "role"),)

    run_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(Integer, ForeignKey("datasets.id"), index=True)


class RunMetric(Base):
    """One metric of one epoch of a run."""

    __tablename__ = "run_metrics"

    run_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class ModelVersion(Base):
    """A registered model version; ``version`` counts 1, 2, 3, ... per ``model_name``."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("runs.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    task: Mapped[str] = mapped_column(String(32))
    input_kind: Mapped[str] = mapped_column(String(32))
    weights_sha256: Mapped[str] = mapped_column(String(64))
    bundle_sha256: Mapped[str] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    parent_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("model_versions.id"))
    description: Mapped[str | None] = mapped_column(Text)


class Report(Base):
    """A report artifact (evaluation or data check) linked to its dataset and model version."""

    __tablename__ = "reports"
    __table_args__ = (_one_of("kind", REPORT_KINDS, "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    dataset_id: Mapped[int] = mapped_column(Integer, ForeignKey("datasets.id"), index=True)
    version_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("model_versions.id"), index=True
    )
    run_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("runs.id"))
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ModelAlias(Base):
    """Which version of a model an alias (``production``, ``staging``, ...) points at now.

    The primary key (model_name, alias) allows at most one holder per alias.
    """

    __tablename__ = "model_aliases"

    model_name: Mapped[str] = mapped_column(String(128), primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[int] = mapped_column(Integer, ForeignKey("model_versions.id"), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AliasMove(Base):
    """One move of an alias: promote or rollback, who, why, and the gate evidence."""

    __tablename__ = "alias_moves"
    __table_args__ = (_one_of("action", ALIAS_ACTIONS, "action"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128))
    alias: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    from_version_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("model_versions.id")
    )
    to_version_id: Mapped[int] = mapped_column(Integer, ForeignKey("model_versions.id"), index=True)
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text)
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    gates: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    audit_seq: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PredictionLogEntry(Base):
    """One served prediction: request id, version, features (PII hashed) and output."""

    __tablename__ = "prediction_log"

    __table_args__ = (Index("ix_prediction_log_model_name_window_id", "model_name", "window_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    model_name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    features: Mapped[dict[str, Any]] = mapped_column(JSON)
    output: Mapped[dict[str, Any]] = mapped_column(JSON)
    # the monitor window that claimed the row (NULL: not windowed yet). Claiming, rather than
    # a max-id cursor, is what makes windows safe with concurrent writers: a row whose
    # transaction commits after a row with a higher id is still unclaimed, so it is windowed
    # by the next monitor run instead of skipped for good
    window_id: Mapped[int | None] = mapped_column(Integer)
    # the data subject the request named (``"ids"`` beside the instances), keyed-hashed with
    # the store's PII key: what `driftloop erase --subject-id` finds; NULL when none was sent
    subject: Mapped[str | None] = mapped_column(String(64), index=True)
    # a KServe V2 client's own ``id``, as ``<key prefix>:<id>``: kept as its reference only,
    # never as the request id (which the server issues, so clients cannot collide)
    client_ref: Mapped[str | None] = mapped_column(String(96))
    # the serving replica (process) that answered: ``host:pid`` or ``serve.instance``
    replica: Mapped[str | None] = mapped_column(String(64))


class ReloadSignal(Base):
    """A model's reload generation: ``POST /v1/admin/reload`` on any replica bumps it, and every
    replica that polls sees the new number and reloads (one row per model)."""

    __tablename__ = "reload_signals"

    model_name: Mapped[str] = mapped_column(String(128), primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(128))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FeedbackEntry(Base):
    """Ground truth for an earlier request (joined to the prediction log by request id)."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    label: Mapped[Any] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # who sent it: the API key's prefix, "open" on a server without keys; NULL before 0008
    source: Mapped[str | None] = mapped_column(String(32), index=True)


class ApiKey(Base):
    """An API key of the model server, kept only as the SHA-256 of the secret."""

    __tablename__ = "api_keys"
    __table_args__ = (
        _one_of("role", ("predict", "feedback", "read", "admin"), "role"),
        # at most one active key per name, kept by the database, not by read-then-insert
        Index("uq_api_keys_active_name", "name", unique=True,
              sqlite_where=text("revoked_at IS NULL"), postgresql_where=text("revoked_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MonitorWindow(Base):
    """One monitored window of a model's prediction log: drift, estimated and realised metrics.

    A window holds the log rows of one version that it claimed (``prediction_log.window_id``),
    ids ``first_log_id..last_log_id`` (rows of other windows may lie between); ``report`` is
    the drift report as JSON, ``estimated`` the label-free metric estimates, ``realised`` the
    metrics on the rows that have feedback (updated as late labels arrive).
    """

    __tablename__ = "monitor_windows"
    # two monitors of one model can never store the same window twice
    # (unique indexes, not constraints: adding a constraint would make SQLite copy the table,
    # which its foreign keys would see as a delete)
    __table_args__ = (Index("uq_monitor_windows_model_name_version_first_log_id", "model_name",
                            "version", "first_log_id", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    first_log_id: Mapped[int] = mapped_column(BigId)
    last_log_id: Mapped[int] = mapped_column(BigId, index=True)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rows: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    drift_detected: Mapped[bool] = mapped_column(Boolean)
    share_drifted: Mapped[float | None] = mapped_column(Float)
    prediction_drift: Mapped[bool] = mapped_column(Boolean)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    estimated: Mapped[dict[str, Any]] = mapped_column(JSON)
    realised: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Alert(Base):
    """An alert the monitor raised, with what happened to each webhook delivery."""

    __tablename__ = "alerts"
    # one alert of a kind per window (alerts without a window are not constrained)
    __table_args__ = (Index("uq_alerts_window_id_kind", "window_id", "kind", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128), index=True)
    window_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("monitor_windows.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    deliveries: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoopRun(Base):
    """One iteration of the closed loop: the trigger it found and what it did about it."""

    __tablename__ = "loop_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(32))
    trigger: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    champion_version: Mapped[int | None] = mapped_column(Integer)
    challenger_version: Mapped[int | None] = mapped_column(Integer)
    promoted: Mapped[bool] = mapped_column(Boolean, default=False)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)


class Rollout(Base):
    """A candidate version on its way to an alias: shadow, then canary shares, then a decision.

    Every serving replica polls the active rollout of its model and follows it; ``revision``
    grows with every stage change, so two replicas that decide at once cannot both move it."""

    __tablename__ = "rollouts"
    __table_args__ = (
        _one_of("stage", ROLLOUT_STAGES, "stage"),
        # at most one active rollout per model and alias, kept by the database
        Index("uq_rollouts_active_model_alias", "model_name", "alias", unique=True,
              sqlite_where=text("active"), postgresql_where=text("active")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128), index=True)
    alias: Mapped[str] = mapped_column(String(64))
    candidate_version: Mapped[int] = mapped_column(Integer)
    holder_version: Mapped[int | None] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(16))
    share: Mapped[float] = mapped_column(Float)  # of traffic the candidate answers (canary)
    step: Mapped[int] = mapped_column(Integer)  # index into the canary shares (-1: shadow)
    active: Mapped[bool] = mapped_column(Boolean)
    revision: Mapped[int] = mapped_column(Integer)
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)  # the last comparison, intervals
    decision: Mapped[str | None] = mapped_column(Text)  # why it ended (None: running)
    actor: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    stage_started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    stage_rows_from: Mapped[int] = mapped_column(BigInteger)  # observations before this stage
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RolloutObservation(Base):
    """One served row during a rollout: what holder and candidate answered, paired by request
    id (feedback joins it later), how long each took, and whether the candidate failed."""

    __tablename__ = "rollout_observations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rollout_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("rollouts.id", ondelete="CASCADE"), index=True)
    request_id: Mapped[str] = mapped_column(String(64), index=True)
    stage: Mapped[str] = mapped_column(String(16))
    answered_by: Mapped[int] = mapped_column(Integer)  # the version whose answer was returned
    holder_output: Mapped[Any] = mapped_column(JSON, nullable=True)  # predicted label or value
    candidate_output: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    holder_confidence: Mapped[float | None] = mapped_column(Float)
    candidate_confidence: Mapped[float | None] = mapped_column(Float)
    holder_ms: Mapped[float | None] = mapped_column(Float)
    candidate_ms: Mapped[float | None] = mapped_column(Float)
    candidate_error: Mapped[str | None] = mapped_column(String(16))  # error | timeout
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    replica: Mapped[str | None] = mapped_column(String(64))


class FeatureView(Base):
    """One registered version of a feature view: its declaration as settings gave it.

    ``features apply`` adds a version whenever a view's declaration changes (``spec_hash`` is
    the sha256 of its canonical JSON), so a training run can name the exact view it joined."""

    __tablename__ = "feature_views"
    __table_args__ = (UniqueConstraint("name", "version"), UniqueConstraint("name", "spec_hash"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    spec_hash: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)  # the view and its entity, as declared
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OnlineFeatureRow(Base):
    """The latest values of one view for one entity, as materialised for serving.

    The entity is kept as the keyed hash of its key values (entity ids are often personal
    data), which is also how serving looks it up and how erasure finds it."""

    __tablename__ = "feature_online"
    __table_args__ = (UniqueConstraint("view_name", "entity_hash"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    view_name: Mapped[str] = mapped_column(String(64))
    view_version: Mapped[int] = mapped_column(Integer)
    entity_hash: Mapped[str] = mapped_column(String(64))
    values: Mapped[dict[str, Any]] = mapped_column(JSON)  # feature name -> value (None: missing)
    event_time: Mapped[datetime] = mapped_column(UTCDateTime)
    created_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    materialized_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FeatureMaterialization(Base):
    """One ``features materialize`` of a view: the event-time range it covered, the rows it
    wrote; the next run starts where the last one ended (incremental)."""

    __tablename__ = "feature_materializations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    view_name: Mapped[str] = mapped_column(String(64), index=True)
    view_version: Mapped[int] = mapped_column(Integer)
    since: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: from the beginning
    until: Mapped[datetime] = mapped_column(UTCDateTime)  # the latest event time seen
    rows_read: Mapped[int] = mapped_column(BigInteger)
    rows_written: Mapped[int] = mapped_column(BigInteger)
    target: Mapped[str] = mapped_column(String(16))  # 'sql' or 'redis'
    actor: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEntry(Base):
    """One link of the audit chain; the unique ``prev_hash`` keeps the chain from forking."""

    __tablename__ = "audit_entries"
    # AUTOINCREMENT: SQLite never hands a deleted entry's seq to a new one
    __table_args__ = {"sqlite_autoincrement": True}

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(256), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64))


JOB_KINDS = ("check", "train", "loop")
JOB_STATUSES = ("queued", "running", "cancelling", "succeeded", "failed", "cancelled")


class Job(Base):
    """Long work the dashboard started (a data check, a training, a loop iteration), done by a
    background worker process: its state lives here so every replica and a reloaded page show
    it. At most one job per model is unfinished, kept by the database."""

    __tablename__ = "jobs"
    __table_args__ = (
        _one_of("kind", JOB_KINDS, "kind"),
        _one_of("status", JOB_STATUSES, "status"),
        Index("uq_jobs_open_model", "model_name", unique=True,
              sqlite_where=text("active"), postgresql_where=text("active")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    model_name: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean)  # queued, running or cancelling
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))
    pid: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


__all__ = [
    "Alert",
    "AliasMove",
    "ApiKey",
    "AuditEntry",
    "Base",
    "BigId",
    "Dataset",
    "FeatureMaterialization",
    "FeatureView",
    "FeedbackEntry",
    "JOB_KINDS",
    "JOB_STATUSES",
    "Job",
    "ModelAlias",
    "LoopRun",
    "ModelVersion",
    "MonitorWindow",
    "NAMING_CONVENTION",
    "OnlineFeatureRow",
    "PredictionLogEntry",
    "ReloadSignal",
    "Rollout",
    "RolloutObservation",
    "Report",
    "Run",
    "RunDataset",
    "RunMetric",
    "UTCDateTime",
    "utcnow",
]
