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
        tmp_path, monkeypatch, frame, caplog):
    (tmp_path / "evil_factory.py").write_text(EVIL)
    marker = tmp_path / "payload-ran"
    monkeypatch.setenv("DRIFTLOOP_TEST_MARKER", str(marker))
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = Settings.load(overrides={"home": str(tmp_path / "home")}, environ={}, cwd=tmp_path)
    _register_with_factory(settings, frame, "evil_factory:make")

    answer = _ready(settings)

    assert answer.status_code == 503
    error = answer.json()["errors"]["victim"]
    assert error.startswith("cannot load victim v1 (error ") and "evil" not in error
    error_id = error.split("(error ")[1].split(";")[0]
    logged = [r.getMessage() for r in caplog.records if error_id in r.getMessage()]
    assert len(logged) == 1 and "evil_factory:make" in logged[0]  # the detail: in the log
    assert "security.model_factories" in logged[0]
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


def test_store_errors_reach_the_log_not_the_client(tmp_path, frame, caplog):
    """The store breaks under a running server (its tables dropped by someone else): the
    clients get an error id, never the database's words."""
    import sqlite3

    settings = Settings.load(overrides={"home": str(tmp_path / "home"),
                                        "serve": {"poll_s": 0.1, "key_cache_s": 0.0}},
                             environ={}, cwd=tmp_path)
    _, weights, bundle = quick_version(frame, steps=5)
    registry = Registry.open(settings)
    registry.register("m", run_id=None, bundle=bundle, weights=weights, metrics={},
                      actor="test", reason="test")
    registry.promote("m", 1, to="production", force=True, reason="test")
    row = {k: float(v) for k, v in frame.drop(columns="label").iloc[0].items()}
    server = BackgroundServer(create_app(registry, ["m"], settings.serve)).start().wait_ready()
    try:
        rid = httpx.post(server.url + "/v1/models/m/predict",
                         json={"instances": [row]}).json()["request_id"]
        with sqlite3.connect(settings.store_url.removeprefix("sqlite:///")) as conn:
            for table in ("feedback", "prediction_log", "alias_moves"):
                conn.execute(f"DROP TABLE {table}")
        answers = [httpx.post(server.url + "/v1/feedback",
                              json={"request_id": "unknown-id", "label": 1})]
        import time

        time.sleep(0.5)  # a few alias polls fail
        answers.append(httpx.get(server.url + "/v2/health/ready"))
        answers.append(httpx.post(server.url + "/v1/models/m/predict", json={"instances": [row]}))
        answers.append(httpx.post(server.url + "/v1/feedback", json={"request_id": rid,
                                                                    "label": 1}))
    finally:
        server.stop()
        registry.close()
    assert answers[0].status_code == 503
    for answer in answers:
        text = answer.text.lower()
        assert "no such table" not in text and "sqlite" not in text and "select" not in text
    assert "error " in answers[0].json()["error"]["message"]
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "no such table" in logged  # the operator still learns what broke


