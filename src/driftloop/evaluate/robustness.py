"""Robustness: accuracy under small, bounded perturbations of the numeric features.

For each radius ε (L∞, in **standardised units**: a raw column moves by at most ε × its
training standard deviation) the section measures the accuracy of the served model on

- the clean rows;
- uniform random noise in [−ε, ε] on every perturbed column (how much the model minds noise);
- FGSM: one step of size ε along the sign of the gradient of the cross-entropy of the true
  label (Goodfellow et al. 2015);
- PGD: ``steps`` signed-gradient steps of size α = 2.5 ε / steps from a uniform random start,
  each projected back into the ε ball (Madry et al. 2018); every row keeps the iterate with
  the highest loss, so a step that overshoots does not undo an earlier success.

Only the standardised numeric columns of a table model move. Boolean columns, missing-value
indicators and categorical codes (embedding indices) are discrete: no small perturbation of
them exists, so they are left as they are. The loss is that of the logits the model serves
(divided by its temperature): temperature scaling never changes the predicted class, but it
changes the loss whose gradient the attack follows.

Each accuracy has a bootstrap interval (:mod:`driftloop.evaluate.intervals`); the drop
clean − PGD accuracy has a paired bootstrap interval on the same rows
(:func:`driftloop.evaluate.paired.paired_difference`), which the ``robustness`` promotion gate
reads; ``flipped`` counts rows whose predicted label the perturbation changed.

Written by hand rather than with an attack library (torchattacks, ART): the attacks are a few
lines of autograd, and the libraries assume one image tensor in [0, 1] while a table model takes
two tensors of which only some columns may move.

Examples
--------
>>> import numpy as np, torch
>>> from safetensors.torch import save
>>> from driftloop.models import LoadedModel, ModelBundle, build_model
>>> _ = torch.manual_seed(0)
>>> inputs = {"n_numeric": 2, "cardinalities": []}
>>> bundle = ModelBundle(task="binary", input_kind="table", model="mlp", model_inputs=inputs,
...                      n_outputs=2, classes=[0, 1], schema=None, preprocessor=None,
...                      target_encoder={"task": "binary", "classes": [0, 1]})
>>> model = LoadedModel(bundle, save(build_model("mlp", inputs, 2).state_dict()))
>>> x = np.random.default_rng(0).normal(size=(300, 2)).astype(np.float32)
>>> y = model.predict_arrays(x).argmax(1)            # the clean model is right on every row
>>> report = evaluate_robustness(model, x, None, y, epsilons=[0.0, 0.5], n_resamples=100)
>>> [(r.epsilon, r.accuracy["clean"].value, r.drop.difference) for r in report.results][0]
(0.0, 1.0, 0.0)
>>> r = report.results[1]
>>> r.accuracy["pgd"].value <= r.accuracy["fgsm"].value <= r.accuracy["clean"].value
True

References
----------
Goodfellow, I., Shlens, J. and Szegedy, C. (2015). Explaining and Harnessing Adversarial
Examples. ICLR.
Madry, A., Makelov, A., Schmidt, L., Tsipras, D. and Vladu, A. (2018). Towards Deep Learning
Models Resistant to Adversarial Attacks. ICLR.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from driftloop.config import EvaluateSettings
from driftloop.errors import UsageError
from driftloop.evaluate.intervals import Interval, metric_intervals
from driftloop.evaluate.metrics import METRICS
from driftloop.evaluate.paired import PairedComparison, RowOutcomes, paired_difference

if TYPE_CHECKING:
    from driftloop.models import LoadedModel

_DEFAULTS = EvaluateSettings()
METHODS = ("clean", "random", "fgsm", "pgd")
STEP_FACTOR = 2.5  # α = 2.5 ε / steps: enough to cross the ball from any start (Madry et al.)
_BATCH = 4096


def perturbable_columns(preprocessor: Mapping[str, Any] | None, n_columns: int) -> np.ndarray:
    """Which columns of the numeric block move: the standardised ``numeric`` columns.

    The block is laid out by :class:`~driftloop.data.preprocess.TablePreprocessor`: one
    column per numeric or boolean feature, then the missing-value indicators. Booleans and
    indicators stay. Without preprocessing state every column counts as numeric.

    >>> state = {"numeric": [{"name": "age", "kind": "numeric", "indicator": True},
    ...                      {"name": "member", "kind": "boolean", "indicator": False}]}
    >>> perturbable_columns(state, 3).tolist()   # age, member, age__missing
    [True, False, False]
    """
    if not preprocessor or "numeric" not in preprocessor:
        return np.ones(n_columns, dtype=bool)
    mask = np.zeros(n_columns, dtype=bool)
    for i, column in enumerate(preprocessor["numeric"]):
        mask[i] = column.get("kind") == "numeric"
    return mask


@dataclass(frozen=True)
class Perturbed:
    """The inputs an attack fed the model: ``x`` moved, ``x_cat`` exactly as given."""

    x: np.ndarray
    x_cat: np.ndarray | None


class _Attacker:
    """The served model's logits and their input gradient, in eval mode, batch by batch."""

    def __init__(self, model: LoadedModel, x_cat: np.ndarray | None) -> None:
        self.module = model.module
        self.temperature = float(model.temperature)
        self.table = model.bundle.input_kind == "table"
        self.x_cat = x_cat

    def _inputs(self, x: torch.Tensor, rows: slice) -> list[torch.Tensor]:
        if not self.table:
            return [x]
        cat = (np.zeros((x.shape[0], 0), np.int64) if self.x_cat is None
               else np.asarray(self.x_cat[rows], dtype=np.int64))
        return [x, torch.from_numpy(cat)]

    def logits(self, x: torch.Tensor, rows: slice) -> torch.Tensor:
        return self.module(*self._inputs(x, rows)) / self.temperature

    def loss_and_grad(self, x: torch.Tensor, y: torch.Tensor,
                      rows: slice) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-row cross-entropy (float64) and the direction of its gradient with respect to
        ``x`` only: no parameter gradient is computed or stored (``autograd.grad`` with ``x``
        as the only input).

        The gradient of the loss with respect to the logits, softmax − one-hot, is computed in
        log space and divided per row by the largest wrong-class probability before it is
        back-propagated. The attacks use only its sign, which a positive per-row factor keeps;
        without it a confident row (p = 1 in float32) would get a zero gradient and never move.
        """
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            logits = self.logits(x, rows)
        logp = torch.log_softmax(logits.detach().double(), dim=1)
        true = y[:, None]
        loss = -logp.gather(1, true).squeeze(1)
        others = logp.scatter(1, true, -torch.inf)
        top = others.max(dim=1, keepdim=True).values
        direction = torch.exp(logp - top).scatter(  # p_k / top; the true class: (p_y − 1) / top
            1, true, -torch.exp(others - top).sum(dim=1, keepdim=True))
        (grad,) = torch.autograd.grad(logits, x, grad_outputs=direction.to(logits.dtype))
        return loss, grad

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        out = []
        for rows in _batches(len(x)):
            out.append(self.logits(torch.from_numpy(x[rows]), rows).argmax(1).numpy())
        return np.concatenate(out) if out else np.zeros(0, np.int64)


@contextmanager
def _serving(model: LoadedModel) -> Iterator[None]:
    """Eval mode (dropout off: attack the model that serves), then the mode it had before."""
    was_training = model.module.training
    model.module.eval()
    try:
        yield
    finally:
        model.module.train(was_training)


def _batches(n: int) -> list[slice]:
    return [slice(start, start + _BATCH) for start in range(0, n, _BATCH)]


def _check_epsilon(epsilon: float) -> float:
    if not 0 <= float(epsilon) < float("inf"):
        raise UsageError(f"epsilon must be a finite number >= 0 (a radius in standardised "
                         f"units, e.g. 0.1). Got {epsilon!r} instead.")
    return float(epsilon)


def random_noise(x: np.ndarray, epsilon: float, mask: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """``x`` plus uniform noise in [−ε, ε] on the ``mask`` columns (seeded).

    >>> x = np.zeros((2, 2), np.float32)
    >>> moved = random_noise(x, 0.1, np.array([True, False]))
    >>> bool(np.abs(moved[:, 0]).max() <= 0.1), moved[:, 1].tolist()
    (True, [0.0, 0.0])
    """
    epsilon = _check_epsilon(epsilon)
    noise = np.random.default_rng(seed).uniform(-epsilon, epsilon, size=x.shape)
    return (x + (noise * mask).astype(np.float32)).astype(np.float32)


def fgsm(model: LoadedModel, x: np.ndarray, x_cat: np.ndarray | None, y: np.ndarray,
         epsilon: float, mask: np.ndarray) -> Perturbed:
    """One step of size ε along the sign of the loss gradient, on the ``mask`` columns."""
    epsilon = _check_epsilon(epsilon)
    attacker, step = _Attacker(model, x_cat), torch.from_numpy(mask.astype(np.float32))
    out = np.empty_like(x, dtype=np.float32)
    with _serving(model):
        for rows in _batches(len(x)):
            xb = torch.from_numpy(np.asarray(x[rows], dtype=np.float32))
            _, grad = attacker.loss_and_grad(xb, torch.from_numpy(y[rows]), rows)
            out[rows] = (xb + epsilon * grad.sign() * step).numpy()
    return Perturbed(out, x_cat)


def pgd(model: LoadedModel, x: np.ndarray, x_cat: np.ndarray | None, y: np.ndarray,
        epsilon: float, mask: np.ndarray, *, steps: int = _DEFAULTS.robustness_steps,
        seed: int = 0) -> Perturbed:
    """Projected gradient ascent of the loss in the L∞ ball of radius ε (``mask`` columns),
    from a uniform random start, ``steps`` steps of 2.5 ε / steps; each row keeps its
    highest-loss iterate."""
    epsilon = _check_epsilon(epsilon)
    if steps < 1:
        raise UsageError(f"PGD needs 1 or more steps. Got {steps}.")
    attacker, move = _Attacker(model, x_cat), torch.from_numpy(mask.astype(np.float32))
    alpha = STEP_FACTOR * epsilon / steps
    generator = torch.Generator().manual_seed(seed)
    out = np.empty_like(x, dtype=np.float32)
    with _serving(model):
        for rows in _batches(len(x)):
            out[rows] = _pgd_batch(attacker, x[rows], y[rows], rows, epsilon, alpha, move, steps,
                                   generator)
    return Perturbed(out, x_cat)


def _pgd_batch(attacker: _Attacker, x: np.ndarray, y: np.ndarray, rows: slice, epsilon: float,
               alpha: float, move: torch.Tensor, steps: int,
               generator: torch.Generator) -> np.ndarray:
    xb, yb = torch.from_numpy(np.asarray(x, dtype=np.float32)), torch.from_numpy(y)
    start = torch.rand(xb.shape, generator=generator, dtype=torch.float32)
    delta = (2 * start - 1) * epsilon * move
    best = xb.clone()
    best_loss = torch.full((len(xb),), -torch.inf, dtype=torch.float64)
    for step in range(steps + 1):
        candidate = xb + delta
        loss, grad = attacker.loss_and_grad(candidate, yb, rows)
        better = loss > best_loss
        best[better], best_loss = candidate[better], torch.where(better, loss, best_loss)
        if step < steps:
            delta = torch.clamp(delta + alpha * grad.sign() * move, -epsilon, epsilon)
    return best.numpy()


@dataclass(frozen=True)
class RobustnessResult:
    """Accuracy clean, under random noise, FGSM and PGD at one ε, and the paired drop."""

    epsilon: float
    accuracy: dict[str, Interval]  # by method: clean, random, fgsm, pgd
    drop: PairedComparison  # clean − PGD accuracy on the same rows ("difference")
    flipped: dict[str, int]  # rows whose predicted label the method changed

    def to_json(self) -> dict[str, Any]:
        return {
            "epsilon": self.epsilon,
            "accuracy": {name: i.to_json() for name, i in self.accuracy.items()},
            "drop": {"value": self.drop.difference, "low": self.drop.low,
                     "high": self.drop.high, "confidence": self.drop.confidence,
                     "rows": self.drop.rows, "resamples": self.drop.resamples,
                     "seed": self.drop.seed, "means": "clean - PGD accuracy, same rows"},
            "flipped": dict(self.flipped),
        }


@dataclass(frozen=True)
class RobustnessReport:
    """The robustness section of an evaluation report (:meth:`to_json` is what is stored)."""

    rows: int
    perturbed: list[str]  # columns that moved
    untouched: list[str]  # boolean, indicator and categorical columns
    steps: int
    seed: int
    temperature: float
    results: list[RobustnessResult]

    def to_json(self) -> dict[str, Any]:
        return {
            "applicable": True, "rows": self.rows, "norm": "linf",
            "units": "standardised (epsilon x training std in raw units)",
            "perturbed_columns": list(self.perturbed), "untouched_columns": list(self.untouched),
            "pgd": {"steps": self.steps, "step_size": f"{STEP_FACTOR} * epsilon / steps",
                    "random_start": True, "keeps": "highest-loss iterate per row"},
            "loss": "cross-entropy of the served (temperature-scaled) logits",
            "temperature": self.temperature, "seed": self.seed,
            "results": [r.to_json() for r in self.results],
        }


def evaluate_robustness(
    model: LoadedModel,
    x: np.ndarray,
    x_cat: np.ndarray | None,
    y: np.ndarray,
    *,
    epsilons: Sequence[float] = (0.1,),
    steps: int = _DEFAULTS.robustness_steps,
    n_resamples: int = _DEFAULTS.resamples,
    confidence: float = _DEFAULTS.confidence,
    seed: int = _DEFAULTS.seed,
) -> RobustnessReport:
    """Attack ``model`` (a classifier) on preprocessed ``x``/``x_cat`` with class codes ``y``.

    Parameters
    ----------
    model
        A :class:`~driftloop.models.LoadedModel` of a binary or multiclass task.
    x, x_cat
        The preprocessed numeric block (float32) and category codes (int64, or None).
    epsilons
        L∞ radii in standardised units; each gets one :class:`RobustnessResult`.
    steps, n_resamples, confidence, seed
        PGD steps; bootstrap resamples, coverage and seed (also of the noise and PGD start).
    """
    if model.task == "regression":
        raise UsageError("robustness is measured as accuracy: it needs a classifier, and this "
                         "model is a regression model.")
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    if len(x) == 0 or len(x) != len(y):
        raise UsageError(f"robustness needs one class code per row; got {len(x)} rows and "
                         f"{len(y)} codes.")
    radii = [_check_epsilon(e) for e in epsilons]
    mask = perturbable_columns(model.bundle.preprocessor, x.shape[1])
    attacker = _Attacker(model, x_cat)
    with _serving(model):
        clean = attacker.predict(x)
        results = [
            _at_radius(model, attacker, x, x_cat, y, clean, eps, mask, steps=steps,
                       boot={"n_resamples": n_resamples, "confidence": confidence, "seed": seed})
            for eps in radii
        ]
    perturbed, untouched = _column_names(model.bundle.preprocessor, mask)
    return RobustnessReport(len(x), perturbed, untouched, steps, seed, float(model.temperature),
                            results)


def _at_radius(model: LoadedModel, attacker: _Attacker, x: np.ndarray,
               x_cat: np.ndarray | None, y: np.ndarray, clean: np.ndarray, epsilon: float,
               mask: np.ndarray, *, steps: int, boot: dict[str, Any]) -> RobustnessResult:
    seed = boot["seed"]
    predicted = {
        "clean": clean,
        "random": attacker.predict(random_noise(x, epsilon, mask, seed=seed)),
        "fgsm": attacker.predict(fgsm(model, x, x_cat, y, epsilon, mask).x),
        "pgd": attacker.predict(pgd(model, x, x_cat, y, epsilon, mask, steps=steps,
                                    seed=seed).x),
    }
    k = model.bundle.n_outputs
    onehot = {name: np.eye(k)[labels] for name, labels in predicted.items()}
    accuracy = {name: metric_intervals(model.task, y, p, metrics=[METRICS["accuracy"]],
                                       **boot)["accuracy"] for name, p in onehot.items()}
    drop = paired_difference(
        "accuracy", RowOutcomes.from_predictions(model.task, y, onehot["clean"]),
        RowOutcomes.from_predictions(model.task, y, onehot["pgd"]), **boot,
    )
    flipped = {name: int(np.count_nonzero(labels != clean))
               for name, labels in predicted.items() if name != "clean"}
    return RobustnessResult(epsilon, accuracy, drop, flipped)


def _column_names(preprocessor: Mapping[str, Any] | None,
                  mask: np.ndarray) -> tuple[list[str], list[str]]:
    if not preprocessor or "numeric" not in preprocessor:
        return [f"x{i}" for i in range(len(mask))], []
    numeric = preprocessor["numeric"]
    names = [c["name"] for c in numeric] + [f"{c['name']}__missing" for c in numeric
                                            if c.get("indicator")]
    categorical = [str(c["name"]) for c in preprocessor.get("categorical") or []]
    return ([n for n, m in zip(names, mask, strict=True) if m],
            [n for n, m in zip(names, mask, strict=True) if not m] + categorical)


def not_applicable(reason: str) -> dict[str, Any]:
    """The section of a report for a model it does not apply to.

    >>> not_applicable("a regression model has no accuracy")["applicable"]
    False
    """
    return {"applicable": False, "reason": reason}


def robustness_section(
    model: LoadedModel,
    x: np.ndarray,
    x_cat: np.ndarray | None,
    y: np.ndarray,
    settings: EvaluateSettings,
) -> dict[str, Any] | None:
    """The JSON section an evaluation report stores under ``robustness``, with the
    ``evaluate:`` settings; None when ``evaluate.robustness`` is off."""
    if not settings.robustness:
        return None
    if model.task == "regression":
        return not_applicable("a regression model has no accuracy to attack")
    if model.bundle.input_kind != "table":
        return not_applicable(f"{model.bundle.input_kind} models are not attacked (tables only)")
    if not perturbable_columns(model.bundle.preprocessor, np.shape(x)[1]).any():
        return not_applicable("the model reads no numeric feature (categorical and boolean "
                              "columns have no small perturbation)")
    n_all = len(y)
    rows = sample_rows(n_all, settings.robustness_max_rows, settings.seed)
    if rows is not None:
        x, y = np.asarray(x)[rows], np.asarray(y)[rows]
        x_cat = None if x_cat is None else np.asarray(x_cat)[rows]
    section = evaluate_robustness(
        model, x, x_cat, y, epsilons=settings.robustness_epsilon,
        steps=settings.robustness_steps, n_resamples=settings.resamples,
        confidence=settings.confidence, seed=settings.seed,
    ).to_json()
    if rows is not None:
        section["sampled_from"] = n_all  # "rows" is the sample's size
    return section


def sample_rows(n: int, max_rows: int, seed: int) -> np.ndarray | None:
    """Sorted positions of a seeded sample of ``max_rows`` of ``n`` rows; None: use them all.

    The attacks cost (1 + 1 + ``steps``) forward and backward passes per row, the most of a
    training run's evaluation (issue 21). Their accuracies are means of 0/1 outcomes, so their
    95% interval on m rows is at most 1.96 × 0.5 / √m wide on either side: ±0.0098 at the
    default 10,000 rows, finer than any drop a robustness gate tells apart. The sample is a
    uniform draw, so every accuracy and the drop keep their expected value; only the interval
    widens (from ±0.0057 at 30,000 rows), which makes the gate (the drop's upper bound)
    stricter, never looser.

    >>> sample_rows(50, 100, seed=0) is None
    True
    >>> rows = sample_rows(30_000, 10_000, seed=0)
    >>> len(rows), bool((np.diff(rows) > 0).all())
    (10000, True)
    """
    if n <= max_rows:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, max_rows, replace=False))


def robustness_lines(section: Mapping[str, Any]) -> list[str]:
    """Readable lines of a stored section (the report's summary prints them).

    >>> robustness_lines(not_applicable("a regression model has no accuracy to attack"))
    ['robustness: not applicable (a regression model has no accuracy to attack)']
    """
    if not section.get("applicable"):
        return [f"robustness: not applicable ({section.get('reason', 'unknown reason')})"]
    lines = [f"robustness (L∞ ε in standardised units on {len(section['perturbed_columns'])} "
             f"numeric column(s); PGD {section['pgd']['steps']} steps; accuracy with interval"
             + (f"; a seeded sample of {section['rows']} of {section['sampled_from']} rows)"
                if section.get("sampled_from") else ")")]
    for r in section["results"]:
        acc, d = r["accuracy"], r["drop"]
        parts = " · ".join(f"{name} {_band(acc[name])}" for name in METHODS)
        lines.append(f"  ε {r['epsilon']:g}: {parts}")
        lines.append(f"    drop clean−PGD {d['value']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}] "
                     f"(paired) · labels flipped: random {r['flipped']['random']}, FGSM "
                     f"{r['flipped']['fgsm']}, PGD {r['flipped']['pgd']} of {section['rows']}")
    return lines


def _band(i: Mapping[str, Any]) -> str:
    if i.get("low") is None:
        return f"{i['value']:.4f}"
    return f"{i['value']:.4f} [{i['low']:.4f}, {i['high']:.4f}]"


__all__ = [
    "METHODS",
    "Perturbed",
    "RobustnessReport",
    "RobustnessResult",
    "evaluate_robustness",
    "fgsm",
    "not_applicable",
    "perturbable_columns",
    "pgd",
    "random_noise",
    "robustness_lines",
    "robustness_section",
]
