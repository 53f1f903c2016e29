"""``dl.evaluate``: one report of how good a model version is on a dataset, and how sure we are.

The report holds every metric of the task with its seeded bootstrap interval, calibration
before and after the version's temperature scaling (ECE on equal-width and equal-mass bins,
MCE, a reliability diagram PNG), and slice results. It is JSON (:meth:`EvaluationReport.to_json`)
plus a readable :meth:`EvaluationReport.summary`; :func:`store_report` saves it as an artifact
linked to the model version and to the dataset's fingerprint. Training evaluates its test split
with the same :func:`build_report`. The report also keeps each row's outcome (``per_row``: right or
wrong, or the residual; :class:`~driftloop.evaluate.paired.RowOutcomes`, bit-packed and bounded)
so two versions evaluated on the same data can be compared row by row (the holder gate).

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 2, 500)
>>> proba = np.clip(np.eye(2)[y] * 0.6 + rng.uniform(0, 0.4, (500, 2)), 0, 1)
>>> proba /= proba.sum(1, keepdims=True)
>>> report = build_report("binary", y, proba, dataset={"fingerprint": "f" * 64, "rows": 500},
...                       n_resamples=200)
>>> sorted(report.metrics)
['accuracy', 'balanced_accuracy', 'brier', 'log_loss', 'macro_f1', 'roc_auc']
>>> print(report.summary().splitlines()[2])
accuracy                1.0000  [1.0000, 1.0000]
>>> report.per_row["kind"], report.row_outcomes().rows  # kept for paired comparisons
('correct', 500)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from driftloop.config import EvaluateSettings, Settings
from driftloop.data.fingerprint import fingerprint_arrays, fingerprint_frame
from driftloop.data.read import ARRAY_SUFFIXES, read_arrays, read_table
from driftloop.data.values import missing_mask
from driftloop.errors import DataError, UsageError
from driftloop.evaluate.calibration import calibration_summary, reliability_diagram
from driftloop.evaluate.intervals import Interval, metric_intervals
from driftloop.evaluate.metrics import classification_metrics, regression_metrics
from driftloop.evaluate.paired import RowOutcomes
from driftloop.evaluate.slices import SliceReport, evaluate_slices
from driftloop.timing import phase

if TYPE_CHECKING:
    from driftloop.models import LoadedModel

_DEFAULTS = EvaluateSettings()


@dataclass(frozen=True)
class EvaluationReport:
    """Metrics with intervals, calibration and slices of one model on one dataset."""

    task: str
    dataset: dict[str, Any]  # fingerprint, source, rows (evaluated), role
    metrics: dict[str, Interval]
    point_metrics: dict[str, float]  # sklearn's values, plus n and the majority-class rate
    calibration: dict[str, Any] | None = None  # temperature, before, after, bins
    slices: SliceReport | None = None
    model: dict[str, Any] = field(default_factory=dict)  # name, version
    settings: dict[str, Any] = field(default_factory=dict)  # resamples, confidence, seed
    warnings: list[str] = field(default_factory=list)
    diagram_png: bytes | None = field(default=None, repr=False, compare=False)
    diagram_sha256: str | None = None
    artifact_sha256: str | None = None  # set once stored
    per_row: dict[str, Any] | None = field(default=None, repr=False)  # RowOutcomes.to_json()
    robustness: dict[str, Any] | None = None  # evaluate.robustness: accuracy under attack
    privacy: dict[str, Any] | None = None  # PrivacyReport.to_json() (evaluate --privacy)

    def row_outcomes(self) -> RowOutcomes | None:
        """Each evaluated row's outcome, for a paired comparison (None: not kept)."""
        return None if self.per_row is None else RowOutcomes.from_json(self.per_row)

    def headline_metrics(self) -> dict[str, float]:
        """Flat numbers recorded with a model version: point metrics and calibration."""
        out = dict(self.point_metrics)
        if self.calibration is not None:
            out["ece"] = self.calibration["after"]["ece"]
            out["ece_uncalibrated"] = self.calibration["before"]["ece"]
            out["temperature"] = self.calibration["temperature"]
        return out

    def to_json(self) -> dict[str, Any]:
        """The report as JSON (the reliability diagram is referenced by its sha256)."""
        return {
            "kind": "evaluation",
            "model": dict(self.model),
            "task": self.task,
            "dataset": dict(self.dataset),
            "metrics": {name: i.to_json() for name, i in self.metrics.items()},
            "point_metrics": dict(self.point_metrics),
            "calibration": self.calibration,
            "slices": None if self.slices is None else self.slices.to_json(),
            "settings": dict(self.settings),
            "warnings": list(self.warnings),
            "diagram_sha256": self.diagram_sha256,
            "artifact_sha256": self.artifact_sha256,
            "per_row": None if self.per_row is None else dict(self.per_row),
            "robustness": self.robustness,
            "privacy": None if self.privacy is None else dict(self.privacy),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EvaluationReport:
        """Rebuild a report from :meth:`to_json` output (without the diagram's bytes).

        >>> import numpy as np
        >>> r = build_report("regression", np.arange(5.0), np.arange(5.0) + 0.5,
        ...                  dataset={"fingerprint": "f" * 64}, n_resamples=50)
        >>> EvaluationReport.from_json(r.to_json()) == r
        True
        """
        try:
            slices = data.get("slices")
            return cls(
                task=data["task"], dataset=dict(data["dataset"]),
                metrics={k: Interval(**v) for k, v in data["metrics"].items()},
                point_metrics=dict(data["point_metrics"]), calibration=data.get("calibration"),
                slices=None if slices is None else SliceReport.from_json(slices),
                model=dict(data.get("model") or {}), settings=dict(data.get("settings") or {}),
                warnings=list(data.get("warnings") or []),
                diagram_sha256=data.get("diagram_sha256"),
                artifact_sha256=data.get("artifact_sha256"),
                per_row=None if data.get("per_row") is None else dict(data["per_row"]),
                robustness=data.get("robustness"),
                privacy=None if data.get("privacy") is None else dict(data["privacy"]),
            )
        except (KeyError, TypeError) as exc:
            raise UsageError(f"evaluation report JSON is malformed (bad field {exc}).") from None

    def write_diagram(self, path: str | os.PathLike[str]) -> Path:
        """Write the reliability diagram PNG to ``path`` (classification only)."""
        if self.diagram_png is None:
            raise UsageError("this report has no reliability diagram (regression, or stored "
                             "without it); evaluate a classifier to get one.")
        target = Path(path)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(self.diagram_png)
        os.replace(tmp, target)
        return target

    def summary(self) -> str:
        """A readable summary: what was evaluated, metrics with intervals, calibration, slices."""
        who = (f"{self.model['name']} v{self.model['version']}" if self.model.get("name")
               else "model")
        fp = str(self.dataset.get("fingerprint", ""))[:12]
        lines = [
            f"{who} · {self.task} · {self.dataset.get('rows')} rows of "
            f"{self.dataset.get('source', 'data')} (fingerprint {fp})",
            f"{'metric':<20}{'value':>10}  {self.settings.get('confidence', 0.95):.0%} interval",
        ]
        for name, i in self.metrics.items():
            band = "n/a" if i.low is None else f"[{i.low:.4f}, {i.high:.4f}]"
            lines.append(f"{name:<20}{i.value:>10.4f}  {band}")
        if self.calibration is not None:
            b, a, t = self.calibration["before"], self.calibration["after"], self.calibration
            lines.append(
                f"calibration: temperature {t['temperature']:.3f} · ECE {b['ece']:.4f} → "
                f"{a['ece']:.4f} · equal-mass ECE {b['ece_equal_mass']:.4f} → "
                f"{a['ece_equal_mass']:.4f} · MCE {b['mce']:.4f} → {a['mce']:.4f}"
            )
        if self.slices is not None:
            lines += _slice_lines(self.slices)
        if self.robustness is not None:
            from driftloop.evaluate.robustness import robustness_lines

            lines += robustness_lines(self.robustness)
        if self.privacy is not None:
            from driftloop.evaluate.privacy import privacy_summary

            lines += privacy_summary(self.privacy)
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def build_report(
    task: str,
    y_true: np.ndarray,
    outputs: np.ndarray,
    *,
    uncalibrated: np.ndarray | None = None,
    temperature: float = 1.0,
    frame: pd.DataFrame | None = None,
    slices: Sequence[str] = (),
    dataset: Mapping[str, Any] | None = None,
    model: Mapping[str, Any] | None = None,
    warnings: Sequence[str] = (),
    n_resamples: int = _DEFAULTS.resamples,
    confidence: float = _DEFAULTS.confidence,
    seed: int = _DEFAULTS.seed,
    calibration_bins: int = _DEFAULTS.calibration_bins,
    slice_bins: int = _DEFAULTS.slice_bins,
    slice_min_count: int = _DEFAULTS.slice_min_count,
    slice_tolerance: float = _DEFAULTS.slice_tolerance,
) -> EvaluationReport:
    """Evaluate ``outputs`` against ``y_true``.

    Parameters
    ----------
    task
        ``binary``, ``multiclass`` or ``regression``.
    y_true, outputs
        Class codes and (calibrated) N×K probabilities, or target and predicted values on the
        target's original scale.
    uncalibrated, temperature
        The probabilities before temperature scaling and the temperature (classification);
        without them the outputs count as uncalibrated.
    frame, slices
        Raw rows (aligned with ``y_true``) and the columns of ``frame`` to slice by.

    The report keeps every row's outcome in ``per_row`` (see
    :class:`~driftloop.evaluate.paired.RowOutcomes` for the encoding and its size limits).
    """
    y_true, outputs = np.asarray(y_true), np.asarray(outputs)
    if len(y_true) == 0:
        raise DataError("nothing to evaluate: zero rows with a target value.")
    boot = {"n_resamples": n_resamples, "confidence": confidence, "seed": seed}
    with phase("evaluation.metric_intervals"):
        intervals = metric_intervals(task, y_true, outputs, **boot)
    calibration = diagram = None
    if task == "regression":
        points = regression_metrics(y_true, outputs)
    else:
        points = classification_metrics(y_true, outputs)
        before = outputs if uncalibrated is None else np.asarray(uncalibrated)
        calibration = {
            "temperature": float(temperature),
            "bins": calibration_bins,
            "before": calibration_summary(y_true, before, calibration_bins),
            "after": calibration_summary(y_true, outputs, calibration_bins),
        }
        diagram = reliability_diagram(
            y_true, before, calibrated=None if uncalibrated is None else outputs,
            n_bins=calibration_bins, title=f"reliability ({len(y_true)} rows)",
        )
    slice_report = None
    if slices:
        if frame is None:
            raise UsageError("slices need the raw rows (a table); arrays cannot be sliced.")
        with phase("evaluation.slices"):
            slice_report = evaluate_slices(
                frame, list(slices), y_true, outputs, task, n_bins=slice_bins,
                min_count=slice_min_count, tolerance=slice_tolerance, **boot,
            )
    return EvaluationReport(
        task=task, dataset={"rows": int(len(y_true)), **dict(dataset or {})},
        metrics=intervals, point_metrics=points, calibration=calibration, slices=slice_report,
        model=dict(model or {}), settings={"resamples": n_resamples, "confidence": confidence,
                                           "seed": seed},
        warnings=list(warnings), diagram_png=diagram,
        per_row=RowOutcomes.from_predictions(task, y_true, outputs).to_json(),
    )


def report_options(settings: EvaluateSettings) -> dict[str, Any]:
    """Keyword arguments of :func:`build_report` taken from the ``evaluate:`` settings."""
    return {
        "n_resamples": settings.resamples, "confidence": settings.confidence,
        "seed": settings.seed, "calibration_bins": settings.calibration_bins,
        "slice_bins": settings.slice_bins, "slice_min_count": settings.slice_min_count,
        "slice_tolerance": settings.slice_tolerance,
    }


def evaluate_model(
    model: LoadedModel,
    data: str | os.PathLike[str] | pd.DataFrame,
    slices: Sequence[str] = (),
    *,
    target: str | None = None,
    settings: Settings | None = None,
    model_ref: Mapping[str, Any] | None = None,
) -> tuple[EvaluationReport, list[dict[str, Any]] | None]:
    """Evaluate a loaded model on ``data``: pure, nothing is read from or written to a store.

    Returns the report and the data's feature columns (for recording the dataset).
    :func:`driftloop.evaluate` (in :mod:`driftloop.registry.evaluation`) loads a registered
    version, calls this and stores the report with the version.

    Parameters
    ----------
    model
        A :class:`~driftloop.models.LoadedModel`.
    data
        A CSV/Parquet file or DataFrame holding the model's feature columns and its target
        column, or an ``.npz`` file with ``X`` and ``y`` for image/sequence models.
    slices
        Columns of ``data`` to evaluate per value / quantile bin.
    target
        The target column when it is named differently from training.
    model_ref
        ``{"name": ..., "version": ...}`` written into the report.

    Examples
    --------
    >>> import numpy as np, pandas as pd, torch
    >>> from safetensors.torch import save
    >>> from driftloop.data.prepare import prepare
    >>> from driftloop.models import LoadedModel, ModelBundle, build_model
    >>> _ = torch.manual_seed(0)
    >>> frame = pd.DataFrame({"x": np.arange(200.0), "y": np.arange(200) % 2})
    >>> data = prepare(frame, "y", seed=0)
    >>> bundle = ModelBundle(
    ...     task=data.task, input_kind="table", model="mlp", model_inputs=data.model_inputs,
    ...     n_outputs=2, classes=data.classes, schema=data.schema.to_json(),
    ...     preprocessor=data.preprocessor, target_encoder=data.target_encoder)
    >>> model = LoadedModel(bundle, save(build_model("mlp", data.model_inputs, 2).state_dict()))
    >>> settings = Settings(evaluate={"resamples": 100})
    >>> report, columns = evaluate_model(model, frame, settings=settings)
    >>> report.dataset["rows"], "accuracy" in report.metrics, columns
    (200, True, [{'name': 'x', 'kind': 'numeric'}])
    """
    settings = settings or Settings.load()
    inputs = _read_eval_data(data, model, target)
    calibrated = model.predict_arrays(inputs.x, inputs.x_cat)
    raw = None
    if model.task == "regression":
        calibrated = model.to_original_scale(calibrated)
    elif model.temperature != 1.0:
        raw = model.predict_arrays(inputs.x, inputs.x_cat, calibrated=False)
    report = build_report(
        model.task, inputs.y, calibrated, uncalibrated=raw, temperature=model.temperature,
        frame=inputs.frame, slices=slices, dataset=inputs.dataset,
        model=dict(model_ref) if model_ref is not None else None,
        warnings=inputs.warnings, **report_options(settings.evaluate),
    )
    from driftloop.evaluate.robustness import robustness_section

    robust = robustness_section(model, inputs.x, inputs.x_cat, inputs.y, settings.evaluate)
    return dataclasses.replace(report, robustness=robust), inputs.columns


def parse_ref(ref: str) -> tuple[str, int | None]:
    """Split ``NAME[:VERSION]`` (VERSION may be written ``v3``).

    >>> parse_ref("credit"), parse_ref("credit:v3")
    (('credit', None), ('credit', 3))
    """
    name, _, version = ref.partition(":")
    if not version:
        return name, None
    try:
        return name, int(version.lstrip("v"))
    except ValueError:
        raise UsageError(
            f"'{ref}' is not NAME or NAME:VERSION (VERSION a whole number, e.g. credit:3)."
        ) from None


def evaluation_arrays(
    data: str | os.PathLike[str] | pd.DataFrame, model: LoadedModel, target: str | None = None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """``(x, x_cat, y)`` of ``data`` preprocessed as ``model`` was trained (rows with a missing
    target left out), as :func:`evaluate_model` reads them; the privacy audit's non-members."""
    inputs = _read_eval_data(data, model, target)
    return inputs.x, inputs.x_cat, inputs.y


@dataclass(frozen=True)
class _EvalInputs:
    x: np.ndarray
    x_cat: np.ndarray | None
    y: np.ndarray
    frame: pd.DataFrame | None
    dataset: dict[str, Any]
    columns: list[dict[str, Any]] | None
    warnings: list[str]


def _read_eval_data(data: Any, model: LoadedModel, target: str | None) -> _EvalInputs:
    from driftloop.data.prepare import apply_preprocessing
    from driftloop.data.preprocess import TargetEncoder

    bundle = model.bundle
    encoder = TargetEncoder.from_json(bundle.target_encoder)
    is_arrays = isinstance(data, (str, os.PathLike)) and str(data).lower().endswith(
        ARRAY_SUFFIXES
    )
    if bundle.input_kind != "table" or is_arrays:
        if bundle.input_kind == "table":
            raise DataError(f"{data}: model was trained on a table; pass a CSV or Parquet file.")
        arrays = read_arrays(data, kind=bundle.input_kind)  # type: ignore[arg-type]
        x, _ = apply_preprocessing(bundle.preprocessor or {}, arrays.x)
        y = encoder.transform(pd.Series(arrays.y))
        dataset = {"fingerprint": fingerprint_arrays(arrays.x, arrays.y),
                   "source": arrays.uri, "rows": len(y), "role": "evaluation"}
        return _EvalInputs(x, None, _original(model, y), None, dataset, None, [])
    table = read_table(data)
    frame = table.frame
    target = target or (bundle.schema or {}).get("target")
    if target not in frame.columns:
        raise DataError(
            f"{table.uri}: target column {target!r} not found. Available columns: "
            f"{', '.join(map(str, frame.columns))}. Pass --target if it is named differently."
        )
    dataset = {"fingerprint": fingerprint_frame(frame), "source": table.uri,
               "source_rows": len(frame), "role": "evaluation"}
    warnings = []
    missing = missing_mask(frame[target])
    if missing.any():
        warnings.append(f"{int(missing.sum())} rows with a missing target {target!r} were not "
                        f"evaluated (first: row {int(np.flatnonzero(missing)[0])})")
        frame = frame[~missing].reset_index(drop=True)
    if len(frame) == 0:
        raise DataError(f"{table.uri}: no row has a value in target column {target!r}.")
    x, x_cat = apply_preprocessing(bundle.preprocessor or {}, frame)
    y = encoder.transform(frame[target])
    columns = [dict(f) for f in (bundle.schema or {}).get("features", [])] or None
    return _EvalInputs(x, x_cat, _original(model, y), frame, dataset, columns, warnings)


def _original(model: LoadedModel, y: np.ndarray) -> np.ndarray:
    return model.to_original_scale(y) if model.task == "regression" else y


def _slice_lines(report: SliceReport) -> list[str]:
    ranked = [s for s in report.slices if not s.too_small]
    small = [s for s in report.slices if s.too_small]
    lines = [
        f"slices by {report.metric} (overall {report.overall:.4f}; tolerance "
        f"{report.tolerance:g} {report.tolerance_kind}; under {report.min_count} rows is too "
        f"small): {len(ranked)} ranked, {len(report.flagged)} flagged, {len(small)} too small"
    ]
    worst = report.worst
    for s in ([worst] if worst is not None else []) + [f for f in report.flagged if f != worst]:
        i = s.interval
        assert i is not None and s.gap is not None
        band = "" if i.low is None else f" [{i.low:.4f}, {i.high:.4f}]"
        tag = "worst" if s is worst else "flagged"
        mark = " FLAGGED" if s.flagged and s is worst else ""
        lines.append(f"  {tag}: {s.column} = {s.value} · {s.count} rows · {i.value:.4f}{band} · "
                     f"gap {s.gap:+.4f}{mark}")
    if small:
        lines.append("  too small: " + ", ".join(f"{s.column} = {s.value} ({s.count})"
                                                 for s in small[:10]))
    return lines


__all__ = [
    "EvaluationReport",
    "build_report",
    "evaluate_model",
    "evaluation_arrays",
    "parse_ref",
    "report_options",
]
