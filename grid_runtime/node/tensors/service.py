"""Tensors: storing uploads, editing metadata and tags, deleting, and searching.

Who may change a tensor: its uploader while they hold ``upload_data`` (the domain guide: "edit and delete
their own"), and anyone holding ``manage_permissions`` (Administrators and the Owner), because changing
visibility is a permission change and they moderate the Node's data. Everyone may read metadata.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, Row, Select, and_, bindparam, func, literal_column, or_, select
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.errors import Forbidden, InvalidInput, NotFound
from grid_runtime.core.levels import Level, Visibility
from grid_runtime.core.storage import ObjectStore
from grid_runtime.node.audit import service as audit
from grid_runtime.node.datasets import service as datasets
from grid_runtime.node.permissions import service as permissions
from grid_runtime.node.permissions.service import effective_levels
from grid_runtime.node.tensors.formats import DTYPES, StagedTensor
from grid_runtime.node.tensors.models import Tensor, TensorTag, shape_key
from grid_runtime.node.tensors.schemas import TensorOut

if TYPE_CHECKING:
    from grid_runtime.node.deps import Actor

OBJECT_PREFIX = "tensors/"
_WORD = re.compile(r"[^\W_]+")
_DIM = re.compile(r"^(\d+|\*)$")


def get_tensor(session: Session, tensor_id: int) -> Tensor:
    """The tensor with this id, or NotFound."""
    tensor = session.get(Tensor, tensor_id)
    if tensor is None:
        raise NotFound(f"no tensor with id {tensor_id}", details={"tensor_id": tensor_id})
    return tensor


_TAGS = TensorTag.__table__
_TAGS_OF = (select(_TAGS.c.tensor_id, _TAGS.c.tag).where(_TAGS.c.tensor_id.in_(bindparam("ids", expanding=True)))
            .order_by(_TAGS.c.tag))
"""Built once, on the table (no ORM entities): every listing of tensors runs it."""


def tags_of(session: Session, tensor_ids: Sequence[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {i: [] for i in tensor_ids}
    if tensor_ids:
        for tensor_id, tag in session.execute(_TAGS_OF, {"ids": list(found)}):
            found[tensor_id].append(tag)
    return found


VALUE_DERIVED_FIELDS = ("sha256", "size_bytes")
"""TensorOut's fields computed from the stored values: shown only to callers who may download the tensor."""


_OUT_FIELDS = ("id", "name", "description", "shape", "dtype", "size_bytes", "sha256", "visibility", "columns",
               "uploader_id", "created_at")
OUT_COLUMNS = tuple(Tensor.__table__.c[name] for name in _OUT_FIELDS)
"""What ``TensorOut`` shows of a row (``search`` reads only these, as plain rows: a listing changes nothing)."""


def to_out(session: Session, tensors: Sequence[Tensor | Row[Any]], *, user_id: int | None) -> list[TensorOut]:
    """Tensors (rows, or rows of ``OUT_COLUMNS``) as API shapes with their tags and, when ``user_id`` is given,
    that user's effective level.

    The content hash and size are left out (null) unless that user may download the tensor: below
    ``download`` they would be an oracle on the private values (docs/threat-model.md, "Hashes" and "Sizes")."""
    ids = [t.id for t in tensors]
    tags = tags_of(session, ids)
    levels: dict[int, Level] = effective_levels(session, user_id=user_id, tensor_ids=ids) if user_id else {}
    out = []
    for tensor in tensors:
        fields = {name: getattr(tensor, name) for name in _OUT_FIELDS}
        level = levels.get(tensor.id)
        fields["tags"], fields["level"] = tags[tensor.id], level
        if level is None or not permissions.allows(level, Level.download):
            fields.update(dict.fromkeys(VALUE_DERIVED_FIELDS))
        out.append(TensorOut.model_validate(fields))
    return out


def ensure_can_change(actor: Actor, tensor: Tensor) -> None:
    if actor.can(Capability.manage_permissions):
        return
    if actor.can(Capability.upload_data) and tensor.uploader_id == actor.id:
        return
    raise Forbidden(
        f"only the uploader of tensor {tensor.id} (holding upload_data) or a holder of manage_permissions "
        "may change or delete it", details={"tensor_id": tensor.id})


