"""The online store: the latest feature values per entity, for serving to look up.

Two stores share one small protocol (:class:`OnlineStore`): ``write(view, version, rows)`` and
``read(view, hashes)``. Both keep one record per (view, entity hash) and let a write overwrite
it only with a *newer* row — a later event time, or the same event time and a later created
time — so materialising the same data twice writes nothing the second time, and two writers
racing keep the newest value whatever their order.

- :class:`SqlOnlineStore`: the store's own database (``feature_online``), the default.
- :class:`RedisOnlineStore`: a Redis server (``features.online_url: redis://…``). Each
  (view, entity) is one Redis hash ``driftloop:feature:<view>:<entity hash>`` with the order
  (``e``: event time, ``c``: created time, in microseconds) and the record as JSON (``j``).
  A Lua script compares and writes in the server, atomically, one script call per batch;
  reads are one pipelined round trip per request.

:func:`online_store` picks one from settings. A Redis URL that is not on loopback must carry a
password (secure by default: feature values are often personal data).

Examples
--------
>>> from datetime import datetime, timezone
>>> from driftloop.config import Settings
>>> from driftloop.store import Store
>>> with Store.open("sqlite://") as store:
...     online = online_store(Settings(), store)
...     t = datetime(2024, 1, 1, tzinfo=timezone.utc)
...     n = online.write("stats", 1, [{"entity_hash": "e1", "values": {"spend": 2.5},
...                                "event_time": t, "created_time": None}])
...     n, online.target, online.read("stats", ["e1", "e9"])["e1"].values
(1, 'sql', {'spend': 2.5})
>>> try:
...     check_redis_url("redis://10.0.0.5:6379/0")
... except ConfigError as exc:
...     print(str(exc)[:72])
features.online_url redis://10.0.0.5:6379/0 is not on loopback and has n
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Protocol
from urllib.parse import urlsplit

from driftloop.config import Settings
from driftloop.errors import ConfigError
from driftloop.store import Store, utcnow
from driftloop.store.records import OnlineFeatureRecord

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_REDIS_BATCH = 1000  # rows per Lua script call
# KEYS[i]: the entity's hash key; ARGV[3i-2..3i]: its event time, created time (-1: none),
# both in microseconds (a Lua number holds them exactly), and the record's JSON. A row is
# written only when newer than what the key holds, the same rule as the SQL store's WHERE.
_WRITE_NEWER = """
local written = 0
for i, key in ipairs(KEYS) do
  local e = tonumber(ARGV[3 * i - 2])
  local c = tonumber(ARGV[3 * i - 1])
  local old = redis.call('HMGET', key, 'e', 'c')
  local oe = tonumber(old[1])
  if (not oe) or e > oe or (e == oe and c > tonumber(old[2])) then
    redis.call('HSET', key, 'e', ARGV[3 * i - 2], 'c', ARGV[3 * i - 1], 'j', ARGV[3 * i])
    written = written + 1
  end
end
return written
"""


class OnlineStoreUnavailable(ConfigError):
    """The online store cannot be reached (serving answers 503; the CLI exits 2)."""


class OnlineStore(Protocol):
    """Where serving looks the latest feature values up, by entity hash."""

    target: str  # 'sql' or 'redis', as materialisation runs record it

    def write(self, view: str, version: int, rows: Sequence[Mapping[str, Any]]) -> int:
        """Upsert rows (``entity_hash``, ``values``, ``event_time``, ``created_time``) where
        newer; returns how many were written."""
        ...

    def read(self, view: str, hashes: Iterable[str]) -> dict[str, OnlineFeatureRecord]:
        """The record of each entity hash that has one (the others are left out)."""
        ...


class SqlOnlineStore:
    """The online table in the store's own database (``feature_online``)."""

    target = "sql"

    def __init__(self, store: Store) -> None:
        self.store = store

    def write(self, view: str, version: int, rows: Sequence[Mapping[str, Any]]) -> int:
        return self.store.write_online_features(view, version, rows)

    def read(self, view: str, hashes: Iterable[str]) -> dict[str, OnlineFeatureRecord]:
        return self.store.online_features(view, hashes)


