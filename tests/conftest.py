"""Shared fixtures: a real database per test (SQLite, and PostgreSQL where configured), an in-process
app for route tests, and a real uvicorn Node in a subprocess for CLI and SDK tests.

PostgreSQL: set GRID_TEST_POSTGRES_URL to an admin URL (``.ci/run`` does); tests marked ``postgres``
then run there too. With GRID_REQUIRE_POSTGRES=1 (CI) a missing PostgreSQL is an error, not a skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.app import create_app
from tests.factories import Factory
from tests.live import LiveNode, start_live_node, throwaway_postgres
from tests.ray_cluster import RayNode, start_ray_node

# Nodes made by tests run without Ray unless a test asks for it (tests/test_training_e2e.py starts one cluster).
os.environ.setdefault("GRID_NODE_RAY_ENABLED", "false")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'node.db'}"
    else:
        with throwaway_postgres() as url:
            yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database, for tests that need not run on every backend."""
    return f"sqlite:///{tmp_path / 'node.db'}"


@pytest.fixture
def node_settings(tmp_path: Path, sqlite_url: str) -> NodeSettings:
    return NodeSettings(state_dir=tmp_path / "state", database_url=sqlite_url, login_max_failures=3)


@pytest.fixture
def client(node_settings: NodeSettings) -> Iterator[TestClient]:
    """The Node app in process on SQLite, started (migrations applied, presets seeded)."""
    with TestClient(create_app(node_settings)) as test_client:
        yield test_client


@pytest.fixture
def any_db_client(tmp_path: Path, database_url: str) -> Iterator[TestClient]:
    """The Node app in process, once on SQLite and once on PostgreSQL."""
    settings = NodeSettings(state_dir=tmp_path / "state", database_url=database_url, login_max_failures=3)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def factory(client: TestClient) -> Factory:
    return Factory(client)


@pytest.fixture
def any_db_factory(any_db_client: TestClient) -> Factory:
    return Factory(any_db_client)


@pytest.fixture(scope="session")
def live_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNode]:
    """A real Node served by uvicorn in a subprocess, with its Owner set up. Shared by the session."""
    node = start_live_node(tmp_path_factory.mktemp("live-node"))
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def ray_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayNode]:
    """The session's one Ray cluster: a Node with its Ray head and 2 Workers (Ray takes seconds to start)."""
    node = start_ray_node(tmp_path_factory.mktemp("ray-node"), workers=2)
    try:
        yield node
    finally:
        node.stop()
