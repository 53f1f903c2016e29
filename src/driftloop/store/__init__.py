"""The store: database tables and migrations, repository methods, and content-addressed artifacts.

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
from driftloop.store.canonical import canonical_json
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
    ReportRecord,
    RunRecord,
    VersionRecord,
)

__all__ = [
    "ALIAS_ACTIONS",
    "DATASET_ROLES",
    "REPORT_KINDS",
    "RUN_STATUSES",
    "AliasMoveRecord",
    "AliasMoved",
    "AliasRecord",
    "ArtifactStore",
    "AuditHook",
    "AuditRecord",
    "DatasetRecord",
    "EventHook",
    "MoveHook",
    "ReportRecord",
    "RunRecord",
    "Store",
    "VersionRecord",
    "canonical_json",
]
