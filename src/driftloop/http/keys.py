"""API keys as HTTP sees them: the one parser of a presented key, its hash, the cached lookup.

A key reads ``dl_<prefix>_<secret>`` and is presented as ``Authorization: Bearer KEY`` or
``X-API-Key: KEY``; the store keeps its prefix and the SHA-256 of the whole key. The secret is
32 random bytes, so a fast hash is enough: there is nothing to guess. Roles: ``predict``
(predict, infer, feedback) and ``admin`` (everything).

Policy (:meth:`KeyChecker.allows`): admin endpoints always need an admin key; predict
endpoints need a key as soon as any active key exists; health, metrics and docs are open.
Creating and revoking keys (audited) is :mod:`driftloop.serve.auth`.

Examples
--------
>>> presented_key({"authorization": "Bearer dl_ab_x"}), presented_key({"x-api-key": "k"})
('dl_ab_x', 'k')
>>> presented_key({"authorization": "Basic eDp5"}) is None
True
>>> len(hash_key("dl_ab_x"))
64
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Mapping

from driftloop.store import Store
from driftloop.store.keys import API_ROLES


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The API key a request presents (``X-API-Key``, else ``Authorization: Bearer``), or None.

    ``headers`` maps lower-case header names to values (Starlette's ``request.headers``).
    """
    secret = headers.get("x-api-key")
    auth = headers.get("authorization", "")
    if secret is None and auth.lower().startswith("bearer "):
        secret = auth[7:].strip()
    return secret or None


def hash_key(secret: str) -> str:
    """SHA-256 (hex) of a key as stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


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


__all__ = ["KeyChecker", "hash_key", "presented_key"]
