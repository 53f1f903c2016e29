"""API keys of the model server: created once (the secret is shown once), stored hashed,
revoked; each change audited.

A key reads ``dl_<prefix>_<secret>``; the store keeps its prefix (to name it in lists) and the
SHA-256 of the whole key. Checking a presented key (:class:`~driftloop.http.keys.KeyChecker`)
is shared with the dashboard in :mod:`driftloop.http.keys`.

Examples
--------
>>> from driftloop.store import Store
>>> from driftloop.store import AuditLog
>>> store = Store.open("sqlite://")
>>> created = create_key(store, AuditLog(store), "ci", "predict", actor="ops")
>>> created.secret.startswith("dl_" + created.record.prefix + "_")
True
>>> checker = KeyChecker(store, cache_s=0)
>>> checker.allows(created.secret, "predict"), checker.allows(created.secret, "admin")
(True, False)
>>> checker.allows(None, "predict")
False
>>> _ = revoke_key(store, AuditLog(store), "ci", actor="ops")
>>> checker.allows(created.secret, "predict"), checker.allows(None, "predict")  # still closed
(False, False)
>>> store.close()
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from driftloop.http.keys import KeyChecker, hash_key
from driftloop.store import AuditLog, Store
from driftloop.store.keys import ApiKeyRecord


@dataclass(frozen=True)
class CreatedKey:
    """A new key: ``secret`` is shown once and never stored."""

    record: ApiKeyRecord
    secret: str


def create_key(store: Store, audit: AuditLog, name: str, role: str, *, actor: str) -> CreatedKey:
    """Create a key with ``role`` (``predict``, ``feedback``, ``read`` or ``admin``), audited
    without the secret."""
    prefix = secrets.token_hex(4)
    secret = f"dl_{prefix}_{secrets.token_urlsafe(32)}"
    record = store.add_api_key(name, role, prefix=prefix, key_sha256=hash_key(secret))
    audit.append(actor, "key_created", f"api_key:{prefix}", {"role": role, "name": name})
    return CreatedKey(record, secret)


def revoke_key(store: Store, audit: AuditLog, name_or_prefix: str, *, actor: str) -> ApiKeyRecord:
    """Revoke a key by name or prefix, audited."""
    record = store.revoke_api_key(name_or_prefix)
    audit.append(actor, "key_revoked", f"api_key:{record.prefix}",
                 {"role": record.role, "name": record.name})
    return record


def list_keys(store: Store, *, include_revoked: bool = False) -> list[ApiKeyRecord]:
    """The keys (never their secrets)."""
    return store.list_api_keys(include_revoked=include_revoked)


__all__ = ["CreatedKey", "KeyChecker", "create_key", "hash_key", "list_keys", "revoke_key"]
