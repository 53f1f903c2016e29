"""Model versions, their bundles and loading them for inference."""

from driftloop.registry.bundle import ModelBundle
from driftloop.registry.loaded import LoadedModel
from driftloop.registry.registry import Registry

__all__ = ["LoadedModel", "ModelBundle", "Registry"]
