"""The catalogue: what associated Nodes push, and search over it.

A push is checked before anything changes (docs/network.md): its body is bounded (``max_push_bytes``) and must
match ``PushIn`` exactly (unknown fields refused, every string and list bounded), it holds at most
``max_push_entries`` upserts and deletes, the Node may hold at most ``max_entries_per_node`` entries, and it must
name the pushing Node itself: entries are keyed by the association the credential belongs to, so a Node can
write, and delete, only its own. Search reads only this database: it never waits on a Node. A Node not heard
from for ``stale_after_seconds`` still has its last entries found, each marked ``stale``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, select, tuple_
from sqlalchemy.orm import Session, aliased

from grid_runtime.core.database import utcnow
from grid_runtime.core.errors import Forbidden, InvalidInput
from grid_runtime.core.settings import NetworkSettings
from grid_runtime.network.models import APPROVED, Association, CatalogueEntry, CatalogueTag, CatalogueWord
from grid_runtime.network.schemas import HitOut, NodeOut, PushIn, PushOut, SearchOut

WORD = re.compile(r"[a-z0-9]+")
MAX_WORDS = 200
"""Words of one entry that search finds it by, at most (a description holds at most 2,000 characters)."""
TOTAL_CAP = 1000
"""A search counts its matches up to this many (or to the end of the page asked for, if further); past it the total
says "at least" (``total_is_exact`` false)."""
MAX_OFFSET = 10_000
"""How deep a search may page (the route refuses more): narrow the search instead."""


def words_of(text: str) -> list[str]:
    """The distinct lower-case words (letters and digits) of ``text``, in order, each at most 64 characters."""
    return list(dict.fromkeys(word[:64] for word in WORD.findall(text.lower())))[:MAX_WORDS]


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
    reworded: list[tuple[CatalogueEntry, list[str]]] = []
    for entry in push.upserts:
        row = existing.get((entry.kind, entry.id))
        if row is None:
            row = CatalogueEntry(association_id=association.id, kind=entry.kind, object_id=entry.id)
            session.add(row)
        tags = sorted(set(entry.tags))
        if row.id is None or row.tags != tags:
            retagged.append((row, tags))
        if row.id is None or (row.name, row.description) != (entry.name, entry.description):
            reworded.append((row, words_of(f"{entry.name} {entry.description}")))
        row.name, row.description, row.visibility = entry.name, entry.description, str(entry.visibility)
        row.shape, row.dtype, row.created_at = entry.shape, entry.dtype, entry.created_at
        row.tags, row.seen_at = tags, now
    session.flush()
    for row, tags in retagged:
        session.execute(delete(CatalogueTag).where(CatalogueTag.entry_id == row.id))
        session.add_all(CatalogueTag(entry_id=row.id, tag=tag) for tag in tags)
    for row, words in reworded:
        session.execute(delete(CatalogueWord).where(CatalogueWord.entry_id == row.id))
        session.add_all(CatalogueWord(entry_id=row.id, word=word) for word in words)
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


def _word_condition(session: Session, word: str, table: Any) -> Any:
    """Words beginning with ``word`` (letters and digits only): a range over the words' key on SQLite, a prefix
    LIKE elsewhere (whose collation may not order a range as bytes)."""
    if session.get_bind().dialect.name == "sqlite":
        return (table.word >= word) & (table.word < word + "~")  # "~" sorts after [a-z0-9]
    return table.word.like(word + "%")


MAX_EXPANSION = 32


def _expand(session: Session, prefix: str) -> list[str] | None:
    """The words beginning with ``prefix`` when there are at most ``MAX_EXPANSION`` (each then one probe of the
    words' key), else None (the prefix is matched as a range)."""
    found = list(session.scalars(select(CatalogueWord.word).distinct()
                                 .where(_word_condition(session, prefix, CatalogueWord)).limit(MAX_EXPANSION + 1)))
    return found if len(found) <= MAX_EXPANSION else None


def query_words(text: str) -> list[tuple[str, bool]]:
    """The words of a query, each whole or, written ``word*``, a prefix; at most 8."""
    found = re.findall(r"([a-z0-9]+)(\*?)", text.lower())
    return list(dict.fromkeys((word[:64], star == "*") for word, star in found))[:8]


def search(session: Session, *, text: str | None, tags: list[str], kind: str | None, node: str | None,
           limit: int, offset: int, settings: NetworkSettings) -> SearchOut:
    """Entries of approved associations with every word of ``text`` in the name or the description (``word*``:
    a word beginning so) and every tag, oldest first; the total counted up to ``TOTAL_CAP``. Reads this database
    only."""
    approved = {a.id: a for a in session.scalars(select(Association).where(Association.state == APPROVED))}
    if node is not None:
        approved = {i: a for i, a in approved.items() if a.node_name == node}
    words = query_words(text or "")
    if not approved or (text and text.strip() and not words):
        return SearchOut(items=[], total=0, total_is_exact=True, limit=limit, offset=offset)
    # Every match's id, in order, as far as the page and the count up to TOTAL_CAP need (then the page's rows by
    # id). A tag or a whole word is one key of its table's index ((tag, entry_id), (word, entry_id)), which yields
    # its entries already in id order: the first such filter drives, every other is a probe of one index per
    # entry, and the scan stops at ``reach`` matches. With prefixes only (``word*``), each prefix's entries are
    # read once from its range and the entries scanned in id order against them. Only approved associations hold
    # entries (ending one removes them; nobody pushes before approval): the Node filter is needed only when asked.
    reach = max(TOTAL_CAP, offset + limit) + 1
    keyed: list[tuple[Any, str]] = [(CatalogueTag, tag) for tag in tags]
    keyed += [(CatalogueWord, word) for word, prefix in words if not prefix]
    prefixes = [word for word, prefix in words if prefix]
    if keyed:
        driver, value = keyed[0]
        key: Any = driver.entry_id
        query = select(key).where((driver.tag if driver is CatalogueTag else driver.word) == value)
        for table, value in keyed[1:]:
            other = aliased(table)
            column = other.tag if table is CatalogueTag else other.word
            query = query.where(exists().where(other.entry_id == key, column == value))
        for word in prefixes:
            probe = aliased(CatalogueWord)
            expanded = _expand(session, word)
            condition = probe.word.in_(expanded) if expanded is not None else _word_condition(session, word, probe)
            query = query.where(exists().where(probe.entry_id == key, condition))
        if node is not None or kind is not None:
            query = query.join(CatalogueEntry, CatalogueEntry.id == key)
    else:
        key = CatalogueEntry.id
        query = select(key).where(*(key.in_(select(CatalogueWord.entry_id)
                                            .where(_word_condition(session, word, CatalogueWord)))
                                    for word in prefixes))
    if node is not None:
        query = query.where(CatalogueEntry.association_id.in_(list(approved)))
    if kind is not None:
        query = query.where(CatalogueEntry.kind == kind)
    ids = list(session.scalars(query.order_by(key).limit(reach)))
    exact = len(ids) < reach
    total = len(ids) if exact else reach - 1
    page = ids[offset:offset + limit]
    by_id = {e.id: e for e in session.scalars(select(CatalogueEntry).where(CatalogueEntry.id.in_(page)))} \
        if page else {}
    rows = [by_id[i] for i in page if i in by_id]
    now = utcnow()
    items = []
    for e in rows:
        a = approved.get(e.association_id)
        if a is None:  # cannot happen while the invariant above holds; never show an unapproved Node's entry
            continue
        items.append(HitOut(node=a.node_name, node_url=a.node_url, kind=e.kind, id=e.object_id, name=e.name,
                            description=e.description, tags=list(e.tags), shape=e.shape, dtype=e.dtype,
                            visibility=e.visibility, created_at=e.created_at, last_seen=a.last_push_at,
                            stale=_stale(a.last_push_at, settings, now)))
    return SearchOut(items=items, total=total, total_is_exact=exact, limit=limit, offset=offset)


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