class RedisOnlineStore:
    """The online table in Redis: one hash key per (view, entity hash), newer-only writes."""

    target = "redis"

    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        check_redis_url(url)
        try:
            import redis  # the optional extra: only a Redis online store needs it
        except ImportError:  # pragma: no cover - the extra is installed in the project's venv
            raise ConfigError("features.online_url is a Redis URL but the redis package is not "
                              "installed; pip install 'driftloop[redis]'.") from None
        self.url = url
        self._errors = redis.exceptions.RedisError
        self._client = redis.Redis.from_url(url, socket_timeout=timeout_s,
                                            socket_connect_timeout=timeout_s)
        self._write_newer = self._client.register_script(_WRITE_NEWER)

    def _unavailable(self, exc: Exception) -> OnlineStoreUnavailable:
        return OnlineStoreUnavailable(
            f"cannot use the Redis online store {redacted_url(self.url)}: {exc}. Check "
            "features.online_url and that the server runs and accepts the password.")

    def close(self) -> None:
        self._client.close()

    @staticmethod
    def key_of(view: str, entity_hash: str) -> str:
        """The Redis key of one entity's record (view names are ``[a-z0-9_]``, hashes hex)."""
        return f"driftloop:feature:{view}:{entity_hash}"

    def write(self, view: str, version: int, rows: Sequence[Mapping[str, Any]]) -> int:
        try:
            return self._write(view, version, rows)
        except self._errors as exc:
            raise self._unavailable(exc) from None

    def read(self, view: str, hashes: Iterable[str]) -> dict[str, OnlineFeatureRecord]:
        try:
            return self._read(view, hashes)
        except self._errors as exc:
            raise self._unavailable(exc) from None

    def _write(self, view: str, version: int, rows: Sequence[Mapping[str, Any]]) -> int:
        now = utcnow().isoformat()
        written = 0
        for start in range(0, len(rows), _REDIS_BATCH):
            keys: list[str] = []
            args: list[Any] = []
            for row in rows[start:start + _REDIS_BATCH]:
                created = row.get("created_time")
                keys.append(self.key_of(view, row["entity_hash"]))
                args += [_micros(row["event_time"]), -1 if created is None else _micros(created),
                         json.dumps({"view_version": version, "values": dict(row["values"]),
                                     "event_time": row["event_time"].isoformat(),
                                     "created_time": None if created is None
                                     else created.isoformat(),
                                     "materialized_at": now}, separators=(",", ":"))]
            written += int(self._write_newer(keys=keys, args=args))
        return written

    def _read(self, view: str, hashes: Iterable[str]) -> dict[str, OnlineFeatureRecord]:
        wanted = list(dict.fromkeys(h for h in hashes if h is not None))
        if not wanted:
            return {}
        pipe = self._client.pipeline(transaction=False)
        for h in wanted:
            pipe.hget(self.key_of(view, h), "j")
        found = {}
        for h, raw in zip(wanted, pipe.execute(), strict=True):
            if raw is not None:
                found[h] = _record(view, h, json.loads(raw))
        return found

    def delete(self, views: Iterable[str], hashes: Iterable[str]) -> int:
        """Remove the records of ``hashes`` in each of ``views`` (erasure); how many existed."""
        keys = [self.key_of(v, h) for v in views for h in hashes]
        try:
            return sum(int(self._client.delete(*keys[i:i + _REDIS_BATCH]))
                       for i in range(0, len(keys), _REDIS_BATCH))
        except self._errors as exc:
            raise self._unavailable(exc) from None

    def rows(self, view: str) -> dict[str, OnlineFeatureRecord]:
        """Every record of ``view`` by entity hash (for checks; scans the keyspace)."""
        prefix = self.key_of(view, "")
        hashes = [k.decode()[len(prefix):] for k in self._client.scan_iter(f"{prefix}*")]
        return self.read(view, hashes)


def online_store(settings: Settings, store: Store) -> SqlOnlineStore | RedisOnlineStore:
    """The online store ``settings.features.online_url`` names: empty -> the store's
    database; ``redis://`` / ``rediss://`` / ``unix://`` -> Redis; anything else is refused."""
    url = settings.features.online_url.strip()
    if not url:
        return SqlOnlineStore(store)
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss", "unix"):
        return RedisOnlineStore(url)
    raise ConfigError(
        f"features.online_url must be empty (the store's database) or a Redis URL "
        f"(redis://host:port/db), got a {scheme or 'schemeless'} URL; fix it in "
        "driftloop.yaml or DRIFTLOOP_FEATURES__ONLINE_URL.")


def check_redis_url(url: str) -> None:
    """Refuse a Redis URL that is neither on loopback (or a unix socket) nor has a password."""
    parts = urlsplit(url)
    if parts.scheme == "unix" or parts.password:
        return
    host = parts.hostname or ""
    if not _loopback(host):
        raise ConfigError(
            f"features.online_url {redacted_url(url)} is not on loopback and has no password: "
            "anyone who reaches it could read and change feature values. Put the password in "
            "the URL (redis://:PASSWORD@host:port/db, or rediss:// for TLS), or use a Redis on "
            "127.0.0.1.")


def redacted_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (what messages and records show).

    >>> redacted_url("redis://:s3cret@cache:6379/0")
    'redis://:***@cache:6379/0'
    """
    parts = urlsplit(url)
    if not parts.password:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return parts._replace(netloc=f"{user}:***@{host}{port}").geturl()


def _loopback(host: str) -> bool:
    if host in ("localhost", "127.0.0.1", "::1"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _micros(t: datetime) -> int:
    delta = t.astimezone(timezone.utc) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _record(view: str, entity_hash: str, data: Mapping[str, Any]) -> OnlineFeatureRecord:
    created = data.get("created_time")
    return OnlineFeatureRecord(
        view_name=view, view_version=int(data["view_version"]), entity_hash=entity_hash,
        values=dict(data["values"]), event_time=datetime.fromisoformat(data["event_time"]),
        created_time=None if created is None else datetime.fromisoformat(created),
        materialized_at=datetime.fromisoformat(data["materialized_at"]))


__all__ = ["OnlineStore", "OnlineStoreUnavailable", "RedisOnlineStore", "SqlOnlineStore",
           "check_redis_url", "online_store", "redacted_url"]
