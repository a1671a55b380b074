"""Federated learning on the Node (issue 15): hosting processes, client tokens, cycles, refusals, FedAvg, central DP.

Route tests against the in-process app (SQLite, and PostgreSQL where configured for the ``any_db`` ones). Each
refusal leaves the checkpoint, the cycle's figures and the running sum as they were."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from safetensors.numpy import load, save

from grid_runtime.core.capabilities import Capability
from grid_runtime.node.app import API_PREFIX
from tests.factories import Factory

SPEC: dict[str, Any] = {"format": "gridctl.model-spec/1", "input_shape": [4],
                        "layers": [{"type": "Linear", "in_features": 4, "out_features": 3}]}
SHAPES = {"0.weight": (3, 4), "0.bias": (3,)}


def initial() -> dict[str, np.ndarray]:
    return {"0.weight": np.full((3, 4), 0.5, dtype=np.float32), "0.bias": np.zeros(3, dtype=np.float32)}


def host(client: TestClient, headers: dict[str, str], name: str = "proc", **server: Any) -> dict[str, Any]:
    body = {"name": name, "spec": SPEC, "initial_weights": base64.b64encode(save(initial())).decode(),
            "client": {"lr": 0.1, "epochs": 1, "batch_size": 8},
            "server": {"clients_per_cycle": 3, "min_reports": 2, "cycle_seconds": 600, "cycles": 3, **server}}
    response = client.post(f"{API_PREFIX}/fl/processes", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def client_token(client: TestClient, headers: dict[str, str], process: str = "proc", name: str = "site") -> str:
    response = client.post(f"{API_PREFIX}/fl/processes/{process}/tokens", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    assert token.startswith("gflclient_")
    return str(token)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def update(value: float = 1.0, **overrides: np.ndarray) -> bytes:
    tensors = {name: np.full(shape, value, dtype=np.float32) for name, shape in SHAPES.items()}
    tensors.update(overrides)
    return save(tensors)


def join(client: TestClient, token: str) -> dict[str, Any]:
    response = client.post(f"{API_PREFIX}/fl/client/join", headers=bearer(token))
    assert response.status_code == 200, response.text
    return dict(response.json())


def report(client: TestClient, token: str, data: bytes, *, cycle: int = 1, examples: int = 10,
           loss: float | None = 0.5) -> Any:
    params: dict[str, Any] = {"cycle": cycle, "examples": examples}
    if loss is not None:
        params["loss"] = loss
    return client.post(f"{API_PREFIX}/fl/client/report", params=params, content=data,
                       headers={**bearer(token), "Content-Type": "application/octet-stream"})


def checkpoints(client: TestClient, headers: dict[str, str], process: str = "proc") -> list[dict[str, Any]]:
    response = client.get(f"{API_PREFIX}/fl/processes/{process}/checkpoints", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json())


def latest(client: TestClient, headers: dict[str, str], process: str = "proc") -> dict[str, np.ndarray]:
    number = checkpoints(client, headers, process)[-1]["number"]
    response = client.get(f"{API_PREFIX}/fl/processes/{process}/checkpoints/{number}", headers=headers)
    assert response.status_code == 200, response.text
    return dict(load(response.content))


def show(client: TestClient, headers: dict[str, str], process: str = "proc") -> dict[str, Any]:
    response = client.get(f"{API_PREFIX}/fl/processes/{process}", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def accumulators(state_dir: Path) -> list[Path]:
    return sorted((state_dir / "fl").glob("*.sum")) if (state_dir / "fl").exists() else []


class TestHostingAProcess:
    def test_an_uploader_hosts_a_process_with_checkpoint_zero_and_an_open_first_cycle(
        self, client: TestClient, factory: Factory
    ) -> None:
        owner = factory.user(capabilities={Capability.upload_data}).headers
        made = host(client, owner)
        assert made["state"] == "running" and made["parameter_count"] == 15 and made["epsilon"] is None
        assert [c["number"] for c in checkpoints(client, owner)] == [0]
        np.testing.assert_array_equal(latest(client, owner)["0.weight"], initial()["0.weight"])
        detail = show(client, owner)
        assert [(c["number"], c["state"], c["reports"]) for c in detail["cycles"]] == [(1, "open", 0)]
        assert detail["layers"] == [{"index": 0, "layer": "Linear", "args": {"in_features": 4, "out_features": 3},
                                     "output_shape": [3], "parameters": 15}]  # the Admin's layer table

    def test_without_upload_data_hosting_is_refused(self, client: TestClient, factory: Factory) -> None:
        scientist = factory.user().headers
        response = client.post(f"{API_PREFIX}/fl/processes", json={"name": "x", "spec": SPEC}, headers=scientist)
        assert response.status_code == 403 and response.json()["details"]["missing"] == ["upload_data"]

    def test_a_bad_spec_unknown_fields_and_bad_bounds_are_refused(self, client: TestClient, factory: Factory) -> None:
        owner = factory.owner().headers
        bad = [
            {"name": "a", "spec": {"layers": [{"type": "BatchNorm1d", "num_features": 4}]}},
            {"name": "b", "spec": SPEC, "surprise": 1},
            {"name": "c", "spec": SPEC, "server": {"clients_per_cycle": 2, "min_reports": 3}},
            {"name": "d", "spec": SPEC, "server": {"dp": {"noise_multiplier": 0, "clip_norm": 1}}},
            {"name": "e", "spec": SPEC, "client": {"lr": 100}},
            {"name": "f", "spec": SPEC, "initial_weights": base64.b64encode(update()).decode() + "!"},
            {"name": "g", "spec": SPEC, "initial_weights": base64.b64encode(save(
                {"0.weight": np.zeros((4, 4), np.float32), "0.bias": np.zeros(3, np.float32)})).decode()},
        ]
        for body in bad:
            response = client.post(f"{API_PREFIX}/fl/processes", json=body, headers=owner)
            assert response.status_code == 422, (body, response.text)
        assert client.get(f"{API_PREFIX}/fl/processes", headers=owner).json() == []
        host(client, owner)
        again = client.post(f"{API_PREFIX}/fl/processes", json={"name": "proc", "spec": SPEC}, headers=owner)
        assert again.status_code == 409 and again.json()["code"] == "already_exists"

    def test_central_dp_shows_its_epsilon_from_dp_accounting(self, client: TestClient, factory: Factory) -> None:
        from grid_runtime.privacy import epsilon, gaussian_event

        owner = factory.owner().headers
        made = host(client, owner, dp={"noise_multiplier": 1.0, "clip_norm": 1.0})
        import dp_accounting

        expected = epsilon(dp_accounting.SelfComposedDpEvent(gaussian_event(noise_multiplier=1.0), 3), 1e-5)
        assert made["epsilon"] == pytest.approx(expected) and made["delta"] == 1e-5
        one_cycle = epsilon(gaussian_event(noise_multiplier=1.0), 1e-5)
        assert one_cycle < made["epsilon"] < 3 * one_cycle  # composition, tighter than the plain sum


class TestClientTokens:
    def test_a_token_works_for_its_process_only_and_stops_working_when_revoked(
        self, client: TestClient, factory: Factory
    ) -> None:
        owner = factory.owner().headers
        host(client, owner, "first")
        host(client, owner, "second")
        token = client_token(client, owner, "first")
        assert join(client, token)["plan"]["process"] == "first"
        listed = client.get(f"{API_PREFIX}/fl/processes/first/tokens", headers=owner).json()
        assert [t["name"] for t in listed] == ["site"] and "token" not in listed[0]
        assert client.get(f"{API_PREFIX}/fl/processes/second/tokens", headers=owner).json() == []
        revoked = client.delete(f"{API_PREFIX}/fl/processes/first/tokens/{listed[0]['id']}", headers=owner)
        assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
        refused = client.post(f"{API_PREFIX}/fl/client/join", headers=bearer(token))
        assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
        fl_actions = [a for a in factory.audit_actions() if a.startswith("fl.")]
        assert fl_actions == ["fl.process.created", "fl.process.created", "fl.client_token.issued",
                              "fl.client_token.revoked"]

    def test_only_the_host_issues_tokens_or_downloads_checkpoints(self, client: TestClient, factory: Factory) -> None:
        owner = factory.owner().headers
        host(client, owner)
        other = factory.user("Administrator").headers
        for method, path, body in (("POST", "/fl/processes/proc/tokens", {"name": "x"}),
                                   ("GET", "/fl/processes/proc/checkpoints/0", None),
                                   ("POST", "/fl/processes/proc/stop", None)):
            response = client.request(method, API_PREFIX + path, json=body, headers=other)
            assert response.status_code == 403, response.text
        assert client.get(f"{API_PREFIX}/fl/processes/proc", headers=other).status_code == 200

    def test_client_routes_refuse_users_tokens_and_anonymous_callers(
        self, client: TestClient, factory: Factory
    ) -> None:
        owner = factory.owner()
        host(client, owner.headers)
        for headers, status in (({}, 401), (owner.headers, 403), (bearer("gflclient_forged"), 401)):
            for method, path in (("POST", "/fl/client/join"), ("GET", "/fl/client/checkpoint")):
                response = client.request(method, API_PREFIX + path, headers=headers)
                assert response.status_code == status, (headers, path, response.text)


class TestCycles:
    def test_fedavg_weighted_by_examples_writes_checkpoint_one_and_opens_cycle_two(
        self, client: TestClient, factory: Factory, node_settings: Any
    ) -> None:
        owner = factory.owner().headers
        host(client, owner)
        a, b = client_token(client, owner, name="a"), client_token(client, owner, name="b")
        joined = join(client, a)
        assert joined["status"] == "accepted" and joined["cycle"] == 1 and joined["reported"] is False
        assert joined["plan"]["parameters"] == [["0.weight", [3, 4]], ["0.bias", [3]]]
        assert set(joined) == {"status", "cycle", "deadline", "reported", "plan"}  # nothing about other clients
        join(client, b)
        assert report(client, a, update(1.0), examples=10, loss=0.8).json() == {"status": "accepted", "cycle": 1}
        assert len(accumulators(node_settings.state_dir)) == 1
        assert report(client, b, update(-2.0), examples=30, loss=0.4).status_code == 200
        # (10·1 + 30·(-2)) / 40 = -1.25 added to the checkpoint's values
        new = latest(client, owner)
        np.testing.assert_allclose(new["0.weight"], np.full((3, 4), 0.5 - 1.25), rtol=1e-6)
        np.testing.assert_allclose(new["0.bias"], np.full(3, -1.25), rtol=1e-6)
        cycles = show(client, owner)["cycles"]
        assert [(c["number"], c["state"]) for c in cycles] == [(1, "aggregated"), (2, "open")]
        assert cycles[0]["reports"] == 2 and cycles[0]["examples"] == 40
        assert cycles[0]["mean_loss"] == pytest.approx(0.6) and cycles[0]["seconds"] >= 0
        assert accumulators(node_settings.state_dir) == []  # the running sum is gone once aggregated
        assert join(client, a)["cycle"] == 2

    def test_the_process_completes_after_its_cycles_and_refuses_clients(
        self, client: TestClient, factory: Factory
    ) -> None:
        owner = factory.owner().headers
        host(client, owner, cycles=1, min_reports=1)
        token = client_token(client, owner)
        join(client, token)
        assert report(client, token, update(0.1)).status_code == 200
        assert show(client, owner)["state"] == "completed"
        refused = client.post(f"{API_PREFIX}/fl/client/join", headers=bearer(token))
        assert refused.status_code == 409 and refused.json()["details"]["reason"] == "process_ended"

    def test_time_up_aggregates_what_arrived_and_an_empty_cycle_expires(
        self, client: TestClient, factory: Factory
    ) -> None:
        owner = factory.owner().headers
        host(client, owner, cycle_seconds=1, min_reports=3, cycles=5)
        token = client_token(client, owner)
        join(client, token)
        assert report(client, token, update(1.0)).status_code == 200
        deadline = time.monotonic() + 15
        while show(client, owner)["cycles"][0]["state"] == "open" and time.monotonic() < deadline:
            time.sleep(0.2)  # the periodic settling closes it
        cycles = show(client, owner)["cycles"]
        assert cycles[0]["state"] == "aggregated" and [c["number"] for c in checkpoints(client, owner)] == [0, 1]
        while len(show(client, owner)["cycles"]) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert show(client, owner)["cycles"][1]["state"] == "expired"
        assert [c["number"] for c in checkpoints(client, owner)] == [0, 1]  # nothing new without reports

    def test_a_full_cycle_refuses_more_clients(self, client: TestClient, factory: Factory) -> None:
        owner = factory.owner().headers
        host(client, owner, clients_per_cycle=1, min_reports=1)
        join(client, client_token(client, owner, name="a"))
        refused = client.post(f"{API_PREFIX}/fl/client/join", headers=bearer(client_token(client, owner, name="b")))
        assert refused.status_code == 409 and refused.json()["details"]["reason"] == "cycle_full"

    def test_stop_cancels_the_open_cycle_and_refuses_clients(
        self, client: TestClient, factory: Factory, node_settings: Any
    ) -> None:
        owner = factory.owner().headers
        host(client, owner)
        token = client_token(client, owner)
        join(client, token)
        assert report(client, token, update()).status_code == 200
        stopped = client.post(f"{API_PREFIX}/fl/processes/proc/stop", headers=owner)
        assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"
        assert show(client, owner)["cycles"][0]["state"] == "cancelled"
        assert accumulators(node_settings.state_dir) == []
        assert client.post(f"{API_PREFIX}/fl/processes/proc/stop", headers=owner).status_code == 409
        assert "fl.process.stopped" in factory.audit_actions()


class TestRefusals:
    """Each refused report leaves the checkpoint, the cycle's figures and the running sum as they were."""

    def _state(self, client: TestClient, owner: dict[str, str], state_dir: Path) -> Any:
        sums = [p.read_bytes() for p in accumulators(state_dir)]
        cycles = [{k: v for k, v in c.items()} for c in show(client, owner)["cycles"]]
        return checkpoints(client, owner), latest(client, owner)["0.weight"].tolist(), cycles, sums

    @pytest.fixture
    def started(self, client: TestClient, factory: Factory) -> tuple[dict[str, str], str, str]:
        owner = factory.owner().headers
        host(client, owner, min_reports=3)
        first, second = client_token(client, owner, name="a"), client_token(client, owner, name="b")
        join(client, first)
        join(client, second)
        assert report(client, first, update(1.0)).status_code == 200
        return owner, first, second

    def test_a_second_report_in_the_same_cycle(self, client: TestClient, started: Any, node_settings: Any) -> None:
        owner, first, _ = started
        before = self._state(client, owner, node_settings.state_dir)
        response = report(client, first, update(5.0))
        assert response.status_code == 409 and response.json()["details"]["reason"] == "already_reported"
        assert self._state(client, owner, node_settings.state_dir) == before

    def test_a_report_after_the_cycle_closed(self, client: TestClient, factory: Factory, node_settings: Any) -> None:
        owner = factory.owner().headers
        host(client, owner, min_reports=1, cycles=3)
        early, late = client_token(client, owner, name="early"), client_token(client, owner, name="late")
        join(client, early)
        join(client, late)
        assert report(client, early, update(1.0)).status_code == 200  # closes cycle 1
        before = self._state(client, owner, node_settings.state_dir)
        response = report(client, late, update(9.0), cycle=1)
        assert response.status_code == 409 and response.json()["details"]["reason"] == "cycle_closed"
        assert "late" in response.json()["message"]
        assert self._state(client, owner, node_settings.state_dir) == before

    @pytest.mark.parametrize("data", [
        update(**{"0.weight": np.ones((4, 3), np.float32)}),
        save({"0.weight": np.ones((3, 4), np.float32)}),
        update(**{"extra": np.ones(2, np.float32)}),
        update(**{"0.bias": np.ones(3, np.int32)}),
        b"not safetensors at all",
    ], ids=["transposed", "missing", "extra", "integers", "garbage"])
    def test_a_wrong_shape_or_malformed_update(self, client: TestClient, started: Any, node_settings: Any,
                                               data: bytes) -> None:
        owner, _, second = started
        before = self._state(client, owner, node_settings.state_dir)
        response = report(client, second, data)
        assert response.status_code == 422 and response.json()["code"] == "invalid_input"
        assert self._state(client, owner, node_settings.state_dir) == before
        assert report(client, second, update(2.0)).status_code == 200  # the refusal did not use up its turn

    @pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e5], ids=["nan", "inf", "-inf", "huge"])
    def test_a_non_finite_or_huge_update(self, client: TestClient, started: Any, node_settings: Any,
                                         bad: float) -> None:
        owner, _, second = started
        before = self._state(client, owner, node_settings.state_dir)
        weight = np.ones((3, 4), np.float32)
        weight[1, 2] = bad
        response = report(client, second, update(**{"0.weight": weight}))
        assert response.status_code == 422 and response.json()["code"] == "invalid_input"
        assert self._state(client, owner, node_settings.state_dir) == before

    def test_an_unauthenticated_or_unjoined_client(self, client: TestClient, started: Any, factory: Factory,
                                                   node_settings: Any) -> None:
        owner, _, _ = started
        before = self._state(client, owner, node_settings.state_dir)
        anonymous = client.post(f"{API_PREFIX}/fl/client/report", params={"cycle": 1, "examples": 1},
                                content=update(), headers={"Content-Type": "application/octet-stream"})
        assert anonymous.status_code == 401
        assert report(client, "gflclient_forged", update()).status_code == 401
        user = client.post(f"{API_PREFIX}/fl/client/report", params={"cycle": 1, "examples": 1}, content=update(),
                           headers={**factory.owner().headers, "Content-Type": "application/octet-stream"})
        assert user.status_code == 403
        unjoined = report(client, client_token(client, owner, name="c"), update())
        assert unjoined.status_code == 409 and unjoined.json()["details"]["reason"] == "not_joined"
        assert report(client, started[1], update(), loss=float("nan")).status_code == 422
        assert self._state(client, owner, node_settings.state_dir) == before


