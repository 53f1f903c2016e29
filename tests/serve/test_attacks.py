"""Attacks on a real server on loopback (issue 15), one test per way in.

Each test plays the attacker against what driftloop really stores and serves: a bundle that
names code to import, names that try to become paths.
"""

from __future__ import annotations

import dataclasses
import textwrap

import httpx
import numpy as np
import pandas as pd
import pytest

from driftloop.config import Settings
from driftloop.errors import UsageError
from driftloop.registry import Registry
from driftloop.serve.app import create_app
from driftloop.serve.server import BackgroundServer
from quick_model import quick_version

EVIL = textwrap.dedent("""
    import pathlib, os
    pathlib.Path(os.environ["DRIFTLOOP_TEST_MARKER"]).write_text("imported")  # the payload
    from driftloop.models.architectures import make_mlp
    def make(inputs, n_outputs):
        return make_mlp(inputs, n_outputs)
""")


@pytest.fixture
def frame() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True).frame.rename(columns={"target": "label"})
    return data.iloc[:, list(range(5)) + [data.shape[1] - 1]]


def _quick_registry(tmp_path, frame, **serve) -> tuple[Settings, Registry]:
    """A store of its own in ``tmp_path`` holding a quick model "m" under production."""
    settings = Settings.load(overrides={"home": str(tmp_path / "home"), "serve": serve},
                             environ={}, cwd=tmp_path)
    _, weights, bundle = quick_version(frame, steps=5)
    registry = Registry.open(settings)
    registry.register("m", run_id=None, bundle=bundle, weights=weights, metrics={},
                      actor="test", reason="test")
    registry.promote("m", 1, to="production", force=True, reason="test")
    return settings, registry


def _register_with_factory(settings: Settings, frame: pd.DataFrame, factory: str) -> None:
    """A version whose bundle names ``factory`` — what anyone who can write the store (or
    register a model) can do."""
    _, weights, bundle = quick_version(frame, steps=5)
    with Registry.open(settings) as registry:
        registry.register("victim", run_id=None, bundle=dataclasses.replace(bundle, model=factory),
                          weights=weights, metrics={}, actor="attacker", reason="plant a factory")
        registry.promote("victim", 1, to="production", force=True, reason="test")


def _ready(settings: Settings) -> httpx.Response:
    registry = Registry.open(settings)
    server = BackgroundServer(create_app(registry, ["victim"], settings.serve)).start()
    try:
        for _ in range(100):
            answer = httpx.get(server.url + "/v2/health/ready")
            if answer.status_code == 200 or "errors" in answer.json():
                return answer
            import time

            time.sleep(0.05)
        return answer
    finally:
        server.stop()
        registry.close()


def test_a_stored_version_naming_an_unlisted_factory_is_refused_before_its_module_runs(
        tmp_path, monkeypatch, frame, caplog):
    (tmp_path / "evil_factory.py").write_text(EVIL)
    marker = tmp_path / "payload-ran"
    monkeypatch.setenv("DRIFTLOOP_TEST_MARKER", str(marker))
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = Settings.load(overrides={"home": str(tmp_path / "home")}, environ={}, cwd=tmp_path)
    _register_with_factory(settings, frame, "evil_factory:make")

    answer = _ready(settings)

    assert answer.status_code == 503
    error = answer.json()["errors"]["victim"]
    assert error.startswith("cannot load victim v1 (error ") and "evil" not in error
    error_id = error.split("(error ")[1].split(";")[0]
    logged = [r.getMessage() for r in caplog.records if error_id in r.getMessage()]
    assert len(logged) == 1 and "evil_factory:make" in logged[0]  # the detail: in the log
    assert "security.model_factories" in logged[0]
    assert not marker.exists()  # the module was never imported
    with Registry.open(settings) as registry, pytest.raises(UsageError, match="not allowed"):
        registry.load("victim", 1)
    assert not marker.exists()


def test_a_factory_the_operator_listed_loads_and_serves(tmp_path, monkeypatch, frame):
    (tmp_path / "evil_factory.py").write_text(EVIL)
    marker = tmp_path / "payload-ran"
    monkeypatch.setenv("DRIFTLOOP_TEST_MARKER", str(marker))
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = Settings.load(overrides={"home": str(tmp_path / "home"),
                                        "security": {"model_factories": ["evil_factory"]}},
                             environ={}, cwd=tmp_path)
    _register_with_factory(settings, frame, "evil_factory:make")

    answer = _ready(settings)

    assert answer.status_code == 200, answer.text
    assert answer.json()["models"] == {"victim": 1}
    assert marker.exists()  # allowed: the operator's choice


