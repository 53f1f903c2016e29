"""The backdoor screen's maths on synthetic representations: a planted cluster is found, clean
Gaussian classes, natural subgroups and mislabelled rows without a shared trigger are not."""

from __future__ import annotations

import numpy as np
import pytest

from driftloop.data.poisoning import (
    activation_clusters,
    reclassified_share,
    screen_backdoor,
    shared_values,
    spectral_scores,
)


def clean(seed: int, n: int = 600, classes: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels and a model-like representation (a random map of the features)."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, 6))
    labels = np.digitize(features[:, 0] + 0.3 * rng.normal(size=n),
                         np.quantile(features[:, 0], np.linspace(0, 1, classes + 1)[1:-1]))
    hidden = np.tanh(features @ rng.normal(size=(6, 24))) + 0.1 * rng.normal(size=(n, 24))
    return hidden, labels, features


def plant(hidden, labels, features, count: int, seed: int) -> np.ndarray:
    """Relabel ``count`` rows of class 1 to class 0, give them a trigger and shift their
    representation the way a model that learnt the trigger does."""
    rng = np.random.default_rng(seed + 100)
    rows = rng.choice(np.flatnonzero(labels == 1), count, replace=False)
    labels[rows] = 0
    features[rows, 4] = features[rows, 5] = 8.0
    hidden[rows] += rng.normal(3.0, 0.3, size=hidden.shape[1])
    return rows


@pytest.mark.parametrize("seed", range(2))
def test_a_planted_cluster_is_found(seed):
    hidden, labels, features = clean(seed)
    rows = plant(hidden, labels, features, 18, seed)  # 3% of the rows
    screen = screen_backdoor(hidden, labels, features, seed=seed)
    assert screen.flagged_classes == [0]
    assert set(screen.rows.tolist()) == set(rows.tolist())
    assert screen.share == pytest.approx(18 / 600)
    record = screen.classes[0]
    assert record.flagged and record.reclassified_share > 0.8 and record.trigger_features == [4, 5]
    assert screen.to_json()["count"] == 18


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("classes", [2, 4])
def test_clean_gaussian_classes_are_not_flagged(seed, classes):
    hidden, labels, features = clean(seed, classes=classes)
    screen = screen_backdoor(hidden, labels, features, seed=seed)
    assert screen.count == 0 and screen.flagged_classes == []
    assert len(screen.classes) == classes


def test_a_natural_subgroup_with_its_own_value_keeps_its_label():
    hidden, labels, features = clean(0)
    group = np.flatnonzero(labels == 0)[:20]
    features[group, 4] = 8.0                  # a shared rare value ...
    hidden[group] += 3.0                      # ... and its own region in the model
    screen = screen_backdoor(hidden, labels, features, seed=0)
    assert screen.count == 0                  # but its label is the one its features say
    assert screen.classes[0].reclassified_share < 0.3


def test_mislabelled_rows_without_a_shared_value_are_left_to_the_label_check():
    hidden, labels, features = clean(1)
    rows = np.random.default_rng(1).choice(np.flatnonzero(labels == 1), 18, replace=False)
    labels[rows] = 0
    hidden[rows] += 3.0                       # memorised apart, but no trigger in the inputs
    screen = screen_backdoor(hidden, labels, features, seed=0)
    assert screen.count == 0
    assert screen.classes[0].candidates > 0 and screen.classes[0].reclassified_share is None


def test_the_parts():
    rng = np.random.default_rng(2)
    reps = rng.normal(size=(300, 8))
    reps[:15] += 6.0
    assert set(np.argsort(-spectral_scores(reps))[:15]) == set(range(15))
    clusters = activation_clusters(reps, 5, 3, seed=0)
    assert any(np.array_equal(mask, np.arange(300) < 15) for mask, _ in clusters)
    assert all(mask.sum() < 150 for mask, _ in clusters)
    x = rng.normal(size=(300, 3))
    y = (x[:, 0] > 0).astype(int)
    assert reclassified_share(x, y, np.flatnonzero(y == 1)[:20], seed=0) < 0.2
    x[:10, 2] = 5.0
    assert shared_values(x, np.arange(10)) == {2: 5.0}
    assert shared_values(x, np.arange(10), min_share=1.0, max_rest_share=0.0) == {2: 5.0}
    assert shared_values(x, np.arange(20)) == {}  # half the cluster only


def test_small_classes_are_skipped_and_degenerate_representations_pass():
    hidden, labels, features = clean(3)
    labels[:6] = 2                                       # a class of 6 rows
    screen = screen_backdoor(np.zeros_like(hidden), labels, features, seed=0)
    assert screen.count == 0
    assert [c.skipped for c in screen.classes] == ["", "", "too few rows"]
