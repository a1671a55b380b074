"""Model-centric federated learning (docs/fl.md): processes, their cycles, checkpoints and client tokens.

Nothing here holds a client's data: a cycle keeps counts and sums (reports, examples, the reported losses), an
assignment keeps one client's count of examples and reported loss, and checkpoints are parameters in the object
store. Individual updates are never stored: each is folded into the cycle's running sum as it arrives."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from grid_runtime.core.database import Base, utcnow


class FLProcess(Base):
    """A hosted process: the plan (model spec), the client's and the server's configuration, and where it is.

    ``parameters`` is the model's layout (``[[name, shape], ...]``, the state dict's order), against which every
    update is checked. ``dp`` is ``{noise_multiplier, clip_norm}`` or null; ``epsilon`` is the ε of every cycle
    composed, at ``delta``, for the client-level guarantee (docs/fl.md)."""

    __tablename__ = "fl_processes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    spec: Mapped[dict[str, Any]]
    parameters: Mapped[list[Any]] = mapped_column(JSON)
    client_config: Mapped[dict[str, Any]]
    server_config: Mapped[dict[str, Any]]
    dp: Mapped[dict[str, Any] | None]
    epsilon: Mapped[float | None] = mapped_column(Float)
    delta: Mapped[float | None] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16), index=True)
    cycles_done: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]


class FLCycle(Base):
    """One cycle of a process. ``state``: open, then aggregated (a new checkpoint) or expired (time up with no
    report: the next cycle starts from the same checkpoint)."""

    __tablename__ = "fl_cycles"
    __table_args__ = (UniqueConstraint("process_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[int] = mapped_column(ForeignKey("fl_processes.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    state: Mapped[str] = mapped_column(String(16), index=True)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    deadline: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    joined: Mapped[int] = mapped_column(default=0)
    reports: Mapped[int] = mapped_column(default=0)
    examples: Mapped[int] = mapped_column(default=0)
    loss_sum: Mapped[float] = mapped_column(Float, default=0.0)
    loss_reports: Mapped[int] = mapped_column(default=0)


class FLCheckpoint(Base):
    """Parameters of a process after a cycle (number 0: the initial ones), safetensors in the object store."""

    __tablename__ = "fl_checkpoints"
    __table_args__ = (UniqueConstraint("process_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[int] = mapped_column(ForeignKey("fl_processes.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    object_key: Mapped[str] = mapped_column(String(255), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FLClientToken(Base):
    """A client's credential for one process only (``gflclient_...``, stored as SHA-256); revocable."""

    __tablename__ = "fl_client_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    process_id: Mapped[int] = mapped_column(ForeignKey("fl_processes.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class FLAssignment(Base):
    """A client in a cycle: joined, then reported once (its example count and loss, never its update)."""

    __tablename__ = "fl_assignments"
    __table_args__ = (UniqueConstraint("cycle_id", "client_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cycle_id: Mapped[int] = mapped_column(ForeignKey("fl_cycles.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("fl_client_tokens.id", ondelete="CASCADE"), index=True)
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    reported_at: Mapped[datetime | None]
    examples: Mapped[int | None]
    loss: Mapped[float | None] = mapped_column(Float)
