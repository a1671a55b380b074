"""Requests: the generic lifecycle (create, decide, withdraw, expire) and the ``access`` kind's own parts.

Every kind shares one table and the state machine in ``requests.states``; who may decide each kind is
``DECIDED_WITH``. What approving a request does crosses domains (a grant, a budget, a release) and is written
out, kind by kind, in ``node.flows.approve``: this module locks the request and checks the decider
(``lock_for_decision``), then records the transition (``transition``). Every transition writes a
``RequestEvent`` and an audit event in the same transaction as the change.

Concurrency: a decision locks the request row first (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite
every transaction already holds the write lock from its start, see ``core.database``), so two concurrent
approvals of one request cannot both pass the state check: the second sees the first's decision and gets
409.

Existence (issue 11): a request the actor may not see (not theirs, and not of a kind they decide) gets the
same 404 as one that does not exist (``visible_request``), and deciding is refused for want of a capability
before the request is looked up, in words that depend on the actor alone (``_cannot_decide``).

Targets (issue 11): an access request records its target's fingerprint when it is filed (the keyed HMAC of
``budget.fingerprints``, of the tensor's sha256 or of the dataset's members; officers only). Before one is
approved, ``stale_access_target`` compares it with the target as it is now: a target that is gone or whose
content changed cancels the request (``expired``, with a note the requester reads) and the approval is refused
with 409. Deleting a target expires its pending requests of every kind (``cancel_for_deleted_target``).
"""

from __future__ import annotations

import hmac
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, lazyload

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.database import utcnow
from grid_runtime.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from grid_runtime.core.levels import Level
from grid_runtime.node import lookup
from grid_runtime.node.audit import service as audit
from grid_runtime.node.budget import fingerprints
from grid_runtime.node.datasets.models import DatasetMember
from grid_runtime.node.permissions import service as permissions
from grid_runtime.node.requests.models import Request, RequestEvent
from grid_runtime.node.requests.states import (
    DECISIONS,
    RequestKind,
    RequestState,
    check_initial,
    check_transition,
)
from grid_runtime.node.tensors.models import Tensor

if TYPE_CHECKING:
    from grid_runtime.node.deps import Actor

DECIDED_WITH: dict[RequestKind, Capability] = {
    RequestKind.access: Capability.triage_requests,
    RequestKind.release: Capability.triage_requests,
    RequestKind.budget: Capability.manage_budgets,
}
"""The capability that lets a user see and decide requests of each kind."""

ACCESS_LEVELS = (Level.compute, Level.download)


# --- the generic lifecycle ----------------------------------------------------------------------------


def create_request(
    session: Session, *, actor: Actor | None, requester_id: int, kind: RequestKind, reason: str,
    target_type: str | None = None, target_id: int | None = None, payload: dict[str, Any] | None = None,
    state: RequestState = RequestState.pending, note: str | None = None, expires_at: datetime | None = None,
) -> Request:
    """Insert a request in one of the initial states, with its first event and an audit event.

    Created directly as ``auto_approved``/``auto_denied`` (later kinds' policies), it is decided at once:
    ``note`` is the reason the requester reads and ``decided_by`` stays empty (the Node decided).
    """
    check_initial(state)
    now = utcnow()
    request = Request(
        kind=str(kind), state=str(state), requester_id=requester_id, target_type=target_type,
        target_id=target_id, payload=payload or {}, reason=reason, created_at=now, expires_at=expires_at,
    )
    if state in DECISIONS:
        request.decided_at, request.decision_note = now, note
    session.add(request)
    session.flush()
    session.add(RequestEvent(request_id=request.id, from_state=None, to_state=str(state),
                             actor_id=actor.id if actor else None, note=note, at=now))
    audit.record(session, actor=actor, action="request.created", target_type="request", target_id=request.id,
                 details={"kind": str(kind), "state": str(state), "target_type": target_type,
                          "target_id": target_id, "payload": request.payload})
    session.flush()
    session.refresh(request, ["events"])
    return request


