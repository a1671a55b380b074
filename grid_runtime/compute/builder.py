"""Build the `nn.Module` of a model spec on the Node, and load initial weights safely.

No user code runs: each allowlisted layer name maps to a fixed constructor below, called with the spec's
validated arguments. Weights come as safetensors (no pickle) and must match the built module exactly; after the
cast to the module's dtype (float32) every value must be finite and at most ``MAX_INITIAL_WEIGHT`` in magnitude.

A user's ``seed`` seeds the initialisation of the parameters and nothing else (see `training` for where the
rest of a run's randomness comes from); without one, the initialisation is seeded from ``os.urandom``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from grid_runtime.compute import spec as s
from grid_runtime.compute.contracts import MAX_INITIAL_WEIGHT


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list | tuple) else value


_CONSTRUCTORS: dict[type[s._Layer], Callable[[Any], nn.Module]] = {
    s.Linear: lambda x: nn.Linear(x.in_features, x.out_features, bias=x.bias),
    s.Conv1d: lambda x: nn.Conv1d(
        x.in_channels,
        x.out_channels,
        x.kernel_size,
        stride=x.stride,
        padding=x.padding,
        dilation=x.dilation,
        groups=x.groups,
        bias=x.bias,
    ),
    s.Conv2d: lambda x: nn.Conv2d(
        x.in_channels,
        x.out_channels,
        _tuple(x.kernel_size),
        stride=_tuple(x.stride),
        padding=_tuple(x.padding),
        dilation=_tuple(x.dilation),
        groups=x.groups,
        bias=x.bias,
    ),
    s.Embedding: lambda x: nn.Embedding(x.num_embeddings, x.embedding_dim, padding_idx=x.padding_idx),
    s.LayerNorm: lambda x: nn.LayerNorm(
        list(x.normalized_shape), eps=x.eps, elementwise_affine=x.elementwise_affine, bias=x.bias
    ),
    s.GroupNorm: lambda x: nn.GroupNorm(x.num_groups, x.num_channels, eps=x.eps, affine=x.affine),
    s.ReLU: lambda x: nn.ReLU(),
    s.LeakyReLU: lambda x: nn.LeakyReLU(x.negative_slope),
    s.ELU: lambda x: nn.ELU(x.alpha),
    s.GELU: lambda x: nn.GELU(approximate=x.approximate),
    s.SiLU: lambda x: nn.SiLU(),
    s.Tanh: lambda x: nn.Tanh(),
    s.Sigmoid: lambda x: nn.Sigmoid(),
    s.Softplus: lambda x: nn.Softplus(beta=x.beta, threshold=x.threshold),
    s.Softmax: lambda x: nn.Softmax(dim=x.dim),
    s.LogSoftmax: lambda x: nn.LogSoftmax(dim=x.dim),
    s.Dropout: lambda x: nn.Dropout(x.p),
    s.Flatten: lambda x: nn.Flatten(x.start_dim, x.end_dim),
    s.MaxPool1d: lambda x: nn.MaxPool1d(x.kernel_size, stride=x.stride, padding=x.padding),
    s.AvgPool1d: lambda x: nn.AvgPool1d(x.kernel_size, stride=x.stride, padding=x.padding),
    s.MaxPool2d: lambda x: nn.MaxPool2d(_tuple(x.kernel_size), stride=_tuple(x.stride), padding=_tuple(x.padding)),
    s.AvgPool2d: lambda x: nn.AvgPool2d(_tuple(x.kernel_size), stride=_tuple(x.stride), padding=_tuple(x.padding)),
}
assert set(_CONSTRUCTORS) == set(s.LAYER_TYPES.values()), "every allowlisted layer needs a constructor"


def build_module(spec: s.ModelSpec | dict[str, Any], weights: bytes | None = None, *,
                 seed: int | None = None) -> nn.Sequential:
    """The `nn.Sequential` a spec describes, with the given weights or freshly initialized parameters: from
    ``seed`` when given (the same seed, the same parameters), else from a seed drawn from ``os.urandom``.
    The caller's global random state is left as it was."""
    model_spec = s.parse_spec(spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed if seed is not None else int.from_bytes(os.urandom(8), "little") >> 1)
        module = nn.Sequential(*(_CONSTRUCTORS[type(layer)](layer) for layer in model_spec.layers))
    if weights is not None:
        load_weights(module, weights)
    return module


def load_weights(module: nn.Module, weights: bytes) -> None:
    """Load safetensors bytes into `module`: the same names, shapes and a floating dtype, or SpecError."""
    if len(weights) > s.MAX_WEIGHTS_BYTES:
        raise s.SpecError(f"weights are larger than {s.MAX_WEIGHTS_BYTES:,} bytes")
    try:
        tensors = load_safetensors(weights)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise s.SpecError(f"weights are not a valid safetensors file: {exc}") from None
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(missing[:10]))
        if unexpected:
            parts.append("unexpected " + ", ".join(unexpected[:10]))
        raise s.SpecError("weights do not match the model: " + "; ".join(parts))
    for name, tensor in tensors.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise s.SpecError(
                f"weights do not match the model: {name} has shape {list(tensor.shape)}, "
                f"the model needs {list(expected[name].shape)}"
            )
        if not tensor.dtype.is_floating_point:
            raise s.SpecError(f"weights do not match the model: {name} has dtype {tensor.dtype}, expected floats")
    converted = {name: tensor.to(expected[name].dtype) for name, tensor in tensors.items()}
    for name, tensor in converted.items():  # checked after the cast: a float64 1e39 is inf in float32
        if not torch.isfinite(tensor).all():
            raise s.SpecError(f"initial weights: {name} has values that are not finite as "
                              f"{str(tensor.dtype).removeprefix('torch.')}")
        if tensor.numel() and float(tensor.abs().max()) > MAX_INITIAL_WEIGHT:
            raise s.SpecError(f"initial weights: {name} has values above {MAX_INITIAL_WEIGHT:g} in magnitude; "
                              f"the limit is |w| <= {MAX_INITIAL_WEIGHT:g}")
    module.load_state_dict(converted, strict=True)


def weights_bytes(module: nn.Module) -> bytes:
    """The module's parameters as safetensors bytes (contiguous CPU copies)."""
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in module.state_dict().items()}
    return save_safetensors(state)
