"""``check_data`` on tables with known defects: each defect is found, a clean table passes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_wine

from driftloop.config import Settings
from driftloop.data.check import CHECKS, check_data
from driftloop.errors import DataError, UsageError
from driftloop.store import ArtifactStore, Store

CARDS = ["4111 1111 1111 1111", "5500 0000 0000 0004", "3400 0000 0000 009",
         "6011 0000 0000 0004", "4012 8888 8888 1881"]


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> Settings:
    home = tmp_path_factory.mktemp("home")
    return Settings.load(overrides={"home": str(home), "check": {"max_rows_listed": 500}},
                         environ={}, cwd=home)


def clean_table(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "age": rng.normal(45, 12, n).round(1),
        "income": rng.lognormal(10, 0.5, n).round(2),
        "tenure": rng.integers(0, 8, n),
        "plan": rng.choice(["basic", "plus", "pro"], n),
        "member": rng.choice(["yes", "no"], n),
    })
    score = (frame["age"] - 45) / 12 + (frame["plan"] == "pro") - 0.3 * frame["tenure"] / 8
    frame["churn"] = np.where(score + rng.logistic(size=n) * 0.05 > 0, "leave", "stay")
    return frame


@pytest.fixture(scope="module")
def defective() -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The clean table, then: 5% labels flipped, an e-mail and a card column, a leaked
    target copy, and 3% of rows duplicated (appended at the end)."""
    rng = np.random.default_rng(1)
    frame = clean_table(2000, seed=1)
    flipped = rng.choice(len(frame), 100, replace=False)
    frame.loc[flipped, "churn"] = frame.loc[flipped, "churn"].map(
        {"leave": "stay", "stay": "leave"}
    )
    frame["email"] = [f"customer{i}@example.com" for i in range(len(frame))]
    frame["card"] = rng.choice(CARDS, len(frame))
    frame["churn_score"] = (frame["churn"] == "leave") + rng.normal(0, 0.05, len(frame))
    duplicated = rng.choice(len(frame), 60, replace=False)
    frame = pd.concat([frame, frame.iloc[duplicated]], ignore_index=True)
    return frame, {"flipped": flipped, "duplicates": np.arange(2000, 2060),
                   "duplicated_from": duplicated}


def _by_check(report) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in report.findings:
        out.setdefault(f.check, []).append(f)
    return out


def test_every_planted_defect_is_found(defective, settings):
    frame, truth = defective
    report = check_data(frame, "churn", settings=settings)
    found = _by_check(report)

    [dup] = found["duplicate_rows"]
    assert dup.count == 60 and dup.severity == "warning"
    assert dup.rows == truth["duplicates"].tolist()

    [leak] = found["target_leakage"]
    assert leak.severity == "error" and leak.columns == ["churn_score"]
    assert leak.details["auc"] >= 0.99 and not report.passed

    pii = {f.columns[0]: f for f in found["pii"]}
    assert set(pii) == {"email", "card"}
    assert pii["email"].details["entity"] == "email" and pii["email"].details["rate"] == 1.0
    assert pii["card"].details["entity"] == "credit_card"
    assert report.pii_columns == ["email", "card"]
    text = json.dumps(report.to_json())
    assert "customer0@example.com" not in text and "4111 1111" not in text
    assert "c********@*******.com" in text

    [labels] = found["label_errors"]
    assert labels.severity == "warning"
    # the appended duplicates of flipped rows carry flipped labels too
    flipped = set(truth["flipped"].tolist())
    flipped |= {2000 + i for i, row in enumerate(truth["duplicated_from"]) if row in flipped}
    hits = len(set(labels.rows) & flipped)
    assert hits / len(flipped) >= 0.6 and hits / labels.count >= 0.6, (hits, labels.count)


def test_label_error_recall_and_precision_on_breast_cancer_with_5_percent_flipped(settings):
    frame = load_breast_cancer(as_frame=True).frame
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(frame), round(0.05 * len(frame)), replace=False)
    frame.loc[flipped, "target"] = 1 - frame.loc[flipped, "target"]
    report = check_data(frame, "target", settings=settings)
    [labels] = _by_check(report)["label_errors"]
    assert labels.count == len(labels.rows)  # every flagged row is listed (cap 500)
    hits = len(set(labels.rows) & set(flipped.tolist()))
    recall, precision = hits / len(flipped), hits / labels.count
    assert recall >= 0.6 and precision >= 0.6, (recall, precision)
    assert labels.rows[0] in set(flipped.tolist())  # the most suspicious row is a flip


def test_test_rows_copied_into_train_are_found_against_the_test_table(settings, tmp_path):
    frame = clean_table(1500, seed=2)
    frame["customer_id"] = [f"C{i:05d}" for i in range(len(frame))]
    train, test = frame.iloc[:1200].copy(), frame.iloc[1200:].copy()
    copied = test.iloc[:10]
    train = pd.concat([train, copied], ignore_index=True)
    near = test.iloc[10:14].copy()
    near["income"] = near["income"] + 1e-6  # a float round trip away from equal
    train = pd.concat([train, near], ignore_index=True)
    test.to_csv(tmp_path / "test.csv", index=False)

    report = check_data(train, "churn", tmp_path / "test.csv", settings=settings)
    found = _by_check(report)
    [exact] = found["row_overlap"]
    assert exact.severity == "error" and exact.count == 10
    assert exact.rows == list(range(1200, 1210))
    [rounded] = found["near_row_overlap"]
    assert rounded.severity == "warning" and rounded.rows == list(range(1210, 1214))
    [ids] = found["group_overlap"]  # the id-like column, auto-detected: a warning
    assert ids.columns == ["customer_id"] and ids.count == 14 and ids.severity == "warning"
    assert report.against["rows"] == 300 and report.against["source"].endswith("test.csv")

    grouped = check_data(train, "churn", tmp_path / "test.csv", group_column="customer_id",
                         settings=settings)
    assert [f.severity for f in grouped.findings if f.check == "group_overlap"] == ["error"]


