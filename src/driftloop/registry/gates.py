"""Promotion gates: the evidence a version must show before an alias may point at it.

Each gate is a :class:`Gate` in :data:`GATES` (a table, not a chain of ifs): a name, what it
checks, and a function from the :class:`Evidence` and the ``gates:`` policy
(:class:`driftloop.config.GateSettings`) to :class:`GateResult` records (name, passed,
measured, bound, detail). A gate whose evidence is missing fails and says what to run; a gate
that does not apply (calibration of a regression model) passes and says why.

==================  =====================================================================
gate                passes when
==================  =====================================================================
metrics             every metric in ``metric_bounds`` is at least (error metrics: at most)
                    its bound
calibration         ECE of the calibrated probabilities ≤ ``max_ece`` (classification)
slices              no slice flagged by the evaluation is worse than overall by more than
                    ``slice_tolerance`` (table models)
data_check          the data check of the training data found no error
pii                 no feature holds personal data, unless named in ``allow_pii``
card                the model card text named in ``card_required`` is written
holder              on the same rows as the alias's holder (at least ``min_holdout_rows``),
                    the ``confidence`` interval of the paired difference in
                    ``compare_metric`` lies above 0 (``holder_policy: superior``) or above
                    −``margin`` (``non_inferior``)
robustness          off unless ``max_robust_drop`` is set: the upper bound of the paired
                    interval of clean − PGD accuracy (at ``robust_epsilon``) ≤ it
privacy             (only when ``privacy_auc_max`` is set) the upper bound of the strongest
                    membership-inference attack's AUC interval ≤ ``privacy_auc_max``
                    (``driftloop evaluate NAME:V DATA --privacy``)
student             (only when ``student_max_drop`` or ``student_min_shrink`` is set, and
                    only for a version ``driftloop distill`` made) on the same test rows as
                    its teacher, the upper bound of the paired interval of teacher − student
                    in ``compare_metric`` ≤ ``student_max_drop``; and teacher parameters /
                    student parameters ≥ ``student_min_shrink``
==================  =====================================================================

The holder gate never decides on two point estimates: both versions' evaluation reports keep
each row's outcome (:class:`driftloop.evaluate.paired.RowOutcomes`), and when they scored the
same rows (same data fingerprint, same targets) :func:`driftloop.evaluate.paired.paired_difference`
bootstraps the difference on shared resamples. Without such a pair of reports it fails and says
how to get one (``--data HOLDOUT`` evaluates both on one holdout).

Examples
--------
>>> from datetime import datetime, timezone
>>> from driftloop.config import GateSettings
>>> from driftloop.store import VersionRecord
>>> v = VersionRecord(1, "churn", 1, None, datetime(2024, 1, 1, tzinfo=timezone.utc),
...                   "binary", "table", "a" * 64, "b" * 64, {"roc_auc": 0.41, "ece": 0.02},
...                   10, None, None)
>>> report = run_gates(Evidence(v, "production", card_missing=["caveats"]), GateSettings())
>>> report.passed
False
>>> print(report.summary())
churn v1 → production: 5 of 10 gates failed
  FAIL metric:roc_auc   measured 0.41  bound >= 0.5  roc_auc 0.41 (test metrics recorded at registration; no interval)
  ok   calibration      measured 0.02  bound <= 0.1  ECE 0.02 (test metrics recorded at registration)
  FAIL slices           measured None  bound <= 0.05  missing evidence: no evaluation report with slices is linked to churn v1; run `driftloop evaluate churn:1 DATA --slices COL,...`
  FAIL data_check       measured None  bound 0 errors  missing evidence: no data check of churn v1's training data is stored; run `driftloop data check DATA --target COL` on the data it was trained on
  FAIL pii              measured None  bound none  missing evidence: no data check of churn v1's training data is stored, so its features were not scanned for personal data
  FAIL card             measured ['caveats']  bound ['intended_use', 'ethical_considerations', 'caveats']  model card text missing: caveats (write it under `card:` in driftloop.yaml)
  ok   holder           measured None  bound None  production has no holder yet
  ok   robustness       measured None  bound None  off: gates.max_robust_drop is not set
  ok   privacy          measured None  bound None  off: gates.privacy_auc_max is not set
  ok   student          measured None  bound None  off: gates.student_max_drop is not set
"""  # noqa: E501

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from driftloop.config import GateSettings
from driftloop.errors import CheckFailed, ConfigError
from driftloop.evaluate.metrics import METRICS, Metric, primary_metric
from driftloop.evaluate.paired import PAIRED_METRICS, RowOutcomes, paired_difference
from driftloop.registry.distillation import distill_record
from driftloop.registry.evidence import DataCheck, Evaluation
from driftloop.store import VersionRecord, canonical_json


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate: what was measured, against which bound, and why.

    ``details`` holds a gate's numbers for machines (the holder gate: the paired difference,
    its interval, the policy); None for gates whose ``measured`` says it all.

    Examples
    --------
    >>> GateResult("calibration", True, 0.03, "<= 0.1", "ECE 0.03").to_json()["passed"]
    True
    """

    name: str
    passed: bool
    measured: Any
    bound: Any
    detail: str
    details: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "measured": self.measured,
                "bound": self.bound, "detail": self.detail, "details": self.details}

    def line(self) -> str:
        return (f"{'ok  ' if self.passed else 'FAIL'} {self.name:<16} measured "
                f"{_show(self.measured)}  bound {_show(self.bound)}  {self.detail}")


@dataclass(frozen=True)
class Evidence:
    """Everything the gates look at, gathered from the store by the registry.

    Attributes
    ----------
    candidate, alias
        The version to promote and the alias it would get.
    holder
        The version the alias points at now (None: nobody yet).
    evaluation
        The candidate's evaluation report the gates read (None: none is stored).
    holder_evaluation
        The holder's evaluation report on the same data as ``evaluation`` (None: none).
    same_test_split
        True when candidate and holder were tested on the same test split (fingerprint); the
        holder gate only says so when it finds no pair of reports to compare.
    data_check
        The newest data check of the candidate's training data.
    features
        The feature columns of a table model (None for image and sequence models).
    card_missing
        Required model-card text that is not written (None: not looked up, which fails).
    """

    candidate: VersionRecord
    alias: str
    holder: VersionRecord | None = None
    evaluation: Evaluation | None = None
    holder_evaluation: Evaluation | None = None
    same_test_split: bool = False
    data_check: DataCheck | None = None
    features: list[str] | None = field(default_factory=list)
    card_missing: list[str] | None = None
    privacy: Evaluation | None = None  # the newest evaluation with a privacy audit
    # a distilled candidate's teacher, and the two versions' reports on the same data
    teacher: VersionRecord | None = None
    student_evaluation: Evaluation | None = None
    teacher_evaluation: Evaluation | None = None

    @property
    def ref(self) -> str:
        return f"{self.candidate.model_name} v{self.candidate.version}"


Check = Callable[[Evidence, GateSettings], list[GateResult]]


@dataclass(frozen=True)
class Gate:
    """One gate: its name, what it checks, and its check."""

    name: str
    description: str
    check: Check


def _missing(name: str, bound: Any, why: str) -> list[GateResult]:
    return [GateResult(name, False, None, bound, f"missing evidence: {why}")]


def _off(name: str, setting: str) -> list[GateResult]:
    """An optional gate the policy leaves off: reported (so nobody reads it as forgotten) and
    passed."""
    return [GateResult(name, True, None, None, f"off: gates.{setting} is not set")]


def _not_applicable(name: str, why: str) -> list[GateResult]:
    return [GateResult(name, True, None, None, f"not applicable: {why}")]


def _known_metric(name: str, setting: str) -> Metric:
    metric = METRICS.get(name)
    if metric is None:
        raise ConfigError(
            f"setting 'gates.{setting}' names metric {name!r}, which is not one of "
            f"{', '.join(METRICS)}. Fix driftloop.yaml."
        )
    return metric


def _applies(metric: Metric, task: str) -> bool:
    return metric.kind == ("regression" if task == "regression" else "classification")


def _value(ev: Evidence, version: VersionRecord, evaluation: Evaluation | None,
           name: str) -> tuple[float, str] | None:
    """A metric's value and a description of where it came from."""
    if evaluation is not None:
        found = evaluation.metric(name)
        if found is not None:
            band = ("" if found.get("low") is None
                    else f" [{found['low']:.4g}, {found['high']:.4g}]")
            value = float(found["value"])
            return value, f"{name} {value:.4g}{band} ({evaluation.label()})"
    value = version.metrics.get(name)
    if isinstance(value, (int, float)):
        return float(value), (f"{name} {value:.4g} (test metrics recorded at registration; "
                              "no interval)")
    return None


