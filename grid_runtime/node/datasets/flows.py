"""What crosses the tensors and datasets domains in one transaction: a dataset made from one CSV."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from grid_runtime.core.levels import Visibility
from grid_runtime.core.storage import ObjectStore
from grid_runtime.node.datasets import service as datasets
from grid_runtime.node.datasets.models import Dataset
from grid_runtime.node.tensors import service as tensors
from grid_runtime.node.tensors.formats import StagedTensor

if TYPE_CHECKING:
    from grid_runtime.node.deps import Actor


def create_from_staged(
    session: Session,
    *,
    actor: Actor,
    store: ObjectStore,
    name: str,
    staged: dict[str, StagedTensor],
    description: str = "",
    tags: Sequence[str] = (),
    visibility: Visibility = Visibility.private,
) -> tuple[Dataset, list[str]]:
    """Store each staged tensor (named ``<dataset>/<role>``) and a dataset holding them under their roles.

    Returns the dataset and the new blobs' keys; if anything fails, the blobs already written are removed.
    """
    datasets.ensure_unique_name(session, name)
    keys: list[str] = []
    try:
        members: dict[str, int] = {}
        for role, tensor_staged in staged.items():
            tensor = tensors.store_tensor(session, actor=actor, store=store, staged=tensor_staged,
                                          name=f"{name}/{role}", description=description, tags=tags,
                                          visibility=visibility)
            keys.append(tensor.object_key)
            members[role] = tensor.id
        dataset = datasets.create_dataset(session, actor=actor, name=name, description=description, tags=tags,
                                          visibility=visibility, members=members)
    except BaseException:
        for key in keys:
            store.delete(key)
        raise
    return dataset, keys
