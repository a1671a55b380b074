"""``gridctl network``: a Node's associations with Networks, and a Network's catalogue and associations.

Two targets. ``join``, ``joined``, ``sync``, ``leave`` and ``statistics`` talk to the selected Node (as every
command does); the others talk to a Network: the saved context named by ``--network`` (GRIDCTL_NETWORK; log in
to a Network with ``gridctl login URL --context-name NAME``), or GRIDCTL_NETWORK_URL with GRIDCTL_NETWORK_TOKEN.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gridctl.cli import common, console
from gridctl.cli.common import LimitOption, OffsetOption, OutputOption, YesOption
from gridctl.sdk.errors import GridctlError, NotConfigured

if TYPE_CHECKING:
    from gridctl.sdk.network import Network

app = typer.Typer(help="Networks: join one from a Node, and search every associated Node's catalogue.",
                  no_args_is_help=True)
associations_app = typer.Typer(help="Join requests and associations of a Network (needs manage_nodes there).",
                               no_args_is_help=True)
app.add_typer(associations_app, name="associations")

NetworkOption = Annotated[str | None, typer.Option(
    "--network", envvar="GRIDCTL_NETWORK", help="The saved context of the Network (else GRIDCTL_NETWORK_URL and "
    "GRIDCTL_NETWORK_TOKEN).", show_default=False)]
AssociationArgument = Annotated[int, typer.Argument(min=1, help="The association's id.", show_default=False)]

JOINED_COLUMNS = ["id", "network_url", "network_name", "state", "last_push_at", "last_error"]
ASSOCIATION_COLUMNS = ["id", "node_name", "node_url", "state", "requested_at", "invited", "last_push_at", "note"]
HIT_COLUMNS = ["node", "kind", "id", "name", "tags", "shape", "dtype", "visibility", "stale", "node_url"]


def network(name: str | None, output: common.Output | None) -> Network:
    """A client for the selected Network (see the module)."""
    from gridctl.cli.contexts import ContextFile
    from gridctl.sdk.network import Network

    common.use_output(output)
    if name:
        context = ContextFile.load().contexts.get(name)
        if context is None:
            raise NotConfigured(f"no context named {name!r}; log in to the Network with "
                                "'gridctl login URL --context-name NAME'")
        return Network(context.url, token=context.token, ca_file=context.ca_file or None)
    url, token = os.environ.get("GRIDCTL_NETWORK_URL"), os.environ.get("GRIDCTL_NETWORK_TOKEN")
    if not url or not token:
        raise NotConfigured("no Network selected: pass --network CONTEXT (or GRIDCTL_NETWORK), or set "
                            "GRIDCTL_NETWORK_URL and GRIDCTL_NETWORK_TOKEN")
    return Network(url, token=token)


# --- on the Node -------------------------------------------------------------------------------------------

def _read_pem(path: Path, option: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise GridctlError("usage", f"{option}: cannot read {path}: {reason}") from None


def _deployment_network_root(context: str, url: str) -> Path | None:
    """The Network root pinned by the deployment behind ``context`` (``gridctl deploy aws|gcp|azure --network``),
    when that deployment's Network is at ``url`` and the root file is there; else None."""
    import json
    import re

    from gridctl.cli.contexts import home

    if not re.fullmatch(r"[a-z][a-z0-9-]{0,39}", context):
        return None
    state_dir = home() / "deployments" / context
    try:
        record = json.loads((state_dir / "deployment.json").read_text())
        outputs = record.get("settings", {}).get("outputs", {})
        network_url = str(outputs.get("network_url") or "")
    except (OSError, ValueError, AttributeError):
        return None
    if not network_url or network_url.rstrip("/").lower() != url.strip().rstrip("/").lower():
        return None
    from providers.cloud_provider import NETWORK_TLS_ROOT_FILE

    root = state_dir / NETWORK_TLS_ROOT_FILE
    return root if root.is_file() else None


