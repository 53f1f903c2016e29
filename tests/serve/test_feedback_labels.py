"""Feedback labels over real HTTP: one stored form per class, unknown labels refused with 422.

The module serves its own store (a fresh home holding the session's trained ``cancer`` v1 and
its reference profile, and ``cancer_value``, a regression head on the same network), so its
prediction log and monitored windows are its own.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from safetensors.torch import save

from driftloop.config import Settings
from driftloop.loop.dataset import labelled_frame
from driftloop.monitor.reference import load_reference, store_reference
from driftloop.monitor.windows import monitor
from driftloop.registry import Registry
from driftloop.serve.app import create_app
from driftloop.serve.server import BackgroundServer
from driftloop.store import utcnow
from pg_server import store_overrides

from .conftest import MODEL, Served, instances

pytestmark = pytest.mark.slow
VALUE = "cancer_value"  # a regression model


@dataclass
class Own:
    settings: Settings
    registry: Registry
    url: str  # a server of both models, its log written every 50 ms
    served: Served


def _server(own_settings: Settings, registry: Registry, **serve: Any) -> BackgroundServer:
    cfg = own_settings.serve.model_copy(update={"log_flush_ms": 50.0, **serve})
    server = BackgroundServer(create_app(registry, [MODEL, VALUE], cfg)).start()
    try:
        return server.wait_ready()
    except RuntimeError:
        server.stop()
        raise


@pytest.fixture(scope="module")
def own(served_model: Served, tmp_path_factory: pytest.TempPathFactory,
        request: pytest.FixtureRequest) -> Iterator[Own]:
    home = tmp_path_factory.mktemp("labels-home")
    settings = Settings.load(overrides={"home": str(home), **store_overrides(request)},
                             environ={}, cwd=home)
    registry = Registry.open(settings)
    source = served_model.registry
    record = source.get(MODEL, 1)
    bundle = source.bundle(record)
    weights = source.artifacts.get_bytes(record.weights_sha256)
    v1 = registry.register(MODEL, run_id=None, bundle=bundle, weights=weights, metrics={},
                           actor="test", reason="the session's cancer v1")
    fingerprint = "f" * 64
    registry.store.upsert_dataset(fingerprint, "breast cancer", len(served_model.frame), None)
    store_reference(registry, v1, load_reference(source, MODEL, 1), dataset_id=fingerprint,
                    run_id=None)
    # a regression head: the first output of the classifier's last layer
    state = source.load(MODEL, 1).module.state_dict()  # in layer order
    for key in ([k for k in state if k.endswith("weight")][-1],
                [k for k in state if k.endswith("bias")][-1]):
        state[key] = state[key][:1].clone()
    regression = dataclasses.replace(
        bundle, task="regression", n_outputs=1, classes=[], calibration=None,
        target_encoder={"task": "regression", "classes": [], "mean": 10.0, "std": 2.0})
    registry.register(VALUE, run_id=None, bundle=regression, weights=save(state), metrics={},
                      actor="test", reason="a regression model for feedback tests")
    for name in (MODEL, VALUE):
        registry.promote(name, 1, to="production", force=True, reason="test bootstrap")
    server = _server(settings, registry)
    yield Own(settings, registry, server.url, served_model)
    server.stop()
    registry.close()


def _predict(url: str, own: Own, rows: slice, model: str = MODEL) -> list[str]:
    frame = own.served.frame.iloc[rows]
    r = httpx.post(f"{url}/v1/models/{model}/predict", json={"instances": instances(frame)})
    assert r.status_code == 200, r.text
    body = r.json()
    return body.get("request_ids", [body["request_id"]])


def _feedback(url: str, items: list[dict[str, Any]]) -> httpx.Response:
    return httpx.post(url + "/v1/feedback", json=items)


def _logged(own: Own, ids: list[str]) -> None:
    """Wait until the log holds every id."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if set(ids) <= set(own.registry.store.models_of_requests(ids)):
            return
        time.sleep(0.05)
    raise AssertionError("the prediction log did not write the rows in 10 s")


def test_1_and_1_0_and_text_1_are_stored_as_one_class_with_identical_realised_metrics(own):
    store = own.registry.store
    first = _predict(own.url, own, slice(0, 1))  # anything logged before is monitored away
    _logged(own, first)
    monitor(MODEL, window="1s", settings=own.settings, registry=own.registry,
            now=utcnow() + timedelta(days=1))
    n, truth = 40, [int(y) for y in own.served.target.iloc[:40]]
    forms = {"int": int, "float": float, "text": str}
    ids = {form: _predict(own.url, own, slice(0, n)) for form in forms}
    for form, cast in forms.items():
        r = _feedback(own.url, [{"request_id": rid, "label": cast(y)}
                                for rid, y in zip(ids[form], truth, strict=True)])
        assert r.status_code == 202 and r.json() == {"recorded": n, "conflicts": []}, r.text
    for form in forms:
        stored = store.labels_for(ids[form])
        assert [stored[rid] for rid in ids[form]] == truth
        assert {type(v) for v in stored.values()} == {int}
    _logged(own, [rid for form in forms for rid in ids[form]])
    result = monitor(MODEL, window=str(n), settings=own.settings, registry=own.registry)
    realised = [w.realised for w in result.windows]
    assert len(realised) == 3 and all(r is not None for r in realised)
    values = [{k: (v["value"] if isinstance(v, dict) else v) for k, v in r.items()}
              for r in realised]
    assert values[0]["labelled"] == n and values[0].get("unknown_labels", 0) == 0
    assert values[0] == values[1] == values[2]


