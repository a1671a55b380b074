"""Differentially private statistics of one tensor column through OpenDP measurements.

Each function takes the column, the bounds the data owner declared (validated here, never read from the data)
and the privacy settings, runs one OpenDP measurement (SymmetricDistance in, i.e. add/remove one row), and
returns the value with its dp-accounting event, derived from the measurement's own privacy map so the ledger
records what OpenDP guarantees:

- Laplace (`MaxDivergence`, ε): `LaplaceDpEvent(1 / ε_map)`. Counts are computed as floats so the noise is
  OpenDP's float Laplace (a continuous-like lattice), which the event's RDP describes; integer (discrete)
  Laplace has a worse RDP curve and is not used.
- Gaussian (`ZeroConcentratedDivergence`, ρ): `GaussianDpEvent(1 / sqrt(2 ρ_map))`; σ is calibrated with
  dp-accounting so the event's ε at δ is the requested ε.
- Quantiles: OpenDP's `make_private_quantile` (exponential-mechanism family) in zCDP, one per α:
  `ZCDpEvent(ρ_map)` each.

The `epsilon` on a result is the event's ε at δ from dp-accounting's RDP accountant (the ledger's figure): for
Laplace it is a few thousandths above the configured pure ε, the price of converting through RDP.
NaN and ±inf in the column are mapped to the nearest bound row by row (a stable per-row map, no privacy cost).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import dp_accounting
import opendp.prelude as dp
from dp_accounting import DpEvent
from dp_accounting.rdp import RdpAccountant

from grid_runtime.privacy import (
    DEFAULT_DELTA,
    composed_event,
    gaussian_event,
    laplace_event,
    zcdp_event,
)
from grid_runtime.privacy import (
    epsilon as event_epsilon,
)

dp.enable_features("contrib")

Mechanism = Literal["laplace", "gaussian"]
MAX_EPSILON = 100.0
MAX_BINS = 10_000
MAX_CANDIDATES = 10_000


@dataclass(frozen=True)
class StatisticResult:
    statistic: str
    value: Any
    mechanism: str
    event: DpEvent
    epsilon: float
    delta: float
    noise_scale: float | list[float]
    opendp_loss: float
    """The measurement's own privacy map at d_in = 1: ε for Laplace, ρ for Gaussian and quantiles (total)."""


class StatisticsError(ValueError):
    """Bad bounds, settings or column."""


# ---- validation ----------------------------------------------------------------------------------------------


def _check_bounds(bounds: Sequence[float]) -> tuple[float, float]:
    if len(bounds) != 2:
        raise StatisticsError("bounds must be (lower, upper)")
    lower, upper = (float(b) for b in bounds)
    if not (math.isfinite(lower) and math.isfinite(upper)):
        raise StatisticsError("bounds must be finite numbers")
    if not lower < upper:
        raise StatisticsError(f"lower bound ({lower}) must be below upper bound ({upper})")
    if max(abs(lower), abs(upper)) > 1e15:
        raise StatisticsError("bounds must be within ±1e15")
    return lower, upper


def _check_privacy(epsilon: float, delta: float, mechanism: str) -> None:
    if not (math.isfinite(epsilon) and 0 < epsilon <= MAX_EPSILON):
        raise StatisticsError(f"epsilon must be in (0, {MAX_EPSILON}], got {epsilon!r}")
    if not (0 < delta < 1):
        raise StatisticsError(f"delta must be in (0, 1), got {delta!r}")
    if mechanism not in ("laplace", "gaussian"):
        raise StatisticsError(f"mechanism must be 'laplace' or 'gaussian', got {mechanism!r}")


def _column(values: Any, bounds: tuple[float, float] | None) -> list[float]:
    """The column as a list of finite floats (NaN and ±inf mapped to the bounds, or to 0 when none apply)."""
    if hasattr(values, "detach"):  # a torch tensor, without importing torch here
        values = values.detach().cpu().double()
        if values.dim() == 2 and values.shape[1] == 1:
            values = values.reshape(-1)
        if values.dim() != 1:
            raise StatisticsError(f"expected one column, got shape {list(values.shape)}")
        values = values.tolist()
    lower, upper = bounds if bounds is not None else (0.0, 0.0)
    column = []
    for v in values:
        v = float(v)
        if math.isnan(v):
            v = lower
        elif math.isinf(v):
            v = upper if v > 0 else lower
        column.append(v)
    return column


def _domain() -> tuple[Any, Any]:
    return dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.symmetric_distance()


