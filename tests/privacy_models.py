"""Models trained for real to audit for membership inference (the privacy-audit tests).

:func:`train_and_audit` trains a version of handwritten digits with ``driftloop.train`` (any
extra keyword goes to it, e.g. a later ``dp_epsilon=``), writes rows it never saw to a CSV, and
runs ``evaluate --privacy``'s :func:`~driftloop.loop.privacy_audit.evaluate_with_privacy`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

OVERFIT = {"epochs": 30, "lr": 0.01, "batch_size": 16}
"""174 training rows, 62 features, no weight decay, no early stop: the MLP memorises them."""
BARELY = {"epochs": 1, "lr": 1e-5, "batch_size": 16}
"""One epoch at a tiny learning rate: the weights hardly move from their initialisation."""


def digits_frames(n_train: int = 250, n_unseen: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n_train`` digits (split by training into train/val/test) and ``n_unseen`` others
    (never trained on), drawn from one seeded shuffle so that members and non-members come
    from the same distribution (the file's order follows its writers: unshuffled, a model is
    more confident on its own writers' digits and every attack reads that as membership);
    target column ``label``, constant pixels left out."""
    from sklearn.datasets import load_digits

    frame = load_digits(as_frame=True).frame.rename(columns={"target": "label"})
    frame = frame.loc[:, frame.std() > 0].sample(frac=1.0, random_state=0)
    return (frame.iloc[:n_train].reset_index(drop=True),
            frame.iloc[n_train:n_train + n_unseen].reset_index(drop=True))


def train_and_audit(settings: Any, folder: Path, name: str, *, reference_models: int = 2,
                    **train_kwargs: Any) -> tuple[Any, Any]:
    """Train ``name`` on digits with ``train_kwargs`` (one worker), audit it with
    ``reference_models`` reference models; returns ``(TrainResult, EvaluationReport)``."""
    from driftloop.loop.privacy_audit import evaluate_with_privacy
    from driftloop.train.launcher import train

    seen, unseen = digits_frames()
    settings = settings.updated({"evaluate": {"privacy_reference_models": reference_models,
                                              "resamples": 500}})
    result = train(seen, "label", name=name, workers=1, settings=settings, progress=False,
                   **train_kwargs)
    path = folder / f"{name}-unseen.csv"
    unseen.to_csv(path, index=False)
    report = evaluate_with_privacy(f"{name}:{result.version}", path, settings=settings)
    return result, report
