"""Store.erase_log_rows and the scans behind driftloop erase."""

from __future__ import annotations

import pytest

from driftloop.store import Store, utcnow
from driftloop.store.audit import AuditLog


@pytest.fixture
def store():
    with Store.open("sqlite://") as store:
        store.add_predictions([
            {"request_id": rid, "model_name": "m", "version": 1, "at": utcnow(),
             "features": {"customer": customer}, "output": {}}
            for rid, customer in [("r1", "c-1"), ("r2", "c-2"), ("r1", "c-3")]])
        store.add_feedback([("r1", "yes"), ("r2", "no")])
        yield store


def test_erasing_deletes_rows_and_feedback_and_audits_in_one_transaction(store: Store) -> None:
    log = AuditLog(store)
    erased = store.erase_log_rows(
        [1], ["r1"], audit=lambda s, e: log.append_in(s, "dpo", "erase", "subject:x",
                                                      {"rows": e.prediction_log}))
    assert (erased.prediction_log, erased.feedback, erased.shared_request_ids) == (1, 1, 1)
    assert erased.audit_seq == log.entries()[-1].seq
    assert log.entries()[-1].details == {"rows": 1}
    assert [r.id for r in store.list_predictions()] == [2, 3]
    assert store.labels_for(["r1", "r2"]) == {"r2": "no"}


def test_a_failing_audit_hook_erases_nothing(store: Store) -> None:
    def failing(session, erased):
        raise RuntimeError("audit down")

    with pytest.raises(RuntimeError):
        store.erase_log_rows([1, 2], ["r1", "r2"], audit=failing)
    assert store.count_predictions() == 3 and store.count_feedback(["r1", "r2"]) == 2


def test_scans_narrow_by_text_and_read_newest_first(store: Store) -> None:
    assert [r.id for r in store.iter_log_features(containing=["c-2", "c-3"])] == [2, 3]
    assert list(store.iter_log_features(containing=[])) == []
    assert [r.id for r in store.iter_log_features(newest_first=True, limit=2)] == [3, 2]
    assert store.count_shared_request_ids(["r1"], excluding=[1]) == 1
    assert store.count_shared_request_ids(["r1"], excluding=[1, 3]) == 0
