"""What the Node does once at each start, after migrations: preset roles, the setup token, and recovery.

Recovery (``recover``) makes the object store and the database agree again after any kill, before the Node
serves a request:

- upload staging directories under ``state_dir/uploads`` (a body that was streaming, a file being converted)
  are removed;
- the store's temporary objects (a blob that was being written) are removed;
- a blob under a prefix the Node manages (``tensors/``, ``results/``, ``weights/``, ``fl/checkpoints/``) that no
  row names is removed: the process died after writing it and before the transaction that records it committed,
  or the row went with its owner (a deleted user's results and federated learning processes);
- a federated learning cycle's running sum (``state_dir/fl/cycle-N.sum``) whose cycle is no longer open is
  removed: the Node died after the cycle closed and before the file was;
- a stored federated learning update (``fl/updates/<process>/<cycle>/<client>.safetensors``) is removed unless its
  cycle is open and its client's report committed: the Node died after its cycle closed and before its updates
  were removed, or after writing the update and before the report's row committed (the client was not answered
  and may send it again);
- a tensor or result row whose blob is missing is reported (an error in the log): nothing the Node does loses
  a blob whose row committed (deletes remove the blob only after the row's deletion committed), so this means
  the store was changed from outside, and the operator must decide.

What was swept is reported in the log (``grid_runtime.node.recovery``; a warning when anything was found).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from grid_runtime.core.accounts import service as accounts
from grid_runtime.core.capabilities import PRESET_DESCRIPTIONS, PRESET_ROLES
from grid_runtime.core.settings import NodeSettings
from grid_runtime.core.storage import ObjectStore, ObjectStoreError
from grid_runtime.node.auth.service import issue_setup_token
from grid_runtime.node.roles.models import Role

log = logging.getLogger("grid_runtime.node.recovery")

TENSORS_PREFIX = "tensors/"
RESULTS_PREFIX = "results/"
WEIGHTS_PREFIX = "weights/"
FL_CHECKPOINTS_PREFIX = "fl/checkpoints/"
FL_UPDATES_PREFIX = "fl/updates/"


@dataclass
class RecoveryReport:
    """What start-up recovery found and removed."""

    staging_dirs: list[str] = field(default_factory=list)
    temporaries: list[str] = field(default_factory=list)
    orphan_blobs: list[str] = field(default_factory=list)
    rows_without_blob: list[str] = field(default_factory=list)
    running_sums: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.staging_dirs or self.temporaries or self.orphan_blobs or self.rows_without_blob
                    or self.running_sums)

    def summary(self) -> str:
        return (f"removed {len(self.staging_dirs)} upload staging dir(s), {len(self.temporaries)} temporary "
                f"object(s), {len(self.orphan_blobs)} blob(s) without a row, {len(self.running_sums)} running "
                f"sum(s) of closed cycles; {len(self.rows_without_blob)} row(s) without a blob")


def _tensor_keys(session: Session) -> set[str]:
    from grid_runtime.node.tensors.models import Tensor

    return set(session.scalars(select(Tensor.object_key)))


def _result_keys(session: Session) -> set[str]:
    from grid_runtime.node.jobs.models import Result

    return {k for k in session.scalars(select(Result.object_key)) if k}


def _weights_keys(session: Session) -> set[str]:
    from grid_runtime.node.jobs.models import Job

    keys = set()
    for settings in session.scalars(select(Job.settings)):
        initial = (settings or {}).get("initial_weights") if isinstance(settings, dict) else None
        if isinstance(initial, dict) and isinstance(initial.get("key"), str):
            keys.add(initial["key"])
    return keys


def _fl_checkpoint_keys(session: Session) -> set[str]:
    from grid_runtime.node.fl.models import FLCheckpoint

    return set(session.scalars(select(FLCheckpoint.object_key)))


def _fl_update_keys(session: Session) -> set[str]:
    """The stored updates of open cycles whose reports committed."""
    from grid_runtime.node.fl.models import FLAssignment, FLCycle
    from grid_runtime.node.fl.service import OPEN, update_key

    rows = session.execute(select(FLCycle.process_id, FLCycle.id, FLAssignment.client_id)
                           .join(FLAssignment, FLAssignment.cycle_id == FLCycle.id)
                           .where(FLCycle.state == OPEN, FLAssignment.reported_at.is_not(None)))
    return {update_key(process_id, cycle_id, client_id) for process_id, cycle_id, client_id in rows}


# prefix -> (the keys rows name, whether a named key must exist: initial weights are deleted after their job)
_MANAGED: dict[str, tuple[Callable[[Session], set[str]], bool]] = {
    TENSORS_PREFIX: (_tensor_keys, True),
    RESULTS_PREFIX: (_result_keys, True),
    WEIGHTS_PREFIX: (_weights_keys, False),
    FL_CHECKPOINTS_PREFIX: (_fl_checkpoint_keys, True),
    FL_UPDATES_PREFIX: (_fl_update_keys, False),  # a folded cycle's reports have none
}


def sweep_staging(settings: NodeSettings, report: RecoveryReport) -> None:
    from grid_runtime.node.tensors.router import uploads_dir

    base = uploads_dir(settings)
    if not base.is_dir():
        return
    for entry in sorted(base.iterdir()):
        report.staging_dirs.append(entry.name)
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def sweep_running_sums(session: Session, settings: NodeSettings, report: RecoveryReport) -> None:
    """Remove the running sums of federated learning cycles that are no longer open."""
    from grid_runtime.node.fl.models import FLCycle
    from grid_runtime.node.fl.service import ACCUMULATOR_DIR, OPEN

    base = settings.state_dir / ACCUMULATOR_DIR
    if not base.is_dir():
        return
    open_ids = set(session.scalars(select(FLCycle.id).where(FLCycle.state == OPEN)))
    for entry in sorted(base.glob("cycle-*.sum")):
        cycle_id = entry.name.removeprefix("cycle-").removesuffix(".sum")
        if not (cycle_id.isascii() and cycle_id.isdigit() and int(cycle_id) in open_ids):
            entry.unlink(missing_ok=True)
            report.running_sums.append(entry.name)


def reconcile(session: Session, store: ObjectStore, report: RecoveryReport) -> None:
    """Remove the store's temporaries and its blobs that no row names; list rows whose blob is missing."""
    report.temporaries.extend(store.sweep_temporaries())
    for prefix, (named_by_rows, must_exist) in _MANAGED.items():
        named = named_by_rows(session)
        present = set(store.keys(prefix))
        for key in sorted(present - named):
            store.delete(key)
            report.orphan_blobs.append(key)
        if must_exist:
            report.rows_without_blob.extend(sorted(k for k in named if k.startswith(prefix) and k not in present))


def recover(session: Session, settings: NodeSettings, store: ObjectStore | None = None) -> RecoveryReport:
    """Sweep what a killed Node left behind and reconcile the store with the database (see the module)."""
    report = RecoveryReport()
    sweep_staging(settings, report)
    sweep_running_sums(session, settings, report)
    try:
        store = store or ObjectStore(settings.resolved_object_store_url, settings.object_store_options)
    except ObjectStoreError as exc:
        log.error("recovery: cannot open the object store to reconcile it: %s", exc)
        return report
    reconcile(session, store, report)
    if report.rows_without_blob:
        log.error("recovery: %d row(s) name a blob the object store does not have (changed from outside the "
                  "Node?): %s", len(report.rows_without_blob), ", ".join(report.rows_without_blob[:20]))
    if report.clean:
        log.info("recovery: nothing to sweep; the object store and the database agree")
    else:
        log.warning("recovery: %s", report.summary())
    return report


def prepare(session: Session, settings: NodeSettings) -> None:
    accounts.seed_preset_roles(session, roles=Role, presets=PRESET_ROLES, descriptions=PRESET_DESCRIPTIONS)
    session.flush()
    issue_setup_token(session, settings.state_dir)
    recover(session, settings)
