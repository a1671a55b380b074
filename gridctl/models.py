"""Turn an `nn.Sequential` into the Node's model spec, and its parameters into safetensors bytes.

    from gridctl.models import to_spec, to_weights
    spec = to_spec(model, input_shape=[10])   # JSON-ready dict, validated against the Node's schema
    weights = to_weights(model)               # optional initial weights

torch is imported inside the functions only: importing this module (or running `gridctl --help`) never loads
torch. The spec schema is the Node's own (`grid_runtime.compute.spec`, torch-free), so what passes here passes
there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from grid_runtime.compute.spec import LAYER_TYPES, REFUSED_LAYERS, SpecError, parse_spec

if TYPE_CHECKING:
    from torch import nn

__all__ = ["SpecConversionError", "to_spec", "to_weights"]


class SpecConversionError(SpecError):
    """The module cannot be expressed as a model spec; the message names each layer that cannot."""


def _layer_args(layer: nn.Module) -> dict[str, Any]:
    """The spec arguments of one allowlisted torch layer, read from its attributes."""
    name = type(layer).__name__
    a: Any = layer  # attributes are read by name below; the layer's class was checked to be torch's own
    if name == "Linear":
        return {"in_features": a.in_features, "out_features": a.out_features, "bias": a.bias is not None}
    if name in ("Conv1d", "Conv2d"):
        if a.padding_mode != "zeros":
            raise ValueError(f"padding_mode '{a.padding_mode}' is not supported (only 'zeros')")
        if isinstance(a.padding, str):
            raise ValueError(f"padding '{a.padding}' is not supported; give the padding as numbers")

        def one(value: tuple[int, ...]) -> Any:
            return value[0] if name == "Conv1d" else list(value)

        return {
            "in_channels": a.in_channels,
            "out_channels": a.out_channels,
            "kernel_size": one(a.kernel_size),
            "stride": one(a.stride),
            "padding": one(a.padding),
            "dilation": one(a.dilation),
            "groups": a.groups,
            "bias": a.bias is not None,
        }
    if name == "Embedding":
        if a.max_norm is not None or a.sparse or a.scale_grad_by_freq:
            raise ValueError("max_norm, sparse and scale_grad_by_freq are not supported")
        return {"num_embeddings": a.num_embeddings, "embedding_dim": a.embedding_dim, "padding_idx": a.padding_idx}
    if name == "LayerNorm":
        return {
            "normalized_shape": list(a.normalized_shape),
            "eps": a.eps,
            "elementwise_affine": a.elementwise_affine,
            "bias": a.bias is not None if a.elementwise_affine else True,
        }
    if name == "GroupNorm":
        return {"num_groups": a.num_groups, "num_channels": a.num_channels, "eps": a.eps, "affine": a.affine}
    if name in ("ReLU", "SiLU", "Tanh", "Sigmoid"):
        return {}
    if name == "LeakyReLU":
        return {"negative_slope": a.negative_slope}
    if name == "ELU":
        return {"alpha": a.alpha}
    if name == "GELU":
        return {"approximate": a.approximate}
    if name == "Softplus":
        return {"beta": a.beta, "threshold": a.threshold}
    if name in ("Softmax", "LogSoftmax"):
        if a.dim is None:
            raise ValueError("give dim explicitly (an implicit dim may be the batch dimension)")
        return {"dim": a.dim}
    if name == "Dropout":
        return {"p": a.p}
    if name == "Flatten":
        return {"start_dim": a.start_dim, "end_dim": a.end_dim}
    if name in ("MaxPool1d", "AvgPool1d", "MaxPool2d", "AvgPool2d"):
        if name.startswith("MaxPool") and (a.dilation not in (1, (1, 1)) or a.return_indices or a.ceil_mode):
            raise ValueError("dilation, return_indices and ceil_mode are not supported")
        if name.startswith("AvgPool") and (a.ceil_mode or not a.count_include_pad):
            raise ValueError("ceil_mode and count_include_pad=False are not supported")
        if name.startswith("AvgPool") and name.endswith("2d") and a.divisor_override is not None:
            raise ValueError("divisor_override is not supported")

        def norm(value: Any) -> Any:
            if isinstance(value, tuple | list):
                return value[0] if name.endswith("1d") else list(value)
            return value

        stride = a.stride
        return {
            "kernel_size": norm(a.kernel_size),
            "stride": None if stride is None else norm(stride),
            "padding": norm(a.padding),
        }
    raise ValueError("no converter")  # unreachable: the caller checked the name


def to_spec(module: nn.Module, *, input_shape: Sequence[int] | None = None) -> dict[str, Any]:
    """The model spec (a JSON-ready dict) of an `nn.Sequential` of allowlisted torch layers.

    `input_shape` is the shape of one input row (without the batch dimension); with it, the Node can check
    that the layers fit together and show each layer's output shape. Raises SpecConversionError naming every
    layer it cannot convert, e.g. "layer 3 (BatchNorm1d) is not allowed: it mixes rows of a batch".
    """
    from torch import nn

    if type(module) is not nn.Sequential:
        raise SpecConversionError(
            f"only torch.nn.Sequential models can be converted, got {type(module).__name__}; "
            "write the model as nn.Sequential(layer, layer, ...)"
        )
    problems: list[str] = []
    layers: list[dict[str, Any]] = []
    for index, layer in enumerate(module):
        kind = type(layer).__name__
        if kind in REFUSED_LAYERS:
            problems.append(f"layer {index} ({kind}) is not allowed: {REFUSED_LAYERS[kind]}")
            continue
        torch_class = getattr(nn, kind, None)
        if kind not in LAYER_TYPES:
            problems.append(f"layer {index} ({kind}) is not an allowed layer type")
            continue
        if type(layer) is not torch_class:
            problems.append(
                f"layer {index} ({kind}) is a custom subclass, not torch.nn.{kind}: its code cannot be sent"
            )
            continue
        try:
            layers.append({"type": kind, **_layer_args(layer)})
        except ValueError as exc:
            problems.append(f"layer {index} ({kind}) cannot be converted: {exc}")
    if problems:
        raise SpecConversionError("; ".join(problems))
    data: dict[str, Any] = {"layers": layers}
    if input_shape is not None:
        data["input_shape"] = [int(d) for d in input_shape]
    try:
        spec = parse_spec(data)
    except SpecError as exc:
        raise SpecConversionError(str(exc)) from None
    return spec.model_dump(mode="json", exclude_none=True)


def to_weights(module: nn.Module) -> bytes:
    """The module's parameters as safetensors bytes, to send as a spec's initial weights."""
    from safetensors.torch import save

    state = {name: tensor.detach().cpu().contiguous() for name, tensor in module.state_dict().items()}
    return save(state)
