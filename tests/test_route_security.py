"""Every route is public by the explicit list or declares what it needs, and each declaration is enforced.

(a) walks the app's routes: each /api/v1 route is in ``PUBLIC_ROUTES`` or has a ``Requires`` dependency,
    and every protected route answers 401 without a token.
(b) for each capability-protected route of the users, roles, groups and audit domains: 401 without a token,
    403 ``forbidden`` for a user holding every capability but that one, and success for a user holding
    exactly that one (a custom role). The table must cover every such route the app serves.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from grid_runtime.core.capabilities import ALL, Capability
from grid_runtime.node.api import DOCUMENTATION_ROUTES, PUBLIC_ROUTES
from grid_runtime.node.app import API_PREFIX, create_app
from grid_runtime.node.deps import Requires
from tests.factories import Factory

_names = itertools.count(1)


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str  # without the /api/v1 prefix, as in PUBLIC_ROUTES
    dependant: Dependant


def api_routes(app: FastAPI) -> list[ApiRoute]:
    """Every API route the app serves, however deeply its routers are nested."""
    # FastAPI >= 0.137 keeps included routers as opaque entries in app.routes; iter_route_contexts
    # flattens them with their prefixes and router-level dependencies.
    contexts: Any = routing.iter_route_contexts(app.routes) if hasattr(routing, "iter_route_contexts") else app.routes
    found = []
    for context in contexts:
        if not isinstance(getattr(context, "original_route", context), APIRoute):
            continue
        path = context.path_format
        assert path.startswith(API_PREFIX), f"{path} is outside {API_PREFIX}"
        for method in sorted(context.methods - {"HEAD"}):
            found.append(ApiRoute(method, path.removeprefix(API_PREFIX), context.dependant))
    return found


def requirements(dependant: Dependant) -> Iterator[Requires]:
    """The ``Requires`` dependencies anywhere in a route's dependency tree."""
    if isinstance(dependant.call, Requires):
        yield dependant.call
    for sub in dependant.dependencies:
        yield from requirements(sub)


def needed_capabilities(route: ApiRoute) -> frozenset[Capability]:
    return frozenset().union(*(r.capabilities for r in requirements(route.dependant)))


APP_ROUTES = api_routes(create_app())


class TestEveryRouteIsDeclared:
    def test_the_walk_finds_the_routes(self) -> None:
        # Guards against a walk that silently finds nothing (and so checks nothing).
        found = {(r.method, r.path) for r in APP_ROUTES}
        assert {("GET", "/health"), ("GET", "/users/me"), ("PATCH", "/roles/{ref}"), ("GET", "/audit"),
                ("PUT", "/groups/{ref}/members/{user_ref}")} <= found
        assert len(found) >= 30

    def test_every_route_is_public_or_requires_an_actor(self) -> None:
        undeclared = [f"{r.method} {r.path}" for r in APP_ROUTES
                      if (r.method, r.path) not in PUBLIC_ROUTES and not any(requirements(r.dependant))]
        assert undeclared == []

    def test_public_routes_exist_and_require_nothing(self) -> None:
        by_key = {(r.method, r.path): r for r in APP_ROUTES}
        for key in PUBLIC_ROUTES - DOCUMENTATION_ROUTES:  # those are FastAPI's own (checked further down)
            assert key in by_key, f"PUBLIC_ROUTES names {key}, which the app does not serve"
            assert not any(requirements(by_key[key].dependant)), f"{key} is public but declares Requires"

    def test_the_service_names_itself_to_anyone_for_the_admin(self, client: TestClient) -> None:
        from grid_runtime.core.settings import NodeSettings

        settings: NodeSettings = client.app.state.settings  # type: ignore[attr-defined]
        assert client.get(f"{API_PREFIX}/service").json() == {"kind": "node", "name": settings.name}

    def test_every_protected_route_returns_401_without_a_token(self, client: TestClient) -> None:
        for route in APP_ROUTES:
            if (route.method, route.path) in PUBLIC_ROUTES:
                continue
            url = API_PREFIX + re.sub(r"\{[^}]+\}", "1", route.path)
            response = client.request(route.method, url)
            assert response.status_code == 401, f"{route.method} {route.path}: {response.status_code}"
            assert response.json()["code"] == "unauthorized"