def _join_roots(url: str, ca_file: Path | None, node_ca_file: Path | None) -> tuple[str | None, str | None]:
    """The PEM texts to send with a join: the files given, else the cloud deployment's defaults (see ``join``)."""
    from gridctl.cli.contexts import resolve

    target = resolve(common.selected_context())
    if ca_file is None and target.name:
        ca_file = _deployment_network_root(target.name, url)
        if ca_file is not None:
            console.message(f"pinning the Network's root certificate of deployment {target.name!r} ({ca_file})")
    if node_ca_file is None and target.ca_file:
        node_ca_file = Path(target.ca_file)
        console.message(f"sending the Node's root certificate this context pins ({node_ca_file})")
    return (_read_pem(ca_file, "--ca-file") if ca_file else None,
            _read_pem(node_ca_file, "--node-ca-file") if node_ca_file else None)


@app.command("join")
def join(
    url: Annotated[str, typer.Argument(help="The Network's URL (https unless the Node's operator allows http).",
                                       show_default=False)],
    invitation: Annotated[str | None, typer.Option(help="A one-time invitation code from the Network's "
                                                   "administrators: approved at once.", show_default=False)] = None,
    node_url: Annotated[str | None, typer.Option(help="The URL the Network reaches this Node at (default: the "
                                                 "Node's GRID_NODE_PUBLIC_URL).", show_default=False)] = None,
    ca_file: Annotated[Path | None, typer.Option(
        "--ca-file", help="PEM file of the root certificate(s) the Network's certificate chains to: the Node then "
        "trusts only these when it calls the Network (default: the Network root pinned by this context's cloud "
        "deployment, when URL is its Network).", show_default=False)] = None,
    node_ca_file: Annotated[Path | None, typer.Option(
        "--node-ca-file", help="PEM file of the root certificate(s) the Node's own URL chains to, for the Network to "
        "verify the Node when it reads its statistics (default: the root this context pins).",
        show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Ask a Network to associate the selected Node (needs manage_infrastructure on the Node)."""
    node = common.connect(output)
    network_ca, node_ca = _join_roots(url, ca_file, node_ca_file)
    joined = node.networks.join(url, invitation=invitation, node_url=node_url, network_ca_pem=network_ca,
                                node_ca_pem=node_ca)
    console.message(f"association {joined['id']} with {joined['network_url']}: {joined['state']}")
    console.emit(joined, columns=JOINED_COLUMNS)


@app.command("joined")
def joined(output: OutputOption = None) -> None:
    """The selected Node's Network associations and their state."""
    console.emit(common.connect(output).networks.list(), columns=JOINED_COLUMNS)


@app.command("sync")
def sync(association: AssociationArgument, output: OutputOption = None) -> None:
    """Ask the Network for the association's state now and, once approved, push the whole catalogue."""
    answer = common.connect(output).networks.sync(association)
    if console.output() is console.Output.json:
        console.emit(answer)
        return
    console.message(f"pushed {answer['pushed']} entries, {answer['deleted']} deletions")
    console.emit(answer["association"], columns=JOINED_COLUMNS)


@app.command("leave")
def leave(association: AssociationArgument, yes: YesOption = False, output: OutputOption = None) -> None:
    """End one of the selected Node's associations: the Network removes its entries, and its credential stops
    working on the Node."""
    node = common.connect(output)
    common.confirm(f"End association {association}? The Network removes this Node's catalogue entries.", yes=yes)
    console.emit(node.networks.leave(association), columns=JOINED_COLUMNS)


@app.command("statistics")
def statistics(output: OutputOption = None) -> None:
    """The selected Node's statistics, as its associated Networks read them (needs view_statistics)."""
    console.emit(common.connect(output).networks.statistics())


# --- on the Network ----------------------------------------------------------------------------------------

@app.command("search")
def search(
    text: Annotated[str | None, typer.Argument(help="Words in names or descriptions.", show_default=False)] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="A tag every hit has (repeat for several).",
                                                  show_default=False)] = None,
    text_option: Annotated[str | None, typer.Option("--text", help="Words in names or descriptions.",
                                                    show_default=False)] = None,
    kind: Annotated[str | None, typer.Option(help="tensor or dataset.", show_default=False)] = None,
    node: Annotated[str | None, typer.Option(help="Only this Node's entries.", show_default=False)] = None,
    limit: LimitOption = 50,
    offset: OffsetOption = 0,
    network_name: NetworkOption = None,
    output: OutputOption = None,
) -> None:
    """Search the catalogue of every Node of a Network; each hit names its Node, the Node's URL and the id there."""
    words = " ".join(w for w in (text, text_option) if w) or None
    page = network(network_name, output).search(words, tags=common.split_values(tag), kind=kind, node=node,
                                                limit=limit, offset=offset)
    console.emit_items([hit.__dict__ for hit in page], columns=HIT_COLUMNS,
                       page={"total": page.total, "limit": page.limit, "offset": page.offset})


@app.command("nodes")
def nodes(network_name: NetworkOption = None, output: OutputOption = None) -> None:
    """The Nodes associated with a Network: entries, when last heard from, stale or not."""
    console.emit(network(network_name, output).nodes(),
                 columns=["association_id", "name", "url", "entries", "last_seen", "stale"])


@app.command("node-statistics")
def node_statistics(association: AssociationArgument, network_name: NetworkOption = None,
                    output: OutputOption = None) -> None:
    """One Node's statistics, read by the Network from the Node (needs view_statistics on the Network)."""
    console.emit(network(network_name, output).node_statistics(association)["statistics"])


@app.command("invite")
def invite(note: Annotated[str, typer.Option(help="What the invitation is for.")] = "",
           network_name: NetworkOption = None, output: OutputOption = None) -> None:
    """Make a one-time invitation code for a Node's administrator (needs manage_nodes). Shown once."""
    made = network(network_name, output).invite(note)
    if console.output() is console.Output.json:
        console.emit(made)
        return
    console.emit({k: v for k, v in made.items() if k != "code"}, columns=["id", "expires_at"])
    console.secret_notice([f"invitation: {made['code']}", "give it to the Node's administrator: gridctl network "
                           "join URL --invitation CODE"])


@associations_app.command("list")
def list_associations(
    state: Annotated[str | None, typer.Option(help="pending, approved, denied, expired or ended.",
                                              show_default=False)] = None,
    network_name: NetworkOption = None, output: OutputOption = None,
) -> None:
    """Join requests and associations, oldest first."""
    console.emit(network(network_name, output).associations.list(state), columns=ASSOCIATION_COLUMNS)


NoteOption = Annotated[str, typer.Option(help="A note the decision keeps.")]


@associations_app.command("approve")
def approve(association: AssociationArgument, note: NoteOption = "", network_name: NetworkOption = None,
            output: OutputOption = None) -> None:
    """Approve a pending join request: the Node may push its catalogue from now on."""
    console.emit(network(network_name, output).associations.approve(association, note), columns=ASSOCIATION_COLUMNS)


@associations_app.command("deny")
def deny(association: AssociationArgument, note: NoteOption = "", network_name: NetworkOption = None,
         output: OutputOption = None) -> None:
    """Deny a pending join request."""
    console.emit(network(network_name, output).associations.deny(association, note), columns=ASSOCIATION_COLUMNS)


@associations_app.command("end")
def end(association: AssociationArgument, yes: YesOption = False, network_name: NetworkOption = None,
        output: OutputOption = None) -> None:
    """End an association: the Node's entries are removed and its credentials stop working."""
    target = network(network_name, output)
    common.confirm(f"End association {association}? Its Node's catalogue entries are removed.", yes=yes)
    console.emit(target.associations.end(association), columns=ASSOCIATION_COLUMNS)
