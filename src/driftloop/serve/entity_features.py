"""Requests that carry entity keys: look the model's view features up in the online store.

A version trained with feature views (its bundle's ``feature_views``) accepts V1 instances that
carry each view's entity key columns (``customer_id``) and the request-time features instead of
the looked-up features. :meth:`FeatureLookup.fill` reads each view's records for the request's
entities in one batched read per view (:mod:`driftloop.features.online`), fills in every
feature an instance did not spell out (a feature it spells out keeps its value), and drops the
key columns: entity keys are never fed to the model. What it returns is an ordinary,
feature-complete instance list that the request validator then checks as usual, so the
preprocessing (the bundle's JSON state) is the very same as at training.

A value is usable when the entity has one and its event time is within the view's TTL of now.
Otherwise ``features.missing`` decides: ``refuse`` answers 422 (code ``feature_missing``,
or ``feature_stale`` for a value older than the TTL) with a message naming the key value the
caller sent and the view, and nothing is predicted or logged; ``impute`` leaves those features
missing (null), which the model's preprocessing imputes exactly as it did at training.

Each instance's subject is the entity key text of the first view (the prediction log hashes it
with the store's PII key, so it equals the online table's entity hash), unless the request
sends its own ``ids``.

Examples
--------
>>> from datetime import timedelta
>>> from driftloop.features.spec import FeatureUse
>>> from driftloop.store import Store, utcnow
>>> from driftloop.features.online import SqlOnlineStore
>>> from driftloop.data.hashing import hash_value
>>> use = FeatureUse("stats", 1, "0" * 64, "customer", ["customer_id"], "ts", ["spend"], 86400)
>>> with Store.open("sqlite://") as store:
...     online = SqlOnlineStore(store)
...     _ = online.write("stats", 1, [{"entity_hash": hash_value("c-1", "k"),
...                      "values": {"spend": 3.0}, "event_time": utcnow() - timedelta(hours=1),
...                      "created_time": None}])
...     lookup = FeatureLookup([use], ["spend", "age"], online, key="k", missing="refuse")
...     filled = lookup.fill([{"customer_id": "c-1", "age": 30}])
...     try:
...         lookup.fill([{"customer_id": "c-9", "age": 30}])
...     except RequestInvalid as exc:
...         refused = (exc.status, exc.code, str(exc)[:66])
>>> filled.instances, filled.subjects, filled.views
([{'spend': 3.0, 'age': 30}], ['c-1'], {'stats': 1})
>>> refused
(422, 'feature_missing', "instance 0: customer_id='c-9' has no value in feature view 'stats'")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from driftloop.data.hashing import hash_value
from driftloop.features.online import OnlineStore
from driftloop.features.spec import FeatureUse, entity_key_texts
from driftloop.serve.validation import RequestInvalid
from driftloop.store import utcnow

_KEY_TYPES = (str, int, float)


@dataclass(frozen=True)
class Filled:
    """A request's feature-complete instances, each one's subject (entity key text; None:
    no entity), and the view versions looked up (empty: every feature was spelled out)."""

    instances: list[Any]
    subjects: list[str | None] | None
    views: dict[str, int]


class FeatureLookup:
    """Fill instances of one model version from the online store (see the module docstring).

    Parameters
    ----------
    uses
        The bundle's ``feature_views`` (as :class:`~driftloop.features.spec.FeatureUse`).
    names
        The model's feature names (the schema's), in order.
    key
        The store's PII key: entity keys are looked up by their keyed hash.
    missing
        ``"refuse"`` or ``"impute"`` (``features.missing``).
    """

    def __init__(self, uses: Sequence[FeatureUse], names: Sequence[str], online: OnlineStore,
                 *, key: str, missing: str, clock: Callable[[], datetime] = utcnow) -> None:
        self.names = list(names)
        self._name_set = frozenset(self.names)
        # only the view features the model takes (a view may serve more than one model uses)
        self.uses = [(u, [f for f in u.features if f in self._name_set]) for u in uses]
        self.key_columns = frozenset(k for u in uses for k in u.keys) - self._name_set
        self.online, self.key, self.missing, self.clock = online, key, missing, clock

    def needed(self, instances: Any) -> bool:
        """Whether any instance lacks a model feature or carries an entity key (else the
        request goes as it is)."""
        if not isinstance(instances, list):
            return False
        names, keys = self._name_set, self.key_columns
        return any(isinstance(i, dict) and (not names <= i.keys() or not keys.isdisjoint(i))
                   for i in instances)

    def fill(self, instances: list[Any]) -> Filled:
        """Look up and fill in what the instances leave out (reads the online store)."""
        filled: list[dict[str, Any]] = [{} for _ in instances]
        views: dict[str, int] = {}
        now = self.clock()
        for use, features in self.uses:
            rows = [i for i, inst in enumerate(instances) if isinstance(inst, dict)
                    and not all(f in inst for f in features)]
            if not rows:
                continue
            texts = self._key_texts(rows, instances, use)
            hashes = {i: hash_value(t, self.key) for i, t in texts.items()}
            found = self.online.read(use.view, hashes.values())
            oldest = None if use.ttl_seconds is None else now - timedelta(seconds=use.ttl_seconds)
            for i in rows:
                record = found.get(hashes[i])
                fresh = record is not None and (oldest is None or record.event_time >= oldest)
                if not fresh:
                    self._refuse_or_impute(i, instances[i], use, record)
                values = record.values if fresh and record is not None else {}
                filled[i].update({f: values.get(f) for f in features})
            views[use.view] = use.version
        return Filled([self._instance(inst, extra) for inst, extra in zip(
            instances, filled, strict=True)], self._subjects(instances), views)

    def _subjects(self, instances: list[Any]) -> list[str | None] | None:
        """The first view's entity key text of every instance that carries it (looked up or
        not), None for the others; None when no instance does."""
        if not self.uses:
            return None
        first = self.uses[0][0]
        rows = [i for i, inst in enumerate(instances) if isinstance(inst, dict)
                and all(type(inst.get(k)) in _KEY_TYPES for k in first.keys)]
        if not rows:
            return None
        frame = pd.DataFrame({k: pd.Series([instances[i][k] for i in rows], dtype=object)
                              for k in first.keys})
        subjects: list[str | None] = [None] * len(instances)
        for i, text in zip(rows, entity_key_texts(frame, first.keys), strict=True):
            subjects[i] = text
        return subjects

    def _instance(self, inst: Any, extra: dict[str, Any]) -> Any:
        """The instance as the model takes it: its own values first, looked-up ones for the
        rest, without the entity keys (anything else stays, for the validator to name)."""
        if not isinstance(inst, dict):
            return inst
        out = {n: inst[n] if n in inst else extra[n] for n in self.names
               if n in inst or n in extra}
        out.update({k: v for k, v in inst.items()
                    if k not in self._name_set and k not in self.key_columns})
        return out

    def _key_texts(self, rows: list[int], instances: list[Any],
                   use: FeatureUse) -> dict[int, str]:
        """Each row's entity key text, by the very function materialisation hashes the
        source's keys with (one vectorised call per key column, not one per row)."""
        for i in rows:
            for k in use.keys:
                value = instances[i].get(k)
                if value is None or type(value) not in _KEY_TYPES:
                    got = "nothing" if value is None else f"{type(value).__name__} {value!r}"
                    raise RequestInvalid(
                        f"instance {i}: the model looks up feature view '{use.view}' by "
                        f"{', '.join(use.keys)}; send '{k}' (text or a number), got "
                        f"{got[:60]}, or send the view's features ({', '.join(use.features)}).",
                        code="missing_entity_key", fields=[k])
        frame = pd.DataFrame({k: pd.Series([instances[i][k] for i in rows], dtype=object)
                              for k in use.keys})
        texts = entity_key_texts(frame, use.keys)
        for i, text in zip(rows, texts, strict=True):
            if text is None:
                raise RequestInvalid(f"instance {i}: the entity key {_shown(instances[i], use)} "
                                     "is blank; send a key value.", code="missing_entity_key",
                                     fields=list(use.keys))
        return dict(zip(rows, texts, strict=True))

    def _refuse_or_impute(self, i: int, inst: dict[str, Any], use: FeatureUse,
                          record: Any) -> None:
        if self.missing != "refuse":
            return
        send = ("materialize it with `driftloop features materialize`, or send its features")
        if record is None:
            raise RequestInvalid(f"instance {i}: {_shown(inst, use)} has no value in feature "
                                 f"view '{use.view}' ({send}).", code="feature_missing",
                                 fields=list(use.keys))
        raise RequestInvalid(
            f"instance {i}: the value of {_shown(inst, use)} in feature view '{use.view}' is "
            f"from {record.event_time.isoformat()}, older than the view's TTL of "
            f"{use.ttl_seconds} s ({send}).", code="feature_stale", fields=list(use.keys))


def _shown(inst: dict[str, Any], use: FeatureUse) -> str:
    return ", ".join(f"{k}={inst.get(k)!r}"[:80] for k in use.keys)


__all__ = ["FeatureLookup", "Filled"]
