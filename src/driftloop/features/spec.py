"""What a feature view is, as the store registers it and a model version records it.

A view's *spec* is its declaration (``features.views`` in settings) together with its entity's,
as plain JSON; its ``spec_hash`` (sha256 of the canonical JSON) names that declaration, so
``features apply`` adds a new version only when something changed. A :class:`FeatureUse` is
what a trained version keeps of each view it joined (in its bundle): enough for serving to look
the same columns up for the same entity keys.

Entity keys are compared as text through :func:`entity_key_text`, the same function offline
(pandas columns) and online (request JSON), so ``42``, ``42.0`` and ``"42"`` are one entity,
and are stored only as a keyed hash (:func:`entity_hash`).

Examples
--------
>>> from driftloop.config import FeatureSettings, duration_seconds
>>> fs = FeatureSettings(entities=[{"name": "customer", "keys": ["customer_id"]}],
...     views=[{"name": "stats", "entity": "customer", "source": "stats.parquet",
...             "event_time": "ts", "ttl": "30d", "features": ["spend", "orders"]}])
>>> spec = view_spec(fs, "stats")
>>> spec["entity"]["keys"], len(spec_hash(spec))
(['customer_id'], 64)
>>> entity_key_text([42.0]) == entity_key_text(["42"]) == "42"
True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from driftloop.config import FeatureSettings, duration_seconds
from driftloop.data.hashing import hash_value
from driftloop.data.values import category_keys
from driftloop.store.canonical import canonical_json
from driftloop.store.engine import safe_url


def view_spec(settings: FeatureSettings, name: str) -> dict[str, Any]:
    """The declaration of view ``name`` and of its entity, as JSON (KeyError: not declared)."""
    view = settings.view(name)
    entity = settings.entity(view.entity)
    declared = view.model_dump(mode="json")
    if declared.get("database_url"):  # the spec is stored: never with a password in it
        declared["database_url"] = safe_url(declared["database_url"])
    return {"view": declared, "entity": entity.model_dump(mode="json")}


def spec_hash(spec: dict[str, Any]) -> str:
    """The sha256 of a spec's canonical JSON: equal declarations, equal hashes."""
    return hashlib.sha256(canonical_json(spec)).hexdigest()


@dataclass(frozen=True)
class FeatureUse:
    """One view a model version was trained with: which version, keyed how, which columns."""

    view: str
    version: int
    spec_hash: str
    entity: str
    keys: list[str]
    event_time: str
    features: list[str]
    ttl_seconds: int | None

    @classmethod
    def of(cls, spec: dict[str, Any], version: int) -> FeatureUse:
        """The use of a registered spec at ``version``."""
        view, entity = spec["view"], spec["entity"]
        ttl = view.get("ttl")
        return cls(view=view["name"], version=version, spec_hash=spec_hash(spec),
                   entity=entity["name"], keys=list(entity["keys"]),
                   event_time=view["event_time"], features=list(view["features"]),
                   ttl_seconds=None if ttl is None else duration_seconds(ttl))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeatureUse:
        return cls(**data)


def entity_key_text(values: Sequence[Any]) -> str | None:
    """The text one entity's key values are compared and hashed as (None: a key is missing).

    One key gives its category key (``42.0`` -> ``"42"``); several give their JSON list.
    """
    keys = [category_keys(pd.Series([v], dtype=object))[0] for v in values]
    if any(k is None for k in keys):
        return None
    return keys[0] if len(keys) == 1 else json.dumps(keys, separators=(",", ":"))


def entity_key_texts(frame: pd.DataFrame, keys: Sequence[str]) -> np.ndarray:
    """:func:`entity_key_text` of every row of ``frame``'s ``keys`` columns, vectorised."""
    columns = [category_keys(frame[k]) for k in keys]
    if len(columns) == 1:
        return columns[0]
    out = np.empty(len(frame), dtype=object)
    for i, row in enumerate(zip(*columns, strict=True)):
        out[i] = None if any(k is None for k in row) else json.dumps(list(row),
                                                                     separators=(",", ":"))
    return out


def entity_hash(values: Sequence[Any], key: str) -> str | None:
    """The keyed hash an entity is stored and looked up under (None: a key is missing).

    >>> entity_hash([7], "k") == entity_hash(["7"], "k")
    True
    """
    text = entity_key_text(values)
    return None if text is None else hash_value(text, key)


__all__ = ["FeatureUse", "entity_hash", "entity_key_text", "entity_key_texts", "spec_hash",
           "view_spec"]
