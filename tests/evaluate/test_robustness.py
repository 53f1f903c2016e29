"""The robustness section: accuracy under random noise, FGSM and PGD within an L-infinity ball
of the standardised numeric features; its gate, its card line and its CLI."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save

import driftloop as dl
from driftloop.cli import main
from driftloop.config import Settings
from driftloop.data import prepare
from driftloop.errors import ConfigError, UsageError
from driftloop.evaluate.report import EvaluationReport, evaluate_model
from driftloop.evaluate.robustness import (
    METHODS,
    evaluate_robustness,
    fgsm,
    perturbable_columns,
    pgd,
    random_noise,
)
from driftloop.models.architectures import build_model
from driftloop.registry import LoadedModel, ModelBundle, Registry

EPSILONS = [0.0, 0.1, 0.25]


def _contains(interval: dict) -> bool:
    return interval["low"] <= interval["value"] <= interval["high"]


@pytest.fixture
def robust_report(cancer_model, tmp_path):
    """The cancer MLP (temperature-scaled) evaluated on all 569 rows at three radii."""
    path = tmp_path / "holdout.csv"
    cancer_model.frame.to_csv(path, index=False)
    settings = cancer_model.settings.updated({"evaluate": {"robustness_epsilon": EPSILONS}})
    return dl.evaluate("cancer:1", path, settings=settings), cancer_model


def test_accuracy_falls_from_clean_to_noise_to_fgsm_to_pgd_with_intervals(robust_report):
    report, _ = robust_report
    section = report.robustness
    assert section["applicable"] and section["rows"] == 569
    assert len(section["perturbed_columns"]) == 30 and section["untouched_columns"] == ["clinic"]
    by_eps = {r["epsilon"]: r for r in section["results"]}
    assert list(by_eps) == EPSILONS
    for r in section["results"]:
        assert all(_contains(r["accuracy"][m]) for m in METHODS)
        assert r["drop"]["low"] <= r["drop"]["value"] <= r["drop"]["high"]
        # the clean accuracy is the report's own, on the same rows
        assert r["accuracy"]["clean"]["value"] == report.metrics["accuracy"].value

    zero = by_eps[0.0]
    assert {m: zero["accuracy"][m]["value"] for m in METHODS} == dict.fromkeys(
        METHODS, zero["accuracy"]["clean"]["value"])
    assert (zero["drop"]["value"], zero["drop"]["low"], zero["drop"]["high"]) == (0.0, 0.0, 0.0)
    assert zero["flipped"] == {"random": 0, "fgsm": 0, "pgd": 0}

    for eps in (0.1, 0.25):
        acc = {m: by_eps[eps]["accuracy"][m]["value"] for m in METHODS}
        assert acc["pgd"] <= acc["fgsm"] < acc["clean"]
        assert acc["pgd"] < acc["random"]
        assert by_eps[eps]["drop"]["low"] > 0  # a real, paired drop
        assert by_eps[eps]["flipped"]["pgd"] >= round((acc["clean"] - acc["pgd"]) * 569)
    # a larger ball can only hurt more
    assert by_eps[0.25]["accuracy"]["pgd"]["value"] < by_eps[0.1]["accuracy"]["pgd"]["value"]
    assert by_eps[0.25]["accuracy"]["pgd"]["value"] < 0.9  # PGD really bites at 0.25

    # stored with the report, printed, and back from JSON
    stored = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert stored["robustness"] == section
    assert EvaluationReport.from_json(stored) == report
    summary = report.summary()
    assert "robustness (L∞ ε in standardised units on 30 numeric column(s)" in summary
    assert "drop clean−PGD" in summary and "ε 0.25:" in summary


def _mixed_frame(rows: int = 400, seed: int = 0) -> pd.DataFrame:
    """Numeric columns (one with missing values), a boolean and a categorical column."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(3, 2, rows),
                          "flag": rng.random(rows) < 0.5,
                          "city": rng.choice(["Oslo", "Rome", "Lima"], rows)})
    frame["label"] = np.where(frame["a"] + 0.5 * frame["b"] + frame["flag"] > 2, "yes", "no")
    frame.loc[rng.choice(rows, 40, replace=False), "b"] = np.nan
    return frame