@pytest.mark.parametrize("name", ["../etc", "a/b", "x\ny", "..", ".hidden", "a..b", "", "é"])
def test_path_like_model_names_are_refused_before_anything_is_stored(tmp_path, frame, name):
    settings = Settings.load(overrides={"home": str(tmp_path / "home")}, environ={}, cwd=tmp_path)
    _, weights, bundle = quick_version(frame, steps=1)
    with Registry.open(settings) as registry:
        with pytest.raises(UsageError, match="model name"):
            registry.register(name, run_id=None, bundle=bundle, weights=weights, metrics={},
                              actor="attacker", reason="path in a name")
        assert registry.versions() == []


def test_store_errors_reach_the_log_not_the_client(tmp_path, frame, caplog):
    """The store breaks under a running server (its tables dropped by someone else): the
    clients get an error id, never the database's words."""
    import sqlite3

    settings, registry = _quick_registry(tmp_path, frame, poll_s=0.1, key_cache_s=0.0)
    row = {k: float(v) for k, v in frame.drop(columns="label").iloc[0].items()}
    server = BackgroundServer(create_app(registry, ["m"], settings.serve)).start().wait_ready()
    try:
        rid = httpx.post(server.url + "/v1/models/m/predict",
                         json={"instances": [row]}).json()["request_id"]
        with sqlite3.connect(settings.store_url.removeprefix("sqlite:///")) as conn:
            for table in ("feedback", "prediction_log", "alias_moves"):
                conn.execute(f"DROP TABLE {table}")
        answers = [httpx.post(server.url + "/v1/feedback",
                              json={"request_id": "unknown-id", "label": 1})]
        import time

        time.sleep(0.5)  # a few alias polls fail
        answers.append(httpx.get(server.url + "/v2/health/ready"))
        answers.append(httpx.post(server.url + "/v1/models/m/predict", json={"instances": [row]}))
        answers.append(httpx.post(server.url + "/v1/feedback", json={"request_id": rid,
                                                                    "label": 1}))
    finally:
        server.stop()
        registry.close()
    assert answers[0].status_code == 503
    for answer in answers:
        text = answer.text.lower()
        assert "no such table" not in text and "sqlite" not in text and "select" not in text
    assert "error " in answers[0].json()["error"]["message"]
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "no such table" in logged  # the operator still learns what broke


