import pytest

from driftloop.config import Settings
from driftloop.errors import ConfigError


def test_defaults_live_in_home(tmp_path):
    s = Settings.load(environ={}, cwd=tmp_path)
    assert s.home == ".driftloop"
    assert s.store_url == "sqlite:///.driftloop/driftloop.db"
    assert s.artifacts_url == ".driftloop/artifacts"


def test_yaml_then_env_then_overrides(tmp_path):
    (tmp_path / "driftloop.yaml").write_text("home: /y\ntrain:\n  epochs: 3\n  workers: 4\n")
    s = Settings.load(environ={}, cwd=tmp_path)
    assert (s.home, s.train.epochs, s.train.workers) == ("/y", 3, 4)
    env = {"DRIFTLOOP_TRAIN__EPOCHS": "5", "DRIFTLOOP_STORE_URL": "sqlite:///x.db"}
    s = Settings.load(environ=env, cwd=tmp_path)
    assert (s.train.epochs, s.train.workers, s.store_url) == (5, 4, "sqlite:///x.db")
    s = Settings.load(overrides={"train": {"epochs": 9}}, environ=env, cwd=tmp_path)
    assert (s.train.epochs, s.train.workers) == (9, 4)


def test_bad_values_name_the_setting(tmp_path):
    with pytest.raises(ConfigError, match="train.workers"):
        Settings.load(environ={"DRIFTLOOP_TRAIN__WORKERS": "0"}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="train.nope"):
        Settings.load(overrides={"train": {"nope": 1}}, environ={}, cwd=tmp_path)
    (tmp_path / "driftloop.yaml").write_text("home: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Settings.load(environ={}, cwd=tmp_path)
