"""Privacy events, their cost, the Rényi filter and the cost card's plain reading (no torch, no Node)."""

from __future__ import annotations

from grid_runtime.privacy.accounting import (
    DEFAULT_DELTA,
    DEFAULT_RDP_ORDER,
    admits,
    calibrate_noise,
    composed_epsilon,
    dp_sgd_plan,
    epsilon,
    epsilon_and_order,
    epsilon_from_rdp,
    rdp_at_order,
    rdp_budget,
    simple_sum_epsilon,
    spent_rdp,
)
from grid_runtime.privacy.events import (
    composed_event,
    describe_event,
    dp_sgd_event,
    event_from_dict,
    event_from_json,
    event_to_dict,
    event_to_json,
    gaussian_event,
    laplace_event,
    non_private_event,
    zcdp_event,
)
from grid_runtime.privacy.reading import hit_rate_bound, plain_reading

__all__ = [
    "DEFAULT_DELTA",
    "DEFAULT_RDP_ORDER",
    "admits",
    "calibrate_noise",
    "composed_epsilon",
    "composed_event",
    "describe_event",
    "dp_sgd_event",
    "dp_sgd_plan",
    "epsilon",
    "epsilon_and_order",
    "epsilon_from_rdp",
    "event_from_dict",
    "event_from_json",
    "event_to_dict",
    "event_to_json",
    "gaussian_event",
    "hit_rate_bound",
    "laplace_event",
    "non_private_event",
    "plain_reading",
    "rdp_at_order",
    "rdp_budget",
    "simple_sum_epsilon",
    "spent_rdp",
    "zcdp_event",
]
