"""ISO/IEC 42001:2023 Annex A controls that driftloop serves, mapped to the same live evidence
as the NIST AI RMF subcategories of :mod:`driftloop.governance.report`.

Each row of :data:`CONTROLS` names an Annex A control by its number and title and says, in our
words, what it asks (the standard's own text is not reproduced: ISO text is copyrighted) and how
driftloop serves it; its collector reads the evidence from the store when the report is made,
or returns a gap naming the command that produces it. Annex A controls are mostly about the
organisation (policies, roles, impact assessment, suppliers): those are listed in
:data:`NOT_SERVED` with why, so the report does not suggest more coverage than there is.

Several controls share evidence with a NIST subcategory (both frameworks ask for monitoring,
V&V, event logs); the collectors are then the same functions, so both sections always agree.

Examples
--------
>>> [c.id for c in CONTROLS][:3]
['A.4.4', 'A.5.4', 'A.6.2.3']
>>> len(CONTROLS) + len(NOT_SERVED) >= 20
True

References
----------
ISO/IEC 42001:2023 Information technology — Artificial intelligence — Management system,
Annex A (normative) Reference control objectives and controls.
"""

from __future__ import annotations

from driftloop.governance import evidence_lines as lines_of
from driftloop.governance.report import (
    _SHOWN,
    Found,
    Subcategory,
    _Context,
    _found,
    _manage_1_1,
    _manage_4_3,
    _map_1_1,
    _map_2_1,
    _map_2_2,
    _measure_2_3,
    _measure_2_4,
    _when,
)

FRAMEWORK = "ISO/IEC 42001:2023 Annex A"


def _tooling(c: _Context) -> Found:
    run = c.store.get_run(c.version.run_id) if c.version.run_id else None
    if run is None:
        return _found([], f"driftloop train DATA --target COL --name {c.name}")
    tools = ", ".join(f"{k} {v}" for k, v in sorted(run.package_versions.items()))
    return _found([
        f"run {run.id[:12]} of v{c.version.version}: {run.world_size} worker(s), "
        f"{run.status}, code commit {run.git_commit or 'unknown'}",
        f"tools: {tools or 'not recorded'}",
    ])


def _impact_on_individuals(c: _Context) -> Found:
    from driftloop.registry.dp import dp_record

    audit = lines_of.privacy_audit(c)
    if not audit and dp_record(c.version) is None:
        return _found([], f"driftloop evaluate {c.ref} DATA --privacy")
    return _found(audit + lines_of.differential_privacy(c) + [
        "the rest of an impact assessment (who is affected and how) is written by people in "
        "the model card's ethical considerations"])


def _verification(c: _Context) -> Found:
    status, found, produce = _measure_2_3(c)
    if status == "gap":
        return status, found, produce
    return _found(found + lines_of.robustness(c))


def _deployment(c: _Context) -> Found:
    status, found, produce = _manage_1_1(c)
    rollouts = c.store.list_rollouts(c.name, limit=_SHOWN)  # newest first
    for r in rollouts:
        state = f"at {r.stage} {r.share:.0%}" if r.active else (r.decision or r.stage)
        found.append(f"rollout {r.id} of v{r.candidate_version} to {r.alias}: {state}, "
                     f"started {_when(r.started_at)} by {r.actor}")
    return _found(found, produce)


def _operation(c: _Context) -> Found:
    status, found, produce = _measure_2_4(c)
    budgets = lines_of.query_budgets(c)
    if status == "gap":
        return "gap", [], produce
    return _found(found + budgets)


def _event_logs(c: _Context) -> Found:
    chain = c.chain
    if chain.entries == 0:
        return _found([], "driftloop audit verify")
    found = [f"audit chain of {chain.entries} entries: {chain.reason}"]
    anchors = c.audit("anchor")
    if anchors:
        found.append(f"{len(anchors)} anchor(s) of the chain's head recorded; the last at "
                     f"{_when(anchors[-1].at)}")
    logging = ("every prediction is logged (serve.log_predictions) with its version, features "
               "and outputs; PII columns hashed" if c.settings.serve.log_predictions else
               "prediction logging is off (serve.log_predictions: false)")
    found.append(logging)
    return _found(found, "driftloop audit verify", problem=not chain.ok)


def _data_management(c: _Context) -> Found:
    erasures = c.audit("erase")
    found = []
    if erasures:
        rows = sum(sum((e.details.get("counts") or {}).values()) for e in erasures)
        found.append(f"{len(erasures)} erasure request(s) audited ({rows} rows removed from "
                     f"logs, labels and datasets); the last at {_when(erasures[-1].at)}")
    found += lines_of.data_roles(c)
    return _found(found, f"driftloop train DATA --target COL --name {c.name}")


def _data_quality(c: _Context) -> Found:
    if not c.data_checks:
        return _found([], "driftloop data check DATA --target COL --deep")
    check = c.data_checks[0]
    counts = check.body.get("counts") or check.report.summary
    found = [f"{check.label()}: {counts.get('error', 0)} error(s), "
             f"{counts.get('warning', 0)} warning(s)"]
    found += lines_of.label_issues(check) + (lines_of.poisoning(c) or [
        "no poisoning screen yet (`driftloop data check DATA --target COL --deep`)"])
    return _found(found, "driftloop data check DATA --target COL", problem=not check.passed)


def _provenance(c: _Context) -> Found:
    found = lines_of.data_roles(c)
    if not found:
        return _found([], f"driftloop train DATA --target COL --name {c.name}")
    parent = c.version.parent_id
    found.append(f"lineage: v{c.version.version} "
                 + ("retrains the version with id " + str(parent) if parent is not None
                    else "has no parent version")
                 + f" (`driftloop models lineage {c.name} {c.version.version}`)")
    return _found(found)


