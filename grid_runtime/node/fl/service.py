"""Model-centric federated learning (docs/fl.md): hosting processes, client tokens, cycles and aggregation.

A cycle's life: open → a client joins (at most ``clients_per_cycle``), downloads the checkpoint, trains, reports
its update once → the update is checked against the model's layout and kept, in one of two ways (the cycle's
**mode**, fixed by its first report, ``cycle_mode``): *fold*, added to the cycle's running sum on the Node
(``compute.fedavg.Accumulator``, one file per cycle under ``state_dir/fl/``); or *store*, written to the object
store (``fl/updates/<process>/<cycle>/<client>.safetensors``) before its report's row commits → when
``min_reports`` have arrived, or the cycle's time is up with at least one report, the cycle is averaged: a folded
one by ``settle`` on the Node; a stored one first by a Worker, or by the Node when none is alive
(``pending_aggregation``, then ``aggregation.aggregate`` outside any transaction), and ``settle`` records the new
checkpoint. ``settle`` opens the next cycle; time up with no report expires the cycle (the next starts from the
same checkpoint). After ``cycles`` aggregations the process is completed. A closed cycle's running sum and stored
updates are removed once its closing has committed (``discard_cycle``).

A client learns its own place in the current cycle, the plan and the checkpoint, nothing about other clients
(their number, examples or losses). The process's managers see per-cycle figures.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from grid_runtime.compute.contracts import MAX_INITIAL_WEIGHT
from grid_runtime.core.database import utcnow
from grid_runtime.core.errors import AlreadyExists, Conflict, Forbidden, InvalidInput, NotFound
from grid_runtime.core.lazy import LazyModule
from grid_runtime.core.schemas import as_id
from grid_runtime.core.security import hash_token, new_token
from grid_runtime.core.settings import NodeSettings
from grid_runtime.core.storage import ObjectStore
from grid_runtime.node.audit import service as audit
from grid_runtime.node.audit.models import AuditEvent
from grid_runtime.node.deps import Actor
from grid_runtime.node.fl import schemas
from grid_runtime.node.fl.models import FLAssignment, FLCheckpoint, FLClientToken, FLCycle, FLProcess

if TYPE_CHECKING:
    from grid_runtime.compute import fedavg
    from grid_runtime.node.fl.aggregation import Aggregated
else:
    fedavg = LazyModule("grid_runtime.compute.fedavg")  # numpy: off the Node's start path, loaded by the first use

CLIENT_TOKEN_PREFIX = "gflclient"  # noqa: S105  (a prefix, not a secret)
CHECKPOINT_PREFIX = "fl/checkpoints/"
ACCUMULATOR_DIR = "fl"
UPDATES_PREFIX = "fl/updates/"
"""Where a stored cycle's updates are kept until it closes (never served by any route)."""
FOLD, STORE = "fold", "store"
AGGREGATED_ACTION = "fl.cycle.aggregated"
MAX_UPDATE_VALUE = MAX_INITIAL_WEIGHT
"""An update's values must satisfy |Δ| <= this, as initial weights do: the average stays finite as float32."""
RUNNING, COMPLETED, STOPPED = "running", "completed", "stopped"
OPEN, AGGREGATED, EXPIRED, CANCELLED = "open", "aggregated", "expired", "cancelled"


# ---- hosting a process ----------------------------------------------------------------------------------


@dataclass
class PreparedModel:
    """The checked plan: the model's layout and its first checkpoint (safetensors bytes)."""

    layout: fedavg.Layout
    checkpoint: bytes


def prepare_model(spec: dict[str, Any], encoded_weights: str | None) -> PreparedModel:
    """Build the module the spec describes with the Workers' builder (no user code runs) and take its parameters:
    the initial weights given (checked against the spec), or fresh ones from a secure seed. Outside any
    transaction: it imports torch and builds the module."""
    from grid_runtime.compute import builder
    from grid_runtime.compute.spec import SpecError, parse_spec

    try:
        model_spec = parse_spec(spec)
    except SpecError as exc:
        raise InvalidInput(f"the spec is not valid: {exc}", details={"field": "spec"}) from None
    weights = None
    if encoded_weights is not None:
        try:
            weights = base64.b64decode(encoded_weights, validate=True)
        except binascii.Error:
            raise InvalidInput("initial_weights is not base64", details={"field": "initial_weights"}) from None
    try:
        module = builder.build_module(model_spec, weights)
    except SpecError as exc:
        raise InvalidInput(f"initial_weights do not fit the spec: {exc}",
                           details={"field": "initial_weights"}) from None
    layout = fedavg.Layout(tuple((name, tuple(tensor.shape)) for name, tensor in module.state_dict().items()))
    if layout.size == 0:
        raise InvalidInput("the model has no parameters to train", details={"field": "spec"})
    return PreparedModel(layout=layout, checkpoint=builder.weights_bytes(module))