def _model(prepared, factory: str = "mlp", steps: int = 150, seed: int = 0) -> LoadedModel:
    torch.manual_seed(seed)
    allowed = ["linear_model"] if factory != "mlp" else []
    module = build_model(factory, prepared.model_inputs, prepared.n_classes, allowed=allowed)
    train = prepared.splits["train"]
    optimiser = torch.optim.Adam(module.parameters(), lr=3e-2)
    for _ in range(steps):
        optimiser.zero_grad()
        out = module(torch.from_numpy(train.x), torch.from_numpy(train.x_cat))
        torch.nn.functional.cross_entropy(out, torch.from_numpy(train.y)).backward()
        optimiser.step()
    bundle = ModelBundle(
        task=prepared.task, input_kind="table", model=factory, model_inputs=prepared.model_inputs,
        n_outputs=prepared.n_classes, classes=prepared.classes,
        schema=prepared.schema.to_json(), preprocessor=prepared.preprocessor,
        target_encoder=prepared.target_encoder,
        calibration={"kind": "temperature", "inputs": "proba", "temperature": 2.0},
    )
    return LoadedModel(bundle, save(module.eval().state_dict()), allowed_factories=allowed)


def test_only_standardised_numeric_columns_move_and_categories_stay():
    prepared = prepare(_mixed_frame(), "label", seed=0)
    model = _model(prepared)
    test = prepared.splits["train"]
    x, x_cat = test.x.copy(), test.x_cat.copy()
    mask = perturbable_columns(prepared.preprocessor, x.shape[1])
    # block: a, b, flag (boolean), b__missing (indicator); only a and b may move
    assert mask.tolist() == [True, True, False, False]
    eps = 0.3
    model.module.train()  # the attack itself switches dropout off, and back
    attacks = {
        "fgsm": fgsm(model, x, x_cat, test.y, eps, mask),
        "pgd": pgd(model, x, x_cat, test.y, eps, mask, steps=7, seed=3),
    }
    assert model.module.training
    again = fgsm(model, x, x_cat, test.y, eps, mask)  # dropout on would not repeat itself
    assert np.array_equal(again.x, attacks["fgsm"].x)
    for name, moved in attacks.items():
        assert moved.x_cat is x_cat and np.array_equal(moved.x_cat, test.x_cat), name
        assert np.array_equal(moved.x[:, ~mask], test.x[:, ~mask]), name
        shift = np.abs(moved.x[:, mask] - test.x[:, mask])
        assert shift.max() <= eps + 1e-6 and shift.max() > 0.9 * eps, name
    # FGSM sits on the corner of the ball (where the gradient is not exactly zero)
    assert np.mean(np.isclose(np.abs(attacks["fgsm"].x[:, mask] - x[:, mask]), eps,
                              atol=1e-6)) > 0.99
    noisy = random_noise(x, eps, mask, seed=1)
    assert np.array_equal(noisy[:, ~mask], x[:, ~mask])
    assert np.abs(noisy[:, mask] - x[:, mask]).max() <= eps + 1e-6
    # inputs are not modified in place, and no parameter gradient was computed or kept
    assert np.array_equal(x, test.x) and np.array_equal(x_cat, test.x_cat)
    assert all(p.grad is None for p in model.module.parameters())


def test_on_a_logistic_model_fgsm_is_the_exact_worst_case_and_pgd_matches_it():
    """For logits linear in x the margin of the true class falls at most by ε·‖Δw‖₁ over the
    moved columns, reached at FGSM's corner: FGSM, PGD and that closed form must agree."""
    prepared = prepare(_mixed_frame(600, seed=4), "label", seed=0)
    model = _model(prepared, factory="linear_model:make_linear", steps=300)
    test = prepared.splits["train"]
    x, x_cat, y = test.x, test.x_cat, test.y
    mask = perturbable_columns(prepared.preprocessor, x.shape[1])
    with torch.no_grad():
        logits = model.module(torch.from_numpy(x), torch.from_numpy(x_cat)).double().numpy()
    weight = model.module.body[-1].weight.detach().double().numpy()[:, :x.shape[1]]
    rows = np.arange(len(y))
    margin = logits[rows, y] - logits[rows, 1 - y]
    slope = np.abs(weight[y] - weight[1 - y])[:, mask].sum(axis=1)  # ‖w_y − w_other‖₁ per row
    report = evaluate_robustness(model, x, x_cat, y, epsilons=[0.05, 0.2, 0.5], steps=10,
                                 n_resamples=200)
    for r in report.results:
        worst = margin - r.epsilon * slope
        clear = np.abs(worst) > 1e-4  # rows not on the decision boundary to float precision
        analytic = worst > 0
        got = {m: r.accuracy[m].value for m in ("fgsm", "pgd")}
        assert got["fgsm"] == got["pgd"], r.epsilon
        assert r.flipped["fgsm"] == r.flipped["pgd"], r.epsilon
        fgsm_right = model.predict_arrays(fgsm(model, x, x_cat, y, r.epsilon, mask).x,
                                          x_cat).argmax(1) == y
        assert np.array_equal(fgsm_right[clear], analytic[clear]), r.epsilon
        assert got["fgsm"] < r.accuracy["clean"].value
    assert report.results[-1].accuracy["pgd"].value < 0.8  # the attack is not a no-op

    # the MLP on the same rows is not linear: there PGD finds strictly more than FGSM
    mlp = _model(prepared, steps=300)
    (r,) = evaluate_robustness(mlp, x, x_cat, y, epsilons=[0.5], n_resamples=200).results
    assert r.accuracy["pgd"].value < r.accuracy["fgsm"].value


