"""A plain reading of ε for the cost card.

(ε, δ)-DP bounds every test an attacker can run on the output to decide "was this person in the data?": at a
false-positive rate α, the true-positive rate (hit rate) is at most min(1, e^ε·α + δ, 1 - e^-ε·(1 - δ - α))
(Kairouz, Oh & Viswanath 2015, the hypothesis-testing view of DP; Dong, Roth & Su 2019, f-DP). The second
term binds at small α, the third only at large α.
"""

from __future__ import annotations

import math


def hit_rate_bound(epsilon: float, delta: float, false_positive_rate: float = 0.05) -> float:
    """The highest true-positive rate any membership test can reach at `false_positive_rate`."""
    if not (0 <= false_positive_rate <= 1):
        raise ValueError("false_positive_rate must be in [0, 1]")
    if epsilon < 0 or not (0 <= delta <= 1):
        raise ValueError("epsilon must be >= 0 and delta in [0, 1]")
    if math.isinf(epsilon):
        return 1.0
    upper = min(1.0, math.exp(epsilon) * false_positive_rate + delta)
    other = 1.0 - math.exp(-epsilon) * (1.0 - delta - false_positive_rate)
    return max(false_positive_rate, min(upper, other))


def plain_reading(epsilon: float, delta: float, false_positive_rate: float = 0.05, *,
                  one_row_per_person: bool = False) -> str:
    """One sentence an officer can read, e.g. for ε = 1: "...bounds an attacker's hit rate by 13.6%".

    `epsilon` should be the user's enforced cumulative ε (what everything they obtained reveals together),
    not one request's. The unit protected is a row of the data; only where the owner declared one row per
    person does the sentence say "a given person" (otherwise a person with several rows is protected less).
    """
    unit = "a given person" if one_row_per_person else "a given row"
    if math.isinf(epsilon):
        return f"Not differentially private: an attacker may learn anything about {unit} of the data."
    bound = hit_rate_bound(epsilon, delta, false_positive_rate)
    return (
        f"At a {false_positive_rate:.0%} false-positive rate, ε = {epsilon:.3g} (δ = {delta:.0e}) bounds an "
        f"attacker's hit rate at telling whether {unit} is in the data by {bound:.1%} "
        f"(a blind guess gets {false_positive_rate:.0%})."
    )
