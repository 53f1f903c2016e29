"""``dl.distill``: train a small student on a registered teacher's softened outputs.

Knowledge distillation (Hinton et al. 2015) with the same engine as :func:`driftloop.train`:
the student trains data-parallel (DDP, the same launcher, checkpoints and exact resume) on
``alpha`` × the teacher's temperature-softened outputs plus ``1 − alpha`` × the labels
(:class:`~driftloop.train.distill_loss.DistillLoss`; regression: an MSE to the teacher's
outputs plus an MSE to the target).

The student uses the teacher's data exactly: DATA is prepared with the teacher run's target,
seed, split fractions, time/group columns and data-check choices, and the launcher refuses it
unless every split has the teacher's fingerprint and the preprocessing comes out the same
(:meth:`~driftloop.train.teacher.Teacher.check_data`). So the student's test split is the
teacher's, row for row, and the ``student`` gate can compare the two on paired rows. The
teacher's outputs are computed once, in the launcher, into the run folder
(:mod:`driftloop.train.teacher` says why).

The student is a normal version — evaluated with intervals, calibrated, profiled for
monitoring — of ``NAME`` (default ``TEACHER-student``; pass the teacher's own name to make it
the teacher model's next version), with the teacher as its lineage parent and
``metrics["distillation"]`` (:mod:`driftloop.registry.distillation`) saying how it was made.

Examples
--------
>>> import driftloop as dl                                              # doctest: +SKIP
>>> teacher = dl.train("digits.csv", target="digit", model="acme.models:wide_mlp")  # doctest: +SKIP
>>> student = dl.distill(f"{teacher.model}:{teacher.version}", "digits.csv",
...                      temperature=4.0, alpha=0.7)                     # doctest: +SKIP
>>> student.distillation["param_ratio"] > 10                            # doctest: +SKIP
True
"""  # noqa: E501

from __future__ import annotations

import math
import os
from typing import Any

import pandas as pd

from driftloop.config import Settings
from driftloop.errors import UsageError
from driftloop.evaluate.report import parse_ref
from driftloop.models.architectures import resolve_model_name
from driftloop.registry.names import check_model_name
from driftloop.registry.registry import Registry
from driftloop.store import VersionRecord
from driftloop.train.launcher import ModelArg, TrainResult, train
from driftloop.train.teacher import Teacher

DEFAULT_STUDENT = "mlp-small"
DEFAULT_TEMPERATURE = 2.0
DEFAULT_ALPHA = 0.5


def distill(
    teacher: str,
    data: str | os.PathLike[str] | pd.DataFrame,
    *,
    student: ModelArg = DEFAULT_STUDENT,
    temperature: float = DEFAULT_TEMPERATURE,
    alpha: float = DEFAULT_ALPHA,
    name: str | None = None,
    workers: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    settings: Settings | None = None,
    progress: bool = True,
) -> TrainResult:
    """Distil ``teacher`` (``NAME[:VERSION]``) into a student trained on ``data``; register it.

    Parameters
    ----------
    teacher
        The registered teacher version (latest when VERSION is left out).
    data
        The teacher's training data (CSV / Parquet / NPZ path or DataFrame): the same rows,
        split the same way (refused otherwise).
    student
        ``"mlp-small"`` (one hidden layer of 32), another built-in name, ``"module:function"``
        or a factory, as ``train(model=...)`` takes.
    temperature
        Softening temperature ``T`` > 0 of both distributions (classification).
    alpha
        Weight in [0, 1] of the teacher term; ``1 − alpha`` weighs the labels.
    name
        Registered name of the student (default: the teacher's name + ``-student``).
    workers, epochs, batch_size, lr
        As for :func:`driftloop.train` (the ``train:`` settings otherwise).
    """
    _check_settings(temperature, alpha)
    settings = settings or Settings.load()
    teacher_name, teacher_version = parse_ref(teacher)
    with Registry.open(settings) as registry:
        record = registry.get(teacher_name, teacher_version)
        params = _teacher_params(registry, record)
        loaded = registry.load(record.model_name, record.version)
    plan = Teacher(f"{record.model_name}:{record.version}", record.id, loaded,
                   temperature=float(temperature), alpha=float(alpha),
                   size_bytes=record.size_bytes)
    if isinstance(student, str):
        student = resolve_model_name(student, record.input_kind)
        if student in ("mlp", "mlp-small") and record.input_kind != "table":
            raise UsageError(
                f"--student {student} is a table model, but teacher {plan.ref} reads "
                f"{record.input_kind} input; pass --student cnn, gru or module:function."
            )
    checks = params.get("checks") or {}
    split = {k: params[k] for k in ("val_fraction", "test_fraction") if k in params}
    return train(
        data, params.get("target"), model=student, workers=workers, epochs=epochs,
        batch_size=batch_size, lr=lr, seed=params.get("seed"),
        name=check_model_name(name) if name else _student_name(record),
        task=record.task, time_column=params.get("time_column"),
        group_column=params.get("group_column"), input_kind=record.input_kind,
        ignore_checks=checks.get("ignored_checks") or (),
        allow_pii=checks.get("allowed_pii") or (),
        settings=settings.updated({"train": split}), progress=progress, teacher=plan,
    )


def _check_settings(temperature: float, alpha: float) -> None:
    """Refuse a temperature or alpha outside its range, naming the flag and the range."""
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature)
            and temperature > 0):
        raise UsageError(f"--temperature must be a number above 0 (e.g. 2 or 4). Got "
                         f"{temperature!r} instead.")
    if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
        raise UsageError(f"--alpha must be between 0 (labels only) and 1 (teacher only), e.g. "
                         f"0.5. Got {alpha!r} instead.")


def _teacher_params(registry: Registry, record: VersionRecord) -> dict[str, Any]:
    """The teacher run's params (target, seed, split fractions, data-check choices)."""
    ref = f"{record.model_name}:{record.version}"
    if record.run_id is None:
        raise UsageError(f"teacher {ref} was registered without a training run, so its data "
                         "split is unknown; distil a version that `driftloop train` made.")
    return dict(registry.store.get_run(record.run_id).params)


def _student_name(record: VersionRecord) -> str:
    """``NAME-student``, cut to the longest model name allowed."""
    return check_model_name(f"{record.model_name[:120]}-student")


__all__ = ["DEFAULT_ALPHA", "DEFAULT_STUDENT", "DEFAULT_TEMPERATURE", "distill"]
