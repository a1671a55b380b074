"""This Node's side of Networks: joining, leaving, what it publishes, and its statistics.

What the catalogue holds (``catalogue``) is what every user of this Node may see of a tensor or dataset without
any grant (the ``search`` level): name, description, tags, shape, dtype, visibility and creation time. Nothing
computed from the values (no sha256, no size: ``tensors.service.VALUE_DERIVED_FIELDS``), no column names, no
declared bounds, no uploader, never the values. Calls to a Network run outside any transaction.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grid_runtime.core.database import utcnow
from grid_runtime.core.errors import Conflict, GridError, InvalidInput, NotFound, Unavailable
from grid_runtime.core.security import hash_token, new_token
from grid_runtime.core.settings import NodeSettings
from grid_runtime.core.tls import UntrustedCertificate, certificate_problem, checked_bundle, fingerprint, verify_for
from grid_runtime.core.urls import check_peer_url, resolves_public
from grid_runtime.node.audit import service as audit
from grid_runtime.node.budget.models import LedgerEntry
from grid_runtime.node.datasets.models import Dataset
from grid_runtime.node.deps import Actor
from grid_runtime.node.jobs.models import Job
from grid_runtime.node.network.models import NetworkAssociation
from grid_runtime.node.network.schemas import StatisticsOut
from grid_runtime.node.requests.models import Request
from grid_runtime.node.tensors.models import Tensor, TensorTag
from grid_runtime.node.users.models import User

PENDING, APPROVED, DENIED, ENDED, EXPIRED = "pending", "approved", "denied", "ended", "expired"
LIVE_STATES = (PENDING, APPROVED)
NODE_CREDENTIAL_PREFIX = "gnodepeer"
API = "/api/v1"


class NetworkRefused(GridError):
    """The Network answered, and refused (its code and message are in ``details``)."""

    code, status = "network_refused", 409


# --- calls to a Network ------------------------------------------------------------------------------------

def check_network_url(url: str, settings: NodeSettings) -> str:
    return check_peer_url(url, field="network_url", allow_insecure=settings.network_allow_insecure,
                          allow_private=settings.network_allow_private,
                          insecure_setting="GRID_NODE_NETWORK_ALLOW_INSECURE",
                          private_setting="GRID_NODE_NETWORK_ALLOW_PRIVATE")


def call_network(settings: NodeSettings, method: str, url: str, path: str, *, credential: str | None = None,
                 body: Any = None, ca_pem: str | None = None) -> Any:
    """One call to a Network: its host resolved again (public only, unless allowed), no redirect followed, its
    certificate verified against ``ca_pem`` only when given (else the public CAs). The decoded JSON;
    ``UntrustedCertificate`` when its certificate is not trusted; ``Unavailable`` when unreachable;
    ``NetworkRefused`` when it refuses (401 keeps its status in ``details.status``)."""
    if not settings.network_allow_private and not resolves_public(url):
        raise Unavailable("the Network's host does not resolve to public addresses only; not called")
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    content = None
    if body is not None:
        content = json.dumps(body, separators=(",", ":")).encode()
        headers["Content-Type"] = "application/json"
    try:
        response = httpx.request(method, url + API + path, content=content, headers=headers,
                                 timeout=settings.network_timeout_seconds, follow_redirects=False,
                                 verify=verify_for(ca_pem))
    except httpx.HTTPError as exc:
        problem = certificate_problem(exc)
        if problem is not None:
            trusted = "the pinned root certificate(s)" if ca_pem else "the public CAs (no network_ca_pem was given)"
            raise UntrustedCertificate(f"the Network's TLS certificate is not trusted: {problem[:200]}; it was "
                                       f"verified against {trusted}", details={"field": "network_ca_pem"}) from None
        raise Unavailable(f"the Network could not be reached: {type(exc).__name__}") from None
    if response.is_redirect:
        raise NetworkRefused("the Network answered with a redirect, which this Node does not follow",
                             details={"status": response.status_code})
    try:
        answer = response.json() if response.content else None
    except ValueError:
        answer = None
    if not response.is_success:
        code = answer.get("code") if isinstance(answer, dict) else None
        message = answer.get("message") if isinstance(answer, dict) else None
        raise NetworkRefused(f"the Network refused: {str(message or response.status_code)[:300]}",
                             details={"status": response.status_code, "code": code})
    return answer


# --- joining and leaving -----------------------------------------------------------------------------------

def checked_roots(*, network_ca_pem: str | None, node_ca_pem: str | None) -> tuple[str | None, str | None]:
    """Both PEM bundles checked (422 naming the field) and made canonical, before anything is sent."""
    return checked_bundle(network_ca_pem, "network_ca_pem"), checked_bundle(node_ca_pem, "node_ca_pem")


def prepare_join(session: Session, *, network_url: str, node_url: str | None,
                 settings: NodeSettings) -> tuple[str, str]:
    """The checked Network URL and this Node's URL, before anything is sent."""
    url = check_network_url(network_url, settings)
    own = node_url or settings.public_url
    if not own:
        raise InvalidInput("the Network needs this Node's URL: pass node_url, or set GRID_NODE_PUBLIC_URL",
                           details={"field": "node_url"})
    live = session.scalar(select(NetworkAssociation.id).where(NetworkAssociation.network_url == url,
                                                              NetworkAssociation.state.in_(LIVE_STATES)))
    if live is not None:
        raise Conflict(f"this Node is already associated with {url} (association {live}), or waiting")
    return url, own.strip().rstrip("/")


