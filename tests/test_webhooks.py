"""The decision webhook: a real receiver on loopback gets each decision, signed with HMAC-SHA256 under the
node's secret (generated owner-only in the state directory, or set by edit_settings)."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.notifications import service as notifications
from tests.factories import Factory
from tests.test_release_requests import API, approve, dp_event, make_result, release


class Receiver:
    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.calls.append(({k: v for k, v in self.headers.items()}, body))
                outer.arrived.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def node_settings(tmp_path: Path, sqlite_url: str) -> NodeSettings:
    """These receivers listen on loopback over http: the operator allows private webhooks here."""
    return NodeSettings(state_dir=tmp_path / "state", database_url=sqlite_url, login_max_failures=3,
                        webhook_allow_private=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def configure(client: TestClient, factory: Factory, url: str) -> str:
    admin = factory.user("Administrator")
    assert client.patch(f"{API}/privacy/settings", headers=admin.headers,
                        json={"webhook_url": url}).json()["webhook_url"] == url
    response = client.post(f"{API}/privacy/webhook-secret", headers=admin.headers, json={})
    assert response.status_code == 200
    return response.json()["secret"]  # type: ignore[no-any-return]


class TestWebhook:
    def test_each_decision_arrives_signed_and_the_signature_verifies(
        self, client: TestClient, factory: Factory, receiver: Receiver
    ) -> None:
        secret = configure(client, factory, receiver.url)
        user, officer = factory.user(budget=10.0), factory.user("Compliance Officer")
        request = release(client, user, make_result(factory, user.id, event=dp_event())).json()
        assert receiver.calls == []  # pending is not a decision
        approve(client, officer, request["id"], note="fine")
        assert receiver.arrived.wait(10)
        headers, body = receiver.calls[0]
        payload = json.loads(body)
        assert payload["event"] == "request.approved"
        assert payload["request"]["id"] == request["id"] and payload["request"]["decision_note"] == "fine"
        timestamp, signature = headers[notifications.TIMESTAMP_HEADER], headers[notifications.SIGNATURE_HEADER]
        assert signature.startswith("sha256=")
        assert notifications.verify(secret, timestamp=timestamp, signature=signature, body=body)
        assert not notifications.verify(secret, timestamp=timestamp, signature=signature, body=body + b" ")
        assert not notifications.verify("another secret", timestamp=timestamp, signature=signature, body=body)
        assert not notifications.verify(secret, timestamp=timestamp, signature=signature, body=body,
                                        now=int(timestamp) + 3600)

    def test_auto_denials_and_denials_are_sent_too(
        self, client: TestClient, factory: Factory, receiver: Receiver
    ) -> None:
        configure(client, factory, receiver.url)
        user, officer = factory.user(budget=1.0), factory.user("Compliance Officer")
        release(client, user, make_result(factory, user.id, event=None))  # not DP: auto-denied under dp_only
        rich = factory.user(budget=10.0)
        pending = release(client, rich, make_result(factory, rich.id, event=dp_event())).json()
        client.post(f"{API}/requests/{pending['id']}/deny", headers=officer.headers, json={"reason": "no"})
        assert [json.loads(b)["event"] for _, b in receiver.calls] == ["request.auto_denied", "request.denied"]

    def test_the_secret_is_generated_owner_only_in_the_state_directory(self, client: TestClient) -> None:
        state_dir = client.app.state.settings.state_dir  # type: ignore[attr-defined]
        secret = notifications.signing_secret(state_dir)
        path = notifications.secret_path(state_dir)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert notifications.signing_secret(state_dir) == secret and len(secret) >= 32

    def test_setting_the_webhook_needs_edit_settings(self, client: TestClient, factory: Factory) -> None:
        officer = factory.user("Compliance Officer")
        assert client.patch(f"{API}/privacy/settings", headers=officer.headers,
                            json={"webhook_url": "http://127.0.0.1:1/x"}).status_code == 403
        assert client.post(f"{API}/privacy/webhook-secret", headers=officer.headers).status_code == 403

    def test_only_edit_settings_reads_the_url(self, client: TestClient, factory: Factory, receiver: Receiver) -> None:
        configure(client, factory, receiver.url + "?secret=s3cr3t")
        officer, scientist = factory.user("Compliance Officer"), factory.user()
        for user in (officer, scientist):
            shown = client.get(f"{API}/privacy/settings", headers=user.headers)
            assert shown.status_code == 200 and shown.json()["webhook_url"] is None
        admin = factory.user("Administrator")
        assert client.get(f"{API}/privacy/settings", headers=admin.headers).json()["webhook_url"].endswith("s3cr3t")


@pytest.fixture
def strict_client(tmp_path: Path) -> Iterator[TestClient]:
    """A Node with the default rule: webhooks only to https:// on public addresses."""
    from grid_runtime.node.app import create_app

    settings = NodeSettings(state_dir=tmp_path / "state", database_url=f"sqlite:///{tmp_path / 'strict.db'}")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


class TestWhereTheWebhookMayPoint:
    @pytest.mark.parametrize("url", [
        "http://example.com/hook", "https://127.0.0.1/hook", "https://10.0.0.8/hook", "https://[::1]/hook",
        "https://169.254.169.254/latest/meta-data", "https://localhost/hook", "https://db.internal/hook",
        "https://[::ffff:192.168.1.1]/hook", "https://user:pw@example.com/hook", "https://metadata/hook",
    ])
    def test_private_or_plain_http_targets_are_refused_by_default(self, strict_client: TestClient, url: str) -> None:
        admin = Factory(strict_client).user("Administrator")
        response = strict_client.patch(f"{API}/privacy/settings", headers=admin.headers, json={"webhook_url": url})
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_input"

    def test_a_public_https_target_is_accepted(self, strict_client: TestClient) -> None:
        admin = Factory(strict_client).user("Administrator")
        response = strict_client.patch(f"{API}/privacy/settings", headers=admin.headers,
                                       json={"webhook_url": "https://hooks.example.com/grid"})
        assert response.status_code == 200 and response.json()["webhook_url"] == "https://hooks.example.com/grid"

    def test_delivery_refuses_a_private_address_even_if_stored(self, receiver: Receiver) -> None:
        assert notifications.deliver(receiver.url, "s" * 32, {"event": "x"}) is False
        assert receiver.calls == []

    def test_deliveries_are_rate_limited(self, receiver: Receiver) -> None:
        limit = notifications._RateLimit()
        assert [limit.allow(3, now=100.0 + i) for i in range(5)] == [True, True, True, False, False]
        assert limit.allow(3, now=161.0)  # a minute later the window has moved on
        sent = [notifications.deliver(receiver.url, "s" * 32, {"event": "x"}, allow_private=True, max_per_minute=2)
                for _ in range(4)]
        assert sent.count(True) <= 2 and len(receiver.calls) == sent.count(True)
