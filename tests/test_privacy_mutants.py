"""The privacy library's edges, written to kill the mutants scripts/mutation found surviving (docs/mutation.md).

Each test states a rule of the specification (validation bounds, the filter at its boundary, the JSON form, the
cost card's wording) through the public functions of grid_runtime.privacy.
"""

from __future__ import annotations

import json
import math

import dp_accounting
import pytest

from grid_runtime.privacy import (
    DEFAULT_DELTA,
    DEFAULT_RDP_ORDER,
    admits,
    calibrate_noise,
    composed_epsilon,
    composed_event,
    delta_fits_rows,
    describe_event,
    dp_sgd_event,
    dp_sgd_plan,
    epsilon,
    epsilon_and_order,
    epsilon_from_rdp,
    event_from_dict,
    event_from_json,
    event_to_dict,
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
from grid_runtime.privacy.events import MAX_COMPOSED_EVENTS, MAX_EVENT_DEPTH

NO_OP = {"type": "no_op"}
GAUSS = {"type": "gaussian", "noise_multiplier": 1.0}


def refused(data: object, message: str) -> None:
    """``data`` does not decode; the message starts with ``message`` (a regular expression)."""
    with pytest.raises(ValueError, match="^" + message):
        event_from_dict(data)


class TestEventConstructors:
    @pytest.mark.parametrize("rate", [0, -0.1, 1.0000001, math.nan, "0.5"])
    def test_a_sample_rate_outside_zero_to_one_is_refused(self, rate: object) -> None:
        with pytest.raises(ValueError, match=r"^sample_rate must be in \(0, 1\]"):
            dp_sgd_event(sample_rate=rate, noise_multiplier=1.0, steps=1)  # type: ignore[arg-type]

    def test_a_sample_rate_of_exactly_one_and_one_step_are_accepted(self) -> None:
        event = dp_sgd_event(sample_rate=1, noise_multiplier=1.0, steps=1)
        assert event == dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(1, dp_accounting.GaussianDpEvent(1.0)), 1)

    @pytest.mark.parametrize("sigma", [0, -1, math.inf, math.nan, "1"])
    def test_a_noise_multiplier_must_be_a_finite_positive_number(self, sigma: object) -> None:
        for make in (gaussian_event, laplace_event):
            with pytest.raises(ValueError, match="^noise_multiplier must be a finite number > 0"):
                make(noise_multiplier=sigma)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="^noise_multiplier must be a finite number > 0"):
            dp_sgd_event(sample_rate=0.5, noise_multiplier=sigma, steps=1)  # type: ignore[arg-type]

    @pytest.mark.parametrize("steps", [0, -3, 1.5, True])
    def test_steps_must_be_a_whole_number_of_at_least_one(self, steps: object) -> None:
        with pytest.raises(ValueError, match="^steps must be an integer >= 1"):
            dp_sgd_event(sample_rate=0.5, noise_multiplier=1.0, steps=steps)  # type: ignore[arg-type]

    @pytest.mark.parametrize("rho", [0, -0.5, math.inf])
    def test_rho_must_be_positive_and_finite(self, rho: float) -> None:
        with pytest.raises(ValueError, match="^rho must be a finite number > 0"):
            zcdp_event(rho=rho)

    def test_the_events_are_the_dp_accounting_mechanisms_named(self) -> None:
        assert laplace_event(noise_multiplier=2.0) == dp_accounting.LaplaceDpEvent(2.0)
        assert gaussian_event(noise_multiplier=2.0) == dp_accounting.GaussianDpEvent(2.0)
        assert zcdp_event(rho=0.25) == dp_accounting.ZCDpEvent(0.25)
        assert non_private_event() == dp_accounting.NonPrivateDpEvent()

    def test_a_composed_event_holds_its_events_and_needs_one(self) -> None:
        parts = [laplace_event(noise_multiplier=1.0), gaussian_event(noise_multiplier=2.0)]
        assert composed_event(parts) == dp_accounting.ComposedDpEvent(parts)
        with pytest.raises(ValueError, match="^a composed event needs at least one event$"):
            composed_event([])


