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
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from grid_runtime.core.database import utcnow
from grid_runtime.core.errors import Conflict, Forbidden, NotFound, RateLimited
from grid_runtime.core.security import hash_token, new_token
from grid_runtime.core.settings import NetworkSettings
from grid_runtime.core.tls import checked_bundle, fingerprint
from grid_runtime.core.urls import check_peer_url
from grid_runtime.network import audit
from grid_runtime.network.deps import Actor
from grid_runtime.network.models import APPROVED, DENIED, ENDED, PENDING, Association, CatalogueEntry, Invitation

MAX_PENDING = 100
"""Join requests waiting for a decision, at most: a public route must not let anyone fill the table."""


def check_node_url(url: str, settings: NetworkSettings) -> str:
    return check_peer_url(url, field="node_url", allow_insecure=settings.allow_insecure_nodes,
                          allow_private=settings.allow_private_nodes,
                          insecure_setting="GRID_NETWORK_ALLOW_INSECURE_NODES",
                          private_setting="GRID_NETWORK_ALLOW_PRIVATE_NODES")


def request_join(session: Session, *, node_name: str, node_url: str, node_credential: str,
                 invitation: str | None, settings: NetworkSettings, client_address: str,
                 node_ca_pem: str | None = None) -> tuple[Association, str]:
    """A Node asks to join; returns the association and the push credential (shown once). ``node_ca_pem`` (checked:
    422 naming it) pins the roots the Node's certificate must chain to when its statistics are read."""
    url = check_node_url(node_url, settings)
    roots = checked_bundle(node_ca_pem, "node_ca_pem")
    live = select(Association.id).where(Association.state.in_((PENDING, APPROVED)),
                                        (Association.node_name == node_name) | (Association.node_url == url))
    if session.scalar(live.limit(1)) is not None:
        raise Conflict(f"a Node named {node_name!r} or at {url} is already associated or waiting; an administrator "
                       "of this Network must end that association first")
    invited: Invitation | None = None
    if invitation is not None:
        invited = session.scalar(select(Invitation).where(Invitation.code_hash == hash_token(invitation)))
        if invited is None or invited.used_at is not None or invited.expires_at <= utcnow():
            raise Forbidden("this invitation is unknown, used or expired")
    elif (session.scalar(select(func.count()).select_from(Association)
                         .where(Association.state == PENDING)) or 0) >= MAX_PENDING:
        raise RateLimited("this Network has too many join requests waiting; try again later",
                          details={"retry_after": 3600})
    secret, digest = new_token("gnpush")
    now = utcnow()
    association = Association(node_name=node_name, node_url=url, state=APPROVED if invited else PENDING,
                              push_hash=digest, node_credential=node_credential, requested_at=now,
                              invitation_id=invited.id if invited else None, decided_at=now if invited else None,
                              note="invited" if invited else "", node_ca_pem=roots)
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


def decide(session: Session, *, actor: Actor, association_id: int, approve: bool, note: str) -> Association:
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
