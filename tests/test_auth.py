"""Setup, login, sessions, API tokens and password changes."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.app import create_app
from grid_runtime.node.audit.models import AuditEvent
from tests.factories import PASSWORD, Factory


def _setup_token(settings: NodeSettings) -> str:
    return (settings.state_dir / "setup-token").read_text().strip()


class TestSetup:
    def test_setup_token_is_owner_only_and_creates_the_owner_once(
        self, client: TestClient, node_settings: NodeSettings
    ) -> None:
        path = node_settings.state_dir / "setup-token"
        assert path.stat().st_mode & 0o777 == 0o600
        body = {"setup_token": _setup_token(node_settings), "email": "Owner@Example.com",
                "password": "a long password"}
        assert client.post("/api/v1/setup", json=body).status_code == 201
        assert not path.exists()
        again = client.post("/api/v1/setup", json={**body, "email": "other@example.com"})
        assert again.status_code == 403 and again.json()["code"] == "forbidden"
        login = client.post("/api/v1/auth/login", json={"email": "owner@example.com",
                                                        "password": "a long password"})
        assert login.status_code == 200

    def test_wrong_setup_token_is_refused(self, client: TestClient) -> None:
        body = {"setup_token": "gsetup_nope", "email": "o@example.com", "password": "a long password"}
        assert client.post("/api/v1/setup", json=body).status_code == 403


class TestLogin:
    def test_returns_a_session_token_that_authenticates(self, client: TestClient, factory: Factory) -> None:
        user = factory.user()
        response = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
        assert response.status_code == 200
        token = response.json()["token"]
        assert token.startswith("gsess_")
        assert client.get("/api/v1/tokens", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    def test_wrong_password_and_unknown_email_get_the_same_401(
        self, client: TestClient, factory: Factory
    ) -> None:
        user = factory.user()
        wrong = client.post("/api/v1/auth/login", json={"email": user.email, "password": "nope nope"})
        unknown = client.post("/api/v1/auth/login", json={"email": "x@example.com", "password": "nope nope"})
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json()

    def test_is_rate_limited_per_account(self, client: TestClient, factory: Factory) -> None:
        user = factory.user()
        for _ in range(3):  # node_settings allows 3 failures
            client.post("/api/v1/auth/login", json={"email": user.email, "password": "bad password"})
        blocked = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
        assert blocked.status_code == 429
        assert blocked.json()["code"] == "rate_limited"
        assert int(blocked.headers["Retry-After"]) > 0

    def test_malformed_json_is_a_400(self, client: TestClient) -> None:
        response = client.post("/api/v1/auth/login", content=b'{"email": ',
                               headers={"Content-Type": "application/json"})
        assert response.status_code == 400
        assert response.json()["code"] == "malformed_json"


class TestTokens:
    def test_logout_revokes_the_session(self, client: TestClient, factory: Factory) -> None:
        user = factory.user()
        token = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
        assert client.get("/api/v1/tokens", headers=headers).status_code == 401

    def test_api_token_is_shown_once_stored_hashed_and_revocable(
        self, client: TestClient, factory: Factory
    ) -> None:
        user = factory.user()
        created = client.post("/api/v1/tokens", json={"name": "ci"}, headers=user.headers)
        assert created.status_code == 201
        secret = created.json()["token"]
        listed = client.get("/api/v1/tokens", headers=user.headers).json()
        assert "ci" in [t["name"] for t in listed] and all("token" not in t for t in listed)
        ci = {"Authorization": f"Bearer {secret}"}
        assert client.get("/api/v1/tokens", headers=ci).status_code == 200
        assert client.delete("/api/v1/tokens/ci", headers=user.headers).status_code == 200
        assert client.get("/api/v1/tokens", headers=ci).status_code == 401

    def test_duplicate_active_token_name_is_a_conflict(self, client: TestClient, factory: Factory) -> None:
        user = factory.user()
        client.post("/api/v1/tokens", json={"name": "ci"}, headers=user.headers)
        again = client.post("/api/v1/tokens", json={"name": "ci"}, headers=user.headers)
        assert again.status_code == 409 and again.json()["code"] == "already_exists"

    def test_no_token_is_401(self, client: TestClient) -> None:
        response = client.get("/api/v1/tokens")
        assert response.status_code == 401 and response.json()["code"] == "unauthorized"


class TestPasswordChange:
    def test_needs_the_current_password_and_logs_out_other_sessions(
        self, client: TestClient, factory: Factory
    ) -> None:
        user = factory.user()
        login = {"email": user.email, "password": PASSWORD}
        other = {"Authorization": f"Bearer {client.post('/api/v1/auth/login', json=login).json()['token']}"}
        wrong = client.put("/api/v1/users/me/password", headers=user.headers,
                           json={"current_password": "not it at all", "new_password": "new password 1"})
        assert wrong.status_code == 403
        ok = client.put("/api/v1/users/me/password", headers=user.headers,
                        json={"current_password": PASSWORD, "new_password": "new password 1"})
        assert ok.status_code == 204
        assert client.get("/api/v1/tokens", headers=other).status_code == 401
        assert client.post("/api/v1/auth/login", json={**login, "password": "new password 1"}).status_code == 200

    def test_short_new_password_is_refused(self, client: TestClient, factory: Factory) -> None:
        user = factory.user()
        response = client.put("/api/v1/users/me/password", headers=user.headers,
                              json={"current_password": PASSWORD, "new_password": "short"})
        assert response.status_code == 422 and "new_password" in response.json()["message"]


class TestProvisionedSetupToken:
    def test_a_token_placed_before_first_start_is_adopted(self, tmp_path, sqlite_url) -> None:
        state = tmp_path / "state"
        state.mkdir()
        (state / "setup-token").write_text("gsetup_from_the_secret_store\n")
        settings = NodeSettings(state_dir=state, database_url=sqlite_url)
        from grid_runtime.node.app import create_app

        with TestClient(create_app(settings)) as client:
            body = {"setup_token": "gsetup_from_the_secret_store", "email": "o@example.com",
                    "password": "a long password"}
            assert client.post("/api/v1/setup", json=body).status_code == 201
        assert not (state / "setup-token").exists()


# --- issue 11: throttling, revocation, admins and tokens, forwarded addresses, files ---------------------------


@pytest.fixture
def proxied(tmp_path: Path, database_url: str) -> Iterator[tuple[TestClient, Factory]]:
    """A Node behind a trusted proxy (the test client's address), on each backend: X-Forwarded-For then
    names the caller, so tests can speak from several addresses."""
    settings = NodeSettings(state_dir=tmp_path / "state", database_url=database_url, login_max_failures=3,
                            trusted_proxies=["testclient"])
    with TestClient(create_app(settings)) as client:
        yield client, Factory(client)


def _login(client: TestClient, email: str, password: str, address: str | None = None) -> Response:
    headers = {"X-Forwarded-For": address} if address else {}
    return client.post("/api/v1/auth/login", json={"email": email, "password": password}, headers=headers)


class TestLoginThrottling:
    def test_backs_off_per_account_and_address_not_for_everyone(
        self, proxied: tuple[TestClient, Factory]
    ) -> None:
        client, factory = proxied
        user = factory.user()
        for _ in range(3):
            assert _login(client, user.email, "bad password", "203.0.113.7").status_code == 401
        blocked = _login(client, user.email, PASSWORD, "203.0.113.7")
        assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1
        # The attacker's failures do not lock the account out for its owner elsewhere.
        assert _login(client, user.email, PASSWORD, "198.51.100.2").status_code == 200

    def test_successful_logins_from_one_address_never_add_up_to_a_back_off(
        self, proxied: tuple[TestClient, Factory]
    ) -> None:
        client, factory = proxied
        users = [factory.user() for _ in range(3)]
        # 3 × 6 = 18 successes from one address, past its allowance of 4 × 3 = 12 attempts: none is refused.
        answers = [_login(client, user.email, PASSWORD, "203.0.113.20").status_code for _ in range(6) for user in users]
        assert answers == [200] * 18
        # Failures still add up for the address across accounts, and a success does not wipe them.
        for i in range(12):
            _login(client, f"nobody{i}@example.com", "bad password", "203.0.113.20")
        assert _login(client, users[0].email, PASSWORD, "203.0.113.20").status_code == 429

    def test_parallel_guesses_never_exceed_the_allowance(self, proxied: tuple[TestClient, Factory]) -> None:
        client, factory = proxied
        user = factory.user()
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda i: _login(client, user.email, f"guess {i}", "203.0.113.9").status_code,
                                    range(24)))
        # Each guess is counted before its password is checked, under a lock: at most the allowance (3) is
        # evaluated, on SQLite and on PostgreSQL alike; the others are refused unevaluated.
        assert answers.count(401) <= 3 and answers.count(429) >= 21
        assert set(answers) <= {401, 429}

    def test_a_disabled_account_with_the_right_password_looks_like_a_wrong_password(
        self, client: TestClient, factory: Factory
    ) -> None:
        admin, user = factory.user("Administrator"), factory.user()
        client.patch(f"/api/v1/users/{user.id}", headers=admin.headers, json={"disabled": True})
        right, wrong = _login(client, user.email, PASSWORD), _login(client, user.email, "nope nope nope")
        assert right.status_code == wrong.status_code == 401 and right.json() == wrong.json()


class TestForwardedAddresses:
    @staticmethod
    def _addresses(factory: Factory, user_id: int) -> list[str | None]:
        with factory.sessions() as session:
            return list(session.scalars(select(AuditEvent.client_address).where(
                AuditEvent.action == "auth.login", AuditEvent.target_id == str(user_id))))

    def test_x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(
        self, client: TestClient, factory: Factory, proxied: tuple[TestClient, Factory]
    ) -> None:
        user = factory.user()
        _login(client, user.email, PASSWORD, "6.6.6.6")
        assert self._addresses(factory, user.id) == ["testclient"]
        behind, behind_factory = proxied
        other = behind_factory.user()
        _login(behind, other.email, PASSWORD, "6.6.6.6, 198.51.100.4")
        # the address the trusted proxy saw, not what the client claimed
        assert self._addresses(behind_factory, other.id) == ["198.51.100.4"]


class TestTokensAreRevoked:
    def test_a_password_change_revokes_every_other_token_api_tokens_included(
        self, client: TestClient, factory: Factory
    ) -> None:
        user = factory.user()
        session_headers = factory.login(user.email)
        changed = client.put("/api/v1/users/me/password", headers=session_headers,
                             json={"current_password": PASSWORD, "new_password": "new password 1"})
        assert changed.status_code == 204
        assert client.get("/api/v1/users/me", headers=user.headers).status_code == 401  # the API token
        assert client.get("/api/v1/users/me", headers=session_headers).status_code == 200  # the one used

    def test_an_admin_reset_revokes_every_token(self, client: TestClient, factory: Factory) -> None:
        admin, user = factory.user("Administrator"), factory.user()
        session_headers = factory.login(user.email)
        reset = client.put(f"/api/v1/users/{user.id}/password", headers=admin.headers,
                           json={"new_password": "reset password 1"})
        assert reset.status_code == 204
        for headers in (user.headers, session_headers):
            assert client.get("/api/v1/users/me", headers=headers).status_code == 401

    def test_admins_list_and_revoke_any_users_tokens(self, client: TestClient, factory: Factory) -> None:
        admin, user = factory.user("Administrator"), factory.user()
        session_headers = factory.login(user.email)
        listed = client.get(f"/api/v1/users/{user.email}/tokens", headers=admin.headers)
        assert listed.status_code == 200
        kinds = sorted(t["kind"] for t in listed.json())
        assert kinds == ["api", "session"] and all("token" not in t for t in listed.json())
        one = client.delete(f"/api/v1/users/{user.id}/tokens/factory", headers=admin.headers)
        assert one.status_code == 200 and one.json()["revoked_at"] is not None
        assert client.get("/api/v1/users/me", headers=user.headers).status_code == 401
        everything = client.delete(f"/api/v1/users/{user.id}/tokens", headers=admin.headers)
        assert everything.json() == {"revoked": 1}
        assert client.get("/api/v1/users/me", headers=session_headers).status_code == 401
        active = client.get(f"/api/v1/users/{user.id}/tokens", params={"active": True}, headers=admin.headers)
        assert active.json() == []
        assert "token.revoked_all" in factory.audit_actions()

    def test_nobody_lists_the_tokens_of_someone_more_capable(self, client: TestClient, factory: Factory) -> None:
        admin, owner = factory.user("Administrator"), factory.owner()
        refused = client.get(f"/api/v1/users/{owner.id}/tokens", headers=admin.headers)
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
        scientist = factory.user()
        assert client.get(f"/api/v1/users/{scientist.id}/tokens", headers=scientist.headers).status_code == 403


class TestFilesAreOwnerOnly:
    def test_the_database_and_state_directory_are_created_private(self, tmp_path: Path) -> None:
        state = tmp_path / "fresh-state"
        settings = NodeSettings(state_dir=state)
        with TestClient(create_app(settings)):
            pass
        assert stat.S_IMODE(state.stat().st_mode) == 0o700
        for name in ("node.db", "node.db-wal", "node.db-shm"):
            path = state / name
            if path.exists():
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
        assert (state / "node.db").exists()
