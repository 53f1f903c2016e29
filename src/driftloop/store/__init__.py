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
from driftloop.store.database import AuditHook, Store
from driftloop.store.records import (
    DATASET_ROLES,
    RUN_STATUSES,
    AuditRecord,
    DatasetRecord,
    RunRecord,
    VersionRecord,
)

__all__ = [
    "DATASET_ROLES",
    "RUN_STATUSES",
    "ArtifactStore",
    "AuditHook",
    "AuditRecord",
    "DatasetRecord",
    "RunRecord",
    "Store",
    "VersionRecord",
    "canonical_json",
]
