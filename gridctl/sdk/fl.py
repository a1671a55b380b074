"""Model-centric federated learning in the SDK (docs/fl.md): host processes, and take part as a client.

Hosting (a user holding ``upload_data``), through ``node.fl``:

>>> process = node.fl.create("digits", model, client={"lr": 0.1, "epochs": 2},
...                          server={"clients_per_cycle": 5, "min_reports": 3, "cycles": 10})
>>> token = node.fl.issue_token("digits", "hospital-a")["token"]     # give it to one client
>>> node.fl.show("digits")["cycles"]                                 # reports, examples, mean loss, time
>>> state = node.fl.checkpoint("digits")                             # the latest parameters

A client, with its own data, which never leaves it (only the update is sent):

>>> client = gridctl.fl.Client(url, token=token)
>>> client.run(features, labels)        # join, download, train, report; cycle after cycle until it ends

The client builds the model with the Workers' builder (``grid_runtime.compute.builder``) from the process's
spec, and trains it with the Workers' trainer; torch is imported only when it trains.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gridctl.sdk.errors import GridctlError
from gridctl.sdk.http import Http, segment

if TYPE_CHECKING:
    import numpy as np

Json = dict[str, Any]


def _spec_of(model: Any) -> Json:
    if isinstance(model, dict):
        return model
    from gridctl.models import to_spec

    return to_spec(model)


def _weights_of(weights: Any) -> str | None:
    if weights is None:
        return None
    if not isinstance(weights, bytes | bytearray):
        from safetensors.torch import save

        weights = save({k: v.detach().cpu().contiguous() for k, v in dict(weights).items()})
    return base64.b64encode(bytes(weights)).decode()


class FLProcesses:
    """Processes this Node hosts (``upload_data``): create, list, show, stop; checkpoints; client tokens."""

    def __init__(self, http: Http) -> None:
        self._http = http

    def create(self, name: str, model: Any, *, initial_weights: Any = None, client: Json | None = None,
               server: Json | None = None) -> Json:
        """Host a process: ``model`` is a spec or an ``nn.Sequential`` of allowlisted layers; ``initial_weights``
        a state dict or safetensors bytes (fresh parameters without); ``client``: loss, optimizer, lr, batch_size,
        epochs; ``server``: clients_per_cycle, min_reports, cycle_seconds, cycles, dp={noise_multiplier,
        clip_norm}."""
        body: Json = {"name": name, "spec": _spec_of(model), "client": client or {}, "server": server or {}}
        encoded = _weights_of(initial_weights)
        if encoded is not None:
            body["initial_weights"] = encoded
        return dict(self._http.post("/fl/processes", json=body))

    def list(self) -> builtins.list[Json]:
        return list(self._http.get("/fl/processes"))

    def show(self, ref: int | str) -> Json:
        return dict(self._http.get(f"/fl/processes/{segment(ref)}"))

    def stop(self, ref: int | str) -> Json:
        return dict(self._http.post(f"/fl/processes/{segment(ref)}/stop"))

    def checkpoints(self, ref: int | str) -> builtins.list[Json]:
        return list(self._http.get(f"/fl/processes/{segment(ref)}/checkpoints"))

    def download_checkpoint(self, ref: int | str, dest: str | Path, *, number: int | None = None) -> Path:
        """Save a checkpoint (the latest by default) as a safetensors file, checked against its sha256."""
        if number is None:
            number = int(self.checkpoints(ref)[-1]["number"])
        data, sha256 = _download(self._http, f"/fl/processes/{segment(ref)}/checkpoints/{number}")
        path = Path(dest)
        path.write_bytes(data)
        return path

    def checkpoint(self, ref: int | str, *, number: int | None = None) -> dict[str, np.ndarray]:
        """A checkpoint's parameters as numpy arrays (the latest by default)."""
        from safetensors.numpy import load

        if number is None:
            number = int(self.checkpoints(ref)[-1]["number"])
        data, _ = _download(self._http, f"/fl/processes/{segment(ref)}/checkpoints/{number}")
        return dict(load(data))

    def issue_token(self, ref: int | str, name: str) -> Json:
        """A client token for this process (``["token"]`` is shown once)."""
        return dict(self._http.post(f"/fl/processes/{segment(ref)}/tokens", json={"name": name}))

    def tokens(self, ref: int | str) -> builtins.list[Json]:
        return list(self._http.get(f"/fl/processes/{segment(ref)}/tokens"))

    def revoke_token(self, ref: int | str, token_id: int) -> Json:
        return dict(self._http.delete(f"/fl/processes/{segment(ref)}/tokens/{int(token_id)}"))


def _download(http: Http, path: str) -> tuple[bytes, str]:
    from gridctl.sdk.http import raise_for_error

    response = http.client.get(path)
    raise_for_error(response)
    data = response.content
    sha256 = response.headers.get("X-Content-SHA256", "")
    if hashlib.sha256(data).hexdigest() != sha256:
        raise GridctlError("integrity", "the checkpoint does not match the sha256 the Node sent")
    return data, sha256


@dataclass(frozen=True)
class CycleReport:
    """What one cycle of training sent: the cycle, the examples trained on and the mean loss after training."""

    cycle: int
    examples: int
    loss: float | None


