"""Data sub-APIs of a Node: tensors, datasets, permissions, requests; and pointers to remote data.

A pointer (``TensorPointer``, ``DatasetPointer``) stands for data that stays on the Node. It carries the
metadata (name, shape, dtype, tags, and ``level``: what *you* may do with it) and offers the actions:
``get()`` downloads, verifies and loads the data when your level is ``download``; otherwise it raises
``AccessDenied`` naming the level you lack, and ``request_access(level, reason)`` asks for it.

>>> results = node.search("mnist", tags=["images"])
>>> x = results[0]
>>> x.level
'search'
>>> request = x.request_access("download", "to train a baseline")
>>> request.refresh().status        # 'pending', then 'approved' once an officer agrees
>>> tensor = x.get()                # a torch.Tensor, verified against its sha256

torch and safetensors are imported only inside the functions that need them.
"""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from gridctl.sdk import transfer
from gridctl.sdk.errors import Forbidden, GridctlError
from gridctl.sdk.http import segment

if TYPE_CHECKING:
    import torch

    from gridctl.sdk.http import Http
    from gridctl.sdk.transfer import Progress

Json = dict[str, Any]
JsonList = list[Json]
Tags = list[str]  # alias: ``list`` is a method name inside the classes

LEVELS = ("search", "compute", "download")
_RANK = {"deny": 0, "search": 1, "compute": 2, "download": 3}


def _without_none(**fields: Any) -> Json:
    return {k: v for k, v in fields.items() if v is not None}


def _tags(tags: str | Iterable[str] | None) -> Tags | None:
    if tags is None:
        return None
    return [tags] if isinstance(tags, str) else list(tags)


class AccessDenied(Forbidden):
    """The Node refused data because your level on it is too low (403).

    The message is the Node's: it names the level needed, the level you have, the rule that decided, and how
    to ask. ``needed``, ``have`` and ``rule`` hold the same facts for programs.
    """

    @classmethod
    def from_forbidden(cls, exc: Forbidden) -> AccessDenied:
        return cls(exc.code, exc.message, status=exc.status, details=exc.details)

    @property
    def needed(self) -> str | None:
        return self.details.get("needed") if isinstance(self.details, dict) else None

    @property
    def have(self) -> str | None:
        return self.details.get("have") if isinstance(self.details, dict) else None

    @property
    def rule(self) -> str | None:
        return self.details.get("rule") if isinstance(self.details, dict) else None


class _Api:
    def __init__(self, http: Http) -> None:
        self.http = http


def _target(http: Http, *, tensor: int | str | TensorPointer | None = None,
            dataset: int | str | DatasetPointer | None = None) -> tuple[str, int]:
    """``("tensor", id)`` or ``("dataset", id)`` from exactly one of ``tensor`` / ``dataset``.

    A dataset may be named; its id is looked up on the Node.
    """
    if (tensor is None) == (dataset is None):
        raise GridctlError("usage", "name exactly one target: a tensor or a dataset")
    if tensor is not None:
        if isinstance(tensor, TensorPointer):
            return "tensor", tensor.id
        text = str(tensor).strip()
        if not text.isdigit():
            raise GridctlError("usage", f"a tensor is named by its id, not {text!r}")
        return "tensor", int(text)
    if isinstance(dataset, DatasetPointer):
        return "dataset", dataset.id
    text = str(dataset).strip()
    if text.isdigit():
        return "dataset", int(text)
    return "dataset", int(http.get(f"/datasets/{segment(text)}")["id"])


# --- pointers -----------------------------------------------------------------------------------------

T = TypeVar("T")


def _as_is(value: Any) -> Any:
    return value


def _text(value: Any) -> str:
    return str(value or "")


def _listed(value: Any) -> list[Any]:
    return list(value or [])


def _mapping(value: Any) -> Json:
    return dict(value or {})


def _ints(value: Any) -> list[int]:
    return [int(d) for d in value or []]


class _Record(ABC):
    """Something the Node described in JSON (``_json()``); its common fields are read-only ``_Field``s."""

    @abstractmethod
    def _json(self) -> Json:
        """The Node's JSON for this record, as last read."""

    @property
    def id(self) -> int:
        return int(self._json()["id"])