def process_epsilon(server: schemas.ServerConfigIn, delta: float) -> float | None:
    """The client-level ε of the whole process: ``cycles`` Gaussian mechanisms of noise multiplier σ composed
    (no amplification by sampling is claimed: clients are not sampled at random), at ``delta``."""
    if server.dp is None:
        return None
    import dp_accounting

    from grid_runtime.privacy import epsilon, gaussian_event

    event = dp_accounting.SelfComposedDpEvent(gaussian_event(noise_multiplier=server.dp.noise_multiplier),
                                              server.cycles)
    return float(epsilon(event, delta))


def check_name_free(session: Session, name: str) -> None:
    if session.scalar(select(FLProcess.id).where(FLProcess.name == name)) is not None:
        raise AlreadyExists(f"a process named {name!r} exists already", details={"field": "name"})


def store_checkpoint(store: ObjectStore, data: bytes) -> tuple[str, str, int]:
    """Put checkpoint bytes in the object store under a new key: (key, sha256, size)."""
    stored = store.put_stream(f"{CHECKPOINT_PREFIX}{uuid.uuid4().hex}.safetensors", io.BytesIO(data))
    return stored.key, stored.sha256, stored.size


def create_process(session: Session, *, actor: Actor, body: schemas.ProcessCreateIn, prepared: PreparedModel,
                   checkpoint: tuple[str, str, int], settings: NodeSettings, now: datetime | None = None) -> FLProcess:
    """The process row, its checkpoint 0 (already in the object store) and its first cycle, open; audited."""
    check_name_free(session, body.name)
    now = now or utcnow()
    delta = settings.delta if body.server.dp is not None else None
    process = FLProcess(name=body.name, owner_id=actor.id, spec=body.spec, parameters=prepared.layout.to_json(),
                        client_config=body.client.model_dump(), server_config=body.server.model_dump(),
                        dp=body.server.dp.model_dump() if body.server.dp else None,
                        epsilon=process_epsilon(body.server, settings.delta), delta=delta, state=RUNNING,
                        cycles_done=0, created_at=now)
    session.add(process)
    session.flush()
    key, sha256, size = checkpoint
    session.add(FLCheckpoint(process_id=process.id, number=0, object_key=key, sha256=sha256, size=size,
                             created_at=now))
    _open_cycle(session, process, number=1, now=now)
    session.flush()
    audit.record(session, actor=actor, action="fl.process.created", target_type="fl_process", target_id=process.id,
                 details={"name": process.name, "parameters": prepared.layout.size, "dp": process.dp,
                          "epsilon": process.epsilon})
    return process


def _open_cycle(session: Session, process: FLProcess, *, number: int, now: datetime) -> FLCycle:
    seconds = float(process.server_config["cycle_seconds"])
    cycle = FLCycle(process_id=process.id, number=number, state=OPEN, opened_at=now,
                    deadline=now + timedelta(seconds=seconds))
    session.add(cycle)
    return cycle


# ---- managers' views ----------------------------------------------------------------------------------------


def get_process(session: Session, ref: str | int, *, for_update: bool = False) -> FLProcess:
    row_id = as_id(ref)
    query = select(FLProcess).where(FLProcess.id == row_id if row_id is not None else FLProcess.name == str(ref))
    if for_update:
        query = query.with_for_update()
    process = session.scalar(query)
    if process is None:
        raise NotFound(f"no FL process {ref!r}")
    return process


def owned_process(session: Session, ref: str | int, actor: Actor) -> FLProcess:
    """A process the actor hosts (only its host manages tokens, stops it or downloads its checkpoints)."""
    process = get_process(session, ref)
    if process.owner_id != actor.id:
        raise Forbidden("only the user who hosts this process may do this", details={"owner_id": process.owner_id})
    return process


def list_processes(session: Session) -> list[FLProcess]:
    return list(session.scalars(select(FLProcess).order_by(FLProcess.id)))


