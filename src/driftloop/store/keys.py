"""API keys of the model server, stored only as the prefix and SHA-256 of each secret.

:class:`ApiKeyQueries` is the :class:`~driftloop.store.Store` mixin behind them; creating and
checking keys (and auditing that) is :mod:`driftloop.serve.auth`'s work.

Examples
--------
>>> from driftloop.store import Store
>>> store = Store.open("sqlite://")
>>> key = store.add_api_key("ci", "predict", prefix="abcd1234", key_sha256="0" * 64)
>>> store.find_api_key("0" * 64).role, store.revoke_api_key("ci").revoked_at is not None
('predict', True)
>>> store.find_api_key("0" * 64) is None, [k.name for k in store.list_api_keys()]
(True, [])
>>> store.close()
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from driftloop.errors import NotFoundError, UsageError
from driftloop.store.clock import utcnow
from driftloop.store.core import StoreCore
from driftloop.store.tables import ApiKey

# read: the dashboard and its JSON; predict: predict and infer; feedback: labels; admin: all
API_ROLES = ("predict", "feedback", "read", "admin")


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key as stored: never the secret, only its prefix and SHA-256."""

    id: int
    name: str
    prefix: str
    role: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class ApiKeyQueries(StoreCore):
    """API keys (a :class:`~driftloop.store.Store` mixin)."""

    def add_api_key(self, name: str, role: str, *, prefix: str, key_sha256: str) -> ApiKeyRecord:
        """Store a new key by the SHA-256 of its secret; ``name`` must be unused by active keys.

        Examples
        --------
        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     _ = store.add_api_key("ci", "predict", prefix="p1", key_sha256="1" * 64)
        ...     store.add_api_key("ci", "admin", prefix="p2", key_sha256="2" * 64)
        Traceback (most recent call last):
        ...
        driftloop.errors.UsageError: an active key is already named 'ci'. Revoke it or pick another name.
        """  # noqa: E501
        if role not in API_ROLES:
            raise UsageError(f"key role '{role}' is not one of {', '.join(API_ROLES)}.")
        if not name or len(name) > 128:
            raise UsageError(f"key name must be text of 1 to 128 characters, got {name!r}.")
        # the unique index on active names decides, not a read before the insert: two
        # processes creating the same name at once get one key and one clear refusal
        try:
            with self.session() as session:
                row = ApiKey(name=name, prefix=prefix, key_sha256=key_sha256, role=role,
                             created_at=utcnow())
                session.add(row)
                session.flush()
                return _key_record(row)
        except sa_exc.IntegrityError:
            if not any(k.name == name for k in self.list_api_keys()):
                raise
            raise UsageError(f"an active key is already named '{name}'. Revoke it or pick "
                             "another name.") from None

    def list_api_keys(self, *, include_revoked: bool = False) -> list[ApiKeyRecord]:
        """Every key (active only unless ``include_revoked``), oldest first."""
        query = select(ApiKey).order_by(ApiKey.id)
        if not include_revoked:
            query = query.where(ApiKey.revoked_at.is_(None))
        with self.session(write=False) as session:
            return [_key_record(r) for r in session.scalars(query)]

    def any_api_key_created(self) -> bool:
        """Whether a key was ever created here, revoked or not (then nothing is open again).

        >>> from driftloop.store import Store
        >>> with Store.open("sqlite://") as store:
        ...     before = store.any_api_key_created()
        ...     _ = store.add_api_key("ci", "read", prefix="ab12", key_sha256="0" * 64)
        ...     _ = store.revoke_api_key("ci")
        ...     before, store.any_api_key_created()
        (False, True)
        """
        with self.session(write=False) as session:
            return session.scalar(select(ApiKey.id).limit(1)) is not None

    def find_api_key(self, key_sha256: str) -> ApiKeyRecord | None:
        """The active key whose secret hashes to ``key_sha256``, or None."""
        with self.session(write=False) as session:
            row = session.scalar(select(ApiKey).where(
                ApiKey.key_sha256 == key_sha256, ApiKey.revoked_at.is_(None)))
            return None if row is None else _key_record(row)

    def revoke_api_key(self, name_or_prefix: str) -> ApiKeyRecord:
        """Revoke the active key with this name or prefix."""
        with self.session() as session:
            row = session.scalar(select(ApiKey).where(
                (ApiKey.name == name_or_prefix) | (ApiKey.prefix == name_or_prefix),
                ApiKey.revoked_at.is_(None)))
            if row is None:
                raise NotFoundError(f"no active key named or prefixed '{name_or_prefix}'. "
                                    "List them with `driftloop keys list`.")
            row.revoked_at = utcnow()
            session.flush()
            return _key_record(row)


def _key_record(row: ApiKey) -> ApiKeyRecord:
    return ApiKeyRecord(row.id, row.name, row.prefix, row.role, row.created_at, row.revoked_at)


__all__ = ["API_ROLES", "ApiKeyQueries", "ApiKeyRecord"]
