"""Node settings, read from the environment (prefix ``GRID_NODE_``) by pydantic-settings."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

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
    cors_origins: list[str] = Field(default_factory=list)
    object_store_url: str | None = Field(
        default=None, description="where tensors are stored: file://, s3://, gs:// or az://; state_dir/objects if unset"
    )
    object_store_options: dict[str, Any] = Field(
        default_factory=dict, description="fsspec options for the object store (JSON), e.g. an S3 endpoint_url"
    )

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