class _Field(Generic[T]):
    """A read-only attribute of a ``_Record``: ``convert`` of the value at ``key`` of its JSON (None if missing)."""

    def __init__(self, key: str, convert: Callable[[Any], T] = _as_is, *, doc: str | None = None) -> None:
        self.key, self.convert = key, convert
        self.__doc__ = doc

    @overload
    def __get__(self, record: None, owner: type) -> _Field[T]: ...

    @overload
    def __get__(self, record: _Record, owner: type) -> T: ...

    def __get__(self, record: _Record | None, owner: type) -> _Field[T] | T:
        return self if record is None else self.convert(record._json().get(self.key))

    def __set__(self, record: _Record, value: object) -> None:
        raise AttributeError(f"{self.key} is read from the Node; refresh() re-reads it")


class _Pointer(_Record):
    """Data that stays on the Node: ``metadata`` is the Node's JSON, ``http`` the client that reads it."""

    def __init__(self, http: Http, metadata: Json) -> None:
        self.http = http
        self.metadata = dict(metadata)

    def _json(self) -> Json:
        return self.metadata

    name = _Field("name", _text)
    description = _Field("description", _text)
    tags = _Field("tags", _listed)
    visibility = _Field[str | None]("visibility")
    level = _Field[str | None]("level", doc="Your effective level: ``search``, ``compute``, ``download`` or ``deny`` "
                               "(as of the last refresh).")



class TensorPointer(_Pointer):
    """A tensor on the Node: its metadata, and what you may do with it (``level``).

    ``ptr.metadata`` is the Node's JSON; the common fields are attributes (``id``, ``name``, ``shape``,
    ``dtype``, ``tags``, ``visibility``, ``sha256``, ``size_bytes``, ``level``).
    """

    def __repr__(self) -> str:
        shape = "x".join(str(d) for d in self.shape) or "scalar"
        return (f"<TensorPointer {self.id} {self.name!r} {self.dtype}[{shape}] {self.visibility}, "
                f"your level: {self.level}>")

    def __eq__(self, other: object) -> bool:
        """The same tensor on the same Node (whoever is looking at it)."""
        return isinstance(other, TensorPointer) and other.id == self.id and other.http.url == self.http.url

    def __hash__(self) -> int:
        return hash((self.http.url, "tensor", self.id))

    shape = _Field("shape", _ints)
    dtype = _Field[str | None]("dtype")
    sha256 = _Field[str | None]("sha256")
    size_bytes = _Field[int | None]("size_bytes")
    columns = _Field[Tags | None]("columns")

    @property
    def can_download(self) -> bool:
        """Whether your level (as of the last refresh) lets you ``get()`` the data."""
        return _RANK.get(str(self.level), 0) >= _RANK["download"]

    def refresh(self) -> TensorPointer:
        """Re-read the metadata (and your level) from the Node."""
        self.metadata = self.http.get(f"/tensors/{self.id}")
        return self

    def download(self, dest: str | os.PathLike[str], *, progress: Progress | None = None) -> Path:
        """Save the tensor as a safetensors file at ``dest`` (a file, or a folder to put it in), verified
        against its sha256. Raises ``AccessDenied`` below ``download`` level."""
        target = Path(dest)
        if target.is_dir():
            target = target / f"{file_name(self.name, self.id)}.safetensors"
        try:
            transfer.download_file(self.http, f"/tensors/{self.id}/data", target, expected_sha256=self.sha256,
                                   progress=progress)
        except Forbidden as exc:
            raise AccessDenied.from_forbidden(exc) from None
        return target

    def get(self, *, progress: Progress | None = None) -> torch.Tensor:
        """The data as a ``torch.Tensor``: downloaded, checked against its sha256 and loaded with safetensors.

        Raises ``AccessDenied`` (the Node's message names the missing level and how to ask) unless your
        level is ``download``; ask with ``request_access("download", reason)``.
        """
        from safetensors.torch import load_file

        with tempfile.TemporaryDirectory(prefix="gridctl-") as folder:
            path = self.download(Path(folder) / "tensor.safetensors", progress=progress)
            loaded = load_file(str(path))
            if len(loaded) != 1:
                raise GridctlError("invalid_tensor", f"tensor {self.id}'s file holds {len(loaded)} tensors, "
                                   "not one")
            (tensor,) = loaded.values()
            return tensor.clone()  # owns its memory: the temporary file goes away with the folder

    def request_access(self, level: str, reason: str) -> Request:
        """Ask for ``compute`` or ``download`` on this tensor; an officer approves or denies."""
        return Requests(self.http).ask_access(tensor=self.id, level=level, reason=reason)

    def get_released(self, *, wait: bool = False, timeout: float | None = None,
                     reason: str | None = None) -> torch.Tensor:
        """A private tensor through a release request (raw data is not differentially private: the Node
        auto-denies it under its dp_only policy, else an officer decides). Files or finds the request;
        ``ReleaseNotApproved`` names its state and reason unless it is approved (``wait=True`` waits)."""
        from gridctl.sdk.releases import fetch

        blob = fetch(self.http, target_type="tensor", target_id=self.id, wait=wait, timeout=timeout, reason=reason)
        from safetensors.torch import load

        tensors = load(blob)
        return next(iter(tensors.values())) if len(tensors) == 1 else tensors  # type: ignore[return-value]

    def explain(self, user: int | str | None = None) -> Json:
        """Why you (or ``user``) have the level you have: ``{level, rule, grant_id, explanation}``."""
        return Permissions(self.http).explain(tensor=self.id, user=user)

    def tag(self, *tags: str) -> TensorPointer:
        for tag in tags:
            self.metadata = self.http.put(f"/tensors/{self.id}/tags/{segment(tag)}")
        return self

    def untag(self, *tags: str) -> TensorPointer:
        for tag in tags:
            self.metadata = self.http.delete(f"/tensors/{self.id}/tags/{segment(tag)}")
        return self

    def update(self, *, name: str | None = None, description: str | None = None,
               visibility: str | None = None) -> TensorPointer:
        body = _without_none(name=name, description=description, visibility=visibility)
        self.metadata = self.http.patch(f"/tensors/{self.id}", json=body)
        return self

    def delete(self) -> None:
        """Delete the tensor and its stored data (its uploader, or manage_permissions)."""
        self.http.delete(f"/tensors/{self.id}")


