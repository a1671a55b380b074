"""Groups of users: CRUD, membership, unique names, refs by id or name."""

from __future__ import annotations

from fastapi.testclient import TestClient
from httpx2 import Response

from grid_runtime.core.capabilities import Capability
from tests.factories import Factory, MadeUser

API = "/api/v1"


def _assert_refused(response: Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert response.json()["message"]


def _manager(factory: Factory) -> MadeUser:
    return factory.user(capabilities={Capability.manage_groups})


class TestCreateGroup:
    def test_creates_a_group_and_records_it(self, client: TestClient, factory: Factory) -> None:
        manager = _manager(factory)
        response = client.post(f"{API}/groups", headers=manager.headers,
                               json={"name": "oncology", "description": "the oncology team"})
        assert response.status_code == 201, response.text
        group = response.json()
        assert group["name"] == "oncology" and group["description"] == "the oncology team"
        assert group["member_count"] == 0 and group["created_at"]
        assert factory.audit_actions()[-1] == "group.created"

    def test_refuses_a_duplicate_name_and_changes_nothing(self, client: TestClient, factory: Factory) -> None:
        manager = _manager(factory)
        client.post(f"{API}/groups", headers=manager.headers, json={"name": "oncology"})
        before = factory.snapshot()
        response = client.post(f"{API}/groups", headers=manager.headers, json={"name": "oncology"})
        _assert_refused(response, 409, "already_exists")
        assert factory.snapshot() == before

    def test_refuses_bad_input_naming_the_field(self, client: TestClient, factory: Factory) -> None:
        manager = _manager(factory)
        before = factory.snapshot()
        for body, field in (({"name": "g" * 65}, "name"), ({"name": "ok", "description": "d" * 501}, "description"),
                            ({"name": "42"}, "name"), ({"name": "ok", "members": []}, "members")):
            response = client.post(f"{API}/groups", headers=manager.headers, json=body)
            _assert_refused(response, 422, "invalid_input")
            assert field in response.json()["message"]
        malformed = client.post(f"{API}/groups", headers={**manager.headers, "Content-Type": "application/json"},
                                content=b"{")
        _assert_refused(malformed, 400, "malformed_json")
        assert factory.snapshot() == before


class TestListGroups:
    def test_pages_and_filters_by_name(self, client: TestClient, factory: Factory) -> None:
        manager = _manager(factory)
        for name in ("cardio-a", "cardio-b", "neuro", "cardio_c"):
            client.post(f"{API}/groups", headers=manager.headers, json={"name": name})
        page = client.get(f"{API}/groups?limit=2&offset=1", headers=manager.headers).json()
        assert page["total"] == 4 and (page["limit"], page["offset"]) == (2, 1)
        assert [g["name"] for g in page["items"]] == ["cardio-b", "cardio_c"]
        cardio = client.get(f"{API}/groups?q=CARDIO", headers=manager.headers).json()
        assert cardio["total"] == 3
        underscore = client.get(f"{API}/groups?q=o_", headers=manager.headers).json()
        assert [g["name"] for g in underscore["items"]] == ["cardio_c"]

    def test_refuses_a_limit_out_of_range(self, client: TestClient, factory: Factory) -> None:
        manager = _manager(factory)
        _assert_refused(client.get(f"{API}/groups?limit=1000", headers=manager.headers), 422, "invalid_input")


class TestGetGroup:
    def test_shows_members_by_id_or_name(self, client: TestClient, factory: Factory) -> None:
        manager = _manager(factory)
        user = factory.user()
        created = client.post(f"{API}/groups", headers=manager.headers, json={"name": "oncology"}).json()
        client.put(f"{API}/groups/oncology/members/{user.email}", headers=manager.headers)
        by_id = client.get(f"{API}/groups/{created['id']}", headers=manager.headers)
        by_name = client.get(f"{API}/groups/oncology", headers=manager.headers)
        assert by_id.status_code == 200 and by_id.json() == by_name.json()
        assert by_id.json()["members"] == [{"id": user.id, "email": user.email}]
        assert by_id.json()["member_count"] == 1

    def test_unknown_group_is_404(self, client: TestClient, factory: Factory) -> None:
        manager = _manager(factory)
        _assert_refused(client.get(f"{API}/groups/nope", headers=manager.headers), 404, "not_found")
        _assert_refused(client.get(f"{API}/groups/777", headers=manager.headers), 404, "not_found")


class TestUpdateGroup:
    def test_renames_and_describes(self, client: TestClient, factory: Factory) -> None:
        manager = _manager(factory)
        client.post(f"{API}/groups", headers=manager.headers, json={"name": "onc"})
        response = client.patch(f"{API}/groups/onc", headers=manager.headers,
                                json={"name": "oncology", "description": "renamed"})
        assert response.status_code == 200
        assert (response.json()["name"], response.json()["description"]) == ("oncology", "renamed")
        assert factory.audit_actions()[-1] == "group.updated"

    def test_refuses_a_name_already_taken(self, client: TestClient, factory: Factory) -> None:
        manager = _manager(factory)
        client.post(f"{API}/groups", headers=manager.headers, json={"name": "a"})
        client.post(f"{API}/groups", headers=manager.headers, json={"name": "b"})
        before = factory.snapshot()
        response = client.patch(f"{API}/groups/a", headers=manager.headers, json={"name": "b", "description": "x"})
        _assert_refused(response, 409, "already_exists")
        over_long = client.patch(f"{API}/groups/a", headers=manager.headers, json={"description": "d" * 501})
        _assert_refused(over_long, 422, "invalid_input")
        assert factory.snapshot() == before


class TestDeleteGroup:
    def test_deletes_the_group_and_memberships_but_not_the_users(self, client: TestClient, factory: Factory) -> None:
        manager = _manager(factory)
        admin = factory.user("Administrator")
        user = factory.user()
        client.post(f"{API}/groups", headers=manager.headers, json={"name": "oncology"})
        client.put(f"{API}/groups/oncology/members/{user.id}", headers=manager.headers)
        assert client.delete(f"{API}/groups/oncology", headers=manager.headers).status_code == 204
        _assert_refused(client.get(f"{API}/groups/oncology", headers=manager.headers), 404, "not_found")
        me = client.get(f"{API}/users/{user.id}", headers=admin.headers)
        assert me.status_code == 200 and me.json()["groups"] == []
        assert factory.audit_actions()[-1] == "group.deleted"

    def test_unknown_group_is_404(self, client: TestClient, factory: Factory) -> None:
        manager = _manager(factory)
        _assert_refused(client.delete(f"{API}/groups/nope", headers=manager.headers), 404, "not_found")


class TestMembers:
    def test_adds_and_removes_members_by_id_or_email(self, client: TestClient, factory: Factory) -> None:
        manager = _manager(factory)
        alice, bob = factory.user(), factory.user()
        client.post(f"{API}/groups", headers=manager.headers, json={"name": "oncology"})
        added = client.put(f"{API}/groups/oncology/members/{alice.email.upper()}", headers=manager.headers)
        assert added.status_code == 200 and added.json()["members"] == [{"id": alice.id, "email": alice.email}]
        both = client.put(f"{API}/groups/oncology/members/{bob.id}", headers=manager.headers).json()
        assert [m["id"] for m in both["members"]] == [alice.id, bob.id] and both["member_count"] == 2
        removed = client.delete(f"{API}/groups/oncology/members/{alice.id}", headers=manager.headers)
        assert removed.status_code == 200 and removed.json()["members"] == [{"id": bob.id, "email": bob.email}]
        actions = factory.audit_actions()
        assert actions.count("group.member_added") == 2 and actions[-1] == "group.member_removed"

    def test_adding_a_member_again_changes_nothing(self, client: TestClient, factory: Factory) -> None:
        manager = _manager(factory)
        user = factory.user()
        client.post(f"{API}/groups", headers=manager.headers, json={"name": "oncology"})
        client.put(f"{API}/groups/oncology/members/{user.id}", headers=manager.headers)
        before = factory.snapshot()
        again = client.put(f"{API}/groups/oncology/members/{user.id}", headers=manager.headers)
        assert again.status_code == 200 and again.json()["member_count"] == 1
        assert factory.snapshot() == before

    def test_unknown_user_group_or_membership_is_404_and_changes_nothing(
        self, client: TestClient, factory: Factory
    ) -> None:
        manager = _manager(factory)
        user = factory.user()
        client.post(f"{API}/groups", headers=manager.headers, json={"name": "oncology"})
        before = factory.snapshot()
        for method, path in (
            ("PUT", "/groups/oncology/members/ghost@example.com"),
            ("PUT", f"/groups/nope/members/{user.id}"),
            ("DELETE", f"/groups/oncology/members/{user.id}"),  # not a member
            ("DELETE", "/groups/oncology/members/99999"),
        ):
            _assert_refused(client.request(method, f"{API}{path}", headers=manager.headers), 404, "not_found")
        assert factory.snapshot() == before


class TestMembershipThatWidensAccess:
    """A group that carries grants decides who may read what: changing its members is permission management."""

    def _grouped(self, client: TestClient, factory: Factory) -> tuple[int, str]:
        owner = factory.owner()
        tensor = factory.tensor(visibility="private")
        group = factory.group()
        granted = client.post(f"{API}/permissions", headers=owner.headers, json={
            "subject_type": "group", "subject": group, "target_type": "tensor", "target_id": tensor,
            "level": "download"})
        assert granted.status_code == 201, granted.text
        return group, str(tensor)

    def test_a_group_manager_cannot_add_themselves_to_a_group_with_grants(
        self, client: TestClient, factory: Factory
    ) -> None:
        group, _ = self._grouped(client, factory)
        manager = factory.user(capabilities={Capability.manage_groups})
        before = factory.snapshot()
        response = client.put(f"{API}/groups/{group}/members/{manager.id}", headers=manager.headers)
        assert response.status_code == 403 and response.json()["details"] == {"missing": ["manage_permissions"]}
        assert factory.snapshot() == before
        other = factory.user()
        assert client.put(f"{API}/groups/{group}/members/{other.id}", headers=manager.headers).status_code == 403
        assert client.delete(f"{API}/groups/{group}", headers=manager.headers).status_code == 403

    def test_with_manage_permissions_or_without_grants_membership_is_managed_as_before(
        self, client: TestClient, factory: Factory
    ) -> None:
        group, _ = self._grouped(client, factory)
        both = factory.user(capabilities={Capability.manage_groups, Capability.manage_permissions})
        member = factory.user()
        assert client.put(f"{API}/groups/{group}/members/{member.id}", headers=both.headers).status_code == 200
        assert client.delete(f"{API}/groups/{group}/members/{member.id}", headers=both.headers).status_code == 200
        plain = factory.group()
        manager = factory.user(capabilities={Capability.manage_groups})
        assert client.put(f"{API}/groups/{plain}/members/{member.id}", headers=manager.headers).status_code == 200
