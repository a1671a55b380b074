"""Users: CRUD, disabling, deletion, password resets, budgets, ownership and the anti-escalation rules.

These run on SQLite and on PostgreSQL (``any_db_client``).
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select

from grid_runtime.core.capabilities import ALL, Capability
from grid_runtime.node.auth.models import Token
from grid_runtime.node.groups.models import GroupMember
from grid_runtime.node.users.models import User
from tests.factories import PASSWORD, Factory

API = "/api/v1"


def _new_user(email: str = "new@example.com", **fields: object) -> dict[str, object]:
    return {"email": email, "password": "a long password", **fields}


def _assert_refused(response: Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert response.json()["message"]


class TestMe:
    def test_returns_your_account_with_role_capabilities_and_groups(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        officer = any_db_factory.user("Compliance Officer", budget=2.5)
        admin = any_db_factory.user("Administrator")
        any_db_client.post(f"{API}/groups", json={"name": "oncology"}, headers=admin.headers)
        any_db_client.put(f"{API}/groups/oncology/members/{officer.email}", headers=admin.headers)
        me = any_db_client.get(f"{API}/users/me", headers=officer.headers)
        assert me.status_code == 200
        body = me.json()
        assert body["id"] == officer.id and body["email"] == officer.email
        assert body["role"]["name"] == "Compliance Officer"
        assert body["capabilities"] == ["manage_budgets", "triage_requests", "view_statistics"]
        assert body["budget_epsilon"] == 2.5 and body["disabled"] is False
        assert body["groups"] == ["oncology"]
        assert "password_hash" not in body

    def test_returns_401_without_a_token(self, any_db_client: TestClient) -> None:
        _assert_refused(any_db_client.get(f"{API}/users/me"), 401, "unauthorized")


class TestCreateUser:
    def test_creates_a_data_scientist_by_default_who_can_log_in(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        admin = any_db_factory.user("Administrator")
        response = any_db_client.post(f"{API}/users", headers=admin.headers,
                                      json=_new_user("Alice@Example.com", full_name="Alice"))
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["email"] == "alice@example.com" and body["full_name"] == "Alice"
        assert body["role"]["name"] == "Data Scientist" and body["capabilities"] == []
        assert body["budget_epsilon"] == 0.0 and body["groups"] == []
        assert any_db_factory.audit_actions()[-1] == "user.created"
        login = any_db_client.post(f"{API}/auth/login", json={"email": "alice@example.com",
                                                              "password": "a long password"})
        assert login.status_code == 200

    def test_takes_a_role_by_name_or_by_id(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        admin = any_db_factory.user("Administrator")
        officer_id = any_db_client.get(f"{API}/roles/Compliance Officer", headers=admin.headers).json()["id"]
        by_name = any_db_client.post(f"{API}/users", headers=admin.headers,
                                     json=_new_user("a@example.com", role="Compliance Officer"))
        by_id = any_db_client.post(f"{API}/users", headers=admin.headers,
                                   json=_new_user("b@example.com", role=officer_id))
        by_id_string = any_db_client.post(f"{API}/users", headers=admin.headers,
                                          json=_new_user("c@example.com", role=str(officer_id)))
        assert [r.json()["role"]["id"] for r in (by_name, by_id, by_id_string)] == [officer_id] * 3

    def test_sets_a_budget_when_the_actor_also_manages_budgets(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        admin = any_db_factory.user("Administrator")
        response = any_db_client.post(f"{API}/users", headers=admin.headers, json=_new_user(budget_epsilon=3.0))
        assert response.status_code == 201 and response.json()["budget_epsilon"] == 3.0

    def test_refuses_a_budget_without_manage_budgets_and_creates_nothing(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        manager = any_db_factory.user(capabilities={Capability.manage_users})
        before = any_db_factory.snapshot()
        response = any_db_client.post(f"{API}/users", headers=manager.headers, json=_new_user(budget_epsilon=1.0))
        _assert_refused(response, 403, "forbidden")
        assert "manage_budgets" in response.json()["message"]
        assert any_db_factory.snapshot() == before

    def test_refuses_a_duplicate_email_in_any_case_and_changes_nothing(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        admin = any_db_factory.user("Administrator")
        existing = any_db_factory.user()
        before = any_db_factory.snapshot()
        response = any_db_client.post(f"{API}/users", headers=admin.headers,
                                      json=_new_user(existing.email.upper()))
        _assert_refused(response, 409, "already_exists")
        assert any_db_factory.snapshot() == before

    def test_refuses_an_unknown_role_naming_it_and_changes_nothing(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        admin = any_db_factory.user("Administrator")
        before = any_db_factory.snapshot()
        response = any_db_client.post(f"{API}/users", headers=admin.headers, json=_new_user(role="Wizard"))
        _assert_refused(response, 422, "invalid_input")
        assert "Wizard" in response.json()["message"] and "role" in response.json()["message"]
        unknown_id = any_db_client.post(f"{API}/users", headers=admin.headers, json=_new_user(role=99999))
        _assert_refused(unknown_id, 422, "invalid_input")
        assert any_db_factory.snapshot() == before

    def test_refuses_a_role_with_capabilities_the_actor_lacks(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        admin = any_db_factory.user("Administrator")  # has neither edit_roles nor manage_infrastructure
        any_db_factory.role("role-editor", {Capability.edit_roles})
        before = any_db_factory.snapshot()
        for role in ("role-editor", "Owner"):
            response = any_db_client.post(f"{API}/users", headers=admin.headers, json=_new_user(role=role))
            _assert_refused(response, 403, "forbidden")
        assert any_db_factory.snapshot() == before

    def test_refuses_the_owner_role_even_to_the_owner(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        owner = any_db_factory.owner()
        before = any_db_factory.snapshot()
        response = any_db_client.post(f"{API}/users", headers=owner.headers, json=_new_user(role="Owner"))
        _assert_refused(response, 403, "forbidden")
        assert "transfer" in response.json()["message"]
        assert any_db_factory.snapshot() == before

    def test_refuses_over_long_fields_naming_them(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        admin = any_db_factory.user("Administrator")
        before = any_db_factory.snapshot()
        cases = {
            "email": _new_user("a" * 250 + "@example.com"),
            "full_name": _new_user(full_name="x" * 129),
            "password": _new_user(password="p" * 257),
            "role": _new_user(role="r" * 65),
        }
        for field, body in cases.items():
            response = any_db_client.post(f"{API}/users", headers=admin.headers, json=body)
            _assert_refused(response, 422, "invalid_input")
            assert field in response.json()["message"]
        assert any_db_factory.snapshot() == before

    def test_refuses_bad_input(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        admin = any_db_factory.user("Administrator")
        before = any_db_factory.snapshot()
        for body in (
            _new_user(password="short"),
            _new_user("not-an-email"),
            _new_user(budget_epsilon=-1),
            _new_user(is_admin=True),  # unknown fields are refused, not ignored
            {"password": "a long password"},
        ):
            _assert_refused(any_db_client.post(f"{API}/users", headers=admin.headers, json=body), 422,
                            "invalid_input")
        malformed = any_db_client.post(f"{API}/users", headers={**admin.headers, "Content-Type": "application/json"},
                                       content=b'{"email": "x@example.com", ')
        _assert_refused(malformed, 400, "malformed_json")
        assert any_db_factory.snapshot() == before


class TestListUsers:
    def test_pages_through_users_with_the_total(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        admin = any_db_factory.user("Administrator")
        for _ in range(4):
            any_db_factory.user()
        first = any_db_client.get(f"{API}/users?limit=2", headers=admin.headers).json()
        second = any_db_client.get(f"{API}/users?limit=2&offset=2", headers=admin.headers).json()
        assert first["total"] == second["total"] == 5
        assert (first["limit"], first["offset"], second["offset"]) == (2, 0, 2)
        ids = [u["id"] for u in first["items"] + second["items"]]
        assert len(ids) == 4 and ids == sorted(ids)

    def test_filters_by_role_disabled_substring_and_group(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        admin = any_db_factory.user("Administrator")
        officer = any_db_factory.user("Compliance Officer", email="officer.jones@example.com")
        scientist = any_db_factory.user(email="sci_100%@example.com")
        any_db_client.patch(f"{API}/users/{scientist.id}", json={"disabled": True, "full_name": "Ada Lovelace"},
                            headers=admin.headers)
        any_db_client.post(f"{API}/groups", json={"name": "cardio"}, headers=admin.headers)
        any_db_client.put(f"{API}/groups/cardio/members/{officer.id}", headers=admin.headers)

        def emails(query: str) -> list[str]:
            response = any_db_client.get(f"{API}/users?{query}", headers=admin.headers)
            assert response.status_code == 200, response.text
            return [u["email"] for u in response.json()["items"]]

        assert emails("role=Compliance Officer") == [officer.email]
        assert emails("disabled=true") == [scientist.email]
        assert officer.email in emails("disabled=false") and scientist.email not in emails("disabled=false")
        assert emails("q=JONES") == [officer.email]
        assert emails("q=lovelace") == [scientist.email]
        assert emails("q=100%") == [scientist.email]  # % is a literal, not a wildcard
        assert emails("q=i_1") == [scientist.email]  # and so is _
        assert emails("group=cardio") == [officer.email]
        assert emails("group=cardio&role=Administrator") == []

    def test_unknown_role_or_group_filter_is_404(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        admin = any_db_factory.user("Administrator")
        _assert_refused(any_db_client.get(f"{API}/users?role=Wizard", headers=admin.headers), 404, "not_found")
        _assert_refused(any_db_client.get(f"{API}/users?group=nobody", headers=admin.headers), 404, "not_found")

    def test_refuses_a_limit_out_of_range(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        admin = any_db_factory.user("Administrator")
        for query in ("limit=0", "limit=501", "offset=-1"):
            response = any_db_client.get(f"{API}/users?{query}", headers=admin.headers)
            _assert_refused(response, 422, "invalid_input")
            assert query.split("=")[0] in response.json()["message"]


class TestGetUser:
    def test_finds_a_user_by_id_or_email_in_any_case(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        admin = any_db_factory.user("Administrator")
        user = any_db_factory.user()
        for ref in (str(user.id), user.email, user.email.upper()):
            response = any_db_client.get(f"{API}/users/{ref}", headers=admin.headers)
            assert response.status_code == 200 and response.json()["id"] == user.id

    def test_anyone_reads_their_own_account_but_not_others(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        user = any_db_factory.user()
        other = any_db_factory.user()
        assert any_db_client.get(f"{API}/users/{user.id}", headers=user.headers).status_code == 200
        assert any_db_client.get(f"{API}/users/{user.email}", headers=user.headers).status_code == 200
        _assert_refused(any_db_client.get(f"{API}/users/{other.id}", headers=user.headers), 403, "forbidden")
        # The same answer whether or not the user exists: no probing for accounts.
        _assert_refused(any_db_client.get(f"{API}/users/ghost@example.com", headers=user.headers), 403,
                        "forbidden")

    def test_unknown_user_is_404(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        admin = any_db_factory.user("Administrator")
        _assert_refused(any_db_client.get(f"{API}/users/99999", headers=admin.headers), 404, "not_found")
        _assert_refused(any_db_client.get(f"{API}/users/ghost@example.com", headers=admin.headers), 404,
                        "not_found")


class TestUpdateUser:
    def test_changes_email_name_and_role_and_records_it(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        admin = any_db_factory.user("Administrator")
        user = any_db_factory.user()
        response = any_db_client.patch(
            f"{API}/users/{user.email}", headers=admin.headers,
            json={"email": "Renamed@Example.com", "full_name": "Renamed", "role": "Compliance Officer"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["email"], body["full_name"], body["role"]["name"]) == (
            "renamed@example.com", "Renamed", "Compliance Officer")
        assert "triage_requests" in body["capabilities"]
        events = any_db_client.get(f"{API}/audit?action=user.updated", headers=admin.headers).json()["items"]
        assert events[0]["target_id"] == str(user.id)
        assert events[0]["details"]["changes"]["role"] == {"from": "Data Scientist", "to": "Compliance Officer"}

    def test_an_empty_patch_changes_nothing(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        admin = any_db_factory.user("Administrator")
        user = any_db_factory.user()
        before = any_db_factory.snapshot()
        assert any_db_client.patch(f"{API}/users/{user.id}", headers=admin.headers, json={}).status_code == 200
        assert any_db_factory.snapshot() == before

    def test_refuses_an_email_already_taken(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        admin = any_db_factory.user("Administrator")
        user, other = any_db_factory.user(), any_db_factory.user()
        before = any_db_factory.snapshot()
        response = any_db_client.patch(f"{API}/users/{user.id}", headers=admin.headers,
                                       json={"email": other.email, "full_name": "changed too"})
        _assert_refused(response, 409, "already_exists")
        assert any_db_factory.snapshot() == before

    def test_refuses_an_unknown_role(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        admin = any_db_factory.user("Administrator")
        user = any_db_factory.user()
        before = any_db_factory.snapshot()
        response = any_db_client.patch(f"{API}/users/{user.id}", headers=admin.headers, json={"role": "Wizard"})
        _assert_refused(response, 422, "invalid_input")
        assert "Wizard" in response.json()["message"]
        assert any_db_factory.snapshot() == before

    def test_refuses_changing_your_own_role(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        admin = any_db_factory.user("Administrator")
        before = any_db_factory.snapshot()
        response = any_db_client.patch(f"{API}/users/{admin.id}", headers=admin.headers,
                                       json={"role": "Data Scientist"})
        _assert_refused(response, 403, "forbidden")
        assert "own role" in response.json()["message"]
        assert any_db_factory.snapshot() == before

    def test_refuses_assigning_a_role_the_actor_does_not_fully_hold(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        manager = any_db_factory.user(capabilities={Capability.manage_users, Capability.view_statistics})
        user = any_db_factory.user()
        before = any_db_factory.snapshot()
        for role in ("Compliance Officer", "Administrator", "Owner"):
            response = any_db_client.patch(f"{API}/users/{user.id}", headers=manager.headers, json={"role": role})
            _assert_refused(response, 403, "forbidden")
        assert any_db_factory.snapshot() == before
        # A role within the actor's own capabilities is fine.
        any_db_factory.role("stats-reader", {Capability.view_statistics})
        ok = any_db_client.patch(f"{API}/users/{user.id}", headers=manager.headers, json={"role": "stats-reader"})
        assert ok.status_code == 200 and ok.json()["role"]["name"] == "stats-reader"

    def test_refuses_editing_a_user_more_capable_than_the_actor(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        manager = any_db_factory.user(capabilities={Capability.manage_users})
        admin = any_db_factory.user("Administrator")
        before = any_db_factory.snapshot()
        for body in ({"full_name": "x"}, {"disabled": True}, {"role": "Data Scientist"}):
            response = any_db_client.patch(f"{API}/users/{admin.id}", headers=manager.headers, json=body)
            _assert_refused(response, 403, "forbidden")
        assert any_db_factory.snapshot() == before

    def test_an_administrator_cannot_edit_disable_or_demote_the_owner(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        owner = any_db_factory.owner()
        admin = any_db_factory.user("Administrator")
        before = any_db_factory.snapshot()
        for body in ({"full_name": "x"}, {"email": "o2@example.com"}, {"disabled": True},
                     {"role": "Administrator"}):
            response = any_db_client.patch(f"{API}/users/{owner.id}", headers=admin.headers, json=body)
            _assert_refused(response, 403, "forbidden")
            assert "Owner" in response.json()["message"]
        assert any_db_factory.snapshot() == before

    def test_the_owner_cannot_disable_or_demote_themself(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        owner = any_db_factory.owner()
        before = any_db_factory.snapshot()
        for body in ({"disabled": True}, {"role": "Administrator"}):
            response = any_db_client.patch(f"{API}/users/{owner.id}", headers=owner.headers, json=body)
            _assert_refused(response, 403, "forbidden")
        assert any_db_factory.snapshot() == before
        renamed = any_db_client.patch(f"{API}/users/{owner.id}", headers=owner.headers, json={"full_name": "Olga"})
        assert renamed.status_code == 200 and renamed.json()["full_name"] == "Olga"

    def test_nobody_disables_themself(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        admin = any_db_factory.user("Administrator")
        before = any_db_factory.snapshot()
        response = any_db_client.patch(f"{API}/users/{admin.id}", headers=admin.headers, json={"disabled": True})
        _assert_refused(response, 409, "conflict")
        assert any_db_factory.snapshot() == before

    def test_refuses_over_long_fields(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        admin = any_db_factory.user("Administrator")
        user = any_db_factory.user()
        before = any_db_factory.snapshot()
        for body in ({"full_name": "x" * 129}, {"email": "e" * 250 + "@example.com"}):
            response = any_db_client.patch(f"{API}/users/{user.id}", headers=admin.headers, json=body)
            _assert_refused(response, 422, "invalid_input")
            assert next(iter(body)) in response.json()["message"]
        assert any_db_factory.snapshot() == before

    def test_unknown_user_is_404(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        admin = any_db_factory.user("Administrator")
        response = any_db_client.patch(f"{API}/users/ghost@example.com", headers=admin.headers, json={})
        _assert_refused(response, 404, "not_found")


class TestDisabledUsers:
    def test_cannot_log_in_and_their_tokens_stop_working_until_enabled(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        admin = any_db_factory.user("Administrator")
        user = any_db_factory.user()
        session_headers = any_db_factory.login(user.email)
        disabled = any_db_client.patch(f"{API}/users/{user.id}", headers=admin.headers, json={"disabled": True})
        assert disabled.status_code == 200 and disabled.json()["disabled"] is True
        for headers in (user.headers, session_headers):
            _assert_refused(any_db_client.get(f"{API}/users/me", headers=headers), 401, "unauthorized")
        login = any_db_client.post(f"{API}/auth/login", json={"email": user.email, "password": PASSWORD})
        wrong = any_db_client.post(f"{API}/auth/login", json={"email": user.email, "password": "not it at all"})
        _assert_refused(login, 401, "unauthorized")
        assert login.json() == wrong.json()  # the right password of a disabled account tells nothing more

        enabled = any_db_client.patch(f"{API}/users/{user.id}", headers=admin.headers, json={"disabled": False})
        assert enabled.json()["disabled"] is False
        # Disabling revoked every token, API tokens included: re-enabling brings none back.
        for headers in (user.headers, session_headers):
            _assert_refused(any_db_client.get(f"{API}/users/me", headers=headers), 401, "unauthorized")
        assert any_db_client.post(f"{API}/auth/login",
                                  json={"email": user.email, "password": PASSWORD}).status_code == 200


class TestDeleteUser:
    def test_deletes_the_user_their_tokens_and_memberships(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        admin = any_db_factory.user("Administrator")
        user = any_db_factory.user()
        any_db_factory.login(user.email)
        any_db_client.post(f"{API}/groups", json={"name": "g1"}, headers=admin.headers)
        any_db_client.put(f"{API}/groups/g1/members/{user.id}", headers=admin.headers)
        response = any_db_client.delete(f"{API}/users/{user.email}", headers=admin.headers)
        assert response.status_code == 204 and response.content == b""
        with any_db_factory.sessions() as session:
            assert session.get(User, user.id) is None
            assert session.scalars(select(Token).where(Token.user_id == user.id)).all() == []
            assert session.scalars(select(GroupMember).where(GroupMember.user_id == user.id)).all() == []
        assert any_db_client.get(f"{API}/groups/g1", headers=admin.headers).json()["member_count"] == 0
        _assert_refused(any_db_client.get(f"{API}/users/me", headers=user.headers), 401, "unauthorized")
        events = any_db_client.get(f"{API}/audit?action=user.deleted", headers=admin.headers).json()["items"]
        assert events[0]["details"]["email"] == user.email

    def test_refuses_deleting_yourself(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        admin = any_db_factory.user("Administrator")
        before = any_db_factory.snapshot()
        _assert_refused(any_db_client.delete(f"{API}/users/{admin.id}", headers=admin.headers), 409, "conflict")
        assert any_db_factory.snapshot() == before

    def test_refuses_deleting_the_owner_or_a_more_capable_user(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        owner = any_db_factory.owner()
        admin = any_db_factory.user("Administrator")
        manager = any_db_factory.user(capabilities={Capability.manage_users})
        before = any_db_factory.snapshot()
        _assert_refused(any_db_client.delete(f"{API}/users/{owner.id}", headers=admin.headers), 403, "forbidden")
        _assert_refused(any_db_client.delete(f"{API}/users/{admin.id}", headers=manager.headers), 403,
                        "forbidden")
        assert any_db_factory.snapshot() == before

    def test_unknown_user_is_404(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        admin = any_db_factory.user("Administrator")
        _assert_refused(any_db_client.delete(f"{API}/users/99999", headers=admin.headers), 404, "not_found")


class TestResetPassword:
    def test_sets_the_password_and_ends_their_sessions(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        admin = any_db_factory.user("Administrator")
        user = any_db_factory.user()
        session_headers = any_db_factory.login(user.email)
        response = any_db_client.put(f"{API}/users/{user.id}/password", headers=admin.headers,
                                     json={"new_password": "brand new password"})
        assert response.status_code == 204
        _assert_refused(any_db_client.get(f"{API}/users/me", headers=session_headers), 401, "unauthorized")
        old = any_db_client.post(f"{API}/auth/login", json={"email": user.email, "password": PASSWORD})
        assert old.status_code == 401
        assert any_db_factory.login(user.email, "brand new password")
        assert "user.password_reset" in any_db_factory.audit_actions()

    def test_refuses_the_owner_a_more_capable_user_yourself_and_short_passwords(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        owner = any_db_factory.owner()
        admin = any_db_factory.user("Administrator")
        manager = any_db_factory.user(capabilities={Capability.manage_users})
        user = any_db_factory.user()
        body = {"new_password": "brand new password"}
        before = any_db_factory.snapshot()
        _assert_refused(any_db_client.put(f"{API}/users/{owner.id}/password", headers=admin.headers, json=body),
                        403, "forbidden")
        _assert_refused(any_db_client.put(f"{API}/users/{admin.id}/password", headers=manager.headers,
                                          json=body), 403, "forbidden")
        _assert_refused(any_db_client.put(f"{API}/users/{admin.id}/password", headers=admin.headers, json=body),
                        403, "forbidden")
        _assert_refused(any_db_client.put(f"{API}/users/{user.id}/password", headers=admin.headers,
                                          json={"new_password": "short"}), 422, "invalid_input")
        assert any_db_factory.snapshot() == before


class TestSetBudget:
    def test_sets_the_budget_and_records_before_and_after(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        officer = any_db_factory.user("Compliance Officer")
        user = any_db_factory.user(budget=1.0)
        response = any_db_client.put(f"{API}/users/{user.email}/budget", headers=officer.headers,
                                     json={"epsilon": 2.5})
        assert response.status_code == 200 and response.json()["budget_epsilon"] == 2.5
        events = any_db_client.get(f"{API}/audit?action=user.budget_set", headers=officer.headers).json()["items"]
        assert events[0]["details"]["from"] == 1.0 and events[0]["details"]["to"] == 2.5

    def test_refuses_a_negative_budget_and_the_owners_budget(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        officer = any_db_factory.user("Compliance Officer")
        owner = any_db_factory.owner()
        user = any_db_factory.user()
        before = any_db_factory.snapshot()
        _assert_refused(any_db_client.put(f"{API}/users/{user.id}/budget", headers=officer.headers,
                                          json={"epsilon": -0.5}), 422, "invalid_input")
        _assert_refused(any_db_client.put(f"{API}/users/{user.id}/budget", headers=officer.headers,
                                          json={"epsilon": "lots"}), 422, "invalid_input")
        _assert_refused(any_db_client.put(f"{API}/users/{owner.id}/budget", headers=officer.headers,
                                          json={"epsilon": 9.0}), 403, "forbidden")
        assert any_db_factory.snapshot() == before


class TestTransferOwnership:
    def test_makes_the_user_owner_and_the_old_owner_an_administrator(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        owner = any_db_factory.owner()
        admin = any_db_factory.user("Administrator")
        response = any_db_client.post(f"{API}/users/{admin.email}/transfer-ownership", headers=owner.headers)
        assert response.status_code == 200, response.text
        assert response.json()["id"] == admin.id and response.json()["role"]["name"] == "Owner"
        assert any_db_client.get(f"{API}/users/me", headers=owner.headers).json()["role"]["name"] == "Administrator"
        owners = any_db_client.get(f"{API}/users?role=Owner", headers=admin.headers).json()
        assert owners["total"] == 1 and owners["items"][0]["id"] == admin.id
        assert "user.ownership_transferred" in any_db_factory.audit_actions()

    def test_only_the_owner_may_transfer(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        any_db_factory.owner()
        admin = any_db_factory.user("Administrator")
        almighty = any_db_factory.user(capabilities=set(ALL))  # every capability, but not the Owner
        before = any_db_factory.snapshot()
        for actor in (admin, almighty):
            response = any_db_client.post(f"{API}/users/{actor.id}/transfer-ownership", headers=actor.headers)
            _assert_refused(response, 403, "forbidden")
        assert any_db_factory.snapshot() == before

    def test_refuses_yourself_and_disabled_users(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        owner = any_db_factory.owner()
        user = any_db_factory.user()
        any_db_client.patch(f"{API}/users/{user.id}", headers=owner.headers, json={"disabled": True})
        before = any_db_factory.snapshot()
        for target in (owner, user):
            response = any_db_client.post(f"{API}/users/{target.id}/transfer-ownership", headers=owner.headers)
            _assert_refused(response, 409, "conflict")
        assert any_db_factory.snapshot() == before
