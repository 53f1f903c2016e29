"""Alerts: stored, printed by the caller, and POSTed as JSON to the configured webhooks.

The alert is stored before any delivery is tried. Delivery (:mod:`driftloop.monitor.webhooks`)
runs on background threads with jittered retries; the caller waits for it at most a bound
(``monitor.webhook_wait_s``), so a slow or dead webhook never holds monitoring up, and a
delivery that fails is recorded on the alert.

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

from collections.abc import Mapping, Sequence
from typing import Any

from driftloop.monitor.webhooks import WebhookSender, deliver
from driftloop.store.database import Store
from driftloop.store.monitoring import AlertRecord

ALERT_KINDS = ("dataset_drift", "prediction_drift", "performance_drop", "concept_drift",
               "suspect_feedback", "rollout", "feature_skew")


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
    wait_s: float = 10.0,
    sender: WebhookSender | None = None,
) -> AlertRecord:
    """Store an alert, then deliver it to the webhooks.

    With ``sender`` (one per monitoring run) delivery starts and this returns at once; the
    sender records the outcomes when it finishes. Without one, ``webhooks`` get the alert now
    and this waits at most ``wait_s`` for them; the alert comes back with its deliveries.
    """
    if kind not in ALERT_KINDS:
        raise ValueError(f"alert kind must be one of {ALERT_KINDS}, got {kind!r}")
    alert = store.add_alert(model_name=model_name, kind=kind, message=message,
                            details=details, window_id=window_id)
    payload = {"alert_id": alert.id, "model": model_name, "kind": kind, "message": message,
               "window_id": window_id, "at": alert.at.isoformat(), "details": dict(details)}
    if sender is not None:
        if sender.urls:
            sender.send(alert.id, payload)
        return alert
    if not webhooks:
        return alert
    recorded: dict[int, AlertRecord] = {}
    own = WebhookSender(webhooks, lambda i, d: recorded.update({i: store.set_deliveries(i, d)}),
                        retries=retries, backoff_s=backoff_s, timeout_s=timeout_s,
                        wait_s=wait_s)
    own.send(alert.id, payload)
    own.finish()
    return recorded[alert.id]


__all__ = ["ALERT_KINDS", "deliver", "raise_alert"]