def test_regression_image_or_all_categorical_models_are_not_attacked():
    frame = pd.DataFrame({"x": np.arange(200.0), "y": np.arange(200.0) * 2})
    data = prepare(frame, "y", seed=0)
    bundle = ModelBundle(task="regression", input_kind="table", model="mlp",
                         model_inputs=data.model_inputs, n_outputs=1, classes=[],
                         schema=data.schema.to_json(), preprocessor=data.preprocessor,
                         target_encoder=data.target_encoder)
    model = LoadedModel(bundle, save(build_model("mlp", data.model_inputs, 1).state_dict()))
    settings = Settings(evaluate={"resamples": 50})
    report, _ = evaluate_model(model, frame, settings=settings)
    assert report.robustness == {"applicable": False,
                                 "reason": "a regression model has no accuracy to attack"}
    assert "robustness: not applicable (a regression model" in report.summary()
    with pytest.raises(UsageError, match="needs a classifier"):
        evaluate_robustness(model, data.splits["test"].x, None, data.splits["test"].y)

    cats = pd.DataFrame({"c": np.random.default_rng(0).choice(list("abc"), 200)})
    cats["label"] = (cats["c"] == "a").map({True: "yes", False: "no"})
    data = prepare(cats, "label", seed=0)
    model = _model(data, steps=5)
    report, _ = evaluate_model(model, cats, settings=settings)
    assert not report.robustness["applicable"] and "no numeric feature" in (
        report.robustness["reason"])
    off = Settings(evaluate={"resamples": 50, "robustness": False})
    assert evaluate_model(model, cats, settings=off)[0].robustness is None


def test_a_negative_or_unusable_epsilon_is_refused():
    prepared = prepare(_mixed_frame(200), "label", seed=0)
    model = _model(prepared, steps=5)
    test = prepared.splits["test"]
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(UsageError, match="epsilon must be a finite number >= 0"):
            evaluate_robustness(model, test.x, test.x_cat, test.y, epsilons=[bad])
        with pytest.raises(ConfigError, match="robustness_epsilon"):
            Settings.load(overrides={"evaluate": {"robustness_epsilon": [0.1, bad]}},
                             environ={})
    with pytest.raises(ConfigError, match="robustness_epsilon"):
        Settings.load(overrides={"evaluate": {"robustness_epsilon": []}}, environ={})
    assert Settings.load(overrides={"evaluate": {"robustness_epsilon": 0.2}},
                            environ={}).evaluate.robustness_epsilon == [0.2]


def _gate(reg, **gates):
    registry = Registry.open(reg.settings.updated({"gates": gates}))
    try:
        report = registry.gate("cancer", 1, to="production")
    finally:
        registry.close()
    return {r.name: r for r in report.results}