def test_an_unknown_label_is_refused_naming_the_classes_and_nothing_is_stored(own):
    ids = _predict(own.url, own, slice(50, 53))
    for label in (2, 0.5, "yes", -1):
        r = _feedback(own.url, [{"request_id": ids[0], "label": 1},
                                {"request_id": ids[1], "label": label},
                                {"request_id": ids[2], "label": 0}])
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "unknown_label" and error["fields"] == ["label"]
        assert "feedback item 1" in error["message"]
        assert "is not one of the model's classes: 0, 1" in error["message"]
    assert own.registry.store.labels_for(ids) == {}  # all or nothing: item 0 was not stored


def test_a_regression_model_refuses_a_label_that_is_not_a_finite_number(own):
    rid = _predict(own.url, own, slice(60, 61), model=VALUE)[0]
    for label in ("high", "nan", ""):
        r = _feedback(own.url, [{"request_id": rid, "label": label}])
        assert r.status_code == 422, r.text
        assert "is not a finite number" in r.json()["error"]["message"]
    assert own.registry.store.labels_for([rid]) == {}
    assert _feedback(own.url, [{"request_id": rid, "label": " 12.5"}]).status_code == 202
    assert own.registry.store.labels_for([rid]) == {rid: 12.5}


def test_feedback_before_the_log_is_written_and_on_another_replica_is_checked_too(own):
    answered = _predict(own.url, own, slice(70, 72))  # by the module's server, then logged
    _logged(own, answered)
    replica = _server(own.settings, own.registry, log_flush_ms=600_000.0)  # writes at stop
    try:
        fresh = _predict(replica.url, own, slice(72, 74))
        assert own.registry.store.models_of_requests(fresh) == {}  # not in the log yet
        for ids in (fresh, answered):  # known from memory; known from the log only
            r = _feedback(replica.url, [{"request_id": ids[0], "label": "1.0"},
                                        {"request_id": ids[1], "label": 3}])
            assert r.status_code == 422 and "classes: 0, 1" in r.text, r.text
            assert own.registry.store.labels_for(ids) == {}
            r = _feedback(replica.url, [{"request_id": ids[0], "label": "1.0"},
                                        {"request_id": ids[1], "label": 0.0}])
            assert r.status_code == 202, r.text
            assert own.registry.store.labels_for(ids) == {ids[0]: 1, ids[1]: 0}
        # an id no prediction returned is refused with its name, and nothing is stored
        r = _feedback(replica.url, [{"request_id": fresh[0], "label": 1},
                                    {"request_id": "answered-nowhere", "label": "maybe"}])
        assert r.status_code == 404 and "'answered-nowhere'" in r.text, r.text
        assert r.json()["error"]["code"] == "unknown_request"
        assert own.registry.store.feedback_of(["answered-nowhere"]) == {}
    finally:
        replica.stop()


def test_the_loop_reads_old_and_new_feedback_as_the_champions_classes(own):
    store = own.registry.store
    ids = _predict(own.url, own, slice(80, 84))
    _logged(own, ids)
    assert _feedback(own.url, [{"request_id": ids[0], "label": "1"}]).status_code == 202
    # rows stored before labels were coerced, as sent
    store.add_feedback([(ids[1], "1"), (ids[2], " 0.0"), (ids[3], "7")])
    log_ids = {p.request_id: p.id for p in store.list_predictions(MODEL, limit=10)}
    champion = own.registry.bundle(own.registry.get(MODEL, 1))
    frame = labelled_frame(store, MODEL, target="target", bundle=champion)
    labels = dict(zip(frame["_log_id"], frame["target"], strict=True))
    assert [labels.get(log_ids[rid]) for rid in ids] == [1, 1, 0, None]
    assert frame.attrs["unknown_labels"] >= 1  # "7" is none of the classes: left out
    assert {type(v) for v in frame["target"].tolist()} == {int}


def test_the_spec_documents_the_refused_label(own):
    answers = httpx.get(own.url + "/openapi.json").json()["paths"]["/v1/feedback"]["post"][
        "responses"]
    assert "unknown_label" in answers["422"]["description"]
    assert answers["422"]["content"]["application/json"]["schema"]["required"] == ["error"]
