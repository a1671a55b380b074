"""The contract between the Node and its Workers, the job state machine, and what a failure tells whom.

The Node side runs for real (the app on SQLite, its runner's report handling) without Ray: a Worker's reports
are the contract's JSON, fed to the runner as Ray would hand them over. The Worker side runs its real task
functions against a real object store on disk.
"""

from __future__ import annotations

import io
import json
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, get_args

import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import save

from grid_runtime.compute import contracts, tasks
from grid_runtime.compute.contracts import (
    OFFICER_ONLY_FIELDS,
    PUBLIC_ERROR_MESSAGES,
    ErrorCode,
    Failed,
    ModelDone,
    StoredInput,
    TrainingConfig,
    TrainingInputs,
    TrainingPayload,
    parse_report,
)
from grid_runtime.compute.states import FINISHED_STATES, JobState, can_move, check_transition
from grid_runtime.core.capabilities import Capability
from grid_runtime.core.errors import Conflict
from grid_runtime.core.storage import open_store
from grid_runtime.node.datasets.models import Dataset
from grid_runtime.node.jobs.models import Job
from grid_runtime.node.jobs.runner import JobRunner, _Tracked
from grid_runtime.privacy import dp_sgd_event, event_to_dict
from tests.factories import Factory, MadeUser

PRIVATE_TEXT = "IndexError: Target 5 is out of bounds."
SPEC = {"layers": [{"type": "Linear", "in_features": 3, "out_features": 2}]}


class TestStateMachine:
    @pytest.mark.parametrize(("current", "target"), [
        ("queued", "running"), ("queued", "cancelled"), ("queued", "failed"),
        ("running", "succeeded"), ("running", "failed"), ("running", "cancelled"), ("running", "queued"),
    ])
    def test_allowed_moves(self, current: str, target: str) -> None:
        assert can_move(current, target)
        check_transition(1, current, target)

    @pytest.mark.parametrize(("current", "target"), [("queued", "succeeded"), ("queued", "queued"),
                                                     ("running", "running")])
    def test_moves_that_skip_a_step_are_refused(self, current: str, target: str) -> None:
        with pytest.raises(Conflict, match=f"job 7 is {current} and cannot become {target}"):
            check_transition(7, current, target)

    @pytest.mark.parametrize("terminal", ["succeeded", "failed", "cancelled"])
    def test_terminal_states_never_change(self, terminal: str) -> None:
        assert JobState(terminal) in FINISHED_STATES and JobState(terminal).terminal
        for target in JobState:
            assert not can_move(terminal, target)
        with pytest.raises(Conflict, match=f"job 3 has already {terminal}"):
            check_transition(3, terminal, "queued")


class TestReports:
    def test_a_done_report_round_trips_and_non_finite_metrics_become_null(self) -> None:
        done = ModelDone(object_key="results/x", sha256="a" * 64, size=10, event={"kind": "x"}, steps=3,
                         sample_rate=0.1, metrics=[{"epoch": 1, "loss": float("nan"), "accuracy": 0.5}],
                         zeroed_samples=2, seconds=1.5)
        data = json.loads(json.dumps(done.model_dump(mode="json")))  # through JSON, as Ray hands it over
        parsed = parse_report(data)
        assert parsed == done.model_copy(update={"metrics": [contracts.EpochMetric(epoch=1, loss=None,
                                                                                  accuracy=0.5)]})

    @pytest.mark.parametrize("data", [{"type": "explode"}, {"type": "done", "kind": "model"}, "text", None])
    def test_anything_else_is_an_internal_failure(self, data: Any) -> None:
        report = parse_report(data)
        assert isinstance(report, Failed) and report.error_code is ErrorCode.internal
        assert report.public_message == PUBLIC_ERROR_MESSAGES[ErrorCode.internal]

    def test_the_fields_computed_on_private_data_are_marked_officer_only(self) -> None:
        marked = set()
        for model in (contracts.ProgressReport, contracts.ModelDone, contracts.Failed):
            for name, field in model.model_fields.items():
                if (field.json_schema_extra or {}).get("officer_only"):  # type: ignore[union-attr]
                    marked.add(name)
        assert marked == OFFICER_ONLY_FIELDS

    def test_every_code_has_one_generic_message_without_placeholders(self) -> None:
        assert set(PUBLIC_ERROR_MESSAGES) == set(ErrorCode)
        assert all("{" not in text for text in PUBLIC_ERROR_MESSAGES.values())


