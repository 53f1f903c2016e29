"""``driftloop features apply|list|show|retrieve`` as a user meets them, on the real store."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from driftloop.cli import main
from driftloop.config import Settings
from driftloop.errors import ConfigError

DECLARATION = {
    "entities": [{"name": "customer", "keys": ["customer_id"]}],
    "views": [{"name": "stats", "entity": "customer", "source": "stats.csv",
               "event_time": "ts", "created_time": "written", "features": ["spend"]}],
}


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def project(workdir, store_url, monkeypatch):
    monkeypatch.setenv("DRIFTLOOP_STORE_URL", store_url)
    (workdir / "features.yaml").write_text(yaml.safe_dump(DECLARATION))
    # customer 1's value for Jan 2 was back-filled on Jan 20
    pd.DataFrame({"customer_id": [1, 1, 2], "ts": ["2024-01-01", "2024-01-02", "2024-01-01"],
                  "written": ["2024-01-01", "2024-01-20", "2024-01-01"],
                  "spend": [10.0, 20.0, 7.0]}).to_csv(workdir / "stats.csv", index=False)
    pd.DataFrame({"customer_id": [1, 1, 3], "at": ["2024-01-10", "2024-01-21", "2024-01-10"],
                  "label": [0, 1, 0]}).to_csv(workdir / "rows.csv", index=False)
    return workdir


def test_apply_registers_once_and_a_change_gets_the_next_version(project, capsys):
    code, out, _ = _run(capsys, "features", "apply", "--json")
    assert code == 0 and [(v["name"], v["version"], v["created"]) for v in json.loads(out)] == [
        ("stats", 1, True)]
    code, out, _ = _run(capsys, "features", "apply")
    assert code == 0 and "stats v1  unchanged" in out
    changed = {**DECLARATION, "views": [{**DECLARATION["views"][0], "ttl": "30d"}]}
    (project / "features.yaml").write_text(yaml.safe_dump(changed))
    code, out, _ = _run(capsys, "features", "apply")
    assert code == 0 and "stats v2  registered" in out
    code, out, _ = _run(capsys, "features", "list", "--json")
    assert [(v["name"], v["version"], v["spec"]["view"]["ttl"]) for v in json.loads(out)] == [
        ("stats", 2, "30d")]
    code, out, _ = _run(capsys, "features", "show", "stats", "--version", "1")
    assert code == 0 and "view stats v1" in out and "never expire" in out
    code, out, _ = _run(capsys, "audit", "show", "--json")
    actions = [e["action"] for e in json.loads(out) if e["subject"] == "feature_view:stats"]
    assert actions == ["feature_view_registered"] * 2


def test_retrieve_writes_the_point_in_time_table_and_counts_missing(project, capsys):
    code, out, err = _run(capsys, "features", "retrieve", "rows.csv", "--views", "stats",
                          "--time-column", "at", "--out", "joined.parquet", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["missing"] == {"stats": {"spend": 1}}
    assert [(v["view"], v["version"]) for v in report["views"]] == [("stats", 1)]
    joined = pd.read_parquet(project / "joined.parquet")
    # on Jan 10 the back-filled Jan 2 value was not written yet: Jan 1's value is used
    assert joined["spend"].fillna(-1).tolist() == [10.0, 20.0, -1]
    assert joined["label"].tolist() == [0, 1, 0]
    code, out, _ = _run(capsys, "features", "retrieve", "rows.csv", "--views", "stats",
                        "--time-column", "at", "--out", "joined.csv")
    assert code == 0 and "stats v1: 1 features, missing: spend 1" in out
    assert pd.read_csv(project / "joined.csv")["spend"].fillna(-1).tolist() == [10.0, 20.0, -1]


@pytest.mark.parametrize("args,expected", [
    (["--views", "nope", "--time-column", "at"], ["'nope' is not declared", "stats"]),
    (["--views", "stats", "--time-column", "when"], ["no time column 'when'", "at"]),
    (["--views", "stats", "--time-column", "at", "--out", "x.json"], [".parquet", ".csv"]),
])
def test_bad_retrieve_input_exits_2_with_one_message(project, capsys, args, expected):
    argv = ["features", "retrieve", "rows.csv", *args]
    if "--out" not in args:
        argv += ["--out", "joined.parquet"]
    code, out, err = _run(capsys, *argv)
    assert code == 2 and "Traceback" not in err
    assert all(e in err for e in expected), err
    assert not (project / "joined.parquet").exists()


def test_features_yaml_or_driftloop_yaml_but_not_both(tmp_path):
    (tmp_path / "features.yaml").write_text(yaml.safe_dump(DECLARATION))
    assert Settings.load(environ={}, cwd=tmp_path).features.views[0].name == "stats"
    (tmp_path / "driftloop.yaml").write_text(yaml.safe_dump({"features": DECLARATION}))
    with pytest.raises(ConfigError, match="features are declared twice"):
        Settings.load(environ={}, cwd=tmp_path)
    (tmp_path / "features.yaml").write_text("- a list\n")
    (tmp_path / "driftloop.yaml").unlink()
    with pytest.raises(ConfigError, match="must hold a mapping"):
        Settings.load(environ={}, cwd=tmp_path)
