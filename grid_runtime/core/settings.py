"""Settings read from the environment by pydantic-settings: the Node's (prefix ``GRID_NODE_``) and the
Network's (prefix ``GRID_NETWORK_``)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class NodeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRID_NODE_", extra="ignore")

    name: str = "grid-node"
    state_dir: Path = Field(default=Path("./grid-state"), description="secrets, database, object store, logs")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; SQLite in state_dir if unset")
    host: str = "127.0.0.1"
    port: int = 8000

    session_ttl_seconds: int = Field(default=12 * 3600, gt=0)
    login_max_failures: int = Field(default=5, gt=0, description="failed logins per window, per account or address")
    login_window_seconds: int = Field(default=300, gt=0)
    max_upload_bytes: int = Field(default=2 * 1024**3, gt=0)
    login_backoff_seconds: float = Field(
        default=2.0, gt=0, description="after login_max_failures for one account from one address, each further "
                                       "failure doubles the wait before the next try (from this many seconds)")
    login_backoff_max_seconds: float = Field(default=900.0, gt=0, description="the longest login back-off")
    max_body_bytes: int = Field(default=1024**2, gt=0, description="request-body limit of every non-upload route")
    body_read_timeout_seconds: float = Field(
        default=30.0, gt=0, description="a request body that sends nothing this long is refused (408)")
    min_body_rate_bytes: int = Field(
        default=4096, ge=0, description="bytes/s a request body must average after its first "
                                        "body_read_timeout_seconds (slow clients are refused with 408)")
    keep_alive_seconds: float = Field(default=5.0, gt=0, description="idle keep-alive connections are closed after")
    trusted_proxies: list[str] = Field(
        default_factory=list, description="peer addresses whose X-Forwarded-For is believed (none by default)")
    api_docs: bool = Field(default=True, description="serve the OpenAPI document and /docs (public routes)")
    webhook_allow_private: bool = Field(
        default=False, description="let the webhook URL be http:// or a private, loopback or link-local address")
    webhook_max_per_minute: int = Field(default=30, ge=1, description="webhook deliveries a minute at most")
    cors_origins: list[str] = Field(default_factory=list)
    object_store_url: str | None = Field(
        default=None, description="where tensors are stored: file://, s3://, gs:// or az://; state_dir/objects if unset"
    )
    object_store_options: dict[str, Any] = Field(
        default_factory=dict, description="fsspec options for the object store (JSON), e.g. an S3 endpoint_url"
    )

    # Privacy (docs/privacy.md): the node's δ, the Rényi order its budget filter composes at, and whether
    # results that are not differentially private may be released at all.
    delta: float = Field(default=1e-5, gt=0, lt=1, description="the node's δ for every ε it shows or enforces")
    # = privacy.accounting.DEFAULT_RDP_ORDER (not imported: dp-accounting is heavy); a test keeps them equal.
    rdp_order: float = Field(default=6.0, gt=1.01, description="the Rényi filter's order, fixed for the node")
    release_policy: Literal["dp_only", "allow_non_private"] = Field(
        default="dp_only", description="dp_only: non-private releases are auto-denied; else an officer decides"
    )
    webhook_url: str | None = Field(default=None, description="receives each request decision, HMAC-signed")
    request_ttl_seconds: int = Field(default=14 * 24 * 3600, gt=0, description="pending requests expire after")

    # Workers (docs/jobs.md): the Node starts a Ray head without compute and is its only driver; Workers join
    # with `ray start --address=HOST:ray_port` and the token in state_dir/secrets/ray-token (made at first start).
    ray_enabled: bool = Field(default=True, description="start a Ray head and run jobs; false: jobs are refused")
    ray_address: str | None = Field(
        default=None, description="HOST:PORT of a Ray head run beside the Node (a cloud deploy's service) to drive "
                                  "instead of starting one; its token is ray_token_file")
    ray_token_file: Path | None = Field(
        default=None, description="the cluster token of ray_address's head (default: state_dir/secrets/ray-token)")
    ray_host: str = Field(default="127.0.0.1", description="the address the Ray head listens on, for Workers")
    ray_port: int = Field(default=6390, ge=0, le=65535, description="the Ray head's GCS port (0: a free one)")
    ray_client_server_port: int = Field(default=0, ge=0, le=65535, description="0: a free port")
    ray_node_manager_port: int = Field(default=0, ge=0, le=65535, description="0: a free port")
    ray_object_manager_port: int = Field(default=0, ge=0, le=65535, description="0: a free port")
    ray_dashboard_port: int = Field(default=0, ge=0, le=65535, description="0: a free port (bound to 127.0.0.1)")
    ray_object_store_bytes: int = Field(default=256 * 1024**2, ge=78 * 1024**2, description="per Ray node")
    ray_start_timeout_seconds: float = Field(default=90.0, gt=0)
    job_cpus: float = Field(default=1.0, gt=0, description="CPUs a job's Ray task takes (torch uses as many)")
    worker_memory_bytes: int = Field(
        default=4 * 1024**3, ge=256 * 1024**2, description="memory one job may use on a Worker: a job whose "
        "estimated peak (compute/memory.py) is larger is refused, and each job's Ray task reserves its estimate")
    job_max_attempts: int = Field(default=2, ge=1, le=10, description="a job whose Worker is lost is retried")
    job_stall_seconds: float = Field(default=60.0, gt=0, description="a running task silent this long is lost")
    job_max_concurrent: int = Field(default=2, ge=0, description="default quota: queued or running jobs a user")
    job_max_per_day: int = Field(default=50, ge=0, description="default quota: jobs a user may submit in 24 h")
    job_max_run_seconds: int = Field(default=3600, gt=0, description="default quota: run-time limit of a job")

    # Federated learning (docs/fl.md, "Aggregation"): where a cycle's updates go and where its average is made.
    fl_aggregation: Literal["auto", "fold", "store"] = Field(
        default="auto", description="fold: each update is added to a running sum on the Node as it arrives; store: "
        "each is written to the object store and the cycle is averaged on a Worker (on the Node if none is alive); "
        "auto: store when Ray is enabled, else fold")
    fl_aggregation_timeout_seconds: float = Field(
        default=300.0, gt=0, description="a Worker's aggregation silent this long counts as lost (then retried "
                                         "up to job_max_attempts, then done on the Node)")

    # Networks (docs/network.md): which Network URLs a join may name, and how the catalogue is kept up to date.
    public_url: str | None = Field(
        default=None, description="the URL a Network reaches this Node at (sent when joining; a join may name one)")
    network_allow_insecure: bool = Field(
        default=False, description="let a Network URL be http:// (otherwise https:// only)")
    network_allow_private: bool = Field(
        default=False, description="let a Network URL name a private, loopback or link-local address or name")
    network_sync_seconds: float = Field(
        default=300.0, gt=0, description="every associated Network gets the whole catalogue this often "
                                         "(reconciliation); changes are pushed as they happen")
    network_timeout_seconds: float = Field(default=10.0, gt=0, description="one call to a Network")

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.state_dir / 'node.db').resolve()}"

    @cached_property
    def resolved_object_store_url(self) -> str:
        if self.object_store_url:
            return self.object_store_url
        return (self.state_dir / "objects").resolve().as_uri()


class NetworkSettings(BaseSettings):
    """The Network's settings (docs/network.md)."""

    model_config = SettingsConfigDict(env_prefix="GRID_NETWORK_", extra="ignore")

    name: str = "grid-network"
    state_dir: Path = Field(default=Path("./grid-network-state"), description="secrets and database")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; SQLite in state_dir if unset")
    host: str = "127.0.0.1"
    port: int = 8100
    api_docs: bool = Field(default=True, description="serve the OpenAPI document and /docs (public routes)")

    session_ttl_seconds: int = Field(default=12 * 3600, gt=0)
    login_max_failures: int = Field(default=5, gt=0, description="failed logins per window, per account and address")
    login_window_seconds: int = Field(default=300, gt=0, description="after login_max_failures, the wait")
    max_body_bytes: int = Field(default=1024**2, gt=0, description="request-body limit of every route but the push")
    body_read_timeout_seconds: float = Field(default=30.0, gt=0)
    min_body_rate_bytes: int = Field(default=4096, ge=0)

    max_push_bytes: int = Field(default=4 * 1024**2, gt=0, description="one catalogue push's body, at most")
    max_push_entries: int = Field(default=1000, ge=1, le=100_000,
                                  description="entries (upserts and deletes together) in one push, at most")
    max_entries_per_node: int = Field(default=200_000, ge=1, description="catalogue entries one Node may hold")
    stale_after_seconds: float = Field(
        default=900.0, gt=0, description="a Node not heard from for this long has its entries marked stale")
    allow_insecure_nodes: bool = Field(default=False, description="accept http:// Node URLs (else https:// only)")
    allow_private_nodes: bool = Field(
        default=False, description="accept Node URLs naming a private, loopback or link-local address or name")
    node_timeout_seconds: float = Field(default=5.0, gt=0, description="one call to a Node (its statistics)")
    invitation_ttl_seconds: int = Field(default=7 * 24 * 3600, gt=0, description="an unused invitation expires")

    # The public join route (docs/network.md, "Abuse bounds"): besides the Network-wide cap on pending requests,
    # each client address (an IPv6 client's /64) is bounded; a join with a valid invitation is never counted.
    join_max_pending_per_address: int = Field(
        default=5, ge=1, description="join requests from one client address waiting for a decision, at most")
    join_max_per_hour: int = Field(
        default=10, ge=1, description="join requests one client address may make in any hour (without invitation)")
    join_request_ttl_seconds: int = Field(
        default=14 * 24 * 3600, gt=0, description="a join request still pending after this long expires")

    trusted_proxies: list[str] = Field(
        default_factory=list, description="peer addresses whose X-Forwarded-For is believed (none by default)")
    cors_origins: list[str] = Field(
        default_factory=list, description="origins a browser may call the API from (an Admin hosted elsewhere)")

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.state_dir / 'network.db').resolve()}"
