"""Backdoor screening: per class, a small, separate cluster of a model's hidden representations
whose rows belong, by their other features, to another class.

A backdoor is planted by giving a few rows a trigger (say, an out-of-range value on two
features) and the attacker's label; a model trained on them learns "trigger → that label".
Inside the model the poisoned rows of the target class are represented apart from the class's
clean rows, because the model reaches the label by another route. Two detectors look at the
representations of the layer before the output, one class at a time:

- **activation clustering** (Chen et al. 2018): the class's centred representations reduced by
  ICA to ``dims`` components, split by k-means (k = 2 .. ``max_k``); every cluster but the
  largest of each split is a candidate when it holds at most ``max_cluster_share`` of the class
  and at least ``min_cluster_rows`` rows, and its rows' mean silhouette reaches
  ``min_silhouette``;
- **spectral signatures** (Tran, Li and Madry 2018): the class's centred representations' top
  singular vector; a row's score is its squared projection on it.

How they combine (the rule; measured in ``benchmarks/bench_backdoor.py``): a clean class is
multimodal too (the tail of a skewed feature, a subtype, the rows near the other class), so a
small separate cluster alone is no finding. A candidate is flagged when both hold:

1. **a shared trigger**: on some feature, at least ``trigger_share`` of the cluster holds one
   value that at most ``trigger_rest_share`` of the other classes' rows hold
   (:func:`shared_values`). Planted rows share the attacker's exact values; natural rows share
   ranges. The class's rows carrying the whole trigger (in the cluster or not: the planted rows
   of several source classes fall in several clusters) are the suspects;
2. **exclusionary reclassification** (Chen et al.'s own test): a quick gradient-boosted model
   trained on the *input features* of every row but the suspects puts at least
   ``min_reclassified`` of them in another class than their label. A natural subgroup with a
   value of its own keeps its label; planted rows came from other classes.

The flagged rows are the suspects, most suspicious first by spectral score. The spectral
signature ranks, it does not decide: on tabular MLPs the class's top singular direction is often
its natural spread (measured: 0 % of a planted cluster among the top spectral scores on breast
cancer, 100 % on make_classification), so a threshold on it alone flags clean rows; its overlap
with the flagged rows is reported (``spectral_overlap``). What this does not find: a trigger
without a shared value (a blend, a pattern spread over many features) — the candidate clusters
are still reported per class.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> features = rng.normal(size=(600, 4))
>>> labels = (features[:, 0] > 0).astype(int)
>>> reps = np.column_stack([features, rng.normal(size=(600, 4))]) @ rng.normal(size=(8, 16))
>>> clean = screen_backdoor(reps, labels, features, seed=0)
>>> clean.count, clean.flagged_classes
(0, [])
>>> poisoned = rng.choice(np.flatnonzero(labels == 1), 18, replace=False)
>>> labels[poisoned] = 0                       # relabelled to class 0,
>>> features[poisoned, 3] = 9.0                # given a trigger value,
>>> reps[poisoned] += 6.0                      # and represented apart by the model
>>> found = screen_backdoor(reps, labels, features, seed=0)
>>> found.flagged_classes, found.count, len(set(found.rows.tolist()) & set(poisoned.tolist()))
([0], 18, 18)

References
----------
Chen, B. et al. (2018). Detecting Backdoor Attacks on Deep Neural Networks by Activation
Clustering. arXiv:1811.03728.
Tran, B., Li, J. and Madry, A. (2018). Spectral Signatures in Backdoor Attacks. NeurIPS.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from driftloop.config import CheckSettings

_DEFAULTS = CheckSettings()
# the label-error check's quick model: the reclassification needs a fair guess, not the best one
_MODEL_PARAMS = {"max_iter": 30, "learning_rate": 0.3, "max_leaf_nodes": 15, "max_bins": 63,
                 "early_stopping": False}


@dataclass(frozen=True)
class ClassScreen:
    """What the screen saw in one class (``label`` is the class code)."""

    label: int
    rows: int
    cluster_rows: int = 0
    cluster_share: float = 0.0
    silhouette: float = 0.0
    reclassified_share: float | None = None  # None: no candidate had a shared trigger
    trigger_features: list[int] = field(default_factory=list)  # feature indices (columns)
    spectral_overlap: float = 0.0
    flagged: bool = False
    candidates: int = 0
    skipped: str = ""  # why the class was not screened (too few rows, …)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BackdoorScreen:
    """The rows of all flagged classes, most suspicious first, and every class's numbers."""

    rows: np.ndarray  # positions in the screened arrays
    classes: list[ClassScreen]
    n_rows: int

    @property
    def count(self) -> int:
        return len(self.rows)

    @property
    def share(self) -> float:
        return self.count / self.n_rows if self.n_rows else 0.0

    @property
    def flagged_classes(self) -> list[int]:
        return [c.label for c in self.classes if c.flagged]

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "share": self.share, "rows_screened": self.n_rows,
                "flagged_classes": self.flagged_classes,
                "classes": [c.to_json() for c in self.classes]}


