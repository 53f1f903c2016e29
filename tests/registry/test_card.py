"""Model cards: nine sections, disaggregated metrics with intervals, missing shown as missing."""

from __future__ import annotations

import pytest

from driftloop.errors import UsageError
from driftloop.registry.card import SECTIONS, parse_set


def test_the_card_has_nine_sections_with_disaggregated_metrics(registry, factory, card_text):
    factory.version(accuracy=0.95, bad_slice="Lima")
    card = registry.card("credit", 1)
    assert [(s.key, s.title) for s in card.sections] == list(SECTIONS) and len(SECTIONS) == 9
    sections = {s.key: s for s in card.sections}
    (slices,) = sections["quantitative_analyses"].tables
    assert slices.columns == ["column", "slice", "rows", "accuracy", "interval", "gap",
                              "flagged"]
    rows = {row[1]: row for row in slices.rows}
    assert set(rows) == {"Lima", "Oslo", "Rome"} and rows["Lima"][-1] == "yes"
    assert rows["Oslo"][4].startswith("[") and float(rows["Lima"][5]) < -0.1
    (metrics,) = sections["metrics"].tables
    assert {r[0] for r in metrics.rows} >= {"accuracy", "roc_auc", "log_loss"}
    assert all(r[2].startswith("[") for r in metrics.rows)
    items = dict(sections["intended_use"].items)
    assert items["Primary intended uses"] == card_text["intended_use"]
    assert items["Out-of-scope uses"] is None  # not written: missing, not invented
    assert "Intended use: Out-of-scope uses" in card.missing()
    assert "city = Lima" in dict(sections["caveats_and_recommendations"].items)["Flagged slices"]
    md = card.to_markdown()
    assert all(f"## {title}" in md for _, title in SECTIONS)
    assert "| city | Lima |" in md and "*missing*" in md


def test_without_evidence_the_facts_are_missing_too(open_registry):
    registry, factory = open_registry(card=False)
    factory.version(accuracy=None, check=None, metrics={"accuracy": 0.9})
    card = registry.card("credit", 1)
    missing = card.missing()
    for item in ("Quantitative analyses: Disaggregated results", "Metrics: Variation approaches",
                 "Ethical considerations: Considerations", "Training data: Data check",
                 "Evaluation data: Report artifact"):
        assert item in missing
    sections = {s.key: s for s in card.sections}
    (metrics,) = sections["metrics"].tables
    assert metrics.rows == [["accuracy", "0.9000", "missing", "missing"]]


def test_set_overrides_the_settings_and_html_is_escaped(registry, factory):
    factory.version()
    card = registry.card("credit", 1, parse_set(["caveats=<script>alert(1)</script> & co",
                                                 "owners=team-risk"]))
    html = card.to_html()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html
    assert html.count("<section") == 9 and "team-risk" in html
    assert '<span class="missing">missing</span>' in html


def test_per_model_card_text_wins_over_the_general_text(open_registry):
    registry, factory = open_registry(card=False)
    registry.settings = registry.settings.updated(
        {"card": {"caveats": "general", "models": {"credit": {"caveats": "credit only"}}}})
    factory.version()
    items = dict(registry.card("credit", 1).sections[-1].items)
    assert items["Caveats and recommendations"] == "credit only"


@pytest.mark.parametrize(("pair", "message"), [("caveats", "KEY=TEXT"), ("mood=ok", "'mood'")])
def test_bad_set_pairs_are_usage_errors(pair, message):
    with pytest.raises(UsageError, match=message):
        parse_set([pair])
