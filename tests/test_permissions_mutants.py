"""Permission resolution and grant management at their edges, written to kill the mutants scripts/mutation found
surviving (docs/mutation.md): what an explanation names, ties, refusals and their details, filters, audit records.

Through the permissions service's public functions on a real database, as the routes call them.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.errors import Forbidden, InvalidInput, NotFound
from grid_runtime.core.levels import Level
from grid_runtime.node.audit.models import AuditEvent
from grid_runtime.node.deps import Actor
from grid_runtime.node.permissions import service as permissions
from grid_runtime.node.users.models import User
from tests.factories import Factory


def actor_of(session: Session, user_id: int) -> Actor:
    user = session.get(User, user_id)
    assert user is not None
    return Actor(user=user, capabilities=frozenset(Capability(c) for c in user.role.capabilities), token_id=0,
                 client_address="test")


def put(factory: Factory, subject_type: str, subject_id: int, target_type: str, target_id: int, level: str,
        **kwargs: Any) -> int:
    with factory.sessions.begin() as session:
        return permissions.put_grant(session, actor=None, subject_type=subject_type, subject_id=subject_id,
                                     target_type=target_type, target_id=target_id, level=Level(level), **kwargs).id


def decide(factory: Factory, user: int, target_type: str, target_id: int) -> permissions.Decision:
    with factory.sessions() as session:
        return permissions.effective_level(session, user_id=user, target_type=target_type, target_id=target_id)


def audits(factory: Factory, action: str) -> list[dict[str, Any]]:
    with factory.sessions() as session:
        return [e.details for e in session.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                                   .order_by(AuditEvent.id))]


class TestExplanations:
    def test_each_rule_names_its_grant_its_subject_and_where_it_came_from(self, factory: Factory) -> None:
        user = factory.user()
        tensor = factory.tensor()
        group = factory.group("readers", members=[user.id])
        dataset = factory.dataset("cohort", tensors=[tensor])
        g_ds = put(factory, "group", group, "dataset", dataset, "search")
        d = decide(factory, user.id, "tensor", tensor)
        assert d.explanation == (f"grant {g_ds} gives a group of the user search on tensor {tensor} "
                                 f"via group 'readers' on dataset 'cohort'")
        g_t = put(factory, "group", group, "tensor", tensor, "compute")
        assert decide(factory, user.id, "tensor", tensor).explanation == (
            f"grant {g_t} gives a group of the user compute on tensor {tensor} via group 'readers'")
        u_ds = put(factory, "user", user.id, "dataset", dataset, "download")
        assert decide(factory, user.id, "tensor", tensor).explanation == (
            f"grant {u_ds} gives the user download on tensor {tensor} via dataset 'cohort'")
        u_t = put(factory, "user", user.id, "tensor", tensor, "deny")
        d = decide(factory, user.id, "tensor", tensor)
        assert (d.level, d.rule, d.grant_id) == (Level.deny, "user_on_tensor", u_t)
        assert d.explanation == f"grant {u_t} gives the user deny on tensor {tensor}"

    def test_a_dataset_target_names_the_group_only(self, factory: Factory) -> None:
        user = factory.user()
        group = factory.group("team", members=[user.id])
        dataset = factory.dataset("ds")
        g = put(factory, "group", group, "dataset", dataset, "compute")
        assert decide(factory, user.id, "dataset", dataset).explanation == (
            f"grant {g} gives a group of the user compute on dataset {dataset} via group 'team'")
        u = put(factory, "user", user.id, "dataset", dataset, "search")
        assert decide(factory, user.id, "dataset", dataset).explanation == (
            f"grant {u} gives the user search on dataset {dataset}")

    def test_visibility_explains_the_default(self, factory: Factory) -> None:
        user = factory.user()
        private, public = factory.tensor(), factory.tensor(visibility="public")
        d = decide(factory, user.id, "tensor", private)
        assert (d.level, d.rule, d.grant_id) == (Level.search, "visibility", None)
        assert d.explanation == f"no grant applies; tensor {private} is private, so the default is search"
        assert decide(factory, user.id, "tensor", public).explanation == (
            f"no grant applies; tensor {public} is public, so the default is download")

    def test_among_several_grants_a_deny_wins_then_the_highest_then_the_oldest(self, factory: Factory) -> None:
        user = factory.user()
        tensor = factory.tensor()
        g1, g2, g3 = (factory.group(members=[user.id]) for _ in range(3))
        first = put(factory, "group", g1, "tensor", tensor, "compute")
        put(factory, "group", g2, "tensor", tensor, "compute")
        d = decide(factory, user.id, "tensor", tensor)
        assert d.grant_id == first and d.level is Level.compute
        assert d.explanation.endswith("; among 2 grants at this step (group_on_tensor) the highest level wins")
        higher = put(factory, "group", g3, "tensor", tensor, "download")
        assert decide(factory, user.id, "tensor", tensor).grant_id == higher
        deny_a = put(factory, "group", g2, "tensor", tensor, "deny")
        deny_b = put(factory, "group", g1, "tensor", tensor, "deny")
        d = decide(factory, user.id, "tensor", tensor)
        assert d.level is Level.deny and d.grant_id == min(deny_a, deny_b)
        assert d.explanation.endswith("; among 3 grants at this step (group_on_tensor) a deny wins")


class TestOnlyYourGrantsCount:
    def test_grants_to_another_user_or_to_a_group_you_are_not_in_do_not_apply(self, factory: Factory) -> None:
        user, other = factory.user(), factory.user()
        outsiders = factory.group(members=[other.id])
        tensor = factory.tensor()
        dataset = factory.dataset(tensors=[tensor])
        for subject_type, subject in (("user", other.id), ("group", outsiders)):
            put(factory, subject_type, subject, "dataset", dataset, "download")
            put(factory, subject_type, subject, "tensor", tensor, "download")
        for target_type, target_id in (("dataset", dataset), ("tensor", tensor)):
            d = decide(factory, user.id, target_type, target_id)
            assert (d.level, d.rule, d.grant_id) == (Level.search, "visibility", None)
            assert decide(factory, other.id, target_type, target_id).level is Level.download
        with factory.sessions() as session:
            assert permissions.effective_levels(session, user_id=user.id, tensor_ids=[tensor]) == {
                tensor: Level.search}


class TestLookups:
    def test_unknown_targets_and_target_types(self, factory: Factory) -> None:
        user = factory.user()
        tensor = factory.tensor()
        with pytest.raises(NotFound, match="^no tensor with id 987654$"):
            decide(factory, user.id, "tensor", 987654)
        with pytest.raises(NotFound, match="^no dataset with id 987654$"):
            decide(factory, user.id, "dataset", 987654)
        with pytest.raises(InvalidInput, match="^target_type must be 'tensor' or 'dataset', not 'result'$"):
            decide(factory, user.id, "result", 1)
        with factory.sessions() as session:
            assert permissions.effective_levels(session, user_id=user.id, tensor_ids=[]) == {}
            assert permissions.effective_levels(session, user_id=user.id, tensor_ids=[987654]) == {}
            permissions.check_target(session, target_type="tensor", target_id=tensor)
            with pytest.raises(NotFound, match="^no dataset with id 987654$"):
                permissions.check_target(session, target_type="dataset", target_id=987654)
            with pytest.raises(InvalidInput, match="^target_type must be 'tensor' or 'dataset', not 'job'$"):
                permissions.check_target(session, target_type="job", target_id=1)

    def test_the_batch_resolver_answers_every_known_tensor(self, factory: Factory) -> None:
        user = factory.user()
        a, b = factory.tensor(), factory.tensor(visibility="public")
        put(factory, "user", user.id, "tensor", a, "compute")
        with factory.sessions() as session:
            assert permissions.effective_levels(session, user_id=user.id, tensor_ids=[b, a, a, 987654]) == {
                a: Level.compute, b: Level.download}

    def test_users_and_groups_are_found_by_id_email_or_name(self, factory: Factory) -> None:
        user = factory.user(email="Someone@Example.com".lower())
        group = factory.group("the-team")
        with factory.sessions() as session:
            assert permissions.resolve_user(session, user.id).id == user.id
            assert permissions.resolve_user(session, f" {user.id} ").id == user.id
            assert permissions.resolve_user(session, "  SOMEONE@example.COM ").id == user.id
            with pytest.raises(NotFound, match=r"^no user 'nobody@example.com' \(give an id or an email\)$"):
                permissions.resolve_user(session, " nobody@example.com")
            assert permissions.resolve_group(session, group).id == group
            assert permissions.resolve_group(session, " the-team ").id == group
            with pytest.raises(NotFound, match=r"^no group 'other' \(give an id or a name\)$"):
                permissions.resolve_group(session, "other")
            with pytest.raises(NotFound, match=r"^no group '987654'"):
                permissions.resolve_group(session, 987654)


class TestRefusal:
    def test_a_grant_that_decides_is_named_in_the_refusal_and_its_details(self, factory: Factory) -> None:
        user = factory.user()
        tensor = factory.tensor(visibility="public")
        grant_id = put(factory, "user", user.id, "tensor", tensor, "search")
        with factory.sessions() as session, pytest.raises(Forbidden) as refused:
            permissions.require_level(session, actor=actor_of(session, user.id), target_type="tensor",
                                      target_id=tensor, needed=Level.compute)
        assert refused.value.message == (
            f"this needs compute on tensor {tensor}; you have search (user_on_tensor, grant {grant_id}). "
            f"Ask for it with 'gridctl requests ask access --tensor {tensor} --level compute --reason ...', "
            f"or ptr.request_access('compute', reason) in the SDK")
        assert refused.value.details == {"needed": "compute", "have": "search", "rule": "user_on_tensor",
                                         "grant_id": grant_id, "target_type": "tensor", "target_id": tensor}

    def test_a_private_dataset_refusal_names_its_visibility(self, factory: Factory) -> None:
        user = factory.user()
        dataset = factory.dataset()
        with factory.sessions() as session, pytest.raises(Forbidden) as refused:
            permissions.require_level(session, actor=actor_of(session, user.id), target_type="dataset",
                                      target_id=dataset, needed=Level.download)
        assert refused.value.message.startswith(
            f"this needs download on dataset {dataset}; you have search (visibility: private). "
            f"Ask for it with 'gridctl requests ask access --dataset {dataset} --level download")
        assert refused.value.details["grant_id"] is None and refused.value.details["target_type"] == "dataset"

    @pytest.mark.parametrize(("have", "needed", "allowed"), [
        (Level.deny, Level.search, True), (Level.deny, Level.compute, False), (Level.deny, Level.deny, False),
        (Level.search, Level.search, True), (Level.search, Level.compute, False),
        (Level.compute, Level.compute, True), (Level.compute, Level.download, False),
        (Level.download, Level.download, True), (Level.download, Level.compute, True),
    ])
    def test_what_a_level_allows(self, have: Level, needed: Level, allowed: bool) -> None:
        assert permissions.allows(have, needed) is allowed


class TestGrants:
    def test_only_raise_keeps_a_higher_or_equal_grant_and_raises_a_lower_one(self, factory: Factory) -> None:
        user = factory.user()
        tensor = factory.tensor()
        grant_id = put(factory, "user", user.id, "tensor", tensor, "compute")
        assert put(factory, "user", user.id, "tensor", tensor, "search", only_raise=True) == grant_id
        assert put(factory, "user", user.id, "tensor", tensor, "compute", only_raise=True) == grant_id
        assert decide(factory, user.id, "tensor", tensor).level is Level.compute
        assert len(audits(factory, "permission.granted")) == 1
        put(factory, "user", user.id, "tensor", tensor, "download", only_raise=True, via_request=77)
        assert decide(factory, user.id, "tensor", tensor).level is Level.download
        put(factory, "user", user.id, "tensor", tensor, "search")
        assert decide(factory, user.id, "tensor", tensor).level is Level.search
        assert audits(factory, "permission.granted") == [
            {"subject_type": "user", "subject_id": user.id, "target_type": "tensor", "target_id": tensor,
             "level": "compute", "previous_level": None},
            {"subject_type": "user", "subject_id": user.id, "target_type": "tensor", "target_id": tensor,
             "level": "download", "previous_level": "compute", "request_id": 77},
            {"subject_type": "user", "subject_id": user.id, "target_type": "tensor", "target_id": tensor,
             "level": "search", "previous_level": "download"},
        ]

    def test_a_deny_counts_as_the_lowest_for_only_raise(self, factory: Factory) -> None:
        user = factory.user()
        dataset = factory.dataset()
        put(factory, "user", user.id, "dataset", dataset, "deny")
        put(factory, "user", user.id, "dataset", dataset, "search", only_raise=True)
        assert decide(factory, user.id, "dataset", dataset).level is Level.search

    def test_the_granting_actor_is_recorded_and_bad_subject_types_refused(self, factory: Factory) -> None:
        admin, user = factory.user("Administrator"), factory.user()
        tensor = factory.tensor()
        with factory.sessions.begin() as session:
            made = permissions.grant(session, actor=actor_of(session, admin.id), subject_type="user",
                                     subject=user.email, target_type="tensor", target_id=tensor,
                                     level=Level.compute)
            assert (made.user_id, made.tensor_id, made.level, made.created_by) == (user.id, tensor, "compute",
                                                                                  admin.id)
            with pytest.raises(InvalidInput, match="^subject_type must be 'user' or 'group', not 'role'$"):
                permissions.grant(session, actor=actor_of(session, admin.id), subject_type="role", subject=1,
                                  target_type="tensor", target_id=tensor, level=Level.compute)
        put(factory, "user", user.id, "tensor", tensor, "download")
        with factory.sessions() as session:
            found = permissions.find_grant(session, subject_type="user", subject_id=user.id, target_type="tensor",
                                           target_id=tensor)
            assert found is not None and found.created_by == admin.id and found.level == "download"

    def test_revoking_is_audited_with_what_was_revoked(self, factory: Factory) -> None:
        admin = factory.user("Administrator")
        group = factory.group()
        dataset = factory.dataset()
        grant_id = put(factory, "group", group, "dataset", dataset, "compute")
        with factory.sessions.begin() as session:
            permissions.revoke(session, actor=actor_of(session, admin.id), grant_id=grant_id)
            with pytest.raises(NotFound, match=f"^no grant with id {grant_id}$"):
                permissions.revoke(session, actor=actor_of(session, admin.id), grant_id=grant_id)
        with factory.sessions() as session:
            event = session.scalars(select(AuditEvent).where(AuditEvent.action == "permission.revoked")).one()
            assert (event.actor_id, event.target_type, event.target_id) == (admin.id, "grant", str(grant_id))
        assert audits(factory, "permission.revoked") == [
            {"subject_type": "group", "subject_id": group, "target_type": "dataset", "target_id": dataset,
             "level": "compute"}]


class TestListing:
    def test_filters_and_pages(self, factory: Factory) -> None:
        admin, user, other = factory.user("Administrator"), factory.user(), factory.user()
        group = factory.group("listed", members=[user.id])
        t1, t2 = factory.tensor(), factory.tensor()
        ds = factory.dataset()
        ids = [put(factory, "user", user.id, "tensor", t1, "compute"),
               put(factory, "group", group, "tensor", t2, "search"),
               put(factory, "user", other.id, "dataset", ds, "download"),
               put(factory, "group", group, "dataset", ds, "deny")]
        with factory.sessions() as session:
            manager = actor_of(session, admin.id)

            def listed(**filters: Any) -> tuple[list[int], int]:
                rows, total = permissions.list_grants(session, actor=manager, **filters)
                return [g.id for g in rows], total

            assert listed() == (ids, 4)
            assert listed(target_type="tensor") == ([ids[0], ids[1]], 2)
            assert listed(target_type="dataset") == ([ids[2], ids[3]], 2)
            assert listed(target_type="tensor", target_id=t2) == ([ids[1]], 1)
            assert listed(target_type="dataset", target_id=ds) == ([ids[2], ids[3]], 2)
            assert listed(subject_type="user") == ([ids[0], ids[2]], 2)
            assert listed(subject_type="group") == ([ids[1], ids[3]], 2)
            assert listed(subject_type="user", subject=other.email) == ([ids[2]], 1)
            assert listed(subject_type="group", subject="listed") == ([ids[1], ids[3]], 2)
            assert listed(limit=2, offset=1) == ([ids[1], ids[2]], 4)
            with pytest.raises(InvalidInput, match="^target_type must be 'tensor' or 'dataset', not 'x'$"):
                listed(target_type="x")
            with pytest.raises(InvalidInput, match="^target_id needs target_type$"):
                listed(target_id=t1)
            with pytest.raises(InvalidInput, match="^subject needs subject_type$"):
                listed(subject=user.id)
            with pytest.raises(InvalidInput, match="^subject_type must be 'user' or 'group', not 'x'$"):
                listed(subject_type="x")
            with pytest.raises(NotFound):
                listed(subject_type="user", subject="nobody@example.com")

            mine = actor_of(session, user.id)
            rows, total = permissions.list_grants(session, actor=mine)
            assert [g.id for g in rows] == [ids[0], ids[1], ids[3]] and total == 3
            assert permissions.list_grants(session, actor=mine, subject_type="user",
                                           subject="nobody@example.com") == ([], 0)
            rows, total = permissions.list_grants(session, actor=mine, subject_type="user", subject=other.id)
            assert (rows, total) == ([], 0)

            assert permissions.subject_names(session, session.scalars(
                select(permissions.Grant).order_by(permissions.Grant.id))) == {
                ("user", user.id): user.email, ("user", other.id): other.email, ("group", group): "listed"}
            assert permissions.subject_names(session, []) == {}


class TestExplain:
    def test_yourself_by_default_or_by_name_and_others_only_with_a_capability(self, factory: Factory) -> None:
        user, other = factory.user(), factory.user()
        officer = factory.user(capabilities={Capability.triage_requests})
        admin = factory.user(capabilities={Capability.manage_permissions})
        tensor = factory.tensor()
        with factory.sessions() as session:
            me = actor_of(session, user.id)
            subject, decision = permissions.explain(session, actor=me, user=None, target_type="tensor",
                                                    target_id=tensor)
            assert subject.id == user.id and decision.rule == "visibility"
            assert permissions.explain(session, actor=me, user=user.email.upper(), target_type="tensor",
                                       target_id=tensor)[0].id == user.id
            with pytest.raises(Forbidden, match="^explaining another user's level needs the capability") as refused:
                permissions.explain(session, actor=me, user=other.id, target_type="tensor", target_id=tensor)
            assert refused.value.details == {"missing": ["manage_permissions"]}
            with pytest.raises(Forbidden):
                permissions.explain(session, actor=me, user="nobody@example.com", target_type="tensor",
                                    target_id=tensor)
            triage = actor_of(session, officer.id)
            assert permissions.explain(session, actor=triage, user=other.id, target_type="tensor",
                                       target_id=tensor)[0].id == other.id
            with pytest.raises(NotFound):
                permissions.explain(session, actor=triage, user="nobody@example.com", target_type="tensor",
                                    target_id=tensor)
            manager = actor_of(session, admin.id)
            assert permissions.explain(session, actor=manager, user=other.email, target_type="tensor",
                                       target_id=tensor)[0].id == other.id


class TestAGrantRace:
    """Survivors of the full run of 2026-12-01: when a concurrent transaction inserts the same subject's grant on
    the same target between our lookup and our insert, the unique constraint refuses ours and the grant that won
    is updated instead (``put_grant``'s fallback); every grant is audited under its own id."""

    def test_a_grant_inserted_meanwhile_is_updated_not_duplicated(self, factory: Factory,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
        user, admin = factory.user(), factory.user("Administrator")
        tensor = factory.tensor()
        first = put(factory, "user", user.id, "tensor", tensor, "compute")
        real = permissions.find_grant
        calls: list[bool] = []

        def missed_once(session: Session, **kwargs: Any) -> Any:
            calls.append(True)
            return None if len(calls) == 1 else real(session, **kwargs)  # the first lookup ran before the insert

        monkeypatch.setattr(permissions, "find_grant", missed_once)
        with factory.sessions.begin() as session:
            grant = permissions.put_grant(session, actor=actor_of(session, admin.id), subject_type="user",
                                          subject_id=user.id, target_type="tensor", target_id=tensor,
                                          level=Level.download)
            assert (grant.id, grant.level, grant.created_by) == (first, "download", admin.id)
        assert len(calls) == 2
        assert decide(factory, user.id, "tensor", tensor).level is Level.download
        assert audits(factory, "permission.granted")[-1] == {
            "subject_type": "user", "subject_id": user.id, "target_type": "tensor", "target_id": tensor,
            "level": "download", "previous_level": "compute"}

    def test_the_audit_event_names_the_grant(self, factory: Factory) -> None:
        user = factory.user()
        grant_id = put(factory, "user", user.id, "dataset", factory.dataset(), "search")
        with factory.sessions() as session:
            event = session.scalars(select(AuditEvent).where(AuditEvent.action == "permission.granted")
                                    .order_by(AuditEvent.id.desc())).first()
            assert event is not None and (event.target_type, event.target_id) == ("grant", str(grant_id))

    def test_an_actor_replacing_a_grant_becomes_its_granter(self, factory: Factory) -> None:
        user, admin = factory.user(), factory.user("Administrator")
        tensor = factory.tensor()
        put(factory, "user", user.id, "tensor", tensor, "search")
        with factory.sessions.begin() as session:
            grant = permissions.put_grant(session, actor=actor_of(session, admin.id), subject_type="user",
                                          subject_id=user.id, target_type="tensor", target_id=tensor,
                                          level=Level.compute)
            assert grant.created_by == admin.id
