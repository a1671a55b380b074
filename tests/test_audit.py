"""The audit log: every mutation lands there, it is append-only, and view_statistics reads it."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, update
from sqlalchemy.exc import DatabaseError

from grid_runtime.node.audit.models import AuditEvent
from tests.factories import Factory, MadeUser

API = "/api/v1"


def _events(client: TestClient, reader: MadeUser, query: str = "") -> dict[str, Any]:
    response = client.get(f"{API}/audit?{query}", headers=reader.headers)
    assert response.status_code == 200, response.text
    return response.json()


class TestListAudit:
    def test_returns_newest_first_with_who_what_target_when_and_where(
        self, client: TestClient, factory: Factory
    ) -> None:
        admin = factory.user("Administrator")
        client.post(f"{API}/groups", headers=admin.headers, json={"name": "first"})
        client.post(f"{API}/groups", headers=admin.headers, json={"name": "second"})
        page = _events(client, admin)
        newest, older = page["items"][0], page["items"][1]
        assert (newest["action"], newest["details"]["name"]) == ("group.created", "second")
        assert (older["action"], older["details"]["name"]) == ("group.created", "first")
        assert newest["id"] > older["id"] and newest["at"] >= older["at"]
        assert newest["actor_id"] == admin.id and newest["actor_email"] == admin.email
        assert newest["target_type"] == "group" and newest["target_id"].isdigit()
        assert newest["client_address"]
        assert set(newest) == {"id", "at", "actor_id", "actor_email", "action", "target_type", "target_id",
                               "client_address", "details"}

    def test_filters_by_actor_action_and_target(self, client: TestClient, factory: Factory) -> None:
        admin = factory.user("Administrator")
        other_admin = factory.user("Administrator")
        group = client.post(f"{API}/groups", headers=admin.headers, json={"name": "g"}).json()
        client.patch(f"{API}/groups/g", headers=admin.headers, json={"description": "d"})
        client.post(f"{API}/groups", headers=other_admin.headers, json={"name": "h"})
        client.post(f"{API}/users", headers=admin.headers, json={"email": "n@example.com", "password": "long enough"})

        def actions(query: str) -> list[str]:
            return [e["action"] for e in _events(client, admin, query)["items"]]

        assert actions(f"actor={admin.id}") == ["user.created", "group.updated", "group.created"]
        assert actions(f"actor={quote(admin.email.upper())}") == actions(f"actor={admin.id}")
        assert actions(f"actor={other_admin.id}") == ["group.created"]
        assert actions("action=group.created") == ["group.created", "group.created"]
        assert actions("action=group.*") == ["group.created", "group.updated", "group.created"]
        assert actions("target_type=user") == ["user.created"]
        assert actions(f"target_type=group&target_id={group['id']}") == ["group.updated", "group.created"]
        assert actions("action=nothing.like.this") == []

    def test_filters_by_time(self, client: TestClient, factory: Factory) -> None:
        admin = factory.user("Administrator")
        client.post(f"{API}/groups", headers=admin.headers, json={"name": "early"})
        client.post(f"{API}/groups", headers=admin.headers, json={"name": "late"})
        early, late = reversed(_events(client, admin, "action=group.created")["items"])
        since = _events(client, admin, f"action=group.created&since={quote(late['at'])}")["items"]
        assert [e["id"] for e in since] == [late["id"]]
        until = _events(client, admin, f"action=group.created&until={quote(late['at'])}")["items"]
        assert late["id"] not in [e["id"] for e in until]
        if early["at"] < late["at"]:
            assert [e["id"] for e in until] == [early["id"]]
        # A time without an offset is read as UTC rather than refused or crashing.
        assert _events(client, admin, "since=2000-01-01T00:00:00")["total"] >= 2
        assert _events(client, admin, "until=2000-01-01T00:00:00")["total"] == 0
        assert _events(client, admin, "since=2999-01-01T00:00:00Z")["total"] == 0

    def test_pages_with_the_total(self, client: TestClient, factory: Factory) -> None:
        admin = factory.user("Administrator")
        for name in ("a", "b", "c"):
            client.post(f"{API}/groups", headers=admin.headers, json={"name": name})
        all_events = _events(client, admin, "action=group.created")
        page = _events(client, admin, "action=group.created&limit=1&offset=1")
        assert all_events["total"] == page["total"] == 3
        assert page["items"] == all_events["items"][1:2]

    def test_refuses_bad_filters(self, client: TestClient, factory: Factory) -> None:
        admin = factory.user("Administrator")
        for query in ("since=yesterday", "limit=0", "limit=501", "action=" + "a" * 65):
            response = client.get(f"{API}/audit?{query}", headers=admin.headers)
            assert response.status_code == 422 and response.json()["code"] == "invalid_input"

    def test_needs_view_statistics(self, client: TestClient, factory: Factory) -> None:
        scientist = factory.user()
        response = client.get(f"{API}/audit", headers=scientist.headers)
        assert response.status_code == 403 and response.json()["code"] == "forbidden"
        assert "view_statistics" in response.json()["message"]
        officer = factory.user("Compliance Officer")
        assert client.get(f"{API}/audit", headers=officer.headers).status_code == 200


class TestAuditTrail:
    def test_a_refused_mutation_records_nothing(self, client: TestClient, factory: Factory) -> None:
        admin = factory.user("Administrator")
        client.post(f"{API}/groups", headers=admin.headers, json={"name": "g"})
        before = factory.audit_actions()
        assert client.post(f"{API}/groups", headers=admin.headers, json={"name": "g"}).status_code == 409
        assert factory.audit_actions() == before

    def test_reading_records_nothing(self, client: TestClient, factory: Factory) -> None:
        admin = factory.user("Administrator")
        before = factory.audit_actions()
        for path in ("/users", "/users/me", "/roles", "/groups", "/audit"):
            assert client.get(f"{API}{path}", headers=admin.headers).status_code == 200
        assert factory.audit_actions() == before

    def test_keeps_a_deleted_users_history(self, client: TestClient, factory: Factory) -> None:
        admin = factory.user("Administrator")
        leaver = factory.user("Administrator")
        client.post(f"{API}/groups", headers=leaver.headers, json={"name": "left-behind"})
        assert client.delete(f"{API}/users/{leaver.id}", headers=admin.headers).status_code == 204
        by_email = _events(client, admin, f"actor={quote(leaver.email)}")["items"]
        assert [e["action"] for e in by_email] == ["group.created"]

    def test_the_database_refuses_update_and_delete(self, client: TestClient, factory: Factory) -> None:
        admin = factory.user("Administrator")
        client.post(f"{API}/groups", headers=admin.headers, json={"name": "g"})
        for statement in (update(AuditEvent).values(action="tampered"), delete(AuditEvent)):
            with pytest.raises(DatabaseError, match="append-only"), factory.sessions.begin() as session:
                session.execute(statement)
        assert "tampered" not in factory.audit_actions() and "group.created" in factory.audit_actions()
