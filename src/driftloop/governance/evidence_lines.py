"""Evidence lines that more than one framework's collector shows: privacy audits, the DP-SGD
budget, adversarial robustness, poisoning screening, query budgets, data roles.

Each reader takes the report's context (:class:`driftloop.governance.report._Context`) and
returns readable lines — empty when the store holds no such evidence, so a collector can turn
that into a gap. They read the stored reports' JSON through :mod:`driftloop.registry.evidence`
and the version's record, never raw rows.

Examples
--------
>>> label_issues(type("Check", (), {"body": {"findings": []}})())
[]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from driftloop.governance.report import _Context
    from driftloop.registry.evidence import DataCheck


def _interval(m: dict[str, Any] | None, digits: int = 3) -> str:
    if not m or m.get("value") is None:
        return "-"
    band = (f" [{m['low']:.{digits}f}, {m['high']:.{digits}f}]"
            if m.get("low") is not None and m.get("high") is not None else "")
    return f"{m['value']:.{digits}f}{band}"


def query_budgets(c: _Context) -> list[str]:
    """Rate limits, row budgets and output policies in effect, and refusals audited."""
    serve = c.settings.serve
    found = []
    limits = [f"{label} {value}" for label, value in (
        ("rate limit", serve.rate_limit), ("row budget", serve.row_budget)) if value]
    if limits:
        found.append("per-key query limits (serve.rate_limit / serve.row_budget): "
                     + ", ".join(limits))
    policy = serve.output_by_model.get(c.name, serve.output)
    if policy.mode != "full":
        found.append(f"output policy for {c.name}: {policy.mode}"
                     + (f" (k {policy.k})" if policy.mode == "top_k" else "")
                     + (f" ({policy.decimals} decimals)" if policy.mode in ("rounded", "top_k")
                        else ""))
    refused = [e for e in c.audit("query_budget_exceeded")
               if e.subject == f"model:{c.name}"]
    if refused:
        found.append(f"{len(refused)} key-window(s) refused past a query limit (429), audited; "
                     f"the last at {refused[-1].at:%Y-%m-%d %H:%M} UTC")
    return found


def data_roles(c: _Context) -> list[str]:
    """The datasets the version's run used, by role, with fingerprint and rows."""
    if c.version.run_id is None:
        return []
    datasets = c.store.run_datasets(c.version.run_id)
    return [f"{role} dataset: {d.source_uri or 'in-memory frame'}, {d.rows} rows, fingerprint "
            f"{d.fingerprint[:12]}" for role, d in sorted(datasets.items())]


def label_issues(check: DataCheck) -> list[str]:
    """The data check's label-issue finding (cleanlab), as a count and share."""
    for finding in check.body.get("findings") or []:
        if finding.get("check") == "label_errors":
            return [f"label issues (cleanlab): {finding.get('message')}"]
    return []


def robustness(c: _Context) -> list[str]:
    """The newest evaluation's robustness section: accuracy clean and under PGD per ε, with
    the paired drop's interval."""
    for ev in c.evaluations:
        section = ev.body.get("robustness") or {}
        if not section.get("applicable"):
            continue
        found = []
        for r in section.get("results") or []:
            acc = r.get("accuracy") or {}
            found.append(
                f"robustness at ε {r.get('epsilon')} (standardised units, "
                f"{len(section.get('perturbed_columns') or [])} numeric column(s) perturbed): "
                f"accuracy clean {_interval(acc.get('clean'))}, random noise "
                f"{_interval(acc.get('random'))}, PGD {_interval(acc.get('pgd'))}; drop "
                f"{_interval(r.get('drop'))} on {section.get('rows')} rows")
        return found
    return []


def privacy_audit(c: _Context) -> list[str]:
    """The newest evaluation's membership-inference audit: per attack the AUC and TPR at 1 %
    FPR with their intervals, and how many members are exposed (a count, never rows)."""
    for ev in c.evaluations:
        section = ev.body.get("privacy")
        if not section:
            continue
        found = []
        for name, attack in sorted((section.get("attacks") or {}).items()):
            tpr = (attack.get("tpr_at_fpr") or {}).get("0.01")
            found.append(
                f"membership inference ({name}, {attack.get('members')} members vs "
                f"{attack.get('non_members')} non-members, {ev.label()}): attack AUC "
                f"{_interval(attack.get('auc'))}, TPR at 1% FPR {_interval(tpr)}; "
                f"{attack.get('exposed')} member(s) exposed "
                f"({float(attack.get('exposed_share') or 0):.1%})")
        found.append(f"{section.get('reference_models')} reference model(s), trained on rows "
                     "disjoint from the audited ones")
        return found
    return []


def differential_privacy(c: _Context) -> list[str]:
    """The DP-SGD budget the version's training spent (ε, δ, accountant, mechanism), or that
    it was trained without a formal guarantee."""
    from driftloop.registry.dp import dp_record

    record = dp_record(c.version)
    if record is None:
        return [f"v{c.version.version} was trained without differential privacy "
                f"(`driftloop train … --dp-epsilon E` trains with DP-SGD)"]
    return [f"trained with DP-SGD (Opacus): {record.label()} spent of a target ε "
            f"{record.target_epsilon:g}; noise multiplier {record.noise_multiplier:.3g}, "
            f"clipping norm {record.max_grad_norm:g}, Poisson rate {record.sample_rate:.3g}, "
            f"{record.steps} steps"]


def poisoning(c: _Context) -> list[str]:
    """The newest deep data check's poisoning screen (`data check --deep`): what it screened
    and the suspicious rows' count and share."""
    for check in c.data_checks:
        found = {f.get("check"): f for f in check.body.get("findings") or []}
        if "deep_check" not in found:
            continue
        screen = (found["deep_check"].get("details") or {}).get("backdoor") or {}
        lines = [f"poisoning screen in {check.label()}: {found['deep_check'].get('message')}"]
        if "backdoor" in found:
            lines.append(f"backdoor suspected: {screen.get('count')} row(s) "
                         f"({float(screen.get('share') or 0):.1%}) on columns "
                         + ", ".join(found["backdoor"].get("columns") or []))
        return lines
    return []


__all__ = ["data_roles", "differential_privacy", "label_issues", "poisoning", "privacy_audit",
           "query_budgets", "robustness"]
