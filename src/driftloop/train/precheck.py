"""The data check that runs before training, and what training does with its findings.

``driftloop train`` checks a table exactly as ``driftloop data check`` does, then

- refuses to train while an ``error`` finding remains whose check is not in ``ignore_checks``
  (``--ignore-check NAME``);
- leaves every column found to hold personal data out of the features, except those named in
  ``allow_pii`` (``--allow-pii COL``).

What was ignored, allowed and excluded goes into the run's params (:attr:`Precheck.params`),
and the check report is stored with the run (:func:`record_precheck`).

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> frame = pd.DataFrame({"x": rng.normal(size=200),
...                       "mail": [f"u{i}@example.com" for i in range(200)]})
>>> frame["y"] = (frame["x"] + rng.normal(size=200) > 0).astype(int)
>>> frame["copy"] = frame["y"] + rng.normal(0, 0.01, 200)       # the target, barely hidden
>>> precheck(frame, "y")
Traceback (most recent call last):
...
driftloop.errors.CheckFailed: the data check refused to train on the DataFrame: target_leakage: column 'copy' alone predicts the target with ROC AUC 1.0000 (≥ 0.99): it is most likely derived from the target. Fix the data, or pass --ignore-check NAME for each check to train anyway (recorded with the run).
>>> checked = precheck(frame, "y", ignore_checks=["target_leakage"])
>>> checked.exclude, checked.params["ignored_checks"]
({'mail': 'holds e-mail addresses (personal data); pass --allow-pii mail to keep it'}, ['target_leakage'])
"""  # noqa: E501

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from driftloop.config import Settings
from driftloop.data.check import CHECKS, DataReport, check_data, record_report
from driftloop.data.read import ARRAY_SUFFIXES
from driftloop.errors import CheckFailed, UsageError

if TYPE_CHECKING:
    from driftloop.registry import Registry


@dataclass(frozen=True)
class Precheck:
    """The check report (None for arrays) and the columns training leaves out."""

    report: DataReport | None
    exclude: dict[str, str] = field(default_factory=dict)  # column -> why
    params: dict[str, Any] = field(default_factory=dict)


def precheck(
    data: str | os.PathLike[str] | pd.DataFrame,
    target: str | None,
    *,
    task: str | None = None,
    group_column: str | None = None,
    input_kind: str | None = None,
    ignore_checks: Sequence[str] = (),
    allow_pii: Sequence[str] = (),
    settings: Settings | None = None,
) -> Precheck:
    """Check ``data`` before training; raise CheckFailed on an error finding not ignored."""
    unknown = [name for name in ignore_checks if name not in CHECKS]
    if unknown:
        raise UsageError(
            f"--ignore-check {unknown[0]!r} is not a check. Checks: {', '.join(CHECKS)}."
        )
    is_arrays = isinstance(data, (str, os.PathLike)) and str(data).lower().endswith(
        ARRAY_SUFFIXES
    )
    if is_arrays or input_kind in ("image", "sequence") or target is None:
        # arrays have no columns to check; a table without a target fails in prepare()
        return Precheck(None, {}, {"ignored_checks": list(ignore_checks),
                                   "allowed_pii": list(allow_pii), "excluded_pii": []})
    report = check_data(data, target, task=task, group_column=group_column,  # type: ignore[arg-type]
                        settings=settings)
    blocking = [f for f in report.failing("error") if f.check not in ignore_checks]
    if blocking:
        name = "the DataFrame" if isinstance(data, pd.DataFrame) else str(data)
        listed = "; ".join(f"{f.check}: {f.message}" for f in blocking)
        raise CheckFailed(
            f"the data check refused to train on {name}: {listed}. Fix the data, or pass "
            "--ignore-check NAME for each check to train anyway (recorded with the run)."
        )
    missing = [c for c in allow_pii if c not in report.columns and c not in report.excluded]
    if missing:
        raise UsageError(f"--allow-pii {missing[0]!r}: no such column in {report.source_uri}.")
    exclude = {}
    for finding in report.findings:
        if finding.check == "pii":
            column = finding.columns[0]
            if column not in allow_pii and column != target:
                what = finding.details.get("entity", "personal data").replace("_", " ")
                description = {"email": "e-mail addresses"}.get(what, what)
                exclude[column] = (f"holds {description} (personal data); pass --allow-pii "
                                   f"{column} to keep it")
    params = {
        "ignored_checks": list(ignore_checks), "allowed_pii": list(allow_pii),
        "excluded_pii": sorted(exclude), "data_check": report.to_json()["counts"],
    }
    return Precheck(report, exclude, params)


def record_precheck(checked: Precheck, registry: Registry, run_id: str) -> None:
    """Store the check report as an artifact linked to the dataset and the run."""
    if checked.report is not None:
        record_report(checked.report, registry.store, registry.artifacts, run_id=run_id)


__all__ = ["Precheck", "precheck", "record_precheck"]