def file_name(name: str, tensor_id: int) -> str:
    """A file name (without suffix) for a tensor: its name with anything unusual replaced."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip(".") or f"tensor-{tensor_id}"


class DatasetPointer(_Pointer):
    """A dataset on the Node: its members by role (``ds["features"]`` is a ``TensorPointer``), declared
    bounds, and your ``level`` on it."""

    def __repr__(self) -> str:
        return f"<DatasetPointer {self.id} {self.name!r} roles={self.roles}, your level: {self.level}>"

    bounds = _Field("bounds", _mapping)
    members = _Field[JsonList]("members", _listed)

    @property
    def roles(self) -> Tags:
        return [m["role"] for m in self.members]

    def __getitem__(self, role: str) -> TensorPointer:
        for member in self.members:
            if member["role"] == role:
                return TensorPointer(self.http, self.http.get(f"/tensors/{member['tensor_id']}"))
        raise KeyError(f"dataset {self.name!r} has no member {role!r}; its roles: {', '.join(self.roles) or '-'}")

    def __iter__(self) -> Iterator[str]:
        return iter(self.roles)

    def refresh(self) -> DatasetPointer:
        self.metadata = self.http.get(f"/datasets/{self.id}")
        return self

    def get(self) -> dict[str, torch.Tensor]:
        """Every member as a torch tensor, by role (needs download on each)."""
        return {role: self[role].get() for role in self.roles}

    def request_access(self, level: str, reason: str) -> Request:
        """Ask for ``compute`` or ``download`` on the whole dataset."""
        return Requests(self.http).ask_access(dataset=self.id, level=level, reason=reason)

    def explain(self, user: int | str | None = None) -> Json:
        return Permissions(self.http).explain(dataset=self.id, user=user)


class Request(_Record):
    """A request on the Node (any kind): ``id``, ``status``, ``kind``, ``reason``, the decision, ``events``.

    ``refresh()`` re-reads it; ``withdraw()`` withdraws it (requester only); ``approve()``/``deny()`` decide it
    (officers).
    """

    def __init__(self, http: Http, data: Json) -> None:
        self.http = http
        self.data = dict(data)

    def _json(self) -> Json:
        return self.data

    def __repr__(self) -> str:
        target = f" on {self.target_type} {self.target_id}" if self.target_type else ""
        return f"<Request {self.id} {self.kind}{target}: {self.status}>"

    kind = _Field[str | None]("kind")
    status = _Field[str | None]("state", doc="``pending``, ``approved``, ``denied``, ``withdrawn``, ``expired``, "
                                "``auto_approved``, ``auto_denied``.")
    state = status
    reason = _Field[str | None]("reason")
    target_type = _Field[str | None]("target_type")
    target_id = _Field[int | None]("target_id")
    payload = _Field("payload", _mapping)
    decision_note = _Field[str | None]("decision_note", doc="The officer's note on approval, or the reason for a "
                                       "denial.")
    events = _Field[JsonList]("events", _listed)
    card = _Field[Json | None]("card", doc="For a release, seen by an officer: the cost card (see docs/privacy.md).")

    @property
    def level(self) -> str | None:
        """For an access request, the level asked for."""
        return self.payload.get("level")

    @property
    def pending(self) -> bool:
        return self.status == "pending"

    def refresh(self) -> Request:
        self.data = self.http.get(f"/requests/{self.id}")
        return self

    def withdraw(self, note: str | None = None) -> Request:
        self.data = Requests(self.http).withdraw(self.id, note=note)
        return self

    def approve(self, note: str | None = None) -> Request:
        self.data = Requests(self.http).approve(self.id, note=note)
        return self

    def deny(self, reason: str) -> Request:
        self.data = Requests(self.http).deny(self.id, reason)
        return self

    @property
    def epsilon(self) -> float | None:
        """For a release, its own ε at the node's δ as the Node computed it (None: not private)."""
        return self.payload.get("epsilon")

    @property
    def fingerprint(self) -> str | None:
        """For a release, seen by an officer: the fingerprint of the exact artifact (an HMAC-SHA256 under the
        Node's secret; the requester does not see it)."""
        return self.payload.get("fingerprint")

    def wait(self, timeout: float | None = None, *, poll: float = 1.0) -> Request:
        """Wait until the request is decided (or withdrawn, or expired); GridctlError ``timeout`` after
        ``timeout`` seconds."""
        from gridctl.sdk.releases import wait_for_decision

        self.data = wait_for_decision(self.http, self.id, timeout, poll=poll)
        return self


