"""Governance: the right to erasure (:mod:`driftloop.governance.erasure`) and the governance
report (:mod:`driftloop.governance.report`).

The hash-chained audit log lives in the store (:mod:`driftloop.store.audit`), since every
stage appends to it; its names are re-exported here for code written against
``driftloop.governance``.

Examples
--------
>>> from driftloop.governance import AuditLog
>>> from driftloop.store import Store
>>> with Store.open("sqlite://") as store:
...     AuditLog(store).verify().reason
'the log is empty.'
"""

from driftloop.store.audit import (
    GENESIS_HASH,
    Anchor,
    AuditLog,
    ChainReport,
    entry_hash,
    pseudonymous_actor,
)

__all__ = [
    "GENESIS_HASH", "Anchor", "AuditLog", "ChainReport", "entry_hash", "pseudonymous_actor",
]
