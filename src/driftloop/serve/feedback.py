"""Feedback labels as the classes of the model that answered the request.

``POST /v1/feedback`` stores a label only as one of the classes of the model version that
answered its request (:func:`driftloop.models.labels.coerce_label`: ``1``, ``1.0`` and ``"1"``
are one integer class), so the monitor and the loop read one form. To know that model the
server asks, in order:

1. :class:`RecentRequests`, the requests it answered lately — the prediction log is written
   in batches, so a feedback sent right after its prediction finds no row yet;
2. the prediction log (:meth:`driftloop.store.Store.models_of_requests`): requests answered
   earlier, or by another replica.

A request id found in neither is stored as sent. :func:`coerce_feedback` is all or nothing: one
refused label refuses the whole request, and nothing of it is stored.

Examples
--------
>>> recent = RecentRequests(max_requests=2)
>>> recent.add("r1", 1, "m", 3)
>>> recent.add("r2", 2, "m", 3)
>>> recent.get("r1"), recent.get("r2-1"), recent.get("r2-2")
(('m', 3), ('m', 3), None)
>>> recent.add("r3", 1, "m", 4)  # the oldest request goes
>>> recent.get("r1"), len(recent)
(None, 2)
>>> owners = {"r2-0": Owner("m", 3, [0, 1]), "r3": Owner("m", 4, [0, 1])}
>>> coerce_feedback([("r2-0", "1"), ("r3", 0.0), ("elsewhere", "1.0")], owners)
[('r2-0', 1), ('r3', 0), ('elsewhere', '1.0')]
>>> coerce_feedback([("r2-0", 1), ("r3", 2)], owners)
Traceback (most recent call last):
...
driftloop.serve.validation.RequestInvalid: feedback item 1: label 2 is not one of the model's \
classes: 0, 1 (m v4). Nothing was recorded: send the items again with known labels.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from driftloop.models.labels import coerce_label, unknown_label_message
from driftloop.serve.validation import RequestInvalid


@dataclass(frozen=True)
class Owner:
    """The model version that answered a request, and its classes (None: regression)."""

    model: str
    version: int
    classes: list[Any] | None


class RecentRequests:
    """request id -> (model, version) of the newest ``max_requests`` requests answered.

    One entry per request: the rows ``RID-0`` .. ``RID-{n-1}`` of a request with ``n``
    instances are found through ``RID``. Used from the event loop only (no lock).
    """

    def __init__(self, max_requests: int) -> None:
        self.max_requests = max(1, max_requests)
        self._entries: collections.OrderedDict[str, tuple[int, tuple[str, int]]] = (
            collections.OrderedDict())

    def add(self, request_id: str, rows: int, model: str, version: int) -> None:
        """Remember a request answered with ``rows`` rows (ids ``RID`` or ``RID-i``)."""
        self._entries[request_id] = (rows, (model, version))
        self._entries.move_to_end(request_id)
        while len(self._entries) > self.max_requests:
            self._entries.popitem(last=False)

    def get(self, row_id: str) -> tuple[str, int] | None:
        """The (model, version) that answered the row ``row_id``; None: not among them."""
        hit = self._entries.get(row_id)
        if hit is not None and hit[0] == 1:
            return hit[1]
        base, _, index = row_id.rpartition("-")
        hit = self._entries.get(base) if base and index.isdigit() else None
        if hit is not None and hit[0] > 1 and int(index) < hit[0]:
            return hit[1]
        return None

    def __len__(self) -> int:
        return len(self._entries)


def coerce_feedback(items: Sequence[tuple[str, Any]],
                    owners: Mapping[str, Owner]) -> list[tuple[str, Any]]:
    """``(request_id, label)`` items with each label as its owner's class (as sent when the
    request id has no owner).

    Raises :class:`RequestInvalid` (422, code ``unknown_label``) for the first label that is
    not one of its model's classes (not a finite number for a regression model), naming the
    allowed classes; no item is returned then.
    """
    out: list[tuple[str, Any]] = []
    for i, (rid, label) in enumerate(items):
        owner = owners.get(rid)
        if owner is None:
            out.append((rid, label))
            continue
        try:
            value = coerce_label(label, owner.classes)
        except OverflowError:  # an integer too large for a float is no class nor value
            value = None
        if value is None:
            why = unknown_label_message(label, owner.classes).rstrip(".")
            raise RequestInvalid(
                f"feedback item {i}: {why} ({owner.model} v{owner.version}). Nothing was "
                "recorded: send the items again with known labels.",
                code="unknown_label", fields=["label"])
        out.append((rid, value))
    return out


__all__ = ["Owner", "RecentRequests", "coerce_feedback"]
