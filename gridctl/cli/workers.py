"""``gridctl workers list|add|remove``: the Ray Workers that run jobs. ``list`` asks the Node; ``add`` and
``remove`` start and stop Worker processes of a local deployment on this machine. They join the ``workers``
group that ``gridctl/cli/clouds.py`` defines for ``gridctl workers scale`` (cloud and local Worker pools)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gridctl.cli import common, console
from gridctl.cli.clouds import workers_app
from gridctl.cli.common import OutputOption, use_output

app = workers_app  # one ``gridctl workers`` group: ``scale`` (clouds.py) and the commands below

COLUMNS = ["node_id", "alive", "address", "cpus", "cpus_in_use", "load", "memory_gb"]
NameOption = Annotated[str, typer.Option("--name", "-n", envvar="GRIDCTL_DEPLOYMENT",
                                         help="The local deployment whose Workers to change.")]


def _rows(workers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**w, "node_id": w["node_id"][:12], "load": f"{w['load']:.0%}",
             "memory_gb": round(w["memory_bytes"] / 1024**3, 1)} for w in workers]


@app.command("list")
def list_workers(output: OutputOption = None) -> None:
    """The Workers attached to the Node, with their resources and load (needs view_statistics).

    JSON: the list of Workers (empty when the Node runs without them).
    """
    found = common.connect(output).jobs.workers()
    if console.output() is console.Output.json:
        console.emit(found["workers"])
        return
    if not found["enabled"]:
        console.message("this Node runs without Workers (GRID_NODE_RAY_ENABLED=false)")
        return
    console.emit(_rows(found["workers"]), columns=COLUMNS, title=f"Workers of the Ray head {found['head_address']}")
    console.message(f"{found['jobs_running']} job(s) running")


def _local() -> Any:
    from gridctl.cli.deploy import _provider

    return _provider("local")


def _report(provider: Any, name: str) -> None:
    rows = [{"role": role, "pid": p.pid, "log": p.log} for role, p in provider.workers(name).items()]
    console.emit(rows, columns=["role", "pid", "log"], title=f"Local Workers of {name}")


@app.command("add")
def add(
    count: Annotated[int, typer.Argument(min=1, max=64, help="How many Workers to start.")] = 1,
    cpus: Annotated[float, typer.Option("--cpus", min=0.5, help="CPUs each new Worker offers to jobs.")] = 1.0,
    name: NameOption = "local",
    output: OutputOption = None,
) -> None:
    """Start Worker processes for a local deployment; each joins the Node's Ray head with its token.

    Each new Worker is waited for until its Ray node joined. Workers use the token in the Node's
    secrets/ray-token (mode 0600).
    """
    use_output(output)
    provider = _local()
    current = len(provider.workers(name))
    console.message(f"starting {count} Worker(s) for {name!r}...")
    provider.scale_workers(name, current + count, cpus=cpus)
    _report(provider, name)


@app.command("remove")
def remove(
    worker: Annotated[str | None, typer.Argument(help="A Worker's role (worker-2) or pid (default: the newest).",
                                                 show_default=False)] = None,
    name: NameOption = "local",
    output: OutputOption = None,
) -> None:
    """Stop a Worker of a local deployment (its running job, if any, is retried on another or fails).

    The newest Worker when none is named.
    """
    use_output(output)
    provider = _local()
    if worker is None:
        current = len(provider.workers(name))
        if current == 0:
            console.message(f"{name!r} has no Workers")
            return
        provider.scale_workers(name, current - 1)
    else:
        provider.remove_worker(name, worker)
    _report(provider, name)


def register(root: typer.Typer) -> None:
    """The commands above joined ``workers_app`` when this module was imported; clouds.py adds the group."""