def _data_preparation(c: _Context) -> Found:
    bundle = c.registry.bundle(c.version)
    features = (bundle.schema or {}).get("features") or []
    if not features:
        return _found([], f"driftloop train DATA --target COL --name {c.name}")
    kinds: dict[str, int] = {}
    for f in features:
        kinds[str(f.get("kind"))] = kinds.get(str(f.get("kind")), 0) + 1
    found = ["preprocessing is fitted on the training split only and stored in the version's "
             "bundle: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + " column(s)"]
    if c.data_checks and c.data_checks[0].pii_columns:
        used = {str(f.get("name")) for f in features}
        left_out = [p for p in c.data_checks[0].pii_columns if p not in used]
        if left_out:
            found.append(f"personal-data columns left out of the features: {', '.join(left_out)}")
    return _found(found)


CONTROLS: tuple[Subcategory, ...] = (
    Subcategory("A.4.4", "Tooling resources: document the tools used for the AI system.",
                "each run records its package versions and code commit", _tooling),
    Subcategory("A.5.4", "Assessing AI system impact on individuals or groups of individuals: "
                "assess and document the potential impacts on individuals throughout the "
                "system's life cycle.",
                "the membership-inference audit measures how much the model leaks about the "
                "people in its training rows, beside the DP-SGD budget spent (privacy is the "
                "part of the impact driftloop can measure)", _impact_on_individuals),
    Subcategory("A.6.2.3", "Documentation of AI system design and development.",
                "each version's bundle records its task, architecture, inputs and features",
                _map_2_1),
    Subcategory("A.6.2.4", "AI system verification and validation: define and document V&V "
                "measures and the criteria for their use.",
                "evaluation with bootstrap intervals, calibration, slices and adversarial "
                "robustness (FGSM/PGD) on held-out data; the promotion gates are the criteria",
                _verification),
    Subcategory("A.6.2.5", "AI system deployment: document a deployment plan and meet its "
                "requirements before deployment.",
                "gated promotions and staged rollouts (shadow, canary) decided on intervals",
                _deployment),
    Subcategory("A.6.2.6", "AI system operation and monitoring: define and document what "
                "operation and monitoring need (repairs, updates, support).",
                "monitor windows (drift, estimated and realised performance, alerts) and per-key "
                "query budgets and rate limits against extraction", _operation),
    Subcategory("A.6.2.7", "AI system technical documentation for the relevant interested "
                "parties.", "the model card, written from the registry and the card text",
                _map_2_2),
    Subcategory("A.6.2.8", "AI system recording of event logs: determine at which phases event "
                "logging is enabled, at the minimum when the system is in use.",
                "the hash-chained audit log of every state change, and the prediction log",
                _event_logs),
    Subcategory("A.7.2", "Data for development and enhancement of AI system: define, document "
                "and implement data management processes.",
                "datasets named by fingerprint per role, and audited erasure of a data "
                "subject's rows (`driftloop erase`)", _data_management),
    Subcategory("A.7.4", "Quality of data for AI systems: define and document data-quality "
                "requirements and ensure the data meets them.",
                "the data check (schema, missing, duplicates, leakage, label issues, PII) and "
                "the deep check for poisoned rows (spectral signatures, activation clustering)",
                _data_quality),
    Subcategory("A.7.5", "Data provenance: record the provenance of the data used, over the "
                "data's and the system's life cycles.",
                "every run links its source and split datasets by fingerprint; versions link "
                "their parents", _provenance),
    Subcategory("A.7.6", "Data preparation: define and document the criteria for selecting "
                "data preparations and the methods used.",
                "preprocessing fitted on the training split only, stored with the version; PII "
                "columns left out unless allowed", _data_preparation),
    Subcategory("A.8.2", "System documentation and information for users.",
                "the model card's intended use, users and out-of-scope uses", _map_1_1),
    Subcategory("A.8.4", "Communication of incidents to users of the system.",
                "alerts posted to the webhooks of monitor.webhooks, each delivery recorded",
                _manage_4_3),
)
"""The Annex A controls served, in report order (numbers and titles of ISO/IEC 42001:2023)."""

NOT_SERVED: tuple[tuple[str, str], ...] = (
    ("A.2 (A.2.2-A.2.4)", "the AI policy, its alignment and review are organisational "
     "documents; the gate policy is one technical part of them"),
    ("A.3 (A.3.2-A.3.3)", "roles, responsibilities and reporting of concerns are about people"),
    ("A.4.2, A.4.3, A.4.5, A.4.6", "resource documentation, computing and human resources are "
     "organisational (data resources are shown under A.7)"),
    ("A.5.2, A.5.3, A.5.5", "the impact-assessment process and societal impacts need human "
     "judgement; A.5.4 shows only the measured privacy part"),
    ("A.6.1.2, A.6.1.3, A.6.2.2", "objectives, processes and requirements for responsible "
     "development are written by the organisation (the gate policy encodes some of them)"),
    ("A.7.3", "how data was acquired (consent, licences) is not known to the store"),
    ("A.8.3, A.8.5", "external reporting and information for other interested parties are "
     "organisational"),
    ("A.9 (A.9.2-A.9.4)", "responsible-use processes and objectives are organisational; the "
     "card's intended use is shown under A.8.2"),
    ("A.10 (A.10.2-A.10.4)", "third-party, supplier and customer relationships are contracts"),
)
"""Annex A controls driftloop does not serve, with why."""


__all__ = ["CONTROLS", "FRAMEWORK", "NOT_SERVED"]
