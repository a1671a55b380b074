"""The dataset-cap bypass: reaching a capped dataset's rows through a second dataset holding the same tensor.

Measured before the fix: a tensor in dataset A (cap ε 2.5) and in dataset B (no cap); three releases through
B took B's spent to ε 2.59 while A's stayed at 0.000. A cap bounds what all users together may learn about the
subjects of its data, so a job is now charged to every dataset that contains any of its inputs: the runs
through B count against A's cap, and stop when it is spent.
"""

from __future__ import annotations

from typing import Any

import torch

from tests.attacks.conftest import Cluster, finished, refused, unique

CAP, EPSILON = 4.0, 1.0  # a cap of ε 4 admits a couple of ε-1 counts under the Rényi filter, not five


class TestCapBypass:
    def test_runs_through_an_uncapped_dataset_are_charged_to_the_capped_one_holding_the_same_tensor(
            self, cluster: Cluster) -> None:
        capped, capped_id = cluster.dataset("capped", {"values": torch.arange(60, dtype=torch.float32)})
        owner = cluster.owner()
        tensor_id = next(m["tensor_id"] for m in owner.http.get(f"/datasets/{capped}")["members"])
        side = unique("side-door")
        side_id = int(owner.http.post("/datasets", json={"name": side, "visibility": "private"})["id"])
        cluster.add_member(side, "values", tensor_id)
        owner.http.put(f"/budget/datasets/{capped_id}", json={"epsilon": CAP})
        scientist, email = cluster.user("cap-bypasser", budget=100.0)
        cluster.grant(email, side_id, "compute")  # nothing granted on the capped dataset itself

        admitted: list[Any] = []
        capped_spent: list[float] = []
        refusal = None
        for _ in range(5):
            refusal = refused(lambda: admitted.append(scientist.jobs.statistic(
                "count", dataset=side, member="values", epsilon=EPSILON)))
            if refusal is not None:
                break
            capped_spent.append(float(owner.http.get(f"/budget/datasets/{capped_id}")["spent_epsilon"]))
        assert capped_spent and capped_spent[0] > 0, "a run through the side door left the capped dataset untouched"
        assert capped_spent == sorted(capped_spent) and len(set(capped_spent)) == len(capped_spent)
        assert refusal is not None and refusal.code == "budget_exceeded", "five runs admitted past a cap of ε 4"
        assert capped in refusal.message or str(capped_id) in refusal.message  # names the cap that refused
        assert capped_spent[-1] <= CAP
        for job in admitted:
            finished(job)
