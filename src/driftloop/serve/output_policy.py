"""What a classification answer shows the client: full, rounded, top-k or label only.

Exact probabilities are what model extraction (fitting a copy on query/answer pairs) and
membership inference (a training row's confidence is higher) feed on; fewer digits, fewer
classes or none make both harder and cost honest clients the same information. The policy is
applied to the answer after it was logged, so monitoring (CBPE needs the probabilities) and
rollouts see every output; only the response changes. Regression answers are unchanged.

Examples
--------
>>> from driftloop.config import OutputPolicy
>>> answer = {"predictions": ["no", "yes"],
...           "probabilities": [[0.8123, 0.1877], [0.3051, 0.6949]]}
>>> shown(answer, ["no", "yes"], OutputPolicy(mode="rounded", decimals=1))
{'predictions': ['no', 'yes'], 'probabilities': [[0.8, 0.2], [0.3, 0.7]]}
>>> shown(answer, ["no", "yes"], OutputPolicy(mode="top_k", k=1))["top_k"]
[[{'class': 'no', 'probability': 0.81}], [{'class': 'yes', 'probability': 0.69}]]
>>> shown(answer, ["no", "yes"], OutputPolicy(mode="label"))
{'predictions': ['no', 'yes']}
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from driftloop.config import OutputPolicy


def shown(answer: dict[str, list[Any]], classes: Sequence[Any] | None,
          policy: OutputPolicy) -> dict[str, list[Any]]:
    """The part of ``answer`` (predictions, probabilities) that ``policy`` lets the client see."""
    probs = answer.get("probabilities")
    if policy.mode == "full" or probs is None:
        return answer
    if policy.mode == "label":
        return {"predictions": answer["predictions"]}
    p = np.asarray(probs, dtype=np.float64)
    if policy.mode == "rounded":
        return {"predictions": answer["predictions"],
                "probabilities": np.round(p, policy.decimals).tolist()}
    names = list(classes) if classes is not None else list(range(p.shape[1]))
    k = min(policy.k, p.shape[1])
    order = np.argsort(-p, axis=1, kind="stable")[:, :k]
    top = [[{"class": names[j], "probability": round(float(row[j]), policy.decimals)}
            for j in picks] for row, picks in zip(p, order, strict=True)]
    return {"predictions": answer["predictions"], "top_k": top}


__all__ = ["shown"]
