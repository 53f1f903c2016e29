"""Prometheus metrics of one server, in a registry of its own (never the global one).

Examples
--------
>>> m = ServeMetrics()
>>> m.batch("m", 8, "full", [0.001, 0.002])
>>> b"driftloop_batch_size_count{model=\\"m\\"} 1.0" in m.render()
True
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServeMetrics:
    """Request, batching, queue, model-version and prediction-log metrics."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("driftloop_requests", "HTTP requests by endpoint and status",
                                ["endpoint", "status"], registry=r)
        self.latency = Histogram("driftloop_request_latency_seconds",
                                 "HTTP request latency by endpoint and status",
                                 ["endpoint", "status"], buckets=_LATENCY, registry=r)
        self.batch_size = Histogram("driftloop_batch_size", "samples per inference batch",
                                    ["model"], buckets=_SIZES, registry=r)
        self.queue_wait = Histogram("driftloop_queue_wait_seconds",
                                    "time a request waited in the batch queue",
                                    ["model"], buckets=_LATENCY, registry=r)
        self.batches = Counter("driftloop_batches", "batches by release reason",
                               ["model", "reason"], registry=r)
        self.rejected = Counter("driftloop_rejected_requests",
                                "requests refused with 503 (queue full)", ["model"], registry=r)
        self.version = Gauge("driftloop_model_version", "model version being served",
                             ["model"], registry=r)
        self.swaps = Counter("driftloop_model_swaps", "hot swaps to a new version",
                             ["model"], registry=r)
        self.reloads = Counter("driftloop_model_reloads", "forced reloads: 'admin' (POST "
                               "/v1/admin/reload here) or 'signal' (a reload on another replica "
                               "or worker, seen through the store)", ["model", "trigger"],
                               registry=r)
        self.unknown_categories = Counter(
            "driftloop_unknown_categories", "categorical values never seen in training "
            "(mapped to the unknown bucket)", ["model", "feature"], registry=r)
        self.replica = Gauge("driftloop_replica", "1, labelled with this serving process's "
                             "name in the prediction log (serve.instance or host:pid)",
                             ["replica"], registry=r)
        self.log_written = Counter("driftloop_prediction_log_written",
                                   "prediction-log rows written", registry=r)
        self.feedback_conflicts = Counter(
            "driftloop_feedback_conflicts", "requests that got a second, different label (held "
            "out of monitoring and retraining)", ["source"], registry=r)
        self.log_dropped = Counter("driftloop_prediction_log_dropped",
                                   "prediction-log rows dropped (buffer full or store down)",
                                   ["reason"], registry=r)

        self.rollout_answers = Counter(
            "driftloop_rollout_answers", "rows answered during a rollout, by stage and by the "
            "role of the version whose answer was returned", ["model", "stage", "role"],
            registry=r)
        self.rate_limited = Counter(
            "driftloop_rate_limited", "predict requests refused with 429 by a key's rate "
            "limit (kind requests) or row budget (kind rows)", ["model", "kind"], registry=r)
        self.rollout_failures = Counter(
            "driftloop_rollout_candidate_failures", "rows a rollout's candidate failed (error, "
            "timeout) or skipped (overloaded); no client request fails because of them",
            ["model", "kind"], registry=r)

    def batch(self, model: str, size: int, reason: str, waits: list[float]) -> None:
        """Record one released batch."""
        self.batch_size.labels(model).observe(size)
        self.batches.labels(model, reason).inc()
        hist = self.queue_wait.labels(model)
        for wait in waits:
            hist.observe(wait)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)


__all__ = ["ServeMetrics"]
