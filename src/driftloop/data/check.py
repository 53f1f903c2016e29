"""``dl.check_data``: one report of what in a table would hurt a model trained on it.

Every finding names its check, a severity (``info`` < ``warning`` < ``error``), the columns and
rows involved (0-based data-row positions, at most ``check.max_rows_listed``), a count, and what
to do. The checks, in report order:

================== ========= ==========================================================
check              severity  finds
================== ========= ==========================================================
excluded_column    warning   columns left out of the features (all missing, datetime, …)
constant_column    warning   columns with one value
id_like_column     warning   columns whose every value is distinct (identifiers)
missing_target     warning   rows without a target (training drops them)
missing_values     info/warn missing share per feature column
duplicate_rows     info/warn exact duplicate rows
class_imbalance    info/warn minority share, imbalance ratio, balanced class weights
target_leakage     error     a feature that predicts the target alone (AUC ≥ 0.99)
row_overlap        error     rows of DATA also in OTHER (``against``)
near_row_overlap   warning   rows of DATA in OTHER after rounding numbers
group_overlap      error     values of the group column in both tables (warning: id columns)
label_errors       info/warn likely mislabelled rows (cross-validated model + cleanlab)
pii                warning   columns holding personal data (excluded from training)
backdoor           error     planted rows (``--deep``: :mod:`driftloop.loop.deep_check`)
deep_check         info      what ``--deep`` screened, beside the label-error count
================== ========= ==========================================================

The report states the dataset's provenance (fingerprint, source, rows, schema); passing a
``store`` (and ``artifacts``) records the dataset and the report there.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.choice(["x", "y"], 300)})
>>> frame["label"] = np.where(frame["a"] + rng.normal(0, .5, 300) > 1.0, "yes", "no")
>>> frame.loc[:29, "a"] = None
>>> report = check_data(frame, target="label")
>>> report.task, report.rows, report.passed
('binary', 300, True)
>>> for f in report.findings:
...     print(f.severity, f.check, f.count)
info missing_values 30
warning duplicate_rows 27
info class_imbalance 55
warning label_errors 14
>>> report.to_json()["findings"][0]["message"]
'missing values: a 10.0%'
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from driftloop.config import CheckSettings, Settings
from driftloop.data.fingerprint import fingerprint_frame
from driftloop.data.label_errors import find_label_errors
from driftloop.data.leakage import feature_aucs, row_overlap, value_overlap
from driftloop.data.pii import scan_pii
from driftloop.data.read import read_table
from driftloop.data.schema import Schema, Task, infer_schema
from driftloop.data.values import category_keys, missing_mask
from driftloop.errors import DataError, UsageError
from driftloop.timing import phase

if TYPE_CHECKING:
    from driftloop.store import ArtifactStore, ReportRecord, Store

Severity = Literal["info", "warning", "error"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "error")
CHECKS: tuple[str, ...] = (
    "excluded_column", "constant_column", "id_like_column", "missing_target", "missing_values",
    "duplicate_rows", "class_imbalance", "target_leakage", "row_overlap", "near_row_overlap",
    "group_overlap", "label_errors", "pii", "backdoor", "deep_check",
)
MIN_LABEL_ROWS = 50  # fewer rows: too few to cross-validate a model on


@dataclass(frozen=True)
class Finding:
    """One problem found in the data."""

    check: str
    severity: Severity
    message: str
    columns: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)  # 0-based data-row positions, capped
    count: int = 0
    advice: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check, "severity": self.severity, "columns": list(self.columns),
            "rows": list(self.rows), "count": self.count, "message": self.message,
            "advice": self.advice, "details": dict(self.details),
        }


@dataclass(frozen=True)
class DataReport:
    """The data check of one table (and of its overlap with another)."""

    source_uri: str
    fingerprint: str
    rows: int
    task: Task
    target: str
    columns: dict[str, str]  # feature -> kind
    excluded: dict[str, str]  # column -> reason
    findings: list[Finding]
    against: dict[str, Any] | None = None  # fingerprint, source, rows of OTHER

    @property
    def passed(self) -> bool:
        """True when no finding is an error."""
        return not any(f.severity == "error" for f in self.findings)

    @property
    def pii_columns(self) -> list[str]:
        """Columns found to hold personal data."""
        return [c for f in self.findings if f.check == "pii" for c in f.columns]

    def worst(self) -> Severity | None:
        """The most severe finding's severity (None when there is none)."""
        return next((s for s in reversed(SEVERITIES) if self.failing(s)), None)

    def failing(self, level: Severity) -> list[Finding]:
        """Findings at least as severe as ``level``."""
        if level not in SEVERITIES:
            raise UsageError(f"severity must be one of {', '.join(SEVERITIES)}. Got {level!r}.")
        rank = SEVERITIES.index(level)
        return [f for f in self.findings if SEVERITIES.index(f.severity) >= rank]

    def to_json(self) -> dict[str, Any]:
        counts = {s: sum(f.severity == s for f in self.findings) for s in SEVERITIES}
        return {
            "dataset": {
                "fingerprint": self.fingerprint, "source": self.source_uri, "rows": self.rows,
                "schema": {
                    "target": self.target, "task": self.task,
                    "features": [{"name": n, "kind": k} for n, k in self.columns.items()],
                    "excluded": dict(self.excluded),
                },
            },
            "against": self.against,
            "findings": [f.to_json() for f in self.findings],
            "counts": counts,
            "passed": self.passed,
            "rows": self.rows, "task": self.task, "target": self.target,
            "columns": dict(self.columns), "excluded": dict(self.excluded),
        }


