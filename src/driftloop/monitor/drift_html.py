"""The drift report as one self-contained HTML page (no scripts, no CDN).

Status is written out in words and symbols; colour only repeats it.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from driftloop.config import DriftSettings
>>> from driftloop.monitor.drift import drift
>>> rng = np.random.default_rng(0)
>>> report = drift(pd.DataFrame({"x": rng.normal(size=500)}),
...                pd.DataFrame({"x": rng.normal(2, 1, 500)}), settings=DriftSettings())
>>> page = render_html(report)
>>> page.startswith("<!doctype html>"), "▲ DRIFT" in page
(True, True)
"""

from __future__ import annotations

import html
from types import SimpleNamespace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from driftloop.monitor.drift import DriftReport


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "–"
    if value != 0 and abs(value) < 10 ** -digits:
        return f"{value:.1e}"
    return f"{value:.{digits}f}"


_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1b1b1b}
table{border-collapse:collapse;margin-top:1rem}th,td{padding:.3rem .6rem;border:1px solid #ccc;
text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
.drift{background:#fde2e1}.ok{background:#e6f4ea}.not_testable{background:#eeeeee}
.verdict{font-size:1.2rem;font-weight:600}
"""


def render_html(report: DriftReport) -> str:
    """The page for ``report``."""

    esc = html.escape
    rows = []
    # the outputs are stored as dicts; read them like the features' records
    outputs = [SimpleNamespace(**o) for o in report.prediction.get("outputs", [])]
    labels = {"drift": "▲ DRIFT", "ok": "✓ ok", "not_testable": "– not testable"}
    for f in [*report.features, *outputs]:
        missing = f.missing
        rates = f"{_fmt(missing.get('reference_rate'), 3)} → {_fmt(missing.get('current_rate'), 3)}"
        if missing.get("drifted"):
            rates += " (drift)"
        status = labels[f.status] + (f": {f.reason}" if f.reason else "")
        rows.append(
            f"<tr class='{f.status}'><td>{esc(f.name)}</td><td>{esc(f.kind)}</td>"
            f"<td>{esc(f.test)}</td><td class='num'>{_fmt(f.statistic)}</td>"
            f"<td class='num'>{_fmt(f.p_value)}</td>"
            f"<td class='num'>{_fmt(f.p_value_adjusted)}</td>"
            f"<td class='num'>{_fmt(f.effect_size)} {esc(f.effect_metric)}</td>"
            f"<td class='num'>{esc(rates)}</td><td>{esc(status)}</td></tr>"
        )
    head = "".join(f"<th>{h}</th>" for h in (
        "feature", "kind", "test", "statistic", "p", "p adjusted", "effect", "missing rate",
        "status"))
    floors = ", ".join(f"{esc(k)} ≥ {v:g}" for k, v in report.effect_floors.items())
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>driftloop drift report</title><style>{_STYLE}</style></head><body>"
        f"<h1>Drift report</h1><p class='verdict'>{esc(report.headline())}</p>"
        f"<p>{report.reference_rows} reference rows, {report.current_rows} current rows. A test "
        f"drifts when its corrected p-value is below {report.alpha:g} and its effect reaches "
        f"the floor ({floors}).</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        "</body></html>\n"
    )


__all__ = ["render_html"]