def test_a_95_5_class_split_is_reported_with_the_class_weights(settings):
    rng = np.random.default_rng(3)
    n = 2000
    frame = pd.DataFrame({"x": rng.normal(size=n), "y": np.where(rng.random(n) < 0.05, 1, 0)})
    [imbalance] = _by_check(check_data(frame, "y", settings=settings))["class_imbalance"]
    assert imbalance.severity == "warning"
    share = imbalance.details["minority_share"]
    assert 0.04 < share < 0.06 and imbalance.details["imbalance_ratio"] > 15
    weights = imbalance.details["class_weights"]
    counts = imbalance.details["counts"]
    assert weights["1"] == pytest.approx(n / (2 * counts["1"]), rel=1e-3)
    assert weights["0"] < 1 < weights["1"]


@pytest.mark.parametrize("name", ["synthetic", "wine"])
def test_a_clean_dataset_yields_no_errors(name, settings):
    if name == "synthetic":
        frame, target = clean_table(), "churn"
    else:
        frame, target = load_wine(as_frame=True).frame, "target"
    report = check_data(frame, target, settings=settings)
    assert report.passed and report.failing("error") == []
    assert {f.check for f in report.findings} <= {"class_imbalance", "label_errors"}


def test_schema_problems_and_missing_targets_are_findings(settings):
    frame = clean_table(300)
    frame["id"] = [f"row-{i}" for i in range(300)]
    frame["country"] = "NO"
    frame["notes"] = None
    frame.loc[:9, "churn"] = None
    frame.loc[:149, "age"] = np.nan
    found = _by_check(check_data(frame, "churn", settings=settings))
    assert found["id_like_column"][0].columns == ["id"]
    assert found["constant_column"][0].columns == ["country"]
    assert found["excluded_column"][0].columns == ["notes"]
    assert found["missing_target"][0].rows == list(range(10))
    [missing] = found["missing_values"]
    assert missing.severity == "warning" and missing.columns == ["age"]


def test_multiclass_and_regression_targets_leak_too(settings):
    rng = np.random.default_rng(4)
    n = 1500
    y = rng.integers(0, 3, n)
    frame = pd.DataFrame({"x": rng.normal(size=n), "code": y * 10 + rng.normal(0, 1, n),
                          "label": np.array(["a", "b", "c"])[y]})
    leaks = [f.columns for f in check_data(frame, "label", settings=settings).findings
             if f.check == "target_leakage"]
    assert leaks == [["code"]]
    frame = pd.DataFrame({"x": rng.normal(size=n), "price": rng.normal(100, 20, n)})
    frame["price_x2"] = frame["price"] * 2 + rng.normal(0, 0.01, n)
    report = check_data(frame, "price", settings=settings)
    assert report.task == "regression"
    assert [f.columns for f in report.findings if f.check == "target_leakage"] == [["price_x2"]]


def test_provenance_is_recorded_in_the_store_with_the_report(settings, tmp_path):
    frame = clean_table(500)
    path = tmp_path / "data.parquet"
    frame.to_parquet(path, index=False)
    with Store.open(f"sqlite:///{tmp_path / 'dl.db'}") as store:
        artifacts = ArtifactStore(tmp_path / "artifacts")
        report = check_data(path, "churn", settings=settings, store=store, artifacts=artifacts)
        dataset = store.get_dataset(report.fingerprint)
        assert dataset.rows == 500 and dataset.source_uri == report.source_uri
        assert {"name": "plan", "kind": "categorical"} in dataset.columns
        [record] = store.list_reports(kind="data_check")
        assert record.dataset_fingerprint == report.fingerprint
        assert artifacts.get_json(record.artifact_sha256) == report.to_json()
    body = report.to_json()
    assert body["dataset"]["fingerprint"] == report.fingerprint
    assert body["dataset"]["rows"] == 500 and body["dataset"]["source"].startswith("file://")
    assert body["dataset"]["schema"]["target"] == "churn"
    assert set(body["findings"][0]) >= {"check", "severity", "columns", "rows", "count",
                                         "message", "advice"}


def test_bad_input_is_named(settings):
    frame = clean_table(100)
    with pytest.raises(DataError, match="group column 'shop' not found"):
        check_data(frame, "churn", group_column="shop", settings=settings)
    with pytest.raises(DataError, match="target column 'nope' not found"):
        check_data(frame, "nope", settings=settings)
    report = check_data(frame, "churn", settings=settings)
    with pytest.raises(UsageError, match="severity must be one of"):
        report.failing("fatal")  # type: ignore[arg-type]
    assert len(CHECKS) == len(set(CHECKS))