def check_data(
    data: str | os.PathLike[str] | pd.DataFrame,
    target: str,
    against: str | os.PathLike[str] | pd.DataFrame | None = None,
    *,
    task: Task | None = None,
    group_column: str | None = None,
    settings: Settings | None = None,
    store: Store | None = None,
    artifacts: ArtifactStore | None = None,
    run_id: str | None = None,
) -> DataReport:
    """Check a table for problems before training on it.

    Parameters
    ----------
    data
        CSV / Parquet file or DataFrame.
    target
        The column a model would predict.
    against
        Another table (say, the test set) to look for leaked rows and shared groups in.
    task
        Force ``binary``, ``multiclass`` or ``regression``.
    group_column
        A column whose values must not occur in both ``data`` and ``against``.
    settings
        The ``check:`` settings apply (thresholds, sample sizes).
    store, artifacts
        When given, the dataset (fingerprint, source, rows, schema) and the report are
        recorded (``run_id`` links them to a training run).
    """
    cfg = (settings or Settings.load()).check
    source = read_table(data)
    frame = source.frame
    if group_column is not None and group_column not in frame.columns:
        raise DataError(f"{source.uri}: group column {group_column!r} not found. Available "
                        f"columns: {', '.join(map(str, frame.columns))}.")
    schema, _ = infer_schema(frame, target, task, source=source.uri)
    findings = _schema_findings(schema, frame, target, cfg)
    findings += _missing(frame, schema.feature_names, cfg)
    findings += _duplicates(frame, cfg)
    labelled = np.flatnonzero(~missing_mask(frame[target]))
    codes = _target_codes(frame[target].iloc[labelled], schema.task)
    if schema.task != "regression":
        findings += _imbalance(frame[target].iloc[labelled], cfg)
    leaks = _target_leakage(frame.iloc[labelled], schema, codes, cfg)
    findings += leaks
    other_info = None
    if against is not None:
        other = read_table(against)
        other_info = {"fingerprint": fingerprint_frame(other.frame),
                      "source": other.uri, "rows": len(other.frame)}
        findings += _overlap(frame, other.frame, schema, group_column, other.uri, cfg)
    if schema.task != "regression":
        # a column derived from the labels would vouch for wrong labels: leave leaks out
        leaked = {c for f in leaks for c in f.columns}
        findings += _label_errors(frame, labelled, schema, codes, cfg, leaked)
    findings += _pii(frame, target, cfg)
    report = DataReport(
        source_uri=source.uri,
        fingerprint=fingerprint_frame(frame),
        rows=len(frame),
        task=schema.task,
        target=target,
        columns={c.name: c.kind for c in schema.features},
        excluded=dict(schema.excluded),
        findings=findings,
        against=other_info,
    )
    if store is not None:
        record_report(report, store, artifacts, run_id=run_id)
    return report


def record_report(
    report: DataReport,
    store: Store,
    artifacts: ArtifactStore | None = None,
    *,
    run_id: str | None = None,
) -> ReportRecord | None:
    """Record the dataset's provenance and, with ``artifacts``, the report itself."""
    columns = [{"name": n, "kind": k} for n, k in report.columns.items()]
    store.upsert_dataset(report.fingerprint, report.source_uri, report.rows, columns)
    if artifacts is None:
        return None
    sha = artifacts.put_json(report.to_json())
    counts = {s: sum(f.severity == s for f in report.findings) for s in SEVERITIES}
    return store.add_report("data_check", report.fingerprint, sha, counts, run_id=run_id)


def _rows(positions: Sequence[int] | np.ndarray, cfg: CheckSettings) -> list[int]:
    return [int(i) for i in list(positions)[: cfg.max_rows_listed]]


