"""The privacy library: event costs against dp-accounting, the Rényi filter, JSON round trips, the plain reading."""

from __future__ import annotations

import math

import dp_accounting
import pytest
from dp_accounting.rdp import RdpAccountant
from dp_accounting.rdp.rdp_privacy_accountant import compute_epsilon

from grid_runtime.privacy import (
    DEFAULT_DELTA,
    DEFAULT_RDP_ORDER,
    admits,
    calibrate_noise,
    delta_fits_rows,
    describe_event,
    dp_sgd_event,
    dp_sgd_plan,
    epsilon,
    epsilon_from_rdp,
    event_from_json,
    event_to_json,
    gaussian_event,
    hit_rate_bound,
    laplace_event,
    max_delta_for_rows,
    non_private_event,
    plain_reading,
    rdp_at_order,
    rdp_budget,
    remaining_epsilon,
    simple_sum_epsilon,
    spent_rdp,
    zcdp_event,
)

DELTA = 1e-5


def reference_epsilon(event: dp_accounting.DpEvent, delta: float = DELTA) -> float:
    """dp-accounting's own figure, built here independently of the library."""
    accountant = RdpAccountant()
    accountant.compose(event)
    return accountant.get_epsilon(delta)


class TestEventCost:
    def test_dp_sgd_cost_equals_dp_accountings_rdp_accountant(self):
        event = dp_sgd_event(sample_rate=0.032, noise_multiplier=1.1, steps=300)
        reference = dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(0.032, dp_accounting.GaussianDpEvent(1.1)), 300
        )
        assert event == reference
        assert epsilon(event, DELTA) == pytest.approx(reference_epsilon(reference), rel=1e-12)
        assert 0.5 < epsilon(event, DELTA) < 10

    def test_laplace_and_gaussian_costs_equal_dp_accountings(self):
        assert epsilon(laplace_event(noise_multiplier=2.0), DELTA) == pytest.approx(
            reference_epsilon(dp_accounting.LaplaceDpEvent(2.0)), rel=1e-12
        )
        assert epsilon(gaussian_event(noise_multiplier=3.0), DELTA) == pytest.approx(
            reference_epsilon(dp_accounting.GaussianDpEvent(3.0)), rel=1e-12
        )

    def test_cost_grows_when_noise_shrinks(self):
        costs = [
            epsilon(dp_sgd_event(sample_rate=0.01, noise_multiplier=sigma, steps=500), DELTA)
            for sigma in (2.0, 1.5, 1.2, 1.0, 0.8)
        ]
        assert costs == sorted(costs)
        assert len(set(costs)) == len(costs)

    def test_composition_is_monotone_in_steps_and_events(self):
        costs = [epsilon(dp_sgd_event(sample_rate=0.02, noise_multiplier=1.0, steps=n), DELTA) for n in (10, 100, 1000)]
        assert costs[0] < costs[1] < costs[2]
        events = [laplace_event(noise_multiplier=5.0)] * 4
        spent = [spent_rdp(events[:k]) for k in range(1, 5)]
        assert spent == sorted(spent) and spent[0] > 0

    def test_non_private_event_costs_infinity(self):
        assert math.isinf(epsilon(non_private_event(), DELTA))
        assert math.isinf(rdp_at_order(non_private_event()))
        assert not admits(0.0, rdp_at_order(non_private_event()), epsilon_cap=10.0, delta=DELTA)


class TestRenyiFilter:
    def test_rdp_at_order_equals_dp_accountings_value_at_that_order(self):
        event = dp_sgd_event(sample_rate=0.01, noise_multiplier=1.3, steps=200)
        accountant = RdpAccountant(orders=[DEFAULT_RDP_ORDER])
        accountant.compose(event)
        assert rdp_at_order(event) == pytest.approx(accountant.rdp[0], rel=1e-12)

    def test_budget_converts_back_to_the_cap(self):
        for cap in (2.0, 3.0, 8.0):
            assert epsilon_from_rdp(rdp_budget(cap, DELTA), DEFAULT_RDP_ORDER, DELTA) == pytest.approx(cap, rel=1e-9)

    def test_admits_exactly_n_events_and_refuses_the_next(self):
        event = laplace_event(noise_multiplier=4.0)
        per_event = rdp_at_order(event)
        cap = 3.0
        budget = rdp_budget(cap, DELTA)
        n = math.floor(budget / per_event)
        assert n >= 3, "the case must admit several events"
        assert budget - n * per_event > 1e-6 and (n + 1) * per_event - budget > 1e-6, "no float knife edge"
        spent = 0.0
        admitted = 0
        for _ in range(n + 5):
            if not admits(spent, per_event, epsilon_cap=cap, delta=DELTA):
                break
            spent += per_event
            admitted += 1
        assert admitted == n
        assert epsilon_from_rdp(spent, DEFAULT_RDP_ORDER, DELTA) <= cap
        assert epsilon_from_rdp(spent + per_event, DEFAULT_RDP_ORDER, DELTA) > cap

    def test_spent_figure_is_at_most_the_simple_sum_for_many_small_events(self):
        events = [gaussian_event(noise_multiplier=20.0)] * 20
        spent = epsilon_from_rdp(spent_rdp(events), DEFAULT_RDP_ORDER, DELTA)
        assert spent < simple_sum_epsilon(events, DELTA)

    def test_zero_cost_event_is_always_admitted(self):
        assert admits(100.0, 0.0, epsilon_cap=1.0, delta=DELTA)

    def test_tiny_cap_admits_nothing_at_the_default_order(self):
        assert rdp_budget(1.0, DELTA) < 0
        assert not admits(0.0, rdp_at_order(laplace_event(noise_multiplier=1000.0)), epsilon_cap=1.0, delta=DELTA)