def get_request(session: Session, request_id: int, *, for_update: bool = False) -> Request:
    """The request, or NotFound. ``for_update`` locks its row until the transaction ends."""
    return lookup.request(session, request_id, for_update=for_update)


def transition(
    session: Session, *, request: Request, to_state: RequestState, actor: Actor | None, note: str | None
) -> Request:
    """Move a (locked) request to ``to_state`` if the state machine allows it; record the event and audit.

    Raises Conflict naming the current state otherwise (terminal states never change).
    """
    current = RequestState(request.state)
    check_transition(request.id, current, to_state)
    now = utcnow()
    request.state = str(to_state)
    if to_state in DECISIONS:
        request.decided_at, request.decided_by, request.decision_note = now, actor.id if actor else None, note
    session.add(RequestEvent(request_id=request.id, from_state=str(current), to_state=str(to_state),
                             actor_id=actor.id if actor else None, note=note, at=now))
    audit.record(session, actor=actor, action=f"request.{to_state}", target_type="request",
                 target_id=request.id, details={"kind": request.kind, "from": str(current), "note": note})
    session.flush()
    session.refresh(request, ["events"])
    return request


_ANY_OVERDUE = (select(Request.__table__.c.id)
                .where(Request.__table__.c.state == str(RequestState.pending),
                       Request.__table__.c.expires_at <= bindparam("now", type_=Request.__table__.c.expires_at.type))
                .limit(1))


def expire_overdue(session: Session, *, now: datetime | None = None) -> list[int]:
    """Move every pending request whose ``expires_at`` has passed to ``expired``; returns their ids."""
    now = now or utcnow()
    if session.execute(_ANY_OVERDUE, {"now": now}).first() is None:  # the usual case, in a cheap query
        return []
    overdue = session.scalars(
        select(Request).where(Request.state == str(RequestState.pending), Request.expires_at.is_not(None),
                              Request.expires_at <= now)
        .order_by(Request.id).with_for_update(of=Request)
    ).all()
    for request in overdue:
        transition(session, request=request, to_state=RequestState.expired, actor=None,
                   note=f"expired at {request.expires_at:%Y-%m-%d %H:%M:%S} UTC without a decision")
    return [r.id for r in overdue]


def cancel_for_deleted_target(session: Session, *, target_type: str, target_id: int) -> list[int]:
    """Expire every pending request on a target that is being deleted, with a note saying so; their ids.

    Called by the deleting service in its transaction (issue 11): a request must never be approved for an
    object that no longer exists (ids are never reused either, see ``core.database.Base``)."""
    pending = session.scalars(
        select(Request).where(Request.state == str(RequestState.pending), Request.target_type == target_type,
                              Request.target_id == target_id)
        .order_by(Request.id).with_for_update(of=Request)
    ).all()
    for request in pending:
        transition(session, request=request, to_state=RequestState.expired, actor=None,
                   note=f"the {target_type} {target_id} was deleted before a decision")
    return [r.id for r in pending]


def _check_not_overdue(request: Request) -> None:
    if (request.state == RequestState.pending and request.expires_at is not None
            and request.expires_at <= utcnow()):
        raise Conflict(f"request {request.id} expired at {request.expires_at.isoformat()} without a decision",
                       details={"request_id": request.id, "state": str(RequestState.expired)})


def _may_triage(actor: Actor, kind: str) -> bool:
    return actor.can(DECIDED_WITH[RequestKind(kind)])


def may_see(actor: Actor, request: Request) -> bool:
    """Its requester and the holders of the capability that decides its kind see a request; nobody else."""
    return request.requester_id == actor.id or _may_triage(actor, request.kind)


def _no_such_request(request_id: int) -> NotFound:
    """The answer for a request that does not exist, and for one the actor may not see (the same body)."""
    return NotFound(f"no request with id {request_id}")


def visible_request(session: Session, *, actor: Actor, request_id: int, for_update: bool = False) -> Request:
    """The request if ``actor`` may see it (``may_see``); otherwise the same NotFound as a missing one."""
    try:
        request = get_request(session, request_id, for_update=for_update)
    except NotFound:
        raise _no_such_request(request_id) from None
    if not may_see(actor, request):
        raise _no_such_request(request_id)
    return request