def process_out(process: FLProcess) -> schemas.ProcessOut:
    return schemas.ProcessOut(
        id=process.id, name=process.name, owner_id=process.owner_id, state=process.state,  # type: ignore[arg-type]
        spec=process.spec, client_config=process.client_config, server_config=process.server_config,
        parameter_count=fedavg.Layout.from_json(process.parameters).size, cycles_done=process.cycles_done,
        epsilon=process.epsilon, delta=process.delta, created_at=process.created_at, ended_at=process.ended_at)


def cycle_out(cycle: FLCycle, aggregated_on: str | None = None) -> schemas.CycleOut:
    seconds = (cycle.closed_at - cycle.opened_at).total_seconds() if cycle.closed_at else None
    mean = cycle.loss_sum / cycle.loss_reports if cycle.loss_reports else None
    return schemas.CycleOut(number=cycle.number, state=cycle.state, opened_at=cycle.opened_at,
                            deadline=cycle.deadline, closed_at=cycle.closed_at, joined=cycle.joined,
                            reports=cycle.reports, examples=cycle.examples, mean_loss=mean, seconds=seconds,
                            aggregated_on=aggregated_on)  # type: ignore[arg-type]


def aggregated_on(session: Session, process: FLProcess) -> dict[int, str]:
    """Cycle number -> where its average was made (``node`` or ``worker``), from the audit log's records."""
    events = session.scalars(select(AuditEvent.details).where(
        AuditEvent.action == AGGREGATED_ACTION, AuditEvent.target_type == "fl_process",
        AuditEvent.target_id == str(process.id)))
    return {int(d["cycle"]): str(d["on"]) for d in events if isinstance(d, dict) and "cycle" in d and "on" in d}


def process_detail(session: Session, process: FLProcess) -> schemas.ProcessDetailOut:
    from grid_runtime.compute.spec import layer_table  # off the Node's start path (tests/test_node_startup.py)

    cycles = session.scalars(select(FLCycle).where(FLCycle.process_id == process.id).order_by(FLCycle.number))
    where = aggregated_on(session, process)
    return schemas.ProcessDetailOut(**process_out(process).model_dump(),
                                    cycles=[cycle_out(c, where.get(c.number)) for c in cycles],
                                    layers=layer_table(process.spec))


def list_checkpoints(session: Session, process: FLProcess) -> list[FLCheckpoint]:
    return list(session.scalars(select(FLCheckpoint).where(FLCheckpoint.process_id == process.id)
                                .order_by(FLCheckpoint.number)))


def get_checkpoint(session: Session, process: FLProcess, number: int | None = None) -> FLCheckpoint:
    """Checkpoint ``number``, or the latest."""
    query = select(FLCheckpoint).where(FLCheckpoint.process_id == process.id)
    query = (query.where(FLCheckpoint.number == number) if number is not None
             else query.order_by(FLCheckpoint.number.desc()).limit(1))
    checkpoint = session.scalar(query)
    if checkpoint is None:
        raise NotFound(f"process {process.name!r} has no checkpoint {number}")
    return checkpoint


def stop_process(session: Session, *, actor: Actor, process: FLProcess,
                 settings: NodeSettings) -> tuple[FLProcess, ClosedCycle | None]:
    """End a running process: its open cycle is cancelled; clients are refused. Returns the process and the
    cancelled cycle, whose running sum and stored updates the caller discards once this has committed."""
    if process.state != RUNNING:
        raise Conflict(f"process {process.name!r} is {process.state} already", details={"state": process.state})
    now = utcnow()
    cycle = open_cycle(session, process, for_update=True)
    finished = None
    if cycle is not None:
        cycle.state, cycle.closed_at = CANCELLED, now
        finished = closed_cycle(settings, cycle)
    process.state, process.ended_at = STOPPED, now
    audit.record(session, actor=actor, action="fl.process.stopped", target_type="fl_process", target_id=process.id)
    return process, finished


# ---- client tokens ------------------------------------------------------------------------------------------


def issue_client_token(session: Session, *, actor: Actor, process: FLProcess, name: str) -> tuple[FLClientToken, str]:
    token, digest = new_token(CLIENT_TOKEN_PREFIX)
    row = FLClientToken(process_id=process.id, name=name, token_hash=digest, created_by=actor.id)
    session.add(row)
    session.flush()
    audit.record(session, actor=actor, action="fl.client_token.issued", target_type="fl_process",
                 target_id=process.id, details={"token_id": row.id, "name": name})
    return row, token


