"""The governance report: NIST AI RMF 1.0 subcategories that driftloop serves, each mapped to
live evidence in the store, or listed as a gap with the command that would produce it.

Every row of :data:`SUBCATEGORIES` names a subcategory (id and statement as in NIST AI 100-1,
Tables 1-4), says how driftloop serves it, and reads its evidence from the store when the
report is made: monitor windows and alerts, loop runs, evaluation and data-check reports,
alias moves with their gate evidence, the model card text, erasures and the audit chain. A
subcategory whose evidence is absent is a ``gap`` — never claimed — and names the command that
produces the evidence; ``attention`` marks evidence that shows a problem (the audit chain does
not verify, a webhook delivery failed). Subcategories driftloop cannot serve (they are about
people and organisations, or need measurements it does not make) are listed in
:data:`NOT_SERVED`, so the report does not suggest more coverage than there is.

Mapping a subcategory to evidence is a judgement; the report shows the evidence so a reviewer
can disagree. It describes the store, not the organisation around it.

Examples
--------
>>> [s.id for s in SUBCATEGORIES][:4]
['GOVERN 1.4', 'GOVERN 1.6', 'MAP 1.1', 'MAP 2.1']

References
----------
National Institute of Standards and Technology (2023). Artificial Intelligence Risk Management
Framework (AI RMF 1.0), NIST AI 100-1. https://doi.org/10.6028/NIST.AI.100-1
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from driftloop.store.clock import utcnow
from driftloop.store.secrets import PII_KEY_OBJECT

if TYPE_CHECKING:
    from driftloop.registry import Registry
    from driftloop.registry.evidence import DataCheck, Evaluation
    from driftloop.store import AliasMoveRecord, AuditRecord, VersionRecord
    from driftloop.store.audit import ChainReport
    from driftloop.store.monitoring import AlertRecord, LoopRunRecord, WindowRecord

STATUSES = ("evidence", "gap", "attention")
_SHOWN = 5  # events listed per kind; the rest are counted


@dataclass(frozen=True)
class Item:
    """One subcategory in a report: its status, the evidence found, and how to close a gap.

    Examples
    --------
    >>> item = Item("MEASURE 2.4", "…monitored when in production.", "monitor windows", "gap",
    ...             [], "driftloop monitor --model credit")
    >>> item.to_json()["status"]
    'gap'
    """

    id: str
    statement: str
    serves: str
    status: str
    evidence: list[str]
    produce: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "statement": self.statement, "serves": self.serves,
                "status": self.status, "evidence": list(self.evidence), "produce": self.produce}


@dataclass(frozen=True)
class GovernanceReport:
    """The subcategories of :data:`SUBCATEGORIES` and the controls of
    :data:`driftloop.governance.iso42001.CONTROLS` for one model, with their live evidence.

    Attributes
    ----------
    model, version
        The model and the version the report is about (the alias's holder, else the newest).
    alias, holder
        The served alias (``serve.alias``) and the version holding it (None: none does).
    items
        One per NIST AI RMF subcategory, in the order of :data:`SUBCATEGORIES`.
    controls
        One per ISO/IEC 42001 Annex A control served, in the order of ``CONTROLS``.
    """

    model: str
    version: int
    alias: str
    holder: int | None
    generated_at: datetime
    items: list[Item]
    not_served: list[tuple[str, str]] = field(default_factory=list)
    controls: list[Item] = field(default_factory=list)
    controls_not_served: list[tuple[str, str]] = field(default_factory=list)

    @property
    def gaps(self) -> list[Item]:
        """Subcategories and controls without evidence."""
        return [i for i in [*self.items, *self.controls] if i.status == "gap"]

    def counts(self) -> dict[str, int]:
        """NIST subcategories per status."""
        return _counts(self.items)

    def control_counts(self) -> dict[str, int]:
        """ISO/IEC 42001 controls per status."""
        return _counts(self.controls)

    def to_json(self) -> dict[str, Any]:
        from driftloop.governance.iso42001 import FRAMEWORK

        return {
            "framework": NIST, "model": self.model,
            "version": self.version, "alias": self.alias, "holder": self.holder,
            "generated_at": self.generated_at.isoformat(), "counts": self.counts(),
            "items": [i.to_json() for i in self.items],
            "not_served": [{"id": i, "why": why} for i, why in self.not_served],
            "iso_42001": {
                "framework": FRAMEWORK, "counts": self.control_counts(),
                "controls": [i.to_json() for i in self.controls],
                "not_served": [{"id": i, "why": why} for i, why in self.controls_not_served],
            },
        }

    def _sections(self) -> list[tuple[str, str, str, list[Item], list[tuple[str, str]]]]:
        from driftloop.governance.iso42001 import FRAMEWORK

        return [("NIST AI RMF 1.0", "subcategories", "subcategory", self.items, self.not_served),
                (FRAMEWORK, "controls", "control", self.controls, self.controls_not_served)]

    def to_markdown(self) -> str:
        """The report as Markdown: the NIST section, then the ISO/IEC 42001 one."""
        lines = [f"# Governance report: {self.model} v{self.version}", "",
                 f"The evidence in the store on {self.generated_at:%Y-%m-%d %H:%M} UTC. "
                 f"{self._served()} A gap is not claimed; it names the command that produces "
                 "the evidence."]
        for framework, plural, noun, items, not_served in self._sections():
            c = _counts(items)
            lines += [
                "", f"## {framework}", "",
                f"{framework} {plural} that driftloop serves: **{c['evidence']} with evidence · "
                f"{c['gap']} gap(s) · {c['attention']} needing attention.**",
                "", f"| {noun} | status | evidence |", "|---|---|---|",
            ]
            lines += [f"| {i.id} | {i.status} | {_md(i.evidence[0]) if i.evidence else '-'} |"
                      for i in items]
            for i in items:
                lines += ["", f"### {i.id} — {i.status}", "", f"> {i.statement}", "",
                          f"How driftloop serves it: {i.serves}", ""]
                lines += [f"- {_md(line)}" for line in i.evidence] or [
                    "- no evidence in the store"]
                if i.produce:
                    lines += ["", f"To produce the evidence: `{i.produce}`"]
            lines += ["", f"### {framework}: not served by driftloop", ""]
            lines += [f"- **{i}**: {why}" for i, why in not_served]
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        """The report as one self-contained HTML page (no script, no external resource)."""
        e = html.escape
        title = f"Governance report: {self.model} v{self.version}"
        parts = [
            "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{e(title)}</h1>",
            f"<p>The evidence in the store on {self.generated_at:%Y-%m-%d %H:%M} UTC. "
            f"{e(self._served())} A gap is not claimed; it names the command that produces the "
            "evidence.</p>",
        ]
        for framework, plural, noun, items, not_served in self._sections():
            c = _counts(items)
            rows = "".join(
                f'<tr><td><a href="#{_anchor(i.id)}">{e(i.id)}</a></td>'
                f'<td class="{i.status}">{e(i.status)}</td>'
                f"<td>{e(i.evidence[0]) if i.evidence else '-'}</td></tr>" for i in items)
            parts += [
                f"<h2>{e(framework)}</h2>",
                f"<p>{e(framework)} {plural} that driftloop serves: <b>{c['evidence']} with "
                f"evidence · {c['gap']} gap(s) · {c['attention']} needing attention.</b></p>",
                f"<table><thead><tr><th>{noun}</th><th>status</th><th>evidence</th></tr>"
                f"</thead><tbody>{rows}</tbody></table>",
            ]
            for i in items:
                evidence = "".join(f"<li>{e(line)}</li>" for line in i.evidence) or (
                    "<li>no evidence in the store</li>")
                produce = (f"<p>To produce the evidence: <code>{e(i.produce)}</code></p>"
                           if i.produce else "")
                parts.append(
                    f'<section id="{_anchor(i.id)}"><h3>{e(i.id)} — '
                    f'<span class="{i.status}">{e(i.status)}</span></h3>'
                    f"<blockquote>{e(i.statement)}</blockquote>"
                    f"<p>How driftloop serves it: {e(i.serves)}</p><ul>{evidence}</ul>{produce}"
                    "</section>")
            served = "".join(f"<li><b>{e(i)}</b>: {e(why)}</li>" for i, why in not_served)
            parts.append(f"<h3>{e(framework)}: not served by driftloop</h3><ul>{served}</ul>")
        parts.append("</body></html>")
        return "\n".join(parts)

    def _served(self) -> str:
        held = (f"v{self.holder} holds '{self.alias}'" if self.holder is not None
                else f"no version holds '{self.alias}'")
        return f"Reported on: v{self.version} ({held})."


NIST = "NIST AI RMF 1.0 (NIST AI 100-1)"


def _counts(items: list[Item]) -> dict[str, int]:
    found = Counter(i.status for i in items)
    return {status: found.get(status, 0) for status in STATUSES}


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem;"
    "vertical-align:top}blockquote{color:#444;border-left:3px solid #ccc;margin-left:0;"
    "padding-left:.8rem}.evidence{color:#060}.gap{color:#b00;font-weight:600}"
    ".attention{color:#b60;font-weight:600}code{background:#f4f4f4;padding:0 .2rem}"
)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _anchor(sub_id: str) -> str:
    return sub_id.lower().replace(" ", "-").replace(".", "-").replace(",", "")


# -- the evidence of one model, read once --------------------------------------------------------


class _Context:
    """Everything the collectors read about one model, each read from the store at most once."""

    def __init__(self, registry: Registry, name: str, version: int | None) -> None:
        self.registry, self.name = registry, name
        self.settings = registry.settings
        self.store = registry.store
        self.alias = self.settings.serve.alias
        self.holder = registry.holder(name, self.alias)
        self.version: VersionRecord = (
            registry.get(name, version) if version is not None
            else self.holder or registry.get(name))
        self.ref = f"{name}:{self.version.version}"

    @cached_property
    def versions(self) -> list[VersionRecord]:
        return self.registry.versions(self.name)

    @cached_property
    def metric(self) -> str:
        """The metric monitoring watches on this model (``monitor.performance_metric``, or
        the task's: accuracy, or rmse for regression)."""
        from driftloop.evaluate.metrics import watched_metric

        return watched_metric(self.settings.monitor.performance_metric, self.version.task,
                              setting="monitor.performance_metric")

    @cached_property
    def loop_metric(self) -> str:
        """The metric the loop's performance triggers watch (``loop.metric`` or the task's)."""
        from driftloop.evaluate.metrics import watched_metric

        return watched_metric(self.settings.loop.metric, self.version.task,
                              setting="loop.metric")

    @cached_property
    def moves(self) -> list[AliasMoveRecord]:
        return self.registry.moves(self.name)

    @cached_property
    def evaluations(self) -> list[Evaluation]:
        from driftloop.registry.evidence import evaluations

        return evaluations(self.store, self.registry.artifacts, self.version)

    @cached_property
    def data_checks(self) -> list[DataCheck]:
        from driftloop.registry.evidence import data_checks

        return data_checks(self.store, self.registry.artifacts, self.version)

    @cached_property
    def windows(self) -> list[WindowRecord]:
        return self.store.list_windows(self.name)

    @cached_property
    def alerts(self) -> list[AlertRecord]:
        return self.store.list_alerts(self.name)

    @cached_property
    def loop_runs(self) -> list[LoopRunRecord]:
        return self.store.list_loop_runs(self.name)

    @cached_property
    def chain(self) -> ChainReport:
        return self.registry.audit.verify()

    @cached_property
    def card_text(self) -> dict[str, str | None]:
        from driftloop.registry.card import card_text

        return card_text(self.settings.card, self.name)

    def audit(self, action: str) -> list[AuditRecord]:
        return self.registry.audit.entries(action=action)

    @cached_property
    def feedback_rows(self) -> int:
        return self.store.count_labels(self.name)


Found = tuple[str, list[str], str | None]
"""What a collector returns: status, evidence lines, and the command that produces evidence."""


def _found(lines: list[str], produce: str | None = None, *, problem: bool = False) -> Found:
    if not lines:
        return "gap", [], produce
    return ("attention" if problem else "evidence"), lines, None if not problem else produce


def _when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def _more(items: list[Any], noun: str) -> list[str]:
    hidden = len(items) - _SHOWN
    return [f"… and {hidden} earlier {noun}"] if hidden > 0 else []


# -- collectors, one per subcategory -------------------------------------------------------------


def _govern_1_4(c: _Context) -> Found:
    from driftloop.registry.gates import GATES, policy_sha256

    chain = c.chain
    if chain.entries == 0:
        return _found([], f"driftloop train DATA --target COL --name {c.name}")
    lines = [f"audit chain: {chain.reason} Head {chain.head[:16]}…"]
    gates = c.settings.gates
    run = [g for g in GATES if g not in gates.skip]
    lines.append(f"promotion gates in effect: {', '.join(run)}"
                 + (f"; skipped: {', '.join(gates.skip)}" if gates.skip else "")
                 + f" (policy sha256 {policy_sha256(gates)[:16]}…)")
    recorded = c.audit("policy_change")
    if recorded:
        last = recorded[-1]
        lines.append(f"{len(recorded)} gate-policy change(s) audited; the last at "
                     f"{_when(last.at)} (audit entry {last.seq}, sha256 "
                     f"{str(last.details.get('sha256'))[:16]}…)")
    return _found(lines, "driftloop audit verify", problem=not chain.ok)


def _govern_1_6(c: _Context) -> Found:
    names = c.store.model_names()
    aliases = ", ".join(f"{a.alias} → v{a.version}" for a in c.registry.aliases(c.name)) or "none"
    return _found([
        f"the registry lists {len(names)} model(s); {c.name} has {len(c.versions)} version(s) "
        f"(v{c.versions[0].version}–v{c.versions[-1].version}), aliases: {aliases}",
        "each version records its run, data fingerprints, weights sha256 and parent "
        f"(`driftloop models lineage {c.ref.replace(':', ' ')}`)",
    ])


def _map_1_1(c: _Context) -> Found:
    text = c.card_text
    lines = [f"model card: {label}: {text[key]}" for key, label in (
        ("intended_use", "intended use"), ("intended_users", "intended users"),
        ("out_of_scope_uses", "out-of-scope uses")) if text.get(key)]
    if not text.get("intended_use"):
        return _found([], f"set card.models.{c.name}.intended_use in driftloop.yaml")
    return _found(lines)


def _map_2_1(c: _Context) -> Found:
    bundle = c.registry.bundle(c.version)
    features = [f["name"] for f in (bundle.schema or {}).get("features") or []]
    target = (bundle.schema or {}).get("target")
    return _found([
        f"v{c.version.version}: {c.version.task} task on {c.version.input_kind} input, "
        f"{bundle.model} model with {bundle.n_outputs} output(s)"
        + (f", target '{target}'" if target else ""),
        f"{len(features)} feature column(s): {', '.join(map(str, features[:12]))}"
        + (" …" if len(features) > 12 else "") if features else "array input (no feature table)",
    ])


def _map_2_2(c: _Context) -> Found:
    from driftloop.registry.card import missing_text

    text = c.card_text
    if not text.get("caveats"):
        return _found([], f"set card.models.{c.name}.caveats in driftloop.yaml")
    lines = [f"model card caveats: {text['caveats']}"]
    if text.get("out_of_scope_uses"):
        lines.append(f"out-of-scope uses: {text['out_of_scope_uses']}")
    missing = missing_text(text, ("owners", "contact", "factors", "ethical_considerations"))
    lines.append(f"card text still missing: {', '.join(missing)}" if missing
                 else "owners, contact, factors and ethical considerations are written")
    if c.evaluations and c.evaluations[0].body.get("warnings"):
        lines.append("evaluation warnings: " + "; ".join(c.evaluations[0].body["warnings"]))
    return _found(lines)


def _measure_2_1(c: _Context) -> Found:
    lines = []
    for ev in c.evaluations[:_SHOWN]:
        settings = ev.body.get("settings") or {}
        metrics = ", ".join(sorted((ev.body.get("metrics") or {}).keys())) or "none"
        lines.append(f"{ev.label()}: metrics {metrics}; {settings.get('resamples', '?')} "
                     f"bootstrap resamples, seed {settings.get('seed', '?')}")
    lines += _more(c.evaluations, "evaluation report(s)")
    run = c.store.get_run(c.version.run_id) if c.version.run_id else None
    if run is not None:
        datasets = c.store.run_datasets(run.id)
        if "test" in datasets:
            test = datasets["test"]
            lines.append(f"test split held out at training: {test.rows} rows, fingerprint "
                         f"{test.fingerprint[:12]}")
        if lines:
            tools = ", ".join(f"{k} {v}" for k, v in sorted(run.package_versions.items())[:6])
            lines.append(f"tools of run {run.id[:12]}: {tools or 'not recorded'}; code commit "
                         f"{run.git_commit or 'unknown'}")
    return _found(lines, f"driftloop evaluate {c.ref} DATA")


def _measure_2_3(c: _Context) -> Found:
    if not c.evaluations:
        return _found([], f"driftloop evaluate {c.ref} DATA")
    ev = c.evaluations[0]
    lines = []
    for name, m in sorted((ev.body.get("metrics") or {}).items()):
        if isinstance(m, dict) and m.get("value") is not None:
            band = (f" [{m['low']:.4f}, {m['high']:.4f}]"
                    if m.get("low") is not None and m.get("high") is not None else "")
            lines.append(f"{name} {m['value']:.4f}{band} ({m.get('confidence', 0.95):.0%} "
                         f"interval) on {ev.dataset.get('source') or 'the evaluation data'}")
    metric = c.metric
    realised = [w for w in c.windows if (w.realised or {}).get(metric)]
    if realised:
        w = realised[-1]
        value = (w.realised or {})[metric]
        value = value.get("value") if isinstance(value, dict) else value
        lines.append(f"realised {metric} in production: {value} on window {w.id} "
                     f"(v{w.version}, {w.rows} rows, labelled "
                     f"{(w.realised or {}).get('labelled', '?')}, to {_when(w.end_at)})")
    else:
        lines.append(f"no realised {metric} from production yet (feedback labels on monitor "
                     "windows show it under deployment conditions)")
    return _found(lines)


def _measure_2_4(c: _Context) -> Found:
    windows = c.windows
    if not windows:
        return _found([], f"driftloop monitor --model {c.name}")
    drifted = sum(w.drift_detected for w in windows)
    last = windows[-1]
    share = "-" if last.share_drifted is None else f"{last.share_drifted:.0%}"
    metric = c.metric
    estimate = (last.estimated or {}).get(metric)
    estimate = estimate.get("value") if isinstance(estimate, dict) else estimate
    lines = [
        f"{len(windows)} monitor window(s) from {_when(windows[0].start_at)} to "
        f"{_when(last.end_at)}; {drifted} with dataset drift",
        f"last drift check: window {last.id} (v{last.version}, {last.rows} rows, {last.status}): "
        f"{'drift' if last.drift_detected else 'no drift'}, {share} of features drifted, "
        f"prediction drift {'yes' if last.prediction_drift else 'no'}"
        + (f", estimated {metric} {estimate}" if estimate is not None else ""),
    ]
    kinds = Counter(a.kind for a in c.alerts)
    lines.append(f"{len(c.alerts)} alert(s)" + (
        ": " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) if kinds else ""))
    return _found(lines)


def _measure_2_7(c: _Context) -> Found:
    from driftloop.governance import evidence_lines

    found = evidence_lines.robustness(c) + evidence_lines.poisoning(c)
    if not found:
        return _found([], f"driftloop evaluate {c.ref} DATA (with evaluate.robustness on)")
    keys = c.store.list_api_keys()
    roles = Counter(k.role for k in keys)
    found.append(f"{len(keys)} active API key(s) ("
                 + ", ".join(f"{r} {n}" for r, n in sorted(roles.items())) + "); "
                 "servers refuse to listen off loopback without them" if keys else
                 "no API key created: servers listen on loopback only")
    return _found(found + evidence_lines.query_budgets(c))


def _measure_2_10(c: _Context) -> Found:
    if not c.data_checks:
        return _found([], "driftloop data check DATA --target COL")
    check = c.data_checks[0]
    features = set(_features(c))
    pii = check.pii_columns
    used = [p for p in pii if p in features]
    found = f"columns {', '.join(pii)} hold personal data" if pii else "no personal data found"
    lines = [f"PII scan in {check.label()}: {found}"]
    problem = False
    if used:
        allowed = [p for p in used if p in c.settings.gates.allow_pii]
        lines.append(f"used as features: {', '.join(used)} (allowed by gates.allow_pii: "
                     f"{', '.join(allowed) or 'none'}); the prediction log stores them hashed")
        lines.append("prediction-log hashing: HMAC-SHA256 with serve.pii_hash_key"
                     if c.settings.serve.pii_hash_key else
                     "prediction-log hashing: HMAC-SHA256 with the store's generated key "
                     f"({PII_KEY_OBJECT} in the artifact store; keep a backup of it)")
    erasures = c.audit("erase")
    rows = sum(sum((e.details.get("counts") or {}).values()) for e in erasures)
    lines.append(f"{len(erasures)} erasure request(s) audited in this store ({rows} rows "
                 "removed), each under a salted hash of the id" if erasures else
                 "no erasure request audited yet (`driftloop erase --subject-id ID`)")
    from driftloop.governance import evidence_lines

    lines += evidence_lines.differential_privacy(c)
    lines += evidence_lines.privacy_audit(c) or [
        f"no membership-inference audit yet (`driftloop evaluate {c.ref} DATA --privacy`)"]
    return _found(lines, "keep the PII key backed up; rotate it with serve.pii_hash_key and "
                  "serve.previous_pii_hash_keys", problem=problem)


def _measure_2_11(c: _Context) -> Found:
    lines = []
    produce = f"driftloop evaluate {c.ref} DATA --slices COL,COL"
    for ev in c.evaluations:
        slices = ev.slices
        if not slices:
            continue
        ranked = [s for s in slices.get("slices") or [] if not s.get("too_small")]
        if not ranked:  # every slice under slice_min_count rows: nothing was compared
            produce += (f" (the newest sliced evaluation had no slice of "
                        f"{slices.get('min_count', '?')} rows or more to rank)")
            break
        columns = sorted({str(s["column"]) for s in slices.get("slices") or []})
        flagged = [s for s in ranked if s.get("flagged")]
        lines.append(
            f"{ev.label()}: {slices.get('metric')} per slice of {', '.join(columns)} "
            f"({len(ranked)} slices ranked, {len(flagged)} flagged; overall "
            f"{slices.get('overall', float('nan')):.4f}, tolerance {slices.get('tolerance')})")
        worst = ev.worst_slice
        if worst is not None and worst.get("gap") is not None:
            lines.append(f"worst slice: {worst['column']} = {worst['value']} (gap "
                         f"{worst['gap']:+.4f}{', flagged' if worst.get('flagged') else ''})")
        break
    if lines and not c.card_text.get("factors"):
        lines.append("which groups matter (card factors) is not written: slices of feature "
                     "values stand in for them")
    return _found(lines, produce)


def _manage_1_1(c: _Context) -> Found:
    promotions = [m for m in c.moves if m.action == "promote"]
    lines = []
    for m in promotions[-_SHOWN:][::-1]:
        gates = m.gates or {}
        verdict = ("forced past failed gates" if m.forced else
                   "all gates passed" if gates.get("passed") else "no gate evidence")
        lines.append(f"v{m.to_version} promoted to {m.alias} at {_when(m.at)} by {m.actor}: "
                     f"{verdict} (policy {str(gates.get('policy_sha256', '?'))[:12]}, audit "
                     f"entry {m.audit_seq})")
    lines += _more(promotions, "promotion(s)")
    return _found(lines, f"driftloop models promote {c.name} VERSION --to {c.alias}")


def _manage_2_4(c: _Context) -> Found:
    stops = [m for m in c.moves if m.action in ("deactivate", "rollback")]
    lines = []
    for m in stops[-_SHOWN:][::-1]:
        what = (f"deactivated {m.alias} (v{m.to_version} taken out)" if m.action == "deactivate"
                else f"rolled {m.alias} back from v{m.from_version} to v{m.to_version}")
        lines.append(f"{what} at {_when(m.at)} by {m.actor}: {m.reason or 'no reason given'} "
                     f"(audit entry {m.audit_seq})")
    lines += _more(stops, "deactivation(s) or rollback(s)")
    if lines:
        state = (f"v{c.holder.version} holds {c.alias} now" if c.holder is not None
                 else f"nothing holds {c.alias} now (servers answer 503)")
        lines.insert(0, f"{len(stops)} deactivation(s) or rollback(s) of {c.name}; {state}")
    return _found(lines, f"driftloop models deactivate {c.name} --alias staging --reason drill "
                         "(rehearse on a non-production alias)")


def _manage_4_1(c: _Context) -> Found:
    if not c.windows and not c.loop_runs:
        return _found([], f"driftloop loop run-once --model {c.name}")
    mon, loop = c.settings.monitor, c.settings.loop
    triggers = [f"dataset drift in {loop.drift_windows} consecutive windows"]
    if loop.metric_drop is not None:
        triggers.append(f"{c.loop_metric} worse than the test value by > {loop.metric_drop}")
    if loop.metric_min is not None:
        triggers.append(f"{c.loop_metric} worse than {loop.metric_min}")
    if loop.schedule_s is not None:
        triggers.append(f"every {loop.schedule_s:g} s")
    if loop.min_new_labels is not None:
        triggers.append(f"{loop.min_new_labels} new labels")
    lines = [
        f"monitoring plan: windows of {mon.window} (at least {mon.min_rows} rows), "
        f"{c.metric} alert on a drop of {mon.performance_drop}, "
        f"{len(mon.webhooks)} webhook(s)",
        f"retraining plan: {'; '.join(triggers)}; {loop.data_window} window of "
        f"{loop.window_rows} rows; cooldown {loop.cooldown_s:g} s; at most {loop.max_per_day} "
        f"per day; gated promotion to {loop.alias}",
        f"{c.feedback_rows} feedback label(s) received for {c.name}'s predictions",
    ]
    if c.loop_runs:
        outcomes = Counter(r.outcome for r in c.loop_runs)
        last = c.loop_runs[-1]
        lines.append(f"{len(c.loop_runs)} loop run(s): "
                     + ", ".join(f"{k} {n}" for k, n in sorted(outcomes.items()))
                     + f"; the last at {_when(last.started_at)}: {last.outcome}")
    overrides = c.audit("gate_override")
    if overrides:
        lines.append(f"{len(overrides)} gate override(s) audited (forced promotions)")
    return _found(lines)


def _manage_4_3(c: _Context) -> Found:
    webhooks = c.settings.monitor.webhooks
    if not webhooks:
        return _found([], "list webhook URLs under monitor.webhooks in driftloop.yaml")
    deliveries = [d for a in c.alerts for d in a.deliveries]
    failed = [d for d in deliveries if not d.get("ok")]
    lines = [f"{len(webhooks)} webhook(s) configured for alerts"]
    if c.alerts:
        lines.append(f"{len(c.alerts)} alert(s) raised; {len(deliveries) - len(failed)} of "
                     f"{len(deliveries)} webhook deliveries succeeded")
    else:
        lines.append("no alert raised yet")
    return _found(lines, "check the webhook receivers named in monitor.webhooks",
                  problem=bool(failed))


def _features(c: _Context) -> list[str]:
    schema = c.registry.bundle(c.version).schema or {}
    return [str(f["name"]) for f in schema.get("features") or []]


@dataclass(frozen=True)
class Subcategory:
    """A NIST AI RMF 1.0 subcategory driftloop serves, and the reader of its evidence."""

    id: str
    statement: str
    serves: str
    collect: Callable[[_Context], Found]


SUBCATEGORIES: tuple[Subcategory, ...] = (
    Subcategory(
        "GOVERN 1.4", "The risk management process and its outcomes are established through "
        "transparent policies, procedures, and other controls based on organizational risk "
        "priorities.",
        "the promotion-gate policy (`gates:`) decides every promotion and its changes are "
        "audited; the hash-chained audit log records every change and verifies", _govern_1_4),
    Subcategory(
        "GOVERN 1.6", "Mechanisms are in place to inventory AI systems and are resourced "
        "according to organizational risk priorities.",
        "the model registry lists every model and version with lineage (resourcing is an "
        "organisational matter the store cannot show)", _govern_1_6),
    Subcategory(
        "MAP 1.1", "Intended purposes, potentially beneficial uses, context-specific laws, "
        "norms and expectations, and prospective settings in which the AI system will be "
        "deployed are understood and documented. (Considerations abridged.)",
        "the model card's intended use, users and out-of-scope uses (`card:`)", _map_1_1),
    Subcategory(
        "MAP 2.1", "The specific tasks and methods used to implement the tasks that the AI "
        "system will support are defined (e.g., classifiers, generative models, recommenders).",
        "each version's bundle records its task, input kind, architecture and features",
        _map_2_1),
    Subcategory(
        "MAP 2.2", "Information about the AI system's knowledge limits and how system output "
        "may be utilized and overseen by humans is documented. Documentation provides "
        "sufficient information to assist relevant AI actors when making decisions and taking "
        "subsequent actions.",
        "the model card's caveats and out-of-scope uses, with the evaluation's warnings",
        _map_2_2),
    Subcategory(
        "MEASURE 2.1", "Test sets, metrics, and details about the tools used during TEVV are "
        "documented.",
        "evaluation reports name the data (fingerprint, rows), metrics and bootstrap settings; "
        "runs record package versions and code commit", _measure_2_1),
    Subcategory(
        "MEASURE 2.3", "AI system performance or assurance criteria are measured qualitatively "
        "or quantitatively and demonstrated for conditions similar to deployment setting(s). "
        "Measures are documented.",
        "metrics with bootstrap intervals, and realised metrics on labelled production windows",
        _measure_2_3),
    Subcategory(
        "MEASURE 2.4", "The functionality and behavior of the AI system and its components – "
        "as identified in the MAP function – are monitored when in production.",
        "the monitor tests each window of the prediction log for drift, estimates performance "
        "without labels and raises alerts", _measure_2_4),
    Subcategory(
        "MEASURE 2.7", "AI system security and resilience – as identified in the MAP function "
        "– are evaluated and documented.",
        "adversarial robustness of each evaluation (FGSM/PGD, paired drop with its interval), "
        "the poisoning screen of the training data, API keys per role, per-key query budgets "
        "and output policies against extraction", _measure_2_7),
    Subcategory(
        "MEASURE 2.10", "Privacy risk of the AI system – as identified in the MAP function – "
        "is examined and documented.",
        "the data check's PII scan, PII gate, hashing of PII columns in the prediction log, "
        "and audited erasure (`driftloop erase`)", _measure_2_10),
    Subcategory(
        "MEASURE 2.11", "Fairness and bias – as identified in the MAP function – are evaluated "
        "and results are documented.",
        "evaluation per slice with intervals; slices worse than overall are flagged and gated",
        _measure_2_11),
    Subcategory(
        "MANAGE 1.1", "A determination is made as to whether the AI system achieves its "
        "intended purposes and stated objectives and whether its development or deployment "
        "should proceed.",
        "every promotion is a recorded go/no-go decision of the gates, with its evidence",
        _manage_1_1),
    Subcategory(
        "MANAGE 2.4", "Mechanisms are in place and applied, and responsibilities are assigned "
        "and understood, to supersede, disengage, or deactivate AI systems that demonstrate "
        "performance or outcomes inconsistent with intended use.",
        "`driftloop models deactivate` takes a model out of service (servers answer 503), "
        "`rollback` supersedes it; both audited with who and why", _manage_2_4),
    Subcategory(
        "MANAGE 4.1", "Post-deployment AI system monitoring plans are implemented, including "
        "mechanisms for capturing and evaluating input from users and other relevant AI "
        "actors, appeal and override, decommissioning, incident response, recovery, and "
        "change management.",
        "the `monitor:` and `loop:` settings are the plan; windows, loop runs, feedback, gate "
        "overrides and rollbacks show it running", _manage_4_1),
    Subcategory(
        "MANAGE 4.3", "Incidents and errors are communicated to relevant AI actors, including "
        "affected communities. Processes for tracking, responding to, and recovering from "
        "incidents and errors are followed and documented.",
        "alerts are stored and posted to the webhooks of `monitor.webhooks`, each delivery "
        "recorded (communicating with affected communities is up to people)", _manage_4_3),
)
"""The subcategories served, in report order; statements as in NIST AI 100-1 (Tables 1-4)."""

NOT_SERVED: tuple[tuple[str, str], ...] = (
    ("GOVERN 2-6", "roles, training, workforce diversity, engagement with AI actors and "
     "third-party risk are organisational; the store holds no evidence of them"),
    ("MAP 5.1-5.2", "impacts on people and communities need human judgement (write them in the "
     "model card's ethical considerations)"),
    ("MEASURE 2.2", "driftloop runs no evaluations with human subjects"),
    ("MEASURE 2.9", "models are validated and documented but not explained (no feature "
     "attributions)"),
    ("MEASURE 2.12", "energy use and environmental impact of training are not measured"),
)
"""Subcategories driftloop does not serve, with why (shown so coverage is not overstated)."""


def governance_report(
    registry: Registry, name: str, version: int | None = None
) -> GovernanceReport:
    """The governance report of model ``name`` (the ``serve.alias`` holder, else the newest
    version, unless ``version`` is given), read live from the store.

    Examples
    --------
    >>> import tempfile
    >>> from driftloop.config import Settings
    >>> from driftloop.registry import ModelBundle, Registry
    >>> home = tempfile.mkdtemp()
    >>> reg = Registry.open(Settings.load(overrides={"home": home}, environ={}, cwd=home))
    >>> bundle = ModelBundle(task="binary", input_kind="table", model="mlp", model_inputs={},
    ...                      n_outputs=2, classes=[0, 1], schema=None, preprocessor=None,
    ...                      target_encoder={"task": "binary"})
    >>> _ = reg.register("churn", run_id=None, bundle=bundle, weights=b"w", metrics={},
    ...                  actor="ci", reason="demo")
    >>> report = governance_report(reg, "churn")
    >>> report.counts()
    {'evidence': 3, 'gap': 12, 'attention': 0}
    >>> next(i for i in report.items if i.id == "MEASURE 2.4").produce
    'driftloop monitor --model churn'
    """
    from driftloop.governance import iso42001

    context = _Context(registry, name, version)
    holder = None if context.holder is None else context.holder.version
    return GovernanceReport(name, context.version.version, context.alias, holder, utcnow(),
                            _collect(SUBCATEGORIES, context), list(NOT_SERVED),
                            _collect(iso42001.CONTROLS, context), list(iso42001.NOT_SERVED))


def _collect(rows: tuple[Subcategory, ...], context: _Context) -> list[Item]:
    items = []
    for row in rows:
        status, lines, produce = row.collect(context)
        items.append(Item(row.id, row.statement, row.serves, status, lines, produce))
    return items


__all__ = [
    "NOT_SERVED",
    "STATUSES",
    "SUBCATEGORIES",
    "GovernanceReport",
    "Item",
    "Subcategory",
    "governance_report",
]
