"""``gridctl tensors``: upload, search, download and manage tensors. A tensor is named by its id."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from gridctl.cli import common, console
from gridctl.cli.common import LimitOption, OffsetOption, OutputOption, YesOption
from gridctl.sdk.errors import GridctlError

app = typer.Typer(help="Upload, search, download and manage tensors.", no_args_is_help=True)

LIST_COLUMNS = ["id", "name", "shape", "dtype", "visibility", "tags", "level", "size", "created_at"]
DETAIL_FIELDS = ["id", "name", "description", "shape", "dtype", "size", "sha256", "visibility", "tags",
                 "columns", "uploader_id", "created_at", "level"]

TensorArg = Annotated[int, typer.Argument(metavar="ID", help="The tensor's id.", show_default=False)]
TagOption = Annotated[list[str] | None, typer.Option("--tag", "-t", help="A tag (repeat, or separate with "
                                                     "commas).", show_default=False)]
AnyTagOption = Annotated[bool, typer.Option("--any-tag", help="Match tensors with any of the tags, not all.")]
DatasetFilter = Annotated[str | None, typer.Option("--dataset", help="Only tensors in this dataset (name or id).",
                                                   show_default=False)]
UploaderOption = Annotated[int | None, typer.Option("--uploader", help="Only tensors uploaded by this user id.",
                                                    show_default=False)]
SortOption = Annotated[str | None, typer.Option("--sort", help="created_at, name or size; a leading - sorts "
                                                "descending (default: -created_at).", show_default=False)]


class Visibility(StrEnum):
    public = "public"
    private = "private"


VisibilityFilter = Annotated[Visibility | None, typer.Option("--visibility", help="Only public or only private "
                                                             "tensors.", show_default=False)]


def _row(tensor: dict[str, Any]) -> dict[str, Any]:
    """A tensor for a table: its shape as ``60000x784``, its size as ``1.2 MiB``."""
    row = dict(tensor)
    row["shape"] = "x".join(str(d) for d in tensor.get("shape") or []) or "scalar"
    if isinstance(tensor.get("size_bytes"), int):
        row["size"] = _size(tensor["size_bytes"])
    return row


def show_tensor(tensor: dict[str, Any]) -> None:
    console.emit(tensor if console.output() is console.Output.json else _row(tensor), columns=DETAIL_FIELDS)


def emit_page(page: dict[str, Any]) -> None:
    items = page["items"]
    console.emit(items if console.output() is console.Output.json else [_row(t) for t in items],
                 columns=LIST_COLUMNS)
    console.page_note(page)


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


@app.command("upload")
def upload(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A .safetensors, .npy, "
                                         ".npz, .pt or .csv file.", show_default=False)],
    name: Annotated[str, typer.Option("--name", "-n", help="The tensor's name.", show_default=False)],
    tag: TagOption = None,
    public: Annotated[bool | None, typer.Option("--public/--private", help="Who may download it by default: "
                                                "everyone (public) or only those granted it (default: private).",
                                                show_default=False)] = None,
    description: Annotated[str | None, typer.Option("--description", "-d", help="What the tensor holds.",
                                                    show_default=False)] = None,
    dataset: Annotated[str | None, typer.Option("--dataset", help="Add it to this dataset you own (name or id).",
                                                show_default=False)] = None,
    role: Annotated[str | None, typer.Option("--role", help="Its role in --dataset (default: its name).",
                                             show_default=False)] = None,
    format: Annotated[str | None, typer.Option("--format", help="safetensors, npy, npz, pt or csv (default: "
                                               "from the file's suffix).", show_default=False)] = None,
    output: OutputOption = None,
) -> None:
    """Upload a tensor file (streamed); prints the new tensor (its id in JSON).

    A .safetensors, .npy, .npz (no pickles), .pt (weights only) or .csv (numbers only, a header row) file is
    checked by the Node, stored as safetensors with its sha256, and private unless --public. --dataset adds it to
    a dataset you own under --role (its name by default); --format overrides the file's suffix. A file the Node
    refuses is one error line naming the problem, and nothing is stored.
    """
    if role is not None and dataset is None:
        raise typer.BadParameter("--role needs --dataset")
    node = common.connect(output)
    with console.transfer_progress(f"uploading {file.name}") as progress:
        tensor = node.tensors.upload_page(
            file, name=name, description=description, tags=common.split_values(tag),
            visibility=None if public is None else ("public" if public else "private"), dataset=dataset, role=role,
            format=format, progress=progress)
    console.message(f"tensor {tensor['id']} {tensor['name']!r} uploaded ({tensor['dtype']}, "
                    f"{_size(int(tensor['size_bytes']))}, {tensor['visibility']})")
    show_tensor(tensor)


@app.command("search")
def search(
    text: Annotated[str | None, typer.Argument(help="Words to find in names and descriptions.",
                                               show_default=False)] = None,
    tag: TagOption = None,
    any_tag: AnyTagOption = False,
    dataset: DatasetFilter = None,
    dtype: Annotated[str | None, typer.Option("--dtype", help="Only this dtype, e.g. float32.",
                                              show_default=False)] = None,
    shape: Annotated[str | None, typer.Option("--shape", help="Only this shape, e.g. 60000,784; * matches any "
                                              "one dimension.", show_default=False)] = None,
    visibility: VisibilityFilter = None,
    uploader: UploaderOption = None,
    sort: SortOption = None,
    limit: LimitOption = 50,
    offset: OffsetOption = 0,
    output: OutputOption = None,
) -> None:
    """Search tensor metadata; each hit shows your level (search, compute, download or deny).

    TEXT matches words in names and descriptions; tags must all match unless --any-tag; --shape 60000,784 (* for
    any one dimension); --sort created_at, name or size (a leading - for descending; newest first by default).
    """
    node = common.connect(output)
    page = node.tensors.search_page(text, tags=common.split_values(tag), any_tag=any_tag, dataset=dataset,
                                    visibility=visibility.value if visibility else None, dtype=dtype, shape=shape,
                                    uploader=uploader, sort=sort, limit=limit, offset=offset)
    emit_page(page)


@app.command("list")
def list_tensors(
    tag: TagOption = None,
    any_tag: AnyTagOption = False,
    dataset: DatasetFilter = None,
    visibility: VisibilityFilter = None,
    uploader: UploaderOption = None,
    sort: SortOption = None,
    limit: LimitOption = 50,
    offset: OffsetOption = 0,
    output: OutputOption = None,
) -> None:
    """List tensors, newest first, with your level on each."""
    node = common.connect(output)
    emit_page(node.tensors.page(tags=common.split_values(tag), any_tag=any_tag, dataset=dataset,
                                visibility=visibility.value if visibility else None, uploader=uploader, sort=sort,
                                limit=limit, offset=offset))


@app.command("show")
def show(tensor: TensorArg, output: OutputOption = None) -> None:
    """Show a tensor's metadata and your level on it."""
    show_tensor(common.connect(output).tensors.get(tensor))