def _check_metrics(ev: Evidence, policy: GateSettings) -> list[GateResult]:
    results = []
    for name, bound in policy.metric_bounds.items():
        metric = _known_metric(name, "metric_bounds")
        if not _applies(metric, ev.candidate.task):
            continue
        op = ">=" if metric.greater_is_better else "<="
        found = _value(ev, ev.candidate, ev.evaluation, name)
        if found is None:
            results += _missing(f"metric:{name}", f"{op} {bound:g}",
                                f"{ev.ref} has no measured {name}; run `driftloop evaluate "
                                f"{ev.candidate.model_name}:{ev.candidate.version} DATA`")
            continue
        value, detail = found
        passed = value >= bound if metric.greater_is_better else value <= bound
        results.append(GateResult(f"metric:{name}", passed, round(value, 6), f"{op} {bound:g}",
                                  detail))
    return results or [GateResult("metrics", True, None, None,
                                  f"no bound in gates.metric_bounds applies to a "
                                  f"{ev.candidate.task} model")]


def _check_calibration(ev: Evidence, policy: GateSettings) -> list[GateResult]:
    bound = f"<= {policy.max_ece:g}"
    if ev.candidate.task == "regression":
        return _not_applicable("calibration", "a regression model has no probabilities")
    if ev.evaluation is not None and ev.evaluation.ece is not None:
        ece, source = ev.evaluation.ece, ev.evaluation.label()
    elif isinstance(ev.candidate.metrics.get("ece"), (int, float)):
        ece, source = float(ev.candidate.metrics["ece"]), "test metrics recorded at registration"
    else:
        return _missing("calibration", bound, f"no expected calibration error of {ev.ref} is "
                        "stored; evaluate it with `driftloop evaluate`")
    return [GateResult("calibration", ece <= policy.max_ece, round(ece, 6), bound,
                       f"ECE {ece:.4g} ({source})")]


