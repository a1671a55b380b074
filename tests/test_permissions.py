"""Grants, denies, their resolution order, the batch resolver, explain, and the permission routes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError

from grid_runtime.core.capabilities import Capability
from grid_runtime.core.errors import Forbidden
from grid_runtime.core.levels import Level
from grid_runtime.node.audit.models import AuditEvent
from grid_runtime.node.datasets.models import Dataset
from grid_runtime.node.deps import Actor
from grid_runtime.node.groups.models import Group
from grid_runtime.node.permissions import service as permissions
from grid_runtime.node.permissions.models import Grant
from grid_runtime.node.tensors.models import Tensor
from grid_runtime.node.users.models import User
from tests.factories import Factory, MadeUser

API = "/api/v1"

# --- the resolution table -----------------------------------------------------------------------------
#
# One user U, another user "other", groups g1 and g2 (U is a member of both) and gx (U is not) are shared by
# every case; each case gets its own tensor T in datasets d1 and d2, and a dataset dx that does not hold T,
# so cases cannot see each other's grants. A grant is (subject, on, level) with subject in
# user|other|g1|g2|gx and on in tensor|d1|d2|dx. The case's target is T, or d1 when target == "dataset".
# ``decider`` is the index of the grant expected to decide (None: the visibility rule).


@dataclass(frozen=True)
class Case:
    name: str
    grants: tuple[tuple[str, str, str], ...]
    level: Level
    rule: str
    decider: int | None
    target: str = "tensor"
    visibility: str = "private"


CASES = [
    # visibility, the last step
    Case("private tensor without grants is searchable only", (), Level.search, "visibility", None),
    Case("public tensor without grants is downloadable", (), Level.download, "visibility", None,
         visibility="public"),
    # 1. user on tensor
    Case("user on tensor", (("user", "tensor", "compute"),), Level.compute, "user_on_tensor", 0),
    Case("user deny on tensor beats public visibility", (("user", "tensor", "deny"),), Level.deny,
         "user_on_tensor", 0, visibility="public"),
    Case("user search on tensor beats public visibility", (("user", "tensor", "search"),), Level.search,
         "user_on_tensor", 0, visibility="public"),
    Case("user search on tensor beats user download on dataset",
         (("user", "d1", "download"), ("user", "tensor", "search")), Level.search, "user_on_tensor", 1),
    Case("user grant on tensor beats user deny on dataset",
         (("user", "d1", "deny"), ("user", "tensor", "download")), Level.download, "user_on_tensor", 1),
    Case("user on tensor beats a group deny on the tensor",
         (("g1", "tensor", "deny"), ("user", "tensor", "compute")), Level.compute, "user_on_tensor", 1),
    # 2. user on dataset
    Case("user on dataset", (("user", "d1", "download"),), Level.download, "user_on_dataset", 0),
    Case("deny among several datasets wins",
         (("user", "d1", "download"), ("user", "d2", "deny")), Level.deny, "user_on_dataset", 1),
    Case("highest among several datasets",
         (("user", "d1", "compute"), ("user", "d2", "download")), Level.download, "user_on_dataset", 1),
    Case("user grant on dataset beats group deny on tensor",
         (("g1", "tensor", "deny"), ("user", "d1", "compute")), Level.compute, "user_on_dataset", 1),
    Case("user deny on dataset beats group grant on tensor",
         (("g1", "tensor", "download"), ("user", "d1", "deny")), Level.deny, "user_on_dataset", 1),
    # 3. group on tensor
    Case("group on tensor", (("g1", "tensor", "compute"),), Level.compute, "group_on_tensor", 0),
    Case("highest among groups", (("g1", "tensor", "compute"), ("g2", "tensor", "download")), Level.download,
         "group_on_tensor", 1),
    Case("deny among groups wins", (("g1", "tensor", "download"), ("g2", "tensor", "deny")), Level.deny,
         "group_on_tensor", 1),
    Case("group search on tensor beats group download on dataset",
         (("g1", "d1", "download"), ("g2", "tensor", "search")), Level.search, "group_on_tensor", 1),
    Case("group grant on tensor beats group deny on dataset",
         (("g1", "d1", "deny"), ("g1", "tensor", "compute")), Level.compute, "group_on_tensor", 1),
    # 4. group on dataset
    Case("group on dataset", (("g1", "d1", "compute"),), Level.compute, "group_on_dataset", 0),
    Case("deny among groups on datasets wins", (("g1", "d1", "download"), ("g2", "d2", "deny")), Level.deny,
         "group_on_dataset", 1),
    Case("highest among groups on datasets", (("g1", "d1", "compute"), ("g2", "d2", "download")),
         Level.download, "group_on_dataset", 1),
    Case("group deny on dataset beats public visibility", (("g2", "d2", "deny"),), Level.deny,
         "group_on_dataset", 0, visibility="public"),
    # grants that do not apply to this user or this tensor
    Case("other users, foreign groups and unrelated datasets do not count",
         (("other", "tensor", "download"), ("gx", "tensor", "download"), ("user", "dx", "download"),
          ("gx", "d1", "download")), Level.search, "visibility", None),
    # a dataset as the target: the tensor steps do not exist
    Case("private dataset without grants", (), Level.search, "visibility", None, target="dataset"),
    Case("public dataset without grants", (), Level.download, "visibility", None, target="dataset",
         visibility="public"),
    Case("grants on a member tensor do not count for the dataset",
         (("user", "tensor", "download"), ("g1", "tensor", "download")), Level.search, "visibility", None,
         target="dataset"),
    Case("user on the dataset", (("user", "d1", "compute"),), Level.compute, "user_on_dataset", 0,
         target="dataset"),
    Case("user search on the dataset beats a group download", (("g1", "d1", "download"), ("user", "d1", "search")),
         Level.search, "user_on_dataset", 1, target="dataset"),
    Case("deny among groups on the dataset wins", (("g1", "d1", "download"), ("g2", "d1", "deny")), Level.deny,
         "group_on_dataset", 1, target="dataset"),
    Case("highest among groups on the dataset", (("g1", "d1", "compute"), ("g2", "d1", "download")),
         Level.download, "group_on_dataset", 1, target="dataset"),
    Case("another dataset's grant does not count for this one", (("user", "d2", "download"),), Level.search,
         "visibility", None, target="dataset"),
]


@dataclass
class World:
    case: Case
    user: MadeUser
    tensor: int
    target_id: int
    grant_ids: list[int] = field(default_factory=list)


def _grant(client: TestClient, admin: MadeUser, subject_type: str, subject: object, target_type: str,
           target_id: int, level: str) -> dict[str, Any]:
    response = client.post(f"{API}/permissions", headers=admin.headers, json={
        "subject_type": subject_type, "subject": subject, "target_type": target_type, "target_id": target_id,
        "level": level})
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def worlds(any_db_client: TestClient, any_db_factory: Factory) -> list[World]:
    factory = any_db_factory
    admin, user, other = factory.user("Administrator"), factory.user(), factory.user()
    groups = {"g1": factory.group(members=[user.id]), "g2": factory.group(members=[user.id, other.id]),
              "gx": factory.group(members=[other.id])}
    built = []
    for case in CASES:
        tensor = factory.tensor(visibility=case.visibility if case.target == "tensor" else "private")
        spare = factory.tensor()
        datasets = {
            "d1": factory.dataset(tensors={"features": tensor, "labels": spare},
                                  visibility=case.visibility if case.target == "dataset" else "private"),
            "d2": factory.dataset(tensors=[tensor]),
            "dx": factory.dataset(tensors=[spare]),
        }
        world = World(case, user, tensor, tensor if case.target == "tensor" else datasets["d1"])
        for subject, on, level in case.grants:
            subject_type, subject_ref = (("user", user.email) if subject == "user" else
                                         ("user", other.id) if subject == "other" else ("group", groups[subject]))
            target_type, target_id = ("tensor", tensor) if on == "tensor" else ("dataset", datasets[on])
            world.grant_ids.append(_grant(any_db_client, admin, subject_type, subject_ref, target_type,
                                          target_id, level)["id"])
        built.append(world)
    return built


def _expected_grant(world: World) -> int | None:
    return None if world.case.decider is None else world.grant_ids[world.case.decider]


class TestResolutionOrder:
    def test_every_case_resolves_to_its_level_rule_and_grant(
        self, any_db_factory: Factory, worlds: list[World]
    ) -> None:
        wrong = []
        with any_db_factory.sessions() as session:
            for w in worlds:
                d = permissions.effective_level(session, user_id=w.user.id, target_type=w.case.target,
                                                target_id=w.target_id)
                if (d.level, d.rule, d.grant_id) != (w.case.level, w.case.rule, _expected_grant(w)):
                    wrong.append(f"{w.case.name}: got {d}")
        assert wrong == []

    def test_explain_names_the_deciding_rule_and_grant(
        self, any_db_client: TestClient, worlds: list[World]
    ) -> None:
        wrong = []
        for w in worlds:
            response = any_db_client.get(f"{API}/permissions/explain", headers=w.user.headers,
                                         params={"target_type": w.case.target, "target_id": w.target_id})
            assert response.status_code == 200, response.text
            body = response.json()
            expected = {"user_id": w.user.id, "target_type": w.case.target, "target_id": w.target_id,
                        "level": str(w.case.level), "rule": w.case.rule, "grant_id": _expected_grant(w)}
            if {k: body[k] for k in expected} != expected:
                wrong.append(f"{w.case.name}: got {body}")
            # The sentence names the grant that decided, or the visibility that did.
            named = f"grant {_expected_grant(w)}" if w.case.decider is not None else w.case.visibility
            if named not in body["explanation"]:
                wrong.append(f"{w.case.name}: {named!r} not in {body['explanation']!r}")
        assert wrong == []

    def test_the_batch_resolver_agrees_with_the_single_one_on_every_row(
        self, any_db_factory: Factory, worlds: list[World]
    ) -> None:
        user = worlds[0].user.id
        tensors = [w.tensor for w in worlds]
        with any_db_factory.sessions() as session:
            batch = permissions.effective_levels(session, user_id=user, tensor_ids=[*tensors, 999_999])
            single = {t: permissions.effective_level(session, user_id=user, target_type="tensor",
                                                     target_id=t).level for t in tensors}
        assert batch == single  # every row, in one call; an unknown id is simply left out
        wrong = [w.case.name for w in worlds if w.case.target == "tensor" and batch[w.tensor] != w.case.level]
        assert wrong == []

    def test_the_batch_resolver_uses_a_constant_number_of_queries(
        self, any_db_client: TestClient, any_db_factory: Factory, worlds: list[World]
    ) -> None:
        statements: list[str] = []

        def count(*_: object) -> None:
            statements.append("q")

        user = worlds[0].user.id
        with any_db_factory.sessions() as session:
            connection = session.connection()  # the transaction's BEGIN is not the resolver's
            # this session's statements only: the Node's background work (FL settling, the Network sync) shares
            # the engine
            event.listen(connection, "before_cursor_execute", count)
            try:
                statements.clear()
                permissions.effective_levels(session, user_id=user, tensor_ids=[worlds[0].tensor])
                one = len(statements)
                statements.clear()
                permissions.effective_levels(session, user_id=user, tensor_ids=[w.tensor for w in worlds])
                many = len(statements)
            finally:
                event.remove(connection, "before_cursor_execute", count)
        assert one == many == 3


def _actor(session: Any, user_id: int) -> Actor:
    user = session.get(User, user_id)
    return Actor(user=user, capabilities=frozenset(Capability(c) for c in user.role.capabilities), token_id=0,
                 client_address="test")


class TestRequireLevel:
    def test_refusal_names_the_needed_level_the_callers_level_and_how_to_ask(self, factory: Factory) -> None:
        user = factory.user()
        tensor = factory.tensor()
        with factory.sessions() as session, pytest.raises(Forbidden) as refused:
            permissions.require_level(session, actor=_actor(session, user.id), target_type="tensor",
                                      target_id=tensor, needed=Level.download)
        message = refused.value.message
        assert f"this needs download on tensor {tensor}; you have search (visibility: private)" in message
        assert "request_access('download', reason)" in message
        assert refused.value.details["needed"] == "download"
        assert refused.value.details["have"] == "search"
        assert refused.value.details["rule"] == "visibility"

    def test_passes_at_or_below_the_effective_level_and_search_survives_a_deny(
        self, client: TestClient, factory: Factory
    ) -> None:
        admin, user = factory.user("Administrator"), factory.user()
        tensor = factory.tensor()
        _grant(client, admin, "user", user.id, "tensor", tensor, "compute")
        with factory.sessions() as session:
            actor = _actor(session, user.id)
            for needed in (Level.search, Level.compute):
                decision = permissions.require_level(session, actor=actor, target_type="tensor",
                                                     target_id=tensor, needed=needed)
                assert decision.level is Level.compute
        _grant(client, admin, "user", user.id, "tensor", tensor, "deny")
        with factory.sessions() as session:
            actor = _actor(session, user.id)
            assert permissions.require_level(session, actor=actor, target_type="tensor", target_id=tensor,
                                             needed=Level.search).level is Level.deny
            with pytest.raises(Forbidden, match="you have deny"):
                permissions.require_level(session, actor=actor, target_type="tensor", target_id=tensor,
                                          needed=Level.compute)


class TestGrant:
    def test_creates_a_grant_and_returns_it(self, any_db_client: TestClient, any_db_factory: Factory) -> None:
        admin, user = any_db_factory.user("Administrator"), any_db_factory.user()
        tensor = any_db_factory.tensor()
        body = _grant(any_db_client, admin, "user", user.email, "tensor", tensor, "compute")
        assert body["subject_type"] == "user" and body["subject_id"] == user.id
        assert body["subject_name"] == user.email
        assert (body["target_type"], body["target_id"], body["level"]) == ("tensor", tensor, "compute")
        assert body["created_by"] == admin.id

    def test_granting_again_replaces_the_level_of_the_one_grant(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        admin = any_db_factory.user("Administrator")
        group = any_db_factory.group("analysts")
        dataset = any_db_factory.dataset(tensors=[any_db_factory.tensor()])
        first = _grant(any_db_client, admin, "group", "analysts", "dataset", dataset, "download")
        second = _grant(any_db_client, admin, "group", group, "dataset", dataset, "deny")
        assert second["id"] == first["id"] and second["level"] == "deny"
        assert second["subject_name"] == "analysts"
        assert any_db_factory.count(Grant) == 1
        with any_db_factory.sessions() as session:
            events = session.scalars(select(AuditEvent).where(AuditEvent.action == "permission.granted")
                                     .order_by(AuditEvent.id)).all()
        assert [e.details["previous_level"] for e in events] == [None, "download"]
        assert events[-1].actor_id == admin.id and events[-1].target_id == str(first["id"])

    def test_returns_403_without_manage_permissions(self, client: TestClient, factory: Factory) -> None:
        officer, user = factory.user("Compliance Officer"), factory.user()
        tensor = factory.tensor()
        before = factory.snapshot()
        response = client.post(f"{API}/permissions", headers=officer.headers, json={
            "subject_type": "user", "subject": user.id, "target_type": "tensor", "target_id": tensor,
            "level": "download"})
        assert response.status_code == 403
        assert "manage_permissions" in response.json()["message"]
        assert factory.snapshot() == before

    @pytest.mark.parametrize(("change", "status", "word"), [
        ({"subject": "nobody@example.com"}, 404, "nobody@example.com"),
        ({"subject_type": "group", "subject": "no-such-group"}, 404, "no-such-group"),
        ({"target_id": 424242}, 404, "424242"),
        ({"target_type": "dataset", "target_id": 424242}, 404, "dataset"),
        ({"level": "admin"}, 422, "level"),
        ({"target_type": "model"}, 422, "target_type"),
        ({"extra": 1}, 422, "extra"),
    ])
    def test_refuses_bad_subjects_targets_and_levels(
        self, client: TestClient, factory: Factory, change: dict[str, object], status: int, word: str
    ) -> None:
        admin, user = factory.user("Administrator"), factory.user()
        body = {"subject_type": "user", "subject": user.id, "target_type": "tensor",
                "target_id": factory.tensor(), "level": "compute", **change}
        response = client.post(f"{API}/permissions", headers=admin.headers, json=body)
        assert response.status_code == status
        assert word in response.json()["message"]
        assert factory.count(Grant) == 0


class TestRevoke:
    def test_revoking_falls_back_to_the_next_rule_and_is_audited(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        admin, user = any_db_factory.user("Administrator"), any_db_factory.user()
        tensor = any_db_factory.tensor()
        group = any_db_factory.group(members=[user.id])
        direct = _grant(any_db_client, admin, "user", user.id, "tensor", tensor, "download")
        via_group = _grant(any_db_client, admin, "group", group, "tensor", tensor, "compute")
        assert any_db_client.delete(f"{API}/permissions/{direct['id']}", headers=admin.headers).status_code == 204
        explained = any_db_client.get(f"{API}/permissions/explain", headers=user.headers,
                                      params={"target_type": "tensor", "target_id": tensor}).json()
        assert (explained["level"], explained["rule"], explained["grant_id"]) == (
            "compute", "group_on_tensor", via_group["id"])
        assert "permission.revoked" in any_db_factory.audit_actions()

    def test_unknown_grant_is_404_and_no_capability_is_403(self, client: TestClient, factory: Factory) -> None:
        admin, user = factory.user("Administrator"), factory.user()
        grant = _grant(client, admin, "user", user.id, "tensor", factory.tensor(), "compute")
        assert client.delete(f"{API}/permissions/999", headers=admin.headers).status_code == 404
        assert client.delete(f"{API}/permissions/{grant['id']}", headers=user.headers).status_code == 403
        assert factory.count(Grant) == 1


class TestListGrants:
    def test_filters_by_target_and_subject(self, client: TestClient, factory: Factory) -> None:
        admin, user, other = factory.user("Administrator"), factory.user(), factory.user()
        t1, t2 = factory.tensor(), factory.tensor()
        g1 = _grant(client, admin, "user", user.id, "tensor", t1, "compute")
        g2 = _grant(client, admin, "user", other.id, "tensor", t1, "download")
        g3 = _grant(client, admin, "user", user.id, "tensor", t2, "deny")

        def ids(**params: str | int) -> list[int]:
            response = client.get(f"{API}/permissions", headers=admin.headers, params=params)
            assert response.status_code == 200, response.text
            return [g["id"] for g in response.json()["items"]]

        assert ids() == [g1["id"], g2["id"], g3["id"]]
        assert ids(target_type="tensor", target_id=t1) == [g1["id"], g2["id"]]
        assert ids(subject_type="user", subject=user.email) == [g1["id"], g3["id"]]
        assert ids(target_type="dataset") == []

    def test_without_manage_permissions_you_see_only_grants_that_apply_to_you(
        self, client: TestClient, factory: Factory
    ) -> None:
        admin, user, other = factory.user("Administrator"), factory.user(), factory.user()
        group = factory.group(members=[user.id])
        tensor = factory.tensor()
        mine = _grant(client, admin, "user", user.id, "tensor", tensor, "compute")
        my_group = _grant(client, admin, "group", group, "tensor", tensor, "download")
        _grant(client, admin, "user", other.id, "tensor", tensor, "download")
        body = client.get(f"{API}/permissions", headers=user.headers).json()
        assert [g["id"] for g in body["items"]] == [mine["id"], my_group["id"]] and body["total"] == 2


class TestExplain:
    def test_for_another_user_needs_manage_permissions_or_triage(self, client: TestClient, factory: Factory) -> None:
        user, other = factory.user(), factory.user()
        tensor = factory.tensor(visibility="public")
        params: dict[str, str | int] = {"user": str(other.id), "target_type": "tensor", "target_id": tensor}
        refused = client.get(f"{API}/permissions/explain", headers=user.headers, params=params)
        assert refused.status_code == 403 and "manage_permissions" in refused.json()["message"]
        for role in ("Administrator", "Compliance Officer"):
            allowed = client.get(f"{API}/permissions/explain", headers=factory.user(role).headers, params=params)
            assert allowed.status_code == 200
            assert (allowed.json()["user_id"], allowed.json()["level"]) == (other.id, "download")

    def test_unknown_target_is_404(self, client: TestClient, factory: Factory) -> None:
        response = client.get(f"{API}/permissions/explain", headers=factory.user().headers,
                              params={"target_type": "dataset", "target_id": 31337})
        assert response.status_code == 404 and "31337" in response.json()["message"]


class TestGrantTable:
    def test_check_constraints_refuse_two_subjects_or_two_targets(self, any_db_factory: Factory) -> None:
        user = any_db_factory.user()
        group = any_db_factory.group()
        tensor = any_db_factory.tensor()
        dataset = any_db_factory.dataset()
        for bad in ({"user_id": user.id, "group_id": group, "tensor_id": tensor},
                    {"user_id": user.id, "tensor_id": tensor, "dataset_id": dataset},
                    {"tensor_id": tensor},
                    {"user_id": user.id},
                    {"user_id": user.id, "tensor_id": tensor, "level_override": "admin"}):
            level = bad.pop("level_override", "compute")
            with pytest.raises(IntegrityError), any_db_factory.sessions.begin() as session:
                session.add(Grant(level=level, **bad))

    def test_one_grant_per_subject_and_target_in_the_database(self, any_db_factory: Factory) -> None:
        user = any_db_factory.user()
        tensor = any_db_factory.tensor()
        with any_db_factory.sessions.begin() as session:
            session.add(Grant(user_id=user.id, tensor_id=tensor, level="compute"))
        with pytest.raises(IntegrityError), any_db_factory.sessions.begin() as session:
            session.add(Grant(user_id=user.id, tensor_id=tensor, level="download"))

    def test_grants_go_when_their_subject_or_target_goes(self, any_db_factory: Factory) -> None:
        user = any_db_factory.user()
        group = any_db_factory.group()
        tensor, other_tensor = any_db_factory.tensor(), any_db_factory.tensor()
        dataset = any_db_factory.dataset()
        leaving = any_db_factory.user()
        with any_db_factory.sessions.begin() as session:
            session.add_all([Grant(user_id=user.id, tensor_id=tensor, level="compute"),
                             Grant(group_id=group, tensor_id=other_tensor, level="compute"),
                             Grant(user_id=user.id, dataset_id=dataset, level="compute"),
                             Grant(user_id=leaving.id, tensor_id=other_tensor, level="download")])
        for model, row_id in ((Tensor, tensor), (Group, group), (Dataset, dataset), (User, leaving.id)):
            with any_db_factory.sessions.begin() as session:
                session.delete(session.get(model, row_id))
        assert any_db_factory.count(Grant) == 0