def list_client_tokens(session: Session, process: FLProcess) -> list[FLClientToken]:
    return list(session.scalars(select(FLClientToken).where(FLClientToken.process_id == process.id)
                                .order_by(FLClientToken.id)))


def revoke_client_token(session: Session, *, actor: Actor, process: FLProcess, token_id: int) -> FLClientToken:
    row = session.scalar(select(FLClientToken).where(FLClientToken.id == token_id,
                                                     FLClientToken.process_id == process.id))
    if row is None:
        raise NotFound(f"process {process.name!r} has no client token {token_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(session, actor=actor, action="fl.client_token.revoked", target_type="fl_process",
                     target_id=process.id, details={"token_id": row.id})
    return row


def client_for_token(session: Session, token: str) -> FLClientToken | None:
    """The unrevoked client token with this secret, or None."""
    row = session.scalar(select(FLClientToken).where(FLClientToken.token_hash == hash_token(token)))
    return row if row is not None and row.revoked_at is None else None


# ---- cycles -------------------------------------------------------------------------------------------------


def open_cycle(session: Session, process: FLProcess, *, for_update: bool = False) -> FLCycle | None:
    query = select(FLCycle).where(FLCycle.process_id == process.id, FLCycle.state == OPEN)
    if for_update:
        query = query.with_for_update()
    return session.scalar(query)


def accumulator_path(settings: NodeSettings, cycle: FLCycle) -> Path:
    return settings.state_dir / ACCUMULATOR_DIR / f"cycle-{cycle.id}.sum"


_OPEN_SUMS: dict[Path, fedavg.Accumulator] = {}
"""Running sums kept mapped between reports (mapping 8 bytes a parameter again for every report costs more
than the addition). Used under the process's lock only; closed when their cycle ends."""


def accumulator(path: Path, size: int) -> fedavg.Accumulator:
    """The cycle's running sum, mapped once and kept open until ``discard_accumulator``."""
    found = _OPEN_SUMS.get(path)
    if found is None or found.size != size:
        found = _OPEN_SUMS[path] = fedavg.Accumulator(path, size)
    return found


def discard_accumulator(path: Path) -> None:
    """Close and remove a cycle's running sum."""
    found = _OPEN_SUMS.pop(path, None)
    if found is not None:
        found.close()
    path.unlink(missing_ok=True)


def updates_prefix(process_id: int, cycle_id: int) -> str:
    return f"{UPDATES_PREFIX}{process_id}/{cycle_id}/"


def update_key(process_id: int, cycle_id: int, client_id: int) -> str:
    """Where a stored cycle keeps one client's update (one report per client and cycle: one key)."""
    return f"{updates_prefix(process_id, cycle_id)}{client_id}.safetensors"


def default_mode(settings: NodeSettings) -> str:
    """How a cycle's updates are kept when its first report arrives (``fl_aggregation``; ``auto``: stored for
    the Workers when the Node has a Ray cluster, folded on the Node otherwise)."""
    if settings.fl_aggregation == "auto":
        return STORE if settings.ray_enabled else FOLD
    return settings.fl_aggregation


_CYCLE_MODES: dict[Path, str] = {}
"""A cycle's mode once its first report fixed it, by its running sum's path (unique per state dir and cycle)."""


def cycle_mode(settings: NodeSettings, store: ObjectStore, cycle: FLCycle) -> str:
    """FOLD or STORE for this cycle: what its first report did (a running sum on the Node's disk, or updates in
    the object store: also after a restart, or a change of setting), or the setting while nothing was reported."""
    path = accumulator_path(settings, cycle)
    found = _CYCLE_MODES.get(path)
    if found is None:
        if path.exists():
            found = FOLD
        elif store.keys(updates_prefix(cycle.process_id, cycle.id)):
            found = STORE
        else:
            return default_mode(settings)
        _CYCLE_MODES[path] = found
    return found


@dataclass(frozen=True)
class ClosedCycle:
    """A cycle that closed (aggregated, expired or cancelled): what to remove once that has committed, and the
    checkpoint it recorded, if any."""

    sum_path: Path
    updates_prefix: str
    checkpoint_key: str | None = None