def store_tensor(
    session: Session,
    *,
    actor: Actor,
    store: ObjectStore,
    staged: StagedTensor,
    name: str,
    description: str = "",
    tags: Sequence[str] = (),
    visibility: Visibility = Visibility.private,
    dataset: str | None = None,
    role: str | None = None,
) -> Tensor:
    """Put a staged tensor in the object store and add its row (flushed, not committed).

    If anything here fails, the blob is removed again; the caller must also remove it (``discard_blob``)
    if the commit that follows fails, so that a failed upload leaves neither a blob nor a row.
    """
    target = datasets.get_dataset(session, dataset) if dataset is not None else None
    if target is not None:
        datasets.ensure_can_change(actor, target)
    # An upload puts its blob before its transaction begins (tensors.router); otherwise it is put here.
    stored = staged.stored or store.put_file(new_object_key(), staged.path)
    key = stored.key
    try:
        tensor = Tensor(
            name=name, description=description, shape=list(staged.shape), ndim=len(staged.shape),
            shape_key=shape_key(staged.shape), dtype=staged.dtype, size_bytes=stored.size, sha256=stored.sha256,
            visibility=str(visibility), columns=staged.columns, object_key=key, uploader_id=actor.id,
        )
        session.add(tensor)
        session.flush()
        for tag in sorted(set(tags)):
            session.add(TensorTag(tensor_id=tensor.id, tag=tag))
        _grant_uploader(session, actor=actor, tensor=tensor)
        audit.record(session, actor=actor, action="tensor.uploaded", target_type="tensor", target_id=tensor.id,
                     details={"name": name, "dtype": staged.dtype, "shape": list(staged.shape),
                              "sha256": stored.sha256, "visibility": str(visibility)})
        if target is not None:
            datasets.set_member(session, actor=actor, dataset=target, role=role or name, tensor=tensor)
        session.flush()
    except BaseException:
        store.delete(key)
        raise
    return tensor


def new_object_key() -> str:
    return f"{OBJECT_PREFIX}{uuid.uuid4().hex}.safetensors"


def _grant_uploader(session: Session, *, actor: Actor, tensor: Tensor) -> None:
    """The uploader may download what they uploaded: an ordinary user-on-tensor grant, visible in
    ``permissions list`` and revocable like any other (the resolution order itself has no owner rule)."""
    permissions.put_grant(session, actor=actor, subject_type="user", subject_id=actor.id, target_type="tensor",
                          target_id=tensor.id, level=Level.download)


def discard_blob(store: ObjectStore, key: str) -> None:
    store.delete(key)


def update_tensor(session: Session, *, actor: Actor, tensor_id: int, name: str | None = None,
                  description: str | None = None, visibility: Visibility | None = None) -> Tensor:
    tensor = get_tensor(session, tensor_id)
    ensure_can_change(actor, tensor)
    changes: dict[str, object] = {}
    if name is not None and name != tensor.name:
        changes["name"] = [tensor.name, name]
        tensor.name = name
    if description is not None and description != tensor.description:
        changes["description"] = "changed"
        tensor.description = description
    if visibility is not None and str(visibility) != tensor.visibility:
        changes["visibility"] = [tensor.visibility, str(visibility)]
        tensor.visibility = str(visibility)
    if changes:
        audit.record(session, actor=actor, action="tensor.updated", target_type="tensor", target_id=tensor.id,
                     details=changes)
    session.flush()
    return tensor


def add_tag(session: Session, *, actor: Actor, tensor_id: int, tag: str) -> Tensor:
    tensor = get_tensor(session, tensor_id)
    ensure_can_change(actor, tensor)
    if session.get(TensorTag, (tensor_id, tag)) is None:
        session.add(TensorTag(tensor_id=tensor_id, tag=tag))
        audit.record(session, actor=actor, action="tensor.tagged", target_type="tensor", target_id=tensor_id,
                     details={"tag": tag})
        session.flush()
    return tensor


def remove_tag(session: Session, *, actor: Actor, tensor_id: int, tag: str) -> Tensor:
    tensor = get_tensor(session, tensor_id)
    ensure_can_change(actor, tensor)
    row = session.get(TensorTag, (tensor_id, tag))
    if row is None:
        raise NotFound(f"tensor {tensor_id} has no tag {tag!r}", details={"tensor_id": tensor_id, "tag": tag})
    session.delete(row)
    audit.record(session, actor=actor, action="tensor.untagged", target_type="tensor", target_id=tensor_id,
                 details={"tag": tag})
    session.flush()
    return tensor


