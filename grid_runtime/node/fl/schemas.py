"""API shapes of federated learning: what an owner sends to host a process, what managers and clients read."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from grid_runtime.compute.contracts import MAX_WEIGHTS_BYTES, Loss, Optimizer  # one source
from grid_runtime.core.schemas import Name, Out, Schema

MAX_CLIENTS_PER_CYCLE = 100_000
MAX_CYCLES = 10_000
MAX_CYCLE_SECONDS = 7 * 24 * 3600
MAX_LOSS = 1e12
MAX_EXAMPLES = 1_000_000_000


class ClientConfigIn(Schema):
    """How each client trains on its own data: the same losses and optimizers as jobs."""

    loss: Loss = "cross_entropy"
    optimizer: Optimizer = "sgd"
    lr: float = Field(0.1, gt=0, le=10)
    batch_size: int = Field(32, ge=1, le=1_000_000)
    epochs: int = Field(1, ge=1, le=1000, description="local epochs per cycle")


class CentralDPIn(Schema):
    """Central DP of the average: each client's update clipped to L2 norm ``clip_norm`` (C), and Gaussian noise
    of std ``noise_multiplier``·C added to the sum (docs/fl.md)."""

    noise_multiplier: float = Field(gt=0, le=1000)
    clip_norm: float = Field(gt=0, le=1e6)

    @model_validator(mode="after")
    def _finite(self) -> CentralDPIn:
        if not (math.isfinite(self.noise_multiplier) and math.isfinite(self.clip_norm)):
            raise ValueError("noise_multiplier and clip_norm must be finite")
        return self


class ServerConfigIn(Schema):
    """How the Node runs cycles."""

    clients_per_cycle: int = Field(10, ge=1, le=MAX_CLIENTS_PER_CYCLE, description="clients admitted to a cycle")
    min_reports: int = Field(1, ge=1, le=MAX_CLIENTS_PER_CYCLE,
                             description="reports that close a cycle at once (with at least one, time up closes it)")
    cycle_seconds: float = Field(600, ge=1, le=MAX_CYCLE_SECONDS, description="how long a cycle stays open")
    cycles: int = Field(10, ge=1, le=MAX_CYCLES, description="cycles to run before the process completes")
    dp: CentralDPIn | None = None

    @model_validator(mode="after")
    def _reports_fit(self) -> ServerConfigIn:
        if self.min_reports > self.clients_per_cycle:
            raise ValueError("min_reports cannot exceed clients_per_cycle")
        if not math.isfinite(self.cycle_seconds):
            raise ValueError("cycle_seconds must be finite")
        return self


class ProcessCreateIn(Schema):
    """A process to host: the plan (model spec), optional initial weights, and the two configurations."""

    name: Name
    spec: dict[str, Any] = Field(description="the model spec (gridctl.model-spec/1): allowlisted layers only")
    initial_weights: str | None = Field(
        None, max_length=4 * (MAX_WEIGHTS_BYTES // 3 + 1),
        description="initial parameters: safetensors, base64-encoded (fresh parameters from a secure seed without)")
    client: ClientConfigIn = Field(default_factory=lambda: ClientConfigIn.model_validate({}))
    server: ServerConfigIn = Field(default_factory=lambda: ServerConfigIn.model_validate({}))

    @field_validator("name")
    @classmethod
    def _not_a_number(cls, value: str) -> str:
        if value.isdigit():
            raise ValueError("a name cannot be only digits (it would read as an id)")
        return value


class CycleOut(Out):
    """A cycle's figures, for the process's managers: reports, examples, mean reported loss, times."""

    number: int
    state: str
    opened_at: datetime
    deadline: datetime
    closed_at: datetime | None
    joined: int
    reports: int
    examples: int
    mean_loss: float | None = None
    seconds: float | None = Field(None, description="from opening to closing")
    aggregated_on: Literal["node", "worker"] | None = Field(
        None, description="where the cycle's average was made: on a Worker, or on the Node itself")


class ProcessOut(Out):
    id: int
    name: str
    owner_id: int
    state: Literal["running", "completed", "stopped"]
    spec: dict[str, Any]
    client_config: dict[str, Any]
    server_config: dict[str, Any]
    parameter_count: int
    cycles_done: int
    epsilon: float | None = Field(None, description="client-level ε of every cycle composed, at delta (with DP)")
    delta: float | None
    created_at: datetime
    ended_at: datetime | None


class ProcessDetailOut(ProcessOut):
    cycles: list[CycleOut]
    layers: list[dict[str, Any]] = Field(
        default_factory=list, description="the spec as a layer table: each layer's arguments, output shape, parameters")


class CheckpointOut(Out):
    number: int
    sha256: str
    size: int
    created_at: datetime


class ClientTokenIn(Schema):
    name: Name = Field(description="a label for the client (for example its site)")


class ClientTokenOut(Out):
    id: int
    name: str
    created_at: datetime
    revoked_at: datetime | None


class ClientTokenCreatedOut(ClientTokenOut):
    token: str = Field(description="shown once: the client's credential for this process only")


class PlanOut(Schema):
    """What a client needs to train: the spec, its training settings and the checkpoint it starts from."""

    process: str
    spec: dict[str, Any]
    client_config: dict[str, Any]
    parameters: list[list[Any]]
    checkpoint: int
    checkpoint_sha256: str


class JoinOut(Schema):
    """A client's own place in the current cycle, and nothing about other clients."""

    status: Literal["accepted", "already_joined"]
    cycle: int
    deadline: datetime
    reported: bool
    plan: PlanOut


class ReportOut(Schema):
    status: Literal["accepted"]
    cycle: int