def _cannot_decide(actor: Actor) -> Forbidden:
    """Why ``actor`` cannot decide some kinds of request: a function of their capabilities alone, so it is the
    same whether the request exists, is of one of those kinds, or is not."""
    missing: dict[Capability, list[str]] = {}
    for kind, capability in DECIDED_WITH.items():
        if not actor.can(capability):
            missing.setdefault(capability, []).append(str(kind))
    clauses = [f"deciding {' and '.join(kinds)} requests needs the capability {capability}"
               for capability, kinds in missing.items()]
    return Forbidden("; ".join(clauses), details={"missing": sorted(str(c) for c in missing)})


def _check_decider(actor: Actor, request: Request) -> None:
    if not _may_triage(actor, request.kind):
        raise _cannot_decide(actor)
    _check_not_own(actor, request)


def _check_not_own(actor: Actor, request: Request) -> None:
    if request.requester_id == actor.id:
        raise Forbidden(f"request {request.id} is your own; another officer has to decide it (two-person rule)",
                        details={"rule": "own_request"})


def lock_for_decision(session: Session, *, actor: Actor, request_id: int, to_state: RequestState) -> Request:
    """Lock a pending request that ``actor`` may move to ``to_state`` (a decision), or raise: Forbidden
    without the capability that decides its kind or for one's own request; Conflict naming its state if it is
    no longer pending or has expired.

    Without any deciding capability the answer is Forbidden before the lookup; holding only some of them, a
    missing request gets the same Forbidden as one of a kind the actor does not decide (neither reveals
    whether the id exists). NotFound only to whoever could see the request if it existed."""
    if not any(actor.can(capability) for capability in DECIDED_WITH.values()):
        raise _cannot_decide(actor)
    try:
        request = get_request(session, request_id, for_update=True)
    except NotFound:
        if not all(actor.can(capability) for capability in DECIDED_WITH.values()):
            raise _cannot_decide(actor) from None
        raise _no_such_request(request_id) from None
    _check_decider(actor, request)
    check_transition(request.id, RequestState(request.state), to_state)
    _check_not_overdue(request)
    return request


def deny(session: Session, *, actor: Actor, request_id: int, reason: str) -> Request:
    """Deny a pending request with a reason the requester reads."""
    if not reason.strip():
        raise InvalidInput("a denial needs a reason the requester can read")
    request = lock_for_decision(session, actor=actor, request_id=request_id, to_state=RequestState.denied)
    return transition(session, request=request, to_state=RequestState.denied, actor=actor, note=reason.strip())


def withdraw(session: Session, *, actor: Actor, request_id: int, note: str | None = None) -> Request:
    """Withdraw your own pending request (404 for a request you may not see, as for a missing one)."""
    request = visible_request(session, actor=actor, request_id=request_id, for_update=True)
    if request.requester_id != actor.id:
        raise Forbidden(f"only the requester can withdraw request {request.id}")
    check_transition(request.id, RequestState(request.state), RequestState.withdrawn)
    _check_not_overdue(request)
    return transition(session, request=request, to_state=RequestState.withdrawn, actor=actor, note=note)


def show(session: Session, *, actor: Actor, request_id: int) -> Request:
    """A request with its events, for its requester or a holder of the capability that decides its kind;
    to anyone else it does not exist (the same 404 as a missing id)."""
    expire_overdue(session)
    return visible_request(session, actor=actor, request_id=request_id)


