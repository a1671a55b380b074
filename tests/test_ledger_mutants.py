"""The ledger's rules at their edges, written to kill the mutants scripts/mutation found surviving (docs/mutation.md).

Through the ledger's public functions on a real database: what an event costs, what a user and a dataset have
spent (and re-read at new terms), the filter's refusals and what they name, and what an entry records.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import dp_accounting
import pytest
from sqlalchemy.orm import Session

from grid_runtime.core.errors import BudgetExceeded
from grid_runtime.node.budget import ledger
from grid_runtime.node.budget.models import DatasetCap
from grid_runtime.privacy import accounting, events
from tests.factories import Factory


@dataclass(frozen=True)
class Terms:
    order: float = 6.0
    delta: float = 1e-5


TERMS = Terms()
GAUSS = events.gaussian_event(noise_multiplier=2.0)
LAPLACE = events.laplace_event(noise_multiplier=1.0)


@pytest.fixture
def session(factory: Factory) -> Iterator[Session]:
    with factory.sessions.begin() as s:
        yield s


def put(session: Session, event: object, *, user: int = 1, datasets: tuple[int, ...] = (), terms: Terms = TERMS,
        **ids: int) -> int:
    cost = ledger.cost_of(event, terms)  # type: ignore[arg-type]
    return ledger.record(session, terms, user_id=user, user_email=f"u{user}@example.org", cost=cost,
                         dataset_ids=datasets, **ids).id


class TestCost:
    def test_a_private_event_costs_its_own_epsilon_and_its_rdp_at_the_nodes_order(self) -> None:
        terms = Terms(order=8.0, delta=1e-6)
        cost = ledger.cost_of(GAUSS, terms)
        assert cost.event == events.event_to_dict(GAUSS)
        assert cost.epsilon == accounting.epsilon(GAUSS, 1e-6)
        assert cost.rdp == pytest.approx(accounting.rdp_at_order(GAUSS, 8.0))
        assert (cost.order, cost.delta) == (8.0, 1e-6)
        assert not cost.non_private
        assert cost.mechanism == "Gaussian mechanism, noise multiplier 2"
        assert ledger.cost_of(events.event_to_dict(GAUSS), terms) == cost

    @pytest.mark.parametrize("event", [None, events.non_private_event(), {"type": "non_private"}])
    def test_something_not_private_costs_infinity_with_no_event(self, event: object) -> None:
        cost = ledger.cost_of(event, Terms(order=7.0, delta=1e-7))  # type: ignore[arg-type]
        assert cost.event is None and cost.non_private
        assert cost.epsilon == math.inf and cost.rdp == math.inf
        assert (cost.order, cost.delta) == (7.0, 1e-7)
        assert cost.mechanism == "not differentially private"

    def test_a_malformed_event_is_refused(self) -> None:
        with pytest.raises(ValueError):
            ledger.cost_of({"type": "composed", "events": []}, TERMS)


class TestSpentFigures:
    def test_nothing_spent_reads_zero(self) -> None:
        nothing = ledger.Spent()
        assert nothing.epsilon == 0.0
        assert nothing.epsilon_with(ledger.cost_of(dp_accounting.NoOpDpEvent(), TERMS)) == 0.0
        assert nothing.remaining(5.0) == accounting.remaining_epsilon(0.0, 5.0)

    def test_spent_epsilon_is_the_rdp_sum_converted_at_the_order(self) -> None:
        figures = ledger.Spent(rdp=2.0, order=8.0, delta=1e-6)
        assert figures.epsilon == pytest.approx(accounting.epsilon_from_rdp(2.0, 8.0, 1e-6))
        cost = ledger.cost_of(GAUSS, Terms(order=8.0, delta=1e-6))
        assert figures.epsilon_with(cost) == pytest.approx(accounting.epsilon_from_rdp(2.0 + cost.rdp, 8.0, 1e-6))
        assert figures.epsilon_with(ledger.cost_of(None, TERMS)) == math.inf
        assert figures.remaining(20.0) == pytest.approx(accounting.remaining_epsilon(2.0, 20.0, 1e-6, 8.0))

    def test_exactly_one_of_user_and_dataset(self, session: Session) -> None:
        with pytest.raises(ValueError, match="exactly one of user_id and dataset_id"):
            ledger.spent(session, TERMS)
        with pytest.raises(ValueError, match="exactly one of user_id and dataset_id"):
            ledger.spent(session, TERMS, user_id=1, dataset_id=2)

    def test_a_user_and_each_dataset_charged_see_their_own_entries(self, session: Session) -> None:
        put(session, GAUSS, user=1, datasets=(10, 11), job_id=100)
        put(session, LAPLACE, user=1, datasets=(11,), request_id=200)
        put(session, GAUSS, user=2, datasets=(12,))
        put(session, None, user=1, datasets=(10,))
        g, lap = ledger.cost_of(GAUSS, TERMS), ledger.cost_of(LAPLACE, TERMS)
        mine = ledger.spent(session, TERMS, user_id=1)
        assert mine.rdp == pytest.approx(g.rdp + lap.rdp)
        assert mine.simple_sum == pytest.approx(g.epsilon + lap.epsilon)
        assert (mine.events, mine.non_private_events) == (2, 1)
        assert (mine.order, mine.delta) == (TERMS.order, TERMS.delta)
        ten = ledger.spent(session, TERMS, dataset_id=10)
        assert (ten.rdp, ten.events, ten.non_private_events) == (pytest.approx(g.rdp), 1, 1)
        eleven = ledger.spent(session, TERMS, dataset_id=11)
        assert eleven.rdp == pytest.approx(g.rdp + lap.rdp) and eleven.events == 2
        assert ledger.spent(session, TERMS, dataset_id=99).events == 0
        assert ledger.spent(session, TERMS, user_id=3).rdp == 0.0

    def test_one_job_or_one_request_can_be_left_out(self, session: Session) -> None:
        put(session, GAUSS, user=1, job_id=100)
        put(session, LAPLACE, user=1, request_id=200)
        put(session, GAUSS, user=1)
        g, lap = ledger.cost_of(GAUSS, TERMS), ledger.cost_of(LAPLACE, TERMS)
        without_job = ledger.spent(session, TERMS, user_id=1, excluding_job=100)
        assert without_job.rdp == pytest.approx(g.rdp + lap.rdp) and without_job.events == 2
        without_request = ledger.spent(session, TERMS, user_id=1, excluding_request=200)
        assert without_request.rdp == pytest.approx(2 * g.rdp) and without_request.events == 2
        assert ledger.spent(session, TERMS, user_id=1, excluding_job=999).events == 3

    def test_entries_recorded_at_other_terms_are_reread_at_the_current_ones(self, session: Session) -> None:
        old = Terms(order=6.0, delta=1e-5)
        put(session, GAUSS, terms=old)
        put(session, LAPLACE, terms=Terms(order=12.0, delta=1e-5))
        new = Terms(order=12.0, delta=1e-7)
        figures = ledger.spent(session, new, user_id=1)
        assert figures.rdp == pytest.approx(
            accounting.rdp_at_order(GAUSS, 12.0) + accounting.rdp_at_order(LAPLACE, 12.0))
        assert figures.simple_sum == pytest.approx(
            accounting.epsilon(GAUSS, 1e-7) + accounting.epsilon(LAPLACE, 1e-7))
        same_delta = ledger.spent(session, Terms(order=12.0, delta=1e-5), user_id=1)
        assert same_delta.rdp == pytest.approx(figures.rdp)
        assert same_delta.simple_sum == pytest.approx(
            accounting.epsilon(GAUSS, 1e-5) + accounting.epsilon(LAPLACE, 1e-5))


class TestCheck:
    def test_something_not_private_is_refused_whatever_the_cap(self, session: Session) -> None:
        with pytest.raises(BudgetExceeded, match="not differentially private") as refused:
            ledger.check(session, TERMS, user_id=1, user_cap=math.inf, dataset_ids=[], cost=ledger.cost_of(None, TERMS))
        assert refused.value.details == {"epsilon": None, "non_private": True}

    def test_the_user_filter_admits_up_to_the_cap_and_names_the_figures_past_it(self, session: Session) -> None:
        cost = ledger.cost_of(GAUSS, TERMS)
        cap = accounting.epsilon_from_rdp(2 * cost.rdp) * (1 + 1e-9)
        put(session, GAUSS)
        ledger.check(session, TERMS, user_id=1, user_cap=cap, dataset_ids=[], cost=cost)
        put(session, GAUSS)
        before = ledger.spent(session, TERMS, user_id=1)
        with pytest.raises(BudgetExceeded) as refused:
            ledger.check(session, TERMS, user_id=1, user_cap=cap, dataset_ids=[], cost=cost)
        assert refused.value.message.startswith("over your privacy budget: this costs ε ")
        assert "you have spent ε" in refused.value.message and "it would take you to ε" in refused.value.message
        assert f"of a cap of ε {cap:.4g}" in refused.value.message
        assert f"to ε {before.epsilon_with(cost):.4g}, past the cap" in refused.value.message
        assert refused.value.details == {
            "cap": "user", "epsilon": cost.epsilon, "spent_epsilon": before.epsilon, "budget_epsilon": cap,
            "remaining_epsilon": before.remaining(cap)}
        ledger.check(session, TERMS, user_id=2, user_cap=cap, dataset_ids=[], cost=cost)

    def test_every_capped_dataset_is_checked_and_an_uncapped_one_is_not(
        self, factory: Factory, session: Session
    ) -> None:
        capped, uncapped = factory.dataset(tensors=[factory.tensor()]), factory.dataset(tensors=[factory.tensor()])
        cost = ledger.cost_of(GAUSS, TERMS)
        cap = accounting.epsilon_from_rdp(1.5 * cost.rdp)
        session.add(DatasetCap(dataset_id=capped, epsilon=cap))
        session.flush()
        assert ledger.dataset_cap(session, capped) == cap and ledger.dataset_cap(session, uncapped) is None
        ledger.lock_caps(session, [capped, uncapped])
        put(session, GAUSS, user=7, datasets=(capped, uncapped))
        ledger.check(session, TERMS, user_id=1, user_cap=1e6, dataset_ids=[uncapped], cost=cost)
        with pytest.raises(BudgetExceeded) as refused:
            ledger.check(session, TERMS, user_id=1, user_cap=1e6, dataset_ids=[uncapped, capped], cost=cost)
        on_dataset = ledger.spent(session, TERMS, dataset_id=capped)
        assert refused.value.message.startswith(f"over dataset {capped}'s privacy cap: this costs ε")
        assert "its users have spent" in refused.value.message and "take it to ε" in refused.value.message
        assert refused.value.details == {
            "cap": "dataset", "dataset_id": capped, "epsilon": cost.epsilon, "spent_epsilon": on_dataset.epsilon,
            "cap_epsilon": cap, "remaining_epsilon": on_dataset.remaining(cap)}


class TestCheckAtTheNodesTerms:
    def test_the_filter_runs_at_the_nodes_order_for_the_user_and_each_dataset(
        self, factory: Factory, session: Session
    ) -> None:
        # RDP 4.0 fits a cap of ε 5 at order 12 (budget 4.27) but not at order 6 (budget 3.24)
        terms = Terms(order=12.0, delta=1e-5)
        sigma = (12.0 / (2 * 4.0)) ** 0.5
        cost = ledger.cost_of(events.gaussian_event(noise_multiplier=sigma), terms)
        assert cost.rdp == pytest.approx(4.0)
        dataset = factory.dataset(tensors=[factory.tensor()])
        session.add(DatasetCap(dataset_id=dataset, epsilon=5.0))
        session.flush()
        ledger.check(session, terms, user_id=1, user_cap=5.0, dataset_ids=[dataset], cost=cost)
        with pytest.raises(BudgetExceeded):
            ledger.check(session, Terms(order=6.0), user_id=1, user_cap=5.0, dataset_ids=[],
                         cost=ledger.cost_of(events.gaussian_event(noise_multiplier=(6.0 / 8.0) ** 0.5), TERMS))

    def test_an_uncapped_dataset_first_does_not_skip_a_capped_one_after_it(
        self, factory: Factory, session: Session
    ) -> None:
        uncapped = factory.dataset(tensors=[factory.tensor()])
        capped = factory.dataset(tensors=[factory.tensor()])
        assert uncapped < capped
        session.add(DatasetCap(dataset_id=capped, epsilon=0.5))
        session.flush()
        with pytest.raises(BudgetExceeded, match=f"^over dataset {capped}'s privacy cap"):
            ledger.check(session, TERMS, user_id=1, user_cap=1e6, dataset_ids=[uncapped, capped],
                         cost=ledger.cost_of(GAUSS, TERMS))

    def test_the_refusal_of_something_not_private_in_full(self, session: Session) -> None:
        with pytest.raises(BudgetExceeded) as refused:
            ledger.check(session, TERMS, user_id=1, user_cap=5.0, dataset_ids=[], cost=ledger.cost_of(None, TERMS))
        assert refused.value.message == ("this is not differentially private: its privacy cost is infinite, and no "
                                         "budget can admit it")

    def test_a_spent_total_of_exactly_one_converts(self) -> None:
        nothing_more = ledger.cost_of(dp_accounting.NoOpDpEvent(), TERMS)
        assert nothing_more.rdp == 0.0
        assert ledger.Spent(rdp=1.0).epsilon_with(nothing_more) == pytest.approx(accounting.epsilon_from_rdp(1.0))
        assert ledger.Spent(rdp=1.0).epsilon_with(nothing_more) > 0


class TestRecord:
    def test_an_entry_records_the_cost_terms_and_every_dataset_charged(self, session: Session) -> None:
        terms = Terms(order=9.0, delta=1e-6)
        entry_id = put(session, GAUSS, user=4, datasets=(12, 11, 12), terms=terms, job_id=5, result_id=6)
        rows, total = ledger.entries(session, user_id=4)
        assert total == 1
        entry = rows[0]
        cost = ledger.cost_of(GAUSS, terms)
        assert (entry.id, entry.user_id, entry.user_email, entry.dataset_id) == (entry_id, 4, "u4@example.org", 11)
        assert (entry.job_id, entry.result_id, entry.request_id, entry.tensor_id) == (5, 6, None, None)
        assert entry.event == cost.event and entry.non_private is False
        assert (entry.rdp_order, entry.rdp, entry.epsilon, entry.delta) == (9.0, cost.rdp, cost.epsilon, 1e-6)
        assert ledger.charged_datasets(session, [entry_id]) == {entry_id: [11, 12]}

    def test_the_named_dataset_and_a_non_private_entry(self, session: Session) -> None:
        entry_id = put(session, None, user=4, datasets=(3,), dataset_id=8, request_id=9, tensor_id=10)
        alone = put(session, GAUSS, user=4)
        rows, _ = ledger.entries(session, user_id=4)
        entry = next(r for r in rows if r.id == entry_id)
        assert entry.dataset_id == 8 and (entry.request_id, entry.tensor_id) == (9, 10)
        assert entry.event == {"type": "non_private"} and entry.non_private is True
        assert entry.rdp is None and entry.epsilon is None
        assert next(r for r in rows if r.id == alone).dataset_id is None
        assert ledger.charged_datasets(session, [entry_id, alone]) == {entry_id: [3], alone: []}
        assert ledger.charged_datasets(session, []) == {}

    def test_a_jobs_entry_is_its_first_one(self, session: Session) -> None:
        first = put(session, GAUSS, job_id=50)
        put(session, LAPLACE, job_id=50)
        entry = ledger.job_entry(session, 50)
        assert entry is not None and entry.id == first
        assert ledger.job_entry(session, 51) is None

    def test_entries_are_newest_first_by_user_dataset_or_all_and_paged(self, session: Session) -> None:
        ids = [put(session, GAUSS, user=u, datasets=d) for u, d in ((1, (20,)), (2, (20, 21)), (1, ()), (3, (21,)))]
        everyone, total = ledger.entries(session)
        assert total == 4 and [e.id for e in everyone] == ids[::-1]
        assert [e.id for e in ledger.entries(session, user_id=1)[0]] == [ids[2], ids[0]]
        rows, total = ledger.entries(session, dataset_id=21)
        assert total == 2 and [e.id for e in rows] == [ids[3], ids[1]]
        page, total = ledger.entries(session, limit=2, offset=1)
        assert total == 4 and [e.id for e in page] == [ids[2], ids[1]]
        assert [e.id for e in ledger.entries(session, user_id=2, dataset_id=21)[0]] == [ids[1]]

    def test_a_page_holds_fifty_entries_unless_told_otherwise(self, session: Session) -> None:
        for _ in range(51):
            put(session, LAPLACE, user=9)
        rows, total = ledger.entries(session, user_id=9)
        assert (len(rows), total) == (50, 51)
        assert ledger.entries(session, user_id=10) == ([], 0)


class TestSpentIsScopedAndAtTheGivenTerms:
    """Survivors of the full run of 2026-12-01: each figure of ``spent`` belongs to the user or dataset asked
    about, at the terms asked for, and a scope must be exactly one of them."""

    def test_non_private_events_are_counted_for_their_user_only(self, session: Session) -> None:
        put(session, None, user=31)
        put(session, GAUSS, user=32)
        assert ledger.spent(session, TERMS, user_id=31).non_private_events == 1
        assert ledger.spent(session, TERMS, user_id=32).non_private_events == 0
        assert ledger.spent(session, TERMS, user_id=33).non_private_events == 0

    def test_entries_at_other_terms_are_re_read_for_their_user_only(self, session: Session) -> None:
        put(session, GAUSS, user=34, terms=Terms(order=6.0, delta=1e-5))
        later = Terms(order=8.0, delta=1e-6)
        theirs = ledger.spent(session, later, user_id=34)
        assert theirs.rdp == pytest.approx(accounting.rdp_at_order(GAUSS, 8.0)) and theirs.simple_sum > 0
        nobody = ledger.spent(session, later, user_id=35)
        assert (nobody.rdp, nobody.simple_sum, nobody.events) == (0.0, 0.0, 0)

    def test_the_figures_carry_the_terms_they_were_read_at(self, session: Session) -> None:
        figures = ledger.spent(session, Terms(order=8.0, delta=1e-6), user_id=36)
        assert (figures.order, figures.delta) == (8.0, 1e-6)

    @pytest.mark.parametrize("scope", [{}, {"user_id": 1, "dataset_id": 2}])
    def test_a_scope_is_exactly_one_of_a_user_and_a_dataset(self, session: Session, scope: dict[str, int]) -> None:
        with pytest.raises(ValueError, match="^give exactly one of user_id and dataset_id$"):
            ledger.spent(session, TERMS, **scope)