def closed_cycle(settings: NodeSettings, cycle: FLCycle, checkpoint_key: str | None = None) -> ClosedCycle:
    return ClosedCycle(sum_path=accumulator_path(settings, cycle),
                       updates_prefix=updates_prefix(cycle.process_id, cycle.id), checkpoint_key=checkpoint_key)


def discard_cycle(store: ObjectStore, closed: ClosedCycle) -> None:
    """Remove a closed cycle's running sum and its stored updates (after its closing committed)."""
    discard_accumulator(closed.sum_path)
    _CYCLE_MODES.pop(closed.sum_path, None)
    store.delete_prefix(closed.updates_prefix)


def _refuse_unless_running(process: FLProcess) -> None:
    if process.state != RUNNING:
        raise Conflict(f"process {process.name!r} is {process.state}: it takes no more clients",
                       details={"reason": "process_ended", "state": process.state})


def plan(session: Session, process: FLProcess) -> schemas.PlanOut:
    checkpoint = get_checkpoint(session, process)
    return schemas.PlanOut(process=process.name, spec=process.spec, client_config=process.client_config,
                           parameters=process.parameters, checkpoint=checkpoint.number,
                           checkpoint_sha256=checkpoint.sha256)


def join(session: Session, *, client: FLClientToken, process: FLProcess) -> schemas.JoinOut:
    """Admit the client to the current cycle (once; at most ``clients_per_cycle``). Call ``settle`` first."""
    _refuse_unless_running(process)
    cycle = open_cycle(session, process, for_update=True)
    if cycle is None:  # settle opens the next cycle of a running process; nothing open means it just ended
        raise Conflict("no cycle is open", details={"reason": "no_open_cycle"})
    assignment = session.scalar(select(FLAssignment).where(FLAssignment.cycle_id == cycle.id,
                                                           FLAssignment.client_id == client.id))
    status = "already_joined"
    if assignment is None:
        if cycle.joined >= int(process.server_config["clients_per_cycle"]):
            raise Conflict("this cycle has all the clients it takes; try again in the next one",
                           details={"reason": "cycle_full", "retry_after": cycle.deadline.isoformat()})
        session.add(FLAssignment(cycle_id=cycle.id, client_id=client.id))
        cycle.joined += 1
        status = "accepted"
    return schemas.JoinOut(status=status, cycle=cycle.number, deadline=cycle.deadline,  # type: ignore[arg-type]
                           reported=assignment is not None and assignment.reported_at is not None,
                           plan=plan(session, process))


def accept_report(session: Session, *, client: FLClientToken, process: FLProcess, cycle_number: int,
                  examples: int, loss: float | None, now: datetime | None = None) -> FLCycle:
    """Record that the client reported in cycle ``cycle_number`` (refusing a late, duplicate or unjoined report).

    The update itself is folded by the caller after this commits (``fold``): a report is counted only once its
    row is committed, and never twice."""
    _refuse_unless_running(process)
    now = now or utcnow()
    cycle = open_cycle(session, process, for_update=True)
    if cycle is None or cycle.number != cycle_number or now >= cycle.deadline:
        raise Conflict(f"cycle {cycle_number} is closed: this report is late and was not counted",
                       details={"reason": "cycle_closed", "cycle": cycle_number})
    assignment = session.scalar(select(FLAssignment).where(FLAssignment.cycle_id == cycle.id,
                                                           FLAssignment.client_id == client.id))
    if assignment is None:
        raise Conflict(f"this client has not joined cycle {cycle_number}", details={"reason": "not_joined"})
    if assignment.reported_at is not None:
        raise Conflict(f"this client has reported in cycle {cycle_number} already; one report per cycle",
                       details={"reason": "already_reported", "cycle": cycle_number})
    assignment.reported_at, assignment.examples, assignment.loss = now, examples, loss
    cycle.reports += 1
    cycle.examples += examples
    if loss is not None:
        cycle.loss_sum += loss
        cycle.loss_reports += 1
    return cycle


