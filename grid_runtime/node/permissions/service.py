"""Grants, denies and how they resolve to a user's effective level on a tensor or dataset.

Resolution (docs: domain guide, "Data and permissions"). The most specific rule that has any grant wins,
in this order:

1. ``user_on_tensor``    a grant to the user on the tensor itself;
2. ``user_on_dataset``   grants to the user on datasets that contain the tensor;
3. ``group_on_tensor``   grants on the tensor to groups the user belongs to;
4. ``group_on_dataset``  grants to the user's groups on datasets that contain the tensor;
5. ``visibility``        the object's own visibility: public -> download, private -> search.

Among several grants at one step (several groups, several datasets holding the tensor) a deny wins,
otherwise the highest level. For a dataset target the tensor steps (1 and 3) do not exist. ``deny`` means
nothing beyond search: every authenticated user may always search metadata.

``effective_levels`` resolves a whole page of tensors in a constant number of queries (three); the single
``effective_level`` goes through the same loader and the same decision function, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.errors import Forbidden, InvalidInput, NotFound
from grid_runtime.core.levels import Level, Visibility
from grid_runtime.core.schemas import as_id
from grid_runtime.node.audit import service as audit
from grid_runtime.node.datasets.models import Dataset, DatasetMember
from grid_runtime.node.groups.models import Group, GroupMember
from grid_runtime.node.permissions.models import Grant
from grid_runtime.node.tensors.models import Tensor
from grid_runtime.node.users.models import User

if TYPE_CHECKING:
    from grid_runtime.node.deps import Actor

TARGET_TYPES = ("tensor", "dataset")
SUBJECT_TYPES = ("user", "group")
RULES = ("user_on_tensor", "user_on_dataset", "group_on_tensor", "group_on_dataset", "visibility")


@dataclass(frozen=True)
class Decision:
    """The effective level of one user on one target, and which rule decided it."""

    level: Level  # deny means: nothing beyond search
    rule: str  # one of RULES
    grant_id: int | None  # the deciding grant, if a grant decided
    explanation: str  # one sentence for people


@dataclass(frozen=True)
class _Candidate:
    """A grant that applies to the user at one step; ``via`` names the group or dataset it came through."""

    rule: str
    grant_id: int
    level: Level
    via: str


@dataclass
class _Facts:
    """Everything the decision needs for one target."""

    target_type: str
    target_id: int
    visibility: Visibility
    candidates: list[_Candidate]


# --- resolution ---------------------------------------------------------------------------------------


def _user_groups(user_id: int) -> Select[Any]:
    return select(GroupMember.group_id).where(GroupMember.user_id == user_id)


def _load_tensor_facts(session: Session, *, user_id: int, tensor_ids: Sequence[int]) -> dict[int, _Facts]:
    """Three queries whatever the number of tensors: visibility, grants on the tensors, grants on their
    datasets (both filtered to the user and their groups in SQL)."""
    ids = sorted(set(tensor_ids))
    if not ids:
        return {}
    facts = {
        tensor_id: _Facts("tensor", tensor_id, Visibility(visibility), [])
        for tensor_id, visibility in session.execute(
            select(Tensor.id, Tensor.visibility).where(Tensor.id.in_(ids))
        )
    }
    if not facts:
        return facts
    applies_to_user = or_(Grant.user_id == user_id, Grant.group_id.in_(_user_groups(user_id)))
    on_tensors = (
        select(Grant.tensor_id, Grant.id, Grant.user_id, Grant.level, Group.name)
        .outerjoin(Group, Group.id == Grant.group_id)
        .where(Grant.tensor_id.in_(list(facts)), applies_to_user)
    )
    for tensor_id, grant_id, grant_user, level, group_name in session.execute(on_tensors):
        assert tensor_id is not None  # filtered by the query
        if grant_user is not None:
            facts[tensor_id].candidates.append(_Candidate("user_on_tensor", grant_id, Level(level), ""))
        else:
            facts[tensor_id].candidates.append(
                _Candidate("group_on_tensor", grant_id, Level(level), f"group {group_name!r}")
            )
    on_datasets = (
        select(DatasetMember.tensor_id, Grant.id, Grant.user_id, Grant.level, Dataset.name, Group.name)
        .join(Grant, Grant.dataset_id == DatasetMember.dataset_id)
        .join(Dataset, Dataset.id == DatasetMember.dataset_id)
        .outerjoin(Group, Group.id == Grant.group_id)
        .where(DatasetMember.tensor_id.in_(list(facts)), applies_to_user)
        .distinct()  # a tensor may sit in one dataset under several roles
    )
    for tensor_id, grant_id, grant_user, level, dataset_name, group_name in session.execute(on_datasets):
        if grant_user is not None:
            via = f"dataset {dataset_name!r}"
            facts[tensor_id].candidates.append(_Candidate("user_on_dataset", grant_id, Level(level), via))
        else:
            via = f"group {group_name!r} on dataset {dataset_name!r}"
            facts[tensor_id].candidates.append(_Candidate("group_on_dataset", grant_id, Level(level), via))
    return facts


def _load_dataset_facts(session: Session, *, user_id: int, dataset_id: int) -> _Facts:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound(f"no dataset with id {dataset_id}")
    facts = _Facts("dataset", dataset_id, Visibility(dataset.visibility), [])
    rows = session.execute(
        select(Grant.id, Grant.user_id, Grant.level, Group.name)
        .outerjoin(Group, Group.id == Grant.group_id)
        .where(Grant.dataset_id == dataset_id,
               or_(Grant.user_id == user_id, Grant.group_id.in_(_user_groups(user_id))))
    )
    for grant_id, grant_user, level, group_name in rows:
        if grant_user is not None:
            facts.candidates.append(_Candidate("user_on_dataset", grant_id, Level(level), ""))
        else:
            facts.candidates.append(_Candidate("group_on_dataset", grant_id, Level(level), f"group {group_name!r}"))
    return facts


def _pick(candidates: list[_Candidate]) -> tuple[_Candidate, str]:
    """Among grants at one step: a deny wins, otherwise the highest level (ties: the oldest grant)."""
    denies = sorted((c for c in candidates if c.level is Level.deny), key=lambda c: c.grant_id)
    if denies:
        return denies[0], "a deny wins"
    best = max(candidates, key=lambda c: (c.level.rank, -c.grant_id))
    return best, "the highest level wins"


def _decide(facts: _Facts) -> Decision:
    target = f"{facts.target_type} {facts.target_id}"
    for rule in RULES[:-1]:
        at_step = [c for c in facts.candidates if c.rule == rule]
        if not at_step:
            continue
        chosen, why = _pick(at_step)
        subject = "the user" if rule.startswith("user") else "a group of the user"
        where = f" via {chosen.via}" if chosen.via else ""
        sentence = f"grant {chosen.grant_id} gives {subject} {chosen.level} on {target}{where}"
        if len(at_step) > 1:
            sentence += f"; among {len(at_step)} grants at this step ({rule}) {why}"
        return Decision(level=chosen.level, rule=rule, grant_id=chosen.grant_id, explanation=sentence)
    level = Level.download if facts.visibility is Visibility.public else Level.search
    return Decision(
        level=level, rule="visibility", grant_id=None,
        explanation=f"no grant applies; {target} is {facts.visibility}, so the default is {level}",
    )


def effective_level(session: Session, *, user_id: int, target_type: str, target_id: int) -> Decision:
    """The user's effective level on a tensor or dataset and the rule that decided it (NotFound if the
    target does not exist)."""
    if target_type == "tensor":
        facts = _load_tensor_facts(session, user_id=user_id, tensor_ids=[target_id]).get(target_id)
        if facts is None:
            raise NotFound(f"no tensor with id {target_id}")
    elif target_type == "dataset":
        facts = _load_dataset_facts(session, user_id=user_id, dataset_id=target_id)
    else:
        raise InvalidInput(f"target_type must be 'tensor' or 'dataset', not {target_type!r}")
    return _decide(facts)


def effective_levels(session: Session, *, user_id: int, tensor_ids: Sequence[int]) -> dict[int, Level]:
    """The same resolution for many tensors in a constant number of queries. Unknown ids are left out."""
    facts = _load_tensor_facts(session, user_id=user_id, tensor_ids=tensor_ids)
    return {tensor_id: _decide(f).level for tensor_id, f in facts.items()}


def allows(have: Level, needed: Level) -> bool:
    """Whether ``have`` is enough for ``needed``. Search is always allowed: a deny keeps metadata visible."""
    return needed is Level.search or (have is not Level.deny and have.allows(needed))


def require_level(
    session: Session, *, actor: Actor, target_type: str, target_id: int, needed: Level
) -> Decision:
    """The actor's decision on the target, or Forbidden naming the needed level, theirs and how to ask."""
    decision = effective_level(session, user_id=actor.id, target_type=target_type, target_id=target_id)
    if allows(decision.level, needed):
        return decision
    why = f"visibility: {_visibility_word(decision)}" if decision.rule == "visibility" else \
        f"{decision.rule}, grant {decision.grant_id}"
    raise Forbidden(
        f"this needs {needed} on {target_type} {target_id}; you have {decision.level} ({why}). "
        f"Ask for it with 'gridctl requests ask access --{target_type} {target_id} --level {needed} "
        f"--reason ...', or ptr.request_access('{needed}', reason) in the SDK",
        details={"needed": str(needed), "have": str(decision.level), "rule": decision.rule,
                 "grant_id": decision.grant_id, "target_type": target_type, "target_id": target_id},
    )


