"""Cloud deployments: ``gridctl check``, ``gridctl deploy aws|gcp|azure``, ``gridctl destroy aws|gcp|azure`` and
``gridctl workers scale``.

The deploy and destroy commands join H3's ``deploy`` and ``destroy`` groups (gridctl/cli/deploy.py), so every
target is ``gridctl deploy TARGET``; ``gridctl status`` already covers every provider. ``workers_app`` is the
one ``gridctl workers`` group: ``scale`` is here, gridctl/cli/workers.py adds ``list``, ``add`` and ``remove``.

Each cloud is an optional extra: nothing here imports Pulumi or a cloud SDK until a command runs, and a cloud
whose extra is missing says so (``gridctl check``, or the command's error) instead of breaking ``gridctl --help``.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gridctl.cli import console
from gridctl.cli.common import OutputOption, YesOption, confirm, use_output
from gridctl.cli.console import Output
from gridctl.cli.deploy import (
    _save_context,
    _valid_email,
    _valid_name,
    _valid_password,
    deploy_app,
    deployments_dir,
    destroy_app,
)

if TYPE_CHECKING:
    from providers.base import DeployResult, PlannedChange
    from providers.cloud_provider import CloudProvider
    from providers.stack import DeclaredResource, ProgressEvent

CLOUDS = ("aws", "gcp", "azure")
workers_app = typer.Typer(help="The Workers of a deployment.", no_args_is_help=True)


class Database(StrEnum):
    sqlite = "sqlite"
    managed = "managed"


def _read_public_key(path: Path | None) -> Path | None:
    if path is None:
        return None
    try:
        text = path.expanduser().read_text().strip()
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from None
    if "PRIVATE KEY" in text:
        raise typer.BadParameter("that is a private key: give the public one (the .pub file)")
    if not text.startswith(("ssh-", "ecdsa-", "sk-")) or len(text.split()) < 2:
        raise typer.BadParameter("not an OpenSSH public key (expected 'ssh-ed25519 AAAA...')")
    return path


def _valid_cidrs(values: list[str] | None) -> list[str] | None:
    import ipaddress

    if values is None:
        return None
    cidrs = [v.strip() for value in values for v in value.split(",") if v.strip()]
    for cidr in cidrs:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise typer.BadParameter(f"{cidr!r} is not an address or CIDR (e.g. 203.0.113.7/32)") from None
    return cidrs


# --- options shared by the three clouds -------------------------------------------------------------------

NameOption = Annotated[str, typer.Option(
    "--name", "-n", envvar="GRIDCTL_DEPLOYMENT", callback=_valid_name, show_default=False,
    help="Deployment name: its stack, resource names and saved context.")]
RegionOption = Annotated[str | None, typer.Option(
    "--region", "-r", show_default=False,
    help="Region (default: the cloud's default at first deploy, then the deployment's own).")]
WorkersOption = Annotated[int | None, typer.Option(
    "--workers", "-w", min=0, show_default=False,
    help="Number of Workers (default: 0 at first deploy, then the deployment's own).")]
InstanceTypeOption = Annotated[str | None, typer.Option(
    "--instance-type", show_default=False, help="The Node's machine type (default: the cloud's, see docs).")]
WorkerInstanceTypeOption = Annotated[str | None, typer.Option(
    "--worker-instance-type", show_default=False, help="The Workers' machine type (default: the cloud's).")]
DatabaseOption = Annotated[Database | None, typer.Option(
    "--database", show_default=False,
    help="sqlite on the Node's encrypted disk, or the cloud's managed PostgreSQL (default: sqlite).")]
NetworkOption = Annotated[bool | None, typer.Option(
    "--network/--no-network", show_default=False,
    help="Also deploy a Network service (default: no); the Node joins it, approved by the Network's Owner.")]
AllowCidrOption = Annotated[list[str] | None, typer.Option(
    "--allow-cidr", callback=_valid_cidrs, show_default=False,
    help="Addresses allowed to reach the API on 443; repeat or comma-separate "
         "(default: this machine's public address).")]
SshCidrOption = Annotated[list[str] | None, typer.Option(
    "--ssh-cidr", callback=_valid_cidrs, show_default=False,
    help="Open SSH (22) to these addresses; needs --ssh-key (default: no SSH at all).")]
SshKeyOption = Annotated[Path | None, typer.Option(
    "--ssh-key", callback=_read_public_key, show_default=False, help="An OpenSSH public key file for SSH.")]
DomainOption = Annotated[str | None, typer.Option(
    "--domain", show_default=False,
    help="Serve the API as this name with a public certificate (point its DNS at the Node) "
         "(default: the Node's address, with its own CA, pinned).")]
BackendOption = Annotated[str | None, typer.Option(
    "--backend-url", envvar="GRIDCTL_PULUMI_BACKEND", show_default=False,
    help="Where Pulumi keeps the stack's state (s3://, gs://, azblob://, https://api.pulumi.com): a bucket "
         "survives a lost laptop (default: a file backend in the deployment's state directory).")]
SecretsProviderOption = Annotated[str | None, typer.Option(
    "--secrets-provider", envvar="GRIDCTL_PULUMI_SECRETS_PROVIDER", show_default=False,
    help="The KMS key that encrypts the stack's secrets (awskms://, gcpkms://, azurekeyvault://) "
         "(default: a passphrase kept in the deployment's state directory).")]
ReplaceNodeOption = Annotated[bool, typer.Option(
    "--replace-node", help="Allow replacing the Node's machine when what it boots changed (a new gridctl build, "
                           "--domain, --database...); the data on its disk is lost.")]
OwnerEmailOption = Annotated[str | None, typer.Option(
    "--owner-email", envvar="GRIDCTL_OWNER_EMAIL", show_default=False,
    help="The Owner's email, at first deploy (default: owner@localhost).")]
OwnerPasswordOption = Annotated[str | None, typer.Option(
    "--owner-password", envvar="GRIDCTL_OWNER_PASSWORD", callback=_valid_password, show_default=False,
    help="The Owner's password, at first deploy (default: generated and shown once).")]
PreviewOption = Annotated[bool, typer.Option(
    "--preview", help="Show what would change in the cloud (Pulumi preview; needs credentials); change nothing.")]
PlanOption = Annotated[bool, typer.Option(
    "--plan", help="Print the resources the deployment declares, offline: no credentials, no Pulumi CLI.")]
RehearseOption = Annotated[bool, typer.Option(
    "--rehearse", help="Bring the machines this deploy would boot up on this machine instead (root, Linux): the Node "
                       "and two Workers (with --network the Network machine too) in network namespaces, the cloud "
                       "played by an emulator; nothing is created in the cloud. See docs/clouds/machines.md.")]
ProjectOption = Annotated[str | None, typer.Option(
    "--project", show_default=False,
    help="The GCP project (default: GOOGLE_CLOUD_PROJECT, or gcloud's configured project).")]


def _provider(cloud: str) -> CloudProvider:
    from providers.base import get_provider
    from providers.cloud_provider import CloudProvider

    provider = get_provider(cloud, deployments_dir())
    assert isinstance(provider, CloudProvider)
    provider.on_progress = _show_progress
    return provider


def _show_progress(event: ProgressEvent) -> None:
    """Pulumi's progress on stderr, one line per resource step; stdout stays for the result."""
    if event.kind == "step":
        console.line("  ", (event.action or "", "cyan"), " ", event.resource_type or "", " ", event.resource_name or "")
    elif event.kind == "failed":
        console.line("  ", ("failed", "bold red"), " ", event.message)
    elif event.kind == "diagnostic":
        console.styled(event.message, {"error": "bold red", "warning": "yellow"}.get(event.severity or "", ""))
    elif event.kind == "summary":
        console.styled(event.message, "bold")