class TestJsonForm:
    def test_every_recorded_type_has_its_exact_json(self) -> None:
        assert event_to_dict(gaussian_event(noise_multiplier=2)) == {"type": "gaussian", "noise_multiplier": 2.0}
        assert event_to_dict(laplace_event(noise_multiplier=3)) == {"type": "laplace", "noise_multiplier": 3.0}
        assert event_to_dict(dp_accounting.ZCDpEvent(0.5, 0.25)) == {"type": "zcdp", "rho": 0.5, "xi": 0.25}
        assert event_to_dict(dp_sgd_event(sample_rate=0.25, noise_multiplier=1.5, steps=7)) == {
            "type": "self_composed", "count": 7,
            "event": {"type": "poisson_sampled", "sampling_probability": 0.25,
                      "event": {"type": "gaussian", "noise_multiplier": 1.5}},
        }
        assert event_to_dict(non_private_event()) == {"type": "non_private"}
        assert event_to_dict(dp_accounting.NoOpDpEvent()) == {"type": "no_op"}
        assert event_to_dict(composed_event([non_private_event(), dp_accounting.NoOpDpEvent()])) == {
            "type": "composed", "events": [{"type": "non_private"}, {"type": "no_op"}]}

    def test_an_unsupported_event_type_is_refused_by_name(self) -> None:
        with pytest.raises(ValueError, match="^cannot record a RandomizedResponseDpEvent"):
            event_to_dict(dp_accounting.RandomizedResponseDpEvent(0.5, 2))

    def test_the_json_is_sorted_and_refuses_non_finite_numbers(self) -> None:
        text = event_to_json(dp_accounting.ZCDpEvent(0.5, 0.25))
        assert text == '{"rho": 0.5, "type": "zcdp", "xi": 0.25}'
        with pytest.raises(ValueError):
            event_to_json(dp_accounting.GaussianDpEvent(math.inf))

    def test_every_type_reads_back_from_its_json(self) -> None:
        assert event_from_dict({"type": "laplace", "noise_multiplier": 3}) == dp_accounting.LaplaceDpEvent(3.0)
        assert event_from_dict({"type": "zcdp", "rho": 0.5, "xi": 0.25}) == dp_accounting.ZCDpEvent(0.5, 0.25)
        assert event_from_dict({"type": "zcdp", "rho": 0, "xi": 0}) == dp_accounting.ZCDpEvent(0.0, 0.0)
        assert event_from_dict({"type": "no_op"}) == dp_accounting.NoOpDpEvent()
        assert event_from_dict({"type": "non_private"}) == dp_accounting.NonPrivateDpEvent()
        assert event_from_dict({"type": "poisson_sampled", "sampling_probability": 1, "event": GAUSS}) == (
            dp_accounting.PoissonSampledDpEvent(1.0, dp_accounting.GaussianDpEvent(1.0)))
        assert event_from_dict({"type": "self_composed", "count": 1, "event": NO_OP}) == (
            dp_accounting.SelfComposedDpEvent(dp_accounting.NoOpDpEvent(), 1))

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"type": "zcdp", "rho": -0.1, "xi": 0}, "zcdp rho and xi must be >= 0$"),
            ({"type": "zcdp", "rho": 0.1, "xi": -0.1}, "zcdp rho and xi must be >= 0$"),
            ({"type": "zcdp", "rho": 0.1}, r"privacy event 'zcdp' takes fields \['rho', 'xi'\], got \['rho'\]$"),
            ({"type": "laplace", "noise_multiplier": 1, "extra": 1}, "privacy event 'laplace' takes fields"),
            ({"type": "no_op", "x": 1}, r"privacy event 'no_op' takes fields \[\], got \['x'\]"),
            ({"type": "non_private", "x": 1}, "privacy event 'non_private' takes fields"),
            ({"type": "gaussian", "noise_multiplier": True}, "expected a finite number, got True$"),
            ({"type": "gaussian", "noise_multiplier": math.inf}, "expected a finite number, got inf$"),
            ({"type": "gaussian", "noise_multiplier": None}, "expected a finite number, got None$"),
            ({"type": "poisson_sampled", "sampling_probability": 0, "event": NO_OP},
             r"sampling_probability must be in \(0, 1\], got 0.0$"),
            ({"type": "poisson_sampled", "sampling_probability": 0.5}, "privacy event 'poisson_sampled' takes"),
            ({"type": "self_composed", "count": 0, "event": NO_OP}, "count must be an integer >= 1, got 0$"),
            ({"type": "self_composed", "count": True, "event": NO_OP}, "self_composed count must be an integer$"),
            ({"type": "self_composed", "count": "2", "event": NO_OP}, "self_composed count must be an integer$"),
            ({"type": "composed", "events": []},
             f"composed events must be a list of 1 to {MAX_COMPOSED_EVENTS} events$"),
            ({"type": "composed", "events": NO_OP}, "composed events must be a list of 1 to"),
            ({"type": 3}, "a privacy event must be an object with a 'type'$"),
            ([NO_OP], "a privacy event must be an object with a 'type'$"),
            ({"type": "poisson_sampled", "sampling_probability": 0.5, "event": {"type": "bogus"}},
             "unknown privacy event type 'bogus'$"),
        ],
    )
    def test_malformed_events_are_refused_with_a_reason(self, data: object, message: str) -> None:
        refused(data, message)

    def test_an_empty_composed_list_never_decodes_to_a_zero_cost(self) -> None:
        with pytest.raises(ValueError, match=f"^composed events must be a list of 1 to {MAX_COMPOSED_EVENTS} events$"):
            event_from_json('{"type": "composed", "events": []}')

    def test_a_composed_event_holds_at_most_the_maximum_number_of_events(self) -> None:
        at_limit = {"type": "composed", "events": [NO_OP] * MAX_COMPOSED_EVENTS}
        assert len(event_from_dict(at_limit).events) == MAX_COMPOSED_EVENTS
        refused({"type": "composed", "events": [NO_OP] * (MAX_COMPOSED_EVENTS + 1)},
                "composed events must be a list of 1 to")

    def test_nesting_is_accepted_up_to_the_depth_limit_and_refused_beyond(self) -> None:
        def nested(levels: int) -> dict[str, object]:
            data: dict[str, object] = NO_OP
            for _ in range(levels):
                data = {"type": "self_composed", "count": 2, "event": data}
            return data

        event = event_from_dict(nested(MAX_EVENT_DEPTH))
        assert event_to_dict(event) == nested(MAX_EVENT_DEPTH)
        refused(nested(MAX_EVENT_DEPTH + 1), f"privacy event nested deeper than {MAX_EVENT_DEPTH} levels$")
        for kind in ("composed", "poisson_sampled"):
            at_limit: dict[str, object] = NO_OP
            for _ in range(MAX_EVENT_DEPTH):
                at_limit = ({"type": "composed", "events": [at_limit]} if kind == "composed" else
                            {"type": "poisson_sampled", "sampling_probability": 0.5, "event": at_limit})
            assert event_to_dict(event_from_dict(at_limit)) == at_limit
        deep_composed: dict[str, object] = NO_OP
        for _ in range(MAX_EVENT_DEPTH + 1):
            deep_composed = {"type": "composed", "events": [deep_composed]}
        refused(deep_composed, "privacy event nested deeper")
        deep_sampled: dict[str, object] = NO_OP
        for _ in range(MAX_EVENT_DEPTH + 1):
            deep_sampled = {"type": "poisson_sampled", "sampling_probability": 0.5, "event": deep_sampled}
        refused(deep_sampled, "privacy event nested deeper")

    def test_a_field_error_names_the_fields_expected_and_given(self) -> None:
        refused({"type": "zcdp", "rho": 1}, r"privacy event 'zcdp' takes fields \['rho', 'xi'\], got \['rho'\]")

    def test_invalid_json_text_is_refused(self) -> None:
        with pytest.raises(ValueError, match="^privacy event is not valid JSON: Expecting property name"):
            event_from_json("{]")
        assert event_from_json(json.dumps(GAUSS)) == dp_accounting.GaussianDpEvent(1.0)