def _visibility_word(decision: Decision) -> str:
    return "public" if decision.level is Level.download else "private"


# --- grants -------------------------------------------------------------------------------------------


def resolve_user(session: Session, ref: str | int) -> User:
    """A user by id or email."""
    text = str(ref).strip()
    user_id = as_id(text)
    user = session.get(User, user_id) if user_id is not None else \
        session.scalar(select(User).where(User.email == text.lower()))
    if user is None:
        raise NotFound(f"no user {text!r} (give an id or an email)")
    return user


def resolve_group(session: Session, ref: str | int) -> Group:
    """A group by id or name."""
    text = str(ref).strip()
    group_id = as_id(text)
    group = session.get(Group, group_id) if group_id is not None else \
        session.scalar(select(Group).where(Group.name == text))
    if group is None:
        raise NotFound(f"no group {text!r} (give an id or a name)")
    return group


def check_target(session: Session, *, target_type: str, target_id: int) -> None:
    """NotFound unless the tensor or dataset exists."""
    model = {"tensor": Tensor, "dataset": Dataset}.get(target_type)
    if model is None:
        raise InvalidInput(f"target_type must be 'tensor' or 'dataset', not {target_type!r}")
    if session.get(model, target_id) is None:
        raise NotFound(f"no {target_type} with id {target_id}")


