"""The batcher alone: release by size and by time, split and reassemble, bounded queue."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from driftloop.serve.batcher import Batcher, QueueFull


def _echo(log: list[int]):
    def infer(parts):
        x = np.concatenate(parts)
        log.append(len(x))
        return x[:, 0] * 10
    return infer


def test_concurrent_requests_share_batches_released_when_full():
    sizes: list[int] = []
    reasons: list[str] = []

    async def main():
        b = Batcher(_echo(sizes), max_batch_size=8, max_latency_ms=1000,
                    observe=lambda n, reason, waits: reasons.append(reason))
        t = time.monotonic()
        outs = await asyncio.gather(*(b(np.full((1, 1), i, np.float32))
                                      for i in range(16)))
        await b.close()
        return outs, time.monotonic() - t

    outs, took = asyncio.run(main())
    assert [o.tolist() for o in outs] == [[10.0 * i] for i in range(16)]
    assert sizes == [8, 8] and reasons == ["full", "full"] and took < 0.9


def test_a_lone_request_is_released_after_max_latency():
    reasons: list[str] = []

    async def main():
        b = Batcher(_echo([]), max_batch_size=64, max_latency_ms=30,
                    observe=lambda n, reason, waits: reasons.append(reason))
        t = time.monotonic()
        await b(np.ones((2, 1), np.float32))
        took = time.monotonic() - t
        await b.close()
        return took

    assert 0.025 <= asyncio.run(main()) < 1.0 and reasons == ["timeout"]


def test_large_request_is_split_and_reassembled_in_order():
    sizes: list[int] = []

    async def main():
        b = Batcher(_echo(sizes), max_batch_size=4, max_latency_ms=1)
        x = np.arange(10, dtype=np.float32).reshape(10, 1)
        out = await b(x)
        await b.close()
        return out

    assert asyncio.run(main()).tolist() == [10.0 * i for i in range(10)]
    assert sizes == [4, 4, 2]


def test_column_rows_are_split_by_column():
    parts_seen: list[list[dict]] = []

    def infer(parts):
        parts_seen.append(parts)
        return np.array([v for p in parts for v in p["a"]], np.float64)

    async def main():
        b = Batcher(infer, max_batch_size=2, max_latency_ms=1)
        out = await b({"a": [1, 2, 3], "b": ["x", "y", "z"]})
        await b.close()
        return out

    assert asyncio.run(main()).tolist() == [1, 2, 3]
    assert parts_seen[0] == [{"a": [1, 2], "b": ["x", "y"]}]


def test_full_queue_refuses_at_once_and_errors_reach_every_waiter():
    async def main():
        b = Batcher(_echo([]), max_batch_size=4, max_latency_ms=200, max_queue=3)
        first = asyncio.ensure_future(b(np.ones((3, 1), np.float32)))
        await asyncio.sleep(0)
        with pytest.raises(QueueFull, match="limit of 3"):
            await b(np.ones((1, 1), np.float32))
        await first
        await b.close()

        def broken(parts):
            raise RuntimeError("boom")

        bad = Batcher(broken, max_batch_size=2, max_latency_ms=1)
        with pytest.raises(RuntimeError, match="boom"):
            await bad(np.ones((1, 1), np.float32))
        await bad.close()

    asyncio.run(main())
