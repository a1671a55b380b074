"""Jobs and results in the SDK: train a model or compute a DP statistic on data that stays on the Node.

>>> from gridctl import DP
>>> job = node.train(model, dataset="patients", loss="cross_entropy", optimizer="sgd", lr=0.1, epochs=5,
...                  batch_size=64, dp=DP(target_epsilon=3.0, max_grad_norm=1.0))
>>> job.wait().status            # 'succeeded' (or 'failed' / 'cancelled', with job.error)
>>> result = job.result          # node.results[job.result_id]
>>> result.epsilon, result.delta
>>> weights = result.get()       # a state dict, when you may download it (else: ask for its release)

``DP(target_epsilon=...)`` is sent as it is: the Node calibrates σ from it (dp-accounting at the Node's δ, for
the dataset's row count) and records σ in the job's settings; the SDK does no privacy arithmetic of its own
and does not import dp-accounting. torch and safetensors are imported only inside the calls that need them.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gridctl.sdk.errors import GridctlError
from gridctl.sdk.http import segment

if TYPE_CHECKING:
    from gridctl.sdk.http import Http

Json = dict[str, Any]
FINISHED = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class DP:
    """Differential privacy for a training job: ``noise_multiplier`` σ and ``max_grad_norm`` C, or a
    ``target_epsilon`` that the Node calibrates σ to (at its δ); the job's ``settings["dp"]`` shows the σ."""

    noise_multiplier: float | None = None
    max_grad_norm: float = 1.0
    target_epsilon: float | None = None

    def __post_init__(self) -> None:
        if self.noise_multiplier is None and self.target_epsilon is None:
            raise ValueError("DP needs noise_multiplier=..., or target_epsilon=... to calibrate it")


class ResultPointer:
    """A job's result, which stays on the Node: ``epsilon``/``delta`` (None: not differentially private),
    ``lineage``, and ``get()`` when you may download it."""

    def __init__(self, http: Http, data: Json) -> None:
        self._http = http
        self.data = data

    def __repr__(self) -> str:
        return f"<Result {self.id} {self.kind} ε={self.epsilon} δ={self.delta}>"

    id = property(lambda self: int(self.data["id"]))
    kind = property(lambda self: str(self.data["kind"]))
    epsilon = property(lambda self: self.data["epsilon"])
    delta = property(lambda self: self.data["delta"])
    sha256 = property(lambda self: self.data.get("sha256"))
    lineage = property(lambda self: self.data["lineage"])
    downloadable = property(lambda self: bool(self.data["downloadable"]))

    def refresh(self) -> ResultPointer:
        self.data = self._http.get(f"/results/{self.id}")
        return self

    def get(self, *, wait: bool = False, timeout: float | None = None, reason: str | None = None) -> Any:
        """The trained parameters (a dict of torch tensors, checked against the sha256) or the statistic's
        value. If you may not download it (an input you cannot download), this files a release request (or
        finds yours) and raises ``ReleaseNotApproved`` naming the request, its state and the reason, unless
        it is approved; ``wait=True`` waits (up to ``timeout`` seconds) for the officer's decision."""
        from gridctl.sdk import releases
        from gridctl.sdk.errors import Forbidden
        from gridctl.sdk.http import raise_for_error

        response = self._http.client.get(f"/results/{self.id}/data")
        try:
            raise_for_error(response)
            blob = response.content
        except Forbidden:  # not downloadable as it is: through a release request
            blob = releases.fetch(self._http, target_type="result", target_id=self.id, wait=wait,
                                  timeout=timeout, reason=reason)
        if self.kind == "statistic":
            import json

            return json.loads(blob)
        # The Node shows a result's sha256 only to who may download it: after a release, read it again.
        expected = self.data.get("sha256") or self.refresh().data.get("sha256")
        if expected is not None and hashlib.sha256(blob).hexdigest() != expected:
            raise GridctlError("integrity", f"result {self.id} does not match its sha256")
        from safetensors.torch import load

        return load(blob)


