"""``gridctl deploy``, ``gridctl status`` and ``gridctl destroy``: deployments made from this machine.

Each deployment is handled by a provider (``providers/``); the commands here only gather options, ask the
provider, save or remove the deployment's context and print the result. Providers are imported inside the
commands, so ``gridctl --help`` stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gridctl.cli import console
from gridctl.cli.common import OutputOption, YesOption, confirm, use_output
from gridctl.cli.console import Output
from gridctl.sdk.errors import GridctlError

if TYPE_CHECKING:
    from providers.base import DeployResult, Provider

deploy_app = typer.Typer(help="Deploy a Node: on this machine (local); clouds come with their extras.",
                         no_args_is_help=True)
destroy_app = typer.Typer(help="Stop a deployment, and with --purge delete its data.", no_args_is_help=True)

MIN_PASSWORD_LENGTH = 8  # the Node's rule (grid_runtime.core.security), checked here before starting anything


def _valid_name(name: str) -> str:
    from providers.base import validate_name

    try:
        return validate_name(name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _valid_password(password: str | None) -> str | None:
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise typer.BadParameter(f"must be at least {MIN_PASSWORD_LENGTH} characters")
    return password


def _valid_email(email: str) -> str:
    local, at, domain = email.strip().partition("@")
    if not (local and at and domain) or " " in email.strip():
        raise typer.BadParameter("not an email address (expected name@domain)")
    return email.strip()


NameOption = Annotated[str, typer.Option("--name", "-n", envvar="GRIDCTL_DEPLOYMENT", callback=_valid_name,
                                         help="Deployment name; also the name of its saved context.")]


def deployments_dir() -> Path:
    from gridctl.cli.contexts import home

    home().mkdir(parents=True, exist_ok=True, mode=0o700)  # it will hold tokens and Node secrets
    return home() / "deployments"


def _provider(name: str) -> Provider:
    from providers.base import get_provider

    return get_provider(name, deployments_dir())


# --- deploy ------------------------------------------------------------------------------------------

@deploy_app.command("local")
def deploy_local(
    service: Annotated[str, typer.Argument(
        metavar="[node|network]", show_default=False,
        help="What to run: a Node (the default) or a Network, beside other local deployments under other names "
             "and ports.")] = "node",
    name: NameOption = "local",
    port: Annotated[int | None, typer.Option(
        "--port", "-p", min=1, max=65535, envvar="GRIDCTL_LOCAL_PORT", show_default=False,
        help="Port on 127.0.0.1 (default: 8470 at first deploy, then the deployment's own).")] = None,
    owner_email: Annotated[str, typer.Option(
        "--owner-email", envvar="GRIDCTL_OWNER_EMAIL", callback=_valid_email,
        help="The Owner's email, at first deploy.")] = "owner@localhost",
    owner_password: Annotated[str | None, typer.Option(
        "--owner-password", envvar="GRIDCTL_OWNER_PASSWORD", callback=_valid_password, show_default=False,
        help="The Owner's password, at first deploy (default: generated and shown once).")] = None,
    workers: Annotated[int | None, typer.Option(
        "--workers", "-w", min=0, max=64, envvar="GRIDCTL_LOCAL_WORKERS", show_default=False,
        help="Ray Worker processes to run beside the Node, each a Ray node with 1 CPU (default: 0 at first "
             "deploy, then as many as the deployment has). Fewer than are running stops some: it asks first.")
    ] = None,
    yes: YesOption = False,
    output: OutputOption = None,
) -> None:
    """Start a Node on this machine in the background and save a context for it.

    The Node listens on 127.0.0.1. The first deploy waits until it is healthy, creates the Owner, shows a
    generated password once (unless --owner-password) and saves a context named after the deployment; a later
    deploy restarts a stopped Node, keeping the data, and leaves a running one as it is.

    With --workers K it also runs K Worker processes (each a Ray node with 1 CPU joining the Node's Ray head with
    the cluster's token), tracked by pid beside the Node and stopped before it. Running Workers are kept unless
    --workers asks for fewer: then it names the Workers it would stop and asks first.

    'gridctl deploy local network --name N' runs a Network instead (default port 8480; docs/network.md); local
    Nodes join it with 'gridctl network join URL'.
    """
    from providers.base import DeploymentSpec

    use_output(output)
    if service not in ("node", "network"):
        raise GridctlError("usage", f"deploy local runs a node or a network, not {service!r}")
    if service == "network":
        if workers:
            raise GridctlError("usage", "a Network has no Workers")
        spec = DeploymentSpec(name=name, port=port, owner_email=owner_email, owner_password=owner_password,
                              network=True)
        console.message(f"deploying the Network {name!r} on this machine...")
        result = _provider("local").deploy(spec)
        _report(result, _save_context(result), workers=0)
        return
    provider = _provider("local")
    running = _running_workers(provider, name)
    if workers is not None and workers < len(running):
        stopping = running[workers:]
        confirm(f"Deployment {name!r} runs {len(running)} Worker(s); --workers {workers} stops "
                f"{', '.join(stopping)} (a job running there is retried on another Worker or fails). Continue?",
                yes=yes)
    spec = DeploymentSpec(name=name, port=port, owner_email=owner_email, owner_password=owner_password,
                          workers=workers or 0)
    console.message(f"deploying {name!r} on this machine...")
    result = provider.deploy(spec)
    if workers == 0 and running:
        provider.scale_workers(name, 0)  # the provider reads 0 as "as many as before"
    after = len(_running_workers(provider, name))
    if workers is not None and after != len(running):
        console.message(f"Workers of {name!r}: {len(running)} -> {after}")
    context_note = _save_context(result)
    _report(result, context_note, workers=after)


def _running_workers(provider: Provider, name: str) -> list[str]:
    """The live Worker roles of a running local deployment, oldest first (none when it is not running)."""
    from providers.base import DeploymentRecord

    if not DeploymentRecord.path(provider.state_dir(name)).exists():
        return []
    found = provider.status(name)
    if not found.running:
        return []
    roles = [p["role"] for p in found.processes if p["role"].startswith("worker-") and p["alive"]]
    return sorted(roles, key=lambda role: int(role.split("-")[1]))


def _save_context(result: DeployResult) -> str:
    from gridctl.cli.contexts import Context, ContextFile

    saved = ContextFile.load()
    if result.api_token:
        saved.put(Context(name=result.name, url=result.url, token=result.api_token, email=result.owner_email,
                          deployment=result.provider,
                          ca_file=str(result.outputs.get("tls_root_certificate") or "")))
        return result.name
    context = saved.contexts.get(result.name)
    if context is None:
        console.message(f"no saved context named {result.name!r}: run 'gridctl login {result.url} "
                        f"--email {result.owner_email}'")
        return ""
    context.url = result.url  # the port may have changed on restart
    saved.put(context)
    return result.name


def _report(result: DeployResult, context: str, *, workers: int) -> None:
    summary: dict[str, Any] = {
        "name": result.name, "provider": result.provider, "state": result.state, "url": result.url,
        "context": context or None, "owner_email": result.owner_email, "pid": result.outputs.get("pid"),
        "workers": workers, "log": result.outputs.get("log"),
    }
    if console.output() is Output.json:
        if result.owner_password:
            summary["owner_password"] = result.owner_password
        console.emit(summary)
        return
    console.emit(summary, title=f"Deployment {result.name}")
    if result.owner_password:
        console.secret_notice([f"URL:            {result.url}", f"Owner email:    {result.owner_email}",
                               f"Owner password: {result.owner_password}"])
    elif result.state == "created":
        console.message(f"Owner {result.owner_email} created with the password you gave.")


# --- status ------------------------------------------------------------------------------------------

def status(
    name: Annotated[str | None, typer.Argument(help="One deployment; all of them if omitted.",
                                               show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Deployments made from this machine (running, healthy, pid) and the current context.

    JSON: {deployments: [{name, provider, url, running, healthy, pid, version, network_url, note}],
    current_context, env_override}; network_url is a cloud deployment's Network (--network).
    """
    import os

    from gridctl.cli.contexts import ContextFile
    from gridctl.sdk.errors import GridctlError
    from providers.base import DeploymentNotFound, known_deployments

    use_output(output)
    records = known_deployments(deployments_dir())
    if name is not None:
        records = [r for r in records if r.name == name]
        if not records:
            raise DeploymentNotFound(name)
    rows = []
    for record in records:
        row: dict[str, Any] = {"name": record.name, "provider": record.provider, "url": record.url,
                               "running": None, "healthy": None, "pid": None, "version": None,
                               "network_url": None, "note": None}
        try:
            found = _provider(record.provider).status(record.name)
        except GridctlError as exc:  # e.g. its provider's extra is not installed here
            row["note"] = exc.message
        else:
            node = next((p for p in found.processes if p["role"] == "node"), None)
            row.update(running=found.running, healthy=found.healthy, pid=node["pid"] if node else None,
                       version=found.version, network_url=found.outputs.get("network_url"))
        rows.append(row)

    saved = ContextFile.load()
    current = saved.contexts.get(saved.current or "")
    context = {"name": current.name, "url": current.url, "deployment": current.deployment or None} \
        if current else None
    if console.output() is Output.json:
        console.emit({"deployments": rows, "current_context": context,
                      "env_override": bool(os.environ.get("GRIDCTL_URL"))})
        return
    if rows:
        columns = ["name", "provider", "url", "running", "healthy", "pid"]
        if any(row["version"] for row in rows):  # the gridctl build a cloud deployment's machines run
            columns.append("version")
        if any(row["network_url"] for row in rows):  # a cloud deployment's Network machine (--network)
            columns.append("network_url")
        console.emit(rows, columns=columns, title="Deployments")
        for row in rows:
            if row["note"]:
                console.message(f"{row['name']}: {row['note']}")
    else:
        console.message("no deployments on this machine; run 'gridctl deploy local'")
    console.message(f"current context: {context['name']} ({context['url']})" if context
                    else "current context: none")
    if os.environ.get("GRIDCTL_URL"):
        console.message(f"GRIDCTL_URL is set: commands talk to {os.environ['GRIDCTL_URL']}")


# --- destroy -----------------------------------------------------------------------------------------

@destroy_app.command("local")
def destroy_local(
    name: NameOption = "local",
    purge: Annotated[bool, typer.Option("--purge", help="Also delete the data, logs and the saved context.")
                     ] = False,
    yes: YesOption = False,
    output: OutputOption = None,
) -> None:
    """Stop a local deployment's processes (SIGTERM, then SIGKILL); its data is kept unless --purge.

    --purge also deletes its data, logs and saved context. It asks first whenever something is running or
    --purge is given (without a terminal to ask on, it needs --yes). A later 'gridctl deploy local' restarts a
    stopped deployment with its data.
    """
    from gridctl.cli.contexts import ContextFile

    use_output(output)
    provider = _provider("local")
    provider.record(name)  # an unknown name fails before anything is asked
    running = [str(p["pid"]) for p in provider.status(name).processes if p["alive"]]
    if purge:
        confirm(f"Stop deployment {name!r} and delete all its data and its context?", yes=yes)
    elif running:
        confirm(f"Stop deployment {name!r} ({len(running)} process(es); its data is kept)?", yes=yes)
    provider.destroy(name, purge=purge)

    context_removed = False
    if purge:
        saved = ContextFile.load()
        context = saved.contexts.get(name)
        if context is not None and context.deployment == provider.name:
            saved.remove(name)
            context_removed = True
    summary = {"name": name, "stopped_pids": [int(pid) for pid in running], "purged": purge,
               "context_removed": context_removed}
    if console.output() is Output.json:
        console.emit(summary)
        return
    console.message(f"stopped {name!r} (pid {', '.join(running)})" if running else f"{name!r} was not running")
    if purge:
        console.message(f"deleted its data{' and its context' if context_removed else ''}")


def register(root: typer.Typer) -> None:
    root.add_typer(deploy_app, name="deploy")
    root.command("status")(status)
    root.add_typer(destroy_app, name="destroy")
