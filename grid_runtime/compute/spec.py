"""The model spec: a JSON list of allowlisted layers, validated without torch.

This module is the public schema shared by the Node (which builds the module, `grid_runtime.compute.builder`)
and the SDK (`gridctl.models.to_spec`). It imports pydantic only, never torch, so the CLI stays fast.

Only layers that treat each row of a batch on its own are allowed: per-sample gradients (DP-SGD) and the
privacy accounting assume a row's output depends on that row alone. So no BatchNorm (it normalizes across the
batch), no Softmax over the batch dimension, no Flatten that merges the batch dimension.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# The size limits live with the Node-Worker contract (the API schema needs them without this module).
from grid_runtime.compute.contracts import MAX_PARAMETERS as MAX_PARAMETERS
from grid_runtime.compute.contracts import MAX_WEIGHTS_BYTES as MAX_WEIGHTS_BYTES

SPEC_FORMAT = "gridctl.model-spec/1"
MAX_LAYERS = 64
MAX_FEATURES = 65_536
MAX_CHANNELS = 4_096
MAX_KERNEL = 64
MAX_EMBEDDINGS = 1_000_000
MAX_INPUT_DIM = 1_000_000
MAX_INPUT_ELEMENTS = 50_000_000

Features = Annotated[int, Field(ge=1, le=MAX_FEATURES)]
Channels = Annotated[int, Field(ge=1, le=MAX_CHANNELS)]
Kernel = Annotated[int, Field(ge=1, le=MAX_KERNEL)]
Padding = Annotated[int, Field(ge=0, le=MAX_KERNEL)]
Kernel2d = Kernel | Annotated[list[Kernel], Field(min_length=2, max_length=2)]
Padding2d = Padding | Annotated[list[Padding], Field(min_length=2, max_length=2)]
Probability = Annotated[float, Field(ge=0.0, lt=1.0)]
Eps = Annotated[float, Field(gt=0.0, le=1.0)]
# Dimensions that leave the batch (dim 0) alone: positive dims >= 1 or negative dims.
RowDim = Annotated[int, Field(ge=-8, le=8)]

# Layers people reach for that are refused, with the reason the user reads.
REFUSED_LAYERS: dict[str, str] = {
    "BatchNorm1d": "it mixes rows of a batch",
    "BatchNorm2d": "it mixes rows of a batch",
    "BatchNorm3d": "it mixes rows of a batch",
    "SyncBatchNorm": "it mixes rows of a batch",
    "LazyBatchNorm1d": "it mixes rows of a batch",
    "InstanceNorm1d": "it keeps running statistics across batches; use GroupNorm",
    "InstanceNorm2d": "it keeps running statistics across batches; use GroupNorm",
    "MultiheadAttention": "it is not in the allowlist of layers the Node builds",
    "LSTM": "recurrent layers are not in the allowlist",
    "GRU": "recurrent layers are not in the allowlist",
    "RNN": "recurrent layers are not in the allowlist",
    "Sequential": "nested Sequential is not supported; flatten it into one list of layers",
}


class SpecError(ValueError):
    """A model spec the Node refuses; the message says which layer and why."""


class _Layer(BaseModel):
    # strict: "4" is not 4 and true is not 1; a spec says exactly what it means.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    def parameter_count(self) -> int:
        return 0

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of one row's output given one row's input shape (no batch dimension)."""
        return shape


class Linear(_Layer):
    type: Literal["Linear"]
    in_features: Features
    out_features: Features
    bias: bool = True

    def parameter_count(self) -> int:
        return self.in_features * self.out_features + (self.out_features if self.bias else 0)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if not shape or shape[-1] != self.in_features:
            raise SpecError(f"expects {self.in_features} input features, gets shape {list(shape)}")
        return (*shape[:-1], self.out_features)