class TestCalibration:
    def test_calibrated_noise_meets_the_target_epsilon(self):
        rate, steps = dp_sgd_plan(rows=2000, batch_size=64, epochs=5)
        sigma = calibrate_noise(2.0, DELTA, sample_rate=rate, steps=steps)
        reached = reference_epsilon(dp_sgd_event(sample_rate=rate, noise_multiplier=sigma, steps=steps))
        assert reached <= 2.0
        assert reached == pytest.approx(2.0, abs=1e-3)

    def test_plan_matches_the_trainers_poisson_schedule(self):
        assert dp_sgd_plan(rows=2000, batch_size=64, epochs=5) == (0.032, 5 * 32)
        with pytest.raises(ValueError, match="batch_size"):
            dp_sgd_plan(rows=10, batch_size=64, epochs=1)


class TestJson:
    @pytest.mark.parametrize(
        "event",
        [
            dp_sgd_event(sample_rate=0.032, noise_multiplier=1.0, steps=155),
            laplace_event(noise_multiplier=0.5),
            gaussian_event(noise_multiplier=2.5),
            zcdp_event(rho=0.01),
            dp_accounting.ComposedDpEvent([laplace_event(noise_multiplier=2.0), gaussian_event(noise_multiplier=3.0)]),
            non_private_event(),
        ],
    )
    def test_round_trip_gives_the_same_event_and_cost(self, event):
        text = event_to_json(event)
        back = event_from_json(text)
        assert back == event
        assert event_to_json(back) == text
        if not isinstance(event, dp_accounting.NonPrivateDpEvent):
            assert epsilon(back, DELTA) == epsilon(event, DELTA)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ('{"type": "gaussian"}', "takes fields"),
            ('{"type": "gaussian", "noise_multiplier": -1}', "> 0"),
            ('{"type": "laplace", "noise_multiplier": "1"}', "finite number"),
            ('{"type": "poisson_sampled", "sampling_probability": 2, "event": {"type": "no_op"}}', "in \\(0, 1\\]"),
            ('{"type": "self_composed", "count": 1.5, "event": {"type": "no_op"}}', "integer"),
            ('{"type": "os.system", "noise_multiplier": 1}', "unknown privacy event type"),
            ('{"module_name": "os", "class_name": "system"}', "'type'"),
            ("not json", "not valid JSON"),
        ],
    )
    def test_malformed_json_is_refused_with_a_reason(self, text, message):
        with pytest.raises(ValueError, match=message):
            event_from_json(text)

    def test_describe_names_the_dp_sgd_settings(self):
        text = describe_event(dp_sgd_event(sample_rate=0.032, noise_multiplier=1.0, steps=155))
        assert "155 steps" in text and "0.032" in text and "noise multiplier 1" in text