def delete_tensor(session: Session, *, actor: Actor, tensor_id: int) -> str:
    """Delete the row (its tags, dataset memberships and grants go with it); returns the blob's key, which
    the caller removes from the store once the deletion has committed."""
    tensor = get_tensor(session, tensor_id)
    ensure_can_change(actor, tensor)
    key = tensor.object_key
    audit.record(session, actor=actor, action="tensor.deleted", target_type="tensor", target_id=tensor_id,
                 details={"name": tensor.name, "sha256": tensor.sha256})
    from grid_runtime.node.requests.service import cancel_for_deleted_target  # requests import this module

    cancel_for_deleted_target(session, target_type="tensor", target_id=tensor_id)
    session.delete(tensor)
    session.flush()
    return key


def record_download(session: Session, *, actor: Actor, tensor: Tensor) -> None:
    audit.record(session, actor=actor, action="tensor.downloaded", target_type="tensor", target_id=tensor.id,
                 details={"sha256": tensor.sha256})


# ---------------------------------------------------------------------------------------------------- search


@dataclass
class TensorQuery:
    """What a search asks for. Every filter narrows the result; text matches word prefixes in the name and
    description (all words must match)."""

    text: str | None = None
    tags: list[str] = field(default_factory=list)
    tags_mode: str = "all"  # "all" | "any"
    dataset: str | None = None
    visibility: Visibility | None = None
    dtype: str | None = None
    shape: str | None = None  # "60000,784"; "*" stands for any one dimension: "*,784"
    uploader_id: int | None = None
    sort: str = "-created_at"
    limit: int = 50
    offset: int = 0


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)][:16]


def _full_text_filter(session: Session, words: list[str]) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        match = " AND ".join(f'"{w}"*' for w in words)
        ids = sql_text("SELECT rowid FROM tensors_fts WHERE tensors_fts MATCH :fts_match").bindparams(
            fts_match=match).columns(literal_column("rowid"))
        return Tensor.id.in_(ids)
    if dialect == "postgresql":
        # The expression repeats the GIN index's (migration 0002) verbatim so the planner uses the index.
        vector: Any = literal_column("to_tsvector('simple', tensors.name || ' ' || tensors.description)")
        query = func.to_tsquery(literal_column("'simple'"), " & ".join(f"{w}:*" for w in words))
        return vector.op("@@")(query)
    # Other backends: a plain substring match on every word.
    return and_(*[or_(Tensor.name.ilike(f"%{w}%"), Tensor.description.ilike(f"%{w}%")) for w in words])


def _shape_filter(shape: str) -> list[Any]:
    dims = [d.strip() for d in shape.replace("x", ",").split(",")] if shape.strip() else []
    if not all(_DIM.match(d) for d in dims):
        raise InvalidInput(f"shape {shape!r} must be dimensions separated by commas, each a number or '*' "
                           "(e.g. '60000,784' or '*,784')", details={"shape": shape})
    if "*" not in dims:
        return [Tensor.shape_key == shape_key([int(d) for d in dims])]
    # With the number of dimensions fixed and every stored dimension non-empty, each '%' matches exactly one
    # dimension ('%' never spans a ',' without leaving another slot empty).
    pattern = "," + "".join(("%" if d == "*" else d) + "," for d in dims)
    return [Tensor.ndim == len(dims), Tensor.shape_key.like(pattern)]


def _conditions(session: Session, query: TensorQuery) -> list[Any]:
    conditions: list[Any] = []
    if query.text and (words := _words(query.text)):
        conditions.append(_full_text_filter(session, words))
    tags = sorted(set(query.tags))
    if tags:
        tagged = select(TensorTag.tensor_id).where(TensorTag.tag.in_(tags))
        if query.tags_mode == "all" and len(tags) > 1:
            tagged = tagged.group_by(TensorTag.tensor_id).having(func.count() == len(tags))
        conditions.append(Tensor.id.in_(tagged))
    if query.dataset is not None:
        dataset = datasets.get_dataset(session, query.dataset)
        conditions.append(Tensor.id.in_(datasets.member_ids(dataset.id)))
    if query.visibility is not None:
        conditions.append(Tensor.visibility == str(query.visibility))
    if query.dtype is not None:
        if query.dtype not in DTYPES:
            raise InvalidInput(f"unknown dtype {query.dtype!r}; known: {', '.join(sorted(DTYPES))}",
                               details={"dtype": query.dtype})
        conditions.append(Tensor.dtype == query.dtype)
    if query.shape is not None:
        conditions.extend(_shape_filter(query.shape))
    if query.uploader_id is not None:
        conditions.append(Tensor.uploader_id == query.uploader_id)
    return conditions