def record_report(session: Session, *, client: FLClientToken, process: FLProcess, cycle_number: int, examples: int,
                  loss: float | None, settings: NodeSettings, store: ObjectStore, source: Path) -> tuple[FLCycle, str]:
    """``accept_report``, then, for a cycle that stores its updates, the checked update (the file ``source``,
    moved: a rename on a local store) put in the object store before this transaction commits: an accepted report
    always has its update stored (a Node killed in between leaves an update without a report, which the next start
    removes, and the client's retry puts the same key again). Returns the cycle and its mode; a FOLD cycle's update
    is folded by the caller after the commit (``fold``)."""
    cycle = accept_report(session, client=client, process=process, cycle_number=cycle_number, examples=examples,
                          loss=loss)
    mode = cycle_mode(settings, store, cycle)
    if mode == STORE:
        store.move_file(update_key(process.id, cycle.id, client.id), source)
    _CYCLE_MODES[accumulator_path(settings, cycle)] = mode
    return cycle, mode


def check_update(process: FLProcess, data: bytes) -> list[Any]:
    """The update as flat arrays in the model's layout, or InvalidInput (wrong names, shapes, dtype, not finite,
    too large)."""
    layout = fedavg.Layout.from_json(process.parameters)
    try:
        return layout.parts(fedavg.read_tensors(data, layout, max_abs=MAX_UPDATE_VALUE))
    except fedavg.UpdateError as exc:
        raise InvalidInput(str(exc), details={"field": "update"}) from None


def fold(settings: NodeSettings, *, process: FLProcess, cycle: FLCycle, delta: list[Any], examples: int) -> None:
    """Add one checked update to the cycle's running sum (clipped and unweighted under central DP)."""
    running = accumulator(accumulator_path(settings, cycle), sum(part.size for part in delta))
    if process.dp:
        running.add(delta, weight=1.0, clip_norm=float(process.dp["clip_norm"]))
    else:
        running.add(delta, weight=float(examples))


def _due_cycle(session: Session, process: FLProcess, now: datetime, *, for_update: bool) -> FLCycle | None:
    """The open cycle when it has its reports or its time is up, else None."""
    if process.state != RUNNING:
        return None
    cycle = open_cycle(session, process, for_update=for_update)
    if cycle is None:
        return None
    enough = cycle.reports >= int(process.server_config["min_reports"])
    if not enough and now < cycle.deadline:
        return None
    return cycle


def _noise_std(process: FLProcess) -> float | None:
    return (float(process.dp["noise_multiplier"]) * float(process.dp["clip_norm"])) if process.dp else None


def _stored_updates(session: Session, store: ObjectStore, process: FLProcess,
                    cycle: FLCycle) -> list[tuple[str, float]]:
    """The stored updates of the cycle's reports, with their weights, in the order they were accepted (the order a
    folded cycle adds them in)."""
    present = set(store.keys(updates_prefix(process.id, cycle.id)))
    rows = session.execute(select(FLAssignment.client_id, FLAssignment.examples)
                           .where(FLAssignment.cycle_id == cycle.id, FLAssignment.reported_at.is_not(None))
                           .order_by(FLAssignment.reported_at, FLAssignment.id))
    updates = []
    for client_id, examples in rows:
        key = update_key(process.id, cycle.id, client_id)
        if key in present:
            updates.append((key, 1.0 if process.dp else float(examples or 0)))
    return updates


def pending_aggregation(session: Session, *, process: FLProcess, store: ObjectStore, settings: NodeSettings,
                        now: datetime | None = None) -> fedavg.CycleAggregation | None:
    """What to aggregate when the open cycle is due and its updates are stored (``aggregation.aggregate`` runs it
    outside any transaction, then ``settle`` records it), or None (nothing due, or a folded cycle: ``settle`` alone
    closes it)."""
    cycle = _due_cycle(session, process, now or utcnow(), for_update=False)
    if cycle is None or not cycle.reports or cycle_mode(settings, store, cycle) != STORE:
        return None
    updates = _stored_updates(session, store, process, cycle)
    if not updates:
        return None
    previous = get_checkpoint(session, process)
    return fedavg.CycleAggregation(
        process_id=process.id, cycle_id=cycle.id, parameters=process.parameters, checkpoint_key=previous.object_key,
        checkpoint_sha256=previous.sha256, updates=updates,
        output_key=f"{CHECKPOINT_PREFIX}{uuid.uuid4().hex}.safetensors",
        clip_norm=float(process.dp["clip_norm"]) if process.dp else None, noise_std=_noise_std(process),
        max_abs=MAX_UPDATE_VALUE)


