"""What concurrent writers do to the store, on SQLite and on a real PostgreSQL server: rows that
commit out of id order, key names created twice at once, per-model locks across processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from driftloop.errors import ConflictError
from driftloop.store import Store, utcnow
from process_barrier import BARRIER

pytestmark = pytest.mark.slow


def _row(i: int) -> dict:
    return {"request_id": f"r{i}", "model_name": "m", "version": 1, "at": utcnow(),
            "features": {}, "output": {}}


def _window(store: Store, ids: list[int]):
    return store.add_window(
        log_ids=ids, model_name="m", version=1, first_log_id=ids[0], last_log_id=ids[-1],
        start_at=utcnow(), end_at=utcnow(), rows=len(ids), status="ok", drift_detected=False,
        share_drifted=0.0, prediction_drift=False, report={}, estimated={})


def test_a_row_that_commits_after_higher_ids_is_windowed_not_skipped(postgres_url: str) -> None:
    """Server A takes log id 1 but commits after server B's ids 2..6 were windowed: a max-id
    cursor would skip id 1 for good; claimed rows leave it for the next window."""
    with Store.open(postgres_url) as store, store.engine.connect() as slow_writer:
        slow_writer.execute(text(
            "INSERT INTO prediction_log (request_id, model_name, version, at, features, output) "
            "VALUES ('late', 'm', 1, now(), '{}', '{}')"))  # open transaction: not visible yet
        store.add_predictions([_row(i) for i in range(5)])
        seen = store.unwindowed_predictions("m")
        assert [r.request_id for r in seen] == [f"r{i}" for i in range(5)]
        first = _window(store, [r.id for r in seen])
        assert first.first_log_id == 2
        slow_writer.commit()
        late = store.unwindowed_predictions("m")
        assert [(r.id, r.request_id) for r in late] == [(1, "late")]
        second = _window(store, [r.id for r in late])
        assert [r.id for r in store.window_predictions(second.id)] == [1]
        assert store.unwindowed_predictions("m") == []
        with pytest.raises(ConflictError, match="already in another window"):
            _window(store, [1, 2])


KEY_WORKER = BARRIER + """
import sys
from driftloop.errors import UsageError
from driftloop.store import Store

url, go, prefix = sys.argv[1:4]
with Store.open(url) as store:
    barrier(go, 2)
    try:
        store.add_api_key("ci", "predict", prefix=prefix, key_sha256=prefix * 8)
        print("created")
    except UsageError as exc:
        print("refused:", exc)
"""


def test_two_processes_creating_one_key_name_get_one_key(tmp_path: Path,
                                                         any_store_url: str) -> None:
    with Store.open(any_store_url):
        pass  # migrated once, so the race is on the key, not on the schema
    procs = [subprocess.Popen([sys.executable, "-c", KEY_WORKER, any_store_url,
                               str(tmp_path / "go"), prefix], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for prefix in ("aaaaaaaa", "bbbbbbbb")]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outs.append(out.strip())
    assert sorted(o.split(":")[0] for o in outs) == ["created", "refused"], outs
    assert "an active key is already named 'ci'" in " ".join(outs)
    with Store.open(any_store_url) as store:
        assert [k.name for k in store.list_api_keys()] == ["ci"]


LOCK_WORKER = """
import sys, time
from pathlib import Path
from driftloop.store import Store

url, marker, hold_s = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
with Store.open(url) as store, store.model_lock("churn", wait_s=30):
    marker.write_text("held")
    time.sleep(hold_s)
"""


def _holder(url: str, marker: Path, hold_s: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", LOCK_WORKER, url, str(marker), str(hold_s)])
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None, "the holder exited before taking the lock"
        assert time.monotonic() < deadline, "the holder never took the lock"
        time.sleep(0.02)
    return proc


def test_a_model_lock_excludes_other_processes_and_dies_with_its_holder(
    tmp_path: Path, any_store_url: str
) -> None:
    with Store.open(any_store_url) as store:
        holder = _holder(any_store_url, tmp_path / "held-1", hold_s=2.0)
        with pytest.raises(ConflictError, match=r"working on model 'churn'.*waited 0.2 s"):
            with store.model_lock("churn", wait_s=0.2):
                pass
        with store.model_lock("other", wait_s=0.2):  # other models are not held
            pass
        started = time.monotonic()
        with store.model_lock("churn", wait_s=30):  # waits for the holder to finish
            assert time.monotonic() - started > 0.5
        assert holder.wait(timeout=30) == 0

        killed = _holder(any_store_url, tmp_path / "held-2", hold_s=600.0)
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        with store.model_lock("churn", wait_s=20):  # a killed holder leaves nothing behind
            assert store.model_lock_held("churn")


def test_text_the_database_cannot_hold_is_a_usage_error(any_store_url: str) -> None:
    """PostgreSQL text cannot hold NUL bytes: a name with one is refused with a message (a 4xx
    on HTTP), never a driver traceback; on SQLite it is simply not found."""
    from driftloop.errors import NotFoundError, UsageError

    with Store.open(any_store_url) as store:
        with pytest.raises((UsageError, NotFoundError)) as caught:
            store.get_version("p\x00q")
        if "postgresql" in any_store_url:
            assert isinstance(caught.value, UsageError)
            assert "NUL" in str(caught.value) and "nothing was stored" in str(caught.value)
