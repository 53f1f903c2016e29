"""``driftloop evaluate NAME:V DATA --privacy``: a membership-inference audit of a version.

The audit asks how well an attacker could tell the version's training rows from rows it never
saw, and stores the answer in the evaluation report's ``privacy`` section (the ``privacy``
gate and the model card read it from there). It

1. rebuilds the version's exact splits from its run folder (``RUN/data/{train,val,test}_*.npy``,
   written by the launcher already preprocessed; see :mod:`driftloop.train.spec`);
2. audits ``n`` **members** (a seeded sample of the training split) against ``n``
   **non-members** (a sample of the test split and of DATA's rows, leaving out any DATA row equal
   to a training or validation row), ``n`` at most half the training split and
   ``evaluate.privacy_max_rows``, at least ``evaluate.privacy_min_rows``;
3. trains ``evaluate.privacy_reference_models`` reference models with the version's own spec
   (:func:`driftloop.train.launcher.train_unregistered`: same architecture, epochs, optimiser
   and early stopping; nothing registered) each on a random sample of a **pool disjoint from
   the audited rows** (the training rows not audited, the validation split, and the rows never
   seen that are not audited), as many rows as the target trained on where the pool allows, so
   that no reference model saw an audited row — the offline setting of LiRA;
4. scores the audited rows with the loss attack and offline LiRA
   (:mod:`driftloop.evaluate.privacy`) and measures each attack's AUC and TPR at low FPR with
   bootstrap intervals, overall and per class.

The reference models' run folders live in a temporary folder under the runs folder and are
removed afterwards (they hold copies of training rows). No row is printed or stored: only
counts, shares and the attacks' metrics.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from driftloop.config import Settings
from driftloop.errors import DataError, UsageError
from driftloop.evaluate.privacy import PrivacyReport, audit
from driftloop.evaluate.report import EvaluationReport, evaluation_arrays, parse_ref
from driftloop.models import LoadedModel
from driftloop.registry import Registry
from driftloop.registry.evaluation import evaluate_version, store_report
from driftloop.store import VersionRecord
from driftloop.train.launcher import train_unregistered
from driftloop.train.spec import DATA_DIR, SPEC_FILE, TrainSpec

Arrays = list[np.ndarray]  # the model's inputs, then the target; rows first


def evaluate_with_privacy(
    ref: str | VersionRecord,
    data: str | os.PathLike[str] | pd.DataFrame,
    slices: Sequence[str] = (),
    *,
    target: str | None = None,
    settings: Settings | None = None,
    registry: Registry | None = None,
) -> EvaluationReport:
    """Evaluate a version on ``data`` as :func:`driftloop.evaluate` does, audit it for
    membership inference (:func:`audit_version`), and store the report with its ``privacy``
    section.

    Examples
    --------
    >>> report = evaluate_with_privacy("digits:1", "holdout.csv")   # doctest: +SKIP
    >>> report.privacy["attacks"]["lira"]["auc"]["high"] < 0.6      # doctest: +SKIP
    True
    """
    if registry is None:
        with Registry.open(settings or Settings.load()) as opened:
            return evaluate_with_privacy(ref, data, slices, target=target,
                                         settings=settings or opened.settings, registry=opened)
    settings = settings or registry.settings
    record = registry.get(*parse_ref(ref)) if isinstance(ref, str) else ref
    report = evaluate_version(registry, record, data, slices, target=target, settings=settings,
                              store=False)  # bad DATA is named before any model is trained
    privacy = audit_version(registry, record, data, target=target, settings=settings)
    report = dataclasses.replace(report, privacy=privacy.to_json())
    schema = registry.bundle(record).schema or {}
    columns = [dict(f) for f in schema.get("features", [])] or None
    return store_report(report, registry, version=record, columns=columns)


def audit_version(
    registry: Registry,
    record: VersionRecord,
    data: str | os.PathLike[str] | pd.DataFrame | None = None,
    *,
    target: str | None = None,
    settings: Settings | None = None,
) -> PrivacyReport:
    """The membership-inference audit of ``record`` (see the module docstring).

    ``data`` adds rows the version never trained on to its test split as non-members.
    """
    settings = settings or registry.settings
    cfg = settings.evaluate
    ref = f"{record.model_name}:{record.version}"
    if record.task == "regression":
        raise UsageError(f"{ref} is a regression model; the privacy audit's attacks score the "
                         "probability of the true class, so it audits classifiers only.")
    run_dir = _run_folder(registry, record)
    spec = TrainSpec.read(run_dir)
    model = LoadedModel.from_artifacts(registry.artifacts, record,
                                       allowed_factories=settings.security.model_factories)
    train, val, test = (_split(run_dir, spec, s) for s in ("train", "val", "test"))
    outside = [] if data is None else [_inputs_of(evaluation_arrays(data, model, target),
                                                  spec.input_kind)]
    seen = _row_keys(train) | _row_keys(val)
    unseen, sources, dropped = _non_members(test, outside, seen)
    rng = np.random.default_rng(cfg.seed)
    n = min(_rows(train) // 2, _rows(unseen), cfg.privacy_max_rows)
    if n < cfg.privacy_min_rows:
        raise DataError(
            f"too few rows to audit {ref}: {_rows(train)} training rows (half of them are "
            f"audited) and {_rows(unseen)} rows it never trained on ({sources['test']} of its "
            f"test split, {sources['data']} of DATA) allow {n} of each, fewer than "
            f"evaluate.privacy_min_rows = {cfg.privacy_min_rows}. Pass DATA with more rows the "
            "model never trained on, or lower evaluate.privacy_min_rows."
        )
    order = rng.permutation(_rows(train))
    members, rest = _take(train, order[:n]), _take(train, order[n:])
    picked = rng.permutation(_rows(unseen))
    non_members, spare = _take(unseen, picked[:n]), _take(unseen, picked[n:])
    audited = [np.concatenate([a, b]) for a, b in zip(members, non_members, strict=True)]
    member = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    # the population the reference models draw from: every row the target trained on or saw
    # except the audited ones, plus the never-seen rows not audited
    pool = [np.concatenate(parts) for parts in zip(rest, val, spare, strict=True)]
    sizes = _reference_sizes(_rows(pool), _rows(train), _rows(val))
    references = _reference_outputs(model, spec, pool, sizes, audited[:-1], settings, rng)
    report = audit(
        model.predict_arrays(*audited[:-1], calibrated=False), audited[-1], member, references,
        classes=[str(c) for c in model.bundle.classes], min_count=cfg.slice_min_count,
        n_resamples=cfg.resamples, confidence=cfg.confidence, seed=cfg.seed,
    )
    settings_used = {
        **report.settings, "members": n, "non_members": n, "pool_rows": _rows(pool),
        "reference_rows": sizes[0], "reference_val_rows": sizes[1],
        "target_rows": _rows(train), "reference_workers": cfg.privacy_workers,
        "non_member_sources": sources, "probabilities": "uncalibrated",
    }
    warnings = list(report.warnings) + ([
        f"{dropped} rows of DATA equal a training or validation row of {ref} and were not used "
        "as non-members"] if dropped else [])
    return dataclasses.replace(report, settings=settings_used, warnings=warnings)


def _run_folder(registry: Registry, record: VersionRecord) -> Path:
    ref = f"{record.model_name}:{record.version}"
    if record.run_id is None:
        raise UsageError(f"{ref} was registered without a training run, so its training rows "
                         "are unknown and cannot be audited; audit a version `driftloop train` "
                         "made.")
    run_dir = Path(registry.store.get_run(record.run_id).run_dir)
    if not (run_dir / SPEC_FILE).is_file() or not (run_dir / DATA_DIR).is_dir():
        raise UsageError(f"the run folder of {ref} ({run_dir}) is gone, and with it the record "
                         "of which rows were training rows; the privacy audit needs it (train "
                         "the model again to audit it).")
    return run_dir


def _split(run_dir: Path, spec: TrainSpec, split: str) -> Arrays:
    return [np.load(run_dir / DATA_DIR / name) for name in spec.array_files(split)]


def _inputs_of(arrays: tuple[np.ndarray, np.ndarray | None, np.ndarray], kind: str) -> Arrays:
    x, x_cat, y = arrays
    if kind != "table":
        return [x, y]
    return [x, np.zeros((len(y), 0), np.int64) if x_cat is None else x_cat, y]


def _rows(arrays: Arrays) -> int:
    return len(arrays[-1])


def _take(arrays: Arrays, index: np.ndarray) -> Arrays:
    return [a[index] for a in arrays]


def _row_keys(arrays: Arrays) -> set[bytes]:
    """One key per row: its inputs' and target's bytes (equal rows, equal keys)."""
    flat = np.concatenate([np.asarray(a, np.float64).reshape(_rows(arrays), -1)
                           for a in arrays], axis=1)
    return {row.tobytes() for row in np.ascontiguousarray(flat)}


def _non_members(
    test: Arrays, outside: list[Arrays], seen: set[bytes]
) -> tuple[Arrays, dict[str, int], int]:
    """The test split plus DATA's rows that are neither a training/validation row nor a
    repeat; how many came from each; how many DATA rows were dropped as seen."""
    kept = [test]
    counts = {"test": _rows(test), "data": 0}
    known = set(_row_keys(test))
    dropped = 0
    for arrays in outside:
        flat = np.concatenate([np.asarray(a, np.float64).reshape(_rows(arrays), -1)
                               for a in arrays], axis=1)
        keep = []
        for i, row in enumerate(np.ascontiguousarray(flat)):
            key = row.tobytes()
            dropped += key in seen
            if key not in seen and key not in known:
                known.add(key)
                keep.append(i)
        kept.append(_take(arrays, np.asarray(keep, np.int64)))
        counts["data"] += len(keep)
    return [np.concatenate(parts) for parts in zip(*kept, strict=True)], counts, dropped


def _reference_sizes(pool: int, train: int, val: int) -> tuple[int, int]:
    """Training and validation rows of each reference model: as many training rows as the
    target had where the pool allows (LiRA's reference models mimic the target's training, and
    a model trained on fewer rows is less confident on every row, which blurs the per-row
    calibration), else what is left after a validation split like the target's.

    >>> _reference_sizes(1000, 174, 37), _reference_sizes(124, 174, 37)
    ((174, 37), (93, 31))
    """
    held = max(1, min(val, pool // 4))
    return min(train, pool - held), held


def _reference_outputs(
    model: LoadedModel, spec: TrainSpec, pool: Arrays, sizes: tuple[int, int], inputs: Arrays,
    settings: Settings, rng: np.random.Generator,
) -> list[np.ndarray]:
    """Probabilities of ``inputs`` from reference models, each trained on a random sample of
    ``pool`` (``sizes``: training and validation rows) with the version's spec."""
    cfg = settings.evaluate
    rows, held = sizes
    if rows < 2 * cfg.privacy_workers:
        raise DataError(f"the reference models' pool holds {_rows(pool)} rows, too few to train "
                        "on; pass DATA with more rows, or audit a model trained on more data.")
    bundle = dataclasses.replace(model.bundle, calibration=None)
    settings.runs_dir.mkdir(parents=True, exist_ok=True)
    outputs = []
    with tempfile.TemporaryDirectory(dir=settings.runs_dir, prefix="privacy-") as tmp:
        for k in range(cfg.privacy_reference_models):
            order = rng.permutation(_rows(pool))
            splits = {"train": _take(pool, order[:rows]),
                      "val": _take(pool, order[rows:rows + held])}
            weights = train_unregistered(spec, splits, Path(tmp) / f"reference-{k}",
                                         workers=cfg.privacy_workers, seed=spec.seed + 1 + k)
            reference = LoadedModel(bundle, weights, allowed_factories=[bundle.model])
            outputs.append(reference.predict_arrays(*inputs, calibrated=False))
    return outputs


__all__ = ["audit_version", "evaluate_with_privacy"]
