import json

import numpy as np
import pytest
import torch

from driftloop.train.checkpoint import latest_checkpoint, write_checkpoint


def _trained(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 10))
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 4)).pow(2).mean().backward()
        opt.step()
        sched.step()
    return model, opt, sched


def _save(root, step, model, opt, sched, keep=2):
    write_checkpoint(root, step, 0, 1, model=model, optimizer=opt, scheduler=sched,
                     loop={"epoch": 0, "step": step}, keep=keep)


def test_round_trip_restores_everything_exactly(tmp_path):
    model, opt, sched = _trained()
    np.random.seed(5)
    _save(tmp_path, 3, model, opt, sched)
    expected_torch, expected_np = torch.rand(3), np.random.rand(3)

    fresh, fresh_opt, fresh_sched = _trained(seed=1)
    torch.manual_seed(99)
    np.random.seed(99)
    ckpt = latest_checkpoint(tmp_path)
    fresh.load_state_dict(ckpt.model_state())
    fresh_opt.load_state_dict(ckpt.optimizer_state())
    fresh_sched.load_state_dict(ckpt.scheduler_state())
    assert ckpt.restore_rng(0)
    assert torch.equal(torch.rand(3), expected_torch)
    assert np.array_equal(np.random.rand(3), expected_np)
    for a, b in zip(model.parameters(), fresh.parameters(), strict=True):
        assert torch.equal(a, b)
    # the next optimiser step is identical too
    x = torch.randn(5, 4)
    for m, o, s in ((model, opt, sched), (fresh, fresh_opt, fresh_sched)):
        o.zero_grad()
        m(x).pow(2).mean().backward()
        o.step()
        s.step()
    for a, b in zip(model.parameters(), fresh.parameters(), strict=True):
        assert torch.equal(a, b)
    assert sched.get_last_lr() == fresh_sched.get_last_lr()


def test_keeps_the_last_two(tmp_path):
    model, opt, sched = _trained()
    for step in (1, 2, 3, 4):
        _save(tmp_path, step, model, opt, sched)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000003", "step-00000004"]


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete_manifest", "delete_file"])
def test_torn_or_corrupt_newest_falls_back_to_previous(tmp_path, damage):
    model, opt, sched = _trained()
    _save(tmp_path, 5, model, opt, sched)
    _save(tmp_path, 9, model, opt, sched)
    newest = tmp_path / "step-00000009"
    weights = newest / "model.safetensors"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:50])
    elif damage == "flip":
        data = bytearray(weights.read_bytes())
        data[-1] ^= 0xFF
        weights.write_bytes(bytes(data))
    elif damage == "delete_manifest":
        (newest / "manifest.json").unlink()
    else:
        (newest / "optimizer.safetensors").unlink()
    assert latest_checkpoint(tmp_path).step == 5


def test_unfinished_write_is_never_loaded(tmp_path):
    model, opt, sched = _trained()
    _save(tmp_path, 5, model, opt, sched)
    half = tmp_path / "step-00000009.tmp"
    half.mkdir()
    (half / "model.safetensors").write_bytes(b"partial")
    assert latest_checkpoint(tmp_path).step == 5
    assert latest_checkpoint(tmp_path / "nothing-here") is None


def test_no_pickle_anywhere(tmp_path):
    model, opt, sched = _trained()
    _save(tmp_path, 1, model, opt, sched)
    folder = tmp_path / "step-00000001"
    suffixes = {p.suffix for p in folder.iterdir()}
    assert suffixes == {".safetensors", ".json"}
    manifest = json.loads((folder / "manifest.json").read_text())
    assert set(manifest["files"]) == {p.name for p in folder.iterdir()} - {"manifest.json"}