class TestPlainReading:
    def test_epsilon_one_at_five_percent_bounds_the_hit_rate_by_13_6_percent(self):
        assert hit_rate_bound(1.0, 0.0, 0.05) == pytest.approx(0.05 * math.e)
        assert round(hit_rate_bound(1.0, DEFAULT_DELTA, 0.05) * 100, 1) == 13.6
        assert "13.6%" in plain_reading(1.0, DEFAULT_DELTA)

    def test_bound_is_capped_at_one_and_grows_with_epsilon(self):
        assert 0.9999 < hit_rate_bound(10.0, 1e-5, 0.05) <= 1.0
        assert hit_rate_bound(math.inf, 1e-5, 0.05) == 1.0
        assert hit_rate_bound(0.5, 1e-5) < hit_rate_bound(1.0, 1e-5) < hit_rate_bound(2.0, 1e-5)
        assert "Not differentially private" in plain_reading(math.inf, 1e-5)

    def test_the_reading_says_a_row_unless_one_row_per_person_is_declared(self):
        assert "whether a given row is in the data" in plain_reading(1.0, DEFAULT_DELTA)
        assert "a given person" not in plain_reading(1.0, DEFAULT_DELTA)
        assert "whether a given person is in the data" in plain_reading(1.0, DEFAULT_DELTA, one_row_per_person=True)
        assert "a given row" in plain_reading(math.inf, DEFAULT_DELTA)

    def test_the_issues_example_reads_the_cumulative_epsilon(self):
        # a count at ε 0.103 reads 5.5%; the user's enforced ε after it, 1.79, reads 29.9%
        assert "5.5%" in plain_reading(0.103, DEFAULT_DELTA)
        assert "29.9%" in plain_reading(1.79, DEFAULT_DELTA)


class TestRemaining:
    def test_a_fresh_budget_leaves_exactly_its_cap(self):
        assert remaining_epsilon(0.0, 3.0) == pytest.approx(3.0, rel=1e-9)
        assert remaining_epsilon(0.0, 10.0, 1e-5, 12.0) == pytest.approx(10.0, rel=1e-9)

    def test_it_is_the_conversion_of_what_is_left_at_the_order(self):
        spent = rdp_at_order(dp_sgd_event(sample_rate=0.02, noise_multiplier=1.0, steps=500), DEFAULT_RDP_ORDER)
        left = rdp_budget(8.0) - spent
        expected, _ = compute_epsilon([DEFAULT_RDP_ORDER], [left], DEFAULT_DELTA)
        assert remaining_epsilon(spent, 8.0) == pytest.approx(expected, rel=1e-12)
        # more than "cap minus spent": a single event's own ε carries its own conversion overhead
        assert remaining_epsilon(spent, 8.0) > 8.0 - epsilon_from_rdp(spent)

    def test_no_event_costing_more_fits_and_one_at_the_order_costing_that_much_does(self):
        spent = 0.4
        remaining = remaining_epsilon(spent, 5.0)
        left = rdp_budget(5.0) - spent
        # an event whose best order is the node's: a Gaussian whose RDP at α is exactly what is left
        sigma = math.sqrt(DEFAULT_RDP_ORDER / (2 * left))
        gaussian = gaussian_event(noise_multiplier=sigma)
        assert admits(spent, rdp_at_order(gaussian, DEFAULT_RDP_ORDER) * (1 - 1e-9), 5.0)
        assert epsilon(gaussian) <= remaining + 1e-9
        heavier = gaussian_event(noise_multiplier=sigma * 0.99)
        assert not admits(spent, rdp_at_order(heavier, DEFAULT_RDP_ORDER), 5.0)

    def test_nothing_fits_once_the_budget_is_used_and_an_infinite_cap_never_ends(self):
        assert remaining_epsilon(rdp_budget(3.0), 3.0) == 0.0
        assert remaining_epsilon(rdp_budget(3.0) + 1.0, 3.0) == 0.0
        assert remaining_epsilon(0.0, 1.0) == 0.0  # at δ 1e-5 and α 6 a cap below ~1.8 admits nothing
        assert math.isinf(remaining_epsilon(5.0, math.inf))
        with pytest.raises(ValueError):
            remaining_epsilon(-1.0, 3.0)


class TestDeltaForRows:
    def test_delta_must_be_at_most_one_over_ten_n(self):
        assert max_delta_for_rows(10_000) == pytest.approx(1e-5)
        assert delta_fits_rows(1e-5, 10_000)
        assert not delta_fits_rows(1e-5, 10_001)
        assert not delta_fits_rows(1e-5, 1_000_000)
        assert delta_fits_rows(1e-8, 1_000_000)
        with pytest.raises(ValueError):
            max_delta_for_rows(0)
        with pytest.raises(ValueError):
            delta_fits_rows(0.0, 10)


class TestDocumentedFigures:
    def test_the_figures_in_docs_privacy_md_are_the_codes(self):
        import importlib.util
        from pathlib import Path

        script = Path(__file__).resolve().parents[1] / "scripts" / "privacy_figures.py"
        spec = importlib.util.spec_from_file_location("privacy_figures", script)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        current = module.DOC.read_text()
        assert module.render(current) == current, "run scripts/privacy_figures.py"
        assert "5-15%" not in current and "5–15%" not in current