class TestOneSourceOfChoices:
    def test_schema_trainer_and_options_take_the_contracts_lists(self, client: TestClient,
                                                                 factory: Factory) -> None:
        from grid_runtime.compute.training import LOSS_MODULES, OPTIMIZER_CLASSES
        from grid_runtime.node.jobs.schemas import StatisticsIn, TrainIn

        assert get_args(TrainIn.model_fields["loss"].annotation) == contracts.LOSSES
        assert get_args(TrainIn.model_fields["optimizer"].annotation) == contracts.OPTIMIZERS
        assert get_args(StatisticsIn.model_fields["statistic"].annotation) == contracts.STATISTICS
        assert tuple(LOSS_MODULES) == contracts.LOSSES and tuple(OPTIMIZER_CLASSES) == contracts.OPTIMIZERS
        options = client.get("/api/v1/jobs/options", headers=factory.user().headers).json()
        assert (options["losses"], options["optimizers"], options["statistics"]) == (
            list(contracts.LOSSES), list(contracts.OPTIMIZERS), list(contracts.STATISTICS))


class TestCalibrationIsTheNodes:
    def test_the_sdk_sends_the_target_epsilon_and_imports_no_accountant(self) -> None:
        code = ("import sys, json; from gridctl.sdk.jobs import DP, Jobs; "
                "body = Jobs._dp(DP(target_epsilon=2.0, max_grad_norm=0.5)); "
                "print(json.dumps([body, 'dp_accounting' in sys.modules, 'grid_runtime.privacy' in sys.modules]))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert json.loads(out) == [{"max_grad_norm": 0.5, "target_epsilon": 2.0}, False, False]


# ---- the Worker's side, on a real store, without Ray ---------------------------------------------------------


def _put(store: Any, key: str, tensor: torch.Tensor) -> StoredInput:
    stored = store.put_stream(key, io.BytesIO(save({"t": tensor.contiguous()})))
    return StoredInput(key=stored.key, sha256=stored.sha256, role=key)


def _payload(tmp_path: Path, *, labels: torch.Tensor, corrupt: bool = False) -> tuple[TrainingPayload, Any]:
    store = open_store(f"file://{tmp_path / 'store'}")
    features = _put(store, "features", torch.randn(len(labels), 3))
    label_input = _put(store, "labels", labels)
    if corrupt:
        label_input = label_input.model_copy(update={"sha256": "0" * 64})
    payload = TrainingPayload(job_id=1, attempt=1, cpus=1, store_url=f"file://{tmp_path / 'store'}",
                              time_limit=60, delta=1e-5, spec=SPEC,
                              inputs=TrainingInputs(features=features, labels=label_input),
                              settings=TrainingConfig(loss="cross_entropy", optimizer="sgd", lr=0.1, epochs=1,
                                                      batch_size=4, seed=3))
    return payload, store


class TestWorker:
    def test_a_private_label_out_of_range_trains_and_reports_officer_figures(self, tmp_path: Path) -> None:
        payload, store = _payload(tmp_path, labels=torch.tensor([0, 1, 5, 1, 0, 1, 0, 1]))
        reports: queue.Queue[dict[str, Any]] = queue.Queue()
        done = tasks._train(payload, store, reports, threading.Event())
        assert isinstance(parse_report(done.model_dump(mode="json")), ModelDone)
        assert done.steps == 2 and done.zeroed_samples == 0 and len(done.metrics) == 1
        with store.open(done.object_key) as reader:
            assert len(reader.read()) == done.size

    def test_an_input_that_is_not_what_was_admitted_fails_as_input_invalid(self, tmp_path: Path) -> None:
        payload, store = _payload(tmp_path, labels=torch.tensor([0, 1]), corrupt=True)
        with pytest.raises(tasks.InputError) as raised:
            tasks._train(payload, store, queue.Queue(), threading.Event())
        assert tasks.failure_of(raised.value).error_code is ErrorCode.input_invalid

    @pytest.mark.parametrize(("exc", "code"), [
        (IndexError("Target 5 is out of bounds."), ErrorCode.internal),
        (MemoryError("12 GiB for rows 1-9"), ErrorCode.out_of_memory),
        (RuntimeError("[enforce fail at alloc_cpu.cpp] DefaultCPUAllocator: can't allocate memory"),
         ErrorCode.out_of_memory),
        (ValueError("row 17 has label 5"), ErrorCode.internal),
    ])
    def test_a_failure_is_coded_by_its_type_and_its_text_goes_to_the_detail_only(
            self, exc: Exception, code: ErrorCode) -> None:
        failure = tasks.failure_of(exc)
        assert failure.error_code is code
        assert str(exc) in failure.error_detail
        assert str(exc) not in failure.public_message


# ---- the Node's side: the runner's handling of reports, and what each reader sees --------------------------


def _job(factory: Factory, owner: MadeUser, *, state: str = "queued") -> tuple[int, int]:
    features, labels = factory.tensor("f"), factory.tensor("l")
    dataset_id = factory.dataset(tensors={"features": features, "labels": labels})
    with factory.sessions.begin() as session:
        dataset = session.get(Dataset, dataset_id)
        assert dataset is not None
        dataset.bounds = {"features": {"lower": [-1.0, -2.0, -3.0], "upper": [1.0, 2.0, 3.0]}}
        dataset.label_classes = 2
        record = {"role": "features", "sha256": "b" * 64, "shape": [2, 3], "dtype": "float32"}
        job = Job(kind="train", state=state, owner_id=owner.id, dataset_id=dataset_id,
                  inputs={"features": {**record, "tensor_id": features},
                          "labels": {**record, "role": "labels", "tensor_id": labels}},
                  spec=SPEC, settings={"loss": "cross_entropy", "optimizer": "sgd", "lr": 0.1, "epochs": 1,
                                       "batch_size": 1, "seed": 9, "delta": 1e-5,
                                       "dp": {"noise_multiplier": 1.0, "max_grad_norm": 1.0,
                                              "target_epsilon": 3.0}},
                  planned_event=None, planned_epsilon=None, time_limit_seconds=60, metrics=[])
        session.add(job)
        session.flush()
        return job.id, dataset_id


@pytest.fixture
def runner(client: TestClient) -> JobRunner:
    """The Node's runner, not started (no Ray): its report handling runs on the app's database."""
    return JobRunner(client.app.state.sessions, client.app.state.settings)  # type: ignore[attr-defined]


def _tracked(job_id: int) -> _Tracked:
    return _Tracked(job_id=job_id, generator=None, attempt=1, time_limit=60)


class TestNode:
    def test_the_payload_carries_the_declared_bounds_and_classes_and_no_target_epsilon(
            self, factory: Factory, runner: JobRunner) -> None:
        job_id, _ = _job(factory, factory.user())
        with factory.sessions() as session:
            payload = runner._payload(session, session.get(Job, job_id))
        assert isinstance(payload, TrainingPayload)
        assert payload.inputs.features.bounds is not None
        assert payload.inputs.features.bounds.upper == [1.0, 2.0, 3.0]
        assert payload.inputs.labels.bounds is None and payload.label_classes == 2
        assert payload.settings.seed == 9
        assert payload.settings.dp is not None and payload.settings.dp.noise_multiplier == 1.0
        assert "target_epsilon" not in payload.model_dump_json()

    def test_a_failure_shows_its_owner_a_code_and_generic_text_and_its_officer_the_detail(
            self, client: TestClient, factory: Factory, runner: JobRunner) -> None:
        scientist = factory.user()
        officer = factory.user(capabilities={Capability.triage_requests})
        job_id, _ = _job(factory, scientist)
        runner._report(_tracked(job_id), {"type": "started", "node_id": "w1", "pid": 1})
        runner._report(_tracked(job_id), {"type": "failed", "error_code": "internal", "error_detail": PRIVATE_TEXT})

        public = client.get(f"/api/v1/jobs/{job_id}", headers=scientist.headers)
        assert public.status_code == 200
        body = public.json()
        assert body["state"] == "failed" and body["error_code"] == "internal"
        assert body["error"] == PUBLIC_ERROR_MESSAGES[ErrorCode.internal]
        assert "Target 5" not in public.text and "error_detail" not in body
        listed = client.get("/api/v1/jobs", headers=scientist.headers)
        assert "Target 5" not in listed.text

        officer_view = client.get(f"/api/v1/jobs/{job_id}", headers=officer.headers).json()
        assert officer_view["error_code"] == "internal" and officer_view["error_detail"] == PRIVATE_TEXT
        audit = client.get("/api/v1/audit", headers=factory.owner().headers)
        assert "Target 5" not in audit.text  # the detail is not copied into the audit log either

    def test_a_late_report_after_a_cancel_changes_nothing(self, client: TestClient, factory: Factory,
                                                          runner: JobRunner) -> None:
        scientist = factory.user()
        job_id, _ = _job(factory, scientist)
        runner._report(_tracked(job_id), {"type": "started", "node_id": "w1", "pid": 1})
        runner._finish(job_id, JobState.cancelled, note="cancelled by request")
        runner._report(_tracked(job_id), {"type": "failed", "error_code": "timeout", "error_detail": "late"})
        body = client.get(f"/api/v1/jobs/{job_id}", headers=scientist.headers).json()
        assert body["state"] == "cancelled" and body["error_code"] is None

    def test_a_result_keeps_the_zeroed_count_for_officers_only(self, client: TestClient, factory: Factory,
                                                               runner: JobRunner) -> None:
        scientist = factory.user()
        officer = factory.user(capabilities={Capability.triage_requests})
        job_id, dataset_id = _job(factory, scientist)
        runner._report(_tracked(job_id), {"type": "started", "node_id": "w1", "pid": 1})
        done = ModelDone(object_key="results/r", sha256="c" * 64, size=123,
                         event=event_to_dict(dp_sgd_event(sample_rate=0.5, noise_multiplier=1.0, steps=2)),
                         steps=2, sample_rate=0.5, metrics=[{"epoch": 1, "loss": 0.7, "accuracy": 0.5}],
                         zeroed_samples=527, seconds=2.0)
        runner._report(_tracked(job_id), done.model_dump(mode="json"))

        job = client.get(f"/api/v1/jobs/{job_id}", headers=scientist.headers).json()
        assert job["state"] == "succeeded" and job["result_id"] is not None
        public = client.get(f"/api/v1/results/{job['result_id']}", headers=scientist.headers)
        assert public.status_code == 200
        assert "zeroed_samples" not in public.text and "527" not in public.text and "metrics" not in public.json()
        with factory.sessions() as session:
            stored = session.get(Job, job_id)
            assert stored is not None and stored.metrics[0]["loss"] == 0.7
        officer_view = client.get(f"/api/v1/jobs/{job_id}", headers=officer.headers).json()
        assert officer_view["metrics"][0]["loss"] == 0.7
        officer_result = client.get(f"/api/v1/results/{job['result_id']}", headers=officer.headers).json()
        assert officer_result["lineage"]["officer_only"]["zeroed_samples"] == 527

        # Even once the scientist may download the weights (download on every input), the count stays hidden.
        granted = client.post("/api/v1/permissions", headers=factory.owner().headers, json={
            "subject_type": "user", "subject": scientist.id, "target_type": "dataset", "target_id": dataset_id,
            "level": "download"})
        assert granted.status_code == 201, granted.text
        downloadable = client.get(f"/api/v1/results/{job['result_id']}", headers=scientist.headers)
        assert downloadable.json()["downloadable"] is True
        assert "zeroed_samples" not in downloadable.text and "officer_only" not in downloadable.text

    def test_a_lost_worker_means_a_retry_then_a_coded_failure_and_out_of_memory_no_retry(
            self, client: TestClient, factory: Factory, runner: JobRunner) -> None:
        scientist = factory.user()
        officer = factory.user(capabilities={Capability.triage_requests})
        lost = type("NodeDiedError", (Exception,), {})
        oom = type("OutOfMemoryError", (Exception,), {})
        job_id, _ = _job(factory, scientist)
        for attempt in (1, 2):
            with factory.sessions.begin() as session:
                stored = session.get(Job, job_id)
                assert stored is not None
                stored.attempts = attempt
            runner._report(_tracked(job_id), {"type": "started", "node_id": f"w{attempt}", "pid": 1})
            runner._task_error(_tracked(job_id), lost("raylet at 10.0.0.7 died"))
            body = client.get(f"/api/v1/jobs/{job_id}", headers=scientist.headers).json()
            assert body["error_code"] == "worker_lost" and "lost" in body["error"]
            assert body["state"] == ("queued" if attempt == 1 else "failed")
        officer_view = client.get(f"/api/v1/jobs/{job_id}", headers=officer.headers).json()
        assert "NodeDiedError" in officer_view["error_detail"] and "attempt 2 of 2" in officer_view["error_detail"]

        other, _ = _job(factory, scientist)
        runner._report(_tracked(other), {"type": "started", "node_id": "w1", "pid": 1})
        runner._task_error(_tracked(other), oom("Task was killed due to the node running low on memory"))
        body = client.get(f"/api/v1/jobs/{other}", headers=scientist.headers).json()
        assert (body["state"], body["error_code"]) == ("failed", "out_of_memory")
        assert "low on memory" not in json.dumps(body)