def test_logged_pii_cannot_be_recovered_by_trying_every_value(served_model):
    """The attacker holds the prediction log (a database dump) and the list of every possible
    e-mail: an unkeyed hash would give each one back; the store's secret key does not."""
    import hashlib
    import os
    import time

    from driftloop.data.hashing import hash_value
    from driftloop.store.secrets import PII_KEY_OBJECT, pii_key

    from .conftest import MODEL, instances, start_server

    rows = served_model.frame.iloc[200:210]
    server = start_server(served_model)
    try:
        answer = httpx.post(f"{server.url}/v1/models/{MODEL}/predict",
                            json={"instances": instances(rows)})
        ids = set(answer.json()["request_ids"])
        deadline = time.monotonic() + 10
        logged: list = []
        while len(logged) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.05)
            logged = [p for p in served_model.registry.store.list_predictions(MODEL, limit=5000)
                      if p.request_id in ids]
    finally:
        server.stop()
    dumped = {p.features["contact"] for p in logged}
    candidates = [f"user{i}@example.com" for i in range(100)]
    assert not dumped & {hashlib.sha256(c.encode()).hexdigest() for c in candidates}
    assert not dumped & set(candidates)
    key = pii_key("", served_model.registry.artifacts)
    assert dumped <= {hash_value(c, key) for c in candidates}  # still joins under the key
    where = served_model.registry.artifacts.named_url(PII_KEY_OBJECT)
    assert oct(os.stat(where).st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("insecure,expected", [(False, 401), (True, 200)])
def test_a_server_built_for_an_exposed_address_is_closed_without_keys(tmp_path, frame, insecure,
                                                                      expected):
    """Open by default only on loopback: the app made for 0.0.0.0 refuses predictions while no
    key exists (the CLI refuses to start it at all) unless --insecure."""
    settings, registry = _quick_registry(tmp_path, frame, host="0.0.0.0", insecure=insecure)
    with registry:
        row = {k: float(v) for k, v in frame.drop(columns="label").iloc[0].items()}
        app = create_app(registry, ["m"], settings.serve)
        with BackgroundServer(app) as server:  # reached on loopback, built for 0.0.0.0
            server.wait_ready()
            answer = httpx.post(server.url + "/v1/models/m/predict", json={"instances": [row]})
    assert answer.status_code == expected, answer.text


# -- feedback cannot poison retraining (issue 15) --------------------------------------------

@pytest.fixture
def keyed(tmp_path, frame):
    """A served quick model in a store of its own, with keys for two labellers and a client."""
    from driftloop.serve.auth import create_key

    settings, registry = _quick_registry(tmp_path, frame, key_cache_s=0.0, log_flush_ms=50.0)
    keys = {name: create_key(registry.store, registry.audit, name, role, actor="test")
            for name, role in [("client", "predict"), ("other-client", "predict"),
                               ("labeller-a", "feedback"), ("labeller-b", "feedback")]}
    server = BackgroundServer(create_app(registry, ["m"], settings.serve)).start().wait_ready()
    rows = [{k: float(v) for k, v in r.items()}
            for r in frame.drop(columns="label").iloc[:4].to_dict("records")]
    yield server.url, registry, {n: k.secret for n, k in keys.items()}, rows
    server.stop()
    registry.close()


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_forged_feedback_for_a_request_no_one_answered_is_a_404(keyed):
    url, registry, keys, rows = keyed
    rid = httpx.post(url + "/v1/models/m/predict", json={"instances": rows[:1]},
                     headers=_as(keys["client"])).json()["request_id"]
    forged = httpx.post(url + "/v1/feedback", headers=_as(keys["labeller-a"]),
                        json=[{"request_id": rid, "label": 1},
                              {"request_id": "f" * 32, "label": 1}])
    assert forged.status_code == 404 and forged.json()["error"]["code"] == "unknown_request"
    assert registry.store.feedback_of([rid, "f" * 32]) == {}  # all or nothing


def test_a_predict_key_cannot_label_what_it_predicted(keyed):
    url, registry, keys, rows = keyed
    rid = httpx.post(url + "/v1/models/m/predict", json={"instances": rows[:1]},
                     headers=_as(keys["client"])).json()["request_id"]
    answer = httpx.post(url + "/v1/feedback", json={"request_id": rid, "label": 1},
                        headers=_as(keys["client"]))
    assert answer.status_code == 403
    assert registry.store.feedback_of([rid]) == {}


def test_v2_clients_choosing_one_id_never_collide(keyed):
    url, registry, keys, rows = keyed
    inputs = [{"name": k, "shape": [1], "datatype": "FP64", "data": [v]}
              for k, v in rows[0].items()]
    answers = [httpx.post(url + "/v2/models/m/infer", json={"id": "order-1", "inputs": inputs},
                          headers=_as(keys[name])).json()
               for name in ("client", "other-client")]
    assert [a["id"] for a in answers] == ["order-1", "order-1"]  # echoed, as V2 says
    server_ids = [a["parameters"]["request_id"] for a in answers]
    assert len(set(server_ids)) == 2 and "order-1" not in server_ids
    import time

    deadline = time.monotonic() + 10
    while len(registry.store.models_of_requests(server_ids)) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    from sqlalchemy import select

    from driftloop.store.tables import PredictionLogEntry

    with registry.store.session(write=False) as session:
        refs = dict(session.execute(select(PredictionLogEntry.request_id,
                                           PredictionLogEntry.client_ref)
                                    .where(PredictionLogEntry.request_id.in_(server_ids))).all())
    prefixes = [keys[n].split("_")[1] for n in ("client", "other-client")]
    assert [refs[i] for i in server_ids] == [f"{p}:order-1" for p in prefixes]
    labelled = httpx.post(url + "/v1/feedback", headers=_as(keys["labeller-a"]),
                          json={"request_id": server_ids[0], "label": 1})
    assert labelled.status_code == 202
    assert registry.store.feedback_of(server_ids) == {
        server_ids[0]: [(1, keys["labeller-a"].split("_")[1])]}  # the other one untouched


def test_a_conflicting_label_is_counted_and_held_out_not_a_silent_overwrite(keyed):
    url, registry, keys, rows = keyed
    rids = httpx.post(url + "/v1/models/m/predict", json={"instances": rows[:2]},
                      headers=_as(keys["client"])).json()["request_ids"]
    first = httpx.post(url + "/v1/feedback", headers=_as(keys["labeller-a"]),
                       json=[{"request_id": r, "label": 1} for r in rids])
    assert first.json() == {"recorded": 2, "conflicts": []}
    again = httpx.post(url + "/v1/feedback", headers=_as(keys["labeller-a"]),
                       json={"request_id": rids[1], "label": 1})  # the same label: fine
    assert again.json()["conflicts"] == []
    flipped = httpx.post(url + "/v1/feedback", headers=_as(keys["labeller-b"]),
                         json={"request_id": rids[0], "label": 0})
    assert flipped.status_code == 202 and flipped.json()["conflicts"] == [rids[0]]
    assert registry.store.labels_for(rids) == {rids[1]: 1}  # held out, not overwritten
    sources = {label: source for label, source in registry.store.feedback_of([rids[0]])[rids[0]]}
    assert sources == {1: keys["labeller-a"].split("_")[1], 0: keys["labeller-b"].split("_")[1]}
    import time

    deadline = time.monotonic() + 10
    while {r.label for r in registry.store.labelled_rows("m")} != {1}:
        assert time.monotonic() < deadline  # the log row of rids[1] arrives; rids[0] never
        time.sleep(0.05)
    metrics = httpx.get(url + "/metrics").text
    prefix_b = keys["labeller-b"].split("_")[1]
    assert f'driftloop_feedback_conflicts_total{{source="{prefix_b}"}} 1.0' in metrics


@pytest.mark.parametrize("flipped", [0.0, 0.3])
def test_the_loop_screens_labels_by_sender_and_names_the_one_that_flips(keyed, frame, flipped):
    """Two labellers send ground truth through the real server; one flips a share of its
    labels. The loop's screen (what it runs before retraining) names that sender — and
    nobody when both are honest."""
    import time

    from driftloop.config import LoopSettings
    from driftloop.loop.screening import screen_window

    url, registry, keys, _ = keyed
    features = frame.drop(columns="label")
    rows = [{k: float(v) for k, v in r.items()} for r in features.to_dict("records")]
    rids: list[str] = []
    for start in range(0, len(rows), 200):
        body = {"instances": rows[start:start + 200]}
        rids += httpx.post(url + "/v1/models/m/predict", json=body,
                           headers=_as(keys["client"])).json()["request_ids"]
    rng = np.random.default_rng(0)
    truth = frame["label"].to_numpy()
    for part, name in ((slice(0, None, 2), "labeller-a"), (slice(1, None, 2), "labeller-b")):
        labels = truth[part].copy()
        if name == "labeller-b" and flipped:
            flip = rng.uniform(size=len(labels)) < flipped
            labels[flip] = 1 - labels[flip]
        items = [{"request_id": r, "label": int(y)} for r, y in zip(rids[part], labels,
                                                                     strict=True)]
        assert httpx.post(url + "/v1/feedback", json=items,
                          headers=_as(keys[name])).status_code == 202
    deadline = time.monotonic() + 20
    while len(registry.store.labelled_rows("m")) < len(rids):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    screen = screen_window(registry, "m", registry.get("m", 1), LoopSettings())
    assert screen is not None and screen.rows == len(rids)
    expected = [keys["labeller-b"].split("_")[1]] if flipped else []
    assert screen.flagged == expected, screen.message()
    assert screen.held is bool(flipped)


@pytest.mark.parametrize("path", ["/v1/models/m/predict", "/v2/models/m/infer", "/v1/feedback",
                                  "/ui/api/login"])
def test_an_oversized_body_is_refused_before_it_is_read(keyed, path):
    """10 MB announced and none of it sent: every route answers 413 at once (it would wait
    for the body otherwise) — before any work, and on the dashboard's routes too."""
    import socket
    from urllib.parse import urlsplit

    from driftloop.ui import mount_dashboard

    url, registry, keys, _ = keyed
    server = BackgroundServer(create_app(registry, ["m"], registry.settings.serve,
                                         mount=[mount_dashboard])).start()
    try:
        where = urlsplit(server.url)
        with socket.create_connection((where.hostname, where.port), timeout=10) as sock:
            key = keys["labeller-a" if path == "/v1/feedback" else "client"]
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         f"Authorization: Bearer {key}\r\n"
                         "Content-Length: 10000000\r\n\r\n".encode())
            answer = sock.recv(4096).decode()
    finally:
        server.stop()
    assert answer.split("\r\n", 1)[0] in ("HTTP/1.1 413 Request Entity Too Large",
                                          "HTTP/1.1 413 Content Too Large"), answer