class SearchResults(list[TensorPointer]):
    """One page of search hits (``TensorPointer``s); ``total`` counts every match."""

    def __init__(self, pointers: Iterable[TensorPointer], *, total: int, limit: int, offset: int) -> None:
        super().__init__(pointers)
        self.total, self.limit, self.offset = total, limit, offset


# --- sub-APIs -----------------------------------------------------------------------------------------


def _tensor_params(*, tags: str | Iterable[str] | None, any_tag: bool, dataset: int | str | None,
                   visibility: str | None, uploader: int | None, sort: str | None, limit: int, offset: int,
                   **extra: Any) -> Json:
    return _without_none(tag=_tags(tags), tags_mode="any" if any_tag else None, dataset=dataset,
                         visibility=visibility, uploader=uploader, sort=sort, limit=limit, offset=offset, **extra)


class Tensors(_Api):
    """``node.tensors``: upload, find, download and manage tensors. ``node.tensors[ID]`` is a pointer."""

    def __getitem__(self, tensor_id: int | str) -> TensorPointer:
        return self.pointer(tensor_id)

    def pointer(self, tensor_id: int | str) -> TensorPointer:
        return TensorPointer(self.http, self.get(tensor_id))

    def get(self, tensor_id: int | str) -> Json:
        """A tensor's metadata with your effective ``level``."""
        return self.http.get(f"/tensors/{segment(tensor_id)}")

    def page(self, *, tags: str | Iterable[str] | None = None, any_tag: bool = False,
             dataset: int | str | None = None, visibility: str | None = None, uploader: int | None = None,
             sort: str | None = None, limit: int = 50, offset: int = 0) -> Json:
        params = _tensor_params(tags=tags, any_tag=any_tag, dataset=dataset, visibility=visibility,
                                uploader=uploader, sort=sort, limit=limit, offset=offset)
        return self.http.get("/tensors", params=params)

    def list(self, **filters: Any) -> JsonList:
        """Tensors (newest first) matching ``tags`` (all; ``any_tag=True``: any), ``dataset``, ``visibility``
        and ``uploader``."""
        return list(self.page(**filters)["items"])

    def search_page(self, text: str | None = None, *, tags: str | Iterable[str] | None = None,
                    any_tag: bool = False, dataset: int | str | None = None, visibility: str | None = None,
                    dtype: str | None = None, shape: str | None = None, uploader: int | None = None,
                    sort: str | None = None, limit: int = 50, offset: int = 0) -> Json:
        """The Node's search page: ``{items, total, limit, offset}``, each item with your ``level``."""
        params = _tensor_params(tags=tags, any_tag=any_tag, dataset=dataset, visibility=visibility,
                                uploader=uploader, sort=sort, limit=limit, offset=offset, q=text or None,
                                dtype=dtype, shape=shape)
        return self.http.get("/tensors/search", params=params)

    def search(self, text: str | None = None, **filters: Any) -> SearchResults:
        """Search names and descriptions for ``text`` (and filter by ``tags``, ``any_tag``, ``dataset``,
        ``visibility``, ``dtype``, ``shape`` such as ``"60000,784"`` or ``"*,784"``, ``uploader``); one page
        of ``TensorPointer``s."""
        page = self.search_page(text, **filters)
        return SearchResults((TensorPointer(self.http, item) for item in page["items"]), total=page["total"],
                             limit=page["limit"], offset=page["offset"])

    def upload_page(self, source: str | os.PathLike[str] | Any, *, name: str, description: str | None = None,
                    tags: str | Iterable[str] | None = None, visibility: str | None = None,
                    dataset: int | str | None = None, role: str | None = None, format: str | None = None,
                    progress: Progress | None = None) -> Json:
        """Upload and return the Node's JSON for the new tensor (see ``upload``)."""
        if _is_path(source):
            path = Path(source)
            if not path.is_file():
                raise GridctlError("usage", f"no file {path}")
            params = _without_none(name=name, description=description, tag=_tags(tags), visibility=visibility,
                                   dataset=dataset, role=role, format=format, filename=path.name)
            return transfer.upload_file(self.http, path, "/tensors", params=params, progress=progress)
        with tempfile.TemporaryDirectory(prefix="gridctl-") as folder:
            path = _save_tensor(source, Path(folder) / "upload.safetensors")
            params = _without_none(name=name, description=description, tag=_tags(tags), visibility=visibility,
                                   dataset=dataset, role=role, format="safetensors")
            return transfer.upload_file(self.http, path, "/tensors", params=params, progress=progress)

    def upload(self, source: str | os.PathLike[str] | Any, *, name: str, description: str | None = None,
               tags: str | Iterable[str] | None = None, visibility: str | None = None,
               dataset: int | str | None = None, role: str | None = None, format: str | None = None,
               progress: Progress | None = None) -> TensorPointer:
        """Upload a file (safetensors, .npy, .npz, .pt, .csv; streamed) or a torch tensor (sent as
        safetensors). ``visibility`` is ``private`` (the default) or ``public``; ``dataset`` adds the tensor to
        a dataset you own under ``role`` (its name by default). Needs upload_data."""
        return TensorPointer(self.http, self.upload_page(
            source, name=name, description=description, tags=tags, visibility=visibility, dataset=dataset,
            role=role, format=format, progress=progress))

    def download(self, tensor_id: int | str, dest: str | os.PathLike[str], *,
                 progress: Progress | None = None) -> Path:
        """Save a tensor as safetensors at ``dest`` (file or folder), verified against its sha256."""
        return self.pointer(tensor_id).download(dest, progress=progress)

    def update(self, tensor_id: int | str, *, name: str | None = None, description: str | None = None,
               visibility: str | None = None) -> Json:
        body = _without_none(name=name, description=description, visibility=visibility)
        return self.http.patch(f"/tensors/{segment(tensor_id)}", json=body)

    def set_visibility(self, tensor_id: int | str, visibility: str) -> Json:
        return self.update(tensor_id, visibility=visibility)

    def tag(self, tensor_id: int | str, *tags: str) -> Json:
        result: Json = {}
        for tag in tags:
            result = self.http.put(f"/tensors/{segment(tensor_id)}/tags/{segment(tag)}")
        return result or self.get(tensor_id)

    def untag(self, tensor_id: int | str, *tags: str) -> Json:
        result: Json = {}
        for tag in tags:
            result = self.http.delete(f"/tensors/{segment(tensor_id)}/tags/{segment(tag)}")
        return result or self.get(tensor_id)

    def remove(self, tensor_id: int | str) -> None:
        """Delete a tensor and its stored data."""
        self.http.delete(f"/tensors/{segment(tensor_id)}")

    delete = remove