class Job:
    """A submitted job. ``status`` asks the Node; ``wait()`` polls until it finishes; ``result`` is its
    ``ResultPointer`` once it succeeded."""

    def __init__(self, http: Http, data: Json) -> None:
        self._http = http
        self.data = data

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.data['kind']} {self.data['state']}>"

    id = property(lambda self: int(self.data["id"]))
    error = property(lambda self: self.data.get("error"))
    progress = property(lambda self: float(self.data.get("progress", 0.0)))
    planned_epsilon = property(lambda self: self.data.get("planned_epsilon"))

    def refresh(self) -> Job:
        self.data = self._http.get(f"/jobs/{self.id}")
        return self

    @property
    def status(self) -> str:
        """The job's state now: queued, running, succeeded, failed or cancelled."""
        return str(self.refresh().data["state"])

    def wait(self, timeout: float | None = None, *, poll: float = 0.5) -> Job:
        """Poll until the job finishes (TimeoutError after ``timeout`` seconds); returns the job."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.refresh().data["state"] not in FINISHED:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {self.id} is still {self.data['state']} after {timeout:g}s")
            time.sleep(poll)
        return self

    @property
    def result(self) -> ResultPointer | None:
        result_id = self.data.get("result_id") or self.refresh().data.get("result_id")
        return None if result_id is None else ResultPointer(self._http, self._http.get(f"/results/{result_id}"))

    def cancel(self) -> Job:
        self.data = self._http.post(f"/jobs/{self.id}/cancel")
        return self


class Results:
    """``node.results[ID]``: a result by id."""

    def __init__(self, http: Http) -> None:
        self._http = http

    def __getitem__(self, result_id: int) -> ResultPointer:
        return ResultPointer(self._http, self._http.get(f"/results/{int(result_id)}"))


class Jobs:
    """``node.jobs``: submit, list, read and cancel jobs; set quotas (administrators)."""

    def __init__(self, http: Http) -> None:
        self._http = http

    def options(self) -> Json:
        return self._http.get("/jobs/options")

    def train(self, spec_or_module: Any, *, dataset: str | int, features: str = "features", labels: str = "labels",
              loss: str = "cross_entropy", optimizer: str = "sgd", lr: float = 0.1, epochs: int = 1,
              batch_size: int = 64, dp: DP | None = None, seed: int | None = None,
              input_shape: list[int] | None = None, initial_weights: bool | bytes = False) -> Job:
        """Submit a training job (see the module docstring); ``spec_or_module`` is a model spec dict or an
        ``nn.Sequential`` of allowlisted layers (converted by ``gridctl.models.to_spec``).

        ``initial_weights``: ``True`` sends the module's current parameters (as safetensors) to start from;
        bytes are a safetensors file of them; ``False`` starts from freshly initialized parameters."""
        weights: bytes | None = initial_weights if isinstance(initial_weights, bytes) else None
        if isinstance(spec_or_module, dict):
            spec = spec_or_module
            if initial_weights is True:
                raise GridctlError("usage", "initial_weights=True needs a module; with a spec, pass the bytes")
        else:
            from gridctl.models import to_spec, to_weights

            spec = to_spec(spec_or_module, input_shape=input_shape)
            if initial_weights is True:
                weights = to_weights(spec_or_module)
        body: Json = {"spec": spec, "dataset": str(dataset), "features": features, "labels": labels, "loss": loss,
                      "optimizer": optimizer, "lr": lr, "epochs": epochs, "batch_size": batch_size, "seed": seed}
        if dp is not None:
            body["dp"] = self._dp(dp)
        if weights is not None:
            body["initial_weights"] = base64.b64encode(weights).decode()
        return Job(self._http, self._http.post("/jobs/train", json=body))

    @staticmethod
    def _dp(dp: DP) -> Json:
        """The request's DP settings: σ as given, or the target ε for the Node to calibrate σ to."""
        body: Json = {"max_grad_norm": dp.max_grad_norm}
        if dp.noise_multiplier is not None:
            body["noise_multiplier"] = dp.noise_multiplier
        if dp.target_epsilon is not None:
            body["target_epsilon"] = dp.target_epsilon
        return body

    def statistic(self, statistic: str, *, dataset: str | int, member: str, epsilon: float,
                  column: int | None = None, columns: list[int] | str | None = None, mechanism: str = "laplace",
                  bins: int | None = None, alphas: list[float] | None = None) -> Job:
        """Submit a DP statistic (count, sum, mean, histogram, quantiles) of a dataset member. ``columns``
        (a list, or ``"all"``) computes a sum or mean of several columns in one job: one value a column, each
        at ``epsilon``, charged once as their composed event."""
        body = {"dataset": str(dataset), "member": member, "statistic": statistic, "epsilon": epsilon,
                "column": column, "columns": columns, "mechanism": mechanism, "bins": bins, "alphas": alphas}
        return Job(self._http, self._http.post("/jobs/statistics", json={k: v for k, v in body.items()
                                                                         if v is not None}))

    def list(self, *, all_users: bool = False, state: str | None = None, limit: int = 50, offset: int = 0) -> Json:
        params: Json = {"limit": limit, "offset": offset, "all": all_users}
        if state:
            params["state"] = state
        return self._http.get("/jobs", params=params)

    def __getitem__(self, job_id: int) -> Job:
        return Job(self._http, self._http.get(f"/jobs/{int(job_id)}"))

    def get(self, job_id: int) -> Job:
        return self[job_id]

    def cancel(self, job_id: int) -> Job:
        return Job(self._http, self._http.post(f"/jobs/{int(job_id)}/cancel"))

    def quota(self, user: str | int) -> Json:
        return self._http.get(f"/quotas/{segment(user)}")

    def set_quota(self, user: str | int, *, max_concurrent: int | None = None, max_per_day: int | None = None,
                  max_run_seconds: int | None = None) -> Json:
        return self._http.put(f"/quotas/{segment(user)}", json={
            "max_concurrent": max_concurrent, "max_per_day": max_per_day, "max_run_seconds": max_run_seconds})

    def workers(self) -> Json:
        return self._http.get("/workers")
