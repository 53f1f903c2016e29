"""The dashboard in real headless Chromium: every page loads without console errors and shows
what the store holds; a drift window shows as drifting; admin actions need an admin key.

Screenshots of each page are saved under the folder printed at the end of the run
($DRIFTLOOP_ARTIFACTS/dashboard when set).
"""

from __future__ import annotations

import re

import pytest

from driftloop.registry.evidence import data_checks, evaluations

from .conftest import BADGES, EPOCHS, MODEL, SHIFTED_WINDOWS, WINDOWS

pytestmark = pytest.mark.slow  # the session fixture trains and retrains a model


def _cells(page, selector: str) -> list[str]:
    return [t.strip() for t in page.locator(selector).all_inner_texts()]


def _four(x: float) -> str:
    """A number as the loop page writes it: 4 decimals, trailing zeros dropped."""
    return f"{x:.4f}".rstrip("0").rstrip(".")


def test_models_page_shows_every_model_its_badge_aliases_and_metrics(page, dashboard):
    d = dashboard
    page.open("/")
    p = page.page
    assert p.title() == "Models · driftloop"
    names = _cells(p, "section.model h2")
    assert names == ["cancer", "credit", "quiet", "spare"]
    badges = {name: p.locator(f'section[data-model="{name}"] .badge') for name in names}
    assert {n: b.get_attribute("data-status") for n, b in badges.items()} == BADGES
    # readable without colour: every badge carries a symbol and a word
    assert [b.inner_text() for b in badges.values()] == [
        "⚠ drifting", "▼ degraded", "○ no traffic", "✓ ok"]
    cancer = p.locator('section[data-model="cancer"]')
    holder = d.registry.holder(MODEL, "production")
    assert f"production → v{holder.version}" in cancer.locator("ul.aliases").inner_text()
    rows = cancer.locator("table.versions tbody tr")
    assert rows.count() == len(d.registry.versions(MODEL))
    v1 = d.registry.get(MODEL, 1).metrics
    last_row = rows.nth(rows.count() - 1).inner_text()
    assert last_row.startswith("v1") and f"{v1['accuracy']:.4f}" in last_row
    assert f"{v1['ece']:.4f}" in last_row
    latest = d.registry.store.list_windows(MODEL)[-1]
    drifted = sum(f["drifted"] for f in latest.report["features"])
    assert f"{drifted} of {len(latest.report['features'])} features drifted" in (
        cancer.inner_text())
    credit = d.registry.store.list_windows("credit")[-1]
    assert f"realised accuracy {credit.realised['accuracy']['value']:.3f}" in p.locator(
        'section[data-model="credit"] .health-reason').inner_text()
    assert page.errors == []
    page.shot("1-models")


def test_version_page_shows_evaluation_curve_calibration_slices_checks_lineage_card(
        page, dashboard):
    d = dashboard
    record = d.registry.get(MODEL, 1)
    evaluation = evaluations(d.registry.store, d.registry.artifacts, record)[0]
    page.open(f"/ui/models/{MODEL}/versions/1")
    p = page.page
    assert p.locator("h1").inner_text() == f"{MODEL} v1"
    metrics = p.locator("#metrics").inner_text()
    accuracy = evaluation.body["metrics"]["accuracy"]
    assert f"{accuracy['value']:.4f}" in metrics
    assert f"[{accuracy['low']:.4f}, {accuracy['high']:.4f}]" in metrics
    curve = p.evaluate("(() => { const c = Chart.getChart('curve'); return c && "
                       "c.data.datasets.map(s => [s.label, s.data.length]); })()")
    assert curve == [["training loss", EPOCHS], ["validation loss", EPOCHS],
                     ["validation accuracy", EPOCHS]]
    assert p.evaluate("document.getElementById('reliability').naturalWidth") > 100
    ece = evaluation.body["calibration"]["after"]["ece"]
    assert f"{ece:.4f}" in p.locator("#calibration").inner_text()
    slices = evaluation.body["slices"]
    assert p.locator("#slices tbody tr").count() == len(slices["slices"])
    flagged = sum(s["flagged"] for s in slices["slices"])
    assert p.locator('#slices tr[data-flagged="1"]').count() == flagged
    assert f"{flagged} of {len(slices['slices'])} slices flagged" in p.inner_text(
        "#slice-summary")
    (check,) = data_checks(d.registry.store, d.registry.artifacts, record)
    assert p.locator("table.findings tbody tr").count() == len(check.body["findings"])
    assert check.body["findings"][0]["message"] in p.inner_text("table.findings")
    lineage = p.locator('section[aria-label="Lineage"]').inner_text()
    assert record.run_id in lineage and "Retrained into" in lineage
    assert p.locator('section[aria-label="Lineage"] a', has_text="v2").count() == 1
    assert "Model details" in p.locator('section[aria-label="Model card"]').inner_text()
    assert page.errors == []
    page.shot("2-version")


