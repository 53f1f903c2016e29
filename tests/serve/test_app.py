"""The server over real HTTP on loopback: answers, bad input, batching, overload, the log."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from driftloop.data.hashing import hash_value
from driftloop.store.secrets import pii_key

from .conftest import MODEL, Served, instances, start_server

pytestmark = pytest.mark.slow
PREDICT = f"/v1/models/{MODEL}/predict"


@pytest.fixture(scope="module")
def server(served_model: Served) -> Iterator[str]:
    srv = start_server(served_model, max_batch_size=16, max_latency_ms=20.0)
    yield srv.url
    srv.stop()


def test_predictions_equal_the_model_called_directly(server: str, served_model: Served):
    rows = served_model.frame.iloc[:40]
    r = httpx.post(server + PREDICT, json={"instances": instances(rows)})
    assert r.status_code == 200, r.text
    body = r.json()
    model = served_model.registry.load(MODEL, 1)
    assert body["model"] == MODEL and body["version"] == 1 and len(body["request_ids"]) == 40
    np.testing.assert_allclose(body["probabilities"], model.predict_raw(rows), rtol=1e-5,
                               atol=1e-7)
    assert body["predictions"] == model.predict(rows).tolist()


def test_v2_infer_speaks_the_kserve_shape(server: str, served_model: Served):
    rows = served_model.frame.iloc[:3]
    inputs = [{"name": c, "shape": [3], "datatype": "BYTES" if rows[c].dtype == object
               else "FP64", "data": [v.item() if hasattr(v, "item") else v for v in rows[c]]}
              for c in rows.columns]
    r = httpx.post(server + f"/v2/models/{MODEL}/infer", json={"id": "abc", "inputs": inputs})
    assert r.status_code == 200, r.text
    out = {o["name"]: o for o in r.json()["outputs"]}
    assert r.json()["model_version"] == "1" and r.json()["id"] == "abc"
    assert out["probabilities"]["shape"] == [3, 2]
    expected = served_model.registry.load(MODEL, 1).predict_raw(rows)
    np.testing.assert_allclose(np.reshape(out["probabilities"]["data"], (3, 2)), expected,
                               rtol=1e-5, atol=1e-7)


def test_health_metrics_and_docs(server: str):
    assert httpx.get(server + "/v2/health/live").json() == {"live": True}
    ready = httpx.get(server + "/v2/health/ready")
    assert ready.status_code == 200 and ready.json()["models"] == {MODEL: 1}
    text = httpx.get(server + "/metrics").text
    assert 'driftloop_model_version{model="cancer"} 1.0' in text
    assert httpx.get(server + "/docs").status_code == 200
    paths = httpx.get(server + "/openapi.json").json()["paths"]
    assert {"/v1/models/{name}/predict", "/v2/models/{name}/infer", "/v1/feedback"} <= set(paths)


def _one(served_model: Served) -> dict:
    return instances(served_model.frame.iloc[:1])[0]


@pytest.mark.parametrize("case, status, code, field", [
    ("missing", 422, "missing_feature", "band"),
    ("extra", 422, "extra_feature", "shoe size"),
    ("mistyped", 422, "wrong_type", "mean radius"),
    ("nan", 422, "not_finite", "mean area"),
    ("infinite", 422, "not_finite", "mean area"),
    ("too_many", 413, "too_many_instances", "instances"),
    ("not_a_list", 422, "bad_shape", "instances"),
    ("no_instances_key", 422, "bad_shape", "instances"),
    ("empty", 422, "empty", "instances"),
])
def test_each_bad_input_gets_its_4xx_naming_the_field(server, served_model, case, status, code,
                                                       field):
    good = _one(served_model)
    body: object
    raw = None
    if case == "missing":
        body = {"instances": [{k: v for k, v in good.items() if k != "band"}]}
    elif case == "extra":
        body = {"instances": [{**good, "shoe size": 42}]}
    elif case == "mistyped":
        body = {"instances": [good, {**good, "mean radius": "big"}]}
    elif case in ("nan", "infinite"):
        value = math.nan if case == "nan" else math.inf
        raw = json.dumps({"instances": [{**good, "mean area": value}]})  # NaN / Infinity
        body = None
    elif case == "too_many":
        body = {"instances": [good] * 1001}
    elif case == "not_a_list":
        body = {"instances": good}
    elif case == "no_instances_key":
        body = {"rows": [good]}
    else:
        body = {"instances": []}
    r = (httpx.post(server + PREDICT, content=raw, headers={"content-type": "application/json"})
         if raw is not None else httpx.post(server + PREDICT, json=body))
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and field in error["fields"] and field in error["message"]


def test_malformed_oversized_and_unknown_model(server, served_model):
    r = httpx.post(server + PREDICT, content=b"{not json",
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_json"
    r = httpx.post(server + PREDICT, content=b"x" * 5_000_000)
    assert r.status_code == 413 and "limit" in r.json()["error"]["message"]
    r = httpx.post(server + "/v1/models/nope/predict", json={"instances": []})
    assert r.status_code == 404 and "cancer" in r.json()["error"]["message"]


def test_unknown_category_is_bucketed_and_counted_not_refused(server, served_model):
    r = httpx.post(server + PREDICT,
                   json={"instances": [{**_one(served_model), "band": "ultra"}]})
    assert r.status_code == 200
    assert 'driftloop_unknown_categories_total{feature="band",model="cancer"}' in httpx.get(
        server + "/metrics").text


def test_concurrent_load_forms_multi_sample_batches(server, served_model):
    rows = instances(served_model.frame.iloc[:64])

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=server, timeout=30) as client:
            replies = await asyncio.gather(
                *(client.post(PREDICT, json={"instances": [row]}) for row in rows))
        return [r.status_code for r in replies]

    assert asyncio.run(burst()) == [200] * 64
    metrics = httpx.get(server + "/metrics").text
    count = _sample(metrics, 'driftloop_batch_size_count{model="cancer"}')
    total = _sample(metrics, 'driftloop_batch_size_sum{model="cancer"}')
    assert total / count > 2  # batches of many samples, not one per request
    assert _sample(metrics, 'driftloop_batch_size_bucket{le="1.0",model="cancer"}') < count


def test_overload_answers_503_with_retry_after_at_once(served_model):
    # a queue of 1 sample held for 1 s: the second request cannot fit and is refused at once
    srv = start_server(served_model, max_queue=1, max_latency_ms=1000.0, max_batch_size=8)
    try:
        row = instances(served_model.frame.iloc[:1])

        async def two() -> tuple[httpx.Response, httpx.Response, float]:
            async with httpx.AsyncClient(base_url=srv.url, timeout=30) as client, \
                    httpx.AsyncClient(base_url=srv.url, timeout=30) as other:
                first = asyncio.create_task(client.post(PREDICT, json={"instances": row}))
                await asyncio.sleep(0.1)
                started = time.perf_counter()
                second = await other.post(PREDICT, json={"instances": row})
                took = time.perf_counter() - started
                return await first, second, took

        first, second, took = asyncio.run(two())
        assert first.status_code == 200
        assert second.status_code == 503 and second.headers["retry-after"] == "1"
        assert second.json()["error"]["code"] == "overloaded" and took < 0.5, took
        assert "driftloop_rejected_requests_total{model=\"cancer\"} 1.0" in httpx.get(
            srv.url + "/metrics").text
    finally:
        srv.stop()


def test_prediction_log_hashes_pii_and_feedback_is_recorded(server, served_model):
    rows = served_model.frame.iloc[100:103]
    r = httpx.post(server + PREDICT, json={"instances": instances(rows)})
    ids = r.json()["request_ids"]
    deadline = time.monotonic() + 10
    logged: dict = {}
    while len(logged) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
        logged = {p.request_id: p for p in served_model.registry.store.list_predictions(MODEL)
                  if p.request_id in ids}
    assert len(logged) == 3
    first = logged[ids[0]]
    key = pii_key("", served_model.registry.artifacts)  # the store's own, never unkeyed
    assert first.features["contact"] == hash_value(rows["contact"].iloc[0], key)
    assert first.features["contact"] != hashlib.sha256(
        rows["contact"].iloc[0].encode()).hexdigest()
    assert "@" not in json.dumps([p.features for p in logged.values()])
    assert first.features["band"] == rows["band"].iloc[0]  # not PII: kept as sent
    assert first.output["predictions"] == r.json()["predictions"][0]
    f = httpx.post(server + "/v1/feedback", json=[{"request_id": i, "label": 1} for i in ids])
    assert f.status_code == 202 and f.json() == {"recorded": 3, "conflicts": []}
    assert {x.request_id for x in served_model.registry.store.list_feedback()} >= set(ids)
    bad = httpx.post(server + "/v1/feedback", json={"request_id": ids[0]})
    assert bad.status_code == 422 and "label" in bad.json()["error"]["fields"]


def _sample(text: str, name: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(name + " "))
    return float(line.split()[-1])
