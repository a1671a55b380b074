"""Datasets: created from uploaded tensors or one CSV, members, declared bounds, edits and deletion."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from grid_runtime.core.capabilities import Capability
from tests.factories import Factory, MadeUser
from tests.test_tensors_helpers import API, as_numpy, audit_actions, counts, nothing_stored, npy_bytes, upload


def _tensor(client: TestClient, user: MadeUser, array: Any, name: str = "t", **params: Any) -> int:
    response = upload(client, user.headers, npy_bytes(np.asarray(array)), name=name, fmt="npy", **params)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


class TestCreate:
    def test_from_uploaded_tensors_with_bounds(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        owner = any_db_factory.owner()
        features = _tensor(any_db_client, owner, np.zeros((4, 2), dtype=np.float32), "x")
        labels = _tensor(any_db_client, owner, np.zeros(4, dtype=np.int64), "y")
        response = any_db_client.post(f"{API}/datasets", headers=owner.headers, json={
            "name": "toy", "description": "a toy set", "tags": ["Demo"], "visibility": "public",
            "members": {"features": features, "labels": labels},
            "bounds": {"features": {"lower": [0, -1], "upper": [1, 1]}, "labels": {"lower": 0, "upper": 9}}})
        assert response.status_code == 201, response.text
        body = response.json()
        assert [(m["role"], m["tensor_id"]) for m in body["members"]] == [("features", features),
                                                                          ("labels", labels)]
        assert body["bounds"]["features"] == {"lower": [0.0, -1.0], "upper": [1.0, 1.0]}
        assert (body["tags"], body["visibility"], body["level"]) == (["demo"], "public", "download")
        by_name = any_db_client.get(f"{API}/datasets/toy", headers=any_db_factory.user().headers)
        assert by_name.status_code == 200 and by_name.json()["id"] == body["id"]
        assert by_name.json()["level"] == "download"
        assert "dataset.created" in audit_actions(any_db_client)

    def test_needs_upload_data_and_a_unique_name(self, client: TestClient, factory: Factory) -> None:
        owner = factory.owner()
        assert client.post(f"{API}/datasets", headers=factory.user().headers,
                           json={"name": "d"}).status_code == 403
        assert client.post(f"{API}/datasets", headers=owner.headers, json={"name": "d"}).status_code == 201
        again = client.post(f"{API}/datasets", headers=owner.headers, json={"name": "d"})
        assert again.status_code == 409 and again.json()["code"] == "already_exists"
        digits = client.post(f"{API}/datasets", headers=owner.headers, json={"name": "123"})
        assert digits.status_code == 422

    def test_cannot_collect_someone_elses_tensor(self, client: TestClient, factory: Factory) -> None:
        owner = factory.owner()
        uploader = factory.user(capabilities={Capability.upload_data})
        theirs = _tensor(client, owner, [1.0, 2.0])
        response = client.post(f"{API}/datasets", headers=uploader.headers,
                               json={"name": "grab", "members": {"x": theirs}})
        assert response.status_code == 403 and "uploaded by someone else" in response.json()["message"]
        assert counts(client)["datasets"] == 0

    @pytest.mark.parametrize(("bounds", "problem"), [
        ({"features": {"lower": [0], "upper": [1]}}, "has 1 values, the tensor has 2"),
        ({"nope": {"lower": 0, "upper": 1}}, "no member 'nope'"),
        ({"features": {"lower": 2, "upper": 1}}, "at most its upper bound"),
        ({"features": {"lower": [0, "nan"], "upper": [1, 1]}}, "finite"),
    ])
    def test_bounds_are_checked(self, client: TestClient, factory: Factory, bounds: dict[str, Any],
                                problem: str) -> None:
        owner = factory.owner()
        features = _tensor(client, owner, np.zeros((3, 2)))
        response = client.post(f"{API}/datasets", headers=owner.headers,
                               json={"name": "b", "members": {"features": features}, "bounds": bounds})
        assert response.status_code == 422 and problem in response.json()["message"], response.json()
        assert counts(client)["datasets"] == 0

    def test_upload_straight_into_a_dataset(self, client: TestClient, factory: Factory) -> None:
        owner = factory.owner()
        client.post(f"{API}/datasets", headers=owner.headers, json={"name": "incoming"})
        tensor_id = _tensor(client, owner, [1, 2, 3], "x", dataset="incoming", role="features")
        members = client.get(f"{API}/datasets/incoming", headers=owner.headers).json()["members"]
        assert [(m["role"], m["tensor_id"]) for m in members] == [("features", tensor_id)]
        missing = upload(client, owner.headers, npy_bytes(np.ones(2)), fmt="npy", dataset="nope")
        assert missing.status_code == 404
        assert counts(client)["tensors"] == 1 and counts(client)["blobs"] == 1


class TestFromCsv:
    CSV = b"age,income,label\n31,52000,1\n45,61000.5,0\n29,15000,2\n"

    def _post(self, client: TestClient, user: MadeUser, data: bytes, **params: Any) -> Any:
        query = {"name": "people", "label": "label", **params}
        return client.post(f"{API}/datasets/from-csv", params=query, content=data, headers=user.headers)

    def test_splits_features_and_labels_keeping_column_names(self, any_db_client: TestClient,
                                                             any_db_factory: Factory) -> None:
        owner = any_db_factory.owner()
        response = self._post(any_db_client, owner, self.CSV, tag=["census"], visibility="public")
        assert response.status_code == 201, response.text
        members = {m["role"]: m for m in response.json()["members"]}
        assert (members["features"]["shape"], members["features"]["dtype"]) == ([3, 2], "float32")
        assert (members["labels"]["shape"], members["labels"]["dtype"]) == ([3], "int64")
        features = any_db_client.get(f"{API}/tensors/{members['features']['tensor_id']}", headers=owner.headers)
        assert features.json()["columns"] == ["age", "income"] and features.json()["name"] == "people/features"
        data = any_db_client.get(f"{API}/tensors/{members['labels']['tensor_id']}/data", headers=owner.headers)
        assert as_numpy(data.content).tolist() == [1, 0, 2]

    def test_fractional_labels_stay_float(self, client: TestClient, factory: Factory) -> None:
        response = self._post(client, factory.owner(), b"x,label\n1,0.5\n2,1\n")
        labels = {m["role"]: m for m in response.json()["members"]}["labels"]
        assert labels["dtype"] == "float32"

    @pytest.mark.parametrize(("data", "params", "problem"), [
        (CSV, {"label": "target"}, "no label column 'target'"),
        (b"age,label\n1,1\nold,0\n", {}, "'old' is not a number"),
        (b"label\n1\n", {}, "at least one feature column"),
    ])
    def test_bad_csv_stores_nothing(self, client: TestClient, factory: Factory, data: bytes,
                                    params: dict[str, Any], problem: str) -> None:
        response = self._post(client, factory.owner(), data, **params)
        assert response.status_code == 422 and problem in response.json()["message"]
        assert counts(client) == nothing_stored(client)

    def test_duplicate_name_stores_no_tensors(self, client: TestClient, factory: Factory) -> None:
        owner = factory.owner()
        client.post(f"{API}/datasets", headers=owner.headers, json={"name": "people"})
        assert self._post(client, owner, self.CSV).status_code == 409
        assert counts(client)["tensors"] == 0 and counts(client)["blobs"] == 0


class TestChange:
    def _dataset(self, client: TestClient, user: MadeUser) -> tuple[int, int]:
        features = _tensor(client, user, np.zeros((2, 3)), "f")
        response = client.post(f"{API}/datasets", headers=user.headers,
                               json={"name": "mine", "members": {"features": features}})
        assert response.status_code == 201, response.text
        return int(response.json()["id"]), features

    def test_owner_edits_members_bounds_and_metadata(self, client: TestClient, factory: Factory) -> None:
        uploader = factory.user(capabilities={Capability.upload_data})
        _, features = self._dataset(client, uploader)
        labels = _tensor(client, uploader, [0, 1], "l")
        put = client.put(f"{API}/datasets/mine/members/labels", headers=uploader.headers, json={"tensor_id": labels})
        assert {m["role"] for m in put.json()["members"]} == {"features", "labels"}
        bounds = client.put(f"{API}/datasets/mine/bounds", headers=uploader.headers,
                            json={"features": {"lower": 0, "upper": [1, 2, 3]}})
        assert bounds.status_code == 200 and bounds.json()["bounds"]["features"]["upper"] == [1.0, 2.0, 3.0]
        # replacing a member drops the bounds declared for the tensor it replaces
        other = _tensor(client, uploader, np.zeros((2, 5)), "g")
        replaced = client.put(f"{API}/datasets/mine/members/features", headers=uploader.headers,
                              json={"tensor_id": other})
        assert replaced.json()["bounds"] == {}
        removed = client.delete(f"{API}/datasets/mine/members/labels", headers=uploader.headers)
        assert [m["role"] for m in removed.json()["members"]] == ["features"]
        patched = client.patch(f"{API}/datasets/mine", headers=uploader.headers,
                               json={"description": "mine!", "tags": ["b", "a"], "visibility": "public"})
        assert (patched.json()["tags"], patched.json()["visibility"]) == (["a", "b"], "public")
        actions = set(audit_actions(client))
        assert {"dataset.member_set", "dataset.bounds_set", "dataset.member_removed", "dataset.updated"} <= actions

    def test_others_are_refused_but_manage_permissions_may(self, client: TestClient, factory: Factory) -> None:
        uploader = factory.user(capabilities={Capability.upload_data})
        self._dataset(client, uploader)
        stranger = factory.user(capabilities={Capability.upload_data})
        assert client.patch(f"{API}/datasets/mine", headers=stranger.headers,
                            json={"visibility": "public"}).status_code == 403
        assert client.delete(f"{API}/datasets/mine", headers=stranger.headers).status_code == 403
        admin = factory.user("Administrator")
        assert client.patch(f"{API}/datasets/mine", headers=admin.headers,
                            json={"visibility": "public"}).status_code == 200

    def test_delete_keeps_the_tensors(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        owner = any_db_factory.owner()
        _, features = self._dataset(any_db_client, owner)
        assert any_db_client.delete(f"{API}/datasets/mine", headers=owner.headers).status_code == 204
        assert any_db_client.get(f"{API}/datasets/mine", headers=owner.headers).status_code == 404
        assert any_db_client.get(f"{API}/tensors/{features}", headers=owner.headers).status_code == 200


class TestList:
    def test_lists_filters_and_pages(self, client: TestClient, factory: Factory) -> None:
        owner = factory.owner()
        for name, tags in (("alpha", ["a"]), ("beta", ["b"]), ("gamma", ["a", "b"])):
            client.post(f"{API}/datasets", headers=owner.headers, json={"name": name, "tags": tags})
        user = factory.user()
        page = client.get(f"{API}/datasets", params={"limit": 2}, headers=user.headers).json()
        assert [d["name"] for d in page["items"]] == ["alpha", "beta"] and page["total"] == 3
        tagged = client.get(f"{API}/datasets", params={"tag": "a"}, headers=user.headers).json()
        assert [d["name"] for d in tagged["items"]] == ["alpha", "gamma"]
        found = client.get(f"{API}/datasets", params={"q": "amm"}, headers=user.headers).json()
        assert [d["name"] for d in found["items"]] == ["gamma"]
        assert found["items"][0]["level"] == "search"
