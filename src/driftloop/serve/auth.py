"""API keys of the model server: created once (the secret is shown once), stored hashed.

A key reads ``dl_<prefix>_<secret>``; the store keeps its prefix (to name it in lists) and the
SHA-256 of the whole key. The secret is 32 random bytes, so a fast hash is enough: there is
nothing to guess. Roles: ``predict`` (predict, infer, feedback) and ``admin`` (everything).

Policy (:meth:`KeyChecker.allows`): admin endpoints always need an admin key; predict
endpoints need a key as soon as any active key exists; health, metrics and docs are open.

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
>>> checker.allows(created.secret, "predict"), checker.allows(None, "predict")
(False, True)
>>> store.close()
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from driftloop.store import AuditLog, Store
from driftloop.store.keys import API_ROLES, ApiKeyRecord


@dataclass(frozen=True)
class CreatedKey:
    """A new key: ``secret`` is shown once and never stored."""

    record: ApiKeyRecord
    secret: str


def hash_key(secret: str) -> str:
    """SHA-256 (hex) of a key as stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_key(store: Store, audit: AuditLog, name: str, role: str, *, actor: str) -> CreatedKey:
    """Create a key with ``role`` (``predict`` or ``admin``), audited without the secret."""
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


class KeyChecker:
    """Decide whether a presented key may use an endpoint that needs ``role``.

    Lookups are cached for ``cache_s`` seconds, so a revoked key stops working within that.
    """

    def __init__(self, store: Store, *, cache_s: float = 2.0) -> None:
        self.store = store
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._roles: dict[str, tuple[float, str | None]] = {}
        self._any: tuple[float, bool] = (-1e18, False)

    def any_keys(self) -> bool:
        """Whether any active key exists (then predict endpoints need one)."""
        now = time.monotonic()
        with self._lock:
            at, value = self._any
            if now - at < self.cache_s:
                return value
        value = bool(self.store.list_api_keys())
        with self._lock:
            self._any = (now, value)
        return value

    def role_of(self, secret: str) -> str | None:
        """The role of an active key, or None."""
        digest = hash_key(secret)
        now = time.monotonic()
        with self._lock:
            hit = self._roles.get(digest)
            if hit is not None and now - hit[0] < self.cache_s:
                return hit[1]
        found = self.store.find_api_key(digest)
        role = None if found is None else found.role
        with self._lock:
            if len(self._roles) > 10_000:
                self._roles.clear()
            self._roles[digest] = (now, role)
        return role

    def allows(self, secret: str | None, needed: str) -> bool:
        """True when ``secret`` may call an endpoint that needs role ``needed``."""
        if needed not in API_ROLES:
            raise ValueError(f"role {needed!r} is not one of {API_ROLES}")
        if needed == "predict" and secret is None and not self.any_keys():
            return True
        if secret is None:
            return False
        role = self.role_of(secret)
        return role == "admin" or (role == "predict" and needed == "predict")


__all__ = ["CreatedKey", "KeyChecker", "create_key", "hash_key", "list_keys", "revoke_key"]