def _pair(value: int | list[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def _conv_length(length: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (length + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


class _Conv(_Layer):
    in_channels: Channels
    out_channels: Channels
    groups: Annotated[int, Field(ge=1, le=MAX_CHANNELS)] = 1
    bias: bool = True

    @model_validator(mode="after")
    def _groups_divide(self) -> _Conv:
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError("in_channels and out_channels must be divisible by groups")
        return self


class Conv1d(_Conv):
    type: Literal["Conv1d"]
    kernel_size: Kernel
    stride: Kernel = 1
    padding: Padding = 0
    dilation: Kernel = 1

    def parameter_count(self) -> int:
        weights = self.out_channels * (self.in_channels // self.groups) * self.kernel_size
        return weights + (self.out_channels if self.bias else 0)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 2 or shape[0] != self.in_channels:
            raise SpecError(f"expects rows of shape [{self.in_channels}, length], gets {list(shape)}")
        length = _conv_length(shape[1], self.kernel_size, self.stride, self.padding, self.dilation)
        if length < 1:
            raise SpecError(f"input length {shape[1]} is too short for this kernel")
        return (self.out_channels, length)


class Conv2d(_Conv):
    type: Literal["Conv2d"]
    kernel_size: Kernel2d
    stride: Kernel2d = 1
    padding: Padding2d = 0
    dilation: Kernel2d = 1

    def parameter_count(self) -> int:
        kh, kw = _pair(self.kernel_size)
        weights = self.out_channels * (self.in_channels // self.groups) * kh * kw
        return weights + (self.out_channels if self.bias else 0)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 3 or shape[0] != self.in_channels:
            raise SpecError(f"expects rows of shape [{self.in_channels}, height, width], gets {list(shape)}")
        k, s, p, d = (_pair(v) for v in (self.kernel_size, self.stride, self.padding, self.dilation))
        out = tuple(_conv_length(shape[1 + i], k[i], s[i], p[i], d[i]) for i in range(2))
        if min(out) < 1:
            raise SpecError(f"input {list(shape[1:])} is too small for this kernel")
        return (self.out_channels, *out)


class Embedding(_Layer):
    type: Literal["Embedding"]
    num_embeddings: Annotated[int, Field(ge=1, le=MAX_EMBEDDINGS)]
    embedding_dim: Features
    padding_idx: int | None = None

    @model_validator(mode="after")
    def _padding_in_range(self) -> Embedding:
        if self.padding_idx is not None and not (-self.num_embeddings <= self.padding_idx < self.num_embeddings):
            raise ValueError("padding_idx must be within num_embeddings")
        return self

    def parameter_count(self) -> int:
        return self.num_embeddings * self.embedding_dim

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (*shape, self.embedding_dim)


class LayerNorm(_Layer):
    type: Literal["LayerNorm"]
    normalized_shape: list[Features] = Field(min_length=1, max_length=4)
    eps: Eps = 1e-5
    elementwise_affine: bool = True
    bias: bool = True

    def parameter_count(self) -> int:
        if not self.elementwise_affine:
            return 0
        size = math.prod(self.normalized_shape)
        return size * (2 if self.bias else 1)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        n = len(self.normalized_shape)
        if tuple(shape[-n:]) != tuple(self.normalized_shape) or len(shape) < n:
            raise SpecError(f"normalizes over {self.normalized_shape}, gets rows of shape {list(shape)}")
        return shape


class GroupNorm(_Layer):
    type: Literal["GroupNorm"]
    num_groups: Channels
    num_channels: Channels
    eps: Eps = 1e-5
    affine: bool = True

    @model_validator(mode="after")
    def _groups_divide(self) -> GroupNorm:
        if self.num_channels % self.num_groups:
            raise ValueError("num_channels must be divisible by num_groups")
        return self

    def parameter_count(self) -> int:
        return 2 * self.num_channels if self.affine else 0

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if not shape or shape[0] != self.num_channels:
            raise SpecError(f"expects {self.num_channels} channels first, gets rows of shape {list(shape)}")
        return shape


class ReLU(_Layer):
    type: Literal["ReLU"]


class LeakyReLU(_Layer):
    type: Literal["LeakyReLU"]
    negative_slope: Annotated[float, Field(ge=0.0, le=1.0)] = 0.01


class ELU(_Layer):
    type: Literal["ELU"]
    alpha: Annotated[float, Field(gt=0.0, le=10.0)] = 1.0


class GELU(_Layer):
    type: Literal["GELU"]
    approximate: Literal["none", "tanh"] = "none"


class SiLU(_Layer):
    type: Literal["SiLU"]


class Tanh(_Layer):
    type: Literal["Tanh"]


class Sigmoid(_Layer):
    type: Literal["Sigmoid"]


class Softplus(_Layer):
    type: Literal["Softplus"]
    beta: Annotated[float, Field(gt=0.0, le=100.0)] = 1.0
    threshold: Annotated[float, Field(gt=0.0, le=100.0)] = 20.0


class _RowSoftmax(_Layer):
    dim: RowDim = -1

    @model_validator(mode="after")
    def _not_batch_dim(self) -> _RowSoftmax:
        if self.dim == 0:
            raise ValueError("dim 0 is the batch dimension: a softmax over it mixes rows of a batch")
        return self


class Softmax(_RowSoftmax):
    type: Literal["Softmax"]


class LogSoftmax(_RowSoftmax):
    type: Literal["LogSoftmax"]


class Dropout(_Layer):
    type: Literal["Dropout"]
    p: Probability = 0.5


class Flatten(_Layer):
    type: Literal["Flatten"]
    start_dim: Annotated[int, Field(ge=1, le=8)] = 1
    end_dim: RowDim = -1

    @model_validator(mode="after")
    def _not_batch_dim(self) -> Flatten:
        if self.end_dim == 0:
            raise ValueError("end_dim 0 is the batch dimension: flattening it mixes rows of a batch")
        return self

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        # start_dim/end_dim count the batch dimension; the row shape does not.
        rank = len(shape) + 1
        start = self.start_dim
        end = self.end_dim if self.end_dim >= 0 else rank + self.end_dim
        if not (1 <= start <= end < rank):
            raise SpecError(f"cannot flatten dims {self.start_dim}..{self.end_dim} of rows of shape {list(shape)}")
        s, e = start - 1, end - 1
        return (*shape[:s], math.prod(shape[s : e + 1]), *shape[e + 1 :])


class _Pool1d(_Layer):
    kernel_size: Kernel
    stride: Kernel | None = None
    padding: Padding = 0

    @model_validator(mode="after")
    def _padding_at_most_half_kernel(self) -> _Pool1d:
        if self.padding * 2 > self.kernel_size:
            raise ValueError("padding must be at most half of kernel_size")
        return self

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 2:
            raise SpecError(f"expects rows of shape [channels, length], gets {list(shape)}")
        stride = self.stride or self.kernel_size
        length = _conv_length(shape[1], self.kernel_size, stride, self.padding, 1)
        if length < 1:
            raise SpecError(f"input length {shape[1]} is too short for this pool")
        return (shape[0], length)


class MaxPool1d(_Pool1d):
    type: Literal["MaxPool1d"]


class AvgPool1d(_Pool1d):
    type: Literal["AvgPool1d"]


class _Pool2d(_Layer):
    kernel_size: Kernel2d
    stride: Kernel2d | None = None
    padding: Padding2d = 0

    @model_validator(mode="after")
    def _padding_at_most_half_kernel(self) -> _Pool2d:
        if any(p * 2 > k for p, k in zip(_pair(self.padding), _pair(self.kernel_size), strict=True)):
            raise ValueError("padding must be at most half of kernel_size")
        return self

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) != 3:
            raise SpecError(f"expects rows of shape [channels, height, width], gets {list(shape)}")
        k, p = _pair(self.kernel_size), _pair(self.padding)
        s = _pair(self.stride) if self.stride is not None else k
        out = tuple(_conv_length(shape[1 + i], k[i], s[i], p[i], 1) for i in range(2))
        if min(out) < 1:
            raise SpecError(f"input {list(shape[1:])} is too small for this pool")
        return (shape[0], *out)


class MaxPool2d(_Pool2d):
    type: Literal["MaxPool2d"]


class AvgPool2d(_Pool2d):
    type: Literal["AvgPool2d"]


LayerSpec = Annotated[
    Linear
    | Conv1d
    | Conv2d
    | Embedding
    | LayerNorm
    | GroupNorm
    | ReLU
    | LeakyReLU
    | ELU
    | GELU
    | SiLU
    | Tanh
    | Sigmoid
    | Softplus
    | Softmax
    | LogSoftmax
    | Dropout
    | Flatten
    | MaxPool1d
    | AvgPool1d
    | MaxPool2d
    | AvgPool2d,
    Field(discriminator="type"),
]

LAYER_TYPES: dict[str, type[_Layer]] = {
    cls.model_fields["type"].annotation.__args__[0]: cls  # type: ignore[union-attr]
    for cls in (
        Linear,
        Conv1d,
        Conv2d,
        Embedding,
        LayerNorm,
        GroupNorm,
        ReLU,
        LeakyReLU,
        ELU,
        GELU,
        SiLU,
        Tanh,
        Sigmoid,
        Softplus,
        Softmax,
        LogSoftmax,
        Dropout,
        Flatten,
        MaxPool1d,
        AvgPool1d,
        MaxPool2d,
        AvgPool2d,
    )
}
"""The allowlist: layer type name -> its schema. The builder maps the same names to torch constructors."""


class ModelSpec(BaseModel):
    """A model: an ordered list of allowlisted layers, optionally with the shape of one input row."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    format: Literal["gridctl.model-spec/1"] = "gridctl.model-spec/1"
    input_shape: list[Annotated[int, Field(ge=1, le=MAX_INPUT_DIM)]] | None = Field(
        default=None, min_length=1, max_length=4
    )
    layers: list[LayerSpec] = Field(min_length=1, max_length=MAX_LAYERS)

    @model_validator(mode="before")
    @classmethod
    def _name_refused_layers(cls, data: Any) -> Any:
        # Runs before the union is parsed so that the message names the layer and the reason, instead of
        # pydantic's "does not match any of the expected tags".
        if isinstance(data, dict) and isinstance(data.get("layers"), list):
            for index, layer in enumerate(data["layers"]):
                if not isinstance(layer, dict):
                    raise ValueError(f"layer {index} must be an object with a 'type'")
                kind = layer.get("type")
                if not isinstance(kind, str):
                    raise ValueError(f"layer {index} has no 'type'")
                if kind in REFUSED_LAYERS:
                    raise ValueError(f"layer {index} ({kind}) is not allowed: {REFUSED_LAYERS[kind]}")
                if kind not in LAYER_TYPES:
                    raise ValueError(
                        f"layer {index} ({kind[:64]}) is not an allowed layer type; allowed: "
                        + ", ".join(sorted(LAYER_TYPES))
                    )
        return data

    @model_validator(mode="after")
    def _within_limits(self) -> ModelSpec:
        total = self.parameter_count()
        if total > MAX_PARAMETERS:
            raise ValueError(f"the model has {total:,} parameters; the limit is {MAX_PARAMETERS:,}")
        if self.input_shape is not None:
            if math.prod(self.input_shape) > MAX_INPUT_ELEMENTS:
                raise ValueError(f"input_shape has more than {MAX_INPUT_ELEMENTS:,} elements")
            _ = self.output_shapes()  # raises SpecError naming the layer whose input does not fit
        return self

    def parameter_count(self) -> int:
        return sum(layer.parameter_count() for layer in self.layers)

    def output_shapes(self) -> list[tuple[int, ...] | None]:
        """Each layer's output shape for one row, or None for all when input_shape is unknown."""
        if self.input_shape is None:
            return [None] * len(self.layers)
        shape: tuple[int, ...] = tuple(self.input_shape)
        shapes: list[tuple[int, ...] | None] = []
        for index, layer in enumerate(self.layers):
            try:
                shape = layer.output_shape(shape)
            except SpecError as exc:
                raise SpecError(f"layer {index} ({layer.type}) {exc}") from None
            shapes.append(shape)
        return shapes


def parse_spec(data: Any) -> ModelSpec:
    """Validate a spec from JSON data; raises SpecError with one message naming each problem."""
    if isinstance(data, ModelSpec):
        return data
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_format_errors(exc)) from None
    except SpecError:
        raise


def _format_errors(exc: ValidationError) -> str:
    messages = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        messages.append(f"{location}: {message}" if location else message)
    return "invalid model spec: " + "; ".join(messages[:5]) + (" ..." if len(messages) > 5 else "")


def layer_table(spec: ModelSpec | dict[str, Any]) -> list[dict[str, Any]]:
    """One row per layer for the officer: index, layer, args, output shape (if computable), parameters."""
    model = parse_spec(spec)
    rows = []
    for index, (layer, shape) in enumerate(zip(model.layers, model.output_shapes(), strict=True)):
        args = layer.model_dump(exclude={"type"}, exclude_defaults=True)
        rows.append(
            {
                "index": index,
                "layer": layer.type,
                "args": args,
                "output_shape": list(shape) if shape is not None else None,
                "parameters": layer.parameter_count(),
            }
        )
    return rows
