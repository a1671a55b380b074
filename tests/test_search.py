"""Tensor search: full text, tags, dataset, visibility, dtype, shape, sorting, pagination and levels."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import Factory, MadeUser
from tests.test_tensors_helpers import API, add_tensor_row


def _search(client: TestClient, user: MadeUser, **params: Any) -> dict[str, Any]:
    response = client.get(f"{API}/tensors/search", params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _names(page: dict[str, Any]) -> list[str]:
    return [item["name"] for item in page["items"]]


@pytest.fixture
def catalogue(any_db_client: TestClient, any_db_factory: Factory) -> dict[str, Any]:
    owner = any_db_factory.owner()
    ids = {
        "mnist_train": add_tensor_row(any_db_factory, name="mnist_train", description="handwritten digits, training",
                                      tags=("vision", "digits"), visibility="public", dtype="uint8",
                                      shape=(60000, 784), uploader_id=owner.id, size=400),
        "mnist_test": add_tensor_row(any_db_factory, name="mnist_test", description="handwritten digits, held out",
                                     tags=("vision", "digits", "holdout"), dtype="uint8", shape=(10000, 784),
                                     uploader_id=owner.id, size=100),
        "cifar10": add_tensor_row(any_db_factory, name="cifar10", description="small colour images",
                                  tags=("vision",), dtype="float32", shape=(50000, 3, 32, 32), size=900),
        "census": add_tensor_row(any_db_factory, name="census income", description="tabular survey features",
                                 tags=("tabular",), visibility="public", dtype="float64", shape=(3000, 14),
                                 size=200),
        "labels": add_tensor_row(any_db_factory, name="census labels", description="income above 50k",
                                 tags=("tabular", "labels"), dtype="int64", shape=(3000,), size=50),
    }
    return {"client": any_db_client, "factory": any_db_factory, "owner": owner, "ids": ids}


class TestText:
    def test_matches_word_prefixes_in_names_and_descriptions(self, catalogue: dict[str, Any]) -> None:
        client, user = catalogue["client"], catalogue["factory"].user()
        assert sorted(_names(_search(client, user, q="mnist"))) == ["mnist_test", "mnist_train"]
        assert _names(_search(client, user, q="train")) == ["mnist_train"]  # '_' separates words
        assert _names(_search(client, user, q="colo")) == ["cifar10"]  # prefix of 'colour'
        assert sorted(_names(_search(client, user, q="census"))) == ["census income", "census labels"]

    def test_every_word_must_match(self, catalogue: dict[str, Any]) -> None:
        client, user = catalogue["client"], catalogue["factory"].user()
        assert _names(_search(client, user, q="digits held")) == ["mnist_test"]
        assert _search(client, user, q="digits tabular")["total"] == 0

    def test_punctuation_in_the_query_is_harmless(self, catalogue: dict[str, Any]) -> None:
        client, user = catalogue["client"], catalogue["factory"].user()
        assert _names(_search(client, user, q='"income" (50k* -')) == ["census labels"]
        assert _search(client, user, q="'; drop table tensors; --")["total"] == 0

    def test_the_index_follows_renames_and_deletes(self, catalogue: dict[str, Any]) -> None:
        client, owner = catalogue["client"], catalogue["owner"]
        tensor_id = catalogue["ids"]["cifar10"]
        renamed = client.patch(f"{API}/tensors/{tensor_id}", headers=owner.headers,
                               json={"name": "imagenet_tiny", "description": "downsampled photos"})
        assert renamed.status_code == 200
        assert _search(client, owner, q="cifar10")["total"] == 0
        assert _search(client, owner, q="colour")["total"] == 0
        assert _names(_search(client, owner, q="imagenet photos")) == ["imagenet_tiny"]
        # the row has no blob (search fixtures); deleting still removes it from the index
        assert client.delete(f"{API}/tensors/{tensor_id}", headers=owner.headers).status_code == 204
        assert _search(client, owner, q="imagenet")["total"] == 0


class TestFilters:
    def test_tags_all_and_any(self, catalogue: dict[str, Any]) -> None:
        client, user = catalogue["client"], catalogue["factory"].user()
        assert sorted(_names(_search(client, user, tag=["vision", "digits"]))) == ["mnist_test", "mnist_train"]
        assert _names(_search(client, user, tag=["digits", "holdout"])) == ["mnist_test"]
        any_of = _search(client, user, tag=["holdout", "labels"], tags_mode="any")
        assert sorted(_names(any_of)) == ["census labels", "mnist_test"]
        assert _search(client, user, tag=["Vision"])["total"] == 3  # tags are case-insensitive

    def test_visibility_dtype_and_shape(self, catalogue: dict[str, Any]) -> None:
        client, user = catalogue["client"], catalogue["factory"].user()
        assert sorted(_names(_search(client, user, visibility="public"))) == ["census income", "mnist_train"]
        assert sorted(_names(_search(client, user, dtype="uint8"))) == ["mnist_test", "mnist_train"]
        assert _names(_search(client, user, shape="60000,784")) == ["mnist_train"]
        assert sorted(_names(_search(client, user, shape="*,784"))) == ["mnist_test", "mnist_train"]
        assert _names(_search(client, user, shape="*,3,*,32")) == ["cifar10"]
        assert _names(_search(client, user, shape="3000")) == ["census labels"]
        assert _search(client, user, shape="*")["total"] == 1  # one dimension: only the labels

    def test_filters_combine(self, catalogue: dict[str, Any]) -> None:
        client, user = catalogue["client"], catalogue["factory"].user()
        page = _search(client, user, q="digits", tag=["vision"], visibility="private", dtype="uint8")
        assert _names(page) == ["mnist_test"]

    def test_dataset_filter(self, catalogue: dict[str, Any]) -> None:
        client, owner, ids = catalogue["client"], catalogue["owner"], catalogue["ids"]
        created = client.post(f"{API}/datasets", headers=owner.headers, json={
            "name": "mnist", "members": {"train": ids["mnist_train"], "test": ids["mnist_test"]}})
        assert created.status_code == 201, created.text
        assert sorted(_names(_search(client, owner, dataset="mnist"))) == ["mnist_test", "mnist_train"]
        assert _names(_search(client, owner, dataset=str(created.json()["id"]), q="held")) == ["mnist_test"]
        assert client.get(f"{API}/tensors/search", params={"dataset": "nope"},
                          headers=owner.headers).status_code == 404

    @pytest.mark.parametrize(("params", "field"), [
        ({"dtype": "float128"}, "dtype"), ({"shape": "3,x"}, "shape"), ({"sort": "colour"}, "sort"),
        ({"tags_mode": "some"}, "tags_mode"), ({"limit": 0}, "limit"),
    ])
    def test_bad_parameters_are_422_naming_them(self, catalogue: dict[str, Any], params: dict[str, Any],
                                                field: str) -> None:
        client, user = catalogue["client"], catalogue["factory"].user()
        response = client.get(f"{API}/tensors/search", params=params, headers=user.headers)
        assert response.status_code == 422 and field in response.json()["message"]


class TestPagesAndOrder:
    def test_sorted_by_name_size_and_time_both_ways(self, catalogue: dict[str, Any]) -> None:
        client, user = catalogue["client"], catalogue["factory"].user()
        by_name = _names(_search(client, user, sort="name"))
        assert by_name == sorted(by_name)
        assert _names(_search(client, user, sort="-name")) == by_name[::-1]
        assert _names(_search(client, user, sort="size"))[0] == "census labels"
        assert _names(_search(client, user, sort="-size"))[0] == "cifar10"
        assert _names(_search(client, user))[0] == "census labels"  # newest first by default

    def test_pages_cover_every_hit_once(self, catalogue: dict[str, Any]) -> None:
        client, user = catalogue["client"], catalogue["factory"].user()
        seen: list[str] = []
        for offset in range(0, 6, 2):
            page = _search(client, user, sort="name", limit=2, offset=offset)
            assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == offset
            seen += _names(page)
        assert seen == sorted(seen) and len(set(seen)) == 5

    def test_list_is_the_same_without_text(self, catalogue: dict[str, Any]) -> None:
        client, user = catalogue["client"], catalogue["factory"].user()
        listed = client.get(f"{API}/tensors", params={"tag": "tabular", "sort": "name"}, headers=user.headers)
        assert _names(listed.json()) == ["census income", "census labels"]


class TestLevels:
    def test_each_hit_carries_the_callers_effective_level(self, catalogue: dict[str, Any]) -> None:
        client, owner, ids = catalogue["client"], catalogue["owner"], catalogue["ids"]
        scientist = catalogue["factory"].user()
        grant = client.post(f"{API}/permissions", headers=owner.headers, json={
            "subject_type": "user", "subject": scientist.email, "target_type": "tensor",
            "target_id": ids["cifar10"], "level": "compute"})
        assert grant.status_code == 201, grant.text
        deny = client.post(f"{API}/permissions", headers=owner.headers, json={
            "subject_type": "user", "subject": scientist.email, "target_type": "tensor",
            "target_id": ids["mnist_train"], "level": "deny"})
        assert deny.status_code == 201, deny.text
        levels = {item["name"]: item["level"] for item in _search(client, scientist)["items"]}
        assert levels == {"mnist_train": "deny", "mnist_test": "search", "cifar10": "compute",
                          "census income": "download", "census labels": "search"}
        detail = client.get(f"{API}/tensors/{ids['cifar10']}", headers=scientist.headers).json()
        assert detail["level"] == "compute"


class TestBroadFiltersOnSqlite:
    def test_walking_the_sort_index_gives_the_same_pages_as_sorting(
        self, client: TestClient, factory: Factory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from grid_runtime.node.tensors import service

        for i in range(30):
            add_tensor_row(factory, name=f"scan {i:02d}", description="broad", tags=("wide",) if i % 2 else (),
                           size=(i * 37) % 11)
        user = factory.user()
        queries = [{"q": "broad", "sort": "size"}, {"tag": "wide", "sort": "-name", "offset": 3, "limit": 4},
                   {"q": "scan", "tag": "wide", "sort": "-created_at", "limit": 5}]
        sorted_pages = [_search(client, user, **q) for q in queries]
        monkeypatch.setattr(service, "_walk_the_order_index", lambda *args: True)
        walked_pages = [_search(client, user, **q) for q in queries]
        assert walked_pages == sorted_pages
        assert [len(p["items"]) for p in walked_pages] == [30, 4, 5]