def ask_to_join(*, network_url: str, node_url: str, invitation: str | None, settings: NodeSettings,
                network_ca_pem: str | None = None, node_ca_pem: str | None = None) -> tuple[dict[str, Any], str]:
    """Send the join request (no transaction held), verifying the Network against ``network_ca_pem`` when given.
    The Network's answer, and the node credential in clear (to be forgotten once its hash is stored)."""
    credential, _ = new_token(NODE_CREDENTIAL_PREFIX)
    body = {"node_name": settings.name, "node_url": node_url, "node_credential": credential}
    if invitation:
        body["invitation"] = invitation
    if node_ca_pem:
        body["node_ca_pem"] = node_ca_pem
    answer = call_network(settings, "POST", network_url, "/associations", body=body, ca_pem=network_ca_pem)
    if not isinstance(answer, dict) or not {"association_id", "state", "push_credential"} <= set(answer):
        raise NetworkRefused("the Network's answer to the join request is not one", details={"status": 201})
    return answer, credential


def record_join(session: Session, *, actor: Actor, network_url: str, answer: dict[str, Any],
                credential: str, network_ca_pem: str | None = None,
                node_ca_pem: str | None = None) -> NetworkAssociation:
    association = NetworkAssociation(
        network_url=network_url, network_name=str(answer.get("network_name", ""))[:64],
        remote_id=int(answer["association_id"]), state=str(answer["state"])[:16],
        push_credential=str(answer["push_credential"])[:128], accept_hash=hash_token(credential),
        created_by=actor.id, network_ca_pem=network_ca_pem, node_ca_pem=node_ca_pem)
    session.add(association)
    session.flush()
    audit.record(session, actor=actor, action="network.joined", target_type="network_association",
                 target_id=association.id, details={"network_url": network_url, "state": association.state,
                                                    "network_ca_sha256": fingerprint(network_ca_pem),
                                                    "node_ca_sha256": fingerprint(node_ca_pem)})
    return association


def get(session: Session, association_id: int) -> NetworkAssociation:
    association = session.get(NetworkAssociation, association_id)
    if association is None:
        raise NotFound(f"no Network association {association_id}")
    return association


def list_associations(session: Session) -> list[NetworkAssociation]:
    return list(session.scalars(select(NetworkAssociation).order_by(NetworkAssociation.id)))


def mark_ended(session: Session, *, association: NetworkAssociation, actor: Actor | None, by: str) -> None:
    """Ended: the Network's credential stops working here, and the push credential is forgotten."""
    association.state, association.ended_at, association.push_credential = ENDED, utcnow(), None
    audit.record(session, actor=actor, action="network.left", target_type="network_association",
                 target_id=association.id, details={"network_url": association.network_url, "by": by})


# --- what is published -------------------------------------------------------------------------------------

def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def catalogue(session: Session) -> dict[tuple[str, int], dict[str, Any]]:
    """Every tensor and dataset as a catalogue entry (see the module: what a user without grants sees)."""
    tags: dict[int, list[str]] = {}
    for tensor_id, tag in session.execute(select(TensorTag.tensor_id, TensorTag.tag)):
        tags.setdefault(tensor_id, []).append(tag)
    entries: dict[tuple[str, int], dict[str, Any]] = {}
    tensors = select(Tensor.id, Tensor.name, Tensor.description, Tensor.shape, Tensor.dtype, Tensor.visibility,
                     Tensor.created_at)
    for tid, name, description, shape, dtype, visibility, created_at in session.execute(tensors):
        entries[("tensor", tid)] = {"kind": "tensor", "id": tid, "name": name, "description": description,
                                    "tags": sorted(tags.get(tid, [])), "shape": list(shape), "dtype": dtype,
                                    "visibility": visibility, "created_at": _iso(created_at)}
    datasets = select(Dataset.id, Dataset.name, Dataset.description, Dataset.tags, Dataset.visibility,
                      Dataset.created_at)
    for did, name, description, dataset_tags, visibility, created_at in session.execute(datasets):
        entries[("dataset", did)] = {"kind": "dataset", "id": did, "name": name, "description": description,
                                     "tags": sorted(set(dataset_tags or [])), "shape": None, "dtype": None,
                                     "visibility": visibility, "created_at": _iso(created_at)}
    return entries


def digest(entry: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()


# --- statistics --------------------------------------------------------------------------------------------

def statistics(session: Session, *, settings: NodeSettings) -> StatisticsOut:
    def count(model: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)

    requests = dict(session.execute(select(Request.state, func.count()).group_by(Request.state)).all())
    jobs = dict(session.execute(select(Job.state, func.count()).group_by(Job.state)).all())
    private, epsilon = session.execute(select(func.count(), func.coalesce(func.sum(LedgerEntry.epsilon), 0.0))
                                       .where(LedgerEntry.non_private.is_(False))).one()
    non_private = session.scalar(select(func.count()).select_from(LedgerEntry)
                                 .where(LedgerEntry.non_private.is_(True))) or 0
    return StatisticsOut(node=settings.name, users=count(User), tensors=count(Tensor), datasets=count(Dataset),
                         requests={str(k): int(v) for k, v in requests.items()},
                         jobs={str(k): int(v) for k, v in jobs.items()}, privacy_events=int(private),
                         non_private_events=int(non_private), epsilon_spent_simple_sum=float(epsilon or 0.0),
                         at=utcnow())


def network_for_credential(session: Session, token: str) -> NetworkAssociation | None:
    """The approved association whose Network presents ``token`` (the node credential), or None."""
    return session.scalar(select(NetworkAssociation).where(NetworkAssociation.accept_hash == hash_token(token),
                                                           NetworkAssociation.state == APPROVED))