def _schema_findings(
    schema: Schema, frame: pd.DataFrame, target: str, cfg: CheckSettings
) -> list[Finding]:
    findings = []
    for name, reason in schema.excluded.items():
        if reason.startswith("constant"):
            check, advice = "constant_column", "Drop the column: one value carries no signal."
        elif "identifier" in reason:
            check, advice = "id_like_column", (
                "Drop the column, or use it to split by group (--group-column) if one entity "
                "has several rows."
            )
        else:
            check, advice = "excluded_column", "Drop the column or fix its values."
        findings.append(Finding(check, "warning", f"column '{name}' excluded: {reason}", [name],
                                advice=advice))
    missing = np.flatnonzero(missing_mask(frame[target]))
    if len(missing):
        findings.append(Finding(
            "missing_target", "warning",
            f"{len(missing)} rows ({len(missing) / len(frame):.1%}) have no value in target "
            f"'{target}'", [target], _rows(missing, cfg), len(missing),
            "Training drops these rows; fill in their labels if they should count.",
        ))
    return findings


def _missing(frame: pd.DataFrame, columns: list[str], cfg: CheckSettings) -> list[Finding]:
    rates = {c: float(missing_mask(frame[c]).mean()) for c in columns}
    hit = {c: r for c, r in rates.items() if r > 0}
    if not hit:
        return []
    ordered = sorted(hit, key=lambda c: -hit[c])
    severe = [c for c in ordered if hit[c] > cfg.missing_warning]
    listed = ", ".join(f"{c} {hit[c]:.1%}" for c in ordered)
    return [
        Finding(
            "missing_values", "warning" if severe else "info", f"missing values: {listed}",
            ordered, count=int(sum(hit[c] * len(frame) for c in ordered)),
            advice="Training imputes the median and adds a missing indicator; fill the values "
            "at the source if they should exist.",
            details={"rates": hit},
        )
    ]


def _duplicates(frame: pd.DataFrame, cfg: CheckSettings) -> list[Finding]:
    dup = frame.duplicated(keep="first").to_numpy()
    count = int(dup.sum())
    if not count:
        return []
    rows = np.flatnonzero(dup)
    share = count / len(frame)
    return [
        Finding(
            "duplicate_rows", "warning" if share > cfg.duplicate_warning else "info",
            f"{count} exact duplicate rows ({share:.1%}), e.g. rows {_rows(rows, cfg)[:5]}",
            [], _rows(rows, cfg), count,
            "Remove duplicates so they cannot land in both the training and the test split.",
            {"share": share},
        )
    ]


def _imbalance(target: pd.Series, cfg: CheckSettings) -> list[Finding]:
    keys = pd.Series(category_keys(target))
    counts = keys.value_counts()
    n, k = int(counts.sum()), len(counts)
    minority = float(counts.min() / n)
    ratio = float(counts.max() / counts.min())
    weights = {str(c): round(n / (k * int(v)), 4) for c, v in counts.items()}
    # the threshold is for two classes; with k classes a balanced share is 1/k, so scale it
    severity: Severity = "warning" if minority < cfg.minority_warning * 2 / k else "info"
    listed = ", ".join(f"'{c}' {w:g}" for c, w in weights.items())
    return [
        Finding(
            "class_imbalance", severity,
            f"minority class '{counts.idxmin()}' is {minority:.1%} of rows (imbalance ratio "
            f"{ratio:.1f}:1); balanced class weights n/(k·n_c): {listed}",
            [str(target.name)], count=int(counts.min()),
            advice="Judge the model by balanced accuracy or macro F1, not accuracy alone; "
            "weight the loss by these class weights or resample if the minority class matters.",
            details={"counts": {str(c): int(v) for c, v in counts.items()},
                     "minority_share": minority, "imbalance_ratio": ratio,
                     "class_weights": weights},
        )
    ]


def _target_codes(target: pd.Series, task: Task) -> np.ndarray:
    if task == "regression":
        return target.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.unique(category_keys(target).astype(str), return_inverse=True)[1]


def _target_leakage(
    labelled: pd.DataFrame, schema: Schema, y: np.ndarray, cfg: CheckSettings
) -> list[Finding]:
    kinds = {c.name: c.kind for c in schema.features}
    with phase("data_check.leakage_aucs"):
        aucs = feature_aucs(labelled, kinds, y, regression=schema.task == "regression",
                            max_rows=cfg.leakage_max_rows, seed=cfg.seed)
    what = "target above its median" if schema.task == "regression" else "the target"
    return [
        Finding(
            "target_leakage", "error",
            f"column '{name}' alone predicts {what} with ROC AUC {auc:.4f} "
            f"(≥ {cfg.leakage_auc}): it is most likely derived from the target",
            [name], count=len(labelled),
            advice=f"Drop '{name}' unless it is truly known before the target is; a model "
            "trained on it looks perfect and fails in use.",
            details={"auc": auc},
        )
        for name, auc in aucs.items()
        if auc >= cfg.leakage_auc
    ]