def list_requests(
    session: Session, *, actor: Actor, state: RequestState | None = None, kind: RequestKind | None = None,
    requester: str | int | None = None, limit: int = 50, offset: int = 0,
) -> tuple[list[Request], int]:
    """Requests newest first. Officers see every request of the kinds they decide; others their own."""
    expire_overdue(session)
    query = select(Request)
    if state is not None:
        query = query.where(Request.state == str(state))
    if kind is not None:
        query = query.where(Request.kind == str(kind))
    triaged = [str(k) for k, cap in DECIDED_WITH.items() if actor.can(cap)]
    if requester is not None and not triaged and not actor.is_named_by(requester):
        # Before the lookup: "no such user" and "someone else" get the same answer.
        raise Forbidden("seeing others' requests needs the capability triage_requests",
                        details={"missing": [str(Capability.triage_requests)]})
    requester_id = permissions.resolve_user(session, requester).id if requester is not None else None
    if requester_id is not None:
        query = query.where(Request.requester_id == requester_id)
    if requester_id != actor.id:
        query = query.where((Request.requester_id == actor.id) | Request.kind.in_(triaged))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    if offset >= total:
        return [], total
    rows = session.scalars(query.order_by(Request.created_at.desc(), Request.id.desc()).limit(limit)
                           .offset(offset).options(lazyload(Request.events)))  # a listing shows no events
    return list(rows), total


# --- kind: access -------------------------------------------------------------------------------------


def target_fingerprint(session: Session, state_dir: Path, *, target_type: str, target_id: int) -> str:
    """The officer's fingerprint of an access request's target as it is now (NotFound if it is gone): the HMAC
    of a tensor's sha256, or of a dataset's members (``fingerprints.dataset_digest``)."""
    if target_type == "tensor":
        return fingerprints.fingerprint(state_dir, target_type="tensor",
                                        sha256=lookup.tensor(session, target_id).sha256)
    dataset = lookup.dataset(session, target_id)
    members = session.execute(select(DatasetMember.role, Tensor.sha256)
                              .join(Tensor, Tensor.id == DatasetMember.tensor_id)
                              .where(DatasetMember.dataset_id == dataset.id)).all()
    return fingerprints.fingerprint(state_dir, target_type="dataset",
                                    sha256=fingerprints.dataset_digest((m.role, m.sha256) for m in members))


def file_access_request(
    session: Session, *, actor: Actor, target_type: str, target_id: int, level: Level, reason: str,
    state_dir: Path | None = None,
) -> Request:
    """Ask for ``compute`` or ``download`` on a tensor or dataset, with a reason.

    Refused with 409 if the requester already has that level (nothing to decide) or already has a pending
    access request on the same target (withdraw it first). With the node's ``state_dir`` (the API always
    gives it), the target's fingerprint is recorded (officers only) so that approval can tell the same data
    from a replacement.
    """
    if level not in ACCESS_LEVELS:
        raise InvalidInput(f"an access request asks for compute or download, not {level}")
    if not reason.strip():
        raise InvalidInput("an access request needs a reason")
    expire_overdue(session)
    decision = permissions.effective_level(session, user_id=actor.id, target_type=target_type,
                                           target_id=target_id)
    if permissions.allows(decision.level, level):
        raise Conflict(
            f"you already have {decision.level} on {target_type} {target_id}, which includes {level} "
            f"({decision.explanation})",
            details={"have": str(decision.level), "rule": decision.rule, "grant_id": decision.grant_id},
        )
    pending = session.scalar(
        select(Request.id).where(Request.kind == str(RequestKind.access), Request.requester_id == actor.id,
                                 Request.state == str(RequestState.pending), Request.target_type == target_type,
                                 Request.target_id == target_id)
    )
    if pending is not None:
        raise Conflict(
            f"you already have a pending access request on {target_type} {target_id} (request {pending}); "
            "withdraw it first to ask again",
            details={"request_id": pending, "state": str(RequestState.pending)},
        )
    payload = {"level": str(level), "level_at_request": str(decision.level),
               "rule_at_request": decision.rule}
    if state_dir is not None:
        payload["fingerprint"] = target_fingerprint(session, state_dir, target_type=target_type,
                                                    target_id=target_id)
    return create_request(session, actor=actor, requester_id=actor.id, kind=RequestKind.access,
                          target_type=target_type, target_id=target_id, payload=payload, reason=reason.strip())


