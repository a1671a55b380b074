"""Roles: preset and custom, unique names, refs by id or name, and the anti-escalation rules.

These run on SQLite and on PostgreSQL (``any_db_client``).
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from httpx2 import Response

from grid_runtime.core.capabilities import PRESET_ROLES, Capability
from tests.factories import Factory

API = "/api/v1"
ROLE_EDITOR = {Capability.edit_roles, Capability.view_statistics, Capability.upload_data}


def _assert_refused(response: Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert response.json()["message"]


class TestListRoles:
    def test_any_user_sees_the_presets_with_capabilities_and_user_counts(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        user = any_db_factory.user()
        any_db_factory.user("Compliance Officer")
        any_db_factory.user("Compliance Officer")
        response = any_db_client.get(f"{API}/roles", headers=user.headers)
        assert response.status_code == 200
        roles = {r["name"]: r for r in response.json()}
        assert set(PRESET_ROLES) <= set(roles)
        assert all(roles[name]["preset"] for name in PRESET_ROLES)
        assert roles["Compliance Officer"]["capabilities"] == ["manage_budgets", "triage_requests",
                                                               "view_statistics"]
        assert roles["Compliance Officer"]["user_count"] == 2
        assert roles["Owner"]["capabilities"] == sorted(c.value for c in Capability)

    def test_returns_401_without_a_token(self, any_db_client: TestClient) -> None:
        _assert_refused(any_db_client.get(f"{API}/roles"), 401, "unauthorized")


class TestGetRole:
    def test_finds_a_role_by_name_or_id(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        user = any_db_factory.user()
        by_name = any_db_client.get(f"{API}/roles/Administrator", headers=user.headers)
        assert by_name.status_code == 200
        by_id = any_db_client.get(f"{API}/roles/{by_name.json()['id']}", headers=user.headers)
        assert by_id.json() == by_name.json()
        assert set(by_id.json()) == {"id", "name", "description", "capabilities", "preset", "user_count"}

    def test_unknown_role_is_404(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        user = any_db_factory.user()
        _assert_refused(any_db_client.get(f"{API}/roles/Wizard", headers=user.headers), 404, "not_found")
        _assert_refused(any_db_client.get(f"{API}/roles/99999", headers=user.headers), 404, "not_found")


class TestCreateRole:
    def test_creates_a_custom_role_from_capabilities_the_actor_holds(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        editor = any_db_factory.user(capabilities=ROLE_EDITOR)
        body = {"name": "Uploader", "description": "uploads data",
                "capabilities": ["upload_data", "view_statistics", "upload_data"]}
        response = any_db_client.post(f"{API}/roles", headers=editor.headers, json=body)
        assert response.status_code == 201, response.text
        role = response.json()
        assert role["name"] == "Uploader" and role["preset"] is False and role["user_count"] == 0
        assert role["capabilities"] == ["upload_data", "view_statistics"]
        assert any_db_factory.audit_actions()[-1] == "role.created"
        assert any_db_client.get(f"{API}/roles/Uploader", headers=editor.headers).json() == role

    def test_refuses_capabilities_the_actor_lacks_and_changes_nothing(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        editor = any_db_factory.user(capabilities=ROLE_EDITOR)
        before = any_db_factory.snapshot()
        response = any_db_client.post(f"{API}/roles", headers=editor.headers,
                                      json={"name": "Escalator", "capabilities": ["manage_users"]})
        _assert_refused(response, 403, "forbidden")
        assert "manage_users" in response.json()["message"]
        assert any_db_factory.snapshot() == before

    def test_refuses_a_duplicate_name_and_changes_nothing(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        owner = any_db_factory.owner()
        before = any_db_factory.snapshot()
        for name in ("Administrator", "Data Scientist"):
            response = any_db_client.post(f"{API}/roles", headers=owner.headers, json={"name": name})
            _assert_refused(response, 409, "already_exists")
        assert any_db_factory.snapshot() == before

    def test_refuses_bad_input_naming_the_field(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        owner = any_db_factory.owner()
        before = any_db_factory.snapshot()
        cases = [
            ({"name": "n" * 65}, "name"),
            ({"name": "ok", "description": "d" * 501}, "description"),
            ({"name": "12345"}, "name"),  # would read as an id
            ({"name": ""}, "name"),
            ({"name": "ok", "capabilities": ["fly"]}, "capabilities"),
            ({"name": "ok", "capabilities": "manage_users"}, "capabilities"),
            ({"name": "ok", "preset": True}, "preset"),
        ]
        for body, field in cases:
            response = any_db_client.post(f"{API}/roles", headers=owner.headers, json=body)
            _assert_refused(response, 422, "invalid_input")
            assert field in response.json()["message"], (body, response.json())
        malformed = any_db_client.post(f"{API}/roles", headers={**owner.headers, "Content-Type": "application/json"},
                                       content=b'{"name": "x"')
        _assert_refused(malformed, 400, "malformed_json")
        assert any_db_factory.snapshot() == before


class TestUpdateRole:
    def test_renames_and_changes_capabilities_and_records_it(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        editor = any_db_factory.user(capabilities=ROLE_EDITOR)
        role_id = any_db_factory.role("analyst", {Capability.view_statistics})
        member = any_db_factory.user("analyst")
        response = any_db_client.patch(f"{API}/roles/{role_id}", headers=editor.headers,
                                       json={"name": "Analyst", "description": "reads stats",
                                             "capabilities": ["upload_data", "view_statistics"]})
        assert response.status_code == 200, response.text
        assert response.json()["name"] == "Analyst" and response.json()["user_count"] == 1
        # Holders of the role get the new capabilities on their next request.
        me = any_db_client.get(f"{API}/users/me", headers=member.headers).json()
        assert me["capabilities"] == ["upload_data", "view_statistics"] and me["role"]["name"] == "Analyst"
        events = any_db_client.get(f"{API}/audit?action=role.updated", headers=editor.headers).json()["items"]
        assert events[0]["details"]["changes"]["name"] == {"from": "analyst", "to": "Analyst"}

    def test_refuses_editing_a_preset_role(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        owner = any_db_factory.owner()
        before = any_db_factory.snapshot()
        for name in PRESET_ROLES:
            response = any_db_client.patch(f"{API}/roles/{name}", headers=owner.headers,
                                           json={"description": "changed"})
            _assert_refused(response, 403, "forbidden")
        assert any_db_factory.snapshot() == before

    def test_refuses_granting_capabilities_the_actor_lacks(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        editor = any_db_factory.user(capabilities=ROLE_EDITOR)
        any_db_factory.role("analyst", {Capability.view_statistics})
        before = any_db_factory.snapshot()
        response = any_db_client.patch(f"{API}/roles/analyst", headers=editor.headers,
                                       json={"capabilities": ["view_statistics", "manage_permissions"]})
        _assert_refused(response, 403, "forbidden")
        assert any_db_factory.snapshot() == before

    def test_refuses_editing_a_role_more_capable_than_the_actor(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        editor = any_db_factory.user(capabilities=ROLE_EDITOR)
        any_db_factory.role("user-admins", {Capability.manage_users})
        before = any_db_factory.snapshot()
        bodies: list[dict[str, object]] = [{"capabilities": []}, {"name": "renamed"}]
        for body in bodies:
            response = any_db_client.patch(f"{API}/roles/user-admins", headers=editor.headers, json=body)
            _assert_refused(response, 403, "forbidden")
        assert any_db_factory.snapshot() == before

    def test_refuses_a_name_already_taken(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        owner = any_db_factory.owner()
        any_db_factory.role("analyst")
        before = any_db_factory.snapshot()
        response = any_db_client.patch(f"{API}/roles/analyst", headers=owner.headers,
                                       json={"name": "Owner", "description": "changed as well"})
        _assert_refused(response, 409, "already_exists")
        assert any_db_factory.snapshot() == before

    def test_refuses_over_long_fields_and_unknown_roles(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        owner = any_db_factory.owner()
        any_db_factory.role("analyst")
        before = any_db_factory.snapshot()
        for body in ({"name": "n" * 65}, {"description": "d" * 501}):
            response = any_db_client.patch(f"{API}/roles/analyst", headers=owner.headers, json=body)
            _assert_refused(response, 422, "invalid_input")
        _assert_refused(any_db_client.patch(f"{API}/roles/Wizard", headers=owner.headers, json={}), 404,
                        "not_found")
        assert any_db_factory.snapshot() == before


class TestDeleteRole:
    def test_deletes_an_unused_custom_role(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        editor = any_db_factory.user(capabilities=ROLE_EDITOR)
        role_id = any_db_factory.role("temporary", {Capability.upload_data})
        response = any_db_client.delete(f"{API}/roles/{role_id}", headers=editor.headers)
        assert response.status_code == 204
        _assert_refused(any_db_client.get(f"{API}/roles/temporary", headers=editor.headers), 404, "not_found")
        assert any_db_factory.audit_actions()[-1] == "role.deleted"

    def test_refuses_a_role_in_use_or_a_preset_and_changes_nothing(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        owner = any_db_factory.owner()
        any_db_factory.role("analyst")
        any_db_factory.user("analyst")
        before = any_db_factory.snapshot()
        in_use = any_db_client.delete(f"{API}/roles/analyst", headers=owner.headers)
        _assert_refused(in_use, 409, "conflict")
        assert in_use.json()["details"] == {"user_count": 1}
        for name in PRESET_ROLES:
            _assert_refused(any_db_client.delete(f"{API}/roles/{name}", headers=owner.headers), 403, "forbidden")
        _assert_refused(any_db_client.delete(f"{API}/roles/Wizard", headers=owner.headers), 404, "not_found")
        assert any_db_factory.snapshot() == before