class TestDescribe:
    def test_each_mechanism_has_its_line_for_the_cost_card(self) -> None:
        assert describe_event(gaussian_event(noise_multiplier=1.5)) == "Gaussian mechanism, noise multiplier 1.5"
        assert describe_event(laplace_event(noise_multiplier=2)) == "Laplace mechanism, noise multiplier 2"
        assert describe_event(zcdp_event(rho=0.125)) == "zero-concentrated DP, rho 0.125"
        assert describe_event(non_private_event()) == "not differentially private"
        assert describe_event(dp_accounting.NoOpDpEvent()) == "NoOpDpEvent"
        assert describe_event(dp_sgd_event(sample_rate=0.01, noise_multiplier=1.1, steps=300)) == (
            "DP-SGD: 300 steps, Poisson sampling rate 0.01, noise multiplier 1.1")
        assert describe_event(composed_event([laplace_event(noise_multiplier=1),
                                              gaussian_event(noise_multiplier=2)])) == (
            "Laplace mechanism, noise multiplier 1 + Gaussian mechanism, noise multiplier 2")

    def test_composites_that_are_not_dp_sgd_describe_their_parts(self) -> None:
        sampled = dp_accounting.PoissonSampledDpEvent(0.5, laplace_event(noise_multiplier=2))
        assert describe_event(sampled) == "Poisson sampling rate 0.5 of (Laplace mechanism, noise multiplier 2)"
        assert describe_event(dp_accounting.SelfComposedDpEvent(laplace_event(noise_multiplier=2), 3)) == (
            "3 x (Laplace mechanism, noise multiplier 2)")
        assert describe_event(dp_accounting.SelfComposedDpEvent(sampled, 4)) == (
            "4 x (Poisson sampling rate 0.5 of (Laplace mechanism, noise multiplier 2))")


