"""API keys as HTTP sees them: the one parser of a presented key, its hash, the cached lookup.

A key reads ``dl_<prefix>_<secret>`` and is presented as ``Authorization: Bearer KEY`` or
``X-API-Key: KEY``; the store keeps its prefix and the SHA-256 of the whole key. The secret is
32 random bytes, so a fast hash is enough: there is nothing to guess. Roles: ``predict``
(predict, infer; feedback too only with ``serve.feedback_from_predict_keys``), ``feedback``
(labels), ``read`` (the dashboard and its JSON) and ``admin`` (everything).

Policy (:meth:`KeyChecker.allows`), failing closed: admin endpoints always need an admin key;
predict, feedback and dashboard endpoints are open only while no key was *ever* created (a
revoked last key does not reopen them) and only when the checker was built with
``open_without_keys`` (the server binds to loopback); health, metrics and docs are open.
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
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPBearer

from driftloop.store import Store
from driftloop.store.keys import API_ROLES

SESSION_COOKIE = "driftloop_key"
# what each role may call; admin may call everything
_GRANTS = {"predict": frozenset({"predict"}), "feedback": frozenset({"feedback"}),
           "read": frozenset({"read"})}


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The API key a request presents (``X-API-Key``, else ``Authorization: Bearer``), or None.

    ``headers`` maps lower-case header names to values (Starlette's ``request.headers``). The
    dashboard's session cookie (:data:`SESSION_COOKIE`) is read by the dashboard alone: it
    only reads, it never acts.
    """
    secret = headers.get("x-api-key")
    auth = headers.get("authorization", "")
    if secret is None and auth.lower().startswith("bearer "):
        secret = auth[7:].strip()
    return secret or None


# FastAPI's security classes declare the two ways in the OpenAPI spec (securitySchemes);
# presented_key above stays the one parser, so serve and the dashboard read keys alike
_BEARER = HTTPBearer(auto_error=False, scheme_name="bearerKey",
                     description="`Authorization: Bearer dl_…` (`driftloop keys create`)")
_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="apiKeyHeader",
                       description="`X-API-Key: dl_…`, the same key")


def request_key(request: Request, _bearer: object = Security(_BEARER),
                _header: object = Security(_HEADER)) -> str | None:
    """The route dependency: the key the request presents in a header, or None."""
    return presented_key(request.headers)


PresentedKey = Annotated[str | None, Depends(request_key)]
"""A route parameter holding the presented key (and declaring the security schemes)."""


def key_source(secret: str | None) -> str:
    """Who a request is from, as stored beside what it sent: the key's public prefix (the
    ``<prefix>`` of ``dl_<prefix>_<secret>``, what ``driftloop keys list`` shows), or
    ``"open"`` without a key. Call it only after the key was checked.

    >>> key_source("dl_ab12cd34_s3cr3t"), key_source(None)
    ('ab12cd34', 'open')
    """
    if secret is None:
        return "open"
    parts = secret.split("_", 2)
    return parts[1][:32] if len(parts) == 3 and parts[0] == "dl" else "key"


def grants(role: str | None, needed: str, *, predict_may_feedback: bool = False) -> bool:
    """Whether a key with ``role`` may call an endpoint that needs ``needed``; a predict key
    sends labels only when ``predict_may_feedback`` (``serve.feedback_from_predict_keys``).

    >>> grants("admin", "read"), grants("predict", "feedback"), grants("read", "predict")
    (True, False, False)
    >>> grants("predict", "feedback", predict_may_feedback=True)
    True
    """
    if role == "predict" and needed == "feedback" and predict_may_feedback:
        return True
    return role == "admin" or (role is not None and needed in _GRANTS.get(role, ()))


def hash_key(secret: str) -> str:
    """SHA-256 (hex) of a key as stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class KeyChecker:
    """Decide whether a presented key may use an endpoint that needs ``role``.

    Lookups — hits and misses — are cached for ``cache_s`` seconds, so a revoked key stops
    working within that and a stream of bogus keys costs one query per key per ``cache_s``.
    ``open_without_keys``: whether anything but admin is open while no key was ever created
    (True only for a server on loopback).
    """

    def __init__(self, store: Store, *, cache_s: float = 2.0,
                 open_without_keys: bool = True, predict_may_feedback: bool = False) -> None:
        self.store = store
        self.cache_s = cache_s
        self.open_without_keys = open_without_keys
        self.predict_may_feedback = predict_may_feedback
        self._lock = threading.Lock()
        self._roles: dict[str, tuple[float, str | None]] = {}
        self._any: tuple[float, bool] = (-1e18, False)

    def any_keys(self) -> bool:
        """Whether a key was ever created, revoked or not (then every endpoint needs one)."""
        now = time.monotonic()
        with self._lock:
            at, value = self._any
            if value or now - at < self.cache_s:  # once closed, closed for good
                return value
        value = self.store.any_api_key_created()
        with self._lock:
            self._any = (now, value)
        return value

    def decide(self, secret: str | None, needed: str) -> bool | None:
        """:meth:`allows` from the cache alone: None when deciding needs the store (call
        :meth:`allows` off the event loop then). A flood of one bogus key costs one query per
        ``cache_s``; misses are cached like hits."""
        now = time.monotonic()
        with self._lock:
            at, closed = self._any
            if (secret is None and not closed and now - at >= self.cache_s
                    and self.open_without_keys):
                return None
            hit = self._roles.get(hash_key(secret)) if secret is not None else None
            if secret is not None and (hit is None or now - hit[0] >= self.cache_s):
                return None
        if needed != "admin" and secret is None and self.open_without_keys and not closed:
            return True
        return secret is not None and hit is not None and self._grants(hit[1], needed)

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

    def is_open(self) -> bool:
        """Whether non-admin endpoints need no key here (loopback, no key ever created)."""
        return self.open_without_keys and not self.any_keys()

    def allows(self, secret: str | None, needed: str) -> bool:
        """True when ``secret`` may call an endpoint that needs role ``needed``."""
        if needed not in API_ROLES:
            raise ValueError(f"role {needed!r} is not one of {API_ROLES}")
        if needed != "admin" and secret is None and self.is_open():
            return True
        if secret is None:
            return False
        return self._grants(self.role_of(secret), needed)

    def _grants(self, role: str | None, needed: str) -> bool:
        return grants(role, needed, predict_may_feedback=self.predict_may_feedback)


__all__ = ["SESSION_COOKIE", "KeyChecker", "PresentedKey", "grants", "hash_key", "key_source",
           "presented_key",
           "request_key"]