def _is_path(source: object) -> bool:
    return isinstance(source, str | os.PathLike)


def _save_tensor(value: Any, path: Path) -> Path:
    """A torch tensor (or anything ``torch.as_tensor`` takes, such as a numpy array) as one-tensor
    safetensors."""
    import torch
    from safetensors.torch import save_file

    try:
        tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise GridctlError("usage", f"upload takes a file path or a tensor, not {type(value).__name__}: "
                           f"{exc}") from None
    save_file({"tensor": tensor.detach().cpu().contiguous()}, str(path))
    return path


class Datasets(_Api):
    """``node.datasets``: named collections of tensors. ``node.datasets[NAME_OR_ID]`` is a pointer."""

    def __getitem__(self, ref: int | str) -> DatasetPointer:
        return DatasetPointer(self.http, self.get(ref))

    def get(self, ref: int | str) -> Json:
        """A dataset by id or name: members, declared bounds, your level."""
        return self.http.get(f"/datasets/{segment(ref)}")

    def page(self, *, q: str | None = None, tag: str | None = None, limit: int = 50, offset: int = 0) -> Json:
        return self.http.get("/datasets", params=_without_none(q=q, tag=tag, limit=limit, offset=offset))

    def list(self, **filters: Any) -> JsonList:
        """Datasets by name, filtered by ``q`` (name or description contains) and ``tag``."""
        return list(self.page(**filters)["items"])

    def create(self, name: str, members: Mapping[str, int | TensorPointer] | None = None, *,
               description: str | None = None, tags: str | Iterable[str] | None = None,
               visibility: str | None = None, bounds: Mapping[str, Json] | None = None) -> DatasetPointer:
        """A dataset from tensors you uploaded: ``members`` maps a role to a tensor (id or pointer),
        e.g. ``{"features": 3, "labels": 4}``. ``bounds`` maps a role to ``{"lower", "upper"}``."""
        body = _without_none(name=name, description=description, tags=_tags(tags), visibility=visibility,
                             members={role: t.id if isinstance(t, TensorPointer) else int(t)
                                      for role, t in (members or {}).items()},
                             bounds=dict(bounds) if bounds else None)
        return DatasetPointer(self.http, self.http.post("/datasets", json=body))

    def create_from_csv(self, path: str | os.PathLike[str], name: str, *, label: str,
                        description: str | None = None, tags: str | Iterable[str] | None = None,
                        visibility: str | None = None, progress: Progress | None = None) -> DatasetPointer:
        """A dataset from one CSV: ``features`` (the other columns, float32) and ``labels`` (``label``)."""
        source = Path(path)
        if not source.is_file():
            raise GridctlError("usage", f"no file {source}")
        params = _without_none(name=name, label=label, description=description, tag=_tags(tags),
                               visibility=visibility)
        data = transfer.upload_file(self.http, source, "/datasets/from-csv", params=params, progress=progress)
        return DatasetPointer(self.http, data)

    def update(self, ref: int | str, *, name: str | None = None, description: str | None = None,
               tags: str | Iterable[str] | None = None, visibility: str | None = None) -> Json:
        body = _without_none(name=name, description=description, tags=_tags(tags), visibility=visibility)
        return self.http.patch(f"/datasets/{segment(ref)}", json=body)

    def add(self, ref: int | str, role: str, tensor: int | TensorPointer) -> Json:
        """Put a tensor you uploaded in the dataset under ``role`` (replacing what held that role)."""
        tensor_id = tensor.id if isinstance(tensor, TensorPointer) else int(tensor)
        return self.http.put(f"/datasets/{segment(ref)}/members/{segment(role)}", json={"tensor_id": tensor_id})

    def remove_member(self, ref: int | str, role: str) -> Json:
        """Take a member out of the dataset; the tensor stays."""
        return self.http.delete(f"/datasets/{segment(ref)}/members/{segment(role)}")

    def set_bounds(self, ref: int | str, bounds: Mapping[str, Json]) -> Json:
        """Declare per-column bounds, role -> ``{"lower": x or [..], "upper": y or [..]}``; replaces all."""
        return self.http.put(f"/datasets/{segment(ref)}/bounds", json=dict(bounds))

    def remove(self, ref: int | str) -> None:
        """Delete a dataset; its tensors stay."""
        self.http.delete(f"/datasets/{segment(ref)}")

    delete = remove


