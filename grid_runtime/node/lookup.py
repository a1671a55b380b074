"""Lookups below the services: get a row by id or reference, or raise NotFound. They read models only, so
any service (and ``flows``) may use them without importing another service.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from grid_runtime.core.errors import InvalidInput, NotFound
from grid_runtime.core.schemas import as_id
from grid_runtime.node.datasets.models import Dataset, DatasetMember
from grid_runtime.node.jobs.models import Job, Result
from grid_runtime.node.requests.models import Request
from grid_runtime.node.tensors.models import Tensor
from grid_runtime.node.users.models import User

_Row = TypeVar("_Row")


def _by_id(session: Session, model: type[_Row], noun: str, row_id: int) -> _Row:
    found = session.get(model, row_id)
    if found is None:
        raise NotFound(f"no {noun} with id {row_id}", details={f"{noun}_id": row_id})
    return found


def job(session: Session, job_id: int) -> Job:
    return _by_id(session, Job, "job", job_id)


def result(session: Session, result_id: int) -> Result:
    return _by_id(session, Result, "result", result_id)


def result_of_job(session: Session, job_id: int) -> Result | None:
    return session.scalar(select(Result).where(Result.job_id == job_id))


def tensor(session: Session, tensor_id: int) -> Tensor:
    return _by_id(session, Tensor, "tensor", tensor_id)


def user(session: Session, user_id: int) -> User:
    return _by_id(session, User, "user", user_id)


def dataset(session: Session, ref: str | int) -> Dataset:
    """A dataset by id (digits) or name, or NotFound."""
    text = str(ref).strip()
    dataset_id = as_id(text)
    found = session.get(Dataset, dataset_id) if dataset_id is not None else session.scalar(
        select(Dataset).where(Dataset.name == text))
    if found is None:
        raise NotFound(f"no dataset {text!r}", details={"dataset": text})
    return found


def member(session: Session, of: Dataset, role: str) -> Tensor:
    """The tensor holding ``role`` in a dataset, or InvalidInput naming the roles it has."""
    row = session.get(DatasetMember, (of.id, role))
    if row is None:
        roles = session.scalars(select(DatasetMember.role).where(DatasetMember.dataset_id == of.id))
        raise InvalidInput(f"dataset {of.name!r} has no member {role!r}; members: "
                           f"{', '.join(sorted(roles)) or 'none'}", details={"member": role})
    return tensor(session, row.tensor_id)


def datasets_holding(session: Session, tensor_ids: Iterable[int]) -> list[int]:
    """The ids of every dataset that holds one of these tensors, ascending ("caps follow the data")."""
    ids = sorted(set(tensor_ids))
    if not ids:
        return []
    return sorted(set(session.scalars(select(DatasetMember.dataset_id).where(DatasetMember.tensor_id.in_(ids)))))


def request(session: Session, request_id: int, *, for_update: bool = False) -> Request:
    """The request, or NotFound. ``for_update`` locks its row until the transaction ends."""
    query = select(Request).where(Request.id == request_id).execution_options(populate_existing=True)
    if for_update:
        query = query.with_for_update(of=Request)
    found = session.scalar(query)
    if found is None:
        raise NotFound(f"no request with id {request_id}")
    return found
