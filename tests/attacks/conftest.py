"""What every attack needs: an attacker's account, private data owned by someone else, and ways to read
everything the API shows the attacker.

Two settings. Attacks that need no Worker run on the in-process Node (``any_db_client``: SQLite and
PostgreSQL) and build their data through the API with the Owner's token. Attacks on jobs run on the session's
Ray cluster (``ray_node``), through the SDK and the HTTP API, exactly as a data scientist would.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import save

import gridctl
from gridctl.sdk.errors import GridctlError
from gridctl.sdk.node import Node
from tests.factories import Factory, MadeUser
from tests.ray_cluster import RayNode

PASSWORD = "attacker password 1"
HEX64 = re.compile(r"\b[0-9a-f]{64}\b")


# ---- reading what the attacker sees ------------------------------------------------------------------------


def every_key(value: Any) -> set[str]:
    """Every key of every mapping inside ``value`` (JSON), at any depth."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            found.add(str(key))
            found |= every_key(item)
    elif isinstance(value, list):
        for item in value:
            found |= every_key(item)
    return found


def digests_in(*values: Any) -> set[str]:
    """Every 64-hex-digit string (a sha256 or an HMAC-SHA256) anywhere in these JSON values."""
    return set(HEX64.findall(json.dumps(values).lower()))


def safetensors_of(tensor: torch.Tensor) -> bytes:
    return save({"tensor": tensor.contiguous()})


# ---- the in-process Node (SQLite and PostgreSQL) -------------------------------------------------------------


@dataclass
class InProcess:
    """The in-process Node with its Owner (who uploads the private data) and helpers acting through the API."""

    client: TestClient
    factory: Factory
    owner: MadeUser

    def upload(self, name: str, tensor: torch.Tensor, *, visibility: str = "private",
               dataset: str | None = None, role: str | None = None, by: MadeUser | None = None) -> dict[str, Any]:
        params: dict[str, str] = {"name": name, "format": "safetensors", "visibility": visibility}
        if dataset is not None:
            params["dataset"] = dataset
            params["role"] = role or name
        response = self.client.post("/api/v1/tensors", content=safetensors_of(tensor), params=params,
                                    headers=(by or self.owner).headers)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def dataset(self, name: str, *, visibility: str = "private") -> dict[str, Any]:
        response = self.client.post("/api/v1/datasets", json={"name": name, "visibility": visibility},
                                    headers=self.owner.headers)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def grant(self, user: MadeUser, target_type: str, target_id: int, level: str) -> None:
        response = self.client.post("/api/v1/permissions", headers=self.owner.headers, json={
            "subject_type": "user", "subject": user.email, "target_type": target_type, "target_id": target_id,
            "level": level})
        assert response.status_code in (200, 201), response.text

    def get(self, user: MadeUser, path: str, **params: Any) -> Any:
        """GET as ``user``: the test client's response."""
        return self.client.get(f"/api/v1{path}", headers=user.headers, params=params)


@pytest.fixture
def node(any_db_client: TestClient) -> InProcess:
    """The in-process Node, once on SQLite and once on PostgreSQL, with its Owner."""
    factory = Factory(any_db_client)
    return InProcess(client=any_db_client, factory=factory, owner=factory.owner())


# ---- the Ray cluster ---------------------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Cluster:
    """The session's Ray cluster seen through its Owner, who holds the private data."""

    ray: RayNode
    _owner: Node | None = None

    @property
    def url(self) -> str:
        return self.ray.url

    def owner(self) -> Node:
        """The Owner, through the SDK (one client for the module)."""
        if self._owner is None:
            self._owner = self.ray.owner()
        return self._owner

    def user(self, prefix: str, *, budget: float | None = None, role: str | None = None) -> tuple[Node, str]:
        """A new user (a Data Scientist unless ``role``), logged in with ``gridctl.connect``; returns the SDK's
        Node and the email."""
        email = f"{unique(prefix)}@example.com"
        body: dict[str, Any] = {"email": email, "password": PASSWORD}
        if budget is not None:
            body["budget_epsilon"] = budget
        if role is not None:
            body["role"] = role
        self.owner().http.post("/users", json=body)
        return gridctl.connect(self.url, email=email, password=PASSWORD), email

    def dataset(self, prefix: str, members: dict[str, torch.Tensor],
                bounds: dict[str, dict[str, float]] | None = None) -> tuple[str, int]:
        """A private dataset holding these tensors (role -> values), uploaded by the Owner."""
        name = unique(prefix)
        owner = self.owner()
        created = owner.http.post("/datasets", json={"name": name, "visibility": "private"})
        for role, tensor in members.items():
            self.upload(f"{name}-{role}", tensor, dataset=name, role=role)
        if bounds:
            owner.http.put(f"/datasets/{name}/bounds", json=bounds)
        return name, int(created["id"])

    def upload(self, name: str, tensor: torch.Tensor, *, dataset: str, role: str) -> int:
        response = httpx.post(f"{self.ray.api}/tensors", content=safetensors_of(tensor), timeout=30,
                              headers={"Authorization": f"Bearer {self.ray.owner_token}"},
                              params={"name": name, "dataset": dataset, "role": role, "format": "safetensors"})
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def add_member(self, dataset: str, role: str, tensor_id: int) -> None:
        self.owner().http.put(f"/datasets/{dataset}/members/{role}", json={"tensor_id": tensor_id})

    def grant(self, email: str, dataset_id: int, level: str) -> None:
        self.owner().http.post("/permissions", json={"subject_type": "user", "subject": email,
                                                     "target_type": "dataset", "target_id": dataset_id,
                                                     "level": level})

@pytest.fixture(scope="module")
def cluster(ray_node: RayNode) -> Iterator[Cluster]:
    """The session's Ray cluster (a Node, its Ray head and two Workers), for one module of attacks."""
    cluster = Cluster(ray_node)
    yield cluster
    cluster.owner().close()


def finished(job: Any, timeout: float = 120) -> Any:
    """Wait for an SDK job to finish (any final state)."""
    return job.wait(timeout=timeout)


def refused(call: Any) -> GridctlError | None:
    """The error the Node answered ``call`` with, or None if it accepted it."""
    try:
        call()
    except GridctlError as exc:
        return exc
    return None


def wait_until(predicate: Any, timeout: float = 60, poll: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(poll)


def released(cluster: Cluster, user: Node, result_id: int) -> bytes:
    """What the attacker gets once an officer (the Owner) releases ``result_id``: file the release request,
    have it approved (unless a policy already did), download it."""
    request = user.http.post("/requests", json={"kind": "release", "target_type": "result",
                                                "target_id": result_id, "reason": "for my analysis"})
    if request["state"] == "pending":
        cluster.owner().http.post(f"/requests/{request['id']}/approve", json={"note": "fine"})
    response = user.http.client.get(f"/releases/{request['id']}/data")
    assert response.status_code == 200, response.text
    return response.content


__all__ = ["PASSWORD", "Cluster", "InProcess", "digests_in", "every_key", "finished", "refused", "released",
           "safetensors_of", "unique", "wait_until"]
