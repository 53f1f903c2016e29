import pytest

from driftloop.train.scaling import scaled_lr, warmup_factor, warmup_steps_for


def test_linear_scaling_rule():
    assert scaled_lr(0.1, 512, 256) == pytest.approx(0.2)
    assert scaled_lr(0.1, 128, 256) == pytest.approx(0.05)


def test_warmup_reaches_full_rate_and_stays():
    factors = [warmup_factor(s, 10) for s in range(20)]
    assert factors[0] == pytest.approx(0.1)
    assert factors[9] == 1.0 and factors[-1] == 1.0
    assert factors == sorted(factors)
    assert warmup_factor(0, 0) == 1.0


def test_warmup_steps_from_fractional_epochs():
    assert warmup_steps_for(0.5, 7) == 4
    assert warmup_steps_for(0, 7) == 0


def test_bad_batch_rejected():
    with pytest.raises(ValueError, match="global_batch=0"):
        scaled_lr(0.1, 0, 256)
