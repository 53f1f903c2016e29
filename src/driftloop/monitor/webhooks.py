"""POST alerts to webhooks: retried with jittered exponential back-off, off the monitor's path.

Delivery rules (stamina does the retrying):

- a 2xx answer delivers; a 4xx answer other than 429 is final (retrying cannot fix the
  request), a 5xx, a 429 or a network error is retried up to ``retries`` more times;
- ``Retry-After`` (seconds or an HTTP date) on a 429/503 sets the wait before the next try
  (capped at :data:`MAX_RETRY_AFTER_S`), otherwise the wait grows exponentially from
  ``backoff_s`` with random jitter, so many monitors do not retry in lock-step;
- every URL is delivered on its own thread: :class:`WebhookSender` starts them and
  :meth:`WebhookSender.finish` waits for all of them together at most ``wait_s`` seconds, so a
  slow or dead webhook costs a monitoring run at most that bound. A delivery still retrying
  then is recorded as ``pending`` and completed in the store when it ends (if the process is
  still alive).

Examples
--------
>>> out = deliver("http://127.0.0.1:9/", {"x": 1}, retries=1, backoff_s=0, timeout_s=0.5)
>>> out["ok"], out["attempts"], "error" in out
(False, 2, True)
>>> retry_after_s("3"), retry_after_s("soon") is None
(3.0, True)
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import httpx
import stamina

logger = logging.getLogger("driftloop.monitor")
MAX_RETRY_AFTER_S = 60.0  # a receiver may ask for a pause; never longer than this


class _Retryable(Exception):
    """A 5xx or 429 answer: worth another try (after ``retry_after`` seconds when given)."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status, self.retry_after = status, retry_after


def retry_after_s(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def deliver(
    url: str, payload: Mapping[str, Any], *, retries: int = 3, backoff_s: float = 0.5,
    timeout_s: float = 5.0,
) -> dict[str, Any]:
    """POST ``payload`` to ``url`` until delivered, refused (4xx) or ``retries`` retries are spent.

    Returns ``{"url", "ok", "attempts", "status" | "error"}``; never raises.
    """
    attempts = 0

    def backoff(exc: Exception) -> bool | float:
        if isinstance(exc, _Retryable):
            return True if exc.retry_after is None else min(exc.retry_after, MAX_RETRY_AFTER_S)
        return isinstance(exc, httpx.TransportError)

    try:
        with httpx.Client(timeout=timeout_s) as client:
            for attempt in stamina.retry_context(
                on=backoff, attempts=retries + 1, timeout=None, wait_initial=backoff_s,
                wait_max=max(backoff_s * 2 ** retries, backoff_s), wait_jitter=backoff_s / 2,
            ):
                with attempt:
                    attempts += 1
                    response = client.post(url, json=dict(payload))
                    status = response.status_code
                    if response.is_success or (400 <= status < 500 and status != 429):
                        return {"url": url, "ok": response.is_success, "attempts": attempts,
                                "status": status}
                    raise _Retryable(status, retry_after_s(response.headers.get("retry-after")))
    except _Retryable as exc:
        return {"url": url, "ok": False, "attempts": attempts, "status": exc.status}
    except httpx.HTTPError as exc:
        return {"url": url, "ok": False, "attempts": attempts,
                "error": f"{type(exc).__name__}: {exc}"}
    raise AssertionError("unreachable: the retry loop returns or raises")  # pragma: no cover


Record = Callable[[int, list[dict[str, Any]]], object]


class WebhookSender:
    """Deliver alerts to ``urls`` on background threads; ``record(alert_id, deliveries)``
    stores each alert's outcomes (once at :meth:`finish`, and again when a late one ends).

    Examples
    --------
    >>> seen = {}
    >>> sender = WebhookSender(["http://127.0.0.1:9/"], lambda i, d: seen.update({i: d}),
    ...                        retries=0, backoff_s=0, timeout_s=0.5, wait_s=5)
    >>> sender.send(7, {"kind": "dataset_drift"})
    >>> sender.finish()
    >>> [d["ok"] for d in seen[7]]
    [False]
    """

    def __init__(self, urls: Sequence[str], record: Record, *, retries: int = 3,
                 backoff_s: float = 0.5, timeout_s: float = 5.0, wait_s: float = 10.0) -> None:
        self.urls, self.record = list(urls), record
        self.retries, self.backoff_s, self.timeout_s, self.wait_s = (
            retries, backoff_s, timeout_s, wait_s)
        self._lock = threading.Lock()
        self._outcomes: dict[int, list[dict[str, Any] | None]] = {}
        self._threads: list[threading.Thread] = []
        self._finished = False

    def send(self, alert_id: int, payload: Mapping[str, Any]) -> None:
        """Start delivering one alert to every URL (returns at once)."""
        with self._lock:
            self._outcomes[alert_id] = [None] * len(self.urls)
        for index, url in enumerate(self.urls):
            thread = threading.Thread(target=self._deliver, args=(alert_id, index, url, payload),
                                      name=f"webhook-{alert_id}-{index}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def finish(self) -> None:
        """Wait at most ``wait_s`` in all, then record every alert's outcomes (``pending`` for
        deliveries still retrying)."""
        deadline = time.monotonic() + self.wait_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._finished = True
            snapshot = {i: self._rows(i) for i in self._outcomes}
        for alert_id, rows in snapshot.items():
            self.record(alert_id, rows)

    def _deliver(self, alert_id: int, index: int, url: str, payload: Mapping[str, Any]) -> None:
        outcome = deliver(url, payload, retries=self.retries, backoff_s=self.backoff_s,
                          timeout_s=self.timeout_s)
        with self._lock:
            self._outcomes[alert_id][index] = outcome
            late = self._finished
            rows = self._rows(alert_id)
        if late:  # finish() already recorded this alert as pending: record the outcome now
            try:
                self.record(alert_id, rows)
            except Exception:  # noqa: BLE001 - a background thread must not die noisily
                logger.warning("webhook outcome of alert %s could not be recorded", alert_id,
                               exc_info=True)

    def _rows(self, alert_id: int) -> list[dict[str, Any]]:
        return [o if o is not None else {"url": url, "ok": False, "pending": True,
                                          "error": "still retrying when monitoring finished"}
                for url, o in zip(self.urls, self._outcomes[alert_id], strict=True)]


__all__ = ["MAX_RETRY_AFTER_S", "WebhookSender", "deliver", "retry_after_s"]
