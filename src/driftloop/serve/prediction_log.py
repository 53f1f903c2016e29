"""Write every prediction to the store's prediction log, off the request path, in batches.

The request path only appends one entry per request (its columns and outputs, by reference)
to a bounded in-memory buffer; a background thread expands entries into rows, hashes the
columns flagged as PII, and writes them in one insert every ``flush_ms``. When the buffer is
full, or a write fails (the store is slow or down), rows are dropped and counted in
``driftloop_prediction_log_dropped_total`` — serving never waits for the log.

A request's subject ids (``"ids"`` beside the instances) go to the row's ``subject`` column,
hashed the same way (never in clear): what ``driftloop erase --subject-id`` looks up.

PII hashing: HMAC-SHA256 with ``key`` of the value's text, so equal values still join in
monitoring while the value itself is not stored. There is no unkeyed hashing: without a
``key`` the log uses a random one of its own (the server passes the store's key,
:func:`driftloop.store.secrets.pii_key`, so hashes join across restarts and replicas).

Examples
--------
>>> from driftloop.store import Store
>>> store = Store.open("sqlite://")
>>> log = PredictionLog(store, flush_ms=10, key="k")
>>> log.start()
>>> log.submit("m", 1, ["r1", "r2"], {"email": ["a@x.org", None], "age": [30, 41]},
...            {"predictions": ["yes", "no"]}, pii=frozenset({"email"}))
True
>>> log.stop()
>>> rows = store.list_predictions("m")
>>> rows[0].features["age"], rows[0].features["email"] == hash_value("a@x.org", "k")
(30, True)
>>> rows[1].features["email"] is None, rows[1].output
(True, {'predictions': 'no'})
>>> log.submit("m", 1, ["r3", "r4"], {"age": [5, 6]}, {"predictions": [0, 1]},
...            subjects=["42", None])
True
>>> _ = log.flush()
>>> [r.request_id for r in store.log_rows_of_subjects([hash_value("42", "k")])]
['r3']
>>> store.close()
"""

from __future__ import annotations

import collections
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from driftloop.data.hashing import hash_value
from driftloop.serve.metrics import ServeMetrics
from driftloop.store import Store, utcnow


def row_ids(request_id: str, n: int) -> list[str]:
    """The id of each row of a request: the request id itself for one row, else
    ``<request id>-<i>`` (what feedback names).

    >>> row_ids("ab", 1), row_ids("ab", 2)
    (['ab'], ['ab-0', 'ab-1'])
    """
    return [request_id] if n == 1 else [f"{request_id}-{i}" for i in range(n)]


@dataclass(frozen=True)
class _Entry:
    model: str
    version: int
    request_ids: Sequence[str]
    at: datetime
    columns: dict[str, list[Any]]
    outputs: dict[str, list[Any]]
    pii: frozenset[str]
    client_ref: str | None = None
    subjects: Sequence[str | None] | None = None


class PredictionLog:
    """A bounded buffer of predictions and the thread that writes them.

    Parameters
    ----------
    store
        Where rows go (:meth:`driftloop.store.Store.add_predictions`).
    metrics
        Counts written and dropped rows; None: a private :class:`ServeMetrics`.
    max_rows
        Rows the buffer holds; past it new rows are dropped (and counted).
    flush_ms
        How often the writer thread writes.
    key
        HMAC key for PII columns; None or empty: a random key of this log's own.
    replica
        The serving process's name, written in every row (``prediction_log.replica``), so the
        rows of several replicas sharing one log can be told apart.
    """

    def __init__(self, store: Store, *, metrics: ServeMetrics | None = None,
                 max_rows: int = 100_000, flush_ms: float = 500.0,
                 key: str | None = None, replica: str | None = None) -> None:
        self.store = store
        self.replica = replica
        self.metrics = metrics or ServeMetrics()
        self.max_rows = max_rows
        self.flush_s = flush_ms / 1000.0
        self.key = key or secrets.token_hex(32)
        self._buffer: collections.deque[Any] = collections.deque()
        self._rows = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def submit(self, model: str, version: int, request_ids: Sequence[str],
               columns: dict[str, list[Any]], outputs: dict[str, list[Any]],
               pii: frozenset[str] = frozenset(), *, client_ref: str | None = None,
               subjects: Sequence[str | None] | None = None) -> bool:
        """Queue one request's rows (one per request id); False when they were dropped.
        ``client_ref``: the client's own reference of the request (a V2 ``id``);
        ``subjects``: the subject id text of each row (None: no subject), stored hashed.
        """
        return self._enqueue(_Entry(model, version, request_ids, utcnow(), columns, outputs,
                                    pii, client_ref, subjects), len(request_ids))

    def _enqueue(self, entry: Any, n: int) -> bool:
        """Buffer one entry of ``n`` rows; False (and counted) when the buffer is full."""
        with self._lock:
            if self._rows + n > self.max_rows:
                self._dropped("buffer_full", n)
                return False
            self._buffer.append(entry)
            self._rows += n
        return True

    def start(self) -> None:
        """Start the writer thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write what is buffered and stop the writer thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()

    def flush(self) -> int:
        """Write every buffered row now; returns how many were written."""
        with self._lock:
            entries = list(self._buffer)
            self._buffer.clear()
            n = self._rows
            self._rows = 0
        if not entries:
            return 0
        try:
            rows = [row for entry in entries for row in self._rows_of(entry)]
            self._write(rows)
        except Exception:  # noqa: BLE001 - the store being down must not stop serving
            self._dropped("store_error", n)
            return 0
        self._written(len(rows))
        return len(rows)

    # what a log of other rows (a rollout's observations) changes
    thread_name = "driftloop-prediction-log"

    def _write(self, rows: list[dict[str, Any]]) -> None:
        self.store.add_predictions(rows)

    def _dropped(self, reason: str, n: int) -> None:
        self.metrics.log_dropped.labels(reason).inc(n)

    def _written(self, n: int) -> None:
        self.metrics.log_written.inc(n)

    def _loop(self) -> None:
        while not self._stop.wait(self.flush_s):
            self.flush()

    def _rows_of(self, entry: Any) -> list[dict[str, Any]]:
        columns = {
            name: [None if v is None else hash_value(v, self.key) for v in values]
            if name in entry.pii else values
            for name, values in entry.columns.items()
        }
        subjects = [None if s is None else hash_value(s, self.key)
                    for s in entry.subjects or [None] * len(entry.request_ids)]
        return [
            {"request_id": rid, "model_name": entry.model, "version": entry.version,
             "at": entry.at, "subject": subjects[i], "replica": self.replica,
             "features": {name: values[i] for name, values in columns.items()},
             "output": {name: values[i] for name, values in entry.outputs.items()},
             "client_ref": entry.client_ref}
            for i, rid in enumerate(entry.request_ids)
        ]


__all__ = ["PredictionLog", "hash_value", "row_ids"]
