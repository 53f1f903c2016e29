"""Declared views registered; training resolves the current declaration, registering a change."""

from __future__ import annotations

import fsspec
import pandas as pd
import pytest

from driftloop.config import EntitySettings, FeatureViewSettings
from driftloop.errors import UsageError
from driftloop.features.registry import apply_views, resolve_views
from driftloop.features.source import read_view_source
from driftloop.store import AuditLog, Store


def _settings(dl_settings, source, **view):
    return dl_settings.updated({"features": {
        "entities": [{"name": "customer", "keys": ["customer_id"]}],
        "views": [{"name": "stats", "entity": "customer", "source": str(source),
                   "event_time": "ts", "features": ["spend"], **view}]}})


def test_training_registers_a_changed_declaration_and_audits_it(tmp_path, dl_settings):
    pd.DataFrame({"customer_id": [1], "ts": ["2024-01-01"], "spend": [2.0]}).to_csv(
        tmp_path / "s.csv", index=False)
    first = _settings(dl_settings, tmp_path / "s.csv")
    changed = _settings(dl_settings, tmp_path / "s.csv", ttl="7d")
    with Store.open(first.store_url) as store:
        assert [a.record.version for a in apply_views(store, first, actor="ann")] == [1]
        (use, frame), = resolve_views(store, first, ["stats"], actor="trainer")
        assert (use.version, frame.ttl_seconds) == (1, None)
        (use, frame), = resolve_views(store, changed, ["stats"], actor="trainer")
        assert (use.version, use.ttl_seconds, frame.ttl_seconds) == (2, 7 * 86_400, 7 * 86_400)
        entries = AuditLog(store).entries(action="feature_view_registered")
        assert [(e.actor, e.details["version"]) for e in entries] == [("ann", 1), ("trainer", 2)]
        with pytest.raises(UsageError, match="'clicks' is not declared. Declared views: stats"):
            resolve_views(store, first, ["stats", "clicks"])
        with pytest.raises(UsageError, match="named twice"):
            resolve_views(store, first, ["stats", "stats"])
        assert len(store.feature_view_versions("stats")) == 2  # nothing half-registered


def test_a_remote_folder_source_is_read_through_fsspec():
    fs = fsspec.filesystem("memory")
    for i in range(2):
        with fs.open(f"/views-test/stats/part-{i}.csv", "w") as f:
            f.write(f"customer_id,ts,spend\n{i},2024-01-0{i + 1},{i}.5\n")
    view = FeatureViewSettings(name="stats", entity="customer", source="memory://views-test/stats",
                               event_time="ts", features=["spend"])
    frame = read_view_source(view, EntitySettings(name="customer", keys=["customer_id"]))
    assert frame.table["spend"].tolist() == [0.5, 1.5]
