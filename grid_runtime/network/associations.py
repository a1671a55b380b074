"""Association requests between Nodes and this Network, invitations, and ending an association.

The protocol (docs/network.md):

1. A Node's administrator joins: the Node makes a secret, the *node credential*, that this Network will present to
   read the Node's statistics (the Node keeps only its hash), and sends it with its name and URL
   (``POST /associations``, public). The Network makes the *push credential* the Node will present to push its
   catalogue, keeps only its hash and returns it once. The association is ``pending``: the Node may ask its
   state, and may not push.
2. A Network administrator (``manage_nodes``) approves or denies. A join that presents a valid invitation (a
   one-time code an administrator made) is approved at once.
3. Either side may end it: the Network (``DELETE /associations/{id}``) or the Node (``DELETE /peer/association``
   with its push credential). Ending removes the Node's catalogue entries and forgets the node credential; the
   push credential stops working.

The join route is public, so it is bounded (docs/network.md, "Abuse bounds"): at most ``MAX_PENDING`` requests
wait in all; from one client address (``core.web.address_key``: an IPv6 client's /64) at most
``join_max_pending_per_address`` wait and ``join_max_per_hour`` are made in any hour; all refused with 429 and
``Retry-After``. A join with a valid invitation counts against none of these. A request still pending after
``join_request_ttl_seconds`` becomes ``expired`` (kept, with an audit event; the node credential is forgotten),
so the bounds free themselves.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from grid_runtime.core.database import utcnow
from grid_runtime.core.errors import Conflict, Forbidden, NotFound, RateLimited
from grid_runtime.core.security import hash_token, new_token
from grid_runtime.core.settings import NetworkSettings
from grid_runtime.core.tls import checked_bundle, fingerprint
from grid_runtime.core.urls import check_peer_url
from grid_runtime.core.web import address_key
from grid_runtime.network import audit
from grid_runtime.network.deps import Actor
from grid_runtime.network.models import (
    APPROVED,
    DENIED,
    ENDED,
    EXPIRED,
    PENDING,
    Association,
    CatalogueEntry,
    Invitation,
)

MAX_PENDING = 100
"""Join requests waiting for a decision, at most: a public route must not let anyone fill the table."""
RATE_WINDOW = timedelta(hours=1)
"""The window ``join_max_per_hour`` counts in (sliding: the requests of the last hour)."""
PENDING_RETRY_AFTER = 3600
"""Retry-After when pending requests fill a bound: a decision may free one at any time, so try again within the
hour (sooner than the oldest one's expiry when that comes first)."""
JOIN_LOCK = 0x67726A6E  # "grjn": the PostgreSQL advisory lock that serializes joins (counts, then inserts)


def check_node_url(url: str, settings: NetworkSettings) -> str:
    return check_peer_url(url, field="node_url", allow_insecure=settings.allow_insecure_nodes,
                          allow_private=settings.allow_private_nodes,
                          insecure_setting="GRID_NETWORK_ALLOW_INSECURE_NODES",
                          private_setting="GRID_NETWORK_ALLOW_PRIVATE_NODES")


def _overdue(settings: NetworkSettings, now: datetime) -> ColumnElement[bool]:
    return (Association.state == PENDING) & (
        Association.requested_at <= now - timedelta(seconds=settings.join_request_ttl_seconds))


def any_overdue(session: Session, *, settings: NetworkSettings) -> bool:
    """Whether a pending request has outlived ``join_request_ttl_seconds`` (one cheap query, in any session)."""
    return session.scalar(select(Association.id).where(_overdue(settings, utcnow())).limit(1)) is not None


def expire_overdue(session: Session, *, settings: NetworkSettings) -> list[int]:
    """Move every request pending longer than ``join_request_ttl_seconds`` to ``expired``; their ids.

    Kept, not deleted: the row says when it was asked and that nobody decided, and each expiry is an audit event
    (``association.expired``). The node credential is forgotten, as on a denial; the Node learns the state when it
    next asks (``GET /peer/association``), and may join again."""
    now = utcnow()
    if not any_overdue(session, settings=settings):
        return []
    overdue = session.scalars(select(Association).where(_overdue(settings, now)).order_by(Association.id)
                              .with_for_update()).all()
    days = settings.join_request_ttl_seconds / 86400
    for association in overdue:
        association.state, association.decided_at, association.node_credential = EXPIRED, now, None
        association.note = f"expired: no decision within {days:g} days"
        audit.record(session, actor_id=None, action="association.expired", target_type="association",
                     target_id=association.id, details={"node_name": association.node_name,
                                                        "requested_at": association.requested_at.isoformat(),
                                                        "join_request_ttl_seconds": settings.join_request_ttl_seconds},
                     client_address=None)
    return [a.id for a in overdue]


def _seconds_until(moment: datetime) -> int:
    return max(1, math.ceil((moment - utcnow()).total_seconds()))


def _serialize_joins(session: Session) -> None:
    """On PostgreSQL, one join at a time from here to the commit, so two joins never both pass a count (SQLite
    writers are serialized already)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(JOIN_LOCK)))


def check_join_bounds(session: Session, *, key: str, settings: NetworkSettings) -> None:
    """Refuse (429, ``Retry-After``) a join without invitation from ``key`` past a bound: its hourly rate, its
    pending requests, the Network's pending requests."""
    now = utcnow()
    ttl = timedelta(seconds=settings.join_request_ttl_seconds)
    recent = session.scalars(select(Association.requested_at)
                             .where(Association.requester_address == key,
                                    Association.requested_at > now - RATE_WINDOW)
                             .order_by(Association.requested_at)).all()
    if len(recent) >= settings.join_max_per_hour:
        wait = _seconds_until(recent[-settings.join_max_per_hour] + RATE_WINDOW)
        raise RateLimited(f"too many join requests from your address: at most {settings.join_max_per_hour} an "
                          f"hour; try again in {wait} seconds, or ask this Network's administrators for an "
                          "invitation", details={"retry_after": wait, "quota": "join_max_per_hour",
                                                 "limit": settings.join_max_per_hour})
    mine = session.scalars(select(Association.requested_at)
                           .where(Association.requester_address == key, Association.state == PENDING)
                           .order_by(Association.requested_at)).all()
    if len(mine) >= settings.join_max_pending_per_address:
        wait = min(PENDING_RETRY_AFTER, _seconds_until(mine[0] + ttl))
        raise RateLimited(f"{len(mine)} join requests from your address are waiting for a decision (at most "
                          f"{settings.join_max_pending_per_address}); one frees when this Network's administrators "
                          "decide it or it expires, or ask them for an invitation",
                          details={"retry_after": wait, "quota": "join_max_pending_per_address",
                                   "limit": settings.join_max_pending_per_address})
    waiting = session.scalar(select(func.count()).select_from(Association).where(Association.state == PENDING)) or 0
    if waiting >= MAX_PENDING:
        oldest = session.scalar(select(func.min(Association.requested_at)).where(Association.state == PENDING))
        wait = min(PENDING_RETRY_AFTER, _seconds_until(oldest + ttl)) if oldest else PENDING_RETRY_AFTER
        raise RateLimited("this Network has too many join requests waiting; try again later, or ask its "
                          "administrators for an invitation",
                          details={"retry_after": wait, "quota": "pending", "limit": MAX_PENDING})


def request_join(session: Session, *, node_name: str, node_url: str, node_credential: str,
                 invitation: str | None, settings: NetworkSettings, client_address: str,
                 node_ca_pem: str | None = None) -> tuple[Association, str]:
    """A Node asks to join; returns the association and the push credential (shown once). ``node_ca_pem`` (checked:
    422 naming it) pins the roots the Node's certificate must chain to when its statistics are read.

    Without a valid invitation the join counts against its client address and the Network's bounds (429)."""
    url = check_node_url(node_url, settings)
    roots = checked_bundle(node_ca_pem, "node_ca_pem")
    _serialize_joins(session)
    expire_overdue(session, settings=settings)
    live = select(Association.id).where(Association.state.in_((PENDING, APPROVED)),
                                        (Association.node_name == node_name) | (Association.node_url == url))
    if session.scalar(live.limit(1)) is not None:
        raise Conflict(f"a Node named {node_name!r} or at {url} is already associated or waiting; an administrator "
                       "of this Network must end that association first")
    invited: Invitation | None = None
    key: str | None = None
    if invitation is not None:
        invited = session.scalar(select(Invitation).where(Invitation.code_hash == hash_token(invitation)))
        if invited is None or invited.used_at is not None or invited.expires_at <= utcnow():
            raise Forbidden("this invitation is unknown, used or expired")
    else:
        key = address_key(client_address)
        check_join_bounds(session, key=key, settings=settings)
    secret, digest = new_token("gnpush")
    now = utcnow()
    association = Association(node_name=node_name, node_url=url, state=APPROVED if invited else PENDING,
                              push_hash=digest, node_credential=node_credential, requested_at=now,
                              invitation_id=invited.id if invited else None, decided_at=now if invited else None,
                              note="invited" if invited else "", node_ca_pem=roots, requester_address=key)
    session.add(association)
    if invited is not None:
        invited.used_at = now
    session.flush()
    audit.record(session, actor_id=None, action="association.requested", target_type="association",
                 target_id=association.id, details={"node_name": node_name, "node_url": url,
                                                    "invited": invited is not None,
                                                    "node_ca_sha256": fingerprint(roots)},
                 client_address=client_address)
    return association, secret


def list_associations(session: Session, *, state: str | None = None) -> list[Association]:
    query = select(Association).order_by(Association.id)
    if state is not None:
        query = query.where(Association.state == state)
    return list(session.scalars(query))


def _get(session: Session, association_id: int) -> Association:
    association = session.get(Association, association_id)
    if association is None:
        raise NotFound(f"no association {association_id}")
    return association


def decide(session: Session, *, actor: Actor, association_id: int, approve: bool, note: str,
           settings: NetworkSettings) -> Association:
    expire_overdue(session, settings=settings)  # a request past its time is expired, not decided
    association = _get(session, association_id)
    if association.state != PENDING:
        raise Conflict(f"association {association_id} is {association.state}, not pending")
    association.state = APPROVED if approve else DENIED
    association.decided_at, association.decided_by, association.note = utcnow(), actor.id, note
    if not approve:
        association.node_credential = None
    audit.record(session, actor_id=actor.id, action=f"association.{'approved' if approve else 'denied'}",
                 target_type="association", target_id=association.id,
                 details={"node_name": association.node_name, "note": note}, client_address=actor.client_address)
    return association


def end(session: Session, *, association: Association, actor_id: int | None, by: str,
        client_address: str | None) -> int:
    """End an association: its catalogue entries are removed, the node credential forgotten; how many entries."""
    removed = session.execute(delete(CatalogueEntry).where(CatalogueEntry.association_id == association.id))
    association.state, association.node_credential = ENDED, None
    association.decided_at = utcnow()
    count = int(getattr(removed, "rowcount", 0) or 0)
    audit.record(session, actor_id=actor_id, action="association.ended", target_type="association",
                 target_id=association.id, details={"node_name": association.node_name, "by": by,
                                                    "entries_removed": count},
                 client_address=client_address)
    return count


def end_by_administrator(session: Session, *, actor: Actor, association_id: int) -> Association:
    association = _get(session, association_id)
    if association.state == ENDED:
        raise Conflict(f"association {association_id} has already ended")
    end(session, association=association, actor_id=actor.id, by="network", client_address=actor.client_address)
    return association


def create_invitation(session: Session, *, actor: Actor, note: str,
                      settings: NetworkSettings) -> tuple[Invitation, str]:
    code, digest = new_token("gninvite")
    invitation = Invitation(code_hash=digest, note=note, created_by=actor.id,
                            expires_at=utcnow() + timedelta(seconds=settings.invitation_ttl_seconds))
    session.add(invitation)
    session.flush()
    audit.record(session, actor_id=actor.id, action="invitation.created", target_type="invitation",
                 target_id=invitation.id, details={"note": note}, client_address=actor.client_address)
    return invitation, code
