"""Shared builders for the data-stage tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest


def mixed_frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """A table with one column of each kind the schema must recognise, and a binary target."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50_000, 12_000, n).round(2)
    income[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "row_number": np.arange(n),
            "age": rng.integers(18, 90, n),
            "income": income,
            "plan": rng.choice(["basic", "plus", "pro"], n),
            "n_children": rng.integers(0, 4, n),
            "member": rng.choice(["Yes", "No"], n),
            "active": rng.random(n) < 0.5,
            "score_text": rng.normal(0, 1, n).round(3).astype(str),
            "country": "NO",
            "notes": [None] * n,
            "signup": pd.date_range("2024-01-01", periods=n, freq="h"),
            "churn": rng.choice(["stay", "leave"], n),
        }
    )


@pytest.fixture
def frame() -> pd.DataFrame:
    return mixed_frame()


@pytest.fixture
def make_frame() -> Callable[..., pd.DataFrame]:
    """The :func:`mixed_frame` builder, for tests that need another size or seed."""
    return mixed_frame