# --- (c) the matrix: every route x every kind of caller ---------------------------------------------------------

PRINCIPALS = ("anonymous", "Data Scientist", "Compliance Officer", "Administrator", "Owner", "custom role",
              "disabled user", "revoked token")
CUSTOM_CAPABILITIES = frozenset({Capability.upload_data, Capability.view_statistics})
DUMMY = "999999999"  # names nothing: a mutation the matrix lets through changes nothing


def _principal(factory: Factory, name: str) -> tuple[dict[str, str], frozenset[Capability] | None]:
    """Headers for the caller, and the capabilities it holds (None: it must be refused as unauthenticated)."""
    from grid_runtime.core.capabilities import PRESET_ROLES

    if name == "anonymous":
        return {}, None
    if name == "custom role":
        return factory.user(capabilities=set(CUSTOM_CAPABILITIES)).headers, CUSTOM_CAPABILITIES
    if name == "disabled user":
        made = factory.user("Administrator")
        with factory.sessions.begin() as session:
            from grid_runtime.node.users.models import User

            user = session.get(User, made.id)
            assert user is not None
            user.disabled = True
        return made.headers, None
    if name == "revoked token":
        made = factory.user("Administrator")
        assert factory.client.post(f"{API_PREFIX}/auth/logout", headers=made.headers).status_code == 204
        return made.headers, None
    return factory.user(name).headers, frozenset(PRESET_ROLES[name])


RELIABILITY_DIR = Path(os.environ.get("GRID_RELIABILITY_DIR", Path(__file__).resolve().parents[1] / ".reliability"))


def _record_matrix(principal: str, routes: int, checked: int) -> None:
    """Add this principal's row to ``.reliability/route_security.json`` for scripts/reliability_report.py."""
    path = RELIABILITY_DIR / "route_security.json"
    try:
        figures = json.loads(path.read_text())
    except (OSError, ValueError):
        figures = {}
    checked_by = dict(figures.get("checked", {}))
    checked_by[principal] = checked
    RELIABILITY_DIR.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"routes": routes, "principals": sorted(checked_by), "checked": checked_by,
                                "checks": sum(checked_by.values())}, indent=2) + "\n")


def _matrix_url(route: ApiRoute) -> str:
    return API_PREFIX + re.sub(r"\{[^}]+\}", DUMMY, route.path)


class TestAuthorizationMatrix:
    """Generated from the route table: for each kind of caller, every route answers as its declaration says.

    Refused callers (anonymous, a disabled account, a revoked token) get 401 on every protected route. A caller
    lacking a declared capability gets 403 naming exactly what is missing, and changes nothing; one holding
    them is never refused for a capability it holds (it may still meet a domain rule, a missing target (404) or
    invalid input (422)). Nobody gets a 5xx. A route with no declaration fails the walk above."""

    @pytest.mark.parametrize("principal", PRINCIPALS)
    def test_every_route_answers_as_declared(self, principal: str, client: TestClient, factory: Factory) -> None:
        headers, held = _principal(factory, principal)
        problems: list[str] = []
        refused = 0
        # Logging out ends the caller's token: it goes last.
        routes = sorted(APP_ROUTES, key=lambda r: (r.path == "/auth/logout", r.path, r.method))
        for route in routes:
            key = (route.method, route.path)
            if key in PUBLIC_ROUTES:
                continue
            response = client.request(route.method, _matrix_url(route), headers=headers)
            status, body = response.status_code, response.json() if response.content else {}
            where = f"{principal}: {route.method} {route.path} -> {status} {body}"
            if status >= 500 and not (status == 503 and body.get("code") == "unavailable"):
                problems.append(where)
            elif held is None:
                if status != 401 or body.get("code") != "unauthorized":
                    problems.append(where)
            else:
                declared = needed_capabilities(route)
                missing = sorted(declared - held)
                if missing:
                    refused += 1
                    if status != 403 or body.get("details", {}).get("missing") != missing:
                        problems.append(where)
                elif status == 401 or (status == 403 and isinstance(body.get("details"), dict)
                                       and set(body["details"].get("missing") or ()) & declared):
                    problems.append(where)
        assert problems == []
        protected = [r for r in APP_ROUTES if (r.method, r.path) not in PUBLIC_ROUTES]
        assert len(protected) >= 60
        if principal == "Data Scientist":  # holds no capability: refused on every capability route
            assert refused == sum(1 for r in protected if needed_capabilities(r))
        if principal == "Owner":
            assert refused == 0
        _record_matrix(principal, len(protected), len(protected))

    def test_the_documentation_routes_are_listed_public_and_can_be_turned_off(
        self, client: TestClient, tmp_path: Any
    ) -> None:
        from grid_runtime.core.settings import NodeSettings

        assert client.get(f"{API_PREFIX}/openapi.json").status_code == 200
        assert client.get(f"{API_PREFIX}/docs").status_code == 200
        served = {(m, r.path.removeprefix(API_PREFIX)) for r in client.app.routes  # type: ignore[attr-defined]
                  if not hasattr(r, "dependant") and hasattr(r, "methods") for m in r.methods - {"HEAD"}}
        assert served <= PUBLIC_ROUTES
        closed = NodeSettings(state_dir=tmp_path / "closed", database_url=f"sqlite:///{tmp_path / 'closed.db'}",
                              api_docs=False)
        with TestClient(create_app(closed)) as closed_client:
            assert closed_client.get(f"{API_PREFIX}/openapi.json").status_code == 404
            assert closed_client.get(f"{API_PREFIX}/docs").status_code == 404


