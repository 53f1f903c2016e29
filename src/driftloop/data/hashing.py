"""Keyed hashing of identifying values (PII columns, subject ids) before they are stored.

HMAC-SHA256 with a secret key (plain SHA-256 when the key is empty) of the value's text: equal
values still join (monitoring, erasure by id) while the value itself is never stored. Serving's
prediction log and erasure hash with this one function, so a value hashed at serving time is
found again at erasure time.

Examples
--------
>>> hash_value("ana@x.org", "s3cret") == hash_value("ana@x.org", "s3cret")
True
>>> hash_value(42, "") == hash_value("42", "")
True
>>> len(hash_value("ana@x.org", "s3cret"))
64
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any


def hash_value(value: Any, key: str) -> str:
    """The hex HMAC-SHA256 (SHA-256 when ``key`` is empty) of ``str(value)``."""
    data = str(value).encode("utf-8")
    if key:
        return hmac.new(key.encode("utf-8"), data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


__all__ = ["hash_value"]
