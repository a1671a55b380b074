"""Hashes and sizes as oracles on private values.

Measured before the fix: a DP count's sha256 (a hash of a small number) was shown to its owner before any
release, and brute force over 0..10⁵ recovered the exact noisy value while its download answered 403 and the
ledger stayed empty. Private tensors' sha256 was shown to every user at ``search`` level: a 16-value private
column came back whole by hashing all 2¹⁶ candidates, and with all rows but one known, the last label.

Each attack here runs the brute force the attacker would, against every digest the API shows them, and
asserts that it recovers nothing. A control shows the brute force is sound: it finds the value when it is
given the digest the Node stores (the uploader's view, or the released value).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from gridctl.sdk.node import Node
from tests.attacks.conftest import (
    Cluster,
    InProcess,
    digests_in,
    finished,
    refused,
    released,
    safetensors_of,
    unique,
)

# ---- private tensors at search (and compute) level: in process, SQLite and PostgreSQL ---------------------


def _candidate_digests(template: torch.Tensor, values: list[list[int]]) -> dict[str, list[int]]:
    """sha256 of the safetensors file each candidate content would be, as the attacker computes them: the
    header is public (name, dtype, shape), so only the data bytes vary."""
    blob = safetensors_of(template)
    data_bytes = template.numel() * template.element_size()
    header = blob[: len(blob) - data_bytes]
    found = {}
    for candidate in values:
        data = torch.tensor(candidate, dtype=template.dtype).numpy().tobytes()
        found[hashlib.sha256(header + data).hexdigest()] = candidate
    return found


def _everything_seen(node: InProcess, user: Any, tensor: dict[str, Any], dataset: str) -> list[Any]:
    """Every view of the tensor the API gives this user: by id, in lists, in searches, in its dataset, and in
    the release request they file for it."""
    views = [node.get(user, f"/tensors/{tensor['id']}"), node.get(user, "/tensors", limit=500),
             node.get(user, "/tensors/search", q=tensor["name"]), node.get(user, "/tensors/search", dataset=dataset),
             node.get(user, "/tensors", sort="size"), node.get(user, f"/datasets/{dataset}"),
             node.get(user, "/datasets")]
    for response in views:
        assert response.status_code == 200, response.text
    # Asking for the tensor's release records the request (auto-denied or pending): its requester reads it back.
    filed = node.client.post("/api/v1/requests", headers=user.headers, json={
        "kind": "release", "target_type": "tensor", "target_id": tensor["id"], "reason": "need it"})
    assert filed.status_code == 201, filed.text
    requests = [filed, node.get(user, f"/requests/{filed.json()['id']}"), node.get(user, "/requests")]
    return [r.json() for r in [*views, *requests]]


class TestPrivateTensorDigest:
    @pytest.mark.parametrize("level", ["search", "compute"])
    def test_a_sixteen_value_private_column_is_not_recovered_by_hashing_every_candidate(
            self, node: InProcess, level: str) -> None:
        secret = [1, 0, 0, 1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 0, 1, 0]
        dataset = unique("hiv-status")
        node.dataset(dataset)
        tensor = node.upload(f"{dataset}-positive", torch.tensor(secret, dtype=torch.uint8), dataset=dataset,
                             role="positive")
        attacker = node.factory.user()
        if level == "compute":
            node.grant(attacker, "tensor", tensor["id"], "compute")

        seen = _everything_seen(node, attacker, tensor, dataset)
        candidates = _candidate_digests(torch.zeros(16, dtype=torch.uint8),
                                        [list(bits) for bits in itertools.product((0, 1), repeat=16)])
        recovered = [candidates[d] for d in digests_in(seen) if d in candidates]
        assert recovered == []
        attackers_view = seen[0]
        assert attackers_view.get("sha256") is None and attackers_view.get("size_bytes") is None
        assert attackers_view["level"] == level
        # Control: the same brute force on the uploader's view finds the column, so the attack is sound.
        uploaders_view = node.get(node.owner, f"/tensors/{tensor['id']}").json()
        assert candidates[uploaders_view["sha256"]] == secret

    def test_the_last_rows_label_is_not_recovered_when_every_other_row_is_known(self, node: InProcess) -> None:
        known = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4]
        last = 6
        dataset = unique("diagnoses")
        node.dataset(dataset)
        tensor = node.upload(f"{dataset}-labels", torch.tensor([*known, last]), dataset=dataset, role="labels")
        attacker = node.factory.user()

        seen = _everything_seen(node, attacker, tensor, dataset)
        candidates = _candidate_digests(torch.zeros(len(known) + 1, dtype=torch.int64),
                                        [[*known, label] for label in range(10)])
        assert [candidates[d] for d in digests_in(seen) if d in candidates] == []
        uploaders_view = node.get(node.owner, f"/tensors/{tensor['id']}").json()
        assert candidates[uploaders_view["sha256"]][-1] == last

    def test_a_user_who_may_download_still_sees_the_digest_to_verify_a_download(self, node: InProcess) -> None:
        dataset = unique("open")
        node.dataset(dataset)
        tensor = node.upload(f"{dataset}-values", torch.arange(8, dtype=torch.float32), dataset=dataset,
                             role="values")
        reader = node.factory.user()
        node.grant(reader, "tensor", tensor["id"], "download")
        view = node.get(reader, f"/tensors/{tensor['id']}").json()
        data = node.get(reader, f"/tensors/{tensor['id']}/data")
        assert data.status_code == 200
        assert view["sha256"] == hashlib.sha256(data.content).hexdigest()
        assert view["size_bytes"] == len(data.content)


# ---- a DP count's result: on the Ray cluster ------------------------------------------------------------


ROWS = 37


@dataclass
class Counted:
    scientist: Node
    email: str
    dataset: str
    job: dict[str, Any]
    result_id: int
    input_digest: str


@pytest.fixture
def counted(cluster: Cluster) -> Counted:
    """A data scientist with compute (not download) on a private column ran a DP count (ε 1) on it."""
    values = torch.arange(ROWS, dtype=torch.float32)
    name, dataset_id = cluster.dataset("count-oracle", {"values": values})
    scientist, email = cluster.user("count-attacker", budget=10.0)
    cluster.grant(email, dataset_id, "compute")
    job = scientist.jobs.statistic("count", dataset=name, member="values", epsilon=1.0)
    assert finished(job).status == "succeeded", job.error
    return Counted(scientist, email, name, job.data, int(job.data["result_id"]),
                   hashlib.sha256(safetensors_of(values)).hexdigest())


def _count_candidates(epsilon: float) -> dict[str, int]:
    """Every digest a noisy count's artifact could have, as the attacker computes it offline with the Node's
    own open-source statistics code (mechanism and noise scale follow from the public settings)."""
    from grid_runtime.compute import statistics

    planned = statistics.count(torch.zeros(0), epsilon=epsilon)
    found: dict[str, int] = {}
    for value in range(0, 2_000):
        artifact = {"value": value, "mechanism": planned.mechanism, "noise_scale": planned.noise_scale}
        canonical = json.dumps(artifact, sort_keys=True, separators=(",", ":")).encode()
        for blob in (canonical, json.dumps(artifact).encode(), json.dumps(value).encode(), str(value).encode()):
            found[hashlib.sha256(blob).hexdigest()] = value
    return found


class TestResultDigest:
    def test_a_dp_counts_digest_and_size_are_not_shown_and_brute_force_recovers_nothing(
            self, cluster: Cluster, counted: Counted) -> None:
        scientist = counted.scientist
        result = scientist.http.get(f"/results/{counted.result_id}")
        assert result.get("sha256") is None and result.get("size_bytes") is None
        assert refused(lambda: scientist.http.get(f"/results/{counted.result_id}/data")) is not None
        request = scientist.http.post("/requests", json={"kind": "release", "target_type": "result",
                                                         "target_id": counted.result_id, "reason": "the count"})
        seen = [result, scientist.http.get(f"/jobs/{counted.job['id']}"), request,
                scientist.http.get(f"/requests/{request['id']}"), scientist.http.get("/requests"),
                scientist.http.get("/jobs"), scientist.http.get("/budget"), scientist.http.get("/budget/ledger")]
        candidates = _count_candidates(1.0)
        assert [candidates[d] for d in digests_in(seen) if d in candidates] == []

        # Control: once an officer releases it, the value is among the attacker's candidates, so the brute
        # force above would have found it had any digest of it been shown.
        cluster.owner().http.post(f"/requests/{request['id']}/approve", json={"note": "fine"})
        released = scientist.http.client.get(f"/releases/{request['id']}/data")
        assert released.status_code == 200, released.text
        assert int(json.loads(released.content)["value"]) in set(candidates.values())

    def test_the_private_inputs_digest_does_not_come_back_in_the_job_or_its_lineage(
            self, cluster: Cluster, counted: Counted) -> None:
        scientist = counted.scientist

        def seen() -> set[str]:
            return digests_in(scientist.http.get(f"/jobs/{counted.job['id']}"),
                              scientist.http.get(f"/results/{counted.result_id}"), scientist.http.get("/jobs"),
                              scientist.http.get(f"/datasets/{counted.dataset}"),
                              scientist.http.get("/tensors/search", params={"dataset": counted.dataset}))

        assert counted.input_digest not in seen()
        # Releasing the count releases the count, not a digest of the column it was computed from.
        released(cluster, scientist, counted.result_id)
        assert counted.input_digest not in seen()

    def test_another_user_cannot_tell_that_the_job_or_its_result_exists(self, cluster: Cluster,
                                                                        counted: Counted) -> None:
        other, _ = cluster.user("nosy", budget=10.0)
        job_id, result_id, missing = counted.job["id"], counted.result_id, 999_999
        for path, absent in ((f"/jobs/{job_id}", f"/jobs/{missing}"), (f"/results/{result_id}", f"/results/{missing}"),
                             (f"/results/{result_id}/data", f"/results/{missing}/data")):
            existing, nothing = other.http.client.get(path), other.http.client.get(absent)
            assert existing.status_code == nothing.status_code == 404
            assert existing.json()["code"] == nothing.json()["code"]
        assert other.http.get("/jobs")["total"] == 0
        assert other.http.get("/requests")["total"] == 0
        stolen = refused(lambda: other.http.post("/requests", json={
            "kind": "release", "target_type": "result", "target_id": counted.result_id, "reason": "mine now"}))
        assert stolen is not None and stolen.status in (403, 404)
