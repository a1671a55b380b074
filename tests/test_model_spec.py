"""Model specs: the SDK's to_spec, the Node's builder, weights, refusals and the layer table."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from safetensors.torch import save
from torch import nn

from grid_runtime.compute.builder import build_module, load_weights
from grid_runtime.compute.contracts import MAX_INITIAL_WEIGHT
from grid_runtime.compute.spec import MAX_PARAMETERS, SpecError, layer_table, parse_spec
from gridctl.models import SpecConversionError, to_spec, to_weights


def mlp() -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(10, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 16), nn.GELU(), nn.LayerNorm(16), nn.Linear(16, 3)
    )


def cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.GroupNorm(2, 4),
        nn.SiLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, (3, 3)),
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32, 5),
        nn.LogSoftmax(dim=1),
    )


def seq1d() -> nn.Sequential:
    return nn.Sequential(
        nn.Embedding(50, 8),
        nn.Flatten(),
        nn.Linear(8 * 12, 24),
        nn.LeakyReLU(0.2),
        nn.Sigmoid(),
        nn.Linear(24, 2),
        nn.Softmax(dim=-1),
    )


def conv1d() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(3, 6, 5, stride=2),
        nn.ELU(),
        nn.MaxPool1d(2),
        nn.AvgPool1d(2),
        nn.Flatten(),
        nn.Linear(6 * 3, 1),
        nn.Softplus(),
    )


class TestRoundTrip:
    @pytest.mark.parametrize(
        ("make", "input_shape", "example"),
        [
            (mlp, [10], lambda: torch.randn(7, 10)),
            (cnn, [1, 12, 12], lambda: torch.randn(4, 1, 12, 12)),
            (seq1d, [12], lambda: torch.randint(0, 50, (5, 12))),
            (conv1d, [3, 30], lambda: torch.randn(6, 3, 30)),
        ],
    )
    def test_module_to_spec_to_module_gives_the_same_outputs(self, make, input_shape, example):
        torch.manual_seed(0)
        original = make().eval()
        spec = to_spec(original, input_shape=input_shape)
        rebuilt = build_module(spec, to_weights(original)).eval()
        x = example()
        assert torch.equal(original(x), rebuilt(x))
        assert [type(m) for m in rebuilt] == [type(m) for m in original]

    def test_spec_is_plain_json_that_parses_again(self):
        import json

        spec = to_spec(mlp(), input_shape=[10])
        again = json.loads(json.dumps(spec))
        assert parse_spec(again).model_dump(mode="json", exclude_none=True) == spec


class TestToSpecRefusals:
    def test_names_the_batchnorm_layer_and_why(self):
        model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.BatchNorm1d(4))
        with pytest.raises(
            SpecConversionError, match=r"layer 3 \(BatchNorm1d\) is not allowed: it mixes rows of a batch"
        ):
            to_spec(model)

    def test_names_every_layer_it_cannot_convert(self):
        class Custom(nn.Module):
            def forward(self, x):
                return x

        class MyLinear(nn.Linear):
            pass

        model = nn.Sequential(nn.Linear(4, 4), Custom(), MyLinear(4, 4), nn.LSTM(4, 4))
        with pytest.raises(SpecConversionError) as info:
            to_spec(model)
        message = str(info.value)
        assert "layer 1 (Custom) is not an allowed layer type" in message
        assert "layer 2 (MyLinear)" in message
        assert "layer 3 (LSTM) is not allowed" in message

    def test_refuses_a_custom_subclass_of_an_allowed_layer(self):
        class Sneaky(nn.ReLU):
            def forward(self, x):
                return x * 2

        Sneaky.__name__ = "ReLU"
        with pytest.raises(SpecConversionError, match="custom subclass"):
            to_spec(nn.Sequential(nn.Linear(2, 2), Sneaky()))

    def test_refuses_a_model_that_is_not_sequential(self):
        with pytest.raises(SpecConversionError, match="only torch.nn.Sequential"):
            to_spec(nn.Linear(3, 3))

    def test_refuses_layers_that_do_not_fit_the_input_shape(self):
        with pytest.raises(SpecConversionError, match=r"layer 2 \(Linear\) expects 16 input features"):
            to_spec(nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(16, 2)), input_shape=[10])


class TestSpecValidation:
    @pytest.mark.parametrize(
        ("spec", "message"),
        [
            (
                {"layers": [{"type": "BatchNorm2d", "num_features": 3}]},
                r"layer 0 \(BatchNorm2d\) is not allowed: it mixes rows",
            ),
            (
                {"layers": [{"type": "Linear", "in_features": 2, "out_features": 2}, {"type": "Lambda"}]},
                r"layer 1 \(Lambda\) is not an allowed layer type",
            ),
            (
                {"layers": [{"type": "torch.nn.Linear", "in_features": 2, "out_features": 2}]},
                "not an allowed layer type",
            ),
            ({"layers": [{"type": "Linear", "in_features": 4}]}, "layers.0.Linear.out_features: Field required"),
            ({"layers": [{"type": "Linear", "in_features": "4", "out_features": 2}]}, "layers.0.Linear.in_features"),
            ({"layers": [{"type": "Linear", "in_features": 0, "out_features": 2}]}, "greater than or equal to 1"),
            ({"layers": [{"type": "Linear", "in_features": 4, "out_features": 10**9}]}, "less than or equal to 65536"),
            (
                {"layers": [{"type": "Linear", "in_features": 60000, "out_features": 60000}]},
                f"the limit is {MAX_PARAMETERS:,}",
            ),
            (
                {"layers": [{"type": "Linear", "in_features": 4, "out_features": 2, "init": "os.system"}]},
                "init: Extra inputs are not permitted",
            ),
            ({"layers": [{"type": "ReLU"}], "code": "print(1)"}, "code: Extra inputs are not permitted"),
            ({"layers": []}, "at least 1 item"),
            ({"layers": [{"type": "ReLU"}] * 65}, "at most 64 items"),
            ({"layers": [{"type": "Softmax", "dim": 0}]}, "mixes rows of a batch"),
            ({"layers": [{"type": "Flatten", "start_dim": 0}]}, "start_dim"),
            ({"layers": [{"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 1000}]}, "kernel_size"),
            ({"layers": [{"type": "GroupNorm", "num_groups": 3, "num_channels": 4}]}, "divisible by num_groups"),
            ({"layers": ["Linear"]}, "layer 0 must be an object"),
            (
                {
                    "input_shape": [3, 8, 8],
                    "layers": [{"type": "Conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 3}],
                },
                r"layer 0 \(Conv2d\) expects rows of shape \[1, height, width\]",
            ),
        ],
    )
    def test_malformed_or_disallowed_spec_is_refused_with_a_clear_message(self, spec, message):
        with pytest.raises(SpecError, match=message):
            parse_spec(spec)
        with pytest.raises(SpecError, match=message):
            build_module(spec)


class TestWeights:
    def test_weights_with_a_wrong_shape_are_refused(self):
        module = build_module(to_spec(mlp()))
        state = {k: v.clone() for k, v in module.state_dict().items()}
        state["0.weight"] = torch.zeros(32, 11)
        with pytest.raises(SpecError, match=r"0.weight has shape \[32, 11\], the model needs \[32, 10\]"):
            load_weights(module, save(state))

    def test_missing_and_unexpected_weights_are_refused(self):
        module = build_module(to_spec(mlp()))
        state = {k: v.clone() for k, v in module.state_dict().items()}
        del state["0.bias"]
        state["evil"] = torch.zeros(1)
        with pytest.raises(SpecError, match="missing 0.bias; unexpected evil"):
            load_weights(module, save(state))

    def test_bytes_that_are_not_safetensors_are_refused(self):
        import pickle

        module = build_module(to_spec(mlp()))
        with pytest.raises(SpecError, match="not a valid safetensors file"):
            load_weights(module, pickle.dumps(module.state_dict()))

    def test_non_finite_weights_are_refused(self):
        module = build_module(to_spec(mlp()))
        state = {k: v.clone() for k, v in module.state_dict().items()}
        state["0.bias"][0] = float("nan")
        with pytest.raises(SpecError, match="not finite"):
            load_weights(module, save(state))

    def test_weights_that_overflow_the_training_dtype_are_refused(self):
        """Finite as float64, infinite once cast to the module's float32: checked after the cast."""
        module = build_module(to_spec(mlp()))
        state = {k: v.double() for k, v in module.state_dict().items()}
        state["0.weight"][0, 0] = 1e39
        assert torch.isfinite(state["0.weight"]).all()
        with pytest.raises(SpecError, match="0.weight has values that are not finite as float32"):
            load_weights(module, save(state))

    def test_weights_above_the_magnitude_limit_are_refused(self):
        module = build_module(to_spec(mlp()))
        state = {k: v.clone() for k, v in module.state_dict().items()}
        state["3.bias"][1] = -(MAX_INITIAL_WEIGHT * 1.5)
        with pytest.raises(SpecError, match="3.bias has values above 10000 in magnitude"):
            load_weights(module, save(state))
        state["3.bias"][1] = -MAX_INITIAL_WEIGHT  # the limit itself is allowed
        load_weights(module, save(state))
        assert float(module.state_dict()["3.bias"][1]) == -MAX_INITIAL_WEIGHT


