"""The privacy ledger: append-only in the database, figures equal to dp-accounting's, the filter at the
node's order (``budget.ledger.check``, what admitting a job asks), and the budget views."""

from __future__ import annotations

import pytest
from dp_accounting.rdp import RdpAccountant
from dp_accounting.rdp.rdp_privacy_accountant import compute_epsilon
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from grid_runtime.core.database import create_database_engine, upgrade
from grid_runtime.core.errors import BudgetExceeded
from grid_runtime.core.settings import NodeSettings
from grid_runtime.node.budget import ledger
from grid_runtime.node.budget import service as budget
from grid_runtime.node.users.models import User
from grid_runtime.privacy import accounting, events
from tests.factories import Factory
from tests.test_release_requests import API, approve, dp_event, ledger_rows, make_result, release


class TestAppendOnly:
    def test_the_ledger_refuses_update_and_delete(self, database_url: str) -> None:
        engine = create_database_engine(database_url)
        try:
            upgrade(engine)
            with engine.begin() as conn:
                conn.execute(text(
                    "INSERT INTO privacy_ledger (at, user_id, user_email, event, non_private, rdp_order, rdp, "
                    "epsilon, delta) VALUES (CURRENT_TIMESTAMP, 1, 'a@b', '{\"type\": \"no_op\"}', false, 6, 0, 0, "
                    "0.00001)"))
            for statement in ("UPDATE privacy_ledger SET rdp = 0.5", "DELETE FROM privacy_ledger"):
                with pytest.raises(DatabaseError, match="append-only"), engine.begin() as conn:
                    conn.execute(text(statement))
            with engine.connect() as conn:
                assert conn.scalar(text("SELECT rdp FROM privacy_ledger")) == 0
        finally:
            engine.dispose()


class TestFigures:
    def test_the_cost_and_the_spent_figures_equal_dp_accountings(self, client: TestClient, factory: Factory) -> None:
        user, officer = factory.user(budget=30.0), factory.user("Compliance Officer")
        laplace = events.event_to_dict(events.laplace_event(noise_multiplier=2.0))
        recorded = [dp_event(1.0), dp_event(1.5, steps=300), laplace]
        for event in recorded:
            request = release(client, user, make_result(factory, user.id, event=event)).json()
            single = RdpAccountant()
            single.compose(events.event_from_dict(event))
            assert request["payload"]["epsilon"] == pytest.approx(single.get_epsilon(1e-5), rel=1e-9)
            assert approve(client, officer, request["id"]).status_code == 200
        at_order = RdpAccountant(orders=[6.0])
        for event in recorded:
            at_order.compose(events.event_from_dict(event))
        simple = sum(RdpAccountant().compose(events.event_from_dict(e)).get_epsilon(1e-5) for e in recorded)
        shown = client.get(f"{API}/budget", headers=user.headers).json()
        assert shown["spent_epsilon"] == pytest.approx(at_order.get_epsilon(1e-5), rel=1e-9)
        assert shown["simple_sum_epsilon"] == pytest.approx(simple, rel=1e-9)
        assert shown["events"] == 3 and shown["rdp_order"] == 6.0 and shown["delta"] == 1e-5
        # what is left is RDP at the order: the largest single event that fits is its conversion, not 30 - spent
        left = accounting.rdp_budget(30.0, 1e-5, 6.0) - float(at_order._rdp[0])  # noqa: SLF001
        assert shown["remaining_epsilon"] == pytest.approx(compute_epsilon([6.0], [left], 1e-5)[0], rel=1e-9)
        assert shown["remaining_epsilon"] > 30.0 - shown["spent_epsilon"]
        assert shown["ceiling_epsilon"] == 30.0
        assert shown["rdp_budget"] == pytest.approx(accounting.rdp_budget(30.0, 1e-5, 6.0))

    def test_the_cost_grows_when_the_noise_shrinks(self, client: TestClient, factory: Factory) -> None:
        user = factory.user(budget=1000.0)
        costs = [release(client, user, make_result(factory, user.id, event=dp_event(sigma))).json()["payload"]
                 for sigma in (4.0, 2.0, 1.0, 0.7)]
        assert [c["epsilon"] for c in costs] == sorted(c["epsilon"] for c in costs)
        assert len({c["epsilon"] for c in costs}) == 4
        assert [c["rdp"] for c in costs] == sorted(c["rdp"] for c in costs)

    def test_the_default_order_is_the_privacy_librarys(self) -> None:
        assert NodeSettings().rdp_order == accounting.DEFAULT_RDP_ORDER
        assert NodeSettings().delta == accounting.DEFAULT_DELTA

    def test_events_recorded_at_another_order_are_reread_at_the_nodes(self, client: TestClient,
                                                                       factory: Factory) -> None:
        user, officer = factory.user(budget=30.0), factory.user("Compliance Officer")
        event = dp_event(1.5)
        approve(client, officer, release(client, user, make_result(factory, user.id, event=event)).json()["id"])
        with factory.sessions() as session:
            at_twelve = budget.PrivacyConfig(delta=1e-5, order=12.0, release_policy="dp_only", webhook_url=None,
                                             request_ttl=budget.timedelta(days=1))
            figures = budget.spent(session, at_twelve, user_id=user.id)
        assert figures.rdp == pytest.approx(accounting.rdp_at_order(events.event_from_dict(event), 12.0))

    def test_the_ledger_views_need_manage_budgets_for_others(self, client: TestClient, factory: Factory) -> None:
        user, officer = factory.user(budget=10.0), factory.user("Compliance Officer")
        approve(client, officer, release(client, user, make_result(factory, user.id, event=dp_event())).json()["id"])
        mine = client.get(f"{API}/budget/ledger", headers=user.headers).json()
        assert mine["total"] == 1 and mine["items"][0]["user_id"] == user.id
        assert client.get(f"{API}/budget/users/{user.email}", headers=factory.user().headers).status_code == 403
        theirs = client.get(f"{API}/budget/users/{user.email}/ledger", headers=officer.headers).json()
        assert theirs["items"] == mine["items"]
        assert len(ledger_rows(factory)) == 1


