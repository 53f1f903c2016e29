"""Model cards: the nine sections of Mitchell et al. (2019), facts from the store.

Facts (what the model is, how it was trained and evaluated, its metrics with intervals and
per slice) come from the store; the human parts (owners, intended use, factors, ethical
considerations, caveats) come from the ``card:`` section of driftloop.yaml (per model under
``card.models.NAME``) or ``--set KEY=TEXT``. Whatever is not known is shown as *missing*,
never invented.

Examples
--------
>>> card = ModelCard("churn", 3, [CardSection("intended_use", "Intended use",
...                                           [("Intended use", None)])])
>>> card.missing()
['Intended use: Intended use']
>>> print(card.to_markdown().splitlines()[0])
# Model card: churn v3
>>> "<b>&lt;b&gt;</b>" in ModelCard("<b>", 1, []).to_html()
False

References
----------
Mitchell, M., Wu, S., Zaldivar, A., Barnes, P., Vasserman, L., Hutchinson, B., Spitzer, E.,
Raji, I. D. and Gebru, T. (2019). Model Cards for Model Reporting. FAT* '19, 220–229.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from driftloop.config import CARD_FIELDS, CardSettings
from driftloop.errors import UsageError
from driftloop.registry.distillation import card_items as distill_card_items
from driftloop.registry.dp import card_items as dp_card_items
from driftloop.registry.evidence import DataCheck, Evaluation, data_checks, evaluations
from driftloop.registry.lineage import feature_views_text
from driftloop.registry.runtime_choice import card_items as runtime_card_items

if TYPE_CHECKING:
    from driftloop.registry.registry import Registry
    from driftloop.store import VersionRecord

MISSING = "missing"
SECTIONS: tuple[tuple[str, str], ...] = (
    ("model_details", "Model details"),
    ("intended_use", "Intended use"),
    ("factors", "Factors"),
    ("metrics", "Metrics"),
    ("evaluation_data", "Evaluation data"),
    ("training_data", "Training data"),
    ("quantitative_analyses", "Quantitative analyses"),
    ("ethical_considerations", "Ethical considerations"),
    ("caveats_and_recommendations", "Caveats and recommendations"),
)
"""The nine sections, in the order of Mitchell et al. (2019)."""


@dataclass(frozen=True)
class CardTable:
    """A table in a card section (cells are text)."""

    columns: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class CardSection:
    """One section: labelled items (None: missing) and tables."""

    key: str
    title: str
    items: list[tuple[str, str | None]] = field(default_factory=list)
    tables: list[CardTable] = field(default_factory=list)


@dataclass(frozen=True)
class ModelCard:
    """A model card of one version."""

    model_name: str
    version: int
    sections: list[CardSection]

    def missing(self) -> list[str]:
        """``"Section: item"`` for every item shown as missing."""
        return [f"{s.title}: {label}" for s in self.sections for label, text in s.items
                if text is None]

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model_name, "version": self.version,
            "sections": {
                s.key: {
                    "title": s.title,
                    "items": [{"label": label, "text": text} for label, text in s.items],
                    "tables": [{"columns": t.columns, "rows": t.rows} for t in s.tables],
                }
                for s in self.sections
            },
            "missing": self.missing(),
        }

    def to_markdown(self) -> str:
        """The card as Markdown (table cells have ``|`` escaped)."""
        lines = [f"# Model card: {self.model_name} v{self.version}", ""]
        for s in self.sections:
            lines += [f"## {s.title}", ""]
            for label, text in s.items:
                lines.append(f"- **{label}:** {_md_text(text)}")
            for table in s.tables:
                lines += ["", "| " + " | ".join(map(_md_cell, table.columns)) + " |",
                          "|" + "---|" * len(table.columns)]
                lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in table.rows]
            lines.append("")
        return "\n".join(lines)

    def to_html(self) -> str:
        """The card as one self-contained HTML page; every text is escaped."""
        e = html.escape
        title = f"Model card: {self.model_name} v{self.version}"
        parts = [
            "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{e(title)}</title>", f"<style>{_CSS}</style></head><body>",
            f"<h1>{e(title)}</h1>",
        ]
        for s in self.sections:
            parts.append(f'<section id="{e(s.key)}"><h2>{e(s.title)}</h2><dl>')
            for label, text in s.items:
                shown = (f'<span class="missing">{MISSING}</span>' if text is None
                         else e(text).replace("\n", "<br>"))
                parts.append(f"<dt>{e(label)}</dt><dd>{shown}</dd>")
            parts.append("</dl>")
            for table in s.tables:
                head = "".join(f"<th>{e(c)}</th>" for c in table.columns)
                body = "".join(
                    "<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>"
                    for row in table.rows
                )
                parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            parts.append("</section>")
        parts.append("</body></html>")
        return "\n".join(parts)


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "dt{font-weight:600;margin-top:.5rem}dd{margin-left:1rem}"
    "table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.2rem .5rem}"
    ".missing{color:#b00;font-style:italic}"
)


def _md_text(text: str | None) -> str:
    return f"*{MISSING}*" if text is None else text.replace("\n", " ")


def _md_cell(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def parse_set(pairs: Iterable[str]) -> dict[str, str]:
    """Turn ``["KEY=TEXT", ...]`` (``--set``) into a mapping, checking every key.

    >>> parse_set(["intended_use=Rank loan applications for review"])
    {'intended_use': 'Rank loan applications for review'}
    >>> parse_set(["use=x"])
    Traceback (most recent call last):
    ...
    driftloop.errors.UsageError: --set 'use=x': 'use' is not a model card field. Fields: owners, license, contact, intended_use, intended_users, out_of_scope_uses, factors, ethical_considerations, caveats.
    """  # noqa: E501
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--set {pair!r} is not KEY=TEXT (e.g. --set caveats='...').")
        if key not in CARD_FIELDS:
            raise UsageError(
                f"--set {pair!r}: {key!r} is not a model card field. Fields: "
                f"{', '.join(CARD_FIELDS)}."
            )
        out[key] = value
    return out


def card_text(
    settings: CardSettings, model_name: str, overrides: Mapping[str, str] | None = None
) -> dict[str, str | None]:
    """The human card text of ``model_name``: ``card:``, then ``card.models.NAME``, then
    ``overrides``; blank text counts as missing.

    >>> from driftloop.config import CardSettings
    >>> cfg = CardSettings(caveats="general", models={"churn": {"caveats": "churn only"}})
    >>> card_text(cfg, "churn")["caveats"], card_text(cfg, "other")["caveats"]
    ('churn only', 'general')
    >>> card_text(cfg, "churn", {"caveats": "  "})["caveats"] is None
    True
    """
    text: dict[str, str | None] = {key: getattr(settings, key) for key in CARD_FIELDS}
    per_model = settings.models.get(model_name)
    if per_model is not None:
        text.update({k: v for k, v in per_model.model_dump().items() if v is not None})
    text.update(dict(overrides or {}))
    return {k: (v if isinstance(v, str) and v.strip() else None) for k, v in text.items()}


def missing_text(text: Mapping[str, str | None], required: Sequence[str]) -> list[str]:
    """The keys of ``required`` whose text is missing.

    >>> missing_text({"caveats": None, "intended_use": "x"}, ["intended_use", "caveats"])
    ['caveats']
    """
    return [key for key in required if not text.get(key)]


def build_card(
    registry: Registry, version: VersionRecord, text: Mapping[str, str | None]
) -> ModelCard:
    """Assemble the card of ``version`` from the store and the human ``text``."""
    store = registry.store
    bundle = registry.bundle(version)
    run = store.get_run(version.run_id) if version.run_id else None
    datasets = store.run_datasets(version.run_id) if version.run_id else {}
    evaluation = next(iter(evaluations(store, registry.artifacts, version)), None)
    check = next(iter(data_checks(store, registry.artifacts, version)), None)
    audited = next((e for e in evaluations(store, registry.artifacts, version)
                    if e.body.get("privacy")), None)
    parent = store.get_version_by_id(version.parent_id) if version.parent_id else None
    aliases = [a.alias for a in store.list_aliases(version.model_name)
               if a.version_id == version.id]
    schema = bundle.schema or {}
    facts = _Facts(version, evaluation, check)

    details = CardSection("model_details", "Model details", [
        ("Name and version", f"{version.model_name} v{version.version}"),
        ("Task", f"{version.task} ({version.input_kind} input)"),
        ("Architecture", f"{bundle.model} with {bundle.n_outputs} output(s)"),
        ("Classes", "not applicable (regression)" if version.task == "regression"
         else ", ".join(map(str, bundle.classes)) or None),
        ("Registered", version.created_at.strftime("%Y-%m-%d %H:%M UTC")),
        ("Weights (safetensors sha256)", version.weights_sha256),
        ("Training run", None if run is None else
         f"{run.id} · {run.world_size} worker(s) · code commit {run.git_commit or 'unknown'}"),
        *(distill_card_items(version) or [
            ("Retrained from", f"v{parent.version}" if parent else "no parent version")]),
        ("Aliases", ", ".join(aliases) if aliases else "none"),
        *runtime_card_items(registry.audit, registry.artifacts, version),
        ("Owners", text.get("owners")),
        ("License", text.get("license")),
        ("Contact", text.get("contact")),
    ])
    intended = CardSection("intended_use", "Intended use", [
        ("Primary intended uses", text.get("intended_use")),
        ("Primary intended users", text.get("intended_users")),
        ("Out-of-scope uses", text.get("out_of_scope_uses")),
    ])
    slice_columns = sorted({s["column"] for s in (facts.slices or {}).get("slices", [])})
    factors = CardSection("factors", "Factors", [
        ("Relevant factors", text.get("factors")),
        ("Evaluation factors (slice columns)",
         ", ".join(slice_columns) if slice_columns else None),
    ])
    metrics = CardSection("metrics", "Metrics", [
        ("Model performance measures", facts.metrics_source()),
        ("Variation approaches", facts.variation()),
    ], [facts.metric_table()] if facts.metric_rows() else [])
    if evaluation is not None:
        data = evaluation.dataset
        eval_items = [
            ("Dataset", f"{data.get('source') or data.get('role') or 'unknown source'}"),
            ("Fingerprint", evaluation.dataset_fingerprint),
            ("Rows evaluated", str(data.get("rows", "unknown"))),
            ("Report artifact", evaluation.report.artifact_sha256),
        ]
    elif "test" in datasets:
        test = datasets["test"]
        eval_items = [
            ("Dataset", f"test split of {test.source_uri} (held out at training)"),
            ("Fingerprint", test.fingerprint),
            ("Rows evaluated", str(test.rows)),
            ("Report artifact", None),
        ]
    else:
        eval_items = [("Dataset", None)]
    evaluation_data = CardSection("evaluation_data", "Evaluation data", eval_items)
    features = [str(f["name"]) for f in schema.get("features") or []]
    kinds = [f"{f['name']} ({f['kind']})" for f in schema.get("features") or []]
    arrays = "not applicable (array input)"
    training_items: list[tuple[str, str | None]] = [
        (f"{role.capitalize()} data", f"{d.source_uri} · {d.rows} rows · fingerprint "
         f"{d.fingerprint}")
        for role, d in sorted(datasets.items()) if role in ("source", "train", "val")
    ] or [("Datasets", None)]
    views = feature_views_text(run)
    if views:
        training_items.append(("Feature views", f"{views}, joined as of each row's time"))
    training_items += [
        ("Target", str(schema.get("target") or "") or None if schema else arrays),
        ("Features", ", ".join(kinds) or None if schema else arrays),
        ("Columns left out", "; ".join(f"{k}: {v}" for k, v in schema.get("excluded", {}).items())
         or "none"),
        ("Data check", None if check is None else
         f"{'passed' if check.passed else 'failed'} ({check.label()})"),
    ]
    training_items += dp_card_items(version)
    training = CardSection("training_data", "Training data", training_items)
    quantitative = CardSection("quantitative_analyses", "Quantitative analyses",
                               [("Disaggregated results", facts.slice_summary()),
                                ("Calibration", facts.calibration()),
                                ("Robustness", facts.robustness())],
                               [facts.slice_table()] if facts.slices else [])
    ethics = CardSection("ethical_considerations", "Ethical considerations", [
        ("Considerations", text.get("ethical_considerations")),
        ("Personal data in the training data", _pii_fact(check, features)),
        ("Privacy audit", _privacy_fact(audited, version)),
    ])
    caveats = CardSection("caveats_and_recommendations", "Caveats and recommendations", [
        ("Caveats and recommendations", text.get("caveats")),
        ("Flagged slices", facts.flagged()),
        ("Evaluation warnings", "; ".join(evaluation.body.get("warnings") or []) or "none"
         if evaluation is not None else None),
    ])
    return ModelCard(version.model_name, version.version, [
        details, intended, factors, metrics, evaluation_data, training, quantitative, ethics,
        caveats,
    ])


def _privacy_fact(audited: Evaluation | None, version: VersionRecord) -> str:
    """The membership-inference audit in one sentence: each attack's AUC with its interval."""
    if audited is None:
        return (f"not audited (run `driftloop evaluate {version.model_name}:{version.version} "
                "DATA --privacy`)")
    privacy = audited.body["privacy"]
    attacks = privacy.get("attacks") or {}
    parts = [f"{name} attack AUC {_valued(a['auc'])}, TPR at 1% FPR "
             f"{_valued(a['tpr_at_fpr'].get('0.01') or {'value': float('nan')})}, "
             f"{a['exposed']} of {a['members']} training rows exposed"
             for name, a in attacks.items()]
    first = next(iter(attacks.values()), {})
    return (f"membership inference on {first.get('members', '?')} training rows vs "
            f"{first.get('non_members', '?')} unseen rows, "
            f"{privacy.get('reference_models', 0)} reference models: " + "; ".join(parts)
            + f" (AUC 0.5: no better than chance; {audited.label()})")


