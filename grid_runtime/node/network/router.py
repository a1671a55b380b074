"""Network associations of this Node (``manage_infrastructure``) and its statistics (``view_statistics``, or an
associated Network presenting the credential this Node gave it). The router's lifespan runs the catalogue sync."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from functools import partial

from fastapi import APIRouter, Depends, FastAPI, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.errors import Forbidden, Unauthorized, Unavailable
from grid_runtime.core.schemas import Id
from grid_runtime.core.settings import NodeSettings
from grid_runtime.core.tls import UntrustedCertificate, fingerprint
from grid_runtime.node.deps import (
    DB,
    Actor,
    Database,
    Requires,
    current_actor,
    in_thread,
    released_session,
    settings,
)
from grid_runtime.node.network import schemas, service
from grid_runtime.node.network.models import NetworkAssociation
from grid_runtime.node.network.sync import CatalogueSync


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The catalogue sync's thread, started after migrations and stopped before the engine is disposed."""
    database: Database = app.state.database
    sync = CatalogueSync(database.sessions, app.state.settings)
    app.state.catalogue_sync = sync
    sync.start()
    try:
        yield
    finally:
        await run_in_threadpool(sync.stop)


router = APIRouter(tags=["network"], lifespan=lifespan)
ManageInfrastructure = Requires(Capability.manage_infrastructure)
_bearer = HTTPBearer(auto_error=False)


class RequiresOrNetwork(Requires):
    """A user holding the capabilities, or a Network whose association with this Node is approved, presenting the
    credential this Node made for it at join (``gnodepeer_...``). Anything else: 401, or 403 for a user lacking
    the capability."""

    def __call__(self, request: Request, session: DB,  # type: ignore[override]
                 credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Actor | NetworkAssociation:
        if credentials is not None and credentials.credentials.startswith(service.NODE_CREDENTIAL_PREFIX + "_"):
            network = service.network_for_credential(session, credentials.credentials)
            if network is None:
                raise Unauthorized("this Network credential is unknown, or its association is not approved")
            return network
        actor = current_actor(request, session, credentials)
        missing = sorted(self.capabilities - actor.capabilities)
        if missing:
            raise Forbidden(f"this needs the capability {', '.join(missing)}, which your role does not have",
                            details={"missing": missing})
        return actor


def _out(association: NetworkAssociation) -> schemas.AssociationOut:
    out = schemas.AssociationOut.model_validate(association)
    out.network_ca_sha256 = fingerprint(association.network_ca_pem)
    out.node_ca_sha256 = fingerprint(association.node_ca_pem)
    return out


def _sync(request: Request) -> CatalogueSync:
    sync: CatalogueSync = request.app.state.catalogue_sync
    return sync


@router.post("/network/associations", status_code=status.HTTP_201_CREATED)
async def join(body: schemas.JoinIn, request: Request, session: DB, actor: Actor = Depends(ManageInfrastructure),
               node: NodeSettings = Depends(settings)) -> schemas.AssociationOut:
    """Ask a Network to associate this Node (with an invitation: approved at once). The URL must be https and
    public unless the operator allows otherwise (docs/network.md). With ``network_ca_pem`` every call to this
    Network verifies its certificate against exactly those roots; ``node_ca_pem`` is sent to the Network, which
    verifies this Node against it ("Private certificates")."""
    network_ca, node_ca = await run_in_threadpool(partial(service.checked_roots, network_ca_pem=body.network_ca_pem,
                                                          node_ca_pem=body.node_ca_pem))
    url, own = await run_in_threadpool(partial(service.prepare_join, session, network_url=body.network_url,
                                               node_url=body.node_url, settings=node))
    async with released_session(request):  # no transaction while the Network is called
        answer, credential = await run_in_threadpool(partial(
            service.ask_to_join, network_url=url, node_url=own, invitation=body.invitation, settings=node,
            network_ca_pem=network_ca, node_ca_pem=node_ca))
    association = await in_thread(session, lambda: _out(service.record_join(
        session, actor=actor, network_url=url, answer=answer, credential=credential, network_ca_pem=network_ca,
        node_ca_pem=node_ca)))
    _sync(request).wake()
    return association


@router.get("/network/associations")
def list_associations(session: DB, actor: Actor = Depends(ManageInfrastructure)) -> list[schemas.AssociationOut]:
    """This Node's Network associations and their state, as the Network last said."""
    return [_out(a) for a in service.list_associations(session)]


@router.post("/network/associations/{association_id}/sync")
async def sync_now(association_id: Id, request: Request, session: DB,
                   actor: Actor = Depends(ManageInfrastructure)) -> schemas.SyncOut:
    """Ask the Network for the association's state now and, once approved, push the whole catalogue."""
    await run_in_threadpool(service.get, session, association_id)
    async with released_session(request):
        pushed, deleted = await run_in_threadpool(partial(_sync(request).sync_one, association_id, full=True))
    association = await in_thread(session, lambda: _out(service.get(session, association_id)))
    return schemas.SyncOut(association=association, pushed=pushed, deleted=deleted)


@router.delete("/network/associations/{association_id}")
async def leave(association_id: Id, request: Request, session: DB, actor: Actor = Depends(ManageInfrastructure),
                node: NodeSettings = Depends(settings)) -> schemas.AssociationOut:
    """End the association: the Network is told (it removes this Node's entries), and its credential stops
    working here at once, whether or not the Network could be reached."""

    def end() -> tuple[str, str | None, str | None, schemas.AssociationOut]:
        association = service.get(session, association_id)
        url, credential, roots = association.network_url, association.push_credential, association.network_ca_pem
        if association.state != service.ENDED:
            service.mark_ended(session, association=association, actor=actor, by="node")
        return url, credential, roots, _out(association)

    url, credential, roots, ended = await in_thread(session, end)
    if credential:
        # Ended here regardless: the push credential is forgotten and the Network's own is refused from now on.
        with suppress(service.NetworkRefused, Unavailable, UntrustedCertificate):
            await run_in_threadpool(partial(service.call_network, node, "DELETE", url, "/peer/association",
                                            credential=credential, ca_pem=roots))
    return ended


@router.get("/node/statistics")
def statistics(session: DB, reader: object = Depends(RequiresOrNetwork(Capability.view_statistics)),
               node: NodeSettings = Depends(settings)) -> schemas.StatisticsOut:
    """Counts of users, tensors, datasets, requests and jobs by state, and privacy events: for holders of
    ``view_statistics`` and Networks with an approved association, nobody else."""
    return service.statistics(session, settings=node)
