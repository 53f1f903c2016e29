"""``driftloop demo``: the main job on data that needs no download.

It writes a credit-approval table from river's Agrawal generator (a standard benchmark stream,
generated locally and seeded), checks it, trains an MLP data-parallel with 2 workers, evaluates
it on the held-out test split, registers it, and says where everything went.

Examples
--------
>>> frame = credit_frame(rows=5, seed=1)
>>> list(frame.columns)[:4], len(frame)
(['salary', 'commission', 'age', 'elevel'], 5)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from driftloop.config import Settings
from driftloop.data.check import DataReport, check_data
from driftloop.train.launcher import TrainResult, train

TARGET = "approved"


def credit_frame(rows: int, seed: int, classification_function: int = 2) -> pd.DataFrame:
    """``rows`` loan applications from river's Agrawal generator, with an ``approved`` label."""
    from river.datasets import synth

    stream = synth.Agrawal(
        classification_function=classification_function, seed=seed, perturbation=0.05
    )
    records = [{**x, TARGET: "yes" if y else "no"} for x, y in stream.take(rows)]
    frame = pd.DataFrame.from_records(records)
    frame["elevel"] = frame["elevel"].map(lambda v: f"level-{v}")  # education level: a category
    return frame


@dataclass(frozen=True)
class DemoResult:
    """What the demo did and where it put it."""

    data_path: str
    check: DataReport
    training: TrainResult
    store_url: str
    artifacts_url: str

    def to_json(self) -> dict[str, Any]:
        return {
            "data": self.data_path,
            "check": self.check.to_json(),
            "training": self.training.to_json(),
            "store_url": self.store_url,
            "artifacts_url": self.artifacts_url,
        }


def run_demo(
    folder: str | Path = "driftloop-demo",
    *,
    rows: int = 20_000,
    workers: int = 2,
    epochs: int = 15,
    settings: Settings | None = None,
    progress: bool = True,
    on_step: Any = None,
) -> DemoResult:
    """Write the data into ``folder``, check it, train, evaluate and register the model."""
    settings = settings or Settings.load()
    say = on_step or (lambda *_: None)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data_path = folder / "credit.csv"
    say("data", f"writing {rows} loan applications (river Agrawal generator) to {data_path}")
    credit_frame(rows, seed=42).to_csv(data_path, index=False)
    say("check", "checking the data")
    report = check_data(data_path, target=TARGET)
    say("check-done", report)
    say("train", f"training data-parallel with {workers} workers")
    result = train(
        data_path, TARGET, workers=workers, epochs=epochs, name="credit", settings=settings,
        progress=progress,
    )
    return DemoResult(
        data_path=str(data_path), check=report, training=result,
        store_url=settings.store_url, artifacts_url=settings.artifacts_url,
    )


__all__ = ["DemoResult", "credit_frame", "run_demo"]
