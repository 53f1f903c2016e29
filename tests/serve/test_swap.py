"""Hot swap under load: the alias moves 10 times while 200 requests run; none fails."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest

from .conftest import MODEL, Served, instances, start_server

pytestmark = pytest.mark.slow


def test_200_requests_across_10_alias_moves_all_succeed_on_a_valid_version(
        served_model: Served):
    registry = served_model.registry
    rows = served_model.frame.iloc[:5]
    direct = {v: registry.load(MODEL, v).predict_raw(rows) for v in (1, 2)}
    srv = start_server(served_model, poll_s=0.05, max_latency_ms=5.0)
    try:
        async def load() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=srv.url, timeout=60) as client:
                async def one() -> httpx.Response:
                    return await client.post(f"/v1/models/{MODEL}/predict",
                                             json={"instances": instances(rows)})

                async def moves() -> None:
                    for i in range(10):
                        await asyncio.sleep(0.08)
                        await asyncio.to_thread(registry.promote, MODEL, 2 - i % 2,
                                                to="production", force=True, reason="swap test")

                mover = asyncio.create_task(moves())
                tasks = []
                for _ in range(20):
                    tasks += [asyncio.create_task(one()) for _ in range(10)]
                    await asyncio.sleep(0.05)
                replies = await asyncio.gather(*tasks)
                await mover
                return replies

        replies = asyncio.run(load())
        assert [r.status_code for r in replies] == [200] * 200
        versions = [r.json()["version"] for r in replies]
        assert set(versions) <= {1, 2}
        for r in replies:  # each answer is exactly what the version it names computes
            np.testing.assert_allclose(r.json()["probabilities"], direct[r.json()["version"]],
                                       rtol=1e-5, atol=1e-7)
        metrics = httpx.get(srv.url + "/metrics").text
        swaps = next(float(line.split()[-1]) for line in metrics.splitlines()
                     if line.startswith('driftloop_model_swaps_total{model="cancer"}'))
        assert swaps >= 2 and len(set(versions)) == 2
    finally:
        srv.stop()
        registry.promote(MODEL, 1, to="production", force=True, reason="restore")
