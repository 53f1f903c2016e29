"""The dashboard's JSON endpoints and admin actions, over real HTTP against the live server."""

from __future__ import annotations

import httpx
import pytest

from driftloop.registry.evidence import data_checks, evaluations

from .conftest import (
    BADGES,
    EPOCHS,
    HOOK_SECRET,
    LABELLED_ROWS,
    LABELLED_WINDOWS,
    MODEL,
    SHIFTED_WINDOWS,
    WINDOWS,
    WORKERS,
)

pytestmark = pytest.mark.slow  # the session fixture trains and retrains a model


def _get(d, path: str, **params) -> httpx.Response:
    """A read with the dashboard's read key (keys exist in this store, so reads need one)."""
    return httpx.get(d.url + path, params=params, timeout=30,
                     headers={"Authorization": f"Bearer {d.read_key}"})


def _post(d, path: str, body=None, key: str | None = None, raw: bytes | None = None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if raw is not None:
        return httpx.post(d.url + path, content=raw, headers=headers, timeout=60)
    return httpx.post(d.url + path, json=body, headers=headers, timeout=60)


def test_the_store_holds_what_the_real_runs_wrote(dashboard):
    """The story the fixture means to tell, checked where it was written: only the shifted
    windows drift, their alerts reached the webhook, and the loop ran twice."""
    store = dashboard.registry.store
    windows = store.list_windows(MODEL)
    assert [w.drift_detected for w in windows] == [False] * (WINDOWS - SHIFTED_WINDOWS) + [
        True] * SHIFTED_WINDOWS
    alerts = store.list_alerts()
    assert {a.kind for a in alerts if a.model_name == MODEL} >= {"dataset_drift"}
    assert len(dashboard.hook.received) == len(alerts)
    assert all(HOOK_SECRET in a.deliveries[0]["url"] for a in alerts)
    runs = store.list_loop_runs(MODEL)
    assert [r.outcome for r in runs] == ["no_trigger", "kept"]
    assert runs[-1].trigger["kind"] == "drift" and runs[-1].challenger_version == 2


def test_models_lists_every_model_with_aliases_versions_metrics_and_health(dashboard):
    d = dashboard
    r = _get(d, "/ui/api/models")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    models = {m["name"]: m for m in r.json()["models"]}
    assert list(models) == ["cancer", "credit", "quiet", "spare"]
    assert {n: m["health"]["status"] for n, m in models.items()} == BADGES
    assert models["cancer"]["health"]["label"] == "⚠ drifting"
    (credit,) = d.registry.store.list_windows("credit")
    realised, test = credit.realised["accuracy"]["value"], d.registry.get("credit", 1).metrics[
        "accuracy"]
    drop = d.settings.monitor.performance_drop
    assert models["credit"]["health"]["reason"].startswith(
        f"latest window #{credit.id}: realised accuracy {realised:.3f} is "
        f"{test - realised:.3f} below the test {test:.3f} (allowed {drop:.3f})")
    cancer = models["cancer"]
    holder = d.registry.holder(MODEL, "production")
    assert {"alias": "production", "version": holder.version} == {
        k: cancer["aliases"][0][k] for k in ("alias", "version")}
    stored = d.registry.versions(MODEL)
    assert [v["version"] for v in cancer["versions"]] == [v.version for v in reversed(stored)]
    v1 = next(v for v in cancer["versions"] if v["version"] == 1)
    assert v1["metrics"]["accuracy"] == stored[0].metrics["accuracy"]
    assert v1["metrics"]["ece"] == stored[0].metrics["ece"]
    assert cancer["versions"][0]["parent"] == 1  # v2 was retrained from v1
    assert cancer["latest_window"]["id"] == d.window_ids[-1]


def test_version_holds_the_stored_evaluation_curve_checks_card_and_lineage(dashboard):
    d = dashboard
    body = _get(d, f"/ui/api/models/{MODEL}/versions/1").json()
    record = d.registry.get(MODEL, 1)
    evaluation = evaluations(d.registry.store, d.registry.artifacts, record)[0]
    assert body["version"]["metrics"]["accuracy"] == record.metrics["accuracy"]
    assert body["evaluation"]["metrics"]["accuracy"] == evaluation.body["metrics"]["accuracy"]
    assert body["evaluation"]["slices"]["slices"] == evaluation.body["slices"]["slices"]
    assert body["epochs"] == d.registry.store.run_metrics(record.run_id)
    assert len(body["epochs"]) == EPOCHS
    checks = data_checks(d.registry.store, d.registry.artifacts, record)
    assert [c["report"] for c in body["data_checks"]] == [c.report.artifact_sha256
                                                          for c in checks]
    assert body["card"]["model"] == MODEL and "model_details" in body["card"]["sections"]
    assert body["run"]["world_size"] == WORKERS == d.registry.store.get_run(
        record.run_id).world_size
    assert set(body["datasets"]) >= {"train", "val", "test"}
    assert body["children"] == [2] and body["ancestors"] == []
    assert any(e["action"] == "register" for e in body["audit"])
    # v2 is the loop's challenger: trained from v1, evaluated, refused by the gates
    v2 = _get(d, f"/ui/api/models/{MODEL}/versions/2").json()
    assert v2["ancestors"] == [1] and v2["aliases"] == []
    challenger = evaluations(d.registry.store, d.registry.artifacts, d.registry.get(MODEL, 2))
    assert v2["evaluation"]["metrics"] == challenger[0].body["metrics"]
    assert v2["run"]["params"]["epochs"] == EPOCHS  # v1's recipe


def test_reliability_diagram_is_the_stored_png_and_a_missing_one_is_404(dashboard):
    d = dashboard
    r = _get(d, f"/ui/api/models/{MODEL}/versions/1/reliability.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content[:8] == b"\x89PNG\r\n\x1a\n"
    missing = _get(d, "/ui/api/models/credit/versions/1/reliability.png")
    assert missing.status_code == 404
    assert "no reliability diagram" in missing.json()["error"]["message"]


def test_monitoring_has_every_window_the_drift_the_bounds_and_the_alerts(dashboard):
    d = dashboard
    body = _get(d, f"/ui/api/models/{MODEL}/monitoring").json()
    stored = d.registry.store.list_windows(MODEL)
    assert [w["id"] for w in body["windows"]] == [w.id for w in stored] == d.window_ids
    assert len(body["windows"]) == WINDOWS
    last, first = body["windows"][-1], body["windows"][0]
    assert last["drift_detected"] is True and not first["drift_detected"]
    assert last["share_drifted"] == stored[-1].share_drifted
    assert body["latest"]["drifted"] == [f["name"] for f in stored[-1].report["features"]
                                         if f["drifted"]]
    assert last["estimated"]["value"] == stored[-1].estimated["accuracy"]["value"]
    assert last["test"] == d.test_accuracy
    assert last["bound"] == pytest.approx(d.test_accuracy - 0.05)
    assert [w["realised"] and w["realised"]["labelled"] for w in body["windows"]] == [
        LABELLED_ROWS if i in LABELLED_WINDOWS else None for i in range(WINDOWS)]
    assert [w["realised"] and w["realised"]["value"] for w in body["windows"]] == [
        w.realised and w.realised["accuracy"]["value"] for w in stored]
    assert body["health"]["status"] == "drifting"
    assert body["latest"]["id"] == d.window_ids[-1]
    # a histogram per feature and per model output (the prediction drift's columns)
    outputs = [o["name"] for o in stored[-1].report["prediction"]["outputs"]]
    assert outputs and set(body["latest"]["histograms"]) == {
        f["name"] for f in body["latest"]["feature_tests"]} | set(outputs)
    alerts = d.registry.store.list_alerts(MODEL)
    assert [a["message"] for a in body["alerts"]] == [a.message for a in reversed(alerts)]
    drift_alerts = [a for a in body["alerts"] if a["kind"] == "dataset_drift"]
    assert [a["window_id"] for a in drift_alerts] == d.window_ids[:-SHIFTED_WINDOWS - 1:-1]
    assert all(a["deliveries"] == [{"to": "http://127.0.0.1", "ok": True, "attempts": 1,
                                    "status": 200}] for a in body["alerts"])
    assert HOOK_SECRET in alerts[0].deliveries[0]["url"]  # the store holds the token ...
    text = _get(d, f"/ui/api/models/{MODEL}/monitoring").text
    assert "SECRET" not in text and d.hook.url not in text  # ... the dashboard does not show it
    few = _get(d, f"/ui/api/models/{MODEL}/monitoring", limit=3).json()
    assert [w["id"] for w in few["windows"]] == d.window_ids[-3:]


def test_window_drill_down_and_unknown_things_are_404_with_a_message(dashboard):
    d = dashboard
    window = _get(d, f"/ui/api/windows/{d.window_ids[0]}").json()
    assert window["id"] == d.window_ids[0] and window["drift_detected"] is False
    schema = d.registry.bundle(d.registry.get(MODEL, 1)).schema["features"]
    assert [f["name"] for f in window["feature_tests"]] == [f["name"] for f in schema]
    for path, words in [("/ui/api/windows/99999", "no monitor window 99999"),
                        ("/ui/api/models/nope/monitoring", "no model named 'nope'"),
                        (f"/ui/api/models/{MODEL}/versions/9", "has no version 9")]:
        r = _get(d, path)
        assert r.status_code == 404 and words in r.json()["error"]["message"], path
    assert _get(d, "/ui/api/windows/abc").status_code == 422
    huge = str(2**70)
    for path, params in [(f"/ui/api/windows/{huge}", {}),
                         (f"/ui/api/models/{MODEL}/versions/{huge}", {}),
                         (f"/ui/api/models/{MODEL}/versions/0/reliability.png", {}),
                         (f"/ui/api/models/{MODEL}/monitoring", {"limit": huge}),
                         ("/ui/api/audit", {"limit": -1}), ("/ui/api/loop", {"limit": 0})]:
        assert _get(d, path, **params).status_code == 422, path
    big = _post(d, f"/ui/api/models/{MODEL}/promote", {"version": 2**70, "alias": "production",
                "reason": "x"}, key=d.admin_key)
    assert big.status_code == 422 and "version number" in big.json()["error"]["message"]


def test_loop_and_audit_endpoints(dashboard):
    d = dashboard
    loop = _get(d, "/ui/api/loop", model=MODEL).json()
    stored = d.registry.store.list_loop_runs(MODEL)
    assert [r["id"] for r in loop["runs"]] == [r.id for r in reversed(stored)]
    quiet, kept = reversed(loop["runs"])
    assert quiet["outcome"] == "no_trigger" and quiet["trigger"] is None and quiet["gates"] == []
    assert kept["outcome"] == "kept" and kept["promoted"] is False
    shifted = d.registry.store.list_windows(MODEL)[-SHIFTED_WINDOWS:]
    assert kept["trigger"]["kind"] == "drift"
    assert kept["trigger"]["windows"] == [w.id for w in shifted]
    assert kept["trigger"]["share_drifted"] == [w.share_drifted for w in shifted]
    assert (kept["champion_version"], kept["challenger_version"]) == (1, 2)
    assert kept["gates"] == stored[-1].details["gates"]
    assert "card" in [g["name"] for g in kept["gates"] if not g["passed"]]
    assert [s["step"] for s in kept["steps"]][:4] == ["monitor", "trigger", "screen", "data"]
    assert kept["steps"][-1]["step"] == "decision"
    comparison = stored[-1].details["comparison"]
    assert (kept["accuracy_champion"], kept["accuracy_challenger"]) == (
        comparison["champion"], comparison["challenger"])
    assert _get(d, "/ui/api/loop", model="quiet").json()["runs"] == []
    audit = _get(d, "/ui/api/audit", limit=5).json()
    newest = d.registry.audit.entries(limit=5)
    assert [e["seq"] for e in audit["entries"]] == [e.seq for e in reversed(newest)]
    assert audit["total"] == d.registry.audit.anchor().entries
    keys = _get(d, "/ui/api/audit", action="key_created").json()["entries"]
    assert {e["details"]["role"] for e in keys} == {"admin", "predict", "read", "feedback"}
    verified = _post(d, "/ui/api/audit/verify", key=d.read_key).json()
    assert verified["ok"] is True and verified["entries"] == audit["total"]
    assert verified["anchor"] is None and "driftloop audit anchor" in verified["anchor_note"]


def test_admin_actions_need_an_admin_key_and_a_reason(dashboard):
    d = dashboard
    path = f"/ui/api/models/{MODEL}/promote"
    body = {"version": 2, "alias": "production", "reason": "better on recent data",
            "force": True}
    before = d.registry.audit.anchor().entries
    holder = d.registry.holder(MODEL, "production").version
    no_key = _post(d, path, body)
    assert no_key.status_code == 401
    assert "need an admin API key" in no_key.json()["error"]["message"]
    assert _post(d, path, body, key="dl_nothing_here").status_code == 401
    forbidden = _post(d, path, body, key=d.predict_key)
    assert forbidden.status_code == 403 and "role 'predict'" in forbidden.text
    for action in ("rollback", "deactivate"):
        assert _post(d, f"/ui/api/models/{MODEL}/{action}",
                     {"alias": "production", "reason": "x"}).status_code == 401
    no_reason = _post(d, path, {**body, "reason": "  "}, key=d.admin_key)
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["error"]["message"]
    assert _post(d, path, raw=b"{not json", key=d.admin_key).status_code == 400
    assert _post(d, path, {**body, "alias": "Prod 1"}, key=d.admin_key).status_code == 422
    assert _post(d, f"/ui/api/models/{MODEL}/delete", body, key=d.admin_key).status_code == 404
    gated = _post(d, path, {**body, "force": False}, key=d.admin_key)
    assert gated.status_code == 409 and "gate(s) failed" in gated.json()["error"]["message"]
    assert d.registry.holder(MODEL, "production").version == holder
    assert d.registry.audit.anchor().entries == before  # nothing refused was audited as a move


def test_admin_promote_and_rollback_with_a_key_are_audited(dashboard):
    d = dashboard
    prefix = d.admin_key.split("_")[1]
    done = _post(d, "/ui/api/models/spare/promote", {"version": 1, "alias": "staging",
                 "reason": "try it in staging", "force": True}, key=d.admin_key)
    assert done.status_code == 200, done.text
    assert d.registry.holder("spare", "staging").version == 1
    entry = d.registry.audit.entries(subject="spare:v1", action="promote")[-1]
    assert entry.seq == done.json()["audit_seq"]
    assert entry.actor == f"api_key:{prefix}" and entry.details["reason"] == "try it in staging"
    nothing = _post(d, "/ui/api/models/spare/rollback", {"alias": "staging", "reason": "undo"},
                    key=d.admin_key)
    assert nothing.status_code == 422 and "only one holder" in nothing.json()["error"]["message"]


def test_deactivate_goes_through_the_registry_function(dashboard):
    d = dashboard
    from driftloop.registry import aliases

    r = _post(d, "/ui/api/models/credit/deactivate", {"alias": "production",
              "reason": "stop serving it"}, key=d.admin_key)
    if not hasattr(aliases, "deactivate"):
        assert r.status_code == 501 and "not available" in r.json()["error"]["message"]
        return
    assert r.status_code == 200, r.text
    assert d.registry.holder("credit", "production") is None
    assert d.registry.audit.entries(action="deactivate")[-1].details.get("reason") == (
        "stop serving it")


# -- who may read (issue 15): keys exist in this store, so every read needs one -------------

READS = ["/ui/api/models", f"/ui/api/models/{MODEL}/versions/1",
         f"/ui/api/models/{MODEL}/versions/1/reliability.png",
         f"/ui/api/models/{MODEL}/monitoring", "/ui/api/windows/1", "/ui/api/loop",
         "/ui/api/audit"]


@pytest.mark.parametrize("path", READS)
def test_every_dashboard_read_needs_a_read_or_admin_key(dashboard, path):
    d = dashboard
    anonymous = httpx.get(d.url + path, timeout=30)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json()["error"]["code"] == "unauthorized"
    assert "role read" in anonymous.json()["error"]["message"]
    assert MODEL not in anonymous.text  # nothing of the store leaks into the refusal
    bogus = httpx.get(d.url + path, headers={"X-API-Key": "dl_nope_x"}, timeout=30)
    assert bogus.status_code == 401
    predict_only = httpx.get(d.url + path, headers={"X-API-Key": d.predict_key}, timeout=30)
    assert predict_only.status_code == 403 and "role 'predict'" in predict_only.text
    for key in (d.read_key, d.admin_key):
        assert httpx.get(d.url + path, headers={"X-API-Key": key},
                         timeout=30).status_code == 200
    verify = httpx.post(d.url + "/ui/api/audit/verify", timeout=30)
    assert verify.status_code == 401  # recomputing the chain is not free: not for anyone


def test_the_page_shells_hold_no_data_and_stay_open(dashboard):
    shell = httpx.get(dashboard.url + "/", timeout=30)
    assert shell.status_code == 200 and MODEL not in shell.text


def test_login_keeps_the_key_in_an_httponly_cookie_not_the_url(dashboard):
    d = dashboard
    with httpx.Client(base_url=d.url, timeout=30) as browser:
        refused = browser.post("/ui/api/login", json={"key": d.predict_key})
        assert refused.status_code == 403 and "set-cookie" not in refused.headers
        assert browser.post("/ui/api/login", json={"key": "dl_x_y"}).status_code == 401
        assert browser.post("/ui/api/login", json={}).status_code == 422
        done = browser.post("/ui/api/login", json={"key": d.read_key})
        assert done.status_code == 200 and done.json() == {"role": "read"}
        cookie = done.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        assert browser.get("/ui/api/models").status_code == 200  # the cookie, no header
        # the cookie reads; it does not act: admin actions need the key in a header
        act = browser.post("/ui/api/models/spare/rollback",
                           json={"alias": "production", "reason": "cookie attack"})
        assert act.status_code == 401
        browser.post("/ui/api/logout")
        assert browser.get("/ui/api/models").status_code == 401


def test_an_oversized_login_body_is_refused_before_it_is_read(dashboard):
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(dashboard.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        # announce 10 MB and send none of it: the answer must come anyway
        sock.sendall(b"POST /ui/api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nContent-Length: 10000000\r\n\r\n")
        answer = sock.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 413"), answer