def _check_slices(ev: Evidence, policy: GateSettings) -> list[GateResult]:
    bound = f"<= {policy.slice_tolerance:g}"
    if ev.features is None:
        return _not_applicable("slices", f"{ev.ref} reads no table columns to slice by")
    slices = ev.evaluation.slices if ev.evaluation is not None else None
    if slices is None:
        return _missing("slices", bound, f"no evaluation report with slices is linked to "
                        f"{ev.ref}; run `driftloop evaluate {ev.candidate.model_name}:"
                        f"{ev.candidate.version} DATA --slices COL,...`")
    relative = slices.get("tolerance_kind") == "relative"
    overall = abs(float(slices.get("overall") or 0.0)) or 1.0
    offenders = []
    for s in slices.get("slices") or []:
        if not s.get("flagged") or s.get("gap") is None:
            continue
        size = abs(float(s["gap"])) / (overall if relative else 1.0)
        offenders.append((size, s))
    offenders.sort(key=lambda pair: pair[0], reverse=True)
    worst = round(offenders[0][0], 6) if offenders else 0.0
    failing = [(size, s) for size, s in offenders if size > policy.slice_tolerance]
    kind = "relative" if relative else "absolute"
    if not failing:
        detail = (f"{len(offenders)} flagged slice(s), none worse than {kind} tolerance "
                  f"{policy.slice_tolerance:g} ({ev.evaluation.label()})"  # type: ignore[union-attr]
                  if offenders else f"no slice of {slices.get('metric')} is flagged "
                  f"({ev.evaluation.label()})")  # type: ignore[union-attr]
        return [GateResult("slices", True, worst, bound, detail)]
    listed = "; ".join(
        f"{s['column']} = {s['value']} ({s['count']} rows, {slices.get('metric')} "
        f"{(s.get('metric') or {}).get('value', float('nan')):.4g}, gap {s['gap']:+.4g})"
        for _, s in failing[:5]
    )
    return [GateResult("slices", False, worst, bound,
                       f"{len(failing)} slice(s) worse than overall "
                       f"{slices.get('overall', float('nan')):.4g} by more than the {kind} "
                       f"tolerance: {listed}")]


