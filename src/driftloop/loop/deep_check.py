"""``driftloop data check --deep``: the data check plus a screen that needs a trained model.

A backdoor (rows given a trigger and the attacker's label) is invisible to row-level checks:
a cross-validated model learns the trigger from the other folds and vouches for the labels, so
the label-error check misses it. It shows inside a model trained on the data. This module trains
the MLP ``driftloop train`` builds for the table (same factory, same preprocessing, AdamW at the
training settings' learning rate and batch size; ``check.deep_epochs`` epochs, one process,
seeded), reads the layer before the output for every labelled row (a forward pre-hook on the
output layer), and hands the representations to
:func:`driftloop.data.poisoning.screen_backdoor`.

Findings added to the report:

- ``backdoor`` (error): the suspicious rows of each flagged class — their count and share, the
  numbers behind the decision, row positions as the other checks list them (capped);
- ``deep_check`` (info): what ran — rows screened, classes, the first-pass model's training
  accuracy, the backdoor screen's count and share, and the label-error check's count and share
  (cleanlab; already in the report) beside it.

Examples
--------
>>> from sklearn.datasets import make_classification
>>> import pandas as pd
>>> x, y = make_classification(400, 6, random_state=0)
>>> frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(6)]).assign(label=y)
>>> report = check_data_deep(frame, "label")  # doctest: +SKIP
>>> [f.check for f in report.findings if f.check in ("backdoor", "deep_check")]  # doctest: +SKIP
['deep_check']
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from driftloop.config import CheckSettings, Settings, TrainSettings
from driftloop.data.check import DataReport, Finding, check_data, record_report
from driftloop.data.poisoning import BackdoorScreen, screen_backdoor
from driftloop.data.preprocess import TablePreprocessor, TargetEncoder
from driftloop.data.read import read_table
from driftloop.data.schema import Schema, Task, infer_schema
from driftloop.data.values import missing_mask
from driftloop.errors import UsageError
from driftloop.models.architectures import build_model

if TYPE_CHECKING:
    from driftloop.store import ArtifactStore, Store


def check_data_deep(
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
    """:func:`driftloop.check_data` plus the backdoor screen of a first-pass model.

    Takes the arguments of :func:`~driftloop.data.check.check_data`; the report is recorded in
    ``store`` (and ``artifacts``) with the deep findings in it. Classification only.
    """
    current = settings or Settings.load()
    report = check_data(data, target, against, task=task, group_column=group_column,
                        settings=current)
    if report.task == "regression":
        raise UsageError(
            f"--deep screens classification data for backdoors (relabelled rows); target "
            f"'{target}' is a regression target. Run the check without --deep, or pass "
            "--task binary/multiclass if the target holds class codes."
        )
    frame = read_table(data).frame
    left_out = {c for f in report.findings if f.check == "target_leakage" for c in f.columns}
    left_out |= set(report.pii_columns)
    findings = deep_findings(frame, target, report, current, left_out)
    report = replace(report, findings=[*report.findings, *findings])
    if store is not None:
        record_report(report, store, artifacts, run_id=run_id)
    return report


def deep_findings(
    frame: pd.DataFrame, target: str, report: DataReport, settings: Settings,
    left_out: set[str] | None = None,
) -> list[Finding]:
    """The ``backdoor`` and ``deep_check`` findings for ``frame`` (see the module docstring);
    ``left_out`` columns (leaked, personal data) are not fed to the first-pass model."""
    cfg = settings.check
    left_out = left_out or set()
    rows = np.flatnonzero(~missing_mask(frame[target]))
    sampled = len(rows) > cfg.deep_max_rows
    if sampled:
        rng = np.random.default_rng(cfg.seed)
        rows = np.sort(rng.choice(rows, cfg.deep_max_rows, replace=False))
    labelled = frame.iloc[rows].reset_index(drop=True)
    schema, _ = infer_schema(labelled, target, report.task, source=report.source_uri)
    schema = replace(schema, features=tuple(c for c in schema.features
                                            if c.name not in left_out))
    if not schema.features:
        return []
    encoder = TargetEncoder().fit(labelled[target], report.task)
    codes = encoder.transform(labelled[target]).astype(np.int64)
    reps, features, names, accuracy = first_pass(labelled, schema, codes, settings.train, cfg)
    screen = screen_backdoor(
        reps, codes, features, dims=cfg.backdoor_dims, max_k=cfg.backdoor_max_k,
        max_cluster_share=cfg.backdoor_max_cluster_share,
        min_cluster_rows=cfg.backdoor_min_cluster_rows,
        min_silhouette=cfg.backdoor_min_silhouette,
        min_reclassified=cfg.backdoor_min_reclassified,
        trigger_share=cfg.backdoor_trigger_share,
        trigger_rest_share=cfg.backdoor_trigger_rest_share, seed=cfg.seed,
    )
    classes = [str(c) for c in encoder.classes_]
    found = _backdoor_finding(screen, rows, classes, names, cfg)
    return [*found, _summary(screen, report, classes, names, accuracy, sampled)]


def first_pass(
    frame: pd.DataFrame, schema: Schema, codes: np.ndarray, train: TrainSettings,
    cfg: CheckSettings,
) -> tuple[np.ndarray, np.ndarray, list[str], float]:
    """Train the table MLP on all of ``frame`` for ``cfg.deep_epochs`` epochs; return every
    row's representation at the layer before the output, the model inputs (numeric block and
    category codes side by side), their column names and the training accuracy."""
    pre = TablePreprocessor(schema).fit(frame)
    x, x_cat = pre.transform(frame)
    inputs = {"n_numeric": x.shape[1], "cardinalities": pre.cardinalities_}
    n_classes = int(codes.max()) + 1
    xt, ct, yt = torch.from_numpy(x), torch.from_numpy(x_cat), torch.from_numpy(codes)
    # fork_rng: the seed makes this run repeatable without resetting the caller's generator
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        net = build_model("mlp", inputs, n_classes)
        _fit(net, xt, ct, yt, train, cfg)
        reps, logits = _penultimate(net, xt, ct)
    accuracy = float((logits.argmax(1) == yt).float().mean())
    features = np.column_stack([x, x_cat.astype(np.float32)])
    names = [*pre.numeric_feature_names_,
             *(c.name for c in schema.features if c.kind == "categorical")]
    return reps.numpy(), features, names, accuracy


def _fit(net: nn.Module, x: torch.Tensor, x_cat: torch.Tensor, y: torch.Tensor,
         train: TrainSettings, cfg: CheckSettings) -> None:
    optimizer = torch.optim.AdamW(net.parameters(), lr=train.lr, weight_decay=train.weight_decay)
    order = torch.Generator().manual_seed(cfg.seed)
    net.train()
    for _ in range(cfg.deep_epochs):
        for batch in torch.randperm(len(y), generator=order).split(train.batch_size):
            optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(net(x[batch], x_cat[batch]), y[batch])
            loss.backward()
            optimizer.step()


def _penultimate(net: nn.Module, x: torch.Tensor,
                 x_cat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    output = [m for m in net.modules() if isinstance(m, nn.Linear)][-1]
    seen: list[torch.Tensor] = []
    hook = output.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    net.eval()
    try:
        with torch.no_grad():
            logits = net(x, x_cat)
    finally:
        hook.remove()
    return seen[0], logits


def _backdoor_finding(screen: BackdoorScreen, rows: np.ndarray, classes: list[str],
                      names: list[str], cfg: CheckSettings) -> list[Finding]:
    if not screen.count:
        return []
    flagged = [c for c in screen.classes if c.flagged]
    columns = sorted({names[j] for c in flagged for j in c.trigger_features}, key=names.index)
    per_class = ", ".join(
        f"label '{classes[c.label]}': {c.cluster_rows} of its {c.rows} rows "
        f"({c.cluster_share:.1%}), sharing one value on "
        f"{', '.join(names[j] for j in c.trigger_features)}"
        for c in flagged
    )
    positions = rows[screen.rows]
    return [Finding(
        "backdoor", "error",
        f"{screen.count} rows ({screen.share:.1%}) look planted (a backdoor): they share rare "
        f"values, form a separate cluster in a first-pass model's last hidden layer, and a "
        f"model trained without them puts them in another class — {per_class}",
        columns, [int(i) for i in positions[: cfg.max_rows_listed]], screen.count,
        "Look for what these rows share (a value no other row has, a common source) and drop "
        "them, or their source, before training: a model trained on them answers the planted "
        "label whenever that pattern appears.",
        {"share": screen.share, **_screen_details(screen, classes, names)},
    )]


def _summary(screen: BackdoorScreen, report: DataReport, classes: list[str], names: list[str],
             accuracy: float, sampled: bool) -> Finding:
    labels = next((f for f in report.findings if f.check == "label_errors"), None)
    label_count = labels.count if labels else 0
    label_rate = float(labels.details.get("rate", 0.0)) if labels else 0.0
    scope = "sampled rows" if sampled else "rows"
    return Finding(
        "deep_check", "info",
        f"deep check of {screen.n_rows} {scope}, {len(classes)} classes (first-pass model "
        f"training accuracy {accuracy:.1%}): backdoor screen {screen.count} suspicious rows "
        f"({screen.share:.1%}); label errors (cleanlab) {label_count} rows ({label_rate:.1%})",
        count=screen.count,
        details={"rows_screened": screen.n_rows, "sampled": sampled,
                 "first_pass_accuracy": accuracy,
                 "backdoor": {"count": screen.count, "share": screen.share},
                 "label_errors": {"count": label_count, "rate": label_rate},
                 **_screen_details(screen, classes, names)},
    )


def _screen_details(screen: BackdoorScreen, classes: list[str],
                    names: list[str]) -> dict[str, Any]:
    return {"classes": [
        {**c.to_json(), "label": classes[c.label],
         "trigger_columns": [names[j] for j in c.trigger_features]}
        for c in screen.classes
    ]}


__all__ = ["check_data_deep", "deep_findings", "first_pass"]
