"""Averaging by repetition, and work without differential privacy.

Measured before the fix: nothing was charged until a release was approved, so a scientist could run the same
DP statistic fifty times a day and average its noise away through any side channel, and jobs without DP were
admitted with no budget check at all. Now every run is charged when it is admitted, before it runs and whether
or not anything is ever released, and the runs stop when the budget is spent; a job without DP is refused
unless the node allows such work and an administrator allowed it for that user, and then its result leaves only
through an officer.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gridctl import DP
from gridctl.sdk.node import Node
from tests.attacks.conftest import Cluster, finished, refused, wait_until

BUDGET, EPSILON = 4.0, 1.0  # a handful of ε-1 counts fit a budget of ε 4 under the Rényi filter, not five


def _spent(user: Node) -> tuple[float, int]:
    budget = user.http.get("/budget")
    return float(budget["spent_epsilon"]), int(budget["events"])


class TestRepetition:
    def test_every_run_of_the_same_statistic_is_charged_at_admission_until_the_budget_refuses(
            self, cluster: Cluster) -> None:
        name, dataset_id = cluster.dataset("repeat", {"values": torch.arange(50, dtype=torch.float32)})
        scientist, email = cluster.user("averager", budget=BUDGET)
        cluster.grant(email, dataset_id, "compute")
        admitted: list[Any] = []
        spent_after: list[float] = []
        refusal = None
        for _ in range(5):
            refusal = refused(lambda: admitted.append(scientist.jobs.statistic(
                "count", dataset=name, member="values", epsilon=EPSILON)))
            if refusal is not None:
                break
            spent, events = _spent(scientist)  # read at once: the job may not even have started
            spent_after.append(spent)
            assert events == len(admitted)
        assert refusal is not None and refusal.code == "budget_exceeded", "five runs of the same count admitted"
        assert "budget" in refusal.message
        assert 1 <= len(admitted) < 5
        assert spent_after == sorted(spent_after) and len(set(spent_after)) == len(spent_after)  # each one charged
        assert spent_after[-1] <= BUDGET
        assert scientist.http.get("/requests")["total"] == 0  # charged with no release ever asked for
        for job in admitted:
            finished(job)
        assert _spent(scientist) == (spent_after[-1], len(admitted))  # running them charged nothing more

    def test_a_release_costs_nothing_more_and_a_denial_refunds_nothing(self, cluster: Cluster) -> None:
        name, dataset_id = cluster.dataset("release-once", {"values": torch.arange(50, dtype=torch.float32)})
        scientist, email = cluster.user("releaser", budget=BUDGET)
        cluster.grant(email, dataset_id, "compute")
        charged = []
        for decision in ("deny", "approve"):
            job = scientist.jobs.statistic("count", dataset=name, member="values", epsilon=EPSILON)
            assert finished(job).status == "succeeded", job.error
            charged.append(_spent(scientist))
            request = scientist.http.post("/requests", json={"kind": "release", "target_type": "result",
                                                             "target_id": job.data["result_id"], "reason": "r"})
            assert _spent(scientist) == charged[-1]
            body = {"reason": "no"} if decision == "deny" else {}
            cluster.owner().http.post(f"/requests/{request['id']}/{decision}", json=body)
            assert _spent(scientist) == charged[-1]
        assert charged[1][1] == charged[0][1] + 1

    def test_cancelling_a_job_that_ran_refunds_nothing(self, cluster: Cluster) -> None:
        x = torch.rand(200, 2, generator=torch.Generator().manual_seed(4))
        name, dataset_id = cluster.dataset("cancelled", {"features": x, "labels": x.sum(dim=1)},
                                           bounds={"features": {"lower": 0.0, "upper": 1.0}})
        scientist, email = cluster.user("canceller", budget=10.0)
        cluster.grant(email, dataset_id, "compute")
        # Long enough to be cancelled while it runs, short enough to end by itself if the cancel comes late.
        job = scientist.train(nn.Sequential(nn.Linear(2, 1)), dataset=name, loss="mse", lr=0.1, epochs=40,
                              batch_size=10, dp=DP(noise_multiplier=10.0, max_grad_norm=1.0))
        charged = _spent(scientist)
        assert charged[1] == 1 and charged[0] > 0
        wait_until(lambda: job.status != "queued", timeout=90)
        if job.data["state"] == "running":
            refused(job.cancel)  # a 409 if it finished in between: the charge must stand either way
        finished(job, timeout=180)
        assert _spent(scientist) == charged  # it touched the data: the charge stands


class TestNonPrivateWork:
    def test_a_job_without_dp_is_refused_naming_the_rule_and_nothing_runs(self, cluster: Cluster) -> None:
        x = torch.rand(40, 2, generator=torch.Generator().manual_seed(1))
        name, dataset_id = cluster.dataset("no-dp", {"features": x, "labels": x.sum(dim=1)})
        scientist, email = cluster.user("plain-attacker", budget=BUDGET)
        cluster.grant(email, dataset_id, "compute")
        refusal = refused(lambda: scientist.train(nn.Sequential(nn.Linear(2, 1)), dataset=name, loss="mse",
                                                  lr=0.1, epochs=1, batch_size=40))
        assert refusal is not None and refusal.code == "forbidden"
        assert "differential privacy" in refusal.message or "DP" in refusal.message
        assert scientist.jobs.list()["total"] == 0
        assert _spent(scientist) == (0.0, 0)

    def test_an_allowed_users_job_without_dp_runs_but_its_result_is_never_auto_released(
            self, cluster: Cluster) -> None:
        x = torch.rand(40, 2, generator=torch.Generator().manual_seed(2))
        name, dataset_id = cluster.dataset("allowed-no-dp", {"features": x, "labels": x.sum(dim=1)})
        scientist, email = cluster.user("allowed-plain", budget=BUDGET)
        cluster.grant(email, dataset_id, "compute")
        owner = cluster.owner()
        before = owner.http.get("/privacy/settings")
        owner.http.patch("/privacy/settings", json={"non_private_jobs": True, "release_policy": "allow_non_private"})
        try:
            not_yet = refused(lambda: scientist.train(nn.Sequential(nn.Linear(2, 1)), dataset=name, loss="mse",
                                                      lr=0.1, epochs=1, batch_size=40))
            assert not_yet is not None and not_yet.code == "forbidden"  # the node allows it; the user is not
            owner.http.put(f"/budget/users/{email}/non-private", json={"allowed": True})
            job = scientist.train(nn.Sequential(nn.Linear(2, 1)), dataset=name, loss="mse", lr=0.1, epochs=1,
                                  batch_size=40)
            assert finished(job).status == "succeeded", job.error
            owner.http.post("/release-policies", json={"max_epsilon": 1.0, "dataset_id": dataset_id,
                                                                "note": "small DP releases"})
            request = scientist.http.post("/requests", json={"kind": "release", "target_type": "result",
                                                             "target_id": job.data["result_id"], "reason": "r"})
            assert request["state"] == "pending"  # never auto-approved, whatever the policies
            assert refused(lambda: scientist.http.get(f"/results/{job.data['result_id']}/data")) is not None
            card = owner.http.get(f"/requests/{request['id']}")["card"]
            assert card["non_private"] is True  # flagged on the officer's card
        finally:
            owner.http.patch("/privacy/settings", json={"non_private_jobs": before.get("non_private_jobs", False),
                                                        "release_policy": before["release_policy"]})
            for policy in owner.http.get("/release-policies"):
                if policy["dataset_id"] == dataset_id:
                    owner.http.delete(f"/release-policies/{policy['id']}")
