"""The store: database tables and migrations, repository methods, the audit chain, and
content-addressed artifacts.

Examples
--------
>>> from driftloop.store import ArtifactStore, Store
>>> with Store.open("sqlite://") as store:
...     store.list_versions()
[]
>>> ArtifactStore("memory://store-init").exists("0" * 64)
False
"""

from driftloop.store.artifacts import ArtifactStore
from driftloop.store.audit import (
    GENESIS_HASH,
    Anchor,
    AuditLog,
    ChainReport,
    entry_hash,
    pseudonymous_actor,
)
from driftloop.store.canonical import canonical_json
from driftloop.store.clock import utcnow
from driftloop.store.database import AliasMoved, AuditHook, EventHook, MoveHook, Store
from driftloop.store.records import (
    ALIAS_ACTIONS,
    DATASET_ROLES,
    REPORT_KINDS,
    RUN_STATUSES,
    AliasMoveRecord,
    AliasRecord,
    AuditRecord,
    DatasetRecord,
    FeatureViewRecord,
    MaterializationRecord,
    OnlineFeatureRecord,
    ReportRecord,
    RunRecord,
    VersionRecord,
)
from driftloop.store.rollouts import EvidenceCursor, RolloutEvidence, RolloutRecord

__all__ = [
    "ALIAS_ACTIONS",
    "DATASET_ROLES",
    "GENESIS_HASH",
    "REPORT_KINDS",
    "RUN_STATUSES",
    "AliasMoveRecord",
    "Anchor",
    "AliasMoved",
    "AliasRecord",
    "ArtifactStore",
    "AuditHook",
    "AuditLog",
    "AuditRecord",
    "ChainReport",
    "DatasetRecord",
    "EvidenceCursor",
    "EventHook",
    "FeatureViewRecord",
    "MaterializationRecord",
    "MoveHook",
    "OnlineFeatureRecord",
    "ReportRecord",
    "RolloutEvidence",
    "RolloutRecord",
    "RunRecord",
    "Store",
    "VersionRecord",
    "canonical_json",
    "entry_hash",
    "pseudonymous_actor",
    "utcnow",
]