class TestAccountingEdges:
    @pytest.mark.parametrize("delta", [0, 1, -1e-5, 1.5])
    def test_delta_must_be_strictly_between_zero_and_one(self, delta: float) -> None:
        event = gaussian_event(noise_multiplier=1.0)
        for call in (lambda: epsilon(event, delta), lambda: epsilon_and_order(event, delta),
                     lambda: epsilon_from_rdp(1.0, DEFAULT_RDP_ORDER, delta), lambda: rdp_budget(1.0, delta),
                     lambda: composed_epsilon([event], delta), lambda: delta_fits_rows(delta, 10),
                     lambda: calibrate_noise(1.0, delta, sample_rate=0.1, steps=10)):
            with pytest.raises(ValueError, match=r"^delta must be in \(0, 1\)"):
                call()

    @pytest.mark.parametrize("order", [1.01, 1.0, 0.5, math.inf, math.nan])
    def test_the_order_must_be_finite_and_above_1_01(self, order: float) -> None:
        for call in (lambda: rdp_at_order(gaussian_event(noise_multiplier=1.0), order),
                     lambda: epsilon_from_rdp(1.0, order), lambda: rdp_budget(1.0, order=order)):
            with pytest.raises(ValueError, match="^the RDP order must be a finite number > 1.01"):
                call()
        assert rdp_at_order(gaussian_event(noise_multiplier=1.0), 1.02) == pytest.approx(1.02 / 2)

    def test_epsilon_and_order_reports_the_accountants_best_order(self) -> None:
        event = gaussian_event(noise_multiplier=2.0)
        accountant = dp_accounting.rdp.RdpAccountant()
        accountant.compose(event)
        eps, order = accountant.get_epsilon_and_optimal_order(1e-6)
        assert epsilon_and_order(event, 1e-6) == (eps, order)
        assert epsilon(event, 1e-6) == eps

    def test_spent_rdp_is_the_sum_at_the_given_order(self) -> None:
        events = [gaussian_event(noise_multiplier=1.0), gaussian_event(noise_multiplier=2.0)]
        assert spent_rdp(events, 4.0) == pytest.approx(4.0 / 2 + 4.0 / 8)
        assert spent_rdp(events) == pytest.approx(DEFAULT_RDP_ORDER / 2 + DEFAULT_RDP_ORDER / 8)
        assert spent_rdp([]) == 0.0

    def test_epsilon_from_rdp_edges(self) -> None:
        for bad in (-0.001, math.nan):
            with pytest.raises(ValueError, match="^rdp must be >= 0"):
                epsilon_from_rdp(bad)
        assert epsilon_from_rdp(math.inf) == math.inf
        assert epsilon_from_rdp(0.0) == 0.0  # nothing spent is a valid figure, not an error
        order, delta = 6.0, 1e-5
        overhead = math.log1p(-1 / order) - math.log(delta * order) / (order - 1)
        assert epsilon_from_rdp(2.0, order, delta) == pytest.approx(2.0 + overhead)
        assert epsilon_from_rdp(2.0, 12.0, 1e-7) == pytest.approx(
            2.0 + math.log1p(-1 / 12.0) - math.log(1e-7 * 12.0) / 11.0)

    def test_rdp_budget_is_the_exact_inverse_and_refuses_negative_caps(self) -> None:
        assert rdp_budget(math.inf) == math.inf
        assert rdp_budget(0.0, 1e-5, 6.0) == pytest.approx(math.log(1e-5 * 6) / 5 - math.log1p(-1 / 6))
        for bad in (-0.1, math.nan):
            with pytest.raises(ValueError, match="^epsilon_cap must be >= 0"):
                rdp_budget(bad)
        assert epsilon_from_rdp(rdp_budget(5.0, 1e-6, 9.0), 9.0, 1e-6) == pytest.approx(5.0)

    def test_the_filter_admits_exactly_up_to_the_budget(self) -> None:
        budget = rdp_budget(5.0)
        assert admits(budget - 1.0, 1.0, 5.0)
        assert not admits(budget - 1.0, 1.0 + 1e-9, 5.0)
        assert admits(0.0, budget, 5.0)
        assert admits(10 * budget, 0.0, 5.0)
        assert admits(1e9, 1e9, math.inf)
        assert not admits(0.0, math.inf, 5.0)
        for spent, new in ((-1.0, 1.0), (1.0, -1.0), (math.nan, 1.0), (1.0, math.nan)):
            with pytest.raises(ValueError, match="^RDP values must be >= 0"):
                admits(spent, new, 5.0)

    def test_the_filter_uses_its_delta_and_order(self) -> None:
        new = rdp_budget(5.0, 1e-5, 6.0)
        assert admits(0.0, new, 5.0, 1e-5, 6.0)
        assert not admits(0.0, new, 5.0, 1e-9, 6.0)
        assert admits(0.0, 4.0, 5.0, 1e-5, 12.0)  # 4.0 fits the budget at order 12 (4.27), not at 6 (3.24)
        assert not admits(0.0, 4.0, 5.0, 1e-5, 6.0)
        assert not admits(0.0, rdp_budget(5.0, 1e-5, 12.0) * 1.0001, 5.0, 1e-5, 12.0)

    def test_remaining_edges(self) -> None:
        with pytest.raises(ValueError, match="^RDP values must be >= 0"):
            remaining_epsilon(-1.0, 5.0)
        with pytest.raises(ValueError, match="^RDP values must be >= 0"):
            remaining_epsilon(math.nan, 5.0)
        assert remaining_epsilon(1e9, math.inf) == math.inf
        budget = rdp_budget(5.0)
        assert remaining_epsilon(budget, 5.0) == 0.0
        assert remaining_epsilon(budget + 1, 5.0) == 0.0
        left = 0.5
        assert remaining_epsilon(budget - left, 5.0) == pytest.approx(epsilon_from_rdp(left))
        assert remaining_epsilon(0.0, 5.0, 1e-7, 12.0) == pytest.approx(
            min(5.0, epsilon_from_rdp(rdp_budget(5.0, 1e-7, 12.0), 12.0, 1e-7)))

    def test_max_delta_for_rows_is_one_over_ten_n(self) -> None:
        assert max_delta_for_rows(1) == 0.1
        assert max_delta_for_rows(1000) == pytest.approx(1e-4)
        for bad in (0, -5):
            with pytest.raises(ValueError, match="^rows must be >= 1"):
                max_delta_for_rows(bad)
        assert delta_fits_rows(1e-4, 1000)
        assert not delta_fits_rows(1.001e-4, 1000)
        assert delta_fits_rows(0.1, 1)
        assert delta_fits_rows(max_delta_for_rows(1000) * (1 + 1e-12), 1000)  # rounding tolerance, inclusive

    def test_sums_and_composition_figures(self) -> None:
        events = [laplace_event(noise_multiplier=1.0), laplace_event(noise_multiplier=2.0)]
        assert simple_sum_epsilon(events, 1e-6) == pytest.approx(epsilon(events[0], 1e-6) + epsilon(events[1], 1e-6))
        accountant = dp_accounting.rdp.RdpAccountant()
        for event in events:
            accountant.compose(event)
        assert composed_epsilon(events, 1e-6) == pytest.approx(accountant.get_epsilon(1e-6))
        assert composed_epsilon([], 1e-6) == 0.0

    def test_plan_edges(self) -> None:
        assert dp_sgd_plan(rows=1, batch_size=1, epochs=1) == (1.0, 1)
        assert dp_sgd_plan(rows=10, batch_size=10, epochs=1) == (1.0, 1)
        assert dp_sgd_plan(rows=10, batch_size=3, epochs=2) == (0.3, 8)
        for kwargs in ({"rows": 0, "batch_size": 1, "epochs": 1}, {"rows": 1, "batch_size": 0, "epochs": 1},
                       {"rows": 1, "batch_size": 1, "epochs": 0}):
            with pytest.raises(ValueError, match="^rows, batch_size and epochs must be >= 1$"):
                dp_sgd_plan(**kwargs)
        with pytest.raises(ValueError, match=r"^batch_size \(11\) cannot exceed the number of rows \(10\)"):
            dp_sgd_plan(rows=10, batch_size=11, epochs=1)

    @pytest.mark.parametrize("target", [0, -1, math.inf, math.nan])
    def test_calibration_needs_a_finite_positive_target(self, target: float) -> None:
        with pytest.raises(ValueError, match="^target_epsilon must be a finite number > 0"):
            calibrate_noise(target, sample_rate=0.1, steps=10)

    def test_calibration_meets_a_target_below_one(self) -> None:
        sigma = calibrate_noise(0.8, sample_rate=1.0, steps=1)
        assert 0.8 * 0.9999 < epsilon(dp_sgd_event(sample_rate=1.0, noise_multiplier=sigma, steps=1)) <= 0.8

    def test_calibration_checks_the_target_at_the_callers_delta(self) -> None:
        sigma = calibrate_noise(1.0, 1e-3, sample_rate=1.0, steps=1)
        assert 0.9999 < epsilon(dp_sgd_event(sample_rate=1.0, noise_multiplier=sigma, steps=1), 1e-3) <= 1.0

    def test_calibration_is_within_the_target_and_tight(self) -> None:
        sigma = calibrate_noise(2.0, 1e-6, sample_rate=0.05, steps=200)
        event = dp_sgd_event(sample_rate=0.05, noise_multiplier=sigma, steps=200)
        assert epsilon(event, 1e-6) <= 2.0
        assert epsilon(dp_sgd_event(sample_rate=0.05, noise_multiplier=sigma * 0.999, steps=200), 1e-6) > 2.0