# -- erasure reaches served traffic: subjects named by "ids" (issue 15) ------------------------

SUBJECT_A, SUBJECT_B, LOOKALIKE = 4242424242, "subject-b@example.org", 42424242420


def _subject_server(tmp_path, frame):
    """A registry of one quick model in its own home, and a real server for it on loopback."""
    settings, registry = _quick_registry(tmp_path, frame, log_flush_ms=20.0, key_cache_s=0.0)
    server = BackgroundServer(create_app(registry, ["m"], settings.serve)).start().wait_ready()
    return settings, registry, server


def _rows(frame, start, n):
    return [{k: float(v) for k, v in row.items()}
            for row in frame.drop(columns="label").iloc[start:start + n].to_dict("records")]


def _wait_logged(store, n):
    import time

    deadline = time.monotonic() + 10
    while store.count_predictions() < n and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.count_predictions() == n


def test_erasing_a_served_subject_removes_exactly_their_rows_feedback_and_snapshot_rows(
        tmp_path, frame):
    """Two subjects and anonymous clients predict with ``ids`` and send feedback; the loop
    snapshots the labelled rows; erasing subject A (from a second opening of the shared store,
    as another host would) removes A's log rows, feedback and snapshot rows and nothing of B's,
    the look-alike's or the anonymous ones; no clear id is stored anywhere; the chain verifies."""
    import io
    import sqlite3

    import pyarrow.parquet as pq

    from driftloop.data.hashing import hash_value
    from driftloop.data.subjects import subjects_of
    from driftloop.governance.erasure import erase_subject
    from driftloop.loop.dataset import assemble
    from driftloop.store.secrets import pii_key

    requests = [  # (first row, ids or None): A sends its id as a number and as text
        (0, [SUBJECT_A] * 30),
        (30, [str(SUBJECT_A)] * 10 + [SUBJECT_B] * 10),
        (50, [SUBJECT_B] * 20 + [None] * 20),
        (90, [LOOKALIKE] * 5 + [None] * 35),
        (130, None),
    ]
    settings, registry, server = _subject_server(tmp_path, frame)
    owners: dict[str, object] = {}  # request id -> subject id sent (None: anonymous)
    try:
        for start, ids in requests:
            body = {"instances": _rows(frame, start, 40 if ids is None else len(ids))}
            if ids is not None:
                body["ids"] = ids
            answer = httpx.post(f"{server.url}/v1/models/m/predict", json=body)
            assert answer.status_code == 200, answer.text
            rids = answer.json()["request_ids"]
            owners.update(zip(rids, ids or [None] * len(rids), strict=True))
        feedback = [{"request_id": rid, "label": i % 2} for i, rid in enumerate(owners)]
        answer = httpx.post(f"{server.url}/v1/feedback", json=feedback)
        assert answer.status_code == 202 and answer.json()["recorded"] == 170, answer.text
        # the model never saw the ids: the same instances answer the same without them
        with_ids = httpx.post(f"{server.url}/v1/models/m/predict",
                              json={"instances": _rows(frame, 0, 2), "ids": [1, 2]}).json()
        without = httpx.post(f"{server.url}/v1/models/m/predict",
                             json={"instances": _rows(frame, 0, 2)}).json()
        assert with_ids["probabilities"] == without["probabilities"]
        _wait_logged(registry.store, len(owners) + 4)
    finally:
        server.stop()

    key = pii_key(settings.serve.pii_hash_key, registry.artifacts)
    hash_a, hash_b = hash_value(str(SUBJECT_A), key), hash_value(SUBJECT_B, key)
    data = assemble(registry.store, "m", target="label", loop=settings.loop,
                    artifacts=registry.artifacts, tag="t1")
    names = [data.train_name, data.holdout_name]
    before = [pq.read_table(io.BytesIO(registry.artifacts.read_named(n))) for n in names]
    recorded = [s for t in before for s in subjects_of(t.schema, t.num_rows)]
    assert recorded.count(hash_a) == 40 and recorded.count(hash_b) == 30
    assert all(c in frame.columns for t in before for c in t.column_names)  # no subject column
    registry.close()

    result = erase_subject(settings, str(SUBJECT_A), actor="dpo")

    mine = {rid for rid, who in owners.items() if str(who) == str(SUBJECT_A)}
    assert (result.prediction_log, result.by_subject, result.feedback) == (40, 40, 40)
    assert sum(result.snapshots.values()) == 40
    with Registry.open(settings) as registry:
        store = registry.store
        kept = store.list_predictions("m", limit=5000)
        assert {p.request_id for p in kept} == (set(owners) - mine) | set(with_ids["request_ids"]
                                                                         + without["request_ids"])
        left = {rid for rid in owners if rid not in mine}
        assert {f.request_id for f in store.list_feedback(limit=5000)} == left
        assert [r.request_id for r in store.log_rows_of_subjects([hash_a])] == []
        assert len(store.log_rows_of_subjects([hash_b])) == 30
        assert len(store.log_rows_of_subjects([hash_value(str(LOOKALIKE), key)])) == 5
        files = [registry.artifacts.read_named(n) for n in names]
        assert registry.audit.verify().ok
        entry = registry.audit.entries(action="erase")[-1]
        assert entry.details["prediction_log_by_subject"] == 40
    after = [pq.read_table(io.BytesIO(data)) for data in files]
    recorded = [s for t in after for s in subjects_of(t.schema, t.num_rows)]
    assert hash_a not in recorded and recorded.count(hash_b) == 30
    assert recorded.count(hash_value(str(LOOKALIKE), key)) == 5
    features = list(frame.drop(columns="label").columns)

    def rows_of(tables):
        return {tuple(r[c] for c in features) for t in tables for r in t.to_pylist()}

    a_rows = {tuple(r[c] for c in features) for r in _rows(frame, 0, 40)}
    assert rows_of(after) == rows_of(before) - a_rows and len(rows_of(before)) == 170
    with sqlite3.connect(settings.store_url.removeprefix("sqlite:///")) as conn:
        dump = "\n".join(conn.iterdump())
    assert hash_b in dump
    for clear in (str(SUBJECT_A), SUBJECT_B, str(LOOKALIKE)):
        assert clear not in dump  # the log, the feedback, the audit chain: hashes only
        assert not any(clear.encode() in data for data in files)


