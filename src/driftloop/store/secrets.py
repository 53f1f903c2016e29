"""Secrets a store generates for itself, kept where every host that shares it finds them.

A secret is 32 random bytes (hex) in a named object of the artifact store (``secrets/…``),
created once with create-only semantics — two hosts starting at once get the same one — and
readable by its owner only on a local disk (mode 0600). The key that hashes personal data in
the prediction log is one (:func:`pii_key`): logging never falls back to an unkeyed hash, which
phone numbers and ids would give back to anyone who tries every value.

Examples
--------
>>> from driftloop.store import ArtifactStore
>>> artifacts = ArtifactStore("memory://secrets-doc")
>>> key = pii_key("", artifacts)
>>> len(key), pii_key("", artifacts) == key
(64, True)
>>> pii_key("my-own-key", artifacts)
'my-own-key'
"""

from __future__ import annotations

import re
import secrets

from driftloop.errors import ConfigError
from driftloop.store.artifacts import ArtifactStore

PII_KEY_OBJECT = "secrets/pii.key"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def named_secret(artifacts: ArtifactStore, name: str) -> str:
    """The secret stored as ``name`` (64 hex digits), created on first use."""
    if not artifacts.named_exists(name):
        artifacts.create_named(name, f"{secrets.token_hex(32)}\n".encode("ascii"), private=True)
    where = artifacts.named_url(name)
    try:
        text = artifacts.read_named(name).decode("ascii").strip()
    except UnicodeDecodeError:
        text = ""
    if not _HEX64.match(text):
        raise ConfigError(
            f"the secret {where} is not 64 hex digits; it was changed by hand. Restore it from "
            "your backup (or delete it to start a new one, which breaks joins with what was "
            "hashed under the old one)."
        )
    return text


def pii_key(configured: str, artifacts: ArtifactStore) -> str:
    """The HMAC key of personal data in the log: ``serve.pii_hash_key`` when set, otherwise
    the store's own generated key (``secrets/pii.key`` in the artifact store)."""
    return configured or named_secret(artifacts, PII_KEY_OBJECT)


__all__ = ["PII_KEY_OBJECT", "named_secret", "pii_key"]
