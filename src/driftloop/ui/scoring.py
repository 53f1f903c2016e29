"""Score an uploaded table with a registered version, as the HTTP API would answer it.

The rows go through the serving API's own :class:`~driftloop.serve.validation.RequestValidator`
(so a missing column or a bad value gets the very message ``POST /v1/models/{name}/predict``
gives), then the version's model; the answer is the same CSV with a ``prediction`` column and,
for classification, a ``probability`` column (of the predicted answer).
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd

from driftloop.http import Refused
from driftloop.registry import Registry
from driftloop.serve.validation import RequestInvalid, RequestValidator


def score_frame(registry: Registry, name: str, version: int, frame: pd.DataFrame,
                target: str | None = None) -> pd.DataFrame:
    """``frame`` with ``prediction`` (and ``probability``) columns added."""
    record = registry.get(name, version)
    bundle = registry.bundle(record)
    validator = RequestValidator(bundle.schema, bundle.preprocessor,
                                 max_instances=max(1, len(frame)))
    features = frame[[c for c in frame.columns if c in validator.names]]
    # the rows as the API receives them: JSON (missing cells null)
    instances = json.loads(features.to_json(orient="records"))
    try:
        columns = validator.columns_from_instances(instances)
    except RequestInvalid as exc:
        raise Refused(exc.status, exc.code, str(exc)) from None
    model = registry.load(name, version)
    probs = model.predict_raw(pd.DataFrame(columns, columns=validator.names))
    out = frame.copy()
    if model.task == "regression":
        out["prediction"] = model.to_original_scale(probs)
        return out
    labels = model.predict(pd.DataFrame(columns, columns=validator.names))
    out["prediction"] = labels
    out["probability"] = np.round(probs.max(axis=1), 6)
    return out


def to_csv(frame: pd.DataFrame) -> str:
    """The scored table as CSV text."""
    text = io.StringIO()
    frame.to_csv(text, index=False)
    return text.getvalue()


__all__ = ["score_frame", "to_csv"]
