"""Dynamic batching: one async callable per served model version.

``await batcher(rows)`` queues a request's rows and returns their outputs. ``rows`` is what
the model's ``infer`` takes: an array, a tuple of arrays (or None), or a mapping of feature
name to column list; a batch hands ``infer`` the list of its requests' rows, so parsing into
a table and preprocessing run once per batch, vectorised, in the inference thread. A batch is
released when it holds ``max_batch_size`` samples (reason ``full``) or ``max_latency_ms``
after its first request was queued (reason ``timeout``); a request larger than a batch is
split into chunks that ride in consecutive batches and are reassembled. The queue is bounded
in samples: a request that would overflow it raises :class:`QueueFull` at once (the app
answers 503 with ``Retry-After``). Inference runs in the batcher's own thread, off the event
loop, while the next batch gathers.

Examples
--------
>>> import asyncio, numpy as np
>>> seen = []
>>> def infer(parts):
...     x = np.concatenate(parts)
...     seen.append(len(x))
...     return x.sum(axis=1)
>>> async def main():
...     b = Batcher(infer, max_batch_size=4, max_latency_ms=50, max_queue=100)
...     outs = await asyncio.gather(*(b(np.full((n, 2), n, np.float32)) for n in (1, 2, 6)))
...     await b.close()
...     return [o.tolist() for o in outs]
>>> asyncio.run(main())
[[2.0], [4.0, 4.0], [12.0, 12.0, 12.0, 12.0, 12.0, 12.0]]
>>> seen  # 1 + 2 share a batch; the 6 are split into chunks of 4 and 2
[3, 4, 2]
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from driftloop.errors import DriftloopError

Infer = Callable[[list[Any]], np.ndarray]
"""``infer(parts)``: the rows of each request in the batch, in order -> one output row each."""
Observe = Callable[[int, str, list[float]], None]
"""``observe(batch_size, reason, queue_waits_s)`` after each batch (for metrics)."""


class QueueFull(DriftloopError):
    """The batcher's queue holds too many samples; retry after ``retry_after_s``."""

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass
class _Item:
    rows: Any
    n: int
    future: asyncio.Future[np.ndarray]
    queued_at: float


def rows_len(rows: Any) -> int:
    """How many rows: of an array, the first array of a tuple, or the first column."""
    if isinstance(rows, dict):
        return len(next(iter(rows.values()))) if rows else 0
    if isinstance(rows, tuple):
        return len(rows[0])
    return len(rows)