@app.command("download")
def download(
    tensor: TensorArg,
    path: Annotated[Path | None, typer.Argument(metavar="PATH", help="Where to save it: a file, or a folder to "
                                                "save NAME.safetensors in (default: NAME.safetensors here).",
                                                show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-O", help="The same as PATH.", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", "-f", help="Replace the file if it exists.")] = False,
    output: OutputOption = None,
) -> None:
    """Download a tensor as safetensors, verified against its sha256 (needs download level).

    PATH (or -O PATH) is a file, or a folder to save NAME.safetensors in (default: the current folder). Without
    download level it exits 4, with the Node's message naming the level you have and how to ask for more. The bytes
    stream to a temporary file beside PATH, are checked against the sha256 the Node publishes, and are renamed into
    place only if they match: on a mismatch it exits 1 (checksum_mismatch) and nothing is left at PATH. An existing
    PATH is kept (exit 6) unless --force. JSON: {id, name, path, sha256, size_bytes, verified}.
    """
    from gridctl.sdk.data import TensorPointer, file_name

    if path is not None and out is not None:
        raise typer.BadParameter("give the path once: as PATH or as --out, not both")
    out = path or out or Path.cwd()
    node = common.connect(output)
    pointer = TensorPointer(node.http, node.tensors.get(tensor))
    target = out / f"{file_name(pointer.name, pointer.id)}.safetensors" if out.is_dir() else out
    if target.exists() and not force:
        raise GridctlError("already_exists", f"{target} exists; pass --force to replace it")
    with console.transfer_progress(f"downloading tensor {pointer.id}") as progress:
        saved = pointer.download(target, progress=progress)
    console.message(f"tensor {pointer.id} {pointer.name!r} saved to {saved} (sha256 verified)")
    console.emit({"id": pointer.id, "name": pointer.name, "path": str(saved), "sha256": pointer.sha256,
                  "size_bytes": pointer.size_bytes, "verified": True})


@app.command("tag")
def tag_tensor(
    tensor: TensorArg,
    tags: Annotated[list[str], typer.Argument(metavar="TAG", help="Tags to add.", show_default=False)],
    output: OutputOption = None,
) -> None:
    """Add tags to a tensor (its uploader, or manage_permissions).

    Tags are lower-case letters, digits and _ . : -.
    """
    updated = common.connect(output).tensors.tag(tensor, *(common.split_values(tags) or []))
    console.message(f"tensor {tensor} tagged: {', '.join(updated['tags']) or '-'}")
    show_tensor(updated)


@app.command("untag")
def untag_tensor(
    tensor: TensorArg,
    tags: Annotated[list[str], typer.Argument(metavar="TAG", help="Tags to remove.", show_default=False)],
    output: OutputOption = None,
) -> None:
    """Remove tags from a tensor."""
    updated = common.connect(output).tensors.untag(tensor, *(common.split_values(tags) or []))
    console.message(f"tensor {tensor} tags: {', '.join(updated['tags']) or '-'}")
    show_tensor(updated)


@app.command("set-visibility")
def set_visibility(
    tensor: TensorArg,
    visibility: Annotated[Visibility, typer.Argument(help="public (everyone may download by default) or private "
                                                     "(search only, unless granted).", show_default=False)],
    output: OutputOption = None,
) -> None:
    """Make a tensor public or private (its uploader, or manage_permissions).

    Public tensors default to download for every user, private ones to search.
    """
    updated = common.connect(output).tensors.set_visibility(tensor, visibility.value)
    console.message(f"tensor {tensor} is now {updated['visibility']}")
    show_tensor(updated)


@app.command("delete")
def delete(tensor: TensorArg, yes: YesOption = False, output: OutputOption = None) -> None:
    """Delete a tensor and its stored data (its uploader, or manage_permissions)."""
    node = common.connect(output)
    common.confirm(f"Delete tensor {tensor} and its data?", yes=yes)
    node.tensors.remove(tensor)
    common.removed("tensor", str(tensor))