def _gaussian_sigma(epsilon: float, delta: float, parts: int = 1) -> float:
    """Noise multiplier of each of `parts` Gaussian releases that together cost `epsilon` at `delta`."""

    def make(sigma: float) -> DpEvent:
        return dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(sigma), parts)

    sigma = float(
        dp_accounting.calibrate_dp_mechanism(
            RdpAccountant, make, epsilon, delta, bracket_interval=dp_accounting.LowerEndpointAndGuess(1e-4, 1.0)
        )
    )
    while event_epsilon(make(sigma), delta) > epsilon:
        sigma *= 1 + 1e-7
    return sigma


def _noised(transformation: Any, mechanism: str, scale: float) -> Any:
    return transformation >> (
        dp.m.then_laplace(scale=scale) if mechanism == "laplace" else dp.m.then_gaussian(scale=scale)
    )


def _event_of(measurement: Any, mechanism: str) -> tuple[DpEvent, float]:
    loss = float(measurement.map(1))
    if mechanism == "laplace":
        return laplace_event(noise_multiplier=1.0 / loss), loss
    return gaussian_event(noise_multiplier=1.0 / math.sqrt(2.0 * loss)), loss


def _release(
    statistic: str, transformation: Any, epsilon: float, delta: float, mechanism: str, parts: int = 1
) -> tuple[Any, DpEvent, float, float]:
    """Build and run nothing yet: returns (measurement, event, scale, loss) for one noised transformation."""
    sensitivity = float(transformation.map(1))
    if mechanism == "laplace":
        scale = sensitivity * parts / epsilon
    else:
        scale = sensitivity * _gaussian_sigma(epsilon, delta, parts)
    measurement = _noised(transformation, mechanism, scale)
    event, loss = _event_of(measurement, mechanism)
    return measurement, event, scale, loss


def _result(
    statistic: str, value: Any, mechanism: str, event: DpEvent, delta: float, scale: Any, loss: float
) -> StatisticResult:
    return StatisticResult(
        statistic=statistic,
        value=value,
        mechanism=mechanism,
        event=event,
        epsilon=event_epsilon(event, delta),
        delta=delta,
        noise_scale=scale,
        opendp_loss=loss,
    )


# ---- statistics -------------------------------------------------------------------------------------------


def count(
    values: Any, *, epsilon: float, delta: float = DEFAULT_DELTA, mechanism: Mechanism = "laplace"
) -> StatisticResult:
    """The number of rows, noised (rounded, at least 0)."""
    _check_privacy(epsilon, delta, mechanism)
    column = _column(values, None)
    transformation = _domain() >> dp.t.then_count(TO=float)
    measurement, event, scale, loss = _release("count", transformation, epsilon, delta, mechanism)
    return _result("count", max(0, round(measurement(column))), mechanism, event, delta, scale, loss)


def sum(  # noqa: A001 - the statistic's name
    values: Any,
    *,
    bounds: Sequence[float],
    epsilon: float,
    delta: float = DEFAULT_DELTA,
    mechanism: Mechanism = "laplace",
) -> StatisticResult:
    """The sum of the column clamped to the declared bounds, noised."""
    _check_privacy(epsilon, delta, mechanism)
    lower, upper = _check_bounds(bounds)
    column = _column(values, (lower, upper))
    transformation = _domain() >> dp.t.then_clamp((lower, upper)) >> dp.t.then_sum()
    measurement, event, scale, loss = _release("sum", transformation, epsilon, delta, mechanism)
    return _result("sum", float(measurement(column)), mechanism, event, delta, scale, loss)


def mean(
    values: Any,
    *,
    bounds: Sequence[float],
    epsilon: float,
    delta: float = DEFAULT_DELTA,
    mechanism: Mechanism = "laplace",
) -> StatisticResult:
    """Noisy sum / noisy count (half the budget each, composed in one OpenDP measurement), within the bounds."""
    _check_privacy(epsilon, delta, mechanism)
    lower, upper = _check_bounds(bounds)
    column = _column(values, (lower, upper))
    sum_t = _domain() >> dp.t.then_clamp((lower, upper)) >> dp.t.then_sum()
    count_t = _domain() >> dp.t.then_count(TO=float)
    sum_m, sum_event, sum_scale, sum_loss = _release("sum", sum_t, epsilon, delta, mechanism, parts=2)
    count_m, count_event, count_scale, count_loss = _release("count", count_t, epsilon, delta, mechanism, parts=2)
    measurement = dp.c.make_composition([sum_m, count_m])
    noisy_sum, noisy_count = measurement(column)
    value = min(upper, max(lower, noisy_sum / max(noisy_count, 1.0)))
    event = composed_event([sum_event, count_event])
    return _result("mean", value, mechanism, event, delta, [sum_scale, count_scale], float(measurement.map(1)))