def _subject_and_target(subject_type: str, subject_id: int, target_type: str, target_id: int) -> dict[str, int]:
    return {"user_id" if subject_type == "user" else "group_id": subject_id,
            "tensor_id" if target_type == "tensor" else "dataset_id": target_id}


def find_grant(
    session: Session, *, subject_type: str, subject_id: int, target_type: str, target_id: int,
    for_update: bool = False,
) -> Grant | None:
    query = select(Grant).filter_by(**_subject_and_target(subject_type, subject_id, target_type, target_id))
    if for_update:
        query = query.with_for_update()
    return session.scalar(query)


def put_grant(
    session: Session, *, actor: Actor | None, subject_type: str, subject_id: int, target_type: str,
    target_id: int, level: Level, only_raise: bool = False, via_request: int | None = None,
) -> Grant:
    """Create the subject's grant on the target or replace its level (one grant per subject and target).

    ``only_raise``: keep an existing grant that is already at least ``level`` (an approved access request
    raises a grant, never lowers it; a deny counts as the lowest). Audited as ``permission.granted``.
    """
    grant = find_grant(session, subject_type=subject_type, subject_id=subject_id, target_type=target_type,
                       target_id=target_id, for_update=True)
    previous = Level(grant.level) if grant else None
    if grant is None:
        grant = Grant(**_subject_and_target(subject_type, subject_id, target_type, target_id),
                      level=str(level), created_by=actor.id if actor else None)
        try:
            with session.begin_nested():
                session.add(grant)
        except IntegrityError:  # a concurrent grant for the same subject and target won the insert
            grant = find_grant(session, subject_type=subject_type, subject_id=subject_id,
                               target_type=target_type, target_id=target_id, for_update=True)
            if grant is None:
                raise
            previous = Level(grant.level)
    if previous is not None:
        if only_raise and previous.rank >= level.rank:
            return grant
        grant.level = str(level)
        grant.created_by = actor.id if actor else grant.created_by
    session.flush()
    details: dict[str, object] = {
        "subject_type": subject_type, "subject_id": subject_id, "target_type": target_type,
        "target_id": target_id, "level": str(level), "previous_level": str(previous) if previous else None,
    }
    if via_request is not None:
        details["request_id"] = via_request
    audit.record(session, actor=actor, action="permission.granted", target_type="grant", target_id=grant.id,
                 details=details)
    return grant


