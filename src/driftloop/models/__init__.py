"""Models: building ``nn.Module``s (the built-in MLP, CNN and GRU, or an importable factory),
the bundle that describes a version, temperature scaling, and loading a version for inference.

This layer sits below training, evaluation, the registry and serving: each of them builds or
loads models through it, so none of them needs another to get a model.

Examples
--------
>>> from driftloop.models import MODELS, resolve_model_name
>>> sorted(MODELS), resolve_model_name("auto", "image")
(['cnn', 'gru', 'mlp', 'mlp-small'], 'cnn')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftloop._lazy import lazy_getattr
from driftloop.models.bundle import ModelBundle

if TYPE_CHECKING:
    from driftloop.models.architectures import (
        MODELS,
        build_model,
        factory_reference,
        load_factory,
        resolve_model_name,
    )
    from driftloop.models.loaded import LoadedModel
    from driftloop.models.temperature import TemperatureScaler, softmax

# Imported on first use: torch takes seconds to import and evaluation (temperature scaling)
# does not need it; the training workers need torch but not pandas and scipy.
_LAZY = {
    "MODELS": "driftloop.models.architectures",
    "build_model": "driftloop.models.architectures",
    "factory_reference": "driftloop.models.architectures",
    "load_factory": "driftloop.models.architectures",
    "resolve_model_name": "driftloop.models.architectures",
    "LoadedModel": "driftloop.models.loaded",
    "TemperatureScaler": "driftloop.models.temperature",
    "softmax": "driftloop.models.temperature",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = [
    "MODELS",
    "LoadedModel",
    "ModelBundle",
    "TemperatureScaler",
    "build_model",
    "factory_reference",
    "load_factory",
    "resolve_model_name",
    "softmax",
]
