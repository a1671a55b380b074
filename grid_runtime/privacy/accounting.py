"""What a privacy event costs, and the Rényi filter that enforces a budget.

Two figures, as in the domain guide (Privacy budget):

- A request's **own cost** is its event's ε at the node's δ from dp-accounting's RDP accountant, at the best
  order for that one event (`epsilon`).
- The **budget check** is a Rényi filter (Feldman & Zrnic, "Individual Privacy Accounting via a Rényi Filter",
  NeurIPS 2021, https://arxiv.org/abs/2008.11193) at one order α fixed for the node: a new event is admitted
  only if the sum of the RDP at α of every recorded event plus the new one stays within the RDP budget that
  converts to the user's ε cap at δ (`admits`). Because the order and the budget are fixed before any event is
  chosen, the guarantee holds when users choose each request after seeing earlier results (adaptive, fully
  adaptive composition). The ε shown as spent is that sum converted at α (`epsilon_from_rdp`); the simple sum
  of each event's own ε is shown beside it (`simple_sum_epsilon`).

RDP → (ε, δ) conversion uses the same bound as dp-accounting (Canonne, Kamath & Steinke 2020, Prop. 12 /
Asoodeh et al. 2020): ε = rdp + log1p(-1/α) - log(δ·α)/(α - 1), which is monotone in rdp, so the filter's
budget is its exact inverse (`rdp_budget`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import dp_accounting
from dp_accounting import DpEvent
from dp_accounting.rdp import RdpAccountant
from dp_accounting.rdp.rdp_privacy_accountant import compute_epsilon

from grid_runtime.privacy.events import dp_sgd_event

DEFAULT_DELTA = 1e-5
"""The node's δ unless its settings say otherwise: well below 1/n for the datasets a Node typically holds."""

DEFAULT_RDP_ORDER = 6.0
"""The Rényi order α at which the node's filter composes events, fixed once for the node.

Why 6: one order has to serve every event the node records. DP-SGD with the settings people actually use
(noise multiplier σ ≈ 1, Poisson sampling rate q ≈ 0.01-0.03) has RDP that stays small up to α ≈ 6-7 and then
explodes, because subsampling amplification stops working at higher orders (for σ = 1, q = 0.032, 155 steps the
RDP is 1.46 at α = 6 but 25.5 at α = 8 and 183 at α = 10). The conversion overhead log(1/(δα))/(α - 1) falls as
α grows (2.0 at α = 6, δ = 1e-5; 0.9 at α = 12), so higher orders suit small caps and large σ. At α = 6 a
σ = 1 run costs at most ~5-15% more ε under the filter than at its own best order for caps of ε 3-10, which is
where DP-SGD budgets usually sit. The price: at δ = 1e-5 a cap below ε ≈ 1.8 admits nothing at α = 6. A node
that grants small budgets and only runs well-noised jobs (σ >= 1.5) should fix a higher order, e.g. 12, in its
settings. Changing the order later re-reads every recorded event at the new order, which keeps the filter valid
only if it is done before the user's next request is decided, never in reaction to a result.
"""


def _accountant(orders: Iterable[float] | None = None) -> RdpAccountant:
    return RdpAccountant(orders=list(orders) if orders is not None else None)


def _require_delta(delta: float) -> None:
    if not (0 < delta < 1):
        raise ValueError(f"delta must be in (0, 1), got {delta!r}")


def _require_order(order: float) -> None:
    if not (math.isfinite(order) and order > 1.01):
        raise ValueError(f"the RDP order must be a finite number > 1.01, got {order!r}")


def epsilon(event: DpEvent, delta: float = DEFAULT_DELTA) -> float:
    """The event's own ε at `delta`: dp-accounting's RDP accountant at the best of its default orders."""
    _require_delta(delta)
    accountant = _accountant()
    accountant.compose(event)
    return float(accountant.get_epsilon(delta))


def epsilon_and_order(event: DpEvent, delta: float = DEFAULT_DELTA) -> tuple[float, float]:
    """`epsilon(event, delta)` and the RDP order that achieved it."""
    _require_delta(delta)
    accountant = _accountant()
    accountant.compose(event)
    eps, order = accountant.get_epsilon_and_optimal_order(delta)
    return float(eps), float(order)


def rdp_at_order(event: DpEvent, order: float = DEFAULT_RDP_ORDER) -> float:
    """The event's Rényi divergence bound at `order` (infinite for a non-private event)."""
    _require_order(order)
    accountant = _accountant([order])
    accountant.compose(event)
    return float(accountant.rdp[0])


def spent_rdp(events: Iterable[DpEvent], order: float = DEFAULT_RDP_ORDER) -> float:
    """The sum of the events' RDP at the node's order: what the filter has spent."""
    return math.fsum(rdp_at_order(e, order) for e in events)