class TestCentralDP:
    def test_updates_are_clipped_to_c_and_every_client_weighs_one(self, client: TestClient, factory: Factory) -> None:
        owner = factory.owner().headers
        # Tiny noise: the clipped average shows through.
        host(client, owner, min_reports=2, dp={"noise_multiplier": 1e-6, "clip_norm": 1.0})
        a, b = client_token(client, owner, name="a"), client_token(client, owner, name="b")
        join(client, a)
        join(client, b)
        big = update(100.0)  # norm 100·√15, clipped to norm 1
        assert report(client, a, big, examples=1000).status_code == 200
        assert report(client, b, update(0.0), examples=1).status_code == 200
        new = latest(client, owner)
        delta = np.concatenate([(new["0.weight"] - 0.5).ravel(), new["0.bias"].ravel()])
        np.testing.assert_allclose(delta, np.full(15, 1 / np.sqrt(15) / 2), atol=1e-4)


class TestTheBenchmark:
    def test_bench_fl_cycle_runs_and_prints_its_figures(self) -> None:
        import subprocess
        import sys

        root = Path(__file__).resolve().parents[1]
        done = subprocess.run([sys.executable, str(root / "bench" / "fl_cycle.py"), "--parameters", "20000",
                               "--clients", "3", "6"], capture_output=True, text=True, timeout=120, cwd=root)
        assert done.returncode == 0, done.stderr
        rows = [line.split() for line in done.stdout.splitlines() if line.strip()[:1].isdigit()]
        assert [int(r[0]) for r in rows] == [3, 6] and all(float(r[2]) > 0 and float(r[3]) > 0 for r in rows)


