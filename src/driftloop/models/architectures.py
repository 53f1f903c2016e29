"""Model factories: an MLP for tables, a small CNN for images, a GRU for sequences.

Every factory takes the model inputs recorded by data preparation and the number of outputs
(classes, or 1 for regression) and returns an ``nn.Module`` called as ``model(*inputs)``:
``(x_numeric, x_categorical)`` for tables, ``(x,)`` for images and sequences.

A user's own factory is named ``"package.module:function"``; it must be importable by the
worker processes and have the same signature. Importing it runs its module's code, so a stored
version whose bundle names one loads only when the operator allowed it: ``allowed`` holds
module prefixes (``security.model_factories``; ``"acme.models"`` allows ``acme.models:make``
and ``acme.models.tabular:make``). The built-in models are always allowed.

Examples
--------
>>> import torch
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> net = build_model("mlp", {"n_numeric": 3, "cardinalities": [4]}, n_outputs=2)
>>> net(torch.zeros(5, 3), torch.zeros(5, 1, dtype=torch.long)).shape
torch.Size([5, 2])
>>> resolve_model_name("auto", "image")
'cnn'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from driftloop.errors import UsageError

ModelFactory = Callable[[dict[str, Any], int], nn.Module]
_BUILT_IN = __name__  # "driftloop.models.architectures:make_mlp" names a built-in model


class TabularMLP(nn.Module):
    """Numeric features plus one embedding per categorical column, then an MLP."""

    def __init__(
        self,
        n_numeric: int,
        cardinalities: list[int],
        n_outputs: int,
        hidden: tuple[int, ...] = (128, 64),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.embeddings = nn.ModuleList(
            nn.Embedding(card, _embedding_dim(card)) for card in cardinalities
        )
        width = n_numeric + sum(e.embedding_dim for e in self.embeddings)
        layers: list[nn.Module] = []
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, n_outputs))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, x_cat: torch.Tensor | None = None) -> torch.Tensor:
        parts = [x]
        if x_cat is not None:
            parts += [emb(x_cat[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.body(torch.cat(parts, dim=1))


def _embedding_dim(cardinality: int) -> int:
    return max(2, min(16, (cardinality + 1) // 2))


class SmallCNN(nn.Module):
    """Two conv blocks and global average pooling; enough for MNIST-sized images."""

    def __init__(self, channels: int, n_outputs: int, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, width // 2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width // 2, width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(width, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class SequenceGRU(nn.Module):
    """A GRU over N×T×F sequences; the last hidden state feeds a linear head."""

    def __init__(self, n_features: int, n_outputs: int, hidden: int = 64) -> None:
        super().__init__()
        self.gru = nn.GRU(n_features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, last = self.gru(x)
        return self.head(last[-1])


def make_mlp(inputs: dict[str, Any], n_outputs: int) -> nn.Module:
    """MLP for tables: ``inputs = {"n_numeric": F, "cardinalities": [K+1, ...]}``."""
    return TabularMLP(int(inputs["n_numeric"]), list(inputs.get("cardinalities", [])), n_outputs)


def make_mlp_small(inputs: dict[str, Any], n_outputs: int) -> nn.Module:
    """A small MLP for tables (one hidden layer of 32, no dropout): the default student of
    ``driftloop distill``, a few thousand parameters where ``mlp`` has tens of thousands.

    >>> net = make_mlp_small({"n_numeric": 10, "cardinalities": []}, 2)
    >>> sum(p.numel() for p in net.parameters())
    418
    """
    return TabularMLP(int(inputs["n_numeric"]), list(inputs.get("cardinalities", [])), n_outputs,
                      hidden=(32,), dropout=0.0)


def make_cnn(inputs: dict[str, Any], n_outputs: int) -> nn.Module:
    """Small CNN for images: ``inputs = {"shape": [C, H, W]}``."""
    return SmallCNN(int(inputs["shape"][0]), n_outputs)


def make_gru(inputs: dict[str, Any], n_outputs: int) -> nn.Module:
    """GRU for sequences: ``inputs = {"shape": [T, F]}``."""
    return SequenceGRU(int(inputs["shape"][-1]), n_outputs)


MODELS: dict[str, ModelFactory] = {
    "mlp": make_mlp, "mlp-small": make_mlp_small, "cnn": make_cnn, "gru": make_gru,
}
AUTO_BY_INPUT = {"table": "mlp", "image": "cnn", "sequence": "gru"}


def resolve_model_name(model: str, input_kind: str) -> str:
    """Turn ``"auto"`` into the built-in model for ``input_kind``; check other names."""
    if model == "auto":
        return AUTO_BY_INPUT[input_kind]
    if model in MODELS or ":" in model:
        return model
    raise UsageError(
        f"model '{model}' not found. Available names: auto, {', '.join(MODELS)}, "
        "or 'package.module:function' for your own factory."
    )


def factory_reference(factory: Callable[..., nn.Module]) -> str:
    """``"module:qualname"`` of a factory, checked to be importable by another process."""
    module, qualname = getattr(factory, "__module__", None), getattr(factory, "__qualname__", "")
    if not module or "<" in qualname or module == "__main__":
        raise UsageError(
            f"model factory {factory!r} cannot be imported by the worker processes. "
            "Define it at the top level of an importable module and pass it again."
        )
    return f"{module}:{qualname}"


def factory_allowed(reference: str, allowed: Sequence[str]) -> bool:
    """Whether ``"module:qualname"`` lies under one of the ``allowed`` module prefixes (or is
    one of them exactly).

    >>> factory_allowed("acme.models.tab:make", ["acme.models"])
    True
    >>> factory_allowed("acme.modelsx:make", ["acme.models"]), factory_allowed("os:system", [])
    (False, False)
    >>> factory_allowed("acme.models:make", ["acme.models:make"])
    True
    >>> factory_allowed("driftloop.models.architectures:make_mlp", [])
    True
    """
    module_name = reference.partition(":")[0]
    return any(reference == p or module_name == p or module_name.startswith(p + ".")
               for p in (*allowed, _BUILT_IN) if p)


def load_factory(reference: str, allowed: Sequence[str] = ()) -> ModelFactory:
    """Import ``"module:qualname"`` and return the factory, when ``allowed`` lets it.

    >>> load_factory("os:system")
    Traceback (most recent call last):
    ...
    driftloop.errors.UsageError: model factory 'os:system' is not allowed: importing it would run code this machine's operator did not approve. If you trust it, add 'os' to security.model_factories (driftloop.yaml, or DRIFTLOOP_SECURITY__MODEL_FACTORIES='["os"]').
    """  # noqa: E501
    module_name, _, qualname = reference.partition(":")
    if not factory_allowed(reference, allowed):
        raise UsageError(
            f"model factory '{reference}' is not allowed: importing it would run code this "
            "machine's operator did not approve. If you trust it, add "
            f"'{module_name}' to security.model_factories (driftloop.yaml, or "
            f"DRIFTLOOP_SECURITY__MODEL_FACTORIES='[\"{module_name}\"]')."
        )
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise UsageError(
            f"model factory '{reference}' cannot be imported ({exc}). "
            "Check the module is on PYTHONPATH and the name is spelled right."
        ) from None
    return target  # type: ignore[no-any-return]


def build_model(name: str, inputs: dict[str, Any], n_outputs: int, *,
                allowed: Sequence[str] = ()) -> nn.Module:
    """Build the model called ``name``: a built-in name, or ``"module:function"`` under one of
    the ``allowed`` module prefixes (see :func:`load_factory`)."""
    factory = MODELS[name] if name in MODELS else load_factory(name, allowed)
    return factory(inputs, n_outputs)


__all__ = [
    "MODELS",
    "SequenceGRU",
    "SmallCNN",
    "TabularMLP",
    "build_model",
    "factory_allowed",
    "factory_reference",
    "load_factory",
    "make_cnn",
    "make_gru",
    "make_mlp",
    "make_mlp_small",
    "resolve_model_name",
]