def rows_slice(rows: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of the same kind of container."""
    if isinstance(rows, dict):
        return {k: v[start:stop] for k, v in rows.items()}
    if isinstance(rows, tuple):
        return tuple(None if part is None else part[start:stop] for part in rows)
    return rows[start:stop]


class Batcher:
    """Queue requests for one model and run them in batches.

    Parameters
    ----------
    infer
        ``infer(parts) -> outputs``: the batch's rows, one part per request (chunk), in order;
        one output row per input row; runs in the batcher's thread.
    max_batch_size
        Samples per batch; 1 turns batching off.
    max_latency_ms
        How long the first request of a batch waits for more.
    max_queue
        Samples that may wait; a request past it raises :class:`QueueFull`.
    observe
        Called after each batch with its size, release reason and the queue waits.
    """

    def __init__(self, infer: Infer, *, max_batch_size: int = 32, max_latency_ms: float = 5.0,
                 max_queue: int = 2048, retry_after_s: int = 1,
                 observe: Observe | None = None) -> None:
        self.infer = infer
        self.max_batch_size = max_batch_size
        self.max_latency_s = max_latency_ms / 1000.0
        self.max_queue = max_queue
        self.retry_after_s = retry_after_s
        self.observe = observe
        self._pending: collections.deque[_Item] = collections.deque()
        self._queued = 0
        self._waiter: asyncio.Future[None] | None = None  # the batch loop sleeps on it
        self._idle = False  # True: it waits for a first request; False: for a full batch
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="driftloop-infer")
        self._busy = False  # a batch is in the inference thread
        # (yield_to, max_defer_s): run a batch only while that batcher is idle, waiting at
        # most max_defer_s for it; a shadow model yields to the model that answers clients
        self.yield_to: tuple[Batcher, float] | None = None

    @property
    def idle(self) -> bool:
        """Nothing queued and no batch running."""
        return not self._busy and not self._queued

    @property
    def queued(self) -> int:
        """Samples waiting now."""
        return self._queued

    async def __call__(self, rows: Any) -> np.ndarray:
        return await self.submit(rows)

    def submit(self, rows: Any) -> asyncio.Future[np.ndarray]:
        """Queue ``rows`` now and return the future of their outputs (no task is made).

        Raises :class:`QueueFull` at once. Cancelling the future before its batch runs drops
        the rows from the batch (a request the client gave up on); a shadow caller uses this
        to run a second model off the request path with only a callback and a timer.
        """
        n = rows_len(rows)
        if self._closing:
            raise QueueFull("the model is being replaced; retry", self.retry_after_s)
        if self._queued + n > self.max_queue:
            raise QueueFull(
                f"the queue holds {self._queued} samples; {n} more would pass its limit of "
                f"{self.max_queue}. Retry after {self.retry_after_s} s.", self.retry_after_s)
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._task = loop.create_task(self._run())
        now = time.monotonic()
        step = self.max_batch_size
        if n <= step:  # the common case: no gather, one future
            item = _Item(rows, n, loop.create_future(), now)
            self._enqueue([item], n)
            return item.future
        items = [_Item(rows_slice(rows, start, start + step), min(step, n - start),
                       loop.create_future(), now) for start in range(0, n, step)]
        self._enqueue(items, n)
        return _joined([item.future for item in items], loop)

    def _enqueue(self, items: list[_Item], n: int) -> None:
        self._pending.extend(items)
        self._queued += n
        # wake the batch loop only when it has something new to do (a first request starts a
        # batch's clock; a full batch goes at once), not on every request
        if self._idle or self._queued >= self.max_batch_size:
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def close(self) -> None:
        """Finish what is queued, then stop (requests already queued are answered)."""
        self._closing = True
        if self._task is not None:
            self._wake()
            await self._task
        self._executor.shutdown(wait=False)

    async def _sleep(self, timeout: float | None) -> None:
        """Until :meth:`_wake` (or ``timeout`` seconds): one future and at most one timer."""
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        self._idle = timeout is None
        timer = None if timeout is None else loop.call_later(timeout, self._wake)
        try:
            await self._waiter
        finally:
            if timer is not None:
                timer.cancel()
            self._waiter, self._idle = None, False

    async def _defer(self) -> None:
        """Wait (polling every millisecond) until ``yield_to`` is idle, at most its bound."""
        if self.yield_to is None or self._closing:
            return
        other, max_defer_s = self.yield_to
        deadline = time.monotonic() + max_defer_s
        while not other.idle and time.monotonic() < deadline:
            await asyncio.sleep(0.001)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                if self._closing:
                    return
                await self._sleep(None)
                continue
            if self._queued < self.max_batch_size and not self._closing:
                remaining = self._pending[0].queued_at + self.max_latency_s - time.monotonic()
                if remaining > 0:
                    await self._sleep(remaining)
            await self._defer()
            reason = "full" if self._queued >= self.max_batch_size else "timeout"
            batch: list[_Item] = []
            size = 0
            while self._pending and size + self._pending[0].n <= self.max_batch_size:
                item = self._pending.popleft()
                self._queued -= item.n
                if item.future.done():  # the client went away
                    continue
                batch.append(item)
                size += item.n
            if not batch:
                continue
            started = time.monotonic()
            self._busy = True
            try:
                out = await loop.run_in_executor(self._executor, self.infer,
                                                 [i.rows for i in batch])
            except Exception as exc:  # noqa: BLE001 - handed to every waiting request
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                continue
            finally:
                self._busy = False
            offset = 0
            for item in batch:
                if not item.future.done():
                    item.future.set_result(out[offset:offset + item.n])
                offset += item.n
            if self.observe is not None:
                self.observe(size, reason, [started - i.queued_at for i in batch])


def _joined(parts: list[asyncio.Future[np.ndarray]], loop: asyncio.AbstractEventLoop
            ) -> asyncio.Future[np.ndarray]:
    """One future of the parts' outputs in order; cancelling it cancels every part."""
    whole: asyncio.Future[np.ndarray] = loop.create_future()
    gathered = asyncio.gather(*parts)

    def finish(done: asyncio.Future[list[np.ndarray]]) -> None:
        if whole.done():
            return
        if done.cancelled():
            whole.cancel()
        elif done.exception() is not None:
            whole.set_exception(done.exception())  # type: ignore[arg-type]
        else:
            whole.set_result(np.concatenate(done.result()))

    def forward(whole_done: asyncio.Future[np.ndarray]) -> None:
        if whole_done.cancelled():
            gathered.cancel()

    gathered.add_done_callback(finish)
    whole.add_done_callback(forward)
    return whole


__all__ = ["Batcher", "QueueFull", "rows_len", "rows_slice"]