def test_monitoring_page_shows_the_drift_window_as_drifting_and_drills_down(page, dashboard):
    d = dashboard
    windows = d.registry.store.list_windows(MODEL)
    latest = windows[-1]
    page.open(f"/ui/models/{MODEL}/monitoring")
    p = page.page
    assert p.locator(".badge").first.inner_text() == "⚠ drifting"
    drifting = sum(w.drift_detected for w in windows)
    assert drifting == SHIFTED_WINDOWS
    assert f"{drifting} of {WINDOWS} window(s) drifting" in p.inner_text("#drift-summary")
    timeline = p.evaluate("(() => { const c = Chart.getChart('timeline'); return "
                          "[c.data.labels.length, c.data.datasets[0].data, "
                          "c.data.datasets[1].data.filter(x => x !== null).length]; })()")
    assert timeline[0] == WINDOWS and timeline[2] == drifting
    assert timeline[1] == pytest.approx([w.share_drifted for w in windows])
    perf = p.evaluate("Object.fromEntries(Chart.getChart('performance').data.datasets"
                      ".map(s => [s.label, s.data]))")
    assert perf["estimated accuracy"] == pytest.approx(
        [w.estimated["accuracy"]["value"] for w in windows])
    assert perf["realised accuracy"] == [
        w.realised and pytest.approx(w.realised["accuracy"]["value"]) for w in windows]
    # the latest window is the drifting one: shown as such, its drifted features flagged
    status = p.locator("#window-status")
    assert status.get_attribute("data-drift") == "1" and status.inner_text() == "⚠ drifting"
    rows = p.locator("#features tbody tr")
    assert rows.count() == len(latest.report["features"])
    drifted = [f["name"] for f in latest.report["features"] if f["drifted"]]
    assert _cells(p, "#features tbody tr.flagged td:first-child") == drifted
    hist = p.evaluate("Chart.getChart('histogram').data.datasets.map(s => s.data)")
    assert hist == [latest.report["histograms"][drifted[0]]["reference"],
                    latest.report["histograms"][drifted[0]]["current"]]
    # drill into another feature, then into an older window without drift
    other = latest.report["features"][-1]["name"]
    p.locator(f'#features tr[data-feature="{other}"]').click()
    assert p.inner_text("#histogram-title") == f"{other}: reference vs current"
    page.shot("3-monitoring")
    p.select_option("#window-select", str(windows[0].id))
    p.wait_for_function("document.getElementById('window-status').dataset.drift === '0'")
    assert p.inner_text("#window-status") == "✓ no dataset drift"
    alert = d.registry.store.list_alerts(MODEL)[0]
    assert alert.message in p.inner_text("#alerts")
    assert "SECRET" not in p.content()
    assert page.errors == []
    page.shot("3-monitoring-old-window")


