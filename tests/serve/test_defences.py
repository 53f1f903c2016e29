"""Serving defences against extraction and inversion, against a real server on loopback:
per-key rate limits and row budgets answer 429 with Retry-After (audited once per window, the
other keys unaffected), and output policies change the answer's shape as documented while the
prediction log keeps the full output."""

from __future__ import annotations

import time

import httpx
import pytest

from driftloop.config import OutputPolicy, Settings
from driftloop.serve.auth import create_key

from .conftest import MODEL, instances, own_copy, start_server

pytestmark = pytest.mark.slow


def _predict(url: str, key: str | None, rows: list, **extra) -> httpx.Response:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return httpx.post(f"{url}/v1/models/{MODEL}/predict", json={"instances": rows, **extra},
                      headers=headers, timeout=30)


def test_a_row_budget_and_a_rate_limit_answer_429_per_key_and_are_audited_once(
        served_model, tmp_path, request):
    served_model = own_copy(served_model, tmp_path, request, "keys of the budget test")
    registry = served_model.registry
    a = create_key(registry.store, registry.audit, "scraper", "predict", actor="test").secret
    b = create_key(registry.store, registry.audit, "shop", "predict", actor="test").secret
    rows = instances(served_model.frame.iloc[:4])
    server = start_server(served_model, row_budget="10/hour", rate_limit="100/minute")
    try:
        assert _predict(server.url, a, rows).status_code == 200  # 4 rows
        assert _predict(server.url, a, rows).status_code == 200  # 8 rows
        over = [_predict(server.url, a, rows) for _ in range(3)]  # 12 > 10: refused
        assert all(r.status_code == 429 for r in over), [r.text for r in over]
        body = over[0].json()["error"]
        assert body["code"] == "rate_limited" and "10 per 1 hour" in body["message"]
        assert "serve.row_budget" in body["message"]
        assert 1 <= int(over[0].headers["Retry-After"]) <= 3600
        assert _predict(server.url, a, rows[:2]).status_code == 200  # 10: exactly the budget
        assert _predict(server.url, b, rows).status_code == 200  # another key: its own budget
        metrics = httpx.get(f"{server.url}/metrics").text
        assert f'driftloop_rate_limited_total{{kind="rows",model="{MODEL}"}} 3.0' in metrics
    finally:
        server.stop()
    entries = [e for e in registry.audit.entries(subject=f"model:{MODEL}")
               if e.action == "query_budget_exceeded"]
    assert len(entries) == 1 and entries[0].actor == f"api_key:{a.split('_')[1]}"
    assert entries[0].details == {"kind": "rows", "limit": "10 per 1 hour"}
    server = start_server(served_model, rate_limit="3/second")
    try:
        answers = [_predict(server.url, b, rows[:1]).status_code for _ in range(6)]
        assert answers[:3] == [200, 200, 200] and 429 in answers[3:]
        time.sleep(2.1)  # the window has slid past: answered again
        assert _predict(server.url, b, rows[:1]).status_code == 200
    finally:
        server.stop()


@pytest.mark.parametrize(("policy", "keys"), [
    (OutputPolicy(), {"predictions", "probabilities"}),
    (OutputPolicy(mode="rounded", decimals=1), {"predictions", "probabilities"}),
    (OutputPolicy(mode="top_k", k=1, decimals=3), {"predictions", "top_k"}),
    (OutputPolicy(mode="label"), {"predictions"}),
])
def test_output_policies_change_the_answer_and_the_log_keeps_it_all(served_model, policy, keys):
    rows = instances(served_model.frame.iloc[:3])
    server = start_server(served_model, output_by_model={MODEL: policy})
    try:
        answer = _predict(server.url, None, rows)
        v2 = httpx.post(f"{server.url}/v2/models/{MODEL}/infer", timeout=30, json={
            "inputs": [{"name": k, "shape": [3], "datatype": "BYTES" if isinstance(v, str)
                        else "FP64", "data": [r[k] for r in rows]}
                       for k, v in rows[0].items()]})
    finally:
        server.stop()
    assert answer.status_code == 200 and v2.status_code == 200, (answer.text, v2.text)
    out = answer.json()
    assert {k for k in out if k not in ("model", "version", "request_id", "request_ids")} == keys
    names = {o["name"] for o in v2.json()["outputs"]}
    if policy.mode == "rounded":
        assert all(p == round(p, 1) for row in out["probabilities"] for p in row)
        assert "probabilities" in names
    if policy.mode == "top_k":
        assert all(len(row) == 1 and row[0]["class"] == pred
                   for row, pred in zip(out["top_k"], out["predictions"], strict=True))
        assert {"top_k_classes", "top_k_probabilities"} <= names and "probabilities" not in names
    if policy.mode == "label":
        assert names == {"predictions"}
    # the log keeps the full output: monitoring and rollouts need the probabilities
    logged = _logged(served_model.registry, out["request_ids"][0])
    assert len(logged.output["probabilities"]) == 2


def _logged(registry, request_id: str):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for row in registry.store.list_predictions(MODEL, limit=100_000):
            if row.request_id == request_id:
                return row
        time.sleep(0.1)
    raise AssertionError(f"{request_id} never reached the log")


def test_bad_limits_and_policies_are_refused_with_a_message(tmp_path):
    with pytest.raises(Exception, match="not a limit such as"):
        Settings.load(overrides={"home": str(tmp_path), "serve": {"row_budget": "lots"}},
                      environ={}, cwd=tmp_path)
    with pytest.raises(Exception, match="mode"):
        Settings.load(overrides={"home": str(tmp_path), "serve": {"output": {"mode": "all"}}},
                      environ={}, cwd=tmp_path)