class Client:
    """A client of one FL process: ``token`` is the client token its host issued (it works for that process only).

    ``run_cycle(features, labels)`` joins the current cycle, downloads the checkpoint, trains locally with the
    process's settings and reports the update (trained parameters minus the checkpoint's); ``run`` repeats it
    until the process ends. Only the update, the number of examples and the loss are sent."""

    def __init__(self, url: str, *, token: str, timeout: float = 60.0, ca_file: str | None = None) -> None:
        self.http = Http(url, token, timeout=timeout, ca_file=ca_file)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def plan(self) -> Json:
        """The process's plan (name, spec, training settings, current checkpoint), without joining a cycle."""
        return dict(self.http.get("/fl/client/plan"))

    def join(self) -> Json:
        """Join the current cycle: your status, its number and deadline, and the plan."""
        return dict(self.http.post("/fl/client/join"))

    def checkpoint(self) -> bytes:
        """The checkpoint the current cycle starts from (safetensors bytes, checked against its sha256)."""
        return _download(self.http, "/fl/client/checkpoint")[0]

    def report(self, update: bytes, *, cycle: int, examples: int, loss: float | None = None) -> Json:
        """Send an update (safetensors bytes) for the cycle you joined."""
        params: Json = {"cycle": cycle, "examples": examples}
        if loss is not None:
            params["loss"] = loss
        return dict(self.http.post("/fl/client/report", params=params, content=update,
                                   headers={"Content-Type": "application/octet-stream"}))

    def train(self, plan: Json, checkpoint: bytes, features: Any, labels: Any) -> tuple[bytes, int, float | None]:
        """Train the plan's model from the checkpoint on local data: (update as safetensors, examples, loss)."""
        import torch
        from safetensors.numpy import load as load_numpy
        from safetensors.numpy import save as save_numpy

        from grid_runtime.compute import builder
        from grid_runtime.compute.training import TrainingSettings, train

        config = plan["client_config"]
        module = builder.build_module(plan["spec"], checkpoint)
        x = features if isinstance(features, torch.Tensor) else torch.as_tensor(features)
        y = labels if isinstance(labels, torch.Tensor) else torch.as_tensor(labels)
        settings = TrainingSettings(loss=config["loss"], optimizer=config["optimizer"], lr=float(config["lr"]),
                                    epochs=int(config["epochs"]), batch_size=int(config["batch_size"]))
        result = train(module, x, y, settings)
        before, after = load_numpy(checkpoint), load_numpy(result.weights)
        update = save_numpy({name: (after[name].astype("float32") - before[name].astype("float32"))
                             for name in before})
        loss = result.metrics[-1].loss if result.metrics else None
        return update, len(x), loss

    def run_cycle(self, features: Any, labels: Any) -> CycleReport | None:
        """One cycle: join, download, train, report. None when this client has reported in the current cycle
        already (wait for the next)."""
        joined = self.join()
        if joined["reported"]:
            return None
        checkpoint = self.checkpoint()
        if hashlib.sha256(checkpoint).hexdigest() != joined["plan"]["checkpoint_sha256"]:
            return None  # a new cycle opened between the join and the download: join it next time
        update, examples, loss = self.train(joined["plan"], checkpoint, features, labels)
        self.report(update, cycle=int(joined["cycle"]), examples=examples, loss=loss)
        return CycleReport(cycle=int(joined["cycle"]), examples=examples, loss=loss)

    def run(self, features: Any, labels: Any, *, poll_seconds: float = 0.2, max_cycles: int | None = None,
            timeout: float | None = None) -> list[CycleReport]:
        """Take part cycle after cycle until the process ends (or ``max_cycles`` reports, or ``timeout``)."""
        reports: list[CycleReport] = []
        deadline = None if timeout is None else time.monotonic() + timeout
        while max_cycles is None or len(reports) < max_cycles:
            if deadline is not None and time.monotonic() > deadline:
                break
            try:
                done = self.run_cycle(features, labels)
            except GridctlError as exc:
                reason = (exc.details or {}).get("reason") if isinstance(exc.details, dict) else None
                if reason == "process_ended":
                    break
                if reason not in ("cycle_full", "cycle_closed", "no_open_cycle"):
                    raise
                done = None
            if done is not None:
                reports.append(done)
            else:
                time.sleep(poll_seconds)
        return reports


def load_local_data(path: str | Path, *, labels: str | Path | None = None) -> tuple[Any, Any]:
    """Features and labels from a local file: a safetensors file with ``features`` and ``labels``, an ``.npz``
    with those arrays (pickles off), or an ``.npy``/``.csv`` of features with ``labels`` in a second file (or,
    for a CSV without one, the last column)."""
    import numpy as np

    source = Path(path)
    suffix = source.suffix.lower()
    if suffix == ".safetensors":
        from safetensors.numpy import load_file

        tensors = load_file(str(source))
        return tensors["features"], tensors["labels"]
    if suffix == ".npz":
        with np.load(source, allow_pickle=False) as archive:
            return archive["features"], archive["labels"]
    features = _load_array(source)
    if labels is not None:
        return features, _load_array(Path(labels))
    if suffix == ".csv" and features.ndim == 2 and features.shape[1] >= 2:
        return features[:, :-1], features[:, -1]
    raise GridctlError("invalid_input", f"{source}: give the labels as a second file (--labels)")


def _load_array(path: Path) -> Any:
    import numpy as np

    if path.suffix.lower() == ".npy":
        return np.load(path, allow_pickle=False)
    if path.suffix.lower() == ".csv":
        return np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float32)
    raise GridctlError("invalid_input", f"{path}: use .safetensors, .npz, .npy or .csv")