class TestTheFilterCheck:
    """``ledger.check``: what admitting a job asks of the ledger (the admission itself: tests/test_admission.py)."""

    def _call(self, client: TestClient, user_id: int, event: object, dataset_ids: list[int] | None = None) -> None:
        sessions = client.app.state.sessions  # type: ignore[attr-defined]
        with sessions.begin() as session:
            user = session.get(User, user_id)
            cfg = budget.config(session, client.app.state.settings)  # type: ignore[attr-defined]
            ledger.check(session, cfg, user_id=user.id, user_cap=user.budget_epsilon, dataset_ids=dataset_ids or [],
                         cost=ledger.cost_of(event, cfg))  # type: ignore[arg-type]

    def test_admits_an_event_that_fits(self, client: TestClient, factory: Factory) -> None:
        user = factory.user(budget=10.0)
        self._call(client, user.id, events.event_from_dict(dp_event()))

    def test_refuses_an_event_over_the_cap_naming_cost_what_fits_and_cap(
        self, client: TestClient, factory: Factory
    ) -> None:
        user = factory.user(budget=3.0)
        with pytest.raises(BudgetExceeded) as caught:
            self._call(client, user.id, events.event_from_dict(dp_event(0.8)))
        message = caught.value.message
        assert "over your privacy budget" in message and "costs ε 3.276" in message
        assert "further event that fits costs ε 3" in message and "cap of ε 3" in message
        assert caught.value.details["cap"] == "user" and caught.value.details["remaining_epsilon"] == 3.0

    def test_counts_what_the_ledger_already_holds(self, client: TestClient, factory: Factory) -> None:
        event = dp_event()
        user, officer = factory.user(budget=2.2), factory.user("Compliance Officer")
        self._call(client, user.id, events.event_from_dict(event))
        approve(client, officer, release(client, user, make_result(factory, user.id, event=event)).json()["id"])
        with pytest.raises(BudgetExceeded, match="spent ε 2.039"):
            self._call(client, user.id, events.event_from_dict(event))

    def test_checks_every_datasets_cap(self, client: TestClient, factory: Factory) -> None:
        user, officer = factory.user(budget=100.0), factory.user("Compliance Officer")
        capped, free = factory.dataset(tensors=[factory.tensor()]), factory.dataset(tensors=[factory.tensor()])
        client.put(f"{API}/budget/datasets/{capped}", headers=officer.headers, json={"epsilon": 1.9})
        with pytest.raises(BudgetExceeded, match=f"dataset {capped}"):
            self._call(client, user.id, events.event_from_dict(dp_event()), [free, capped])
        self._call(client, user.id, events.event_from_dict(dp_event()), [free])

    def test_refuses_an_event_outside_differential_privacy(self, client: TestClient, factory: Factory) -> None:
        with pytest.raises(BudgetExceeded, match="not differentially private"):
            self._call(client, factory.user(budget=1e6).id, None)
