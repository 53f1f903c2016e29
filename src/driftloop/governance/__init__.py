"""Governance: the hash-chained audit log; the right to erasure
(:mod:`driftloop.governance.erasure`) and the governance report
(:mod:`driftloop.governance.report`) live in their own modules.

Examples
--------
>>> from driftloop.governance import AuditLog
>>> from driftloop.store import Store
>>> with Store.open("sqlite://") as store:
...     AuditLog(store).verify().reason
'the log is empty.'
"""

from driftloop.governance.audit import (
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