def _check_data(ev: Evidence, policy: GateSettings) -> list[GateResult]:
    if ev.data_check is None:
        return _missing("data_check", "0 errors", f"no data check of {ev.ref}'s training data "
                        "is stored; run `driftloop data check DATA --target COL` on the data it "
                        "was trained on")
    check = ev.data_check
    detail = (f"{check.label()} passed" if check.passed
              else f"{check.label()} found {check.errors} error(s); see `driftloop data check`")
    return [GateResult("data_check", check.passed, check.errors, "0 errors", detail)]


def _check_pii(ev: Evidence, policy: GateSettings) -> list[GateResult]:
    bound = "none" if not policy.allow_pii else f"none except {', '.join(policy.allow_pii)}"
    if ev.features is None:
        return _not_applicable("pii", f"{ev.ref} reads no table columns")
    if ev.data_check is None:
        return _missing("pii", bound, f"no data check of {ev.ref}'s training data is stored, so "
                        "its features were not scanned for personal data")
    found = [c for c in ev.data_check.pii_columns if c in ev.features]
    offending = [c for c in found if c not in policy.allow_pii]
    allowed = [c for c in found if c in policy.allow_pii]
    if offending:
        detail = (f"features holding personal data: {', '.join(offending)}; drop them or add "
                  "them to gates.allow_pii")
    else:
        detail = "no feature holds personal data" + (
            f" except the allowed {', '.join(allowed)}" if allowed else "")
    return [GateResult("pii", not offending, offending, bound,
                       f"{detail} ({ev.data_check.label()})")]


def _check_card(ev: Evidence, policy: GateSettings) -> list[GateResult]:
    if ev.card_missing is None:
        return _missing("card", list(policy.card_required),
                        f"the model card text of {ev.ref} was not looked up")
    missing = list(ev.card_missing)
    detail = ("the required model card text is written" if not missing else
              f"model card text missing: {', '.join(missing)} (write it under `card:` in "
              "driftloop.yaml)")
    return [GateResult("card", not missing, missing, list(policy.card_required), detail)]


def _check_privacy(ev: Evidence, policy: GateSettings) -> list[GateResult]:
    limit = policy.privacy_auc_max
    if limit is None:
        return _off("privacy", "privacy_auc_max")
    bound = f"<= {limit:g}"
    privacy = None if ev.privacy is None else ev.privacy.body.get("privacy")
    if ev.privacy is None or not privacy:
        return _missing("privacy", bound, f"no membership-inference audit of {ev.ref} is "
                        f"stored; run `driftloop evaluate {ev.candidate.model_name}:"
                        f"{ev.candidate.version} DATA --privacy`")
    source = ev.privacy.label()
    attacks = privacy.get("attacks") or {}
    # the stronger attack is the one whose interval reaches higher: the gate bounds the worst
    name = max(attacks, key=lambda k: attacks[k]["auc"].get("high") or attacks[k]["auc"]["value"])
    attack, auc = attacks[name], attacks[name]["auc"]
    if auc.get("high") is None:
        return [GateResult("privacy", False, None, bound, f"the {name} attack's AUC has no "
                           f"interval ({source}); audit again on more rows")]
    high = float(auc["high"])
    detail = (f"strongest attack {name}: AUC {auc['value']:.4g} [{auc['low']:.4g}, {high:.4g}] "
              f"on {attack['members']} training rows vs {attack['non_members']} unseen rows; "
              f"the upper bound must be at most {limit:g} ({source})")
    return [GateResult("privacy", high <= limit, round(high, 6), bound, detail,
                       {"attack": name, "auc": dict(auc),
                        "report": ev.privacy.report.artifact_sha256})]


_SEED = 0  # the paired bootstrap's draws: fixed, so a decision can be recomputed exactly