def epsilon_from_rdp(rdp: float, order: float = DEFAULT_RDP_ORDER, delta: float = DEFAULT_DELTA) -> float:
    """The ε at `delta` that an RDP of `rdp` at `order` guarantees (the "spent" figure of the filter)."""
    _require_order(order)
    _require_delta(delta)
    if rdp < 0 or math.isnan(rdp):
        raise ValueError(f"rdp must be >= 0, got {rdp!r}")
    if math.isinf(rdp):
        return math.inf
    eps, _ = compute_epsilon([order], [rdp], delta)
    return float(eps)


def rdp_budget(epsilon_cap: float, delta: float = DEFAULT_DELTA, order: float = DEFAULT_RDP_ORDER) -> float:
    """The RDP budget at `order` that converts to exactly `epsilon_cap` at `delta` (may be <= 0: nothing fits)."""
    _require_order(order)
    _require_delta(delta)
    if not (epsilon_cap >= 0):
        raise ValueError(f"epsilon_cap must be >= 0, got {epsilon_cap!r}")
    if math.isinf(epsilon_cap):
        return math.inf
    return epsilon_cap - math.log1p(-1 / order) + math.log(delta * order) / (order - 1)


def admits(
    spent_rdp: float,
    new_rdp: float,
    epsilon_cap: float,
    delta: float = DEFAULT_DELTA,
    order: float = DEFAULT_RDP_ORDER,
) -> bool:
    """The Rényi filter: may an event of RDP `new_rdp` be added to `spent_rdp` (both at `order`) under the cap?

    True exactly when spent + new <= the RDP budget that converts to `epsilon_cap` at `delta` at `order`.
    A zero-cost event is always admitted; an infinite one never is (unless the cap is infinite).
    """
    if new_rdp < 0 or spent_rdp < 0 or math.isnan(new_rdp) or math.isnan(spent_rdp):
        raise ValueError("RDP values must be >= 0")
    if new_rdp == 0:
        return True
    total = spent_rdp + new_rdp
    budget = rdp_budget(epsilon_cap, delta, order)
    if math.isinf(budget):
        return True
    return total <= budget


def simple_sum_epsilon(events: Iterable[DpEvent], delta: float = DEFAULT_DELTA) -> float:
    """The sum of each event's own ε at `delta`: shown beside the filter's figure, never enforced."""
    return math.fsum(epsilon(e, delta) for e in events)


def composed_epsilon(events: Iterable[DpEvent], delta: float = DEFAULT_DELTA) -> float:
    """ε at `delta` of all the events composed (RDP accountant, best order): a non-adaptive comparison figure."""
    _require_delta(delta)
    accountant = _accountant()
    for event in events:
        accountant.compose(event)
    return float(accountant.get_epsilon(delta))


# ---- DP-SGD planning ----------------------------------------------------------------------------------------


def dp_sgd_plan(*, rows: int, batch_size: int, epochs: int) -> tuple[float, int]:
    """The Poisson sampling rate and number of steps a DP-SGD run with these settings takes.

    The trainer (`grid_runtime.compute.training`) follows exactly this plan, so the cost the Node computes
    before a job runs is the cost of what runs: rate = batch_size / rows (the expected batch size is
    `batch_size`), ceil(rows / batch_size) steps an epoch.
    """
    if rows < 1 or batch_size < 1 or epochs < 1:
        raise ValueError("rows, batch_size and epochs must be >= 1")
    if batch_size > rows:
        raise ValueError(f"batch_size ({batch_size}) cannot exceed the number of rows ({rows})")
    sample_rate = batch_size / rows
    steps = epochs * math.ceil(rows / batch_size)
    return sample_rate, steps


def calibrate_noise(
    target_epsilon: float,
    delta: float = DEFAULT_DELTA,
    *,
    sample_rate: float,
    steps: int,
) -> float:
    """The smallest noise multiplier whose DP-SGD event costs at most `target_epsilon` at `delta`.

    Uses dp-accounting's `calibrate_dp_mechanism` over the same event `dp_sgd_event` records, then nudges the
    result up until `epsilon` of the event is within the target (the bisection's tolerance is two-sided).
    """
    _require_delta(delta)
    if not (math.isfinite(target_epsilon) and target_epsilon > 0):
        raise ValueError(f"target_epsilon must be a finite number > 0, got {target_epsilon!r}")

    def make_event(noise_multiplier: float) -> DpEvent:
        return dp_sgd_event(sample_rate=sample_rate, noise_multiplier=noise_multiplier, steps=steps)

    sigma = float(
        dp_accounting.calibrate_dp_mechanism(
            RdpAccountant,
            make_event,
            target_epsilon,
            delta,
            bracket_interval=dp_accounting.LowerEndpointAndGuess(1e-3, 1.0),
            tol=1e-6,
        )
    )
    for _ in range(60):
        if epsilon(make_event(sigma), delta) <= target_epsilon:
            return sigma
        sigma *= 1 + 1e-6
    raise ValueError("could not calibrate a noise multiplier for this target")