def _overlap(
    frame: pd.DataFrame, other: pd.DataFrame, schema: Schema, group_column: str | None,
    other_uri: str, cfg: CheckSettings,
) -> list[Finding]:
    findings = []
    exact, near = row_overlap(frame, other, decimals=cfg.round_decimals)
    n = len(frame)
    if len(exact):
        findings.append(Finding(
            "row_overlap", "error",
            f"{len(exact)} rows of the data ({len(exact) / n:.1%}) also appear in {other_uri}",
            [], _rows(exact, cfg), len(exact),
            "Remove them from one of the two tables: metrics on the other table are "
            "optimistic while the same rows are in both.",
        ))
    if len(near):
        findings.append(Finding(
            "near_row_overlap", "warning",
            f"{len(near)} more rows ({len(near) / n:.1%}) match rows of {other_uri} after "
            f"rounding numbers to {cfg.round_decimals} decimals",
            [], _rows(near, cfg), len(near),
            "Check whether these are copies that went through a different number format.",
        ))
    candidates = [(group_column, "error")] if group_column is not None else []
    candidates += [(c, "warning") for c, why in schema.excluded.items()
                   if "identifier" in why and c != group_column]
    for column, severity in candidates:
        if column not in other.columns:
            continue
        rows, shared = value_overlap(frame[column], other[column])
        if shared:
            findings.append(Finding(
                "group_overlap", severity,  # type: ignore[arg-type]
                f"{shared} values of '{column}' occur in both tables ({len(rows)} rows of "
                "the data)", [column], _rows(rows, cfg), len(rows),
                "Keep each group in one table (split by group), or the model is scored on "
                "entities it has seen.",
                {"shared_values": shared},
            ))
    return findings


def _label_errors(
    frame: pd.DataFrame, labelled: np.ndarray, schema: Schema, codes: np.ndarray,
    cfg: CheckSettings, leaked: set[str],
) -> list[Finding]:
    kinds = {c.name: c.kind for c in schema.features if c.name not in leaked}
    if len(labelled) < MIN_LABEL_ROWS or not kinds:
        return []
    with phase("data_check.label_errors"):
        issues = find_label_errors(frame.iloc[labelled], kinds, codes,
                                   folds=cfg.label_error_folds,
                                   max_rows=cfg.label_error_max_rows, seed=cfg.seed)
    if issues is None or issues.count == 0:
        return []
    rows = labelled[issues.rows]
    sampled = issues.checked_rows < len(labelled)
    scope = f"of {issues.checked_rows} sampled rows" if sampled else "of rows"
    severity: Severity = "warning" if issues.rate >= cfg.label_error_warning else "info"
    return [
        Finding(
            "label_errors", severity,
            f"{issues.count} rows ({issues.rate:.1%} {scope}) look mislabelled: a model that "
            f"did not see them gives their label a low probability (most suspicious first: "
            f"rows {_rows(rows, cfg)[:5]})",
            [schema.target], _rows(rows, cfg), issues.count,
            "Review these rows' labels, most suspicious first; fix or drop the wrong ones.",
            {"rate": issues.rate, "checked_rows": issues.checked_rows, "sampled": sampled,
             "folds": issues.folds,
             "scores": [round(float(s), 6) for s in issues.scores[: cfg.max_rows_listed]]},
        )
    ]


def _pii(frame: pd.DataFrame, target: str, cfg: CheckSettings) -> list[Finding]:
    columns = [c for c in frame.columns if c != target]
    hits = scan_pii(frame[columns], sample=cfg.pii_sample, min_rate=cfg.pii_min_rate,
                    seed=cfg.seed)
    return [
        Finding(
            "pii", "warning",
            f"column '{h.column}' holds {h.description} in {h.rate:.1%} of non-missing cells "
            f"(e.g. {', '.join(h.examples)})",
            [h.column], _rows(h.rows, cfg), h.count,
            f"Training leaves '{h.column}' out (pass --allow-pii {h.column} to keep it; that "
            "is recorded with the run). Remove, hash or tokenise it at the source.",
            {"entity": h.entity, "rate": h.rate, "examples": h.examples,
             "entities": h.entities},
        )
        for h in hits
    ]


__all__ = ["CHECKS", "SEVERITIES", "DataReport", "Finding", "check_data", "record_report"]
