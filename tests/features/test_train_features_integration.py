"""``train --features``: the views joined as of each row's time are exactly what is trained on."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from driftloop.cli import main
from driftloop.errors import UsageError
from driftloop.registry import Registry
from driftloop.train.launcher import train

pytestmark = pytest.mark.slow

BACKFILLED = 999.0  # a value written long after the rows it would belong to


def _sources(folder, rows=240, customers=40, seed=0):
    """A view source with some back-filled values, and an entity table with labels."""
    rng = np.random.default_rng(seed)
    days = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(60), unit="D")
    stats = []
    for c in range(customers):
        for d in sorted(rng.choice(60, 6, replace=False)):
            stats.append({"customer_id": c, "ts": days[d], "written": days[d],
                          "spend": float(rng.normal(50, 20)), "orders": int(rng.integers(0, 9))})
        # the value for day 5, back-filled on day 59: no row before day 59 may see it
        stats.append({"customer_id": c, "ts": days[5], "written": days[59],
                      "spend": BACKFILLED, "orders": 99})
    stats = pd.DataFrame(stats)
    stats["ts"] = stats["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    stats["written"] = stats["written"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    stats.to_csv(folder / "stats.csv", index=False)
    entity = pd.DataFrame({"customer_id": rng.integers(0, customers + 3, rows),
                           "at": (days[rng.integers(3, 58, rows)]).strftime("%Y-%m-%d"),
                           "amount": rng.normal(0, 1, rows).round(3)})
    entity["label"] = rng.integers(0, 2, rows)
    entity.to_csv(folder / "rows.csv", index=False)
    return stats, entity


def _hand_join(stats: pd.DataFrame, entity: pd.DataFrame, ttl: pd.Timedelta) -> pd.DataFrame:
    """The join written out by hand, one row at a time: the latest value known by then, unless
    it is older than the TTL."""
    stats = stats.assign(ts=pd.to_datetime(stats["ts"]), written=pd.to_datetime(stats["written"]))
    out = []
    for key, at in zip(entity["customer_id"], pd.to_datetime(entity["at"]), strict=True):
        known = stats[(stats["customer_id"] == key) & (stats["ts"] <= at)
                      & (stats["written"] <= at)]
        best = known.sort_values(["ts", "written"], kind="stable").iloc[-1] if len(known) else None
        if best is None or at - best["ts"] > ttl:
            out.append({"spend": math.nan, "orders": math.nan, "expired": best is not None})
        else:
            out.append({"spend": best["spend"], "orders": best["orders"], "expired": False})
    return pd.concat([entity.drop(columns="customer_id"), pd.DataFrame(out)], axis=1)


def _settings(dl_settings, folder):
    return dl_settings.updated({"features": {
        "entities": [{"name": "customer", "keys": ["customer_id"]}],
        "views": [{"name": "stats", "entity": "customer", "source": str(folder / "stats.csv"),
                   "event_time": "ts", "created_time": "written", "ttl": "30d",
                   "features": ["spend", "orders"]}]}})


def test_training_with_features_reproduces_the_hand_joined_table(tmp_path, dl_settings, capsys,
                                                                 monkeypatch):
    stats, entity = _sources(tmp_path)
    settings = _settings(dl_settings, tmp_path)
    hand = _hand_join(stats, entity, pd.Timedelta(days=30))
    expired = int(hand.pop("expired").sum())
    hand.to_csv(tmp_path / "hand.csv", index=False)
    common = {"workers": 1, "epochs": 3, "batch_size": 32, "seed": 3, "name": "churn",
              "time_column": "at", "settings": settings, "progress": False}
    joined = train(tmp_path / "rows.csv", "label", features=["stats"], **common)
    by_hand = train(tmp_path / "hand.csv", "label", **common)
    assert joined.weights_sha256 == by_hand.weights_sha256

    # the run folder keeps the joined table: keys gone, no back-filled value reached it
    kept = pd.read_parquet(f"{joined.run_dir}/data/features.parquet")
    assert "customer_id" not in kept.columns
    assert BACKFILLED not in set(kept["spend"]) and expired > 0
    pd.testing.assert_frame_equal(kept, pd.read_csv(tmp_path / "hand.csv"), check_dtype=False)

    with Registry.open(settings) as registry:
        version = registry.get("churn", joined.version)
        uses = registry.bundle(version).feature_views
        run = registry.store.get_run(joined.run_id)
        card = registry.card("churn", joined.version).to_markdown()
    assert [(u["view"], u["version"], u["keys"]) for u in uses] == [("stats", 1, ["customer_id"])]
    assert run.params["features"] == uses
    assert run.params["source"].endswith("data/features.parquet")
    assert run.params["entity_table"].endswith("rows.csv")
    assert "view stats v1 (sha256" in card
    monkeypatch.setenv("DRIFTLOOP_HOME", settings.home)
    monkeypatch.setenv("DRIFTLOOP_STORE_URL", settings.store_url)
    monkeypatch.setenv("DRIFTLOOP_ARTIFACTS_URL", settings.artifacts_url)
    capsys.readouterr()
    assert main(["models", "show", f"churn:{joined.version}"]) == 0
    assert f"Features: view stats v1 (sha256 {uses[0]['spec_hash'][:12]}" in capsys.readouterr().out


def test_bad_feature_input_exits_2_with_one_message(workdir, capsys, store_url, monkeypatch):
    monkeypatch.setenv("DRIFTLOOP_STORE_URL", store_url)
    _sources(workdir, rows=80)
    (workdir / "driftloop.yaml").write_text(json.dumps({"features": {
        "entities": [{"name": "customer", "keys": ["customer_id"]}],
        "views": [{"name": "stats", "entity": "customer", "source": "stats.csv",
                   "event_time": "ts", "features": ["spend"]}]}}))
    pd.read_csv(workdir / "rows.csv").drop(columns="customer_id").to_csv(workdir / "nokey.csv",
                                                                        index=False)
    cases = [
        (["rows.csv", "--features", "nope", "--time-column", "at"], "'nope' is not declared"),
        (["rows.csv", "--features", "stats"], "pass --time-column"),
        (["rows.csv", "--features", "stats", "--time-column", "when"], "no time column 'when'"),
        (["nokey.csv", "--features", "stats", "--time-column", "at"],
         "no entity key column 'customer_id'"),
    ]
    for args, expected in cases:
        code = main(["train", *args, "--target", "label", "--workers", "1"])
        err = capsys.readouterr().err
        assert code == 2 and expected in err and "Traceback" not in err, (args, err)


def test_a_retrain_from_the_joined_table_keeps_the_views(tmp_path, dl_settings):
    """What the loop does for a feature-view version: retrain from the run's joined table with
    the champion's views carried over, so serving keeps looking them up; a table that lacks a
    view's feature is refused."""
    _sources(tmp_path)
    settings = _settings(dl_settings, tmp_path)
    common = {"workers": 1, "epochs": 2, "batch_size": 32, "seed": 3, "name": "churn",
              "time_column": "at", "settings": settings, "progress": False}
    first = train(tmp_path / "rows.csv", "label", features=["stats"], **common)
    with Registry.open(settings) as registry:
        uses = registry.bundle(registry.get("churn", first.version)).feature_views
    joined = f"{first.run_dir}/data/features.parquet"
    again = train(joined, "label", feature_uses=uses, **common)
    with Registry.open(settings) as registry:
        kept = registry.bundle(registry.get("churn", again.version)).feature_views
        run = registry.store.get_run(again.run_id)
    assert kept == uses and run.params["features"] == uses

    pd.read_parquet(joined).drop(columns="orders").to_csv(tmp_path / "less.csv", index=False)
    with pytest.raises(UsageError, match="no feature orders"):
        train(tmp_path / "less.csv", "label", feature_uses=uses, **common)
