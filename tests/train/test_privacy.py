"""DP-SGD's pieces: the plan (σ from ε, δ's default, refusals), the layer check, and that two
real gloo ranks add the noise once, with the standard deviation the accountant assumes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from torch import nn

from driftloop.config import DPSettings
from driftloop.errors import UsageError
from driftloop.models.architectures import build_model
from driftloop.train.privacy import check_model, default_delta, plan_dp

PLAN = dict(rows=400, world_size=2, batch_size=16, epochs=3)


def test_the_plan_spends_at_most_the_target_and_less_epsilon_needs_more_noise():
    from opacus.accountants import create_accountant

    plans = {eps: plan_dp(DPSettings(epsilon=eps, accountant="rdp"), **PLAN)
             for eps in (1.0, 3.0, 8.0)}
    sigmas = [plans[eps]["noise_multiplier"] for eps in (1.0, 3.0, 8.0)]
    assert sigmas == sorted(sigmas, reverse=True) and sigmas[-1] > 0
    for eps, plan in plans.items():
        assert plan["sample_rate"] == 32 / 400 and plan["planned_steps"] == 3 * 13
        accountant = create_accountant("rdp")
        accountant.history = [(plan["noise_multiplier"], plan["sample_rate"],
                               plan["planned_steps"])]
        with warnings.catch_warnings():  # the RDP accountant may warn about its orders
            warnings.simplefilter("ignore")
            spent = accountant.get_epsilon(delta=plan["delta"])
        assert eps - 0.02 <= spent <= eps


def test_delta_defaults_below_one_over_the_rows_and_a_loose_delta_is_refused():
    assert default_delta(400) == 1e-5 and default_delta(10**6) == 1e-7
    assert plan_dp(DPSettings(epsilon=3.0), **PLAN)["delta"] == 1e-5
    with pytest.raises(UsageError, match="not below 1 / training rows"):
        plan_dp(DPSettings(epsilon=3.0, delta=0.005), **PLAN)


@pytest.mark.parametrize("kwargs,match", [
    ({"accumulate": 4}, "--accumulate 4"),
    ({"precision": "bf16"}, "--precision bf16"),
])
def test_what_dp_sgd_does_not_support_is_refused(kwargs, match):
    with pytest.raises(UsageError, match=match):
        plan_dp(DPSettings(epsilon=3.0), **PLAN, **kwargs)


def test_the_layer_check_names_a_nested_batchnorm_and_accepts_the_built_in_models():
    check_model(build_model("mlp", {"n_numeric": 4, "cardinalities": [3, 5]}, 2,
                            allowed=["mlp"]))
    model = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)))
    with pytest.raises(UsageError, match=r"layer '1\.1' \(BatchNorm1d\).*GroupNorm"):
        check_model(model)


NOISE_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np, torch, torch.distributed as dist
    from driftloop.train.privacy import PrivateTraining

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    model = torch.nn.Linear(20000, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    plan = {"noise_multiplier": 2.0, "max_grad_norm": 1.0, "expected_batch_size": 50.0,
            "sample_rate": 0.1, "accountant": "rdp", "delta": 1e-5, "secure_mode": False}
    private = PrivateTraining(plan, model, torch.optim.SGD(model.parameters(), lr=1.0),
                              rank, world, seed=0)
    # an empty Poisson batch on every rank: the update is the noise alone
    out = private.net(torch.zeros(0, 20000))
    (out.sum() * 0.0).backward()
    private.optimizer.step()
    w = (-model.weight.detach()).numpy().ravel()
    json.dump({"std": float(w.std()), "head": w[:5].tolist()},
              open(f"{sys.argv[1]}/rank{rank}.json", "w"))
    dist.destroy_process_group()
""")


def test_two_ranks_add_the_noise_once_with_std_sigma_c_over_the_expected_batch(tmp_path):
    script = tmp_path / "noise.py"
    script.write_text(NOISE_SCRIPT)
    subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         str(script), str(tmp_path)], check=True, timeout=120, capture_output=True,
    )
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["head"] == ranks[1]["head"]  # one update, the same on both ranks
    # σ·C / expected global batch = 2 / 50; noise on both ranks would give √2 times that
    assert ranks[0]["std"] == pytest.approx(2.0 / 50.0, rel=0.03)
    assert not np.isclose(ranks[0]["std"], np.sqrt(2) * 2.0 / 50.0, rtol=0.1)


def test_the_registry_reads_the_key_training_writes():
    from driftloop.registry import dp
    from driftloop.train import privacy

    assert dp.DP_KEY == privacy.DP_KEY