class TestOnEveryDatabase:
    """The cycle's row locks, JSON columns and unique constraints on SQLite and on PostgreSQL."""

    def test_a_cycle_aggregates_refuses_a_duplicate_and_a_late_report(
        self, any_db_client: TestClient, any_db_factory: Factory
    ) -> None:
        client, owner = any_db_client, any_db_factory.owner().headers
        host(client, owner, min_reports=2, clients_per_cycle=3)
        a, b, c = (client_token(client, owner, name=n) for n in "abc")
        for token in (a, b, c):
            join(client, token)
        assert report(client, a, update(2.0), examples=1).status_code == 200
        duplicate = report(client, a, update(2.0), examples=1)
        assert duplicate.status_code == 409 and duplicate.json()["details"]["reason"] == "already_reported"
        assert report(client, b, update(4.0), examples=3).status_code == 200
        late = report(client, c, update(8.0), examples=1)
        assert late.status_code == 409 and late.json()["details"]["reason"] == "cycle_closed"
        np.testing.assert_allclose(latest(client, owner)["0.bias"], np.full(3, 3.5), rtol=1e-6)  # (2 + 12) / 4
        assert [c["number"] for c in checkpoints(client, owner)] == [0, 1]
        assert show(client, owner)["cycles"][0]["reports"] == 2


