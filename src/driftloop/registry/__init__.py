"""Model versions, their bundles and loading them for inference; aliases, promotion gates,
lineage and model cards."""

from driftloop.models.bundle import ModelBundle
from driftloop.models.loaded import LoadedModel
from driftloop.registry.aliases import Promotion
from driftloop.registry.card import ModelCard
from driftloop.registry.gates import GATES, GateRefused, GateReport, GateResult
from driftloop.registry.lineage import Lineage
from driftloop.registry.registry import Registry

__all__ = [
    "GATES",
    "GateRefused",
    "GateReport",
    "GateResult",
    "Lineage",
    "LoadedModel",
    "ModelBundle",
    "ModelCard",
    "Promotion",
    "Registry",
]
