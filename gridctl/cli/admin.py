"""``gridctl admin``: the Admin (the Node's single-page app) for a static host of your own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridctl.cli import common, console
from gridctl.cli.common import OutputOption

app = typer.Typer(help="The Admin, the Node's web app: write it out for any static host.", no_args_is_help=True)


@app.command("export")
def export(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="Where to write the bundle (created if missing; "
                                              "files of the same names are replaced).", show_default=False)],
    node_url: Annotated[str, typer.Option("--node-url", help="The Node's URL the app calls, e.g. "
                                          "https://node.example.com.", show_default=False)],
    output: OutputOption = None,
) -> None:
    """Write the Admin's files to DIR, configured to call the Node at --node-url (config.json beside index.html).

    Upload DIR to any static host (S3, Cloud Storage, Blob Storage, Netlify...). The Node must allow that host's
    origin: add it to the Node's cors_origins setting, e.g. GRID_NODE_CORS_ORIGINS='["https://admin.example.com"]'.
    """
    from urllib.parse import urlsplit

    from grid_runtime.admin import AdminNotBuilt
    from grid_runtime.admin import export as write_bundle
    from gridctl.sdk.errors import GridctlError
    from gridctl.sdk.http import normalize_url

    common.use_output(output)
    url = normalize_url(node_url)
    if directory.exists() and not directory.is_dir():
        raise GridctlError("usage", f"{directory} exists and is not a folder")
    try:
        written = write_bundle(directory, url)
    except AdminNotBuilt as exc:
        raise GridctlError("not_built", str(exc)) from None
    parts = urlsplit(url)
    if console.output() is console.Output.json:
        console.emit({"directory": str(directory), "node_url": url,
                      "files": [str(p.relative_to(directory)) for p in written]})
        return
    console.message(f"wrote the Admin ({len(written)} files) to {directory}, calling the Node at {url}")
    console.hint(f"the Node at {parts.scheme}://{parts.netloc} must list the static host's origin in its "
                 "cors_origins setting (GRID_NODE_CORS_ORIGINS)")
