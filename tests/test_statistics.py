"""DP statistics through OpenDP: values near the truth at large ε, events whose ε is what was configured."""

from __future__ import annotations

import math

import dp_accounting
import pytest
import torch
from dp_accounting.rdp import RdpAccountant

from grid_runtime.compute import statistics as st
from grid_runtime.privacy import event_from_json, event_to_json

DELTA = 1e-5
LAPLACE_RDP_SLACK = 0.01  # converting a pure-ε Laplace event through RDP adds ~0.003 at δ = 1e-5


def reference_epsilon(event: dp_accounting.DpEvent) -> float:
    accountant = RdpAccountant()
    accountant.compose(event)
    return accountant.get_epsilon(DELTA)


@pytest.fixture(scope="module")
def column() -> torch.Tensor:
    g = torch.Generator().manual_seed(42)
    return torch.rand(4000, generator=g) * 10.0  # uniform on [0, 10)


class TestValuesAtLargeEpsilon:
    @pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
    def test_count_sum_and_mean_are_close_to_the_truth(self, column, mechanism):
        count = st.count(column, epsilon=20.0, delta=DELTA, mechanism=mechanism)
        total = st.sum(column, bounds=(0.0, 10.0), epsilon=20.0, delta=DELTA, mechanism=mechanism)
        mean = st.mean(column, bounds=(0.0, 10.0), epsilon=20.0, delta=DELTA, mechanism=mechanism)
        assert abs(count.value - 4000) <= 5
        assert total.value == pytest.approx(float(column.sum()), abs=20.0)
        assert mean.value == pytest.approx(float(column.mean()), abs=0.02)

    @pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
    def test_histogram_counts_are_close_to_the_truth(self, column, mechanism):
        result = st.histogram(column, bounds=(0.0, 10.0), bins=5, epsilon=20.0, delta=DELTA, mechanism=mechanism)
        truth = torch.histc(column, bins=5, min=0.0, max=10.0).tolist()
        assert result.value["edges"] == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        assert all(abs(a - b) <= 5 for a, b in zip(result.value["counts"], truth, strict=True))

    def test_quantiles_are_close_to_the_truth(self, column):
        result = st.quantiles(column, bounds=(0.0, 10.0), alphas=[0.1, 0.5, 0.9], epsilon=20.0, delta=DELTA)
        truth = torch.quantile(column, torch.tensor([0.1, 0.5, 0.9])).tolist()
        assert all(abs(a - b) <= 0.1 for a, b in zip(result.value, truth, strict=True))

    def test_values_outside_the_bounds_are_clamped_not_used_to_set_bounds(self):
        data = torch.tensor([1.0, 2.0, 1000.0, float("nan"), float("inf")])
        result = st.sum(data, bounds=(0.0, 5.0), epsilon=50.0, delta=DELTA)
        # 1 + 2 + 5 (clamped) + 0 (NaN -> lower bound) + 5 (inf -> upper bound)
        assert result.value == pytest.approx(13.0, abs=1.5)


class TestEventsAsConfigured:
    @pytest.mark.parametrize("epsilon", [0.5, 1.0, 3.0])
    def test_laplace_events_cost_the_configured_epsilon(self, column, epsilon):
        for result in (
            st.count(column, epsilon=epsilon),
            st.sum(column, bounds=(0.0, 10.0), epsilon=epsilon),
            st.mean(column, bounds=(0.0, 10.0), epsilon=epsilon),
            st.histogram(column, bounds=(0.0, 10.0), bins=4, epsilon=epsilon),
        ):
            assert result.opendp_loss == pytest.approx(epsilon, rel=1e-6), result.statistic
            assert result.epsilon == pytest.approx(reference_epsilon(result.event), rel=1e-12)
            assert epsilon - 1e-6 <= result.epsilon <= epsilon + LAPLACE_RDP_SLACK, result.statistic

    def test_count_event_is_the_laplace_event_of_its_scale(self, column):
        result = st.count(column, epsilon=0.5)
        assert result.event == dp_accounting.LaplaceDpEvent(2.0)
        assert result.noise_scale == pytest.approx(2.0)

    @pytest.mark.parametrize("epsilon", [0.5, 2.0])
    def test_gaussian_events_cost_the_configured_epsilon_at_delta(self, column, epsilon):
        for result in (
            st.count(column, epsilon=epsilon, mechanism="gaussian"),
            st.sum(column, bounds=(-5.0, 10.0), epsilon=epsilon, mechanism="gaussian"),
            st.mean(column, bounds=(0.0, 10.0), epsilon=epsilon, mechanism="gaussian"),
            st.histogram(column, bounds=(0.0, 10.0), bins=4, epsilon=epsilon, mechanism="gaussian"),
        ):
            assert result.epsilon == pytest.approx(epsilon, rel=1e-4), result.statistic
            assert result.epsilon == pytest.approx(reference_epsilon(result.event), rel=1e-12)

    def test_quantile_events_are_zcdp_and_cost_the_configured_epsilon(self, column):
        result = st.quantiles(column, bounds=(0.0, 10.0), alphas=[0.25, 0.75], epsilon=1.0)
        assert isinstance(result.event, dp_accounting.ComposedDpEvent)
        assert all(isinstance(e, dp_accounting.ZCDpEvent) for e in result.event.events)
        assert result.epsilon == pytest.approx(1.0, rel=1e-3)
        assert result.epsilon <= 1.0 + 1e-9

    def test_events_survive_a_json_round_trip(self, column):
        result = st.mean(column, bounds=(0.0, 10.0), epsilon=1.0)
        assert event_from_json(event_to_json(result.event)) == result.event

    def test_noise_is_real_at_small_epsilon(self, column):
        values = {st.count(column, epsilon=0.1).value for _ in range(5)}
        assert len(values) > 1