class TestTheContractIsDocumented:
    def test_every_operation_lists_its_errors_with_the_real_body(self, client: TestClient) -> None:
        document = client.get(f"{API_PREFIX}/openapi.json").json()
        assert "HTTPValidationError" not in document["components"]["schemas"]
        assert document["components"]["schemas"]["Error"]["required"] == ["code", "message", "details"]
        for route in APP_ROUTES:
            operation = document["paths"][API_PREFIX + route.path][route.method.lower()]
            documented = {int(s) for s in operation["responses"] if s[0] in "45"}
            for status in documented:
                content = operation["responses"][str(status)]["content"]["application/json"]["schema"]
                assert content == {"$ref": "#/components/schemas/Error"}, (route, status)
            if (route.method, route.path) not in PUBLIC_ROUTES:
                assert {401, 403, 422} <= documented, (route, documented)
            if needed_capabilities(route):
                assert 403 in documented

    def test_the_name_rules_the_server_enforces_are_in_the_schema(self, client: TestClient) -> None:
        schemas = client.get(f"{API_PREFIX}/openapi.json").json()["components"]["schemas"]
        name = schemas["GroupCreateIn"]["properties"]["name"]
        assert name["maxLength"] == 64 and name["not"] == {"pattern": "^[0-9]+$"}
        assert client.post(f"{API_PREFIX}/setup", json={}).status_code == 422


# --- (b) capabilities, route by route ------------------------------------------------------------------------

DOMAINS = ("/users", "/roles", "/groups", "/audit")
"""The domains whose every capability-protected route must appear in ``CAPABILITY_ROUTES``."""

Setup = Callable[[Factory, dict[str, str]], tuple[str, dict[str, Any] | None]]
"""Given the factory and an Owner's headers, prepare a valid target: (path, JSON body or None)."""


def _user(factory: Factory, _: dict[str, str]) -> str:
    return str(factory.user().id)


def _custom_role(factory: Factory) -> str:
    name = f"spare-role-{next(_names)}"
    factory.role(name)
    return name


def _group(factory: Factory, owner: dict[str, str], *, member: bool = False) -> tuple[str, str]:
    name = f"group-{next(_names)}"
    assert factory.client.post(f"{API_PREFIX}/groups", json={"name": name}, headers=owner).status_code == 201
    user = _user(factory, owner)
    if member:
        factory.client.put(f"{API_PREFIX}/groups/{name}/members/{user}", headers=owner)
    return name, user


def _membership(factory: Factory, owner: dict[str, str]) -> tuple[str, None]:
    group, user = _group(factory, owner, member=True)
    return f"/groups/{group}/members/{user}", None


