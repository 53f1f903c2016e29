"""Alerts: stored, printed by the caller, and POSTed as JSON to the configured webhooks.

Each webhook gets ``retries`` more tries after a failure, with exponential back-off; a
webhook that stays down is recorded as a failed delivery on the alert and never stops
monitoring (the alert itself is already stored before any delivery is tried).

Examples
--------
>>> from driftloop.store import Store
>>> store = Store.open("sqlite://")
>>> alert = raise_alert(store, model_name="m", kind="dataset_drift", message="3 of 5 drifted",
...                     details={"share_drifted": 0.6}, webhooks=[])
>>> alert.kind, alert.deliveries
('dataset_drift', [])
>>> store.close()
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from driftloop.store.database import Store
from driftloop.store.monitoring import AlertRecord

ALERT_KINDS = ("dataset_drift", "prediction_drift", "performance_drop", "concept_drift")


def raise_alert(
    store: Store,
    *,
    model_name: str,
    kind: str,
    message: str,
    details: Mapping[str, Any],
    window_id: int | None = None,
    webhooks: Sequence[str] = (),
    retries: int = 3,
    backoff_s: float = 0.5,
    timeout_s: float = 5.0,
) -> AlertRecord:
    """Store an alert, then deliver it to every webhook; returns it with its deliveries."""
    if kind not in ALERT_KINDS:
        raise ValueError(f"alert kind must be one of {ALERT_KINDS}, got {kind!r}")
    alert = store.add_alert(model_name=model_name, kind=kind, message=message,
                            details=details, window_id=window_id)
    if not webhooks:
        return alert
    payload = {"alert_id": alert.id, "model": model_name, "kind": kind, "message": message,
               "window_id": window_id, "at": alert.at.isoformat(), "details": dict(details)}
    deliveries = [deliver(url, payload, retries=retries, backoff_s=backoff_s,
                          timeout_s=timeout_s) for url in webhooks]
    return store.set_deliveries(alert.id, deliveries)


def deliver(
    url: str, payload: Mapping[str, Any], *, retries: int = 3, backoff_s: float = 0.5,
    timeout_s: float = 5.0,
) -> dict[str, Any]:
    """POST ``payload`` to ``url`` until a 2xx answer or ``retries`` retries are spent.

    Returns ``{"url", "ok", "attempts", "status" | "error"}``; never raises.

    Examples
    --------
    >>> out = deliver("http://127.0.0.1:9/", {"x": 1}, retries=1, backoff_s=0, timeout_s=0.5)
    >>> out["ok"], out["attempts"]
    (False, 2)
    """
    attempts = 0
    outcome: dict[str, Any] = {}
    delay = backoff_s
    with httpx.Client(timeout=timeout_s) as client:
        while attempts <= retries:
            attempts += 1
            try:
                response = client.post(url, json=dict(payload))
                outcome = {"status": response.status_code}
                if response.is_success:
                    return {"url": url, "ok": True, "attempts": attempts, **outcome}
            except httpx.HTTPError as exc:
                outcome = {"error": f"{type(exc).__name__}: {exc}"}
            if attempts <= retries:
                time.sleep(delay)
                delay *= 2
    return {"url": url, "ok": False, "attempts": attempts, **outcome}


__all__ = ["ALERT_KINDS", "deliver", "raise_alert"]
