"""``gridctl fl``: model-centric federated learning (docs/fl.md).

Hosting (``upload_data`` on the selected Node): ``processes list|show|create|stop``, ``checkpoints
list|download`` and ``tokens create|list|revoke`` (client tokens, one process each). Taking part:
``gridctl fl client --process NAME --data FILE`` trains on a local file with a client token and sends only the
updates; torch is imported only then.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from gridctl.cli import common, console
from gridctl.cli.common import OutputOption, YesOption
from gridctl.sdk.errors import GridctlError, NotConfigured

app = typer.Typer(help="Federated learning: host processes that clients train on their own data, and be a client.",
                  no_args_is_help=True)
processes_app = typer.Typer(help="Processes this Node hosts (needs upload_data).", no_args_is_help=True)
checkpoints_app = typer.Typer(help="A process's checkpoints: the parameters after each cycle.", no_args_is_help=True)
tokens_app = typer.Typer(help="Client tokens of a process you host: one per client, for that process only.",
                         no_args_is_help=True)
app.add_typer(processes_app, name="processes")
app.add_typer(checkpoints_app, name="checkpoints")
app.add_typer(tokens_app, name="tokens")

ProcessArgument = Annotated[str, typer.Argument(help="The process's name or id.", show_default=False)]
PROCESS_COLUMNS = ["id", "name", "state", "cycles_done", "parameter_count", "epsilon", "delta", "created_at"]
CYCLE_COLUMNS = ["number", "state", "joined", "reports", "examples", "mean_loss", "seconds", "aggregated_on",
                 "opened_at"]
CHECKPOINT_COLUMNS = ["number", "sha256", "size", "created_at"]
TOKEN_COLUMNS = ["id", "name", "created_at", "revoked_at"]


@processes_app.command("list")
def list_processes(output: OutputOption = None) -> None:
    """Every process this Node hosts, with its state, cycles done and ε."""
    console.emit(common.connect(output).fl.list(), columns=PROCESS_COLUMNS)


@processes_app.command("show")
def show_process(process: ProcessArgument, output: OutputOption = None) -> None:
    """A process and its cycles: clients joined, reports, examples, mean reported loss, time."""
    detail = common.connect(output).fl.show(process)
    if console.output() is console.Output.json:
        console.emit(detail)
        return
    console.emit({k: v for k, v in detail.items() if k not in ("cycles", "spec")}, columns=PROCESS_COLUMNS)
    console.emit(detail["cycles"], columns=CYCLE_COLUMNS, title="cycles")


@processes_app.command("create")
def create_process(
    name: Annotated[str, typer.Argument(help="A name for the process.", show_default=False)],
    spec: Annotated[Path, typer.Option(help="The model spec, a JSON file (gridctl.model-spec/1).", exists=True,
                                       dir_okay=False, show_default=False)],
    weights: Annotated[Path | None, typer.Option(help="Initial parameters, a safetensors file (fresh ones "
                                                 "without).", exists=True, dir_okay=False, show_default=False)] = None,
    loss: Annotated[str, typer.Option(help="The clients' loss.")] = "cross_entropy",
    optimizer: Annotated[str, typer.Option(help="The clients' optimizer: sgd or adam.")] = "sgd",
    lr: Annotated[float, typer.Option(help="The clients' learning rate.")] = 0.1,
    batch_size: Annotated[int, typer.Option(help="The clients' batch size.")] = 32,
    epochs: Annotated[int, typer.Option(help="Local epochs per cycle.")] = 1,
    clients_per_cycle: Annotated[int, typer.Option(help="Clients admitted to a cycle.")] = 10,
    min_reports: Annotated[int, typer.Option(help="Reports that close a cycle at once.")] = 1,
    cycle_seconds: Annotated[float, typer.Option(help="How long a cycle stays open.")] = 600.0,
    cycles: Annotated[int, typer.Option(help="Cycles to run.")] = 10,
    noise_multiplier: Annotated[float | None, typer.Option(help="Central DP: σ of the Gaussian noise on the sum, "
                                                           "in units of --clip-norm.", show_default=False)] = None,
    clip_norm: Annotated[float, typer.Option(help="Central DP: each client's update is clipped to this L2 "
                                             "norm.")] = 1.0,
    output: OutputOption = None,
) -> None:
    """Host a process (needs upload_data): the plan, the clients' training settings and the cycles."""
    try:
        model = json.loads(spec.read_text())
    except ValueError as exc:
        raise GridctlError("invalid_input", f"{spec}: not JSON ({exc})") from None
    server: dict[str, Any] = {"clients_per_cycle": clients_per_cycle, "min_reports": min_reports,
                              "cycle_seconds": cycle_seconds, "cycles": cycles}
    if noise_multiplier is not None:
        server["dp"] = {"noise_multiplier": noise_multiplier, "clip_norm": clip_norm}
    created = common.connect(output).fl.create(
        name, model, initial_weights=weights.read_bytes() if weights else None, server=server,
        client={"loss": loss, "optimizer": optimizer, "lr": lr, "batch_size": batch_size, "epochs": epochs})
    console.emit(created, columns=PROCESS_COLUMNS)