def _new_member(factory: Factory, owner: dict[str, str]) -> tuple[str, None]:
    group, user = _group(factory, owner)
    return f"/groups/{group}/members/{user}", None


CAPABILITY_ROUTES: dict[tuple[str, str], Setup] = {
    ("GET", "/users"): lambda f, o: ("/users", None),
    ("POST", "/users"): lambda f, o: ("/users", {"email": f"made{next(_names)}@example.com",
                                                 "password": "a long password"}),
    ("PATCH", "/users/{ref}"): lambda f, o: (f"/users/{_user(f, o)}", {"full_name": "Renamed"}),
    ("DELETE", "/users/{ref}"): lambda f, o: (f"/users/{_user(f, o)}", None),
    ("PUT", "/users/{ref}/password"): lambda f, o: (f"/users/{_user(f, o)}/password",
                                                    {"new_password": "another long one"}),
    ("PUT", "/users/{ref}/budget"): lambda f, o: (f"/users/{_user(f, o)}/budget", {"epsilon": 1.5}),
    ("POST", "/roles"): lambda f, o: ("/roles", {"name": f"role-{next(_names)}", "capabilities": []}),
    ("PATCH", "/roles/{ref}"): lambda f, o: (f"/roles/{_custom_role(f)}", {"description": "changed"}),
    ("DELETE", "/roles/{ref}"): lambda f, o: (f"/roles/{_custom_role(f)}", None),
    ("GET", "/groups"): lambda f, o: ("/groups", None),
    ("POST", "/groups"): lambda f, o: ("/groups", {"name": f"group-{next(_names)}"}),
    ("GET", "/groups/{ref}"): lambda f, o: (f"/groups/{_group(f, o)[0]}", None),
    ("PATCH", "/groups/{ref}"): lambda f, o: (f"/groups/{_group(f, o)[0]}", {"description": "changed"}),
    ("DELETE", "/groups/{ref}"): lambda f, o: (f"/groups/{_group(f, o)[0]}", None),
    ("PUT", "/groups/{ref}/members/{user_ref}"): _new_member,
    ("DELETE", "/groups/{ref}/members/{user_ref}"): _membership,
    ("GET", "/audit"): lambda f, o: ("/audit", None),
    ("GET", "/users/{ref}/tokens"): lambda f, o: (f"/users/{_user(f, o)}/tokens", None),
    ("DELETE", "/users/{ref}/tokens"): lambda f, o: (f"/users/{_user(f, o)}/tokens", None),
    ("DELETE", "/users/{ref}/tokens/{token_ref}"): lambda f, o: (f"/users/{_user(f, o)}/tokens/factory", None),
}

ANY_USER_ROUTES: dict[tuple[str, str], Callable[[Factory, int], str]] = {
    ("GET", "/users/me"): lambda f, me: "/users/me",
    ("GET", "/users/{ref}"): lambda f, me: f"/users/{me}",  # one's own account
    ("GET", "/roles"): lambda f, me: "/roles",
    ("GET", "/roles/{ref}"): lambda f, me: "/roles/Data Scientist",
}

OWNER_ONLY_ROUTES = {("POST", "/users/{ref}/transfer-ownership")}


def _in_domains(route: ApiRoute) -> bool:
    return route.path.startswith(DOMAINS) and route.path != "/users/me/password"  # auth's, tested there


class TestTheTableCoversEveryRoute:
    def test_every_route_in_these_domains_is_in_exactly_one_table(self) -> None:
        served = {(r.method, r.path) for r in APP_ROUTES if _in_domains(r)}
        tables = [set(CAPABILITY_ROUTES), set(ANY_USER_ROUTES), OWNER_ONLY_ROUTES]
        assert set().union(*tables) == served
        assert sum(len(t) for t in tables) == len(served)

    def test_each_table_matches_what_the_route_declares(self) -> None:
        needs = {(r.method, r.path): needed_capabilities(r) for r in APP_ROUTES}
        for key in CAPABILITY_ROUTES:
            assert len(needs[key]) == 1, f"{key} needs {sorted(needs[key])}"
        for key in ANY_USER_ROUTES:
            assert needs[key] == frozenset(), key
        for key in OWNER_ONLY_ROUTES:
            assert needs[key] == ALL, key