def grant_access(session: Session, *, request: Request, actor: Actor) -> None:
    """Create or raise the requester's own grant on the target (never lowers one; a deny is replaced)."""
    assert request.target_type is not None and request.target_id is not None
    try:
        permissions.check_target(session, target_type=request.target_type, target_id=request.target_id)
    except NotFound as exc:
        raise Conflict(f"{request.target_type} {request.target_id} no longer exists; deny request "
                       f"{request.id} instead", details={"request_id": request.id}) from exc
    permissions.put_grant(
        session, actor=actor, subject_type="user", subject_id=request.requester_id,
        target_type=request.target_type, target_id=request.target_id, level=Level(request.payload["level"]),
        only_raise=True, via_request=request.id,
    )


def stale_access_target(session: Session, *, actor: Actor, request_id: int, state_dir: Path) -> Conflict | None:
    """Before an approval: if ``request_id`` is a pending access request whose target is gone or no longer has
    the fingerprint recorded when it was filed, cancel it (``expired``, with a note naming why) and return the
    Conflict to answer with, once that has committed; None if the approval may go on.

    The decider is checked first (``lock_for_decision``), so nobody learns or changes anything here that they
    could not by deciding. A request filed without a fingerprint (before they were recorded) is only checked
    for its target's existence; ``grant_access`` checks that again."""
    request = lock_for_decision(session, actor=actor, request_id=request_id, to_state=RequestState.approved)
    if request.kind != RequestKind.access or request.target_type is None or request.target_id is None:
        return None
    target = f"{request.target_type} {request.target_id}"
    try:
        current = target_fingerprint(session, state_dir, target_type=request.target_type,
                                     target_id=request.target_id)
    except NotFound:
        why, rule = f"the {target} no longer exists", "target_deleted"
    else:
        recorded = recorded_fingerprint(request)
        if recorded is None or hmac.compare_digest(current, recorded):
            return None
        why = f"the {target} changed since the request was filed (it is not the data asked for)"
        rule = "target_changed"
    transition(session, request=request, to_state=RequestState.expired, actor=actor,
               note=f"cancelled: {why}; ask again if you still need it")
    return Conflict(f"request {request.id} was not approved and is now cancelled: {why}",
                    details={"request_id": request.id, "state": str(RequestState.expired), "rule": rule})


# --- kind: release (the parts that are about requests alone) -------------------------------------------


RELEASED_STATES = (str(RequestState.approved), str(RequestState.auto_approved))


def recorded_fingerprint(request: Request) -> str | None:
    """The fingerprint a release request recorded when it was filed (HMAC under the node's secret; requests
    filed before fingerprints were keyed recorded the plain sha256 under ``sha256``)."""
    payload = request.payload or {}
    value = payload.get("fingerprint") or payload.get("sha256")
    return str(value) if value else None


def release_requests(session: Session, *, user_id: int, target_type: str, target_id: int,
                     states: tuple[str, ...]) -> list[Request]:
    """``user_id``'s release requests for this target in these states, newest first."""
    return list(session.scalars(
        select(Request).where(Request.kind == str(RequestKind.release), Request.requester_id == user_id,
                              Request.target_type == target_type, Request.target_id == target_id,
                              Request.state.in_(states)).order_by(Request.id.desc())))


def released_request(session: Session, *, user_id: int, target_type: str, target_id: int,
                     fingerprints: set[str]) -> Request | None:
    """``user_id``'s approved release of exactly this artifact (one of its current ``fingerprints``), if any."""
    rows = release_requests(session, user_id=user_id, target_type=target_type, target_id=target_id,
                            states=RELEASED_STATES)
    return next((r for r in rows if recorded_fingerprint(r) in fingerprints), None)


OFFICER_ONLY_PAYLOAD = frozenset({"fingerprint", "sha256"})
"""Payload keys a requester does not see: the artifact's fingerprint (even keyed, comparing two of them tells
whether two artifacts are equal, a bit about the data)."""


def payload_for(actor: Actor, request: Request) -> dict[str, Any]:
    """The request's payload as ``actor`` may see it (officers who decide its kind: all of it)."""
    payload = dict(request.payload or {})
    if _may_triage(actor, request.kind):
        return payload
    return {k: v for k, v in payload.items() if k not in OFFICER_ONLY_PAYLOAD}
