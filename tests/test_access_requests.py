"""Requests of kind ``access``, and the one state machine every kind of request follows."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.database import transaction, utcnow
from grid_runtime.core.errors import Conflict
from grid_runtime.core.levels import Level
from grid_runtime.node import flows
from grid_runtime.node.audit.models import AuditEvent
from grid_runtime.node.deps import Actor
from grid_runtime.node.permissions.models import Grant
from grid_runtime.node.requests import service as requests
from grid_runtime.node.requests.models import Request, RequestEvent
from grid_runtime.node.requests.states import (
    INITIAL_STATES,
    TRANSITIONS,
    RequestKind,
    RequestState,
    check_transition,
)
from grid_runtime.node.users.models import User
from tests.factories import Factory, MadeUser

API = "/api/v1"


def _ask(client: TestClient, user: MadeUser, target_id: int, *, level: str = "download",
         target_type: str = "tensor", reason: str = "training a fraud model") -> Any:
    return client.post(f"{API}/requests", headers=user.headers, json={
        "kind": "access", "target_type": target_type, "target_id": target_id, "level": level, "reason": reason})


def _filed(client: TestClient, user: MadeUser, target_id: int, **kwargs: Any) -> dict[str, Any]:
    response = _ask(client, user, target_id, **kwargs)
    assert response.status_code == 201, response.text
    return response.json()


def _decide(client: TestClient, who: MadeUser, request_id: int, verb: str, body: dict[str, Any] | None = None
            ) -> Any:
    return client.post(f"{API}/requests/{request_id}/{verb}", headers=who.headers, json=body)


def _explain(client: TestClient, user: MadeUser, target_id: int, target_type: str = "tensor") -> dict[str, Any]:
    response = client.get(f"{API}/permissions/explain", headers=user.headers,
                          params={"target_type": target_type, "target_id": target_id})
    assert response.status_code == 200, response.text
    return response.json()


def _actor(session: Session, user_id: int) -> Actor:
    user = session.get(User, user_id)
    assert user is not None
    return Actor(user=user, capabilities=frozenset(Capability(c) for c in user.role.capabilities), token_id=0,
                 client_address="test")


class TestStateMachine:
    @pytest.mark.parametrize("current", list(RequestState))
    @pytest.mark.parametrize("target", list(RequestState))
    def test_only_pending_moves_and_only_to_a_decision_withdrawal_or_expiry(
        self, current: RequestState, target: RequestState
    ) -> None:
        allowed = current is RequestState.pending and target in {
            RequestState.approved, RequestState.denied, RequestState.withdrawn, RequestState.expired}
        if allowed:
            check_transition(7, current, target)
        else:
            with pytest.raises(Conflict) as refused:
                check_transition(7, current, target)
            assert f"request 7 is {'already ' if current.terminal else ''}{current}" in refused.value.message
            assert refused.value.details["state"] == str(current)

    def test_terminal_states_are_every_state_but_pending(self) -> None:
        assert [s for s in RequestState if not s.terminal] == [RequestState.pending]
        assert set(TRANSITIONS) == {RequestState.pending}
        assert {RequestState.pending, RequestState.auto_approved, RequestState.auto_denied} == INITIAL_STATES


class TestFile:
    def test_creates_a_pending_request_with_its_first_event(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        user = any_db_factory.user()
        tensor = any_db_factory.tensor()
        body = _filed(any_db_client, user, tensor, level="compute")
        assert (body["kind"], body["state"], body["requester_id"]) == ("access", "pending", user.id)
        assert body["requester_email"] == user.email
        assert (body["target_type"], body["target_id"]) == ("tensor", tensor)
        assert body["payload"] == {"level": "compute", "level_at_request": "search",
                                   "rule_at_request": "visibility"}
        assert body["reason"] == "training a fraud model"
        assert body["decided_at"] is None and body["decided_by"] is None
        assert [(e["from_state"], e["to_state"], e["actor_id"]) for e in body["events"]] == [
            (None, "pending", user.id)]
        assert "request.created" in any_db_factory.audit_actions()

    def test_a_dataset_can_be_asked_for(self, client: TestClient, factory: Factory) -> None:
        dataset = factory.dataset(tensors=[factory.tensor()])
        body = _filed(client, factory.user(), dataset, target_type="dataset")
        assert (body["target_type"], body["target_id"], body["payload"]["level"]) == ("dataset", dataset,
                                                                                     "download")

    def test_asking_for_a_level_you_already_have_is_409(self, client: TestClient, factory: Factory) -> None:
        user = factory.user()
        public = factory.tensor(visibility="public")
        response = _ask(client, user, public, level="compute")
        assert response.status_code == 409
        assert response.json()["code"] == "conflict"
        assert "you already have download" in response.json()["message"]
        assert factory.count(Request) == 0

    def test_a_second_pending_request_on_the_same_target_is_409(self, client: TestClient, factory: Factory) -> None:
        user = factory.user()
        tensor = factory.tensor()
        first = _filed(client, user, tensor, level="compute")
        response = _ask(client, user, tensor, level="download")
        assert response.status_code == 409
        assert f"request {first['id']}" in response.json()["message"]
        assert _decide(client, user, first["id"], "withdraw").status_code == 200
        assert _ask(client, user, tensor, level="download").status_code == 201

    @pytest.mark.parametrize(("change", "field"), [
        ({"level": "search"}, "level"),
        ({"level": "deny"}, "level"),
        ({"reason": "   "}, "reason"),
        ({"reason": None}, "reason"),
        ({"kind": "budget"}, "kind"),
        ({"target_type": "job"}, "target_type"),
    ])
    def test_refuses_invalid_requests_naming_the_field(
        self, client: TestClient, factory: Factory, change: dict[str, Any], field: str
    ) -> None:
        body = {"kind": "access", "target_type": "tensor", "target_id": factory.tensor(), "level": "compute",
                "reason": "why not", **change}
        response = client.post(f"{API}/requests", headers=factory.user().headers, json=body)
        assert response.status_code == 422
        assert field in response.json()["message"]
        assert factory.count(Request) == 0

    def test_unknown_target_is_404(self, client: TestClient, factory: Factory) -> None:
        response = _ask(client, factory.user(), 4242)
        assert response.status_code == 404 and "4242" in response.json()["message"]


class TestApprove:
    def test_grants_the_level_in_the_same_step_and_the_effective_level_changes(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        user, officer = any_db_factory.user(), any_db_factory.user("Compliance Officer")
        tensor = any_db_factory.tensor()
        assert _explain(any_db_client, user, tensor)["level"] == "search"
        filed = _filed(any_db_client, user, tensor, level="download")
        response = _decide(any_db_client, officer, filed["id"], "approve", {"note": "fine for the fraud study"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["state"], body["decided_by"], body["decision_note"]) == (
            "approved", officer.id, "fine for the fraud study")
        assert body["decided_at"] is not None
        assert [(e["from_state"], e["to_state"], e["actor_id"]) for e in body["events"]] == [
            (None, "pending", user.id), ("pending", "approved", officer.id)]
        explained = _explain(any_db_client, user, tensor)
        assert (explained["level"], explained["rule"]) == ("download", "user_on_tensor")
        grants = any_db_client.get(f"{API}/permissions", headers=user.headers).json()["items"]
        assert [(g["id"], g["subject_id"], g["target_id"], g["level"]) for g in grants] == [
            (explained["grant_id"], user.id, tensor, "download")]
        actions = any_db_factory.audit_actions()
        assert actions[-2:] == ["permission.granted", "request.approved"]
        with any_db_factory.sessions() as session:
            granted = session.scalar(select(AuditEvent).where(AuditEvent.action == "permission.granted"))
            assert granted is not None and granted.details["request_id"] == filed["id"]

    def test_on_a_dataset_grants_on_the_dataset(self, client: TestClient, factory: Factory) -> None:
        user, officer = factory.user(), factory.user("Compliance Officer")
        tensor = factory.tensor()
        dataset = factory.dataset(tensors=[tensor])
        filed = _filed(client, user, dataset, target_type="dataset", level="compute")
        assert _decide(client, officer, filed["id"], "approve").status_code == 200
        assert _explain(client, user, dataset, "dataset")["rule"] == "user_on_dataset"
        assert (_explain(client, user, tensor)["level"], _explain(client, user, tensor)["rule"]) == (
            "compute", "user_on_dataset")

    def test_raises_a_deny_but_never_lowers_a_higher_grant(self, client: TestClient, factory: Factory) -> None:
        user, officer, admin = factory.user(), factory.user("Compliance Officer"), factory.user("Administrator")
        denied_tensor, other_tensor = factory.tensor(), factory.tensor()
        grant = {"subject_type": "user", "subject": user.id, "target_type": "tensor"}
        client.post(f"{API}/permissions", headers=admin.headers,
                    json={**grant, "target_id": denied_tensor, "level": "deny"})
        raised = _filed(client, user, denied_tensor, level="compute")
        kept = _filed(client, user, other_tensor, level="compute")
        # An administrator grants download directly while the compute request waits.
        client.post(f"{API}/permissions", headers=admin.headers,
                    json={**grant, "target_id": other_tensor, "level": "download"})
        assert _decide(client, officer, raised["id"], "approve").status_code == 200
        assert _decide(client, officer, kept["id"], "approve").status_code == 200
        assert _explain(client, user, denied_tensor)["level"] == "compute"
        assert _explain(client, user, other_tensor)["level"] == "download"
        assert factory.count(Grant) == 2

    def test_returns_403_without_triage_capability(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        user, other = any_db_factory.user(), any_db_factory.user()
        budgets_only = any_db_factory.user(capabilities={Capability.manage_budgets})
        filed = _filed(any_db_client, user, any_db_factory.tensor())
        before = any_db_factory.snapshot()
        for who in (user, other, budgets_only):
            response = _decide(any_db_client, who, filed["id"], "approve")
            assert response.status_code == 403
            assert "triage_requests" in response.json()["message"]
        assert any_db_factory.snapshot() == before

    def test_an_officer_cannot_decide_their_own_request(self, client: TestClient, factory: Factory) -> None:
        officer = factory.user("Compliance Officer")
        filed = _filed(client, officer, factory.tensor())
        response = _decide(client, officer, filed["id"], "approve")
        assert response.status_code == 403 and "your own" in response.json()["message"]
        assert _decide(client, officer, filed["id"], "deny", {"reason": "no"}).status_code == 403

    @pytest.mark.parametrize(("first", "first_body", "state"), [
        ("approve", None, "approved"), ("deny", {"reason": "not for this project"}, "denied"),
        ("withdraw", None, "withdrawn"),
    ])
    def test_a_second_decision_is_409_naming_the_state(
        self, any_db_client: TestClient, any_db_factory: Factory, first: str, first_body: dict[str, Any] | None,
        state: str,
    ) -> None:
        user, officer = any_db_factory.user(), any_db_factory.user("Compliance Officer")
        filed = _filed(any_db_client, user, any_db_factory.tensor())
        who = user if first == "withdraw" else officer
        assert _decide(any_db_client, who, filed["id"], first, first_body).status_code == 200
        before = any_db_factory.snapshot()
        for verb, body in (("approve", None), ("deny", {"reason": "changed my mind"})):
            response = _decide(any_db_client, officer, filed["id"], verb, body)
            assert response.status_code == 409
            assert response.json()["code"] == "conflict"
            assert f"already {state}" in response.json()["message"]
            assert response.json()["details"]["state"] == state
        assert any_db_factory.snapshot() == before

    def test_unknown_request_is_404(self, client: TestClient, factory: Factory) -> None:
        assert _decide(client, factory.user("Compliance Officer"), 999, "approve").status_code == 404

    def test_two_concurrent_approvals_cannot_both_succeed(self, any_db_factory: Factory) -> None:
        user, officers = any_db_factory.user(), [any_db_factory.user("Compliance Officer") for _ in range(2)]
        tensor = any_db_factory.tensor()
        sessions = any_db_factory.sessions
        with transaction(sessions) as session:
            request_id = requests.file_access_request(
                session, actor=_actor(session, user.id), target_type="tensor", target_id=tensor,
                level=Level.download, reason="race").id
        start = threading.Barrier(2)
        outcomes: list[str] = []
        settings = any_db_factory.client.app.state.settings  # type: ignore[attr-defined]

        def approve(officer_id: int) -> None:
            start.wait()
            try:
                with transaction(sessions) as session:
                    flows.approve(session, actor=_actor(session, officer_id), request_id=request_id, note=None,
                                  fingerprint=None, settings=settings)
                    time.sleep(0.3)  # hold the lock while the other approval tries
                outcomes.append("approved")
            except Conflict as exc:
                outcomes.append(exc.message)

        threads = [threading.Thread(target=approve, args=(o.id,)) for o in officers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(outcomes) == ["approved", f"request {request_id} is already approved and can no longer "
                                                "change"]
        assert any_db_factory.count(Grant) == 1
        with sessions() as session:
            events = session.scalars(select(RequestEvent.to_state).where(RequestEvent.request_id == request_id))
            assert list(events) == ["pending", "approved"]


class TestDeny:
    def test_records_the_reason_and_grants_nothing(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        user, officer = any_db_factory.user(), any_db_factory.user("Compliance Officer")
        tensor = any_db_factory.tensor()
        filed = _filed(any_db_client, user, tensor)
        response = _decide(any_db_client, officer, filed["id"], "deny", {"reason": "raw data stays here"})
        assert response.status_code == 200
        body = response.json()
        assert (body["state"], body["decision_note"], body["decided_by"]) == (
            "denied", "raw data stays here", officer.id)
        assert body["events"][-1] == {**body["events"][-1], "from_state": "pending", "to_state": "denied",
                                      "note": "raw data stays here"}
        assert any_db_factory.count(Grant) == 0
        assert _explain(any_db_client, user, tensor)["level"] == "search"
        # The requester reads the decision and the reason.
        seen = any_db_client.get(f"{API}/requests/{filed['id']}", headers=user.headers).json()
        assert (seen["state"], seen["decision_note"]) == ("denied", "raw data stays here")
        assert "request.denied" in any_db_factory.audit_actions()

    @pytest.mark.parametrize("body", [None, {}, {"reason": ""}, {"reason": "  "}])
    def test_needs_a_reason(self, client: TestClient, factory: Factory, body: dict[str, Any] | None) -> None:
        filed = _filed(client, factory.user(), factory.tensor())
        response = _decide(client, factory.user("Compliance Officer"), filed["id"], "deny", body)
        assert response.status_code == 422
        assert "reason" in response.json()["message"] or "body" in response.json()["message"]
        assert client.get(f"{API}/requests/{filed['id']}", headers=factory.user("Compliance Officer").headers
                          ).json()["state"] == "pending"

    def test_returns_403_without_triage_capability(self, client: TestClient, factory: Factory) -> None:
        filed = _filed(client, factory.user(), factory.tensor())
        response = _decide(client, factory.user("Data Scientist"), filed["id"], "deny", {"reason": "no"})
        assert response.status_code == 403


class TestWithdraw:
    def test_the_requester_withdraws_a_pending_request(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        user = any_db_factory.user()
        filed = _filed(any_db_client, user, any_db_factory.tensor())
        response = _decide(any_db_client, user, filed["id"], "withdraw", {"note": "asked the wrong tensor"})
        assert response.status_code == 200
        body = response.json()
        assert body["state"] == "withdrawn" and body["decided_by"] is None
        assert [(e["from_state"], e["to_state"], e["actor_id"], e["note"]) for e in body["events"]][-1] == (
            "pending", "withdrawn", user.id, "asked the wrong tensor")
        assert "request.withdrawn" in any_db_factory.audit_actions()

    def test_only_the_requester_may_withdraw(self, client: TestClient, factory: Factory) -> None:
        filed = _filed(client, factory.user(), factory.tensor())
        for who in (factory.user("Compliance Officer"), factory.owner()):  # they see it; a stranger gets 404
            response = _decide(client, who, filed["id"], "withdraw")
            assert response.status_code == 403 and "only the requester" in response.json()["message"]

    @pytest.mark.parametrize(("verb", "body", "state"), [
        ("approve", None, "approved"), ("deny", {"reason": "no"}, "denied"), ("withdraw", None, "withdrawn"),
    ])
    def test_withdraw_after_a_decision_is_409(
        self, any_db_client: TestClient, any_db_factory: Factory, verb: str, body: dict[str, Any] | None,
        state: str,
    ) -> None:
        user, officer = any_db_factory.user(), any_db_factory.user("Compliance Officer")
        filed = _filed(any_db_client, user, any_db_factory.tensor())
        assert _decide(any_db_client, user if verb == "withdraw" else officer, filed["id"], verb, body
                       ).status_code == 200
        response = _decide(any_db_client, user, filed["id"], "withdraw")
        assert response.status_code == 409
        assert f"already {state}" in response.json()["message"]


class TestExpiry:
    def test_overdue_pending_requests_expire_and_can_no_longer_be_decided(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        user, officer = any_db_factory.user(), any_db_factory.user("Compliance Officer")
        tensor = any_db_factory.tensor()
        with transaction(any_db_factory.sessions) as session:
            overdue = requests.create_request(
                session, actor=_actor(session, user.id), requester_id=user.id, kind=RequestKind.access,
                reason="old", target_type="tensor", target_id=tensor, payload={"level": "download"},
                expires_at=utcnow() - timedelta(seconds=1)).id
            fresh = requests.create_request(
                session, actor=_actor(session, user.id), requester_id=user.id, kind=RequestKind.access,
                reason="new", target_type="tensor", target_id=tensor, payload={"level": "compute"},
                expires_at=utcnow() + timedelta(days=1)).id
        refused = _decide(any_db_client, officer, overdue, "approve")
        assert refused.status_code == 409 and "expired" in refused.json()["message"]
        # Reading the request records the expiry, by nobody, as an event.
        body = any_db_client.get(f"{API}/requests/{overdue}", headers=user.headers).json()
        assert body["state"] == "expired"
        assert [(e["from_state"], e["to_state"], e["actor_id"]) for e in body["events"]][-1] == (
            "pending", "expired", None)
        assert _decide(any_db_client, officer, overdue, "approve").json()["details"]["state"] == "expired"
        assert _decide(any_db_client, officer, fresh, "approve").status_code == 200
        assert "request.expired" in any_db_factory.audit_actions()


class TestCreatedDecided:
    def test_a_request_created_auto_denied_is_terminal_from_the_start(self, factory: Factory) -> None:
        user = factory.user()
        with transaction(factory.sessions) as session:
            request = requests.create_request(
                session, actor=None, requester_id=user.id, kind=RequestKind.release, reason="",
                state=RequestState.auto_denied, note="this would exceed your budget")
            assert request.decided_at is not None and request.decision_note == "this would exceed your budget"
            assert [(e.from_state, e.to_state) for e in request.events] == [(None, "auto_denied")]
            with pytest.raises(Conflict, match="already auto_denied"):
                requests.withdraw(session, actor=_actor(session, user.id), request_id=request.id)

    def test_requests_cannot_be_created_as_a_later_state(self, factory: Factory) -> None:
        user = factory.user()
        with transaction(factory.sessions) as session, pytest.raises(ValueError, match="approved"):
            requests.create_request(session, actor=None, requester_id=user.id, kind=RequestKind.access,
                                    reason="", state=RequestState.approved)


class TestListAndShow:
    @pytest.fixture
    def filed(self, any_db_client: TestClient, any_db_factory: Factory) -> dict[str, Any]:
        alice, bob = any_db_factory.user(), any_db_factory.user()
        officer = any_db_factory.user("Compliance Officer")
        t1, t2, t3 = (any_db_factory.tensor() for _ in range(3))
        a1 = _filed(any_db_client, alice, t1)
        a2 = _filed(any_db_client, alice, t2)
        b1 = _filed(any_db_client, bob, t3)
        _decide(any_db_client, officer, a1["id"], "deny", {"reason": "no"})
        return {"alice": alice, "bob": bob, "officer": officer, "a1": a1["id"], "a2": a2["id"], "b1": b1["id"]}

    @staticmethod
    def _ids(client: TestClient, who: MadeUser, **params: Any) -> list[int]:
        response = client.get(f"{API}/requests", headers=who.headers, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] == len(body["items"])
        return [r["id"] for r in body["items"]]

    def test_data_scientists_see_only_their_own(self, any_db_client: TestClient, filed: dict[str, Any]) -> None:
        assert self._ids(any_db_client, filed["alice"]) == [filed["a2"], filed["a1"]]
        assert self._ids(any_db_client, filed["bob"]) == [filed["b1"]]
        assert self._ids(any_db_client, filed["alice"], requester=filed["alice"].email) == [filed["a2"], filed["a1"]]
        refused = any_db_client.get(f"{API}/requests", headers=filed["alice"].headers,
                                    params={"requester": str(filed["bob"].id)})
        assert refused.status_code == 403

    def test_officers_see_all_with_status_kind_and_requester_filters(
        self, any_db_client: TestClient, filed: dict[str, Any]
    ) -> None:
        officer = filed["officer"]
        assert self._ids(any_db_client, officer) == [filed["b1"], filed["a2"], filed["a1"]]
        assert self._ids(any_db_client, officer, status="pending") == [filed["b1"], filed["a2"]]
        assert self._ids(any_db_client, officer, status="denied", kind="access") == [filed["a1"]]
        assert self._ids(any_db_client, officer, kind="release") == []
        assert self._ids(any_db_client, officer, requester=str(filed["bob"].id)) == [filed["b1"]]
        page = any_db_client.get(f"{API}/requests", headers=officer.headers, params={"limit": 1, "offset": 1})
        assert [r["id"] for r in page.json()["items"]] == [filed["a2"]] and page.json()["total"] == 3
        bad = any_db_client.get(f"{API}/requests", headers=officer.headers, params={"status": "open"})
        assert bad.status_code == 422 and "status" in bad.json()["message"]

    def test_show_is_for_the_requester_and_officers(self, any_db_client: TestClient, filed: dict[str, Any]) -> None:
        url = f"{API}/requests/{filed['a1']}"
        for who in (filed["alice"], filed["officer"]):
            body = any_db_client.get(url, headers=who.headers).json()
            assert [e["to_state"] for e in body["events"]] == ["pending", "denied"]
        hidden = any_db_client.get(url, headers=filed["bob"].headers)  # as if it did not exist (issue 11)
        assert hidden.status_code == 404 and hidden.json()["message"] == f"no request with id {filed['a1']}"
        assert any_db_client.get(f"{API}/requests/999", headers=filed["officer"].headers).status_code == 404
