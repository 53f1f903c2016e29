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


__all__ = ["hash_value"]