@processes_app.command("stop")
def stop_process(process: ProcessArgument, yes: YesOption = False, output: OutputOption = None) -> None:
    """Stop a process you host: its open cycle is cancelled and clients are refused."""
    node = common.connect(output)
    common.confirm(f"Stop process {process}?", yes=yes)
    console.emit(node.fl.stop(process), columns=PROCESS_COLUMNS)


@checkpoints_app.command("list")
def list_checkpoints(process: ProcessArgument, output: OutputOption = None) -> None:
    """A process's checkpoints: 0 is the initial parameters, n those after cycle n."""
    console.emit(common.connect(output).fl.checkpoints(process), columns=CHECKPOINT_COLUMNS)


@checkpoints_app.command("download")
def download_checkpoint(
    process: ProcessArgument,
    dest: Annotated[Path, typer.Argument(help="Where to write the safetensors file.", show_default=False)],
    number: Annotated[int | None, typer.Option(help="The checkpoint (default: the latest).",
                                               show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Download a checkpoint of a process you host, checked against its sha256."""
    path = common.connect(output).fl.download_checkpoint(process, dest, number=number)
    console.message(f"wrote {path}")


@tokens_app.command("create")
def create_token(
    process: ProcessArgument,
    name: Annotated[str, typer.Argument(help="A label for the client, such as its site.", show_default=False)],
    output: OutputOption = None,
) -> None:
    """Issue a client token for a process you host (shown once)."""
    created = common.connect(output).fl.issue_token(process, name)
    if console.output() is console.Output.json:
        console.emit(created)
        return
    console.emit({k: v for k, v in created.items() if k != "token"}, columns=TOKEN_COLUMNS)
    console.secret_notice([f"client token: {created['token']}",
                           "give it to the client: gridctl fl client --process NAME --data FILE (GRIDCTL_FL_TOKEN)"])


@tokens_app.command("list")
def list_tokens(process: ProcessArgument, output: OutputOption = None) -> None:
    """The client tokens of a process you host (never their secrets)."""
    console.emit(common.connect(output).fl.tokens(process), columns=TOKEN_COLUMNS)


@tokens_app.command("revoke")
def revoke_token(
    process: ProcessArgument,
    token_id: Annotated[int, typer.Argument(min=1, help="The client token's id.", show_default=False)],
    output: OutputOption = None,
) -> None:
    """Revoke a client token: the client is refused from now on."""
    console.emit(common.connect(output).fl.revoke_token(process, token_id), columns=TOKEN_COLUMNS)


@app.command("client")
def client(
    process: Annotated[str, typer.Option(help="The process to train (the token must be one of its).",
                                         show_default=False)],
    data: Annotated[Path, typer.Option(help="Local data: .safetensors or .npz with features and labels, or "
                                       ".npy/.csv features (labels: --labels, or a CSV's last column).",
                                       exists=True, dir_okay=False, show_default=False)],
    token: Annotated[str, typer.Option(envvar="GRIDCTL_FL_TOKEN", help="The client token the process's host "
                                       "issued.", show_default=False)],
    labels: Annotated[Path | None, typer.Option(help="Labels in a file of their own (.npy or .csv).", exists=True,
                                                dir_okay=False, show_default=False)] = None,
    url: Annotated[str | None, typer.Option(envvar="GRIDCTL_URL", help="The Node's URL (default: the current "
                                            "context's).", show_default=False)] = None,
    max_cycles: Annotated[int | None, typer.Option(min=1, help="Stop after this many reports (default: until "
                                                   "the process ends).", show_default=False)] = None,
    timeout: Annotated[float | None, typer.Option(help="Stop after this many seconds.", show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Take part in a process: join each cycle, train on local data, send only the update."""
    from gridctl.sdk.fl import Client, load_local_data

    common.use_output(output)
    if url is None:
        from gridctl.cli.contexts import ContextFile

        saved = ContextFile.load()
        context = saved.contexts.get(saved.current or "")
        if context is None:
            raise NotConfigured("no Node selected: pass --url (or GRIDCTL_URL)")
        url = context.url
    features, targets = load_local_data(data, labels=labels)
    with Client(url, token=token) as fl_client:
        plan = fl_client.plan()  # checked before joining: a wrong name takes no place in a cycle
        if plan["process"] != process:
            raise GridctlError("invalid_input", f"this token is for process {plan['process']!r}, not {process!r}")
        reports = fl_client.run(features, targets, max_cycles=max_cycles, timeout=timeout)
    console.emit([{"cycle": r.cycle, "examples": r.examples, "loss": r.loss} for r in reports],
                 columns=["cycle", "examples", "loss"])
