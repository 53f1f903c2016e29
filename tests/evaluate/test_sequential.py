"""The confidence sequence keeps its guarantee under peeking, narrows, refuses bad input."""

import numpy as np
import pytest

from driftloop.errors import UsageError
from driftloop.evaluate.sequential import MeanSequence


def _stream(rng, n, p):
    return rng.choice([-1.0, 0.0, 1.0], size=n, p=p)


def test_peeking_after_every_batch_misses_no_more_than_its_confidence_allows():
    rng = np.random.default_rng(1)
    p, truth, runs, misses = [0.05, 0.80, 0.15], 0.10, 200, 0
    for _ in range(runs):
        seq = MeanSequence.start(low=-1, high=1, confidence=0.9)
        for chunk in np.array_split(_stream(rng, 1500, p), 30):
            seq = seq.update(chunk)
            if not seq.low <= truth <= seq.high:
                misses += 1
                break
    assert misses / runs <= 0.10


def test_the_interval_narrows_and_separates_a_real_difference_from_zero():
    rng = np.random.default_rng(2)
    seq = MeanSequence.start(low=-1, high=1, confidence=0.95)
    widths = []
    for chunk in np.array_split(_stream(rng, 4000, [0.05, 0.80, 0.15]), 8):
        seq = seq.update(chunk)
        widths.append(seq.high - seq.low)
    assert widths == sorted(widths, reverse=True)
    assert seq.low > 0.0


def test_no_difference_stays_undecided():
    rng = np.random.default_rng(3)
    seq = MeanSequence.start(low=-1, high=1, confidence=0.95).update(
        _stream(rng, 3000, [0.1, 0.8, 0.1]))
    assert seq.low < 0.0 < seq.high


def test_one_update_equals_many_small_ones():
    rng = np.random.default_rng(4)
    x = _stream(rng, 500, [0.2, 0.6, 0.2])
    whole = MeanSequence.start(low=-1, high=1, confidence=0.9).update(x)
    parts = MeanSequence.start(low=-1, high=1, confidence=0.9)
    for chunk in np.array_split(x, 7):
        parts = parts.update(chunk)
    assert whole.rows == parts.rows == 500
    assert whole.low == pytest.approx(parts.low) and whole.high == pytest.approx(parts.high)
    assert MeanSequence.from_json(parts.to_json()) == parts


def test_values_outside_the_declared_range_are_refused_by_position():
    seq = MeanSequence.start(low=0, high=1, confidence=0.9)
    with pytest.raises(UsageError, match="observation 2 is 1.5"):
        seq.update([0.0, 1.0, 1.5])
    with pytest.raises(UsageError, match="low < high"):
        MeanSequence.start(low=1, high=1, confidence=0.9)
