"""Channels found while probing: metadata that could be a function of private values.

- Sorting search results by size: if the stored size depended on the values, the order of two private
  tensors of the same shape and dtype would tell which holds what. It does not: a tensor is stored as a
  one-tensor safetensors file whose size follows from its declared shape and dtype alone.
- The audit log records fingerprints, job errors and who read what: a data scientist cannot read it.
- Search matches names and descriptions only: a private value typed as a query finds nothing.
- Permission explanations name the rule that decided, never a value.
- A dataset of your own is no way to reach someone else's private tensor.
- Lists count the caller's own requests and jobs, whatever the filter.
"""

from __future__ import annotations

import torch

from grid_runtime.core.capabilities import Capability
from tests.attacks.conftest import InProcess, unique


class TestSearchOrder:
    def test_sorting_by_size_orders_private_tensors_of_the_same_shape_by_nothing_but_their_ids(
            self, node: InProcess) -> None:
        dataset = unique("incomes")
        node.dataset(dataset)
        small = node.upload(f"{dataset}-a", torch.zeros(64, dtype=torch.float64), dataset=dataset, role="a")
        large = node.upload(f"{dataset}-b", torch.full((64,), 1e300, dtype=torch.float64), dataset=dataset,
                            role="b")
        attacker = node.factory.user()
        for sort, expected in (("size", [small["id"], large["id"]]), ("-size", [large["id"], small["id"]])):
            response = node.get(attacker, "/tensors/search", dataset=dataset, sort=sort)
            assert response.status_code == 200, response.text
            assert [t["id"] for t in response.json()["items"]] == expected  # ties broken by id, both ways
        # The same with the contents swapped: the order does not move with the values.
        swapped = unique("incomes")
        node.dataset(swapped)
        first = node.upload(f"{swapped}-a", torch.full((64,), 1e300, dtype=torch.float64), dataset=swapped,
                            role="a")
        second = node.upload(f"{swapped}-b", torch.zeros(64, dtype=torch.float64), dataset=swapped, role="b")
        response = node.get(attacker, "/tensors/search", dataset=swapped, sort="size")
        assert [t["id"] for t in response.json()["items"]] == [first["id"], second["id"]]


class TestSearchText:
    def test_a_private_value_typed_as_a_query_finds_nothing(self, node: InProcess) -> None:
        dataset = unique("pins")
        node.dataset(dataset)
        node.upload(f"{dataset}-codes", torch.tensor([48213, 99120, 31337]), dataset=dataset, role="codes")
        attacker = node.factory.user()
        for query in ("48213", "31337"):
            response = node.get(attacker, "/tensors/search", q=query)
            assert response.status_code == 200, response.text
            assert response.json()["total"] == 0


class TestAuditLog:
    def test_a_data_scientist_cannot_read_the_audit_log(self, node: InProcess) -> None:
        node.upload(unique("ledger"), torch.arange(4, dtype=torch.float32))
        attacker = node.factory.user()
        response = node.get(attacker, "/audit")
        assert response.status_code == 403
        assert response.json()["code"] == "forbidden"


class TestExplain:
    def test_explaining_a_level_names_the_rule_and_no_digest_or_size(self, node: InProcess) -> None:
        tensor = node.upload(unique("scores"), torch.arange(16, dtype=torch.float32))
        attacker = node.factory.user()
        response = node.get(attacker, "/permissions/explain", target_type="tensor", target_id=tensor["id"])
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["rule"] == "visibility"
        assert node.get(node.owner, f"/tensors/{tensor['id']}").json()["sha256"] not in response.text


class TestDatasetSideDoor:
    def test_an_uploader_cannot_pull_someone_elses_private_tensor_into_a_dataset_of_their_own(
            self, node: InProcess) -> None:
        victim = node.upload(unique("wages"), torch.arange(12, dtype=torch.float32))
        contributor = node.factory.user(capabilities={Capability.upload_data})
        created = node.client.post("/api/v1/datasets", headers=contributor.headers,
                                   json={"name": unique("mine"), "members": {"x": victim["id"]}})
        assert created.status_code == 403, created.text
        own = node.client.post("/api/v1/datasets", headers=contributor.headers, json={"name": unique("mine")})
        assert own.status_code == 201, own.text
        added = node.client.put(f"/api/v1/datasets/{own.json()['name']}/members/x", headers=contributor.headers,
                                json={"tensor_id": victim["id"]})
        assert added.status_code == 403, added.text
        # Owning a dataset grants download on it; none of that reaches the victim's tensor.
        assert node.get(contributor, f"/tensors/{victim['id']}").json()["level"] == "search"
        assert node.get(contributor, f"/tensors/{victim['id']}/data").status_code == 403


class TestListCounts:
    def test_lists_count_only_the_callers_own_requests_whatever_the_filter(self, node: InProcess) -> None:
        victim, attacker = node.factory.user(), node.factory.user()
        filed = node.client.post("/api/v1/requests", headers=victim.headers,
                                 json={"kind": "budget", "epsilon": 1.0, "reason": "a study of rare diseases"})
        assert filed.status_code == 201, filed.text
        for params in ({}, {"requester": victim.email}, {"requester": str(victim.id)}, {"kind": "budget"}):
            response = node.get(attacker, "/requests", **params)
            assert response.status_code in (200, 403), response.text
            if response.status_code == 200:
                assert response.json()["total"] == 0, params
        jobs = node.get(attacker, "/jobs", all="true")
        assert jobs.status_code == 200 and jobs.json()["total"] == 0
        # Someone else's request: refused, and nothing of it (who, why) comes back. (Its existence and kind do:
        # 403 naming the capability that decides its kind; see docs/threat-model.md.)
        other = node.get(attacker, f"/requests/{filed.json()['id']}")
        assert other.status_code in (403, 404)
        assert victim.email not in other.text and "rare diseases" not in other.text
