import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftloop.train.loader import ShardedLoader, eval_shard


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 300),
    world=st.integers(1, 5),
    batch=st.integers(1, 40),
    epoch=st.integers(0, 3),
)
def test_every_row_once_per_epoch_and_equal_steps(rows, world, batch, epoch):
    y = np.arange(rows)
    loaders = [ShardedLoader([y], r, world, batch, seed=7) for r in range(world)]
    steps = {ld.steps_per_epoch for ld in loaders}
    assert len(steps) == 1, "every rank must run the same number of steps"
    seen = []
    for ld in loaders:
        batches = list(ld.epoch(epoch))
        assert len(batches) == ld.steps_per_epoch
        assert all(len(b[0]) <= batch for b in batches)
        seen += [int(v) for (b,) in batches for v in b]
    assert sorted(seen) == list(range(rows))


def test_permutation_is_seeded_per_epoch():
    y = np.arange(100)
    a = ShardedLoader([y], 0, 2, 10, seed=1)
    b = ShardedLoader([y], 0, 2, 10, seed=1)
    assert np.array_equal(a.shard(3), b.shard(3))
    assert not np.array_equal(a.shard(3), a.shard(4))
    assert not np.array_equal(a.shard(3), ShardedLoader([y], 0, 2, 10, seed=2).shard(3))


def test_batches_are_row_aligned_across_arrays():
    x = np.arange(50, dtype=np.float32).reshape(25, 2)
    y = np.arange(25)
    for xb, yb in ShardedLoader([x, y], 1, 2, 4, seed=0).epoch(0):
        assert np.array_equal(xb.numpy()[:, 0], yb.numpy() * 2)


def test_resume_mid_epoch_yields_the_rest():
    y = np.arange(40)
    ld = ShardedLoader([y], 0, 1, 8, seed=0)
    full = [b[0].tolist() for b in ld.epoch(2)]
    assert [b[0].tolist() for b in ld.epoch(2, start_step=3)] == full[3:]


def test_mismatched_rows_rejected():
    with pytest.raises(ValueError, match="same number of rows"):
        ShardedLoader([np.zeros(3), np.zeros(4)], 0, 1, 2, seed=0)


@pytest.mark.parametrize("rows,world", [(0, 2), (1, 3), (10, 3), (11, 4)])
def test_eval_shards_cover_rows_once(rows, world):
    covered = [i for r in range(world) for i in range(rows)[eval_shard(rows, r, world)]]
    assert covered == list(range(rows))