def test_loop_page_shows_triggers_numbers_and_gates(page, dashboard):
    d = dashboard
    page.open(f"/ui/loop?model={MODEL}")
    p = page.page
    runs = d.registry.store.list_loop_runs(MODEL)
    assert p.locator("#runs tbody tr").count() == len(runs)
    quiet = p.locator(f'#runs tr[data-run="{runs[0].id}"]').inner_text()
    assert "– no trigger" in quiet and "v1 → –" in quiet
    run = runs[-1]
    kept = p.locator(f'#runs tr[data-run="{run.id}"]')
    text = kept.inner_text()
    assert "= kept champion" in text and run.trigger["message"] in text and "v1 → v2" in text
    windows = ", ".join(str(w) for w in run.trigger["windows"])
    assert f"windows = [{windows}]" in text
    shares = ", ".join(_four(s) for s in run.trigger["share_drifted"])
    assert f"share_drifted = [{shares}]" in text
    comparison = run.details["comparison"]
    assert f"{comparison['champion']:.4f} → {comparison['challenger']:.4f}" in text
    # every gate with its measured value and its bound as the gates wrote them (text: ">= 0.5")
    gates = kept.locator("ul.gates li")
    assert gates.count() == len(run.details["gates"])
    for shown, gate in zip(gates.all_inner_texts(), run.details["gates"], strict=True):
        assert shown.startswith(f"{'✓' if gate['passed'] else '✗'} {gate['name']}: "), shown
        if isinstance(gate["bound"], str):
            assert f" vs bound {gate['bound']} — " in shown, shown
        if isinstance(gate["value"], float):
            assert f": {_four(gate['value'])} vs bound " in shown, shown
    assert any(g["name"] == "card" and not g["passed"] for g in run.details["gates"])
    assert page.errors == []
    page.shot("4-loop")


def test_audit_page_lists_entries_and_verifies_the_chain(page, dashboard):
    d = dashboard
    page.open("/ui/audit")
    p = page.page
    total = d.registry.audit.anchor().entries
    assert f"{total} entries in all" in p.inner_text("main")
    newest = d.registry.audit.entries(limit=1)[0]
    assert p.locator("#entries tbody tr").first.get_attribute("data-seq") == str(newest.seq)
    p.click("#verify")
    p.wait_for_function("document.getElementById('verify-result').dataset.ok !== undefined")
    result = p.inner_text("#verify-result")
    assert result.startswith("✓ chain intact") and f"all {total} entries" in result
    assert "no anchor kept yet" in result  # and it says what that leaves unchecked
    assert page.errors == []
    page.shot("5-audit")
    p.fill('input[name="action"]', "register")
    p.click('button[type="submit"]')
    p.wait_for_url(re.compile(r"action=register"))
    p.wait_for_function("document.body.dataset.ready === '1'")
    assert set(_cells(p, "#entries tbody td:nth-child(4)")) == {"register"}


def _admin_form(p, reason: str, key: str | None, force: bool = True) -> str:
    p.fill("#admin-key", key or "")
    p.fill("#admin-reason", reason)
    if force:
        p.check("#admin-force")
    p.click("#admin-submit")
    p.wait_for_function("!['', 'Working…'].includes("
                        "document.getElementById('admin-result').textContent)")
    return p.inner_text("#admin-result")


