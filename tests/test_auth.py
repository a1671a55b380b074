"""Setup, login, sessions, API tokens and password changes."""

from __future__ import annotations

from fastapi.testclient import TestClient

from grid_runtime.core.settings import NodeSettings
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