def _check_holder(ev: Evidence, policy: GateSettings) -> list[GateResult]:
    holder = ev.holder
    if holder is None:
        return [GateResult("holder", True, None, None, f"{ev.alias} has no holder yet")]
    if holder.id == ev.candidate.id:
        return [GateResult("holder", True, 0.0, None, f"{ev.ref} already holds {ev.alias}")]
    who = f"v{holder.version} (holder of {ev.alias})"
    if holder.task != ev.candidate.task:
        return [GateResult("holder", False, None, None, f"cannot compare a {ev.candidate.task} "
                           f"model with {who}, a {holder.task} model")]
    name = policy.compare_metric or primary_metric(ev.candidate.task)
    metric = _known_metric(name, "compare_metric")
    paired = PAIRED_METRICS.get(name)
    if paired is None:
        raise ConfigError(
            f"setting 'gates.compare_metric' names {name!r}, which the holder gate cannot "
            f"compare row by row; use one of {', '.join(PAIRED_METRICS)} (accuracy for "
            "classification, rmse or mae for regression). Fix driftloop.yaml."
        )
    superior = policy.holder_policy == "superior"
    kind = "absolute" if metric.bounded else "relative"
    bound = "> 0" if superior else f"> -{policy.margin:g} ({kind})"
    if not _applies(metric, ev.candidate.task):
        return [GateResult("holder", False, None, bound, f"setting 'gates.compare_metric' is "
                           f"{name}, which a {ev.candidate.task} model does not have; set it to "
                           f"{primary_metric(ev.candidate.task)} or leave it unset")]
    if ev.evaluation is None or ev.holder_evaluation is None:
        split = (" (both were tested on the same test split, but no report of that split "
                 "is stored for both)" if ev.same_test_split else "")
        return _missing("holder", bound,
                        f"{ev.ref} and {who} were never evaluated on the same data{split}, so "
                        "they cannot be compared on paired rows; evaluate both on one holdout "
                        f"(`driftloop models gate {ev.candidate.model_name} "
                        f"{ev.candidate.version} --to {ev.alias} --data HOLDOUT`)")
    outcomes = {}
    for version, evaluation in ((ev.candidate, ev.evaluation), (holder, ev.holder_evaluation)):
        found = _row_outcomes(evaluation)
        if found is None:
            return _missing("holder", bound,
                            f"{evaluation.label()} of v{version.version} keeps no per-row "
                            "outcomes (stored by an older driftloop), so it cannot be paired "
                            "row by row; evaluate both again on one holdout (`driftloop models "
                            f"gate {ev.candidate.model_name} {ev.candidate.version} --to "
                            f"{ev.alias} --data HOLDOUT`)")
        outcomes[version.id] = found
    mine, theirs = outcomes[ev.candidate.id], outcomes[holder.id]
    misaligned = mine.aligned_with(theirs)
    if misaligned is not None:
        return [GateResult("holder", False, None, bound,
                           f"{ev.ref} and {who} were evaluated on data with the same "
                           f"fingerprint but not on the same rows ({misaligned}); evaluate both "
                           "on one holdout with --data HOLDOUT")]
    if mine.rows < policy.min_holdout_rows:
        return [GateResult("holder", False, mine.rows, f">= {policy.min_holdout_rows} rows",
                           f"only {mine.rows} paired rows ({ev.evaluation.label()}): the holder "
                           f"gate needs at least gates.min_holdout_rows = "
                           f"{policy.min_holdout_rows} to tell {ev.ref} from {who}; evaluate "
                           f"both on a holdout of {policy.min_holdout_rows} rows or more "
                           "(--data HOLDOUT), or lower gates.min_holdout_rows")]
    c = paired_difference(name, mine, theirs, confidence=policy.confidence,
                          n_resamples=policy.resamples, seed=_SEED)
    allowed = 0.0 if superior else (policy.margin if metric.bounded
                                    else policy.margin * abs(c.holder))
    passed = c.low > -allowed
    rows = (f"{c.rows} paired rows" if mine.kept == mine.rows
            else f"{c.rows} of {mine.rows} paired rows (hashed subsample)")
    rule = ("superior: the interval must lie above 0" if superior else
            f"non_inferior: the interval must lie above -{allowed:.4g} (margin "
            f"{policy.margin:g}, {kind})")
    verdict = ("" if passed else "; the candidate is not shown better" if superior
               else "; the candidate may be worse by more than the margin")
    detail = (f"{name} {c.candidate:.4g} vs {c.holder:.4g} of {who} on {rows}, "
              f"{c.disagreements} of them scored differently: difference {c.difference:+.4g}, "
              f"{c.confidence:.0%} interval [{c.low:+.4g}, {c.high:+.4g}] (positive: candidate "
              f"better); policy {rule}{verdict} ({ev.evaluation.label()})")
    details = {**c.to_json(), "policy": policy.holder_policy, "threshold": -allowed + 0.0,
               "margin": None if superior else policy.margin,
               "candidate_report": ev.evaluation.report.artifact_sha256,
               "holder_report": ev.holder_evaluation.report.artifact_sha256}
    return [GateResult("holder", passed, round(c.low, 6), f"> {-allowed + 0.0:.4g}", detail,
                       details)]