class Permissions(_Api):
    """``node.permissions``: grants of a level (or a deny) to a user or group on a tensor or dataset.

    Name the subject with ``user=`` (id or email) or ``group=`` (id or name), and the target with ``tensor=``
    (id or pointer) or ``dataset=`` (id, name or pointer).
    """

    @staticmethod
    def _subject(user: int | str | None, group: int | str | None) -> tuple[str, str]:
        if (user is None) == (group is None):
            raise GridctlError("usage", "name exactly one subject: a user or a group")
        return ("user", str(user)) if user is not None else ("group", str(group))

    def grant(self, level: str, *, user: int | str | None = None, group: int | str | None = None,
              tensor: int | str | TensorPointer | None = None,
              dataset: int | str | DatasetPointer | None = None) -> Json:
        """Grant ``search``, ``compute``, ``download`` or ``deny``; replaces the subject's earlier level on the
        target (needs manage_permissions)."""
        subject_type, subject = self._subject(user, group)
        target_type, target_id = _target(self.http, tensor=tensor, dataset=dataset)
        return self.http.post("/permissions", json={"subject_type": subject_type, "subject": subject,
                                                    "target_type": target_type, "target_id": target_id,
                                                    "level": level})

    def page(self, *, user: int | str | None = None, group: int | str | None = None,
             tensor: int | str | TensorPointer | None = None, dataset: int | str | DatasetPointer | None = None,
             limit: int = 50, offset: int = 0) -> Json:
        params: Json = {"limit": limit, "offset": offset}
        if user is not None or group is not None:
            params["subject_type"], params["subject"] = self._subject(user, group)
        if tensor is not None or dataset is not None:
            params["target_type"], params["target_id"] = _target(self.http, tensor=tensor, dataset=dataset)
        return self.http.get("/permissions", params=params)

    def list(self, **filters: Any) -> JsonList:
        """Grants, filtered by subject and target (without manage_permissions: only those that apply to you)."""
        return list(self.page(**filters)["items"])

    def find(self, *, user: int | str | None = None, group: int | str | None = None,
             tensor: int | str | TensorPointer | None = None,
             dataset: int | str | DatasetPointer | None = None) -> Json:
        """The one grant of a subject on a target, or ``NotFound``."""
        from gridctl.sdk.errors import NotFound

        items = self.list(user=user, group=group, tensor=tensor, dataset=dataset, limit=1)
        if not items:
            subject_type, subject = self._subject(user, group)
            target_type, target_id = _target(self.http, tensor=tensor, dataset=dataset)
            raise NotFound("not_found", f"{subject_type} {subject} has no grant on {target_type} {target_id}",
                           status=404)
        return items[0]

    def revoke(self, grant_id: int | None = None, **subject_and_target: Any) -> None:
        """Revoke a grant by id, or the grant of ``user``/``group`` on ``tensor``/``dataset``."""
        if grant_id is None:
            grant_id = int(self.find(**subject_and_target)["id"])
        elif subject_and_target:
            raise GridctlError("usage", "revoke takes a grant id or a subject and a target, not both")
        self.http.delete(f"/permissions/{segment(grant_id)}")

    def explain(self, *, tensor: int | str | TensorPointer | None = None,
                dataset: int | str | DatasetPointer | None = None, user: int | str | None = None) -> Json:
        """``{level, rule, grant_id, explanation}``: the rule that decides a user's level (you by default; others
        need manage_permissions)."""
        target_type, target_id = _target(self.http, tensor=tensor, dataset=dataset)
        params = _without_none(target_type=target_type, target_id=target_id,
                               user=None if user is None else str(user))
        return self.http.get("/permissions/explain", params=params)