class TestInitialisation:
    def test_a_seed_gives_the_same_parameters_and_leaves_the_global_generator_alone(self):
        spec = to_spec(mlp())
        torch.manual_seed(123)
        expected_next = torch.rand(1)
        torch.manual_seed(123)
        first = build_module(spec, seed=5)
        assert torch.equal(torch.rand(1), expected_next)
        second = build_module(spec, seed=5)
        other = build_module(spec, seed=6)
        for name, tensor in first.state_dict().items():
            assert torch.equal(tensor, second.state_dict()[name])
        assert not torch.equal(first.state_dict()["0.weight"], other.state_dict()["0.weight"])

    def test_without_a_seed_the_global_seed_does_not_decide_the_parameters(self):
        torch.manual_seed(0)
        first = build_module(to_spec(mlp()))
        torch.manual_seed(0)
        second = build_module(to_spec(mlp()))
        assert not torch.equal(first.state_dict()["0.weight"], second.state_dict()["0.weight"])


class TestLayerTable:
    def test_rows_give_output_shapes_and_parameter_counts(self):
        model = cnn()
        rows = layer_table(to_spec(model, input_shape=[1, 12, 12]))
        assert [r["layer"] for r in rows] == [type(m).__name__ for m in model]
        assert [r["parameters"] for r in rows] == [sum(p.numel() for p in m.parameters()) for m in model]
        x = torch.randn(2, 1, 12, 12)
        for row, layer in zip(rows, model, strict=True):
            x = layer(x)
            assert row["output_shape"] == list(x.shape[1:]), row
        assert rows[0]["args"]["out_channels"] == 4 and rows[0]["index"] == 0

    def test_output_shapes_are_unknown_without_an_input_shape(self):
        rows = layer_table(to_spec(mlp()))
        assert all(r["output_shape"] is None for r in rows)
        assert sum(r["parameters"] for r in rows) == sum(p.numel() for p in mlp().parameters())


class TestLightImports:
    def test_sdk_models_module_and_spec_schema_do_not_import_torch(self):
        code = (
            "import sys, gridctl.models, grid_runtime.compute.spec; "
            "from gridctl.cli.app import main; "
            "assert 'torch' not in sys.modules, 'torch imported'"
        )
        subprocess.run([sys.executable, "-c", code], check=True)