def histogram(
    values: Any,
    *,
    bounds: Sequence[float],
    bins: int,
    epsilon: float,
    delta: float = DEFAULT_DELTA,
    mechanism: Mechanism = "laplace",
) -> StatisticResult:
    """Counts in `bins` equal-width bins over the declared bounds (values clamped into the end bins).

    The value is {"edges": [...bins + 1 edges], "counts": [...bins noisy counts, rounded, at least 0]}.
    """
    _check_privacy(epsilon, delta, mechanism)
    lower, upper = _check_bounds(bounds)
    if not (isinstance(bins, int) and 1 <= bins <= MAX_BINS):
        raise StatisticsError(f"bins must be an integer between 1 and {MAX_BINS}")
    column = _column(values, (lower, upper))
    edges = [lower + (upper - lower) * i / bins for i in range(bins + 1)]
    metric = dp.L1Distance[float] if mechanism == "laplace" else dp.L2Distance[float]
    # find_bin numbers the bins between inner edges; one bin needs one edge above every clamped value.
    inner_edges = edges[1:-1] if bins > 1 else [upper + abs(upper) + 1.0]
    transformation = (
        _domain()
        >> dp.t.then_clamp((lower, upper))
        >> dp.t.then_find_bin(edges=inner_edges)
        >> dp.t.then_count_by_categories(categories=list(range(bins)), null_category=False, TOA=float, MO=metric)
    )
    measurement, event, scale, loss = _release("histogram", transformation, epsilon, delta, mechanism)
    counts = [max(0, round(c)) for c in measurement(column)]
    return _result("histogram", {"edges": edges, "counts": counts}, mechanism, event, delta, scale, loss)


def quantiles(
    values: Any,
    *,
    bounds: Sequence[float],
    alphas: Sequence[float],
    epsilon: float,
    delta: float = DEFAULT_DELTA,
    candidates: int = 1_000,
) -> StatisticResult:
    """The α-quantiles, each chosen among `candidates` evenly spaced points over the declared bounds.

    Uses OpenDP's `make_private_quantile` in zero-concentrated DP; the total ρ is calibrated so the composed
    event costs `epsilon` at `delta`, split evenly over the alphas. The value is a list, one per alpha.
    """
    _check_privacy(epsilon, delta, "gaussian")
    lower, upper = _check_bounds(bounds)
    if not alphas or len(alphas) > 99 or not all(0 <= a <= 1 for a in alphas):
        raise StatisticsError("alphas must be 1 to 99 numbers in [0, 1]")
    if not (isinstance(candidates, int) and 2 <= candidates <= MAX_CANDIDATES):
        raise StatisticsError(f"candidates must be an integer between 2 and {MAX_CANDIDATES}")
    column = _column(values, (lower, upper))
    grid = [lower + (upper - lower) * i / (candidates - 1) for i in range(candidates)]

    def make_total(rho: float) -> DpEvent:
        return dp_accounting.ZCDpEvent(rho)

    rho_total = float(
        dp_accounting.calibrate_dp_mechanism(
            RdpAccountant,
            make_total,
            epsilon,
            delta,
            bracket_interval=dp_accounting.LowerEndpointAndGuess(0.0, 0.01),
        )
    )
    rho_each = rho_total / len(alphas)
    domain, metric = _domain()
    values_out, events, scales, losses = [], [], [], []
    for alpha in alphas:

        def build(scale: float, alpha: float = float(alpha)) -> Any:
            return dp.m.make_private_quantile(
                domain, metric, dp.zero_concentrated_divergence(), candidates=grid, alpha=alpha, scale=scale
            )

        scale = float(dp.binary_search_param(build, d_in=1, d_out=rho_each))
        measurement = build(scale)
        loss = float(measurement.map(1))
        values_out.append(float(measurement(column)))
        events.append(zcdp_event(rho=loss))
        scales.append(scale)
        losses.append(loss)
    event = events[0] if len(events) == 1 else composed_event(events)
    return _result("quantiles", values_out, "exponential (zCDP)", event, delta, scales, math.fsum(losses))
