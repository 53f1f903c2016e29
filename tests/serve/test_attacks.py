"""Attacks on a real server on loopback (issue 15), one test per way in.

Each test plays the attacker against what driftloop really stores and serves: a bundle that
names code to import, names that try to become paths.
"""

from __future__ import annotations

import dataclasses
import textwrap

import httpx
import pandas as pd
import pytest

from driftloop.config import Settings
from driftloop.errors import UsageError
from driftloop.registry import Registry
from driftloop.serve.app import create_app
from driftloop.serve.server import BackgroundServer
from quick_model import quick_version

EVIL = textwrap.dedent("""
    import pathlib, os
    pathlib.Path(os.environ["DRIFTLOOP_TEST_MARKER"]).write_text("imported")  # the payload
    from driftloop.models.architectures import make_mlp
    def make(inputs, n_outputs):
        return make_mlp(inputs, n_outputs)
""")


@pytest.fixture
def frame() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True).frame.rename(columns={"target": "label"})
    return data.iloc[:, list(range(5)) + [data.shape[1] - 1]]


def _register_with_factory(settings: Settings, frame: pd.DataFrame, factory: str) -> None:
    """A version whose bundle names ``factory`` — what anyone who can write the store (or
    register a model) can do."""
    _, weights, bundle = quick_version(frame, steps=5)
    with Registry.open(settings) as registry:
        registry.register("victim", run_id=None, bundle=dataclasses.replace(bundle, model=factory),
                          weights=weights, metrics={}, actor="attacker", reason="plant a factory")
        registry.promote("victim", 1, to="production", force=True, reason="test")


def _ready(settings: Settings) -> httpx.Response:
    registry = Registry.open(settings)
    server = BackgroundServer(create_app(registry, ["victim"], settings.serve)).start()
    try:
        for _ in range(100):
            answer = httpx.get(server.url + "/v2/health/ready")
            if answer.status_code == 200 or "errors" in answer.json():
                return answer
            import time

            time.sleep(0.05)
        return answer
    finally:
        server.stop()
        registry.close()


def test_a_stored_version_naming_an_unlisted_factory_is_refused_before_its_module_runs(
        tmp_path, monkeypatch, frame):
    (tmp_path / "evil_factory.py").write_text(EVIL)
    marker = tmp_path / "payload-ran"
    monkeypatch.setenv("DRIFTLOOP_TEST_MARKER", str(marker))
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = Settings.load(overrides={"home": str(tmp_path / "home")}, environ={}, cwd=tmp_path)
    _register_with_factory(settings, frame, "evil_factory:make")

    answer = _ready(settings)

    assert answer.status_code == 503
    error = answer.json()["errors"]["victim"]
    assert "evil_factory:make" in error and "security.model_factories" in error
    assert not marker.exists()  # the module was never imported
    with Registry.open(settings) as registry, pytest.raises(UsageError, match="not allowed"):
        registry.load("victim", 1)
    assert not marker.exists()


def test_a_factory_the_operator_listed_loads_and_serves(tmp_path, monkeypatch, frame):
    (tmp_path / "evil_factory.py").write_text(EVIL)
    marker = tmp_path / "payload-ran"
    monkeypatch.setenv("DRIFTLOOP_TEST_MARKER", str(marker))
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = Settings.load(overrides={"home": str(tmp_path / "home"),
                                        "security": {"model_factories": ["evil_factory"]}},
                             environ={}, cwd=tmp_path)
    _register_with_factory(settings, frame, "evil_factory:make")

    answer = _ready(settings)

    assert answer.status_code == 200, answer.text
    assert answer.json()["models"] == {"victim": 1}
    assert marker.exists()  # allowed: the operator's choice


@pytest.mark.parametrize("name", ["../etc", "a/b", "x\ny", "..", ".hidden", "a..b", "", "é"])
def test_path_like_model_names_are_refused_before_anything_is_stored(tmp_path, frame, name):
    settings = Settings.load(overrides={"home": str(tmp_path / "home")}, environ={}, cwd=tmp_path)
    _, weights, bundle = quick_version(frame, steps=1)
    with Registry.open(settings) as registry:
        with pytest.raises(UsageError, match="model name"):
            registry.register(name, run_id=None, bundle=bundle, weights=weights, metrics={},
                              actor="attacker", reason="path in a name")
        assert registry.versions() == []