def _valued(m: Mapping[str, Any]) -> str:
    return f"{m['value']:.4f} {_band(m)}"


def _pii_fact(check: DataCheck | None, features: list[str]) -> str | None:
    if check is None:
        return None
    found = check.pii_columns
    if not found:
        return "none found by the data check"
    used = [c for c in found if c in features]
    return (f"columns {', '.join(found)}; "
            + (f"used as features: {', '.join(used)}" if used else "none of them is a feature"))


@dataclass(frozen=True)
class _Facts:
    version: VersionRecord
    evaluation: Evaluation | None
    check: DataCheck | None

    @property
    def slices(self) -> dict[str, Any] | None:
        return None if self.evaluation is None else self.evaluation.slices

    def metric_rows(self) -> list[list[str]]:
        if self.evaluation is not None:
            return [
                [name, f"{m['value']:.4f}", _band(m), f"{m.get('confidence', 0.95):.0%}"]
                for name, m in (self.evaluation.body.get("metrics") or {}).items()
            ]
        return [[name, f"{value:.4f}", MISSING, MISSING]
                for name, value in self.version.metrics.items() if isinstance(value, float)]

    def metric_table(self) -> CardTable:
        return CardTable(["metric", "value", "interval", "confidence"], self.metric_rows())

    def metrics_source(self) -> str | None:
        if self.evaluation is not None:
            return f"metrics with bootstrap intervals from the {self.evaluation.label()}"
        if self.version.metrics:
            return "test-split metrics recorded at registration (no evaluation report)"
        return None

    def variation(self) -> str | None:
        if self.evaluation is None:
            return None
        settings = self.evaluation.body.get("settings") or {}
        return (f"percentile bootstrap, {settings.get('resamples', '?')} resamples, seed "
                f"{settings.get('seed', '?')}")

    def calibration(self) -> str | None:
        if self.version.task == "regression":
            return "not applicable (regression)"
        cal = None if self.evaluation is None else self.evaluation.body.get("calibration")
        if not cal:
            return None
        return (f"temperature {cal['temperature']:.3f}; ECE {cal['before']['ece']:.4f} before, "
                f"{cal['after']['ece']:.4f} after calibration ({cal.get('bins', '?')} bins)")

    def robustness(self) -> str | None:
        found = None if self.evaluation is None else self.evaluation.robustness
        if not found:
            return "not applicable (regression)" if self.version.task == "regression" else None
        if not found.get("applicable"):
            return f"not applicable ({found.get('reason')})"
        parts = []
        for r in found.get("results") or []:
            acc, d = r["accuracy"], r["drop"]
            parts.append(f"epsilon {r['epsilon']:g}: accuracy {acc['clean']['value']:.4f} clean, "
                         f"{acc['random']['value']:.4f} random noise, {acc['fgsm']['value']:.4f} "
                         f"FGSM, {acc['pgd']['value']:.4f} PGD (drop {d['value']:+.4f}, "
                         f"paired interval [{d['low']:+.4f}, {d['high']:+.4f}])")
        return ("; ".join(parts) + " — L-infinity perturbations of the numeric features in "
                "standardised units; categorical and boolean features unchanged")

    def slice_summary(self) -> str | None:
        s = self.slices
        if not s:
            return None
        ranked = [x for x in s.get("slices", []) if not x.get("too_small")]
        return (f"{s['metric']} per slice ({len(ranked)} ranked, {len(s.get('flagged', []))} "
                f"flagged; overall {s['overall']:.4f}; tolerance {s['tolerance']:g} "
                f"{s.get('tolerance_kind', '')}; slices under {s.get('min_count', '?')} rows "
                "too small to rank)")

    def slice_table(self) -> CardTable:
        s = self.slices or {}
        rows = []
        for x in s.get("slices", []):
            m = x.get("metric") or {}
            rows.append([
                str(x["column"]), str(x["value"]), str(x["count"]),
                "too small" if x.get("too_small") else
                (f"{m['value']:.4f}" if m.get("value") is not None else "undefined"),
                _band(m) if m else "-",
                f"{x['gap']:+.4f}" if x.get("gap") is not None else "-",
                "yes" if x.get("flagged") else "",
            ])
        return CardTable(["column", "slice", "rows", s.get("metric", "metric"), "interval",
                          "gap", "flagged"], rows)

    def flagged(self) -> str | None:
        s = self.slices
        if s is None:
            return None
        flagged = [x for x in s.get("slices", []) if x.get("flagged")]
        if not flagged:
            return "none"
        return "; ".join(f"{x['column']} = {x['value']} (gap {x['gap']:+.4f})" for x in flagged)


def _band(m: Mapping[str, Any]) -> str:
    if m.get("low") is None or m.get("high") is None:
        return "n/a"
    return f"[{m['low']:.4f}, {m['high']:.4f}]"


__all__ = [
    "MISSING",
    "SECTIONS",
    "CardSection",
    "CardTable",
    "ModelCard",
    "build_card",
    "card_text",
    "missing_text",
    "parse_set",
]
