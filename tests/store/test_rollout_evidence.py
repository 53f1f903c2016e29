"""A cursor's incremental reads of a rollout's evidence equal a fresh read at every step:
rows appended, labels arriving late (and for rows read long before), conflicting labels."""

from __future__ import annotations

from dataclasses import asdict

from driftloop.store import EvidenceCursor, Store


def _rows(rollout_id: int, start: int, n: int) -> list[dict]:
    return [{"rollout_id": rollout_id, "request_id": f"q{i}", "stage": "shadow",
             "answered_by": 1, "holder_output": "yes" if i % 3 else "no",
             "candidate_output": "yes" if i % 2 else "no", "holder_confidence": 0.8,
             "candidate_confidence": 0.7, "holder_ms": 2.0, "candidate_ms": 3.0,
             "candidate_error": "timeout" if i % 17 == 0 else None}
            for i in range(start, start + n)]


def test_incremental_reads_equal_a_fresh_read_at_every_step():
    store = Store.open("sqlite://")
    r = store.start_rollout("m", "production", candidate_version=2, holder_version=1,
                            policy={}, actor="ops")
    other = store.start_rollout("n", "production", candidate_version=2, holder_version=1,
                                policy={}, actor="ops")
    cursor = EvidenceCursor(r.id)
    steps = [
        lambda: store.add_rollout_observations(_rows(r.id, 0, 40)),
        lambda: store.add_feedback([(f"q{i}", "yes") for i in range(5, 15)]),
        lambda: store.add_rollout_observations(_rows(r.id, 40, 30)),
        # late labels for old rows, a second identical label, a conflicting one
        lambda: store.add_feedback([("q1", "no"), ("q5", "yes"), ("q6", "no"), ("q60", "no")]),
        lambda: store.add_rollout_observations(_rows(other.id, 100, 10)),  # not this rollout
        lambda: store.add_feedback([(f"q{i}", "no") for i in range(30, 45)]),
    ]
    for step in steps:
        step()
        incremental = store.rollout_evidence(r.id, cursor)
        assert asdict(incremental) == asdict(store.rollout_evidence(r.id))
    assert incremental.rows == 70
    assert incremental.labels[6] is None and incremental.labels[5] == "yes"  # q6 conflicted
    assert 6 not in incremental.label_order and incremental.label_order[:2] == [5, 7]
    assert sum(label is not None for label in incremental.labels) == len(
        incremental.label_order) == 10 - 1 + 1 + 1 + 15
    store.close()
