"""Audit anchors kept in the artifact store, so a truncated audit log is caught without a file.

An anchor (:class:`~driftloop.store.audit_chain.Anchor`) names the newest entry of the log at
one moment. ``driftloop audit anchor`` prints one (to keep elsewhere: a ticket, another
machine) and also keeps it here, as the named object ``audit/anchors/<seq>.json`` of the
artifact store — a different system from the database, and on S3 one that object lock or a
bucket policy can make write-once. ``driftloop audit verify`` and the dashboard verify the
chain against the newest anchor kept here; an anchor printed and kept elsewhere still proves
more, since whoever rewrites both the database and the artifact store can rewrite this one.

Examples
--------
>>> from driftloop.store import ArtifactStore, AuditLog, Store
>>> artifacts = ArtifactStore("memory://anchors-doc")
>>> with Store.open("sqlite://") as store:
...     log = AuditLog(store)
...     _ = log.append("ci", "retrain", "churn")
...     kept = keep_anchor(artifacts, log.anchor())
...     newest_anchor(artifacts) == kept, kept.seq
(True, 1)
"""

from __future__ import annotations

import json

from driftloop.store.artifacts import ArtifactStore
from driftloop.store.audit_chain import Anchor

ANCHOR_FOLDER = "audit/anchors"


def keep_anchor(artifacts: ArtifactStore, anchor: Anchor) -> Anchor:
    """Keep ``anchor`` as ``audit/anchors/<seq, 12 digits>.json``; returns it."""
    name = f"{ANCHOR_FOLDER}/{anchor.seq:012d}.json"
    artifacts.write_named(name, json.dumps(anchor.to_json(), sort_keys=True).encode("utf-8"))
    return anchor


def newest_anchor(artifacts: ArtifactStore) -> Anchor | None:
    """The kept anchor of the highest seq, or None when none was kept."""
    names = artifacts.list_named(ANCHOR_FOLDER)
    if not names:
        return None
    return Anchor.from_json(json.loads(artifacts.read_named(max(names))))


__all__ = ["ANCHOR_FOLDER", "keep_anchor", "newest_anchor"]
