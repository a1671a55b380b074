"""Counters and error text: side channels that count or name private rows.

Measured before the fix: ``lineage.zeroed_samples`` (rows whose per-sample gradient was not finite) reached
the job's owner; with crafted initial weights it counted exactly the rows meeting a condition the scientist
chose (527 = the rows with x > 50), at a planned ε of 0.0055 and nothing charged. Job errors carried the
Worker's exception text to the scientist: ``IndexError: Target 5 is out of bounds.`` is a private label.

Here the attacker crafts each attack within today's limits (initial weights bounded in magnitude, so the
overflow is built from a chain of bounded layers) and asserts on what comes back: no counter, and an outcome
that does not depend on the private value probed.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gridctl import DP
from gridctl.sdk.node import Node
from tests.attacks.conftest import Cluster, every_key, finished, refused, released

THRESHOLD = 50.0
CHAIN = 10  # ten layers of weight 1e4 turn any h >= 1 into more than float32's largest value (3.4e38)


def _counting_model() -> nn.Sequential:
    """h = relu(x - 50), then ten ×1e4 layers: a row with x >= 51 overflows, one with x <= 50 gives 0."""
    first, chain = nn.Linear(1, 1), [nn.Linear(1, 1) for _ in range(CHAIN)]
    with torch.no_grad():
        first.weight.fill_(1.0)
        first.bias.fill_(-THRESHOLD)
        for layer in chain:
            layer.weight.fill_(1e4)
            layer.bias.fill_(0.0)
    return nn.Sequential(first, nn.ReLU(), *chain)


def _values_under(value: Any, word: str) -> set[Any]:
    """The values of every key containing ``word``, at any depth."""
    found: set[Any] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if word in str(key) and not isinstance(item, (dict, list)):
                found.add(item)
            found |= _values_under(item, word)
    elif isinstance(value, list):
        for item in value:
            found |= _values_under(item, word)
    return found


def _views(user: Node, job: dict[str, Any]) -> list[Any]:
    seen = [user.http.get(f"/jobs/{job['id']}"), user.http.get("/jobs")]
    if job.get("result_id"):
        seen.append(user.http.get(f"/results/{job['result_id']}"))
    return seen


class TestOverflowCounter:
    def test_rows_zeroed_for_overflowing_are_never_counted_to_the_scientist(self, cluster: Cluster) -> None:
        x = torch.tensor([float(v) for v in range(0, 100, 3)] + [99.0, 98.0, 97.0])[:, None]
        truth = int((x > THRESHOLD).sum())  # 19 rows: what the attack is after
        name, dataset_id = cluster.dataset("overflow", {"features": x, "labels": torch.zeros(len(x))},
                                           bounds={"features": {"lower": 0.0, "upper": 100.0},
                                                   "labels": {"lower": -1.0, "upper": 1.0}})
        scientist, email = cluster.user("overflow-attacker", budget=10.0)
        cluster.grant(email, dataset_id, "compute")
        submitted: list[Any] = []
        refusal = refused(lambda: submitted.append(scientist.train(
            _counting_model(), dataset=name, loss="mse", optimizer="sgd", lr=1e-6, epochs=1, batch_size=len(x),
            dp=DP(noise_multiplier=5.0, max_grad_norm=1.0), initial_weights=True)))
        if refusal is not None:  # refused on the weights alone: the refusal depends on no row
            assert refusal.code == "invalid_input"
            assert str(truth) not in refusal.message
            return
        job = finished(submitted[0])
        assert job.data["state"] == "succeeded", job.data
        seen = _views(scientist, job.data)
        assert not {key for key in every_key(seen) if "zeroed" in key or "overflow" in key or "finite" in key}
        assert job.data.get("metrics") is None  # per-epoch loss on private data: officer-only
        # An officer releasing the weights releases the weights, not the counter with them.
        released(cluster, scientist, job.data["result_id"])
        seen = _views(scientist, job.refresh().data)
        assert not {key for key in every_key(seen) if "zeroed" in key or "overflow" in key or "finite" in key}
        # Control: the officer, who decides the release, sees how many rows were zeroed, and it is exactly
        # the count the attack was after; only the scientist is kept from it.
        assert _values_under(_views(cluster.owner(), job.data), "zeroed") == {truth}


def _labels(bad: int) -> torch.Tensor:
    labels = torch.tensor([i % 3 for i in range(30)])
    labels[17] = bad  # one private row whose label is outside the model's three classes
    return labels


class TestErrorText:
    def test_an_out_of_range_label_does_not_come_back_as_text_and_the_outcome_does_not_depend_on_it(
            self, cluster: Cluster) -> None:
        scientist, email = cluster.user("label-attacker", budget=20.0)
        features = torch.rand(30, 2, generator=torch.Generator().manual_seed(3))
        outcomes = []
        for bad in (5, 7):
            name, dataset_id = cluster.dataset(f"labels-{bad}", {"features": features, "labels": _labels(bad)},
                                               bounds={"features": {"lower": 0.0, "upper": 1.0}})
            cluster.grant(email, dataset_id, "compute")
            submitted: list[Any] = []
            refusal = refused(lambda name=name: submitted.append(scientist.train(
                nn.Sequential(nn.Linear(2, 3)), dataset=name, loss="cross_entropy", lr=0.1, epochs=1,
                batch_size=30, dp=DP(noise_multiplier=2.0, max_grad_norm=1.0))))
            if refusal is not None:
                outcomes.append(("refused", refusal.code, refusal.message.replace(name, "<dataset>")
                                 .replace(str(dataset_id), "<id>")))
                continue
            job = finished(submitted[0])
            error = (job.error or "").replace(str(job.id), "<job>")
            for leak in ("IndexError", "out of bounds", "Target", "Traceback", str(bad)):
                assert leak not in error, error
            outcomes.append((job.data["state"], job.data.get("error_code"), error))
        assert outcomes[0] == outcomes[1]  # the same answer whichever private label the row holds

    def test_a_non_finite_private_value_does_not_decide_whether_a_statistic_succeeds(self, cluster: Cluster
                                                                                      ) -> None:
        scientist, email = cluster.user("nan-attacker", budget=20.0)
        outcomes = []
        for odd in (float("nan"), float("inf"), 3.0):
            values = torch.arange(30, dtype=torch.float32)
            values[11] = odd  # does row 11 hold something that breaks the mechanism?
            name, dataset_id = cluster.dataset("odd-value", {"values": values},
                                               bounds={"values": {"lower": 0.0, "upper": 40.0}})
            cluster.grant(email, dataset_id, "compute")
            job = finished(scientist.jobs.statistic("sum", dataset=name, member="values", epsilon=1.0))
            outcomes.append((job.data["state"], job.data.get("error_code"), job.error))
        assert outcomes == [("succeeded", None, None)] * 3