class TestSettlingOnAJoin:
    def test_a_join_after_the_last_cycles_time_keeps_its_aggregate_though_the_join_is_refused(
        self, node_settings: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from grid_runtime.node.app import create_app
        from grid_runtime.node.fl import router

        monkeypatch.setattr(router, "SETTLE_INTERVAL_SECONDS", 3600.0)  # only the join settles here
        with TestClient(create_app(node_settings)) as client:
            owner = Factory(client).owner().headers
            host(client, owner, cycles=1, min_reports=2, cycle_seconds=1)
            early, late = client_token(client, owner, name="early"), client_token(client, owner, name="late")
            join(client, early)
            assert report(client, early, update(1.0)).status_code == 200
            time.sleep(1.2)
            refused = client.post(f"{API_PREFIX}/fl/client/join", headers=bearer(late))
            assert refused.status_code == 409 and refused.json()["details"]["reason"] == "process_ended"
            assert show(client, owner)["state"] == "completed"
            assert [c["number"] for c in checkpoints(client, owner)] == [0, 1]
            np.testing.assert_allclose(latest(client, owner)["0.bias"], np.ones(3), rtol=1e-6)
            assert accumulators(node_settings.state_dir) == []


class TestRecoveryAtStart:
    def test_orphan_checkpoints_and_closed_cycles_sums_are_swept_the_open_cycles_kept(
        self, client: TestClient, factory: Factory, node_settings: Any
    ) -> None:
        from grid_runtime.core.storage import ObjectStore
        from grid_runtime.node.bootstrap import recover

        owner = factory.owner().headers
        host(client, owner)
        token = client_token(client, owner)
        join(client, token)
        assert report(client, token, update(1.0), examples=10).status_code == 200  # cycle 1 stays open (min 2)
        [open_sum] = accumulators(node_settings.state_dir)
        stale_sum = open_sum.with_name("cycle-999999.sum")
        stale_sum.write_bytes(b"\0" * 64)
        store = ObjectStore(node_settings.resolved_object_store_url, node_settings.object_store_options)
        orphan = "fl/checkpoints/orphan.safetensors"
        store.put_stream(orphan, io.BytesIO(b"x"))
        [kept] = checkpoints(client, owner)
        with factory.sessions() as session:
            report_ = recover(session, node_settings, store)
        assert report_.orphan_blobs == [orphan] and report_.running_sums == ["cycle-999999.sum"]
        assert "1 running sum(s) of closed cycles" in report_.summary()
        assert accumulators(node_settings.state_dir) == [open_sum]
        assert orphan not in store.keys("fl/checkpoints/") and len(list(store.keys("fl/checkpoints/"))) == 1
        assert checkpoints(client, owner) == [kept]
        assert report_.rows_without_blob == []


class TestShutdown:
    def test_a_node_stopping_while_a_settling_round_queries_waits_for_it_and_stops(
        self, node_settings: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A round's query runs in a worker thread; cancelling the loop under it closed its session from another
        thread, and the error that raised was taken for a failed round: the loop went on and shutdown hung."""
        import threading

        from grid_runtime.node.app import create_app
        from grid_runtime.node.fl import router, service

        querying, finished = threading.Event(), threading.Event()
        due = service.due_processes

        def slow_due(session: Any) -> list[int]:
            querying.set()
            time.sleep(1.0)  # the shutdown arrives while this runs
            found = due(session)
            finished.set()
            return found

        monkeypatch.setattr(router, "SETTLE_INTERVAL_SECONDS", 0.05)
        monkeypatch.setattr(service, "due_processes", slow_due)
        started = time.monotonic()
        with TestClient(create_app(node_settings)):
            assert querying.wait(10)
        assert finished.is_set()  # the round under way finished before the Node stopped
        assert time.monotonic() - started < 10
        assert "could not settle FL cycles" not in caplog.text
