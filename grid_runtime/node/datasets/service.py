"""Datasets: named collections of tensors (``features``, ``labels``...), with owner-declared bounds.

Who may change a dataset: its owner while they hold ``upload_data``, and holders of ``manage_permissions``.
A dataset may only collect tensors its owner uploaded (unless the actor holds ``manage_permissions``):
grants on a dataset reach every tensor in it, so adding someone else's tensor would hand out access to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.errors import AlreadyExists, Forbidden, InvalidInput, NotFound
from grid_runtime.core.levels import Level, Visibility
from grid_runtime.core.schemas import as_id
from grid_runtime.node.audit import service as audit
from grid_runtime.node.datasets.models import Dataset, DatasetMember
from grid_runtime.node.datasets.schemas import ColumnBounds, DatasetOut, MemberOut
from grid_runtime.node.permissions import service as permissions
from grid_runtime.node.tensors.models import Tensor

if TYPE_CHECKING:
    from grid_runtime.node.deps import Actor


def get_dataset(session: Session, ref: str | int) -> Dataset:
    """A dataset by id (digits) or name, or NotFound."""
    text = str(ref).strip()
    dataset_id = as_id(text)
    dataset = session.get(Dataset, dataset_id) if dataset_id is not None else session.scalar(
        select(Dataset).where(Dataset.name == text))
    if dataset is None:
        raise NotFound(f"no dataset {text!r}", details={"dataset": text})
    return dataset


def member_ids(dataset_id: int) -> Select[Any]:
    return select(DatasetMember.tensor_id).where(DatasetMember.dataset_id == dataset_id)


def ensure_can_change(actor: Actor, dataset: Dataset) -> None:
    if actor.can(Capability.manage_permissions):
        return
    if actor.can(Capability.upload_data) and dataset.owner_id == actor.id:
        return
    raise Forbidden(f"only the owner of dataset {dataset.name!r} (holding upload_data) or a holder of "
                    "manage_permissions may change it", details={"dataset": dataset.name})


def _ensure_can_include(actor: Actor, tensor: Tensor) -> None:
    if actor.can(Capability.manage_permissions) or tensor.uploader_id == actor.id:
        return
    raise Forbidden(f"tensor {tensor.id} was uploaded by someone else; a dataset collects its owner's tensors "
                    "(grants on the dataset would reach it)", details={"tensor_id": tensor.id})


def _tensor(session: Session, tensor_id: int) -> Tensor:
    tensor = session.get(Tensor, tensor_id)
    if tensor is None:
        raise NotFound(f"no tensor with id {tensor_id}", details={"tensor_id": tensor_id})
    return tensor


def _columns(tensor: Tensor) -> int:
    return int(tensor.shape[-1]) if len(tensor.shape) >= 2 else 1


def _checked_bounds(session: Session, dataset: Dataset, bounds: Mapping[str, ColumnBounds]) -> dict[str, Any]:
    members = {m.role: m.tensor_id for m in _members(session, dataset.id)}
    checked: dict[str, Any] = {}
    for role, bound in bounds.items():
        if role not in members:
            raise InvalidInput(f"dataset {dataset.name!r} has no member {role!r} to bound; members: "
                               f"{', '.join(sorted(members)) or 'none'}", details={"role": role})
        width = _columns(_tensor(session, members[role]))
        for side in ("lower", "upper"):
            value = getattr(bound, side)
            if isinstance(value, list) and len(value) != width:
                raise InvalidInput(f"bounds for {role!r}: {side} has {len(value)} values, the tensor has {width} "
                                   "column(s)", details={"role": role, "side": side, "columns": width})
        checked[role] = bound.model_dump()
    return checked


def _members(session: Session, dataset_id: int) -> list[DatasetMember]:
    return list(session.scalars(select(DatasetMember).where(DatasetMember.dataset_id == dataset_id)
                                .order_by(DatasetMember.role)))


def to_out(session: Session, dataset: Dataset, *, user_id: int | None = None) -> DatasetOut:
    rows = session.execute(
        select(DatasetMember.role, Tensor.id, Tensor.name, Tensor.dtype, Tensor.shape)
        .join(Tensor, Tensor.id == DatasetMember.tensor_id)
        .where(DatasetMember.dataset_id == dataset.id).order_by(DatasetMember.role))
    members = [MemberOut(role=r, tensor_id=i, name=n, dtype=d, shape=s) for r, i, n, d, s in rows]
    level = None
    if user_id is not None:
        from grid_runtime.node.permissions.service import effective_level

        level = effective_level(session, user_id=user_id, target_type="dataset", target_id=dataset.id).level
    return DatasetOut(id=dataset.id, name=dataset.name, description=dataset.description, tags=list(dataset.tags),
                      visibility=Visibility(dataset.visibility), bounds=dataset.bounds,
                      label_classes=dataset.label_classes, one_row_per_person=dataset.one_row_per_person,
                      owner_id=dataset.owner_id,
                      created_at=dataset.created_at, members=members, level=level)


def ensure_unique_name(session: Session, name: str, *, except_id: int | None = None) -> None:
    existing = session.scalar(select(Dataset.id).where(Dataset.name == name))
    if existing is not None and existing != except_id:
        raise AlreadyExists(f"a dataset named {name!r} already exists", details={"name": name})


def create_dataset(
    session: Session,
    *,
    actor: Actor,
    name: str,
    description: str = "",
    tags: Sequence[str] = (),
    visibility: Visibility = Visibility.private,
    members: Mapping[str, int] | None = None,
    bounds: Mapping[str, ColumnBounds] | None = None,
    label_classes: int | None = None,
    one_row_per_person: bool = False,
) -> Dataset:
    ensure_unique_name(session, name)
    dataset = Dataset(name=name, description=description, tags=sorted(set(tags)), visibility=str(visibility),
                      bounds={}, owner_id=actor.id, label_classes=label_classes,
                      one_row_per_person=one_row_per_person)
    session.add(dataset)
    session.flush()
    # Its owner may download it: an ordinary, revocable user-on-dataset grant.
    permissions.put_grant(session, actor=actor, subject_type="user", subject_id=actor.id, target_type="dataset",
                          target_id=dataset.id, level=Level.download)
    for role, tensor_id in (members or {}).items():
        tensor = _tensor(session, tensor_id)
        _ensure_can_include(actor, tensor)
        session.add(DatasetMember(dataset_id=dataset.id, role=role, tensor_id=tensor.id))
    session.flush()
    if bounds:
        dataset.bounds = _checked_bounds(session, dataset, bounds)
    audit.record(session, actor=actor, action="dataset.created", target_type="dataset", target_id=dataset.id,
                 details={"name": name, "members": dict(members or {}), "visibility": str(visibility),
                          "bounds": dataset.bounds, "label_classes": label_classes,
                          "one_row_per_person": one_row_per_person})
    session.flush()
    return dataset


def update_dataset(session: Session, *, actor: Actor, ref: str, name: str | None = None,
                   description: str | None = None, tags: Sequence[str] | None = None,
                   visibility: Visibility | None = None, label_classes: int | None = None,
                   clear_label_classes: bool = False, one_row_per_person: bool | None = None) -> Dataset:
    """Change a dataset's name, description, tags, visibility or declared metadata (label classes, one row
    per person): what its owner knows of the data, never read from it."""
    dataset = get_dataset(session, ref)
    ensure_can_change(actor, dataset)
    changes: dict[str, Any] = {}
    if name is not None and name != dataset.name:
        ensure_unique_name(session, name, except_id=dataset.id)
        changes["name"] = [dataset.name, name]
        dataset.name = name
    if description is not None and description != dataset.description:
        changes["description"] = "changed"
        dataset.description = description
    if tags is not None and sorted(set(tags)) != list(dataset.tags):
        changes["tags"] = [list(dataset.tags), sorted(set(tags))]
        dataset.tags = sorted(set(tags))
    if visibility is not None and str(visibility) != dataset.visibility:
        changes["visibility"] = [dataset.visibility, str(visibility)]
        dataset.visibility = str(visibility)
    new_classes = None if clear_label_classes else (label_classes if label_classes is not None
                                                    else dataset.label_classes)
    if new_classes != dataset.label_classes:
        changes["label_classes"] = [dataset.label_classes, new_classes]
        dataset.label_classes = new_classes
    if one_row_per_person is not None and one_row_per_person != dataset.one_row_per_person:
        changes["one_row_per_person"] = [dataset.one_row_per_person, one_row_per_person]
        dataset.one_row_per_person = one_row_per_person
    if changes:
        audit.record(session, actor=actor, action="dataset.updated", target_type="dataset", target_id=dataset.id,
                     details=changes)
    session.flush()
    return dataset


def set_member(session: Session, *, actor: Actor, dataset: Dataset, role: str, tensor: Tensor) -> Dataset:
    """Put ``tensor`` in ``dataset`` under ``role``, replacing what held the role (and its bounds, which were
    declared for the old tensor)."""
    ensure_can_change(actor, dataset)
    _ensure_can_include(actor, tensor)
    member = session.get(DatasetMember, (dataset.id, role))
    if member is not None and member.tensor_id == tensor.id:
        return dataset
    if member is None:
        session.add(DatasetMember(dataset_id=dataset.id, role=role, tensor_id=tensor.id))
    else:
        member.tensor_id = tensor.id
        if role in dataset.bounds:
            dataset.bounds = {k: v for k, v in dataset.bounds.items() if k != role}
    audit.record(session, actor=actor, action="dataset.member_set", target_type="dataset", target_id=dataset.id,
                 details={"role": role, "tensor_id": tensor.id})
    session.flush()
    return dataset


def set_member_by_id(session: Session, *, actor: Actor, ref: str, role: str, tensor_id: int) -> Dataset:
    dataset = get_dataset(session, ref)
    ensure_can_change(actor, dataset)
    return set_member(session, actor=actor, dataset=dataset, role=role, tensor=_tensor(session, tensor_id))


def remove_member(session: Session, *, actor: Actor, ref: str, role: str) -> Dataset:
    dataset = get_dataset(session, ref)
    ensure_can_change(actor, dataset)
    member = session.get(DatasetMember, (dataset.id, role))
    if member is None:
        raise NotFound(f"dataset {dataset.name!r} has no member {role!r}", details={"role": role})
    session.delete(member)
    if role in dataset.bounds:
        dataset.bounds = {k: v for k, v in dataset.bounds.items() if k != role}
    audit.record(session, actor=actor, action="dataset.member_removed", target_type="dataset",
                 target_id=dataset.id, details={"role": role, "tensor_id": member.tensor_id})
    session.flush()
    return dataset


def set_bounds(session: Session, *, actor: Actor, ref: str, bounds: Mapping[str, ColumnBounds]) -> Dataset:
    """Replace the dataset's declared bounds (roles not named lose theirs)."""
    dataset = get_dataset(session, ref)
    ensure_can_change(actor, dataset)
    dataset.bounds = _checked_bounds(session, dataset, bounds)
    audit.record(session, actor=actor, action="dataset.bounds_set", target_type="dataset", target_id=dataset.id,
                 details={"bounds": dataset.bounds})
    session.flush()
    return dataset