def _capability_of(key: tuple[str, str]) -> Capability:
    route = next(r for r in APP_ROUTES if (r.method, r.path) == key)
    (capability,) = needed_capabilities(route)
    return capability


class TestCapabilityRoutes:
    @pytest.mark.parametrize("key", sorted(CAPABILITY_ROUTES), ids=lambda k: f"{k[0]} {k[1]}")
    def test_401_without_token_403_without_the_capability_and_allowed_with_exactly_it(
        self, key: tuple[str, str], client: TestClient, factory: Factory
    ) -> None:
        capability = _capability_of(key)
        owner = factory.owner().headers
        holder = factory.user(capabilities={capability})
        lacking = factory.user(capabilities=set(ALL - {capability}))
        method = key[0]

        path, body = CAPABILITY_ROUTES[key](factory, owner)
        anonymous = client.request(method, API_PREFIX + path, json=body)
        assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthorized"

        before = factory.snapshot()
        refused = client.request(method, API_PREFIX + path, json=body, headers=lacking.headers)
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "forbidden" and capability in refused.json()["message"]
        assert factory.snapshot() == before

        allowed = client.request(method, API_PREFIX + path, json=body, headers=holder.headers)
        assert allowed.status_code not in (401, 403), allowed.text
        assert 200 <= allowed.status_code < 300, allowed.text


class TestAnyUserRoutes:
    @pytest.mark.parametrize("key", sorted(ANY_USER_ROUTES), ids=lambda k: f"{k[0]} {k[1]}")
    def test_401_without_token_and_allowed_for_a_user_with_no_capability(
        self, key: tuple[str, str], client: TestClient, factory: Factory
    ) -> None:
        user = factory.user(capabilities=set())
        path = ANY_USER_ROUTES[key](factory, user.id)
        anonymous = client.request(key[0], API_PREFIX + path)
        assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthorized"
        assert client.request(key[0], API_PREFIX + path, headers=user.headers).status_code == 200


class TestOwnerOnlyRoutes:
    def test_transfer_ownership_is_refused_to_all_but_the_owner(self, client: TestClient, factory: Factory) -> None:
        owner = factory.owner()
        target = factory.user("Administrator")
        url = f"{API_PREFIX}/users/{target.id}/transfer-ownership"
        assert client.post(url).status_code == 401
        for actor in (factory.user("Administrator"), factory.user(capabilities=set(ALL - {Capability.edit_roles})),
                      factory.user(capabilities=set(ALL))):
            response = client.post(url, headers=actor.headers)
            assert response.status_code == 403 and response.json()["code"] == "forbidden"
        assert client.post(url, headers=owner.headers).status_code == 200


class TestExistenceIsNotRevealed:
    """To a user who may not see others, "no such user" and "not yours" are the same answer."""

    def test_quotas_explain_and_permissions_answer_alike_for_absent_and_hidden_users(
        self, client: TestClient, factory: Factory
    ) -> None:
        scientist, other = factory.user(), factory.user()
        tensor = factory.tensor()
        for absent, hidden in (("nobody@example.com", other.email), (DUMMY, str(other.id))):
            pairs = [
                (f"/quotas/{absent}", f"/quotas/{hidden}", {}),
                ("/permissions/explain", "/permissions/explain",
                 {"target_type": "tensor", "target_id": tensor}),
                ("/permissions", "/permissions", {"subject_type": "user"}),
            ]
            for absent_path, hidden_path, params in pairs:
                extra_absent = {"user": absent} if "explain" in absent_path else (
                    {"subject": absent} if absent_path == "/permissions" else {})
                extra_hidden = {"user": hidden} if "explain" in hidden_path else (
                    {"subject": hidden} if hidden_path == "/permissions" else {})
                a = client.get(API_PREFIX + absent_path, params={**params, **extra_absent}, headers=scientist.headers)
                h = client.get(API_PREFIX + hidden_path, params={**params, **extra_hidden}, headers=scientist.headers)
                assert (a.status_code, a.json()) == (h.status_code, h.json()), (absent_path, a.text, h.text)
                assert a.status_code in (200, 403)