def test_logged_pii_cannot_be_recovered_by_trying_every_value(served_model):
    """The attacker holds the prediction log (a database dump) and the list of every possible
    e-mail: an unkeyed hash would give each one back; the store's secret key does not."""
    import hashlib
    import os
    import time

    from driftloop.data.hashing import hash_value
    from driftloop.store.secrets import PII_KEY_OBJECT, pii_key

    from .conftest import MODEL, instances, start_server

    rows = served_model.frame.iloc[200:210]
    server = start_server(served_model)
    try:
        answer = httpx.post(f"{server.url}/v1/models/{MODEL}/predict",
                            json={"instances": instances(rows)})
        ids = set(answer.json()["request_ids"])
        deadline = time.monotonic() + 10
        logged: list = []
        while len(logged) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.05)
            logged = [p for p in served_model.registry.store.list_predictions(MODEL, limit=5000)
                      if p.request_id in ids]
    finally:
        server.stop()
    dumped = {p.features["contact"] for p in logged}
    candidates = [f"user{i}@example.com" for i in range(100)]
    assert not dumped & {hashlib.sha256(c.encode()).hexdigest() for c in candidates}
    assert not dumped & set(candidates)
    key = pii_key("", served_model.registry.artifacts)
    assert dumped <= {hash_value(c, key) for c in candidates}  # still joins under the key
    where = served_model.registry.artifacts.named_url(PII_KEY_OBJECT)
    assert oct(os.stat(where).st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("insecure,expected", [(False, 401), (True, 200)])
def test_a_server_built_for_an_exposed_address_is_closed_without_keys(tmp_path, frame, insecure,
                                                                      expected):
    """Open by default only on loopback: the app made for 0.0.0.0 refuses predictions while no
    key exists (the CLI refuses to start it at all) unless --insecure."""
    settings = Settings.load(overrides={"home": str(tmp_path / "home"),
                                        "serve": {"host": "0.0.0.0", "insecure": insecure}},
                             environ={}, cwd=tmp_path)
    _, weights, bundle = quick_version(frame, steps=5)
    with Registry.open(settings) as registry:
        registry.register("m", run_id=None, bundle=bundle, weights=weights, metrics={},
                          actor="test", reason="test")
        registry.promote("m", 1, to="production", force=True, reason="test")
        row = {k: float(v) for k, v in frame.drop(columns="label").iloc[0].items()}
        app = create_app(registry, ["m"], settings.serve)
        with BackgroundServer(app) as server:  # reached on loopback, built for 0.0.0.0
            server.wait_ready()
            answer = httpx.post(server.url + "/v1/models/m/predict", json={"instances": [row]})
    assert answer.status_code == expected, answer.text


# -- feedback cannot poison retraining (issue 15) --------------------------------------------

@pytest.fixture
def keyed(tmp_path, frame):
    """A served quick model in a store of its own, with keys for two labellers and a client."""
    from driftloop.serve.auth import create_key

    settings = Settings.load(overrides={"home": str(tmp_path / "home"),
                                        "serve": {"key_cache_s": 0.0, "log_flush_ms": 50.0}},
                             environ={}, cwd=tmp_path)
    _, weights, bundle = quick_version(frame, steps=5)
    registry = Registry.open(settings)
    registry.register("m", run_id=None, bundle=bundle, weights=weights, metrics={},
                      actor="test", reason="test")
    registry.promote("m", 1, to="production", force=True, reason="test")
    keys = {name: create_key(registry.store, registry.audit, name, role, actor="test")
            for name, role in [("client", "predict"), ("other-client", "predict"),
                               ("labeller-a", "feedback"), ("labeller-b", "feedback")]}
    server = BackgroundServer(create_app(registry, ["m"], settings.serve)).start().wait_ready()
    rows = [{k: float(v) for k, v in r.items()}
            for r in frame.drop(columns="label").iloc[:4].to_dict("records")]
    yield server.url, registry, {n: k.secret for n, k in keys.items()}, rows
    server.stop()
    registry.close()


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_forged_feedback_for_a_request_no_one_answered_is_a_404(keyed):
    url, registry, keys, rows = keyed
    rid = httpx.post(url + "/v1/models/m/predict", json={"instances": rows[:1]},
                     headers=_as(keys["client"])).json()["request_id"]
    forged = httpx.post(url + "/v1/feedback", headers=_as(keys["labeller-a"]),
                        json=[{"request_id": rid, "label": 1},
                              {"request_id": "f" * 32, "label": 1}])
    assert forged.status_code == 404 and forged.json()["error"]["code"] == "unknown_request"
    assert registry.store.feedback_of([rid, "f" * 32]) == {}  # all or nothing


def test_a_predict_key_cannot_label_what_it_predicted(keyed):
    url, registry, keys, rows = keyed
    rid = httpx.post(url + "/v1/models/m/predict", json={"instances": rows[:1]},
                     headers=_as(keys["client"])).json()["request_id"]
    answer = httpx.post(url + "/v1/feedback", json={"request_id": rid, "label": 1},
                        headers=_as(keys["client"]))
    assert answer.status_code == 403
    assert registry.store.feedback_of([rid]) == {}


def test_v2_clients_choosing_one_id_never_collide(keyed):
    url, registry, keys, rows = keyed
    inputs = [{"name": k, "shape": [1], "datatype": "FP64", "data": [v]}
              for k, v in rows[0].items()]
    answers = [httpx.post(url + "/v2/models/m/infer", json={"id": "order-1", "inputs": inputs},
                          headers=_as(keys[name])).json()
               for name in ("client", "other-client")]
    assert [a["id"] for a in answers] == ["order-1", "order-1"]  # echoed, as V2 says
    server_ids = [a["parameters"]["request_id"] for a in answers]
    assert len(set(server_ids)) == 2 and "order-1" not in server_ids
    import time

    deadline = time.monotonic() + 10
    while len(registry.store.models_of_requests(server_ids)) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    from sqlalchemy import select

    from driftloop.store.tables import PredictionLogEntry

    with registry.store.session(write=False) as session:
        refs = dict(session.execute(select(PredictionLogEntry.request_id,
                                           PredictionLogEntry.client_ref)
                                    .where(PredictionLogEntry.request_id.in_(server_ids))).all())
    prefixes = [keys[n].split("_")[1] for n in ("client", "other-client")]
    assert [refs[i] for i in server_ids] == [f"{p}:order-1" for p in prefixes]
    labelled = httpx.post(url + "/v1/feedback", headers=_as(keys["labeller-a"]),
                          json={"request_id": server_ids[0], "label": 1})
    assert labelled.status_code == 202
    assert registry.store.feedback_of(server_ids) == {
        server_ids[0]: [(1, keys["labeller-a"].split("_")[1])]}  # the other one untouched


def test_a_conflicting_label_is_counted_and_held_out_not_a_silent_overwrite(keyed):
    url, registry, keys, rows = keyed
    rids = httpx.post(url + "/v1/models/m/predict", json={"instances": rows[:2]},
                      headers=_as(keys["client"])).json()["request_ids"]
    first = httpx.post(url + "/v1/feedback", headers=_as(keys["labeller-a"]),
                       json=[{"request_id": r, "label": 1} for r in rids])
    assert first.json() == {"recorded": 2, "conflicts": []}
    again = httpx.post(url + "/v1/feedback", headers=_as(keys["labeller-a"]),
                       json={"request_id": rids[1], "label": 1})  # the same label: fine
    assert again.json()["conflicts"] == []
    flipped = httpx.post(url + "/v1/feedback", headers=_as(keys["labeller-b"]),
                         json={"request_id": rids[0], "label": 0})
    assert flipped.status_code == 202 and flipped.json()["conflicts"] == [rids[0]]
    assert registry.store.labels_for(rids) == {rids[1]: 1}  # held out, not overwritten
    sources = {label: source for label, source in registry.store.feedback_of([rids[0]])[rids[0]]}
    assert sources == {1: keys["labeller-a"].split("_")[1], 0: keys["labeller-b"].split("_")[1]}
    import time

    deadline = time.monotonic() + 10
    while {r.label for r in registry.store.labelled_rows("m")} != {1}:
        assert time.monotonic() < deadline  # the log row of rids[1] arrives; rids[0] never
        time.sleep(0.05)
    metrics = httpx.get(url + "/metrics").text
    prefix_b = keys["labeller-b"].split("_")[1]
    assert f'driftloop_feedback_conflicts_total{{source="{prefix_b}"}} 1.0' in metrics