def spectral_scores(reps: np.ndarray) -> np.ndarray:
    """Tran et al.'s outlier score: squared projection of each centred row on the top singular
    vector of the centred matrix.

    >>> import numpy as np
    >>> reps = np.array([[0.0, 0.0], [0.1, 0.0], [-0.1, 0.0], [3.0, 0.1]])
    >>> int(np.argmax(spectral_scores(reps)))
    3
    """
    centred = reps - reps.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return np.asarray((centred @ vt[0]) ** 2)


def activation_clusters(reps: np.ndarray, dims: int, max_k: int,
                        seed: int) -> list[tuple[np.ndarray, float]]:
    """Chen et al.'s split, widened: ICA to ``dims`` components, then k-means for k = 2 ..
    ``max_k``; every cluster of every split but the largest, as (mask, mean silhouette of its
    rows), distinct masks only.

    Chen et al. split in two; a class with natural subgroups then splits along them and the
    backdoor hides in one side, so the smaller clusters of finer splits are candidates too.

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> reps = rng.normal(size=(200, 6))
    >>> reps[:10] += 8
    >>> small, silhouette = activation_clusters(reps, 4, 2, seed=0)[0]
    >>> int(small.sum()), bool(small[:10].all()), silhouette > 0.3
    (10, True, True)
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import FastICA
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import silhouette_samples

    centred = reps - reps.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    # dead ReLU units and collinear ones make the matrix rank-deficient; ICA whitening divides
    # by the singular values, so keep only directions that carry spread
    rank = int((singular > 1e-6 * max(float(singular[0]), 1e-12)).sum()) if len(singular) else 0
    d = min(dims, rank, len(reps) - 1)
    if d < 1:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a rough unmixing suffices here
        reduced = FastICA(d, whiten="unit-variance", random_state=seed,
                          max_iter=400).fit_transform(centred)
    found: list[tuple[np.ndarray, float]] = []
    for k in range(2, min(max_k, len(reps) - 1) + 1):
        labels = KMeans(k, n_init=10, random_state=seed).fit_predict(reduced)
        sizes = np.bincount(labels, minlength=k)
        if (sizes > 0).sum() < 2:
            continue
        widths = silhouette_samples(reduced, labels)
        for cluster in np.argsort(sizes)[:-1]:
            mask = labels == cluster
            if mask.any() and not any(np.array_equal(mask, m) for m, _ in found):
                found.append((mask, float(widths[mask].mean())))
    return found


def reclassified_share(features: np.ndarray, labels: np.ndarray, cluster: np.ndarray,
                       seed: int) -> float:
    """Share of the ``cluster`` rows that a model trained on all other rows puts in another
    class than their label (Chen et al.'s exclusionary reclassification).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(300, 3)); y = (x[:, 0] > 0).astype(int)
    >>> cluster = np.flatnonzero(y == 1)[:15]
    >>> reclassified_share(x, y, cluster, seed=0) < 0.2        # their own label: a subgroup
    True
    >>> y[cluster] = 0
    >>> reclassified_share(x, y, cluster, seed=0) > 0.8        # another class's rows
    True
    """
    rest = np.ones(len(labels), dtype=bool)
    rest[cluster] = False
    if len(np.unique(labels[rest])) < 2:
        return 0.0
    predicted = _fit_predict(features[rest], labels[rest], features[cluster], seed)
    return float(np.mean(predicted != labels[cluster]))


def shared_values(features: np.ndarray, cluster: np.ndarray, *,
                  min_share: float = _DEFAULTS.backdoor_trigger_share,
                  max_rest_share: float = _DEFAULTS.backdoor_trigger_rest_share,
                  rest: np.ndarray | None = None) -> dict[int, float]:
    """The features on which at least ``min_share`` of the ``cluster`` rows hold one value that
    at most ``max_rest_share`` of the ``rest`` rows (default: all others) hold:
    ``{feature index: value}``. The screen compares with the *other classes'* rows: planted
    rows outside the cluster carry the trigger too.

    A planted trigger is a value pattern the planted rows share and clean rows rarely have; a
    cluster of natural rows shares ranges, not exact values.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(300, 4))
    >>> x[:12, 1] = 7.5
    >>> shared_values(x, np.arange(12)), shared_values(x, np.arange(12, 24))
    ({1: 7.5}, {})
    """
    if rest is None:
        outside = np.ones(len(features), dtype=bool)
        outside[cluster] = False
        rest = np.flatnonzero(outside)
    found = {}
    for j in range(features.shape[1]):
        values, counts = np.unique(features[cluster, j], return_counts=True)
        top = int(np.argmax(counts))
        value = values[top]
        if counts[top] >= min_share * len(cluster) and np.isfinite(value) \
                and np.mean(features[rest, j] == value) <= max_rest_share:
            found[j] = float(value)
    return found


def _fit_predict(x: np.ndarray, y: np.ndarray, new: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    model = HistGradientBoostingClassifier(random_state=seed, **_MODEL_PARAMS)
    # one OpenMP thread, as in the label-error check: spinning threads on a busy machine
    with threadpool_limits(limits=1, user_api="openmp"):
        return np.asarray(model.fit(x, y).predict(new))


def screen_backdoor(
    reps: np.ndarray,
    labels: np.ndarray,
    features: np.ndarray,
    *,
    dims: int = _DEFAULTS.backdoor_dims,
    max_k: int = _DEFAULTS.backdoor_max_k,
    max_cluster_share: float = _DEFAULTS.backdoor_max_cluster_share,
    min_cluster_rows: int = _DEFAULTS.backdoor_min_cluster_rows,
    min_silhouette: float = _DEFAULTS.backdoor_min_silhouette,
    min_reclassified: float = _DEFAULTS.backdoor_min_reclassified,
    trigger_share: float = _DEFAULTS.backdoor_trigger_share,
    trigger_rest_share: float = _DEFAULTS.backdoor_trigger_rest_share,
    seed: int = _DEFAULTS.seed,
) -> BackdoorScreen:
    """Screen every class of ``labels`` for a backdoor cluster (see the module docstring).

    Parameters
    ----------
    reps
        N×H representations of the rows (the layer before a trained model's output).
    labels
        N integer class codes (the labels the model was trained on).
    features
        N×F input features of the same rows, for the reclassification and peer tests.
    dims, max_k, max_cluster_share, min_cluster_rows, min_silhouette
        ICA components, the finest k-means split, the largest class share and the fewest rows
        of a candidate cluster, and the smallest mean silhouette of its rows.
    min_reclassified
        The share of a candidate a model trained without it must put in another class.
    trigger_share, trigger_rest_share, seed
        A trigger feature: one value held by at least ``trigger_share`` of the cluster and at
        most ``trigger_rest_share`` of the other rows (:func:`shared_values`); the seed.
    """
    reps, labels = np.asarray(reps, dtype=np.float64), np.asarray(labels)
    features = np.asarray(features, dtype=np.float64)
    found: list[np.ndarray] = []
    classes = []
    for code in np.unique(labels):
        members = np.flatnonzero(labels == code)
        if len(members) < 2 * min_cluster_rows or len(members) <= dims:
            classes.append(ClassScreen(int(code), len(members), skipped="too few rows"))
            continue
        scores = spectral_scores(reps[members])
        tests = []
        for mask, silhouette in activation_clusters(reps[members], dims, max_k, seed):
            share = float(mask.mean())
            if mask.sum() < min_cluster_rows or share > max_cluster_share \
                    or silhouette < min_silhouette:
                continue
            others = np.flatnonzero(labels != code)
            trigger = shared_values(features, members[mask], min_share=trigger_share,
                                    max_rest_share=trigger_rest_share, rest=others)
            moved = None
            if trigger:  # the class's rows that carry the whole trigger, in the cluster or not
                mask = np.logical_and.reduce([features[members, j] == v
                                              for j, v in trigger.items()])
                # all carriers left out: carriers outside the cluster would teach the trigger
                moved = reclassified_share(features, labels, members[mask], seed)
            flagged = moved is not None and moved >= min_reclassified
            tests.append((flagged, moved, trigger if flagged else {}, silhouette, mask))
        classes.append(_class_screen(int(code), members, scores, tests))
        for flagged, *_, mask in tests:
            if flagged:
                cluster = np.flatnonzero(mask)
                found.append(members[cluster[np.argsort(-scores[cluster], kind="stable")]])
    rows = _first_seen(found)
    return BackdoorScreen(rows.astype(np.int64), classes, len(labels))


def _first_seen(parts: list[np.ndarray]) -> np.ndarray:
    """Concatenate, keeping each row once where it first appears (the order is the ranking)."""
    if not parts:
        return np.zeros(0, dtype=np.int64)
    joined = np.concatenate(parts)
    _, first = np.unique(joined, return_index=True)
    return joined[np.sort(first)]


def _class_screen(code: int, members: np.ndarray, scores: np.ndarray,
                  tests: list[tuple[bool, float | None, dict[int, float], float, np.ndarray]],
                  ) -> ClassScreen:
    """The class's record: its flagged clusters together, else its most suspicious candidate."""
    if not tests:
        return ClassScreen(code, len(members))
    hits = [t for t in tests if t[0]]
    if hits:
        mask = np.logical_or.reduce([t[4] for t in hits])
        moved = min(t[1] or 0.0 for t in hits)
        silhouette = min(t[3] for t in hits)
        trigger = sorted({j for t in hits for j in t[2]})
    else:
        _, moved, _, silhouette, mask = max(tests, key=lambda t: -1.0 if t[1] is None else t[1])
        trigger = []
    top = np.argsort(-scores, kind="stable")[: int(mask.sum())]
    return ClassScreen(code, len(members), int(mask.sum()), float(mask.mean()), silhouette,
                       moved, trigger, float(mask[top].mean()), bool(hits), len(tests))


__all__ = ["BackdoorScreen", "ClassScreen", "activation_clusters", "reclassified_share",
           "screen_backdoor", "shared_values", "spectral_scores"]