def delete_dataset(session: Session, *, actor: Actor, ref: str) -> None:
    """Delete the dataset and its memberships; the tensors stay."""
    dataset = get_dataset(session, ref)
    ensure_can_change(actor, dataset)
    audit.record(session, actor=actor, action="dataset.deleted", target_type="dataset", target_id=dataset.id,
                 details={"name": dataset.name})
    from grid_runtime.node.requests.service import cancel_for_deleted_target  # requests import this module

    cancel_for_deleted_target(session, target_type="dataset", target_id=dataset.id)
    session.delete(dataset)
    session.flush()


def list_datasets(session: Session, *, q: str | None, tag: str | None, limit: int, offset: int
                  ) -> tuple[list[Dataset], int]:
    conditions: list[Any] = []
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(Dataset.name.ilike(pattern, escape="\\") | Dataset.description.ilike(pattern, escape="\\"))
    if tag:
        # Dataset tags are a short JSON list each, and datasets are few next to tensors: filter in Python.
        tagged = [d for d in session.scalars(select(Dataset).where(*conditions).order_by(Dataset.name))
                  if tag in d.tags]
        return tagged[offset:offset + limit], len(tagged)
    total = int(session.scalar(select(func.count()).select_from(Dataset).where(*conditions)) or 0)
    page = session.scalars(select(Dataset).where(*conditions).order_by(Dataset.name).limit(limit).offset(offset))
    return list(page), total