def settle(session: Session, *, process: FLProcess, store: ObjectStore, settings: NodeSettings,
           now: datetime | None = None, aggregated: Aggregated | None = None) -> ClosedCycle | None:
    """Close the open cycle when it has its reports, or its time is up; then open the next or complete the
    process. A folded cycle is averaged here, on the Node; a stored one needs its ``aggregated`` checkpoint (from
    ``pending_aggregation``), without which it stays open. Returns the closed cycle, whose running sum and stored
    updates the caller discards (``discard_cycle``) once this transaction has committed, or None when nothing
    closed. Callers hold the process's lock (the router's)."""
    now = now or utcnow()
    cycle = _due_cycle(session, process, now, for_update=True)
    if cycle is None:
        return None
    path = accumulator_path(settings, cycle)
    mode = cycle_mode(settings, store, cycle)
    checkpoint_key = None
    if cycle.reports and mode == FOLD and path.exists():
        checkpoint_key = _aggregate(session, process=process, cycle=cycle, path=path, store=store)
    elif cycle.reports and mode == STORE and aggregated is not None and aggregated.cycle_id == cycle.id:
        previous = get_checkpoint(session, process)
        session.add(FLCheckpoint(process_id=process.id, number=previous.number + 1, object_key=aggregated.key,
                                 sha256=aggregated.sha256, size=aggregated.size))
        audit.record(session, actor=None, action=AGGREGATED_ACTION, target_type="fl_process", target_id=process.id,
                     details={"cycle": cycle.number, **aggregated.figures()})
        checkpoint_key = aggregated.key
    elif cycle.reports and mode == STORE and store.keys(updates_prefix(process.id, cycle.id)):
        return None  # its updates are waiting for their aggregation (pending_aggregation)
    if checkpoint_key is not None:
        cycle.state = AGGREGATED
        process.cycles_done += 1
    else:
        cycle.state = EXPIRED
    cycle.closed_at = now
    if process.cycles_done >= int(process.server_config["cycles"]):
        process.state, process.ended_at = COMPLETED, now
    else:
        session.flush()
        _open_cycle(session, process, number=cycle.number + 1, now=now)
    session.flush()
    return closed_cycle(settings, cycle, checkpoint_key)


def _aggregate(session: Session, *, process: FLProcess, cycle: FLCycle, path: Path, store: ObjectStore) -> str:
    """A folded cycle's average, on the Node: the new checkpoint's row (its key is returned)."""
    layout = fedavg.Layout.from_json(process.parameters)
    previous = get_checkpoint(session, process)
    with store.open(previous.object_key) as reader:
        current = layout.flatten(fedavg.read_tensors(reader.read(), layout, what="checkpoint"))
    running = accumulator(path, layout.size)
    new = running.finish(current, noise_std=_noise_std(process))
    key, sha256, size = store_checkpoint(store, fedavg.to_safetensors(layout, new))
    session.add(FLCheckpoint(process_id=process.id, number=previous.number + 1, object_key=key, sha256=sha256,
                             size=size))
    audit.record(session, actor=None, action=AGGREGATED_ACTION, target_type="fl_process", target_id=process.id,
                 details={"cycle": cycle.number, "on": "node", "worker": None, "attempts": 0,
                          "updates": running.count})
    return key


def due_processes(session: Session, now: datetime | None = None) -> list[int]:
    """Running processes whose open cycle's time is up, or that has its reports (a stored cycle whose aggregation
    was interrupted by a restart): the periodic check settles them."""
    now = now or utcnow()
    query = (select(FLProcess.id, FLProcess.server_config, FLCycle.reports, FLCycle.deadline)
             .join(FLCycle, FLCycle.process_id == FLProcess.id)
             .where(FLProcess.state == RUNNING, FLCycle.state == OPEN))
    return [process_id for process_id, server, reports, deadline in session.execute(query)
            if deadline <= now or reports >= int(server["min_reports"])]


def update_limit(process: FLProcess) -> int:
    """The largest update body a process takes: float64 parameters plus a generous safetensors header."""
    layout = fedavg.Layout.from_json(process.parameters)
    return 8 * layout.size + 64 * len(layout.parameters) + 100_000


def finite_loss(loss: float | None) -> float | None:
    if loss is not None and (not math.isfinite(loss) or abs(loss) > schemas.MAX_LOSS):
        raise InvalidInput(f"loss must be finite and at most {schemas.MAX_LOSS:g} in magnitude",
                           details={"field": "loss"})
    return loss
