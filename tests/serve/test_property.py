"""Property: no request body, well-formed or not, makes the server answer 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import MODEL, Served, instances, start_server

pytestmark = pytest.mark.slow

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)


@pytest.fixture(scope="module")
def server(served_model: Served) -> Iterator[tuple[httpx.Client, dict]]:
    srv = start_server(served_model)
    with httpx.Client(base_url=srv.url, timeout=30) as client:
        yield client, instances(served_model.frame.iloc[:1])[0]
    srv.stop()


def _bodies(good: dict) -> st.SearchStrategy:
    # instances shaped like the schema with any values swapped in, keys dropped or added
    mutated = st.fixed_dictionaries({}).flatmap(lambda _: st.builds(
        lambda swaps, drop, extra: {**{k: v for k, v in good.items() if k not in drop},
                                    **swaps, **extra},
        st.dictionaries(st.sampled_from(sorted(good)), SCALARS | JSON, max_size=3),
        st.sets(st.sampled_from(sorted(good)), max_size=2),
        st.dictionaries(st.text(max_size=8), SCALARS, max_size=2)))
    return (st.builds(lambda rows: {"instances": rows}, st.lists(mutated, max_size=5))
            | st.builds(lambda v: {"instances": v}, JSON) | JSON)


@settings(max_examples=120, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_body_gives_a_5xx(server, data):
    client, good = server
    body = data.draw(_bodies(good))
    path = data.draw(st.sampled_from([f"/v1/models/{MODEL}/predict", f"/v2/models/{MODEL}/infer",
                                      "/v1/feedback"]))
    if path.endswith("infer") and isinstance(body, dict) and "instances" in body:
        rows = body["instances"] if isinstance(body["instances"], list) else []
        cols = {k for r in rows if isinstance(r, dict) for k in r}
        body = {"inputs": [{"name": k, "shape": [len(rows)], "datatype": "BYTES",
                            "data": [r.get(k) if isinstance(r, dict) else r for r in rows]}
                           for k in cols]}
    # json.dumps writes NaN/Infinity too, as some clients do
    r = client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})
    assert r.status_code < 500, (path, body, r.text)
    if r.status_code >= 400:
        assert r.json()["error"]["message"]
