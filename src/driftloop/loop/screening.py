"""Screen the feedback before the loop retrains on it: one sender flipping labels is held out.

The loop retrains on labels that clients send. A sender (an API key) that flips labels —
by mistake or to steer the model — shows as more disagreement with the champion than the
champion's *calibrated* probabilities expect: for row ``i`` the champion's top class is wrong
with probability ``q_i = 1 - max_k p_ik``, so a sender's rows should disagree about
``E = Σ q_i`` times, with variance ``V = Σ q_i (1 - q_i)`` (a Poisson-binomial count).

Drift raises disagreement for every sender alike, and a retrain is then what is wanted; and a
champion's calibration is only as good as its validation split (the benchmark's champion is
under-confident: it expects more disagreement than it meets). So the decision compares each
sender with the *other* senders: rows reach senders at random, so without poisoning each
sender disagrees at the others' rate, drift or not (a two-proportion comparison). It rests on
the interval, not the point: the lower confidence bound of a sender's excess over the others
(one-sided, ``loop.screen_confidence``, Bonferroni across senders) as a share of the rows in
the loop's window must pass ``loop.max_suspect_share`` to hold the retrain. Whether a sender
also disagrees beyond the Poisson-binomial upper bound of ``E`` (calibration), and its share
of cleanlab label issues (Northcutt et al. 2021) on the same probabilities, are reported
beside it as second views; they do not decide. One sender alone cannot be told apart from
drift: nothing is held then.

Why by hand: cleanlab finds suspect *rows*; no library tests whether one *source* of labels
disagrees beyond what the model's calibration and the other sources explain.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> p1 = rng.uniform(0.7, 0.99, 1200)
>>> proba = np.column_stack([1 - p1, p1])
>>> labels = (rng.uniform(size=1200) < p1).astype(int)  # labels as calibrated as the model
>>> sources = np.array(["a", "b", "c"] * 400)
>>> poisoned = labels.copy()
>>> flip = (sources == "c") & (rng.uniform(size=1200) < 0.2)
>>> poisoned[flip] = 1 - poisoned[flip]
>>> screen_feedback(labels, sources, proba).held, screen_feedback(poisoned, sources, proba).held
(False, True)
>>> screen_feedback(poisoned, sources, proba).flagged
['c']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from driftloop.config import LoopSettings
from driftloop.models.labels import coerce_label
from driftloop.registry import Registry
from driftloop.store import VersionRecord
from driftloop.store.canonical import canonical_json

MIN_ROWS = 30  # a sender with fewer rows is reported, not tested


@dataclass(frozen=True)
class SenderScreen:
    """One sender's disagreement with the champion, beside what calibration expects."""

    source: str
    rows: int
    disagreements: int
    expected: float  # disagreements at the other senders' rate
    excess_low: float  # lower confidence bound of disagreements beyond that
    share_low: float  # excess_low over all rows of the window
    p_value: float
    flagged: bool
    beyond_calibration: bool = False  # more than the calibrated upper bound (reported only)
    cleanlab_issue_share: float | None = None


@dataclass
class FeedbackScreen:
    """What :func:`screen_feedback` found, and whether the retrain is held."""

    rows: int
    senders: list[SenderScreen] = field(default_factory=list)
    drift_ratio: float = 1.0  # observed / expected disagreement of all rows
    confidence: float = 0.99
    max_share: float = 0.0025
    note: str = ""

    @property
    def flagged(self) -> list[str]:
        return [s.source for s in self.senders if s.flagged]

    @property
    def held(self) -> bool:
        return bool(self.flagged)

    def message(self) -> str:
        """One sentence for the loop's story, the alert and the audit entry."""
        if not self.held:
            return (f"feedback screened: {len(self.senders)} sender(s), none disagrees with the "
                    f"champion beyond its calibration and the others. {self.note}").strip()
        worst = max((s for s in self.senders if s.flagged), key=lambda s: s.share_low)
        return (f"retrain held: sender {worst.source} disagrees with the champion on "
                f"{worst.disagreements} of {worst.rows} rows where about {worst.expected:.0f} "
                f"were expected; at least {100 * worst.share_low:.2f}% of the window's "
                f"{self.rows} rows look mislabelled by it (bound "
                f"{100 * self.max_share:.2f}%, {self.confidence:.0%} confidence)")

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "held": self.held, "flagged": self.flagged,
                "drift_ratio": self.drift_ratio, "confidence": self.confidence,
                "max_share": self.max_share, "note": self.note,
                "senders": [asdict(s) for s in self.senders]}


