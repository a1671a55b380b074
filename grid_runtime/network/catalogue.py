"""The catalogue: what associated Nodes push, and search over it.

A push is checked before anything changes (docs/network.md): its body is bounded (``max_push_bytes``) and must
match ``PushIn`` exactly (unknown fields refused, every string and list bounded), it holds at most
``max_push_entries`` upserts and deletes, the Node may hold at most ``max_entries_per_node`` entries, and it must
name the pushing Node itself: entries are keyed by the association the credential belongs to, so a Node can
write, and delete, only its own. Search reads only this database: it never waits on a Node. A Node not heard
from for ``stale_after_seconds`` still has its last entries found, each marked ``stale``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, delete, exists, func, select, tuple_
from sqlalchemy.orm import Session

from grid_runtime.core.database import utcnow
from grid_runtime.core.errors import Forbidden, InvalidInput
from grid_runtime.core.settings import NetworkSettings
from grid_runtime.network.models import APPROVED, Association, CatalogueEntry, CatalogueTag
from grid_runtime.network.schemas import EntryIn, HitOut, NodeOut, PushIn, PushOut, SearchOut


def _search_text(entry: EntryIn) -> str:
    return f"{entry.name}\n{entry.description}".lower()


def ingest(session: Session, *, association: Association, push: PushIn, settings: NetworkSettings) -> PushOut:
    """Apply one push from ``association``'s Node, all or nothing (the caller's transaction)."""
    if association.state != APPROVED:
        raise Forbidden(f"this association is {association.state}: the Network accepts pushes once it is approved")
    if push.node != association.node_name:
        raise Forbidden(f"this credential belongs to the Node {association.node_name!r}, which may write only its "
                        f"own objects, not {push.node!r}'s")
    if len(push.upserts) + len(push.deletes) > settings.max_push_entries:
        raise InvalidInput(f"a push holds at most {settings.max_push_entries} upserts and deletes together",
                           details={"max_push_entries": settings.max_push_entries})
    keys = [(e.kind, e.id) for e in push.upserts]
    if len(set(keys)) != len(keys):
        raise InvalidInput("a push names the same object twice")
    now = utcnow()
    if push.begin_sync:
        association.sync_started_at = now
    mine = CatalogueEntry.association_id == association.id
    existing = {(row.kind, row.object_id): row for row in session.scalars(
        select(CatalogueEntry).where(mine, tuple_(CatalogueEntry.kind, CatalogueEntry.object_id).in_(keys)))
    } if keys else {}
    held = session.scalar(select(func.count()).select_from(CatalogueEntry).where(mine)) or 0
    if held + len(keys) - len(existing) > settings.max_entries_per_node:
        raise InvalidInput(f"a Node may hold at most {settings.max_entries_per_node} catalogue entries",
                           details={"max_entries_per_node": settings.max_entries_per_node})
    retagged: list[tuple[CatalogueEntry, list[str]]] = []
    for entry in push.upserts:
        row = existing.get((entry.kind, entry.id))
        if row is None:
            row = CatalogueEntry(association_id=association.id, kind=entry.kind, object_id=entry.id)
            session.add(row)
        row.name, row.description, row.visibility = entry.name, entry.description, str(entry.visibility)
        row.shape, row.dtype, row.created_at = entry.shape, entry.dtype, entry.created_at
        tags = sorted(set(entry.tags))
        if row.tags != tags or row.id is None:
            retagged.append((row, tags))
        row.tags, row.search_text, row.seen_at = tags, _search_text(entry), now
    session.flush()
    for row, tags in retagged:
        session.execute(delete(CatalogueTag).where(CatalogueTag.entry_id == row.id))
        session.add_all(CatalogueTag(entry_id=row.id, tag=tag) for tag in tags)
    deleted = 0
    if push.deletes:
        refs = [(r.kind, r.id) for r in push.deletes]
        result = session.execute(delete(CatalogueEntry).where(
            mine, tuple_(CatalogueEntry.kind, CatalogueEntry.object_id).in_(refs)))
        deleted = int(getattr(result, "rowcount", 0) or 0)
    removed = 0
    if push.end_sync and association.sync_started_at is not None:
        unsent = CatalogueEntry.seen_at < association.sync_started_at
        result = session.execute(delete(CatalogueEntry).where(mine, unsent))
        removed = int(getattr(result, "rowcount", 0) or 0)
        association.sync_started_at = None
    association.last_push_at = now
    session.flush()
    entries = session.scalar(select(func.count()).select_from(CatalogueEntry).where(mine)) or 0
    return PushOut(upserted=len(push.upserts), deleted=deleted, removed_by_sync=removed, entries=entries)


def _stale(last_push_at: datetime | None, settings: NetworkSettings, now: datetime) -> bool:
    return last_push_at is None or now - last_push_at > timedelta(seconds=settings.stale_after_seconds)


def _like(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search(session: Session, *, text: str | None, tags: list[str], kind: str | None, node: str | None,
           limit: int, offset: int, settings: NetworkSettings) -> SearchOut:
    """Entries of approved associations matching every word of ``text`` (in name or description) and every tag,
    oldest first. Reads this database only."""
    conditions = [Association.state == APPROVED]
    for word in (text or "").lower().split()[:8]:
        conditions.append(CatalogueEntry.search_text.like(_like(word), escape="\\"))
    for tag in tags:
        conditions.append(exists().where(CatalogueTag.entry_id == CatalogueEntry.id, CatalogueTag.tag == tag))
    if kind is not None:
        conditions.append(CatalogueEntry.kind == kind)
    if node is not None:
        conditions.append(Association.node_name == node)
    joined = select(CatalogueEntry, Association).join(Association, Association.id == CatalogueEntry.association_id)
    rows = session.execute(joined.where(and_(*conditions)).order_by(CatalogueEntry.id)
                           .limit(limit).offset(offset)).all()
    if offset == 0 and len(rows) < limit:
        total = len(rows)
    else:
        total = session.scalar(select(func.count()).select_from(CatalogueEntry)
                               .join(Association, Association.id == CatalogueEntry.association_id)
                               .where(and_(*conditions))) or 0
    now = utcnow()
    items = [HitOut(node=a.node_name, node_url=a.node_url, kind=e.kind, id=e.object_id, name=e.name,
                    description=e.description, tags=list(e.tags), shape=e.shape, dtype=e.dtype,
                    visibility=e.visibility, created_at=e.created_at, last_seen=a.last_push_at,
                    stale=_stale(a.last_push_at, settings, now)) for e, a in rows]
    return SearchOut(items=items, total=total, limit=limit, offset=offset)


def nodes(session: Session, *, settings: NetworkSettings) -> list[NodeOut]:
    """Every approved Node: how many entries it has here and how fresh they are."""
    counts = dict(session.execute(select(CatalogueEntry.association_id, func.count())
                                  .group_by(CatalogueEntry.association_id)).all())
    now = utcnow()
    return [NodeOut(association_id=a.id, name=a.node_name, url=a.node_url, last_seen=a.last_push_at,
                    stale=_stale(a.last_push_at, settings, now), entries=int(counts.get(a.id, 0)))
            for a in session.scalars(select(Association).where(Association.state == APPROVED)
                                     .order_by(Association.node_name))]


__all__ = ["ingest", "nodes", "search"]