# --- gridctl check ---------------------------------------------------------------------------------------

def check(
    targets: Annotated[list[str] | None, typer.Argument(
        help="The targets to check (local, aws, gcp, azure; default: every one).", show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Which targets this machine can deploy to now (extra installed, Pulumi CLI, credentials), and why not.

    A row per target (local, aws, gcp, azure): ready or not, and why not: the cloud's extra not installed
    (pip install 'gridctl[aws]'), the Pulumi CLI missing, or no credentials found in the environment or the usual
    files (~/.aws/, gcloud's application-default credentials, ~/.azure/). It changes nothing; it exits 0 when
    every target checked is ready, 1 otherwise.
    """
    from gridctl.cli import exit_codes
    from gridctl.sdk.errors import GridctlError
    from providers.base import available_providers, provider_names

    use_output(output)
    known = provider_names()
    unknown = [target for target in targets or () if target not in known]
    if unknown:
        raise GridctlError("usage", f"unknown target {unknown[0]!r}; known: {', '.join(known)}")
    available = available_providers()
    rows = []
    for name in targets or known:
        provider_class = available.get(name)
        if provider_class is None:
            reason: str | None = f"the '{name}' extra is not installed: pip install 'gridctl[{name}]'"
        else:
            reason = provider_class(deployments_dir()).check_credentials()
        rows.append({"provider": name, "ready": reason is None, "reason": reason})
    console.emit(rows, columns=["provider", "ready", "reason"], title="Deployment targets")
    if not all(row["ready"] for row in rows):
        raise typer.Exit(exit_codes.ERROR)


# --- gridctl deploy aws|gcp|azure ------------------------------------------------------------------------

def _deploy(cloud: str, name: str, given: dict[str, Any], *, preview: bool, plan: bool, yes: bool,
            output: Output | None, rehearse: bool = False) -> None:
    from providers import cloud_provider
    from providers.cloud_provider import PLACEHOLDER_CIDR, operator_cidr

    use_output(output)
    if rehearse:  # no cloud, no credentials: the machines on this machine (providers/rehearsal.py)
        from providers.rehearsal import run_rehearsal

        console.emit(run_rehearsal(cloud, name, say=console.message, network=bool(given.get("network"))),
                     title=f"Rehearsal of {name} on {cloud}")
        return
    given["replace_node"] = given.get("replace_node") or None
    if given.get("ssh_public_key") is not None:
        given["ssh_public_key"] = Path(given["ssh_public_key"]).expanduser().read_text().strip()
    if given.get("database") is not None:
        given["database"] = str(given["database"])
    provider = _provider(cloud)
    spec = provider.spec_for(name, **given)
    if plan:
        resources = provider.plan(spec)
        _report_plan(resources)
        if PLACEHOLDER_CIDR in spec.allow_cidr and not given.get("allow_cidr"):
            console.message(f"API ingress is shown for {PLACEHOLDER_CIDR}, a stand-in for your address (a plan "
                            "stays offline); pass --allow-cidr to see your own")
        return
    # Said before anything calls out (to learn this machine's address): without Pulumi nothing can go on.
    cloud_provider.require_pulumi()
    if not spec.allow_cidr:
        spec.allow_cidr = [operator_cidr()]
        console.message(f"the API will accept {spec.allow_cidr[0]} (this machine's public address) only; "
                        "widen it with --allow-cidr")
    if preview:
        _report_changes(provider.preview(spec), title=f"Preview of {name} on {cloud}")
        return
    problem = provider.credential_problem()
    if problem:
        console.message(f"warning: {problem}; trying anyway (Pulumi may find other credentials)")
    if not yes:
        _report_changes(provider.preview(spec), title=f"Changes to {name} on {cloud}")
        confirm(f"Apply these changes to {cloud}? Cloud resources cost money until 'gridctl destroy {cloud} "
                f"--name {name}'.", yes=yes)
    console.message(f"deploying {name!r} to {cloud} ({spec.region})...")
    result = provider.deploy(spec)
    context = _save_context(result)
    network_context = _save_network_context(result)
    if result.outputs.get("network_url"):
        result.outputs["network_association"] = _associate_network(provider, result, context, network_context)
    _report_deploy(result, context, workers=spec.workers, region=spec.region, network_context=network_context)


def _associate_network(provider: Any, result: DeployResult, context: str, network_context: str) -> str:
    """With --network: the Node joins its Network and the Network's Owner approves it (the provider does both
    calls), with the tokens of the two contexts deploy saved, so no other command is needed. Never raises."""
    from gridctl.cli.contexts import ContextFile

    saved = ContextFile.load().contexts
    node, network = saved.get(context), saved.get(network_context)
    if node is None or network is None:
        missing = "the Node's" if node is None else "the Network's"
        return (f"the Node is not associated with the Network yet: {missing} context is missing; run the same "
                "deploy again once both Owners are set up")
    message: str = provider.associate_network(result.name, node_token=node.token, network_token=network.token)
    return message


def _save_network_context(result: DeployResult) -> str:
    """With --network, a context named '<name>-network' for the Network's Owner (not made current: the Node's
    context stays current), pinning the Network's own root certificate."""
    from gridctl.cli.contexts import Context, ContextFile

    url = result.outputs.get("network_url")
    name = f"{result.name}-network"
    saved = ContextFile.load()
    if url and result.network_api_token:
        saved.put(Context(name=name, url=str(url), token=result.network_api_token, email=result.owner_email,
                          deployment=result.provider,
                          ca_file=str(result.outputs.get("network_tls_root_certificate") or "")),
                  make_current=False)
        return name
    return name if url and name in saved.contexts else ""


def _plain(value: Any) -> Any:
    """A plan's inputs as JSON: a Pulumi file asset (the build the machines install) as the file it names."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    path = getattr(value, "path", None)
    if path is not None and not isinstance(value, str | int | float | bool):
        return {"file": str(path)}
    return value


def _report_plan(resources: list[DeclaredResource]) -> None:
    """The cloud resources the program declares (components only group them): the same list, and count, in
    the table and in ``-o json``."""
    declared = [r for r in resources if r.custom]
    if console.output() is Output.json:
        console.emit([{"component": r.parent, "type": r.type, "name": r.name, "inputs": _plain(r.inputs)}
                      for r in declared])
        return
    rows = [{"component": r.parent or "-", "type": r.type, "name": r.name} for r in declared]
    console.emit(rows, columns=["component", "type", "name"], title="Resources the deployment declares")
    console.message(f"{len(rows)} resources in {len({r.parent for r in declared})} components; "
                    "'--plan -o json' lists the same with their inputs (secrets as [secret])")


def _report_changes(changes: list[PlannedChange], *, title: str) -> None:
    rows = [{"action": c.action, "type": c.kind, "name": c.name} for c in changes]
    if console.output() is Output.json:
        console.emit(rows)
        return
    if rows:
        console.emit(rows, columns=["action", "type", "name"], title=title)
    else:
        console.message("no changes")


def _report_deploy(result: DeployResult, context: str, *, workers: int, region: str | None,
                   network_context: str = "") -> None:
    tls_root = result.outputs.get("tls_root_certificate")
    network_url = result.outputs.get("network_url")
    summary: dict[str, Any] = {
        "name": result.name, "provider": result.provider, "state": result.state, "url": result.url,
        "context": context or None, "owner_email": result.owner_email, "region": region, "workers": workers,
        "bucket": result.outputs.get("bucket"), "tls_root_certificate": tls_root,
    }
    if network_url:
        summary.update(network_url=network_url, network_context=network_context or None,
                       network_tls_root_certificate=result.outputs.get("network_tls_root_certificate"),
                       network_setup=result.outputs.get("network_setup"),
                       network_association=result.outputs.get("network_association"))
    if console.output() is Output.json:
        if result.owner_password:
            summary["owner_password"] = result.owner_password
        if result.network_owner_password:
            summary["network_owner_password"] = result.network_owner_password
        console.emit(summary)
    else:
        console.emit(summary, title=f"Deployment {result.name}")
    if result.owner_password:
        console.secret_notice([f"URL:            {result.url}", f"Owner email:    {result.owner_email}",
                               f"Owner password: {result.owner_password}"])
    if result.network_owner_password:
        console.secret_notice([f"Network URL:            {network_url}",
                               f"Network Owner email:    {result.owner_email}",
                               f"Network Owner password: {result.network_owner_password}"])
    if tls_root:
        console.message(f"The Node's certificate is signed by its own CA, pinned from {tls_root} (the context "
                        f"pins it; in the SDK, connect(..., ca_file={str(tls_root)!r})).")
    if network_url and console.output() is not Output.json:
        if result.outputs.get("network_setup"):
            console.message(str(result.outputs["network_setup"]))
        if result.outputs.get("network_association"):
            console.message(str(result.outputs["network_association"]))
        console.message(
            f"The Network is at {network_url} (context {network_context or '(none yet)'}, its own CA). Other "
            f"Nodes join it with 'gridctl network join {network_url}' run against that Node; the Network's Owner "
            f"approves with 'gridctl network associations list|approve ID --network {network_context or 'CONTEXT'}' "
            "or invites with 'gridctl network invite'. docs/network.md says what a joining Node needs.")


@deploy_app.command("aws")
def deploy_aws(
    name: NameOption, region: RegionOption = None, workers: WorkersOption = None,
    instance_type: InstanceTypeOption = None, worker_instance_type: WorkerInstanceTypeOption = None,
    database: DatabaseOption = None, network: NetworkOption = None, allow_cidr: AllowCidrOption = None,
    ssh_cidr: SshCidrOption = None, ssh_key: SshKeyOption = None, domain: DomainOption = None,
    backend_url: BackendOption = None, secrets_provider: SecretsProviderOption = None,
    replace_node: ReplaceNodeOption = False, owner_email: OwnerEmailOption = None,
    owner_password: OwnerPasswordOption = None, preview: PreviewOption = False, plan: PlanOption = False,
    yes: YesOption = False, output: OutputOption = None, rehearse: RehearseOption = False,
) -> None:
    """Deploy a Node, its Workers and optionally a Network to AWS through Pulumi, and save a context.

    Without --yes it shows Pulumi's preview and asks before changing anything. The API accepts HTTPS (443) from
    --allow-cidr only, by default this machine's public address; there is no SSH unless --ssh-cidr and --ssh-key
    are both given. After the update it waits for the Node (its machine installs its software at first boot:
    minutes), pins the Node's TLS root certificate (with --domain a public certificate is used instead), creates
    the Owner, shows a generated password once and saves a context named after the deployment.

    Running it again on an existing deployment applies the options given and keeps the rest; the region, project
    and backend cannot change. --preview shows Pulumi's preview (needs the Pulumi CLI and credentials); --plan lists
    the resources the deployment declares, offline (-o json adds their inputs, secrets shown as [secret]).
    --network adds the Network machine (docs/network.md): its URL, Owner and context '<name>-network' are set up
    the same way, each machine's 443 accepts the other's address, and the Node joins the Network, approved by its
    Owner. See docs/clouds/aws.md.
    """
    _deploy("aws", name, dict(
        region=region, workers=workers, instance_type=instance_type, worker_instance_type=worker_instance_type,
        database=database, network=network, allow_cidr=allow_cidr, ssh_cidr=ssh_cidr, ssh_public_key=ssh_key,
        domain=domain, backend_url=backend_url, secrets_provider=secrets_provider, replace_node=replace_node,
        owner_email=_email(owner_email), owner_password=owner_password,
    ), preview=preview, plan=plan, yes=yes, output=output, rehearse=rehearse)


@deploy_app.command("gcp")
def deploy_gcp(
    name: NameOption, region: RegionOption = None, workers: WorkersOption = None, project: ProjectOption = None,
    instance_type: InstanceTypeOption = None, worker_instance_type: WorkerInstanceTypeOption = None,
    database: DatabaseOption = None, network: NetworkOption = None, allow_cidr: AllowCidrOption = None,
    ssh_cidr: SshCidrOption = None, ssh_key: SshKeyOption = None, domain: DomainOption = None,
    backend_url: BackendOption = None, secrets_provider: SecretsProviderOption = None,
    replace_node: ReplaceNodeOption = False, owner_email: OwnerEmailOption = None,
    owner_password: OwnerPasswordOption = None, preview: PreviewOption = False, plan: PlanOption = False,
    yes: YesOption = False, output: OutputOption = None, rehearse: RehearseOption = False,
) -> None:
    """Deploy a Node, its Workers and optionally a Network to GCP through Pulumi, and save a context.

    The same options and behaviour as 'gridctl deploy aws', on GCP. The project comes from --project, else
    GOOGLE_CLOUD_PROJECT (or GOOGLE_PROJECT, CLOUDSDK_CORE_PROJECT), else gcloud's configured project.
    Running it again on an existing deployment applies the options given and keeps the rest.
    See docs/clouds/gcp.md.
    """
    _deploy("gcp", name, dict(
        region=region, workers=workers, project=project, instance_type=instance_type,
        worker_instance_type=worker_instance_type, database=database, network=network, allow_cidr=allow_cidr,
        ssh_cidr=ssh_cidr, ssh_public_key=ssh_key, domain=domain, backend_url=backend_url,
        secrets_provider=secrets_provider, replace_node=replace_node,
        owner_email=_email(owner_email), owner_password=owner_password,
    ), preview=preview, plan=plan, yes=yes, output=output, rehearse=rehearse)


@deploy_app.command("azure")
def deploy_azure(
    name: NameOption, region: RegionOption = None, workers: WorkersOption = None,
    instance_type: InstanceTypeOption = None, worker_instance_type: WorkerInstanceTypeOption = None,
    database: DatabaseOption = None, network: NetworkOption = None, allow_cidr: AllowCidrOption = None,
    ssh_cidr: SshCidrOption = None, ssh_key: SshKeyOption = None, domain: DomainOption = None,
    backend_url: BackendOption = None, secrets_provider: SecretsProviderOption = None,
    replace_node: ReplaceNodeOption = False, owner_email: OwnerEmailOption = None,
    owner_password: OwnerPasswordOption = None, preview: PreviewOption = False, plan: PlanOption = False,
    yes: YesOption = False, output: OutputOption = None, rehearse: RehearseOption = False,
) -> None:
    """Deploy a Node, its Workers and optionally a Network to Azure through Pulumi, and save a context.

    The same options and behaviour as 'gridctl deploy aws', on Azure. The subscription is the Azure CLI's
    default or ARM_SUBSCRIPTION_ID. Running it again on an existing deployment applies the options given and keeps
    the rest. See docs/clouds/azure.md.
    """
    _deploy("azure", name, dict(
        region=region, workers=workers, instance_type=instance_type, worker_instance_type=worker_instance_type,
        database=database, network=network, allow_cidr=allow_cidr, ssh_cidr=ssh_cidr, ssh_public_key=ssh_key,
        domain=domain, backend_url=backend_url, secrets_provider=secrets_provider, replace_node=replace_node,
        owner_email=_email(owner_email), owner_password=owner_password,
    ), preview=preview, plan=plan, yes=yes, output=output, rehearse=rehearse)


def _email(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return _valid_email(value)
    except typer.BadParameter as exc:
        from gridctl.sdk.errors import GridctlError

        raise GridctlError("usage", f"--owner-email: {exc.message}") from None


# --- gridctl destroy aws|gcp|azure -----------------------------------------------------------------------

def _destroy(cloud: str, name: str, *, yes: bool, output: Output | None) -> None:
    from gridctl.cli.contexts import ContextFile

    use_output(output)
    provider = _provider(cloud)
    record = provider.record(name)  # an unknown name fails before anything is asked
    confirm(f"Delete every {cloud} resource of deployment {name!r} ({record.url or 'no URL yet'}), including its "
            "bucket and database with all their data, and its saved context?", yes=yes)
    console.message(f"destroying {name!r} on {cloud}...")
    done = provider.destroy(name, purge=True)
    saved = ContextFile.load()
    context = saved.contexts.get(name)
    context_removed = context is not None and context.deployment == cloud
    if context_removed:
        saved.remove(name)
    summary = {"name": name, "provider": cloud, "destroyed": True, "context_removed": context_removed,
               "changes": [{"action": c.action, "kind": c.kind, "name": c.name, "detail": c.detail} for c in done]}
    if console.output() is Output.json:
        console.emit(summary)
        return
    for change in done:
        console.message(f"deleted {change.kind} {change.name}: {change.detail}")
    if context_removed:
        console.message(f"removed the context {name!r}")


def _destroy_command(cloud: str) -> None:
    def destroy(name: NameOption, yes: YesOption = False, output: OutputOption = None) -> None:
        _destroy(cloud, name, yes=yes, output=output)

    destroy.__doc__ = (f"Delete every {cloud.upper() if cloud != 'azure' else 'Azure'} resource of a deployment, "
                       "its data included, its state and its context.\n\nIts bucket and database go with all their "
                       "data. It asks first (without a terminal to ask on, it needs --yes).")
    destroy_app.command(cloud)(destroy)


for _cloud in CLOUDS:
    _destroy_command(_cloud)


# --- gridctl workers scale ---------------------------------------------------------------------------------

@workers_app.command("scale")
def scale_workers(
    count: Annotated[int, typer.Argument(min=0, help="The number of Workers the deployment should have.",
                                         show_default=False)],
    name: NameOption,
    output: OutputOption = None,
) -> None:
    """Change a deployment's number of Workers; only its Worker pool changes.

    For a cloud deployment the stack is updated with only the Worker count changed (Auto Scaling group, managed
    instance group or scale set), and a later deploy keeps the new count. For a local deployment it starts or
    stops Worker processes until COUNT run (the newest stop first).
    """
    from providers.base import DeploymentNotFound, get_provider, known_deployments
    from providers.cloud_provider import CloudProvider

    use_output(output)
    record = next((r for r in known_deployments(deployments_dir()) if r.name == name), None)
    if record is None:
        raise DeploymentNotFound(name)
    provider = get_provider(record.provider, deployments_dir())
    if isinstance(provider, CloudProvider):
        provider.on_progress = _show_progress
    before = (record.settings.get("spec") or record.settings).get("workers")
    console.message(f"scaling the Workers of {name!r} ({record.provider}) from {before} to {count}...")
    status = provider.scale_workers(name, count)
    console.emit({"name": name, "provider": record.provider, "workers": count, "previous_workers": before,
                  "url": status.url, "healthy": status.healthy}, title=f"Deployment {name}")


def register(root: typer.Typer) -> None:
    """``gridctl check`` and ``gridctl workers``; the cloud deploy and destroy commands joined H3's groups above."""
    root.command("check")(check)
    root.add_typer(workers_app, name="workers")