def screen_feedback(
    labels: Sequence[int] | np.ndarray, sources: Sequence[str | None] | np.ndarray,
    proba: np.ndarray, *, confidence: float = 0.99, max_share: float = 0.0025,
    min_rows: int = MIN_ROWS,
) -> FeedbackScreen:
    """Test every sender of ``labels`` (class indices into ``proba``'s columns) against the
    champion's calibrated ``proba`` and the other senders (see the module docstring)."""
    y = np.asarray(labels, dtype=np.int64)
    who = np.array(["unknown" if s is None else str(s) for s in sources], dtype=object)
    p = np.asarray(proba, dtype=np.float64)
    q = 1.0 - p.max(axis=1)
    wrong = (p.argmax(axis=1) != y).astype(np.float64)
    screen = FeedbackScreen(rows=len(y), confidence=confidence, max_share=max_share)
    if len(y) == 0:
        screen.note = "no labelled rows."
        return screen
    screen.drift_ratio = float(wrong.sum() / max(q.sum(), 1e-9))
    names = sorted(set(who))
    tested = [s for s in names if (who == s).sum() >= min_rows]
    if len(tested) < 2:
        screen.note = ("one sender only: poisoning by one source cannot be told apart from "
                       "drift, so nothing is held on this test.")
    issues = _cleanlab_issues(y, p)
    z = norm.ppf(1 - (1 - confidence) / max(len(tested), 1))
    for source in names:
        mine = who == source
        screen.senders.append(_sender(source, mine, wrong, q, issues, z, len(y), max_share,
                                      testable=source in tested and len(tested) >= 2))
    return screen


def _sender(source: str, mine: np.ndarray, wrong: np.ndarray, q: np.ndarray,
            issues: np.ndarray | None, z: float, total: int, max_share: float, *,
            testable: bool) -> SenderScreen:
    n, rest = int(mine.sum()), ~mine
    observed = float(wrong[mine].sum())
    # against the other senders: the rows are dealt to senders at random, so under "no
    # poisoning" each sender disagrees at the others' rate, drift or not (two proportions)
    n_rest = int(rest.sum())
    rate_rest = wrong[rest].mean() if n_rest else 0.0
    pooled = wrong.mean()
    expected = n * rate_rest
    sd = math.sqrt(max(pooled * (1 - pooled) * n * (1 + n / max(n_rest, 1)), 1e-9))
    excess_low = observed - expected - z * sd
    # against calibration: more disagreement than the champion's own probabilities expect
    calibrated = q[mine].sum() + z * math.sqrt(max((q[mine] * (1 - q[mine])).sum(), 1e-9))
    return SenderScreen(
        source=source, rows=n, disagreements=int(observed), expected=float(expected),
        excess_low=float(excess_low), share_low=float(excess_low / total),
        p_value=float(norm.sf((observed - expected) / sd)),
        flagged=bool(testable and excess_low / total > max_share),
        beyond_calibration=bool(observed > calibrated),
        cleanlab_issue_share=None if issues is None else float(issues[mine].mean()))


def _cleanlab_issues(y: np.ndarray, p: np.ndarray) -> np.ndarray | None:
    """cleanlab's label issues on the champion's probabilities (None when it cannot run:
    a class with no row, or fewer rows than classes)."""
    try:
        from cleanlab.filter import find_label_issues

        if len(np.unique(y)) < p.shape[1] or len(y) < 2 * p.shape[1]:
            return None
        return np.asarray(find_label_issues(labels=y, pred_probs=p, n_jobs=1), dtype=bool)
    except (ImportError, ValueError):
        return None


def screen_window(registry: Registry, model: str, champion: VersionRecord,
                  loop: LoopSettings) -> FeedbackScreen | None:
    """Screen the labelled rows the champion answered, of the loop's window (the newest
    ``loop.window_rows``), with its calibrated probabilities; None for a regression model
    (no classes to disagree on) or a window without such labels.

    Only the champion's own rows: senders are compared over the same period, since labels
    from before a drift disagree with a champion trained after it whoever sent them."""
    if champion.task == "regression":
        return None
    rows = [r for r in registry.store.labelled_rows(model)[-loop.window_rows:]
            if r.version == champion.version]
    loaded = registry.load(model, champion.version)
    classes = list(loaded.bundle.classes)
    index = {canonical_json(c): i for i, c in enumerate(classes)}
    kept = [(r, index.get(canonical_json(_as_class(r.label, classes))))
            for r in rows]
    kept = [(r, i) for r, i in kept if i is not None]
    if not kept:
        return None
    features = pd.DataFrame.from_records([r.features for r, _ in kept])
    proba = loaded.predict_raw(features)
    return screen_feedback([i for _, i in kept], [r.source for r, _ in kept], proba,
                           confidence=loop.screen_confidence, max_share=loop.max_suspect_share)


def _as_class(label: Any, classes: list[Any]) -> Any:
    try:
        return coerce_label(label, classes)
    except OverflowError:
        return None


__all__ = ["FeedbackScreen", "SenderScreen", "screen_feedback", "screen_window"]
