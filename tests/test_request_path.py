"""The request path made cheaper for issue 11 (load): what each shortcut must keep.

- ``api.add_routes`` copies routes flat instead of nesting routers: same OpenAPI operations, and a protected route
  without ``Requires`` stops the app from being built.
- ``deps.in_thread`` runs a route and its commit in one worker-thread call: the change is committed before the
  answer, a failure commits nothing.
- A SQLite read transaction ends on the event loop; a read that must write (an overdue request seen by a
  listing) is still retried as a write.
- The listings of tensors, groups and requests read plain rows through statements built once: same items,
  order, totals and privacy rules as before; authentication is still checked on every request (no cache: a
  revoked token or a removed capability is refused at once).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.database import transaction, utcnow
from grid_runtime.node.api import add_routes
from grid_runtime.node.auth.models import Token
from grid_runtime.node.deps import Actor, Requires
from grid_runtime.node.permissions.models import Grant
from grid_runtime.node.requests import service as requests
from grid_runtime.node.requests.states import RequestKind
from grid_runtime.node.roles.models import Role
from grid_runtime.node.routing import NameRoute
from grid_runtime.node.users.models import User
from tests.factories import Factory
from tests.test_tensors_helpers import add_tensor_row

API = "/api/v1"


# --- flat routes --------------------------------------------------------------------------------------------


def _sample_router() -> APIRouter:
    router = APIRouter(prefix="/things", tags=["things"], route_class=NameRoute)

    @router.get("/{ref}", status_code=200, responses={418: {"description": "teapot"}})
    def show(ref: str, actor: Actor = Depends(Requires(Capability.manage_groups))) -> dict[str, str]:
        """Show a thing."""
        return {"ref": ref}

    @router.delete("/{ref}", status_code=204)
    def remove(ref: str, actor: Actor = Depends(Requires())) -> None:
        """Remove a thing."""

    return router


def _requirements(dependant: Dependant) -> list[frozenset[Capability]]:
    found = [dependant.call.capabilities] if isinstance(dependant.call, Requires) else []
    return found + [needed for sub in dependant.dependencies for needed in _requirements(sub)]


class TestFlatRoutes:
    def test_copied_routes_document_the_same_operations_as_included_ones(self) -> None:
        included, copied = FastAPI(), FastAPI()
        nested = APIRouter()
        nested.include_router(_sample_router())
        included.include_router(nested, prefix="/api")
        flat = APIRouter()
        add_routes(flat, _sample_router(), protected=True)
        copied.include_router(flat, prefix="/api")
        assert copied.openapi()["paths"] == included.openapi()["paths"]
        assert set(copied.openapi()["paths"]) == {"/api/things/{ref}"}

    def test_copied_routes_keep_their_class_status_and_requirements(self) -> None:
        flat = APIRouter()
        add_routes(flat, _sample_router(), protected=True)
        routes = [route for route in flat.routes if isinstance(route, APIRoute)]
        assert [(type(r), r.path, sorted(r.methods or ()), r.status_code) for r in routes] == [
            (NameRoute, "/things/{ref}", ["GET"], 200), (NameRoute, "/things/{ref}", ["DELETE"], 204)]
        assert [needed for r in routes for needed in _requirements(r.dependant)] == [
            frozenset({Capability.manage_groups}), frozenset()]

    def test_a_protected_route_without_requires_is_refused(self) -> None:
        router = APIRouter()

        @router.get("/open")
        def open_route() -> dict[str, str]:
            return {}

        with pytest.raises(TypeError, match="/open needs a token"):
            add_routes(APIRouter(), router, protected=True)
        public = APIRouter()
        add_routes(public, router, protected=False)
        assert [route.path for route in public.routes if isinstance(route, APIRoute)] == ["/open"]


# --- in_thread: the route and its commit ----------------------------------------------------------------------


class TestWritesInOneCall:
    def test_an_edit_is_committed_before_its_answer(self, any_db_client: TestClient,
                                                    any_db_factory: Factory) -> None:
        admin, user = any_db_factory.user("Administrator"), any_db_factory.user()
        response = any_db_client.patch(f"{API}/users/{user.id}", json={"full_name": "Ada L."}, headers=admin.headers)
        assert response.status_code == 200 and response.json()["full_name"] == "Ada L."
        with any_db_factory.sessions() as session:  # another connection sees it: committed
            assert session.scalar(select(User.full_name).where(User.id == user.id)) == "Ada L."
        assert any_db_factory.audit_actions().count("user.updated") == 1

    def test_a_refused_edit_commits_nothing(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        admin, user, other = (any_db_factory.user("Administrator"), any_db_factory.user(),
                              any_db_factory.user())
        before = any_db_factory.snapshot()
        response = any_db_client.patch(f"{API}/users/{user.id}", json={"full_name": "X", "email": other.email},
                                       headers=admin.headers)
        assert response.status_code == 409 and response.json()["code"] == "already_exists"
        assert any_db_factory.snapshot() == before


# --- reads that must write -------------------------------------------------------------------------------------


class TestReadsThatWrite:
    def test_listing_requests_records_an_expiry_as_a_write(self, any_db_client: TestClient,
                                                          any_db_factory: Factory) -> None:
        user = any_db_factory.user()
        tensor = any_db_factory.tensor()
        with transaction(any_db_factory.sessions) as session:
            actor_user = session.get(User, user.id)
            assert actor_user is not None
            actor = Actor(user=actor_user, capabilities=frozenset(), token_id=0, client_address="test")
            overdue = requests.create_request(
                session, actor=actor, requester_id=user.id, kind=RequestKind.access, reason="old",
                target_type="tensor", target_id=tensor, payload={"level": "download"},
                expires_at=utcnow() - timedelta(seconds=1)).id
        listed = any_db_client.get(f"{API}/requests", headers=user.headers)
        assert listed.status_code == 200
        assert [(r["id"], r["state"]) for r in listed.json()["items"]] == [(overdue, "expired")]
        assert "request.expired" in any_db_factory.audit_actions()
        # Nothing is overdue any more: the next listing is a plain read and changes nothing.
        before = any_db_factory.snapshot()
        assert any_db_client.get(f"{API}/requests", headers=user.headers).json()["total"] == 1
        assert any_db_factory.snapshot() == before


# --- listings ------------------------------------------------------------------------------------------------


def _names(page: dict[str, Any]) -> list[str]:
    return [item["name"] for item in page["items"]]


class TestTensorListing:
    def test_every_sort_pages_like_the_whole_ordered_list(self, any_db_client: TestClient,
                                                         any_db_factory: Factory) -> None:
        user = any_db_factory.user()
        sizes = {"b": 30, "a": 10, "d": 10, "c": 20}
        for name, size in sizes.items():
            add_tensor_row(any_db_factory, name=name, size=size, tags=(f"t-{name}",))
        # Ties on size are broken by id, in the sort's direction.
        expected = {"name": ["a", "b", "c", "d"], "-name": ["d", "c", "b", "a"],
                    "size": ["a", "d", "c", "b"], "-size": ["b", "c", "d", "a"],
                    "created_at": ["b", "a", "d", "c"], "-created_at": ["c", "d", "a", "b"]}
        for sort, names in expected.items():
            whole = any_db_client.get(f"{API}/tensors", params={"sort": sort}, headers=user.headers).json()
            assert _names(whole) == names and whole["total"] == 4, sort
            page = any_db_client.get(f"{API}/tensors", params={"sort": sort, "limit": 2, "offset": 1},
                                     headers=user.headers).json()
            assert _names(page) == names[1:3] and page["total"] == 4, sort
        beyond = any_db_client.get(f"{API}/tensors", params={"offset": 4}, headers=user.headers).json()
        assert beyond["items"] == [] and beyond["total"] == 4
        item = next(i for i in whole["items"] if i["name"] == "b")
        assert item["tags"] == ["t-b"] and item["shape"] == [2, 2] and item["visibility"] == "private"

    def test_hash_and_size_only_for_those_who_may_download(self, any_db_client: TestClient,
                                                          any_db_factory: Factory) -> None:
        user = any_db_factory.user()
        private = add_tensor_row(any_db_factory, name="private one", size=99)
        public = add_tensor_row(any_db_factory, name="public one", visibility="public", size=77)
        granted = add_tensor_row(any_db_factory, name="granted one", size=55)
        with any_db_factory.sessions.begin() as session:
            session.add(Grant(user_id=user.id, tensor_id=granted, level="download"))
        items = {i["id"]: i for i in any_db_client.get(f"{API}/tensors", headers=user.headers).json()["items"]}
        assert (items[private]["level"], items[private]["sha256"], items[private]["size_bytes"]) == (
            "search", None, None)
        assert (items[public]["level"], items[public]["size_bytes"]) == ("download", 77)
        assert (items[granted]["level"], items[granted]["size_bytes"]) == ("download", 55)
        assert items[granted]["sha256"] == "0" * 64


class TestGroupListing:
    def test_member_counts_filter_and_pages(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        admin = any_db_factory.user("Administrator")
        members = [any_db_factory.user().id for _ in range(3)]
        any_db_factory.group("beta", members=members)
        any_db_factory.group("alpha", members=members[:1])
        any_db_factory.group("gamma")
        page = any_db_client.get(f"{API}/groups", headers=admin.headers).json()
        assert [(g["name"], g["member_count"]) for g in page["items"]] == [("alpha", 1), ("beta", 3), ("gamma", 0)]
        assert page["total"] == 3
        second = any_db_client.get(f"{API}/groups", params={"limit": 1, "offset": 1}, headers=admin.headers).json()
        assert [g["name"] for g in second["items"]] == ["beta"] and second["total"] == 3
        beyond = any_db_client.get(f"{API}/groups", params={"offset": 3}, headers=admin.headers).json()
        assert beyond["items"] == [] and beyond["total"] == 3
        found = any_db_client.get(f"{API}/groups", params={"q": "MM"}, headers=admin.headers).json()
        assert [(g["name"], g["member_count"]) for g in found["items"]] == [("gamma", 0)] and found["total"] == 1

    def test_my_account_lists_my_groups_in_order(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        user = any_db_factory.user()
        any_db_factory.group("zeta", members=[user.id])
        any_db_factory.group("eta", members=[user.id])
        any_db_factory.group("theta")
        assert any_db_client.get(f"{API}/users/me", headers=user.headers).json()["groups"] == ["eta", "zeta"]


# --- authentication is never cached ------------------------------------------------------------------------------


class TestNoStaleAuthentication:
    def test_a_revoked_token_is_refused_at_once_on_every_listing(self, any_db_client: TestClient,
                                                               any_db_factory: Factory) -> None:
        admin = any_db_factory.user("Administrator")
        paths = ["/users/me", "/tensors?limit=20", "/requests?limit=20", "/groups"]
        for path in paths:
            assert any_db_client.get(API + path, headers=admin.headers).status_code == 200, path
        with any_db_factory.sessions.begin() as session:
            for token in session.scalars(select(Token).where(Token.user_id == admin.id)):
                token.revoked_at = utcnow()
        for path in paths:
            refused = any_db_client.get(API + path, headers=admin.headers)
            assert refused.status_code == 401 and refused.json()["code"] == "unauthorized", path
        patched = any_db_client.patch(f"{API}/users/{admin.id}", json={"full_name": "x"}, headers=admin.headers)
        assert patched.status_code == 401

    def test_a_capability_taken_from_a_role_is_refused_at_once(self, any_db_client: TestClient,
                                                              any_db_factory: Factory) -> None:
        user = any_db_factory.user(capabilities={Capability.manage_groups})
        assert any_db_client.get(f"{API}/groups", headers=user.headers).status_code == 200
        with any_db_factory.sessions.begin() as session:
            role = session.scalar(select(Role).join(User, User.role_id == Role.id).where(User.id == user.id))
            assert role is not None
            role.capabilities = []
        refused = any_db_client.get(f"{API}/groups", headers=user.headers)
        assert refused.status_code == 403 and refused.json()["details"]["missing"] == ["manage_groups"]
