"""The right to erasure reaches the feature store: a subject who is an entity of a view loses
its materialised online rows (the store's database or Redis) with the rest of its data, in the
same audited erasure; other entities keep theirs."""

from __future__ import annotations

import pandas as pd
import pytest

from driftloop.features.materialize import materialize
from driftloop.features.online import online_store
from driftloop.features.registry import apply_views
from driftloop.features.spec import entity_hash
from driftloop.governance.erasure import erase_subject
from driftloop.registry import Registry
from driftloop.store.secrets import pii_key


@pytest.fixture(params=["sql", "redis"])
def settings(request, dl_settings, tmp_path):
    pd.DataFrame({"customer_id": ["c-1", "c-2", "c-1"],
                  "ts": ["2024-03-01T00:00:00", "2024-03-01T00:00:00", "2024-03-02T00:00:00"],
                  "spend": [1.0, 2.0, 3.0]}).to_csv(tmp_path / "stats.csv", index=False)
    online_url = "" if request.param == "sql" else request.getfixturevalue("redis_url")
    return dl_settings.updated({"features": {
        "online_url": online_url,
        "entities": [{"name": "customer", "keys": ["customer_id"]}],
        "views": [{"name": "stats", "entity": "customer", "source": str(tmp_path / "stats.csv"),
                   "event_time": "ts", "features": ["spend"]}]}})


def test_erasing_a_subject_removes_its_online_feature_rows(settings):
    with Registry.open(settings) as registry:
        key = pii_key(settings.serve.pii_hash_key, registry.artifacts)
        apply_views(registry.store, settings, actor="test")
        materialize(registry.store, settings, actor="test", key=key)
        mine, other = entity_hash(["c-1"], key), entity_hash(["c-2"], key)
        target = online_store(settings, registry.store)
        assert set(target.read("stats", [mine, other])) == {mine, other}

        if not settings.features.online_url:  # a dry run counts the database's rows
            planned = erase_subject(registry, "c-1", id_column="customer_id", dry_run=True)
            assert planned.online_features == 1
            assert set(target.read("stats", [mine, other])) == {mine, other}
        result = erase_subject(registry, "c-1", id_column="customer_id", actor="dpo")
        assert result.online_features == 1
        assert set(target.read("stats", [mine, other])) == {other}
        entry = registry.audit.entries()[-1]
        assert entry.action == "erase" and entry.details["counts"]["online_features"] == 1
        assert "c-1" not in str(entry.details)
        if hasattr(target, "close"):
            target.close()
