import pytest
import torch

from driftloop.errors import UsageError
from driftloop.models.architectures import (
    build_model,
    factory_reference,
    load_factory,
    make_mlp,
    resolve_model_name,
)


def test_auto_picks_by_input_kind():
    assert [resolve_model_name("auto", k) for k in ("table", "image", "sequence")] == [
        "mlp", "cnn", "gru",
    ]


def test_unknown_model_lists_available_names():
    with pytest.raises(UsageError, match="Available names: auto, mlp, mlp-small, cnn, gru"):
        resolve_model_name("resnet", "table")


@pytest.mark.parametrize(
    "name,inputs,args",
    [
        ("mlp", {"n_numeric": 4, "cardinalities": [3, 5]},
         (torch.zeros(6, 4), torch.zeros(6, 2, dtype=torch.long))),
        ("mlp-small", {"n_numeric": 4, "cardinalities": [3]},
         (torch.zeros(6, 4), torch.zeros(6, 1, dtype=torch.long))),
        ("cnn", {"shape": [1, 8, 8]}, (torch.zeros(6, 1, 8, 8),)),
        ("gru", {"shape": [5, 3]}, (torch.zeros(6, 5, 3),)),
    ],
)
def test_builtin_models_output_shape(name, inputs, args):
    assert build_model(name, inputs, 3)(*args).shape == (6, 3)


def test_factory_reference_round_trip():
    ref = factory_reference(make_mlp)
    assert ref == "driftloop.models.architectures:make_mlp"
    assert load_factory(ref) is make_mlp


def test_local_factory_is_refused_with_a_reason():
    def local(inputs, n):  # not importable by another process
        return torch.nn.Linear(1, n)

    with pytest.raises(UsageError, match="cannot be imported by the worker processes"):
        factory_reference(local)


def test_missing_factory_module_is_a_usage_error():
    with pytest.raises(UsageError, match="no_such_module"):
        load_factory("no_such_module:f")