def grant(
    session: Session, *, actor: Actor, subject_type: str, subject: str | int, target_type: str,
    target_id: int, level: Level,
) -> Grant:
    """Grant ``level`` (or a deny) to a user or group on a tensor or dataset; replaces an earlier level."""
    if subject_type == "user":
        subject_id = resolve_user(session, subject).id
    elif subject_type == "group":
        subject_id = resolve_group(session, subject).id
    else:
        raise InvalidInput(f"subject_type must be 'user' or 'group', not {subject_type!r}")
    check_target(session, target_type=target_type, target_id=target_id)
    return put_grant(session, actor=actor, subject_type=subject_type, subject_id=subject_id,
                     target_type=target_type, target_id=target_id, level=level)


def revoke(session: Session, *, actor: Actor, grant_id: int) -> None:
    """Delete a grant; the subject falls back to the next rule in the resolution order."""
    row = session.scalar(select(Grant).where(Grant.id == grant_id).with_for_update())
    if row is None:
        raise NotFound(f"no grant with id {grant_id}")
    details = {"subject_type": row.subject_type, "subject_id": row.subject_id, "target_type": row.target_type,
               "target_id": row.target_id, "level": row.level}
    session.delete(row)
    session.flush()
    audit.record(session, actor=actor, action="permission.revoked", target_type="grant", target_id=grant_id,
                 details=details)


def list_grants(
    session: Session, *, actor: Actor, target_type: str | None = None, target_id: int | None = None,
    subject_type: str | None = None, subject: str | int | None = None, limit: int = 50, offset: int = 0,
) -> tuple[list[Grant], int]:
    """Grants matching the filters. Without manage_permissions, only the grants that apply to the actor
    (to them, or to a group they belong to)."""
    query = select(Grant)
    if target_type is not None:
        if target_type not in TARGET_TYPES:
            raise InvalidInput(f"target_type must be 'tensor' or 'dataset', not {target_type!r}")
        column = Grant.tensor_id if target_type == "tensor" else Grant.dataset_id
        query = query.where(column.is_not(None) if target_id is None else column == target_id)
    elif target_id is not None:
        raise InvalidInput("target_id needs target_type")
    if subject is not None and subject_type is None:
        raise InvalidInput("subject needs subject_type")
    if subject_type is not None:
        if subject_type not in SUBJECT_TYPES:
            raise InvalidInput(f"subject_type must be 'user' or 'group', not {subject_type!r}")
        column = Grant.user_id if subject_type == "user" else Grant.group_id
        if subject is None:
            query = query.where(column.is_not(None))
        else:
            try:
                found = resolve_user(session, subject) if subject_type == "user" else resolve_group(session, subject)
            except NotFound:
                if actor.can(Capability.manage_permissions):
                    raise
                return [], 0  # the same answer as for a subject whose grants are not yours to see (issue 11)
            query = query.where(column == found.id)
    if not actor.can(Capability.manage_permissions):
        query = query.where(or_(Grant.user_id == actor.id, Grant.group_id.in_(_user_groups(actor.id))))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Grant.id).limit(limit).offset(offset))
    return list(rows), total


def explain(session: Session, *, actor: Actor, user: str | int | None, target_type: str, target_id: int) -> tuple[
    User, Decision
]:
    """Why a user has the level they have on a target. Anyone for themselves; for others the caller needs
    manage_permissions (or triage_requests: officers deciding access requests need the answer too)."""
    # Decided before the lookup: "no such user" and "not yours" get the same answer (issue 11).
    if user is not None and not actor.is_named_by(user) and not (
        actor.can(Capability.manage_permissions) or actor.can(Capability.triage_requests)
    ):
        raise Forbidden(
            "explaining another user's level needs the capability manage_permissions or triage_requests",
            details={"missing": [str(Capability.manage_permissions)]},
        )
    subject = actor.user if user is None else resolve_user(session, user)
    return subject, effective_level(session, user_id=subject.id, target_type=target_type, target_id=target_id)


def subject_names(session: Session, grants: Iterable[Grant]) -> dict[tuple[str, int], str]:
    """Display names for the grants' subjects (emails and group names) in two queries."""
    grants = list(grants)
    user_ids = {g.user_id for g in grants if g.user_id is not None}
    group_ids = {g.group_id for g in grants if g.group_id is not None}
    names: dict[tuple[str, int], str] = {}
    if user_ids:
        names.update({("user", i): e for i, e in session.execute(select(User.id, User.email).where(
            User.id.in_(user_ids)))})
    if group_ids:
        names.update({("group", i): n for i, n in session.execute(select(Group.id, Group.name).where(
            Group.id.in_(group_ids)))})
    return names


__all__ = [
    "RULES", "Decision", "allows", "check_target", "effective_level", "effective_levels", "explain", "grant",
    "list_grants", "put_grant", "require_level", "revoke",
]