def _check_robustness(ev: Evidence, policy: GateSettings) -> list[GateResult]:
    if policy.max_robust_drop is None:
        return _off("robustness", "max_robust_drop")
    bound = f"<= {policy.max_robust_drop:g}"
    if ev.candidate.task == "regression":
        return _not_applicable("robustness", "a regression model has no accuracy to attack")
    command = f"driftloop evaluate {ev.candidate.model_name}:{ev.candidate.version} DATA"
    evaluation = ev.evaluation
    section = evaluation.robustness if evaluation is not None else None
    if evaluation is None or section is None:
        return _missing("robustness", bound, f"no evaluation report of {ev.ref} holds a "
                        f"robustness section; run `{command}` with evaluate.robustness on")
    if not section.get("applicable"):
        return _not_applicable("robustness", str(section.get("reason")))
    results = section.get("results") or []
    if not results:
        return _missing("robustness", bound, f"the robustness section of {evaluation.label()} "
                        f"holds no result; run `{command}`")
    wanted = (policy.robust_epsilon if policy.robust_epsilon is not None
              else max(float(r["epsilon"]) for r in results))
    found = next((r for r in results if math.isclose(float(r["epsilon"]), wanted)), None)
    if found is None:
        listed = ", ".join(f"{float(r['epsilon']):g}" for r in results)
        return _missing("robustness", bound, f"{evaluation.label()} measured "
                        f"epsilon {listed}, not gates.robust_epsilon = {wanted:g}; run "
                        f"`{command} --robustness-epsilon {wanted:g}`")
    drop, acc = found["drop"], found["accuracy"]
    passed = float(drop["high"]) <= policy.max_robust_drop
    detail = (f"accuracy {acc['clean']['value']:.4g} clean, {acc['pgd']['value']:.4g} under "
              f"PGD at epsilon {wanted:g} (standardised units): drop {drop['value']:+.4g}, "
              f"{drop['confidence']:.0%} paired interval [{drop['low']:+.4g}, "
              f"{drop['high']:+.4g}]; its upper bound must be {bound}"
              + ("" if passed else "; the model may lose more accuracy than allowed")
              + f" ({evaluation.label()})")
    return [GateResult("robustness", passed, round(float(drop["high"]), 6), bound, detail,
                       {"epsilon": wanted, **found})]


def _check_student(ev: Evidence, policy: GateSettings) -> list[GateResult]:
    if policy.student_max_drop is None and policy.student_min_shrink is None:
        return _off("student", "student_max_drop")
    record = distill_record(ev.candidate)
    if record is None:
        return [GateResult("student", True, None, None,
                           f"off: {ev.ref} was not distilled (`driftloop distill`)")]
    results = []
    if policy.student_min_shrink is not None:
        shrink = policy.student_min_shrink
        results.append(GateResult(
            "student:size", record.param_ratio >= shrink, record.param_ratio, f">= {shrink:g}",
            f"{record.teacher_params:,} teacher parameters ({record.teacher}) / "
            f"{record.student_params:,} student parameters = {record.param_ratio:.4g}x; the "
            f"policy asks at least {shrink:g}x", {"teacher_params": record.teacher_params,
                                                   "student_params": record.student_params}))
    if policy.student_max_drop is not None:
        results.append(_student_drop(ev, policy, record.teacher))
    return results


