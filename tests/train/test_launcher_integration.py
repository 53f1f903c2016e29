"""Real 1- and 2-rank gloo training runs through torch.distributed.run, on bundled datasets."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from sklearn.datasets import load_breast_cancer, load_digits

from driftloop.data.prepare import apply_preprocessing, prepare
from driftloop.errors import DataError, TrainingError
from driftloop.registry import Registry
from driftloop.train.launcher import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    return frame


@pytest.fixture(scope="module")
def two_rank_runs(cancer, tmp_path_factory):
    """Two identical 2-rank runs and one 1-rank run into one store."""
    from driftloop.config import Settings

    home = tmp_path_factory.mktemp("store")
    settings = Settings.load(overrides={"home": str(home)}, environ={}, cwd=home)
    common = dict(target="target", epochs=8, batch_size=32, seed=3, name="cancer",
                  settings=settings, progress=False)
    first = train(cancer, workers=2, **common)
    second = train(cancer, workers=2, **common)
    single = train(cancer, workers=1, **common)
    return settings, first, second, single


def test_two_ranks_learn_well_above_majority(two_rank_runs):
    _, first, _, _ = two_rank_runs
    assert first.world_size == 2
    assert first.metrics["majority_class_rate"] < 0.7
    assert first.metrics["accuracy"] >= 0.9
    assert first.metrics["roc_auc"] >= 0.95
    assert first.samples_per_s > 0 and first.duration_s > 0


def test_same_seed_same_world_size_gives_bitwise_identical_weights(two_rank_runs):
    _, first, second, _ = two_rank_runs
    assert first.weights_sha256 == second.weights_sha256
    a = load_file(f"{first.run_dir}/outputs/weights.safetensors")
    b = load_file(f"{second.run_dir}/outputs/weights.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["train_loss"] for h in first.history] == [h["train_loss"] for h in second.history]


def test_one_and_two_rank_runs_register_consecutive_versions(two_rank_runs):
    settings, first, second, single = two_rank_runs
    assert (first.version, second.version, single.version) == (1, 2, 3)
    assert single.world_size == 1
    registry = Registry.open(settings)
    versions = registry.versions("cancer")
    assert [v.version for v in versions] == [1, 2, 3]
    runs = [registry.store.get_run(v.run_id) for v in versions]
    assert [r.world_size for r in runs] == [2, 2, 1]
    assert all(r.status == "succeeded" and r.samples_per_s > 0 for r in runs)
    assert runs[0].package_versions["torch"] == torch.__version__
    epochs = registry.store.run_metrics(first.run_id)
    assert [e["epoch"] for e in epochs] == list(range(first.epochs_run))
    assert {"train_loss", "val_loss", "val_accuracy"} <= set(epochs[0])
    datasets = registry.store.run_datasets(first.run_id)
    assert set(datasets) == {"source", "train", "val", "test"}
    assert datasets["train"].fingerprint == first.fingerprints["train"]
    assert sum(datasets[r].rows for r in ("train", "val", "test")) == 569
    entries = registry.audit.entries()
    assert [e.action for e in entries if e.action == "register"] == ["register"] * 3
    assert [e.action for e in entries].count("run_finished") == 3
    assert registry.audit.verify().ok


def test_registered_model_applies_training_preprocessing_at_load(cancer, two_rank_runs):
    settings, first, _, _ = two_rank_runs
    loaded = Registry.open(settings).load("cancer", first.version)
    prepared = prepare(cancer, "target", seed=3)
    test = prepared.splits["test"]
    raw_rows = cancer.iloc[test.rows].drop(columns="target")
    x, x_cat = apply_preprocessing(loaded.bundle.preprocessor, raw_rows)
    assert np.array_equal(x, test.x) and np.array_equal(x_cat, test.x_cat)
    labels = loaded.predict(raw_rows)
    accuracy = float(np.mean(labels == cancer["target"].iloc[test.rows].to_numpy()))
    assert accuracy == pytest.approx(first.metrics["accuracy"])


def test_images_train_a_cnn_on_two_ranks(tmp_path, dl_settings):
    digits = load_digits()
    path = tmp_path / "digits.npz"
    np.savez(path, X=digits.images.astype(np.float32), y=digits.target)
    result = train(path, workers=2, epochs=6, batch_size=32, settings=dl_settings,
                   progress=False)
    assert result.task == "multiclass"
    bundle = Registry.open(dl_settings).bundle(Registry.open(dl_settings).get("digits"))
    assert bundle.model == "cnn" and bundle.model_inputs["shape"] == [1, 8, 8]
    assert result.metrics["accuracy"] > 3 * result.metrics["majority_class_rate"]


def test_sequences_train_a_gru(tmp_path, dl_settings):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 12, 3)).astype(np.float32)
    y = (x[:, :, 0].sum(axis=1) > 0).astype(np.int64)
    path = tmp_path / "seq.npz"
    np.savez(path, X=x, y=y, kind=np.array("sequence"))
    result = train(path, workers=1, epochs=6, batch_size=32, settings=dl_settings,
                   progress=False)
    assert Registry.open(dl_settings).bundle(Registry.open(dl_settings).get("seq")).model == "gru"
    assert result.metrics["accuracy"] >= 0.75


def test_regression_reports_metrics_on_the_original_scale(dl_settings):
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=800), "b": rng.normal(size=800)})
    frame["price"] = 1000 + 300 * frame["a"] - 200 * frame["b"] + rng.normal(0, 10, 800)
    result = train(frame, "price", workers=2, epochs=15, batch_size=32, name="price",
                   settings=dl_settings, progress=False)
    assert result.task == "regression"
    assert result.metrics["r2"] > 0.8
    assert 5 < result.metrics["rmse"] < 200  # on the price scale, not the standardised one


def test_user_model_factory_is_imported_by_the_workers(tmp_path, dl_settings, monkeypatch,
                                                       cancer):
    module = tmp_path / "my_factories.py"
    module.write_text(textwrap.dedent("""
        import torch
        def linear(inputs, n_outputs):
            return Wrapped(torch.nn.Linear(inputs["n_numeric"], n_outputs))
        class Wrapped(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner
            def forward(self, x, x_cat=None):
                return self.inner(x)
        def broken(inputs, n_outputs):
            raise RuntimeError("factory exploded on purpose")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    import my_factories

    result = train(cancer, "target", model=my_factories.linear, workers=2, epochs=3,
                   batch_size=32, settings=dl_settings, progress=False)
    registry = Registry.open(dl_settings)
    assert registry.bundle(registry.get("model")).model == "my_factories:linear"
    assert result.metrics["accuracy"] > 0.8
    # trusted for this run (its operator named it), refused elsewhere until allowed
    assert any("'my_factories' is" in w and "security.model_factories" in w
               for w in result.warnings), result.warnings

    with pytest.raises(TrainingError, match="factory exploded on purpose") as info:
        train(cancer, "target", model="my_factories:broken", workers=2, epochs=1,
              batch_size=32, settings=dl_settings, progress=False)
    assert "rank 0" in str(info.value) and "workers.log" in str(info.value)
    failed = [r for r in _runs(registry) if r.status == "failed"]
    assert len(failed) == 1 and "factory exploded" in failed[0].error
    assert [v.version for v in registry.versions("model")] == [1]


def _runs(registry):
    from sqlalchemy import select

    from driftloop.store.tables import Run

    with registry.store.session(write=False) as session:
        ids = session.scalars(select(Run.id)).all()
    return [registry.store.get_run(i) for i in ids]


def test_too_few_rows_for_workers_times_batch_is_refused_before_anything_is_stored(
    dl_settings, cancer
):
    with pytest.raises(DataError, match=r"2 × 256 = 512"):
        train(cancer, "target", workers=2, batch_size=256, settings=dl_settings,
              progress=False)
    assert _runs(Registry.open(dl_settings)) == []


def test_history_records_every_epoch(two_rank_runs):
    _, first, _, _ = two_rank_runs
    history = json.loads(Path(first.run_dir, "outputs", "history.json").read_text())
    assert len(history) == first.epochs_run == 8
    assert history[-1]["val_loss"] < history[0]["val_loss"]


def test_bf16_autocast_trains_on_cpu(cancer, dl_settings):
    result = train(cancer, "target", workers=1, epochs=4, batch_size=32, precision="bf16",
                   settings=dl_settings, progress=False)
    assert result.metrics["accuracy"] > 0.85
    result_json = json.loads(Path(result.run_dir, "outputs", "result.json").read_text())
    assert result_json["precision"] == "bf16"


def test_fp16_without_a_gpu_is_refused_up_front(cancer, dl_settings):
    from driftloop.errors import UsageError

    with pytest.raises(UsageError, match="fp16 needs a GPU"):
        train(cancer, "target", precision="fp16", settings=dl_settings, progress=False)
    assert _runs(Registry.open(dl_settings)) == []
