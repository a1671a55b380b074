"""API shapes for Workers: the Ray nodes that run jobs."""

from __future__ import annotations

from pydantic import BaseModel, Field


class WorkerOut(BaseModel):
    node_id: str
    alive: bool
    address: str
    cpus: float
    cpus_in_use: float
    load: float = Field(description="share of the Worker's CPUs held by running jobs, 0..1")
    memory_bytes: int
    object_store_bytes: int
    resources: dict[str, float]
    available: dict[str, float]


class WorkersOut(BaseModel):
    enabled: bool = Field(description="false when the Node runs without Ray (GRID_NODE_RAY_ENABLED=false)")
    head_address: str | None = Field(description="HOST:PORT Workers join with `ray start --address`")
    workers: list[WorkerOut]
    jobs_running: int
    tasks_submitted: int = Field(description="Ray tasks the Node submitted since it started")