_ORDER = {"created_at": Tensor.created_at, "name": Tensor.name, "size": Tensor.size_bytes}


def search(session: Session, *, query: TensorQuery) -> tuple[list[Row[Any]], int]:
    """One page of matching tensors (rows of ``OUT_COLUMNS``) in the asked order, and the number of matches in
    all."""
    if query.tags_mode not in ("all", "any"):
        raise InvalidInput("tags_mode must be 'all' or 'any'", details={"tags_mode": query.tags_mode})
    if query.sort.lstrip("-") not in _ORDER:
        raise InvalidInput(f"unknown sort {query.sort!r}; use one of created_at, name, size (prefix '-' for "
                           "descending)", details={"sort": query.sort})
    conditions = _conditions(session, query)
    if not conditions:  # the plain listing: statements built once
        total = int(session.scalar(_COUNT_ALL) or 0)
        if query.offset >= total:
            return [], total
        rows = session.execute(_unfiltered_page(query.sort), {"limit": query.limit, "offset": query.offset})
        return list(rows), total
    total = int(session.scalar(select(func.count()).select_from(Tensor).where(*conditions)) or 0)
    if query.offset >= total:
        return [], total
    order = _order(query.sort)
    if session.get_bind().dialect.name == "sqlite" and _walk_the_order_index(session, query, total):
        page = select(Tensor.id).where(*conditions).order_by(*order).limit(query.limit).offset(query.offset)
        ids = _ids_walking_index(session, page, _ORDER_INDEX[query.sort.lstrip("-")])
        by_id = {row.id: row for row in session.execute(select(*OUT_COLUMNS).where(Tensor.id.in_(ids)))}
        return [by_id[i] for i in ids], total
    rows = session.execute(select(*OUT_COLUMNS).where(*conditions).order_by(*order).limit(query.limit)
                           .offset(query.offset))
    return list(rows), total


_COUNT_ALL = select(func.count()).select_from(Tensor.__table__)


def _order(sort: str) -> list[Any]:
    """The ORDER BY of a sort key (checked by ``search``): its column, then the id, both in its direction."""
    column = _ORDER[sort.lstrip("-")]
    return [column.desc(), Tensor.id.desc()] if sort.startswith("-") else [column.asc(), Tensor.id.asc()]


@functools.cache
def _unfiltered_page(sort: str) -> Select[Any]:
    """A page of every tensor in the order of ``sort``, the limit and offset bound at execution."""
    table = Tensor.__table__
    column, tie = table.c[_ORDER[sort.lstrip("-")].key], table.c.id
    order = [column.desc(), tie.desc()] if sort.startswith("-") else [column.asc(), tie.asc()]
    return (select(*OUT_COLUMNS).order_by(*order).limit(bindparam("limit", type_=Integer))
            .offset(bindparam("offset", type_=Integer)))


_ORDER_INDEX = {"created_at": "ix_tensors_created_at", "name": "ix_tensors_name", "size": "ix_tensors_size_bytes"}


def _walk_the_order_index(session: Session, query: TensorQuery, total: int) -> bool:
    """Whether walking the sort column's index (testing each row against the filters) beats sorting every hit.

    SQLite's planner drives from the filter and sorts all hits, which is slow when a filter matches tens of
    thousands of rows. Walking the index in order visits about (offset + limit) x all / hits rows, sorting
    costs about ``hits``: walk when that is the smaller. (PostgreSQL's planner weighs this itself.)
    """
    if total < 1000:
        return False
    everything = int(session.scalar(select(func.count()).select_from(Tensor)) or 0)
    return (query.offset + query.limit) * everything < total * total


def _ids_walking_index(session: Session, page: Any, index: str) -> list[int]:
    # SQLAlchemy renders no table hints for SQLite, so add "INDEXED BY" to the compiled statement's main FROM.
    compiled = page.compile(dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True})
    sql, count = re.subn(r"\bFROM tensors\b", f"FROM tensors INDEXED BY {index}", str(compiled), count=1)
    assert count == 1, sql
    params = tuple(compiled.params[name] for name in compiled.positiontup or ())
    return [row[0] for row in session.connection().exec_driver_sql(sql, params)]
