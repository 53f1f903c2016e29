"""``dl.check_data``: one report of what in a table would hurt a model trained on it.

This first version reports the schema (and the columns left out and why), missing values per
column, exact duplicate rows and class balance. Each finding has a severity, the columns
involved and what to do.

Examples
--------
>>> import numpy as np, pandas as pd
>>> frame = pd.DataFrame({"a": [1.0, None, 3.0, 4.0] * 10, "b": ["x", "y"] * 20,
...                       "label": [0, 1, 0, 0] * 10})
>>> report = check_data(frame, target="label")
>>> report.task, report.rows, report.passed
('binary', 40, True)
>>> [f.code for f in report.findings]
['missing_values', 'duplicate_rows', 'class_imbalance']
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from driftloop.data.fingerprint import fingerprint_frame
from driftloop.data.read import read_table
from driftloop.data.schema import Task, infer_schema
from driftloop.data.values import missing_mask

Severity = Literal["info", "warning", "error"]
MISSING_WARNING = 0.2  # share of missing cells above which a column gets a warning
MINORITY_WARNING = 0.1  # minority class share below which imbalance is a warning


@dataclass(frozen=True)
class Finding:
    """One problem found in the data."""

    code: str
    severity: Severity
    message: str
    columns: list[str] = field(default_factory=list)
    action: str = ""
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataReport:
    """The data check of one table."""

    source_uri: str
    fingerprint: str
    rows: int
    task: Task
    target: str
    columns: dict[str, str]  # feature -> kind
    excluded: dict[str, str]  # column -> reason
    findings: list[Finding]

    @property
    def passed(self) -> bool:
        """True when no finding is an error."""
        return not any(f.severity == "error" for f in self.findings)

    def worst(self) -> Severity | None:
        """The most severe finding's severity (None when there is none)."""
        order: list[Severity] = ["error", "warning", "info"]
        return next((s for s in order if any(f.severity == s for f in self.findings)), None)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def check_data(
    data: str | os.PathLike[str] | pd.DataFrame, target: str, *, task: Task | None = None
) -> DataReport:
    """Check a table for problems before training on it."""
    source = read_table(data)
    frame = source.frame
    schema, warnings = infer_schema(frame, target, task, source=source.uri)
    findings = [
        Finding("excluded_column", "warning", reason, [name], "Drop the column or fix its values.")
        for name, reason in schema.excluded.items()
    ]
    findings += _missing(frame, schema.feature_names)
    findings += _duplicates(frame)
    if schema.task != "regression":
        findings += _imbalance(frame[target])
    del warnings  # every schema warning is an excluded column, reported above
    return DataReport(
        source_uri=source.uri,
        fingerprint=fingerprint_frame(frame, source.uri),
        rows=len(frame),
        task=schema.task,
        target=target,
        columns={c.name: c.kind for c in schema.features},
        excluded=dict(schema.excluded),
        findings=findings,
    )


def _missing(frame: pd.DataFrame, columns: list[str]) -> list[Finding]:
    rates = {c: float(missing_mask(frame[c]).mean()) for c in columns}
    hit = {c: r for c, r in rates.items() if r > 0}
    if not hit:
        return []
    severe = [c for c, r in hit.items() if r > MISSING_WARNING]
    listed = ", ".join(f"{c} {r:.1%}" for c, r in sorted(hit.items(), key=lambda kv: -kv[1]))
    return [
        Finding(
            "missing_values",
            "warning" if severe else "info",
            f"missing values: {listed}",
            sorted(hit, key=lambda c: -hit[c]),
            "Training imputes the median and adds a missing indicator; fill the values at the "
            "source if they should exist.",
            {"rates": hit},
        )
    ]


def _duplicates(frame: pd.DataFrame) -> list[Finding]:
    dup = frame.duplicated(keep="first")
    count = int(dup.sum())
    if not count:
        return []
    rows = [int(i) for i in np.flatnonzero(dup.to_numpy())[:10]]
    return [
        Finding(
            "duplicate_rows",
            "warning" if count / len(frame) > 0.05 else "info",
            f"{count} exact duplicate rows ({count / len(frame):.1%}), e.g. rows {rows}",
            [],
            "Remove duplicates so they cannot land in both the training and the test split.",
            {"count": count, "rows": rows},
        )
    ]


def _imbalance(target: pd.Series) -> list[Finding]:
    counts = target[~missing_mask(target)].astype(str).value_counts()
    minority = float(counts.min() / counts.sum())
    ratio = float(counts.max() / counts.min())
    severity: Severity = "warning" if minority < MINORITY_WARNING else "info"
    return [
        Finding(
            "class_imbalance",
            severity,
            f"minority class '{counts.idxmin()}' is {minority:.1%} of rows "
            f"(imbalance ratio {ratio:.1f}:1)",
            [str(target.name)],
            "Judge the model by balanced accuracy or macro F1, not accuracy alone.",
            {"counts": {str(k): int(v) for k, v in counts.items()}, "minority_share": minority},
        )
    ]


__all__ = ["DataReport", "Finding", "check_data"]