BAD_IDS = [
    [1], [1, 2, 3], "c-1", {"0": 1}, [True, 2], [1.5, 2], [42.0, 1], [[1], 2], [{"a": 1}, 2],
    ["", 2], ["   ", 2], ["x" * 129, 2], [10 ** 130, 2],
]


def test_malformed_ids_are_a_422_naming_ids_and_nothing_is_logged(tmp_path, frame):
    settings, registry, server = _subject_server(tmp_path, frame)
    try:
        answers = [httpx.post(f"{server.url}/v1/models/m/predict",
                              json={"instances": _rows(frame, 0, 2), "ids": ids})
                   for ids in BAD_IDS]
        ok = [httpx.post(f"{server.url}/v1/models/m/predict",
                         json={"instances": _rows(frame, 0, 2), "ids": ids})
              for ids in (["x" * 128, None], [-7, "7"], None)]
        _wait_logged(registry.store, 6)  # only the accepted requests' rows
    finally:
        server.stop()
        registry.close()
    for ids, answer in zip(BAD_IDS, answers, strict=True):
        assert answer.status_code == 422, (ids, answer.text)
        error = answer.json()["error"]
        assert error["code"] == "bad_ids" and error["fields"] == ["ids"], (ids, error)
        assert "'ids'" in error["message"]
    assert [a.status_code for a in ok] == [200, 200, 200]
