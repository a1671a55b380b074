"""Keeping every associated Network's catalogue of this Node up to date, off the request path.

A change to a tensor, its tags or a dataset (any committed write to those tables) wakes one background thread,
which pushes what changed (upserts and deletes, computed against what it last pushed to each Network); every
``network_sync_seconds``, and after a start or an error, it pushes the whole catalogue as a reconciliation
(``begin_sync`` .. ``end_sync``: the Network drops what the run did not send). Before pushing it asks the Network
for the association's state: a pending association is left alone until approved; one the Network denied or let
expire is marked so (and left alone: its administrator may join again); one the Network ended (401) is marked ended
here. Requests never wait for any of this.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from grid_runtime.core.database import transaction, utcnow
from grid_runtime.core.errors import GridError
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.datasets.models import Dataset
from grid_runtime.node.network import service
from grid_runtime.node.network.models import NetworkAssociation
from grid_runtime.node.tensors.models import Tensor, TensorTag

log = logging.getLogger("grid_runtime.node.network")
BATCH = 500
"""Entries in one push (the Network accepts up to its max_push_entries, 1,000 by default)."""
_CHANGED = "grid.catalogue_changed"
_TABLES = frozenset({"tensors", "tensor_tags", "datasets"})
_MODELS = (Tensor, TensorTag, Dataset)

Key = tuple[str, int]


class CatalogueSync:
    def __init__(self, sessions: sessionmaker[Session], settings: NodeSettings) -> None:
        self.sessions = sessions
        self.settings = settings
        self._pushed: dict[int, dict[Key, str]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- change detection ---

    def _after_flush(self, session: Session, _context: Any) -> None:
        if any(isinstance(obj, _MODELS) for obj in (*session.new, *session.dirty, *session.deleted)):
            session.info[_CHANGED] = True

    def _on_execute(self, state: ORMExecuteState) -> None:
        if state.is_insert or state.is_update or state.is_delete:
            table = getattr(state.statement, "table", None)
            if getattr(table, "name", None) in _TABLES:
                state.session.info[_CHANGED] = True

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(_CHANGED, False):
            self._wake.set()

    def _after_rollback(self, session: Session, _previous: Any) -> None:
        session.info.pop(_CHANGED, None)

    def _listeners(self) -> list[tuple[str, Any]]:
        return [("after_flush", self._after_flush), ("do_orm_execute", self._on_execute),
                ("after_commit", self._after_commit), ("after_soft_rollback", self._after_rollback)]

    # --- the thread ---

    def start(self) -> None:
        for name, listener in self._listeners():
            event.listen(self.sessions, name, listener)
        self._thread = threading.Thread(target=self._run, name="grid-network-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        for name, listener in self._listeners():
            event.remove(self.sessions, name, listener)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.settings.network_timeout_seconds + 5)

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        full = True  # the first round after a start reconciles
        while not self._stop.is_set():
            try:
                self.sync_all(full=full)
            except Exception:  # a round that fails is retried as a reconciliation
                log.warning("catalogue sync failed", exc_info=True)
            changed = self._wake.wait(timeout=self.settings.network_sync_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            full = not changed
            if changed:
                self._stop.wait(0.2)  # let a burst of changes land in one round

    # --- one round ---

    def sync_all(self, *, full: bool) -> None:
        with transaction(self.sessions) as session:
            ids = list(session.scalars(select(NetworkAssociation.id)
                                       .where(NetworkAssociation.state.in_(service.LIVE_STATES))))
        for association_id in ids:
            try:
                self.sync_one(association_id, full=full)
            except GridError as exc:
                log.warning("catalogue sync with association %d: %s", association_id, exc.message)

    def sync_one(self, association_id: int, *, full: bool) -> tuple[int, int]:
        """Ask the Network for the association's state and, once approved, push; (upserted, deleted)."""
        with self._lock, self._recording(association_id) as association:
            if association.state not in service.LIVE_STATES or not association.push_credential:
                return 0, 0
            url, credential = association.network_url, association.push_credential
            roots = association.network_ca_pem
            try:
                answer = service.call_network(self.settings, "GET", url, "/peer/association", credential=credential,
                                              ca_pem=roots)
            except service.NetworkRefused as exc:
                if isinstance(exc.details, dict) and exc.details.get("status") == 401:
                    association.state = service.ENDED  # the Network ended it
                    association.ended_at, association.push_credential = utcnow(), None
                    self._pushed.pop(association_id, None)
                    return 0, 0
                raise
            state = str(answer.get("state", "")) if isinstance(answer, dict) else ""
            if state in (service.PENDING, service.APPROVED, service.DENIED, service.EXPIRED):
                association.state = state
            if association.state != service.APPROVED:
                return 0, 0
            with transaction(self.sessions) as session:
                entries = service.catalogue(session)
            digests = {key: service.digest(entry) for key, entry in entries.items()}
            previous = None if full else self._pushed.get(association_id)
            self._pushed.pop(association_id, None)
            if previous is None:
                upserts = list(entries.values())
                deletes: list[dict[str, Any]] = []
            else:
                upserts = [entries[k] for k, d in digests.items() if previous.get(k) != d]
                deletes = [{"kind": k[0], "id": k[1]} for k in previous if k not in digests]
            self._push(url, credential, upserts, deletes, reconcile=previous is None, roots=roots)
            self._pushed[association_id] = digests
            association.last_push_at, association.last_error = utcnow(), ""
            return len(upserts), len(deletes)

    def _push(self, url: str, credential: str, upserts: list[dict[str, Any]], deletes: list[dict[str, Any]],
              *, reconcile: bool, roots: str | None = None) -> None:
        if not reconcile and not upserts and not deletes:
            return
        batches: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]] = []
        for start in range(0, len(upserts), BATCH):
            batches.append((upserts[start:start + BATCH], []))
        for start in range(0, len(deletes), BATCH):
            batches.append(([], deletes[start:start + BATCH]))
        batches = batches or [([], [])]
        for index, (ups, dels) in enumerate(batches):
            body = {"node": self.settings.name, "upserts": ups, "deletes": dels,
                    "begin_sync": reconcile and index == 0, "end_sync": reconcile and index == len(batches) - 1}
            service.call_network(self.settings, "POST", url, "/peer/catalogue", credential=credential, body=body,
                                 ca_pem=roots)

    @contextmanager
    def _recording(self, association_id: int) -> Iterator[NetworkAssociation]:
        """The association, detached; what the round changed in it (state, last push, the error) is written back
        in a short transaction of its own afterwards, whether the round succeeded or failed."""
        with transaction(self.sessions) as session:
            association = service.get(session, association_id)
        try:
            yield association
        except GridError as exc:
            association.last_error = exc.message[:500]
            self._pushed.pop(association_id, None)
            raise
        finally:
            with transaction(self.sessions) as session:
                row = service.get(session, association_id)
                if row.state != service.ENDED:  # ended from this side meanwhile: keep it so
                    row.state, row.ended_at = association.state, association.ended_at
                    row.push_credential = association.push_credential
                row.last_push_at, row.last_error = association.last_push_at, association.last_error