class TestReadingEdges:
    def test_hit_rate_bound_is_the_minimum_of_its_two_terms(self) -> None:
        eps, delta, alpha = 0.5, 1e-3, 0.05
        upper = min(1.0, math.exp(eps) * alpha + delta)
        other = 1.0 - math.exp(-eps) * (1.0 - delta - alpha)
        assert hit_rate_bound(eps, delta, alpha) == pytest.approx(min(upper, other))
        assert hit_rate_bound(0.0, 0.0, alpha) == pytest.approx(alpha)
        # at a large false-positive rate the third term binds
        assert hit_rate_bound(1.0, 0.0, 0.9) == pytest.approx(1 - math.exp(-1) * 0.1)
        assert hit_rate_bound(1.0, 0.0, 1.0) == 1.0
        assert hit_rate_bound(1.0, 0.0, 0.0) == 0.0
        assert hit_rate_bound(3.0, 0.5, 0.2) == pytest.approx(1 - math.exp(-3) * 0.3)
        assert hit_rate_bound(3.0, 0.5, 0.5) == 1.0

    @pytest.mark.parametrize(("eps", "delta", "fpr"), [(-0.1, 0.0, 0.05), (1.0, -0.1, 0.05), (1.0, 1.1, 0.05),
                                                       (1.0, 0.0, -0.01), (1.0, 0.0, 1.01)])
    def test_hit_rate_bound_refuses_values_outside_their_ranges(self, eps: float, delta: float, fpr: float) -> None:
        message = "^false_positive_rate must be in" if not 0 <= fpr <= 1 else "^epsilon must be >= 0 and delta in"
        with pytest.raises(ValueError, match=message):
            hit_rate_bound(eps, delta, fpr)
        assert hit_rate_bound(1.0, 1.0, 0.05) == 1.0

    def test_the_reading_has_its_exact_wording(self) -> None:
        assert plain_reading(1.0, 1e-5) == (
            "At a 5% false-positive rate, ε = 1 (δ = 1e-05) bounds an attacker's hit rate at telling whether "
            "a given row is in the data by 13.6% (a blind guess gets 5%).")
        assert plain_reading(2.0, 1e-6, 0.1, one_row_per_person=True) == (
            "At a 10% false-positive rate, ε = 2 (δ = 1e-06) bounds an attacker's hit rate at telling whether "
            f"a given person is in the data by {hit_rate_bound(2.0, 1e-6, 0.1):.1%} (a blind guess gets 10%).")
        assert plain_reading(math.inf, 1e-5) == (
            "Not differentially private: an attacker may learn anything about a given row of the data.")
        assert plain_reading(math.inf, 1e-5, one_row_per_person=True).endswith("about a given person of the data.")

    def test_the_default_delta_is_the_documented_one(self) -> None:
        assert DEFAULT_DELTA == 1e-5
        assert DEFAULT_RDP_ORDER == 6.0