def test_the_gate_reads_the_upper_bound_of_the_paired_drop(robust_report):
    report, reg = robust_report
    off = _gate(reg)["robustness"]  # off unless gates.max_robust_drop is set
    assert off.passed and off.detail == "off: gates.max_robust_drop is not set"
    drop = report.robustness["results"][-1]["drop"]  # the largest epsilon, 0.25
    high = drop["high"]
    refused = _gate(reg, max_robust_drop=round(high - 0.01, 4))["robustness"]
    assert not refused.passed and refused.measured == pytest.approx(high, abs=1e-6)
    assert refused.bound == f"<= {round(high - 0.01, 4):g}"
    assert "epsilon 0.25" in refused.detail and "paired interval" in refused.detail
    assert refused.details["epsilon"] == 0.25
    passed = _gate(reg, max_robust_drop=round(high + 0.01, 4))["robustness"]
    assert passed.passed
    # a chosen epsilon: 0.1 passes the same bound more easily; an unmeasured one is missing
    at_01 = report.robustness["results"][1]["drop"]["high"]
    assert at_01 < high
    assert _gate(reg, max_robust_drop=round(at_01 + 0.005, 4), robust_epsilon=0.1)[
        "robustness"].passed
    missing = _gate(reg, max_robust_drop=0.5, robust_epsilon=0.3)["robustness"]
    assert not missing.passed and "--robustness-epsilon 0.3" in missing.detail


def test_without_the_section_the_gate_fails_and_names_the_command(cancer_model, tmp_path):
    path = tmp_path / "holdout.csv"
    cancer_model.frame.to_csv(path, index=False)
    off = cancer_model.settings.updated({"evaluate": {"robustness": False}})
    assert dl.evaluate("cancer:1", path, settings=off).robustness is None
    found = _gate(cancer_model, max_robust_drop=0.1)["robustness"]
    assert not found.passed and found.measured is None
    assert "missing evidence" in found.detail and "driftloop evaluate cancer:1 DATA" in (
        found.detail)


def test_the_card_states_the_robustness(robust_report):
    _, reg = robust_report
    registry = Registry.open(reg.settings)
    try:
        card = registry.card("cancer", 1)
    finally:
        registry.close()
    items = dict(next(s for s in card.sections if s.key == "quantitative_analyses").items)
    line = items["Robustness"]
    assert "epsilon 0.25: accuracy" in line and "PGD (drop +" in line
    assert "categorical and boolean features unchanged" in line
    assert "Robustness" in card.to_markdown()


def test_cli_evaluate_prints_the_section_and_refuses_a_negative_epsilon(workdir, capsys):
    from quick_model import quick_version

    frame = _mixed_frame(400, seed=5)
    _, weights, bundle = quick_version(frame, steps=60)
    with Registry.open(Settings.load()) as registry:
        registry.register("mixed", run_id=None, bundle=bundle, weights=weights, metrics={},
                          actor="test", reason="cli test")
    _mixed_frame(300, seed=6).to_csv(workdir / "holdout.csv", index=False)

    assert main(["evaluate", "mixed", "holdout.csv"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "robustness (L∞ ε in standardised units on 2 numeric column(s)" in text
    assert "ε 0.1:" in text and "labels flipped" in text

    assert main(["evaluate", "mixed", "holdout.csv", "--robustness-epsilon", "0.05,0.3",
                 "--json"]) == 0
    section = json.loads(capsys.readouterr().out)["robustness"]
    assert [r["epsilon"] for r in section["results"]] == [0.05, 0.3]
    assert section["untouched_columns"] == ["flag", "b__missing", "city"]

    for bad, words in (("-0.1", ["robustness_epsilon", "-0.1", ">= 0"]),
                       ("0.1,x", ["--robustness-epsilon", "0.1,x"])):
        code = main(["evaluate", "mixed", "holdout.csv", "--robustness-epsilon", bad])
        captured = capsys.readouterr()
        assert code == 2 and "Traceback" not in captured.out + captured.err
        for word in words:
            assert word in " ".join(captured.err.split()), (bad, word)


@pytest.mark.slow
def test_training_records_the_section_for_a_fresh_version(dl_settings):
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame.sample(300, random_state=0)
    settings = dl_settings.updated({"evaluate": {"resamples": 100}})
    result = dl.train(frame, target="target", workers=2, epochs=3, batch_size=32,
                      name="fresh", settings=settings, progress=False)
    section = result.evaluation["robustness"]
    assert section["applicable"] and section["results"][0]["epsilon"] == 0.1
    assert all(_contains(section["results"][0]["accuracy"][m]) for m in METHODS)


def test_the_section_is_seeded_so_an_evaluation_can_be_recomputed_exactly():
    prepared = prepare(_mixed_frame(200), "label", seed=0)
    model = _model(prepared, steps=5)
    frame = _mixed_frame(200)
    settings = Settings(evaluate={"resamples": 50})
    a, _ = evaluate_model(model, frame, settings=settings)
    b, _ = evaluate_model(model, frame, settings=settings)
    assert a == b and dataclasses.replace(a, robustness=None) != a
