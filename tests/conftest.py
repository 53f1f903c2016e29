"""Fixtures shared by every test folder."""

from __future__ import annotations

import pytest

from driftloop.config import Settings


@pytest.fixture
def dl_settings(tmp_path):
    """Settings whose store, artifacts and runs live in a fresh folder, ignoring the environment."""
    home = tmp_path / "home"
    return Settings.load(
        overrides={"home": str(home), "train": {"patience": 100}}, environ={}, cwd=tmp_path
    )
