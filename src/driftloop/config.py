"""Settings: ``driftloop.yaml`` in the working folder, then ``DRIFTLOOP_*`` variables, then flags.

This is the one place where defaults live. Later layers override earlier ones:

1. the defaults below;
2. ``driftloop.yaml`` (or the file named by ``DRIFTLOOP_CONFIG``) in the working folder;
3. environment variables ``DRIFTLOOP_<FIELD>`` (``DRIFTLOOP_HOME``, ``DRIFTLOOP_STORE_URL``,
   ``DRIFTLOOP_ARTIFACTS_URL``; nested fields use a double underscore:
   ``DRIFTLOOP_TRAIN__EPOCHS=5``);
4. keyword overrides passed by the CLI or the Python API.

Examples
--------
>>> s = Settings.load(overrides={"home": "/tmp/dl"}, environ={}, cwd="/nonexistent")
>>> s.store_url
'sqlite:////tmp/dl/driftloop.db'
>>> s.artifacts_url
'/tmp/dl/artifacts'
>>> Settings.load(environ={"DRIFTLOOP_TRAIN__EPOCHS": "7"}, cwd="/nonexistent").train.epochs
7
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from driftloop.errors import ConfigError

CONFIG_FILE = "driftloop.yaml"
ENV_PREFIX = "DRIFTLOOP_"


class TrainSettings(BaseModel):
    """Defaults for ``driftloop train`` / :func:`driftloop.train`."""

    model_config = ConfigDict(extra="forbid")

    model: str = "auto"
    workers: int = Field(2, ge=1)
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=1, description="per worker")
    lr: float = Field(1e-3, gt=0, description="learning rate at the reference batch")
    reference_batch: int = Field(64, ge=1, description="global batch at which `lr` applies")
    warmup_epochs: float = Field(1.0, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    patience: int = Field(5, ge=1, description="epochs without validation improvement")
    seed: int = 0
    val_fraction: float = Field(0.15, gt=0, lt=1)
    test_fraction: float = Field(0.15, gt=0, lt=1)


class Settings(BaseModel):
    """All driftloop settings; build with :meth:`Settings.load`."""

    model_config = ConfigDict(extra="forbid")

    home: str = ".driftloop"
    store_url: str = ""
    artifacts_url: str = ""
    train: TrainSettings = Field(default_factory=TrainSettings)

    @model_validator(mode="after")
    def _derive_locations(self) -> Settings:
        # store and artifacts default to places inside `home`, resolved here and only here
        if not self.store_url:
            self.store_url = f"sqlite:///{Path(self.home) / 'driftloop.db'}"
        if not self.artifacts_url:
            self.artifacts_url = str(Path(self.home) / "artifacts")
        return self

    @property
    def runs_dir(self) -> Path:
        """Folder that holds one sub-folder per training run."""
        return Path(self.home) / "runs"

    @classmethod
    def load(
        cls,
        overrides: Mapping[str, Any] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> Settings:
        """Merge defaults, ``driftloop.yaml``, ``DRIFTLOOP_*`` and ``overrides`` (in that order)."""
        environ = os.environ if environ is None else environ
        merged: dict[str, Any] = {}
        _deep_update(merged, _read_yaml(environ, cwd))
        _deep_update(merged, _read_env(environ))
        _deep_update(merged, {k: v for k, v in (overrides or {}).items() if v is not None})
        try:
            return cls.model_validate(merged)
        except ValidationError as exc:
            raise ConfigError(_explain(exc)) from None


    def updated(self, overrides: Mapping[str, Any]) -> Settings:
        """A copy with ``overrides`` (nested mappings merge) applied and validated again.

        >>> base = Settings.load(environ={}, cwd="/nonexistent")
        >>> base.updated({"train": {"epochs": 2}}).train.epochs
        2
        """
        merged = self.model_dump()
        _deep_update(merged, {k: v for k, v in overrides.items() if v is not None})
        try:
            return type(self).model_validate(merged)
        except ValidationError as exc:
            raise ConfigError(_explain(exc)) from None


def _read_yaml(environ: Mapping[str, str], cwd: str | os.PathLike[str] | None) -> dict[str, Any]:
    explicit = environ.get(ENV_PREFIX + "CONFIG")
    path = Path(explicit) if explicit else Path(cwd or os.getcwd()) / CONFIG_FILE
    if not path.is_file():
        if explicit:
            raise ConfigError(f"{ENV_PREFIX}CONFIG names '{path}', which does not exist.")
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}. Fix the file or remove it.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, got {type(data).__name__}.")
    return data


def _read_env(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or key == ENV_PREFIX + "CONFIG":
            continue
        path = key[len(ENV_PREFIX) :].lower().split("__")
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def _deep_update(into: dict[str, Any], new: Mapping[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _deep_update(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value


def _explain(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        got = err.get("input")
        lines.append(f"setting '{field}': {err['msg']} (got {got!r})")
    return "; ".join(lines) + ". Fix driftloop.yaml, the DRIFTLOOP_* variable or the flag."


__all__ = ["Settings", "TrainSettings"]