def _student_drop(ev: Evidence, policy: GateSettings, teacher_ref: str) -> GateResult:
    """Teacher − student on the same rows, by a paired bootstrap; its upper bound is gated."""
    limit = float(policy.student_max_drop)  # type: ignore[arg-type]
    name = policy.compare_metric or primary_metric(ev.candidate.task)
    metric = _known_metric(name, "compare_metric")
    kind = "absolute" if metric.bounded else "relative"
    bound = f"<= {limit:g} ({kind})"
    ref = f"{ev.candidate.model_name}:{ev.candidate.version}"
    if ev.teacher is None:
        return GateResult("student:metric", False, None, bound, f"missing evidence: the "
                          f"teacher {teacher_ref} of {ev.ref} is not in the store")
    if name not in PAIRED_METRICS or not _applies(metric, ev.candidate.task):
        return GateResult("student:metric", False, None, bound, f"setting "
                          f"'gates.compare_metric' is {name}, which cannot be compared row by "
                          f"row for a {ev.candidate.task} model; leave it unset")
    mine, theirs = ev.student_evaluation, ev.teacher_evaluation
    outcomes = (None if mine is None or theirs is None
                else (_row_outcomes(mine), _row_outcomes(theirs)))
    if outcomes is None or outcomes[0] is None or outcomes[1] is None:
        return GateResult("student:metric", False, None, bound, f"missing evidence: {ev.ref} "
                          f"and its teacher {teacher_ref} have no reports on the same data with "
                          f"per-row outcomes; evaluate both on one holdout (`driftloop "
                          f"evaluate {ref} DATA` and `driftloop evaluate {teacher_ref} DATA`)")
    student, teacher = outcomes
    misaligned = student.aligned_with(teacher)
    if misaligned is not None:
        return GateResult("student:metric", False, None, bound, f"{ev.ref} and its teacher "
                          f"were not scored on the same rows ({misaligned}); evaluate both on "
                          "one holdout")
    if student.rows < policy.min_holdout_rows:
        return GateResult("student:metric", False, student.rows,
                          f">= {policy.min_holdout_rows} rows", f"only {student.rows} paired "
                          f"rows: the student gate needs at least gates.min_holdout_rows = "
                          f"{policy.min_holdout_rows}; evaluate both on a larger holdout")
    c = paired_difference(name, student, teacher, confidence=policy.confidence,
                          n_resamples=policy.resamples, seed=_SEED)
    # c.difference is the student's improvement; the drop is its negative
    drop, drop_high = -c.difference + 0.0, -c.low + 0.0
    allowed = limit if metric.bounded else limit * abs(c.holder)
    passed = drop_high <= allowed
    detail = (f"{name} {c.candidate:.4g} vs teacher {teacher_ref} {c.holder:.4g} on {c.rows} "
              f"paired rows ({c.disagreements} scored differently): drop {drop:+.4g}, "
              f"{c.confidence:.0%} interval [{-c.high + 0.0:+.4g}, {drop_high:+.4g}]; its upper "
              f"bound must be at most {allowed:.4g}"
              + ("" if passed else "; the student may lose more than allowed")
              + f" ({mine.label()})")  # type: ignore[union-attr]
    return GateResult("student:metric", passed, round(drop_high, 6), f"<= {allowed:.4g}",
                      detail, {**c.to_json(), "drop": drop, "drop_high": drop_high,
                               "allowed": allowed, "teacher": teacher_ref})


def _row_outcomes(evaluation: Evaluation) -> RowOutcomes | None:
    stored = evaluation.body.get("per_row")
    return None if not stored else RowOutcomes.from_json(stored)


