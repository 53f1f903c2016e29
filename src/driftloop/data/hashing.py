"""Keyed hashing of identifying values (PII columns, subject ids) before they are stored.

HMAC-SHA256 with a secret key of the value's text: equal values still join (monitoring,
erasure by id) while the value itself is never stored. There is no unkeyed form: a plain
SHA-256 of a phone number or an id is reversed by hashing every possible value, so an empty
key is refused (the store generates one: :func:`driftloop.store.secrets.pii_key`). Serving's
prediction log and erasure hash with this one function, so a value hashed at serving time is
found again at erasure time.

Examples
--------
>>> hash_value("ana@x.org", "s3cret") == hash_value("ana@x.org", "s3cret")
True
>>> hash_value(42, "k") == hash_value("42", "k")
True
>>> len(hash_value("ana@x.org", "s3cret"))
64
>>> hash_value("ana@x.org", "")
Traceback (most recent call last):
...
ValueError: hash_value needs a secret key: an unkeyed hash of personal data can be reversed
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any


def hash_value(value: Any, key: str) -> str:
    """The hex HMAC-SHA256 of ``str(value)`` under ``key`` (which must not be empty)."""
    if not key:
        raise ValueError("hash_value needs a secret key: an unkeyed hash of personal data can "
                         "be reversed")
    return hmac.new(key.encode("utf-8"), str(value).encode("utf-8"), hashlib.sha256).hexdigest()


def edge_key(key: str, model: str) -> str:
    """The PII key an edge package of ``model`` hashes with: HMAC-SHA256 of the model name
    under the store's key ``key``.

    Devices get this derived key, never the store's: a device (or whoever takes it apart) can
    hash guesses against its own model's edge log only, not against the server's log. Erasure
    hashes a subject id under each model's edge key too, so ingested edge rows are found.

    >>> edge_key("s3cret", "churn") == edge_key("s3cret", "churn") != edge_key("s3cret", "x")
    True
    >>> len(edge_key("s3cret", "churn"))
    64
    """
    return hash_value(f"driftloop-edge:{model}", key)


__all__ = ["edge_key", "hash_value"]