class Requests(_Api):
    """``node.requests``: requests of every kind (``access``, ``release``, ``budget``) and their decisions.

    Officers (triage_requests) see and decide every request; everyone else sees their own.
    """

    def __getitem__(self, request_id: int | str) -> Request:
        return Request(self.http, self.get(request_id))

    def get(self, request_id: int | str) -> Json:
        """A request with its ``events`` (every transition: who, when, note)."""
        return self.http.get(f"/requests/{segment(request_id)}")

    def page(self, *, status: str | None = None, kind: str | None = None, requester: int | str | None = None,
             limit: int = 50, offset: int = 0) -> Json:
        params = _without_none(status=status, kind=kind, requester=None if requester is None else str(requester),
                               limit=limit, offset=offset)
        return self.http.get("/requests", params=params)

    def list(self, **filters: Any) -> JsonList:
        """Requests newest first, filtered by ``status``, ``kind`` and ``requester``."""
        return list(self.page(**filters)["items"])

    def ask_access(self, *, level: str, reason: str, tensor: int | str | TensorPointer | None = None,
                   dataset: int | str | DatasetPointer | None = None) -> Request:
        """Ask for ``compute`` or ``download`` on a tensor or dataset, with a reason for the officer."""
        target_type, target_id = _target(self.http, tensor=tensor, dataset=dataset)
        data = self.http.post("/requests", json={"kind": "access", "target_type": target_type,
                                                 "target_id": target_id, "level": level, "reason": reason})
        return Request(self.http, data)

    def approve(self, request_id: int | str, *, note: str | None = None, fingerprint: str | None = None) -> Json:
        """Approve; for a release, ``fingerprint`` (the one you inspected on the cost card) makes the Node refuse if the
        artifact changed. A release that no longer fits the budget raises Conflict ``budget_exceeded``."""
        body = _without_none(note=note, fingerprint=fingerprint) or None
        return self.http.post(f"/requests/{segment(request_id)}/approve", json=body)

    def ask_release(self, *, result: int | None = None, tensor: int | str | TensorPointer | None = None,
                    reason: str | None = None) -> Request:
        """Ask to download a result of yours or a private tensor; the Node computes the cost and may decide
        at once (``auto_denied`` with the reason, or ``auto_approved`` under an officer's policy)."""
        if (result is None) == (tensor is None):
            raise ValueError("give exactly one of result= and tensor=")
        if result is not None:
            target_type, target_id = "result", int(result)
        else:
            target_type, target_id = _target(self.http, tensor=tensor)
        from gridctl.sdk.releases import DEFAULT_REASON

        data = self.http.post("/requests", json={"kind": "release", "target_type": target_type,
                                                 "target_id": target_id, "reason": reason or DEFAULT_REASON})
        return Request(self.http, data)

    def ask_budget(self, epsilon: float, reason: str) -> Request:
        """Ask for ``epsilon`` more privacy budget, with a reason (a holder of manage_budgets decides)."""
        data = self.http.post("/requests", json={"kind": "budget", "epsilon": epsilon, "reason": reason})
        return Request(self.http, data)

    def wait(self, request_id: int | str, timeout: float | None = None, *, poll: float = 1.0) -> Request:
        """Wait for a request's decision (see ``Request.wait``)."""
        return Request(self.http, self.get(request_id)).wait(timeout, poll=poll)

    def deny(self, request_id: int | str, reason: str) -> Json:
        """Deny with a reason the requester reads."""
        return self.http.post(f"/requests/{segment(request_id)}/deny", json={"reason": reason})

    def withdraw(self, request_id: int | str, *, note: str | None = None) -> Json:
        """Withdraw your own pending request."""
        body = {"note": note} if note is not None else None
        return self.http.post(f"/requests/{segment(request_id)}/withdraw", json=body)