def test_admin_action_is_refused_without_an_admin_key_and_audited_with_one(page, dashboard):
    d = dashboard
    holder = d.registry.holder(MODEL, "production").version
    page.open(f"/ui/models/{MODEL}/versions/2")
    p = page.page
    p.click("button:has-text('Promote…')")
    assert p.locator("#admin").is_visible()
    assert p.input_value("#admin-alias") == "production"
    refused = _admin_form(p, "v2 is better on recent data", None)
    assert refused.startswith("✗ refused (401)") and "admin API key" in refused
    assert d.registry.holder(MODEL, "production").version == holder
    forbidden = _admin_form(p, "v2 is better on recent data", d.predict_key)
    assert forbidden.startswith("✗ refused (403)")
    # the browser logs each refused request as a console error; nothing else may appear
    expected = re.compile(r"(console: Failed to load resource: .* 40[13]|HTTP 40[13]: .*/promote)")
    assert [e for e in page.errors if not expected.search(e)] == []
    page.shot("6-admin-refused")
    page.errors.clear()
    done = _admin_form(p, "v2 is better on recent data", d.admin_key)
    assert done.startswith(f"✓ {MODEL}@production now points at v2"), done
    assert d.registry.holder(MODEL, "production").version == 2
    entry = d.registry.audit.entries(subject=f"{MODEL}:v2", action="promote")[-1]
    assert entry.actor == f"api_key:{d.admin_key.split('_')[1]}"
    assert entry.details["reason"] == "v2 is better on recent data"
    assert f"Audit entry #{entry.seq}" in done
    p.wait_for_function("document.body.dataset.ready === '1'")
    assert "@production" in p.inner_text("main .row")
    page.shot("6-admin-promoted")
    p.click("#admin-cancel")
    # roll back from the models page with the key still in the form
    page.open("/")
    p.locator(f'section[data-model="{MODEL}"] li[data-alias="production"] button',
              has_text="Roll back").click()
    assert p.input_value("#admin-alias") == "production"
    rolled = _admin_form(p, "return to v1 after the test", d.admin_key, force=False)
    assert rolled.startswith(f"✓ {MODEL}@production rolled back from v2 to v{holder}"), rolled
    assert d.registry.holder(MODEL, "production").version == holder
    assert d.registry.audit.entries(action="rollback")[-1].actor.startswith("api_key:")
    assert page.errors == []


def test_a_browser_without_a_session_gets_the_login_form_and_then_the_page(browser, dashboard,
                                                                           artifacts_dir):
    from .conftest import Page

    d = dashboard
    page = Page(browser, d.url, artifacts_dir)  # a fresh context: no session cookie
    try:
        p = page.page
        p.goto(d.url + "/")
        p.wait_for_function("document.body.dataset.ready === 'login'", timeout=30_000)
        assert "role read" in p.inner_text("main")
        assert p.evaluate("document.activeElement.id") == "login-key"  # keyboard first
        assert p.locator("section.model").count() == 0  # nothing of the store shown
        p.fill("#login-key", d.predict_key)
        p.click("#login-submit")
        p.wait_for_function("document.getElementById('login-result').textContent"
                            ".startsWith('✗')")
        assert "(403)" in p.inner_text("#login-result")
        p.fill("#login-key", d.read_key)
        p.click("#login-submit")
        p.wait_for_function("document.body.dataset.ready === '1'", timeout=30_000)
        assert p.locator("section.model").count() == 4
        assert d.read_key not in p.url
        assert p.evaluate("document.cookie") == ""  # HttpOnly: no script can read the key
        page.shot("0-login")
        expected = re.compile(r"40[13]")  # the refused reads and the refused login
        assert [e for e in page.errors if not expected.search(e)] == []
    finally:
        page.close()


def test_version_page_shows_the_measured_runtime_table(page, dashboard):
    from driftloop.loop.optimize import optimize_version

    d = dashboard
    report = optimize_version(d.registry, d.registry.get(MODEL, 1), rounds=3, calls=3, batch=64)
    page.open(f"/ui/models/{MODEL}/versions/1")
    p = page.page
    panel = p.locator('section[aria-label="Runtime"]').inner_text()
    assert f"Recommended {report['recommended']}" in panel and "Applied: none" in panel
    assert p.locator("#runtimes tbody tr").count() == len(report["runtimes"])
    assert _cells(p, "#runtimes tbody td:nth-child(1)") == [
        r["name"] for r in report["runtimes"]]
    assert page.errors == []
    page.shot("8-runtime")