GATES: dict[str, Gate] = {
    g.name: g
    for g in (
        Gate("metrics", "each bounded metric is on the right side of its bound", _check_metrics),
        Gate("calibration", "expected calibration error at most max_ece", _check_calibration),
        Gate("slices", "no flagged slice worse than slice_tolerance", _check_slices),
        Gate("data_check", "the training data's check found no error", _check_data),
        Gate("pii", "no feature holds personal data unless allowed", _check_pii),
        Gate("card", "the required model card text is written", _check_card),
        Gate("holder", "better than the alias's holder on paired rows (or not worse by more "
             "than margin, non_inferior)", _check_holder),
        Gate("robustness", "accuracy lost under PGD at most max_robust_drop (off when unset)",
             _check_robustness),
        Gate("privacy", "membership-inference attack AUC (upper bound) at most privacy_auc_max",
             _check_privacy),
        Gate("student", "a distilled student within student_max_drop of its teacher on paired "
             "rows and at least student_min_shrink times smaller (off when unset)",
             _check_student),
    )
}
"""Every gate, in the order they are run and reported."""


def policy_sha256(policy: GateSettings) -> str:
    """The sha256 of the canonical policy, recorded with every gate decision.

    >>> policy_sha256(GateSettings()) == policy_sha256(GateSettings(max_ece=0.1))
    True
    """
    return hashlib.sha256(canonical_json(policy.model_dump())).hexdigest()


@dataclass(frozen=True)
class GateReport:
    """Every gate's result for one candidate and alias, and the policy they were run under."""

    model_name: str
    version: int
    alias: str
    holder_version: int | None
    results: list[GateResult]
    policy: dict[str, Any]
    policy_sha256: str
    evaluation: dict[str, Any] | None = None  # the evaluation data the gates read

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> list[GateResult]:
        return [r for r in self.results if not r.passed]

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model_name, "version": self.version, "alias": self.alias,
            "holder_version": self.holder_version, "passed": self.passed,
            "failed": [r.name for r in self.failed],
            "results": [r.to_json() for r in self.results], "evaluation": self.evaluation,
            "policy": self.policy, "policy_sha256": self.policy_sha256,
        }

    def summary(self) -> str:
        head = (f"{self.model_name} v{self.version} → {self.alias}: "
                + (f"all {len(self.results)} gates passed" if self.passed
                   else f"{len(self.failed)} of {len(self.results)} gates failed"))
        return "\n".join([head] + [f"  {r.line()}" for r in self.results])


class GateRefused(CheckFailed):
    """A promotion was refused by its gates; ``report`` holds every result."""

    def __init__(self, report: GateReport) -> None:
        lines = [f"  {r.name}: measured {_show(r.measured)}, bound {_show(r.bound)} — {r.detail}"
                 for r in report.failed]
        super().__init__(
            f"promotion of {report.model_name} v{report.version} to {report.alias} refused: "
            f"{len(report.failed)} gate(s) failed\n" + "\n".join(lines)
            + "\nFix the evidence, or override with --force --reason TEXT (audited)."
        )
        self.report = report


def run_gates(evidence: Evidence, policy: GateSettings) -> GateReport:
    """Run every gate of :data:`GATES` on ``evidence`` under ``policy``.

    Gates named in ``policy.skip`` are reported as skipped (passed) rather than left out, so
    the report always shows the whole policy.
    """
    unknown = [name for name in policy.skip if name not in GATES]
    if unknown:
        raise ConfigError(
            f"setting 'gates.skip' names {unknown[0]!r}, which is not one of "
            f"{', '.join(GATES)}. Fix driftloop.yaml."
        )
    results: list[GateResult] = []
    for gate in GATES.values():
        if gate.name in policy.skip:
            results.append(GateResult(gate.name, True, None, None, "skipped: named in gates.skip"))
        else:
            results += gate.check(evidence, policy)
    ev = evidence.evaluation
    return GateReport(
        model_name=evidence.candidate.model_name, version=evidence.candidate.version,
        alias=evidence.alias,
        holder_version=None if evidence.holder is None else evidence.holder.version,
        results=results, policy=policy.model_dump(), policy_sha256=policy_sha256(policy),
        evaluation=None if ev is None else {
            "report_artifact": ev.report.artifact_sha256, **ev.dataset,
        },
    )


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


__all__ = [
    "GATES",
    "Evidence",
    "Gate",
    "GateRefused",
    "GateReport",
    "GateResult",
    "policy_sha256",
    "run_gates",
]