class TestValidation:
    @pytest.mark.parametrize(
        ("bounds", "message"),
        [
            ((5.0, 1.0), "must be below"),
            ((0.0, math.inf), "finite"),
            ((math.nan, 1.0), "finite"),
            ((0.0,), r"\(lower, upper\)"),
        ],
    )
    def test_bad_bounds_are_refused(self, column, bounds, message):
        with pytest.raises(st.StatisticsError, match=message):
            st.sum(column, bounds=bounds, epsilon=1.0)

    def test_bad_privacy_settings_are_refused(self, column):
        with pytest.raises(st.StatisticsError, match="epsilon"):
            st.count(column, epsilon=0.0)
        with pytest.raises(st.StatisticsError, match="delta"):
            st.count(column, epsilon=1.0, delta=0.0)
        with pytest.raises(st.StatisticsError, match="mechanism"):
            st.count(column, epsilon=1.0, mechanism="numpy")

    def test_histogram_and_quantile_sizes_are_bounded(self, column):
        with pytest.raises(st.StatisticsError, match="bins"):
            st.histogram(column, bounds=(0.0, 1.0), bins=0, epsilon=1.0)
        with pytest.raises(st.StatisticsError, match="alphas"):
            st.quantiles(column, bounds=(0.0, 1.0), alphas=[1.5], epsilon=1.0)

    def test_a_table_is_not_a_column(self):
        with pytest.raises(st.StatisticsError, match="one column"):
            st.count(torch.zeros(10, 3), epsilon=1.0)


class TestSeveralColumnsInOneJob:
    """A sum or mean of several columns: one value a column, one composed event, planned without data."""

    @pytest.fixture(scope="class")
    def table(self) -> torch.Tensor:
        g = torch.Generator().manual_seed(5)
        return torch.stack([torch.rand(3000, generator=g) * 10.0, torch.rand(3000, generator=g) - 5.0,
                            torch.randn(3000, generator=g)], dim=1)

    @pytest.mark.parametrize("mechanism", ["laplace", "gaussian"])
    def test_each_column_uses_its_bounds_and_the_event_is_their_composition(self, table, mechanism):
        from grid_runtime.compute.tasks import _per_column, planned_statistic_event

        params = {"epsilon": 10.0, "mechanism": mechanism, "columns": [0, 1, 2],
                  "column_bounds": [[0.0, 10.0], [-5.0, -4.0], [-1.0, 1.0]]}
        outcome = _per_column("mean", table, params, DELTA)
        assert outcome.value[0] == pytest.approx(float(table[:, 0].mean()), abs=0.05)
        assert outcome.value[1] == pytest.approx(float(table[:, 1].mean()), abs=0.01)
        assert -1.0 <= outcome.value[2] <= 1.0  # clamped to its own bounds, not the first column's
        singles = [st.mean(table[:, i], bounds=b, epsilon=10.0, delta=DELTA, mechanism=mechanism).event
                   for i, b in enumerate(params["column_bounds"])]
        composed = dp_accounting.ComposedDpEvent(singles)
        assert reference_epsilon(outcome.event) == pytest.approx(reference_epsilon(composed), rel=1e-12)
        planned = planned_statistic_event("mean", params, DELTA)  # from the settings alone
        assert event_to_json(planned) == event_to_json(outcome.event)
        # charged once for the three: at most three single releases, and more than one
        assert reference_epsilon(singles[0]) < reference_epsilon(outcome.event) <= 3 * reference_epsilon(
            singles[0]) + 1e-9

    def test_only_sum_and_mean_take_several_columns(self, table):
        from grid_runtime.compute.tasks import planned_statistic_event

        with pytest.raises(ValueError, match="only sum, mean take several columns"):
            planned_statistic_event("quantiles", {"epsilon": 1.0, "columns": [0], "column_bounds": [[0, 1]],
                                                  "alphas": [0.5]}, DELTA)
        with pytest.raises(ValueError, match="one declared bound for each column"):
            planned_statistic_event("sum", {"epsilon": 1.0, "columns": [0, 1], "column_bounds": [[0, 1]]}, DELTA)
