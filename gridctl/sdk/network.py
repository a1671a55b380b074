"""The SDK's Network side: ``gridctl.connect_network`` and search across every Node of a Network; and, on a Node,
``node.networks`` (join, list, sync, leave a Network; the Node's statistics).

>>> network = gridctl.connect_network("https://network.example.org", email=..., password=...)
>>> hits = network.search("mnist", tags=["vision"])
>>> node = hits[0].open(token=os.environ["ALPHA_TOKEN"])  # a connection to the Node that holds it
>>> pointer = node.tensors[hits[0].id]
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from gridctl.sdk.errors import GridctlError
from gridctl.sdk.http import Http, segment

Json = dict[str, Any]


@dataclass(frozen=True)
class Hit:
    """One catalogue entry found on a Network: a tensor or dataset, the Node holding it and how fresh it is."""

    node: str
    node_url: str
    kind: str
    id: int
    name: str
    description: str
    tags: list[str]
    shape: list[int] | None
    dtype: str | None
    visibility: str
    created_at: str | None
    last_seen: str | None
    stale: bool

    @classmethod
    def from_json(cls, body: Json) -> Hit:
        fields: dict[str, Any] = {name: body.get(name) for name in cls.__dataclass_fields__}
        return cls(**fields)

    def open(self, *, token: str | None = None, email: str | None = None, password: str | None = None,
             timeout: float = 30.0, ca_file: str | None = None) -> Any:
        """A connection to the Node that holds this (``gridctl.connect`` to ``node_url``): your account there,
        not the Network's, decides what you may do with it."""
        from gridctl.sdk.connect import connect

        return connect(self.node_url, token=token, email=email, password=password, timeout=timeout, ca_file=ca_file)


class NetworkSearchResults(list[Hit]):
    """One page of hits; ``total`` counts every match."""

    def __init__(self, hits: Iterable[Hit], *, total: int, limit: int, offset: int) -> None:
        super().__init__(hits)
        self.total, self.limit, self.offset = total, limit, offset


def _tags(tags: str | Iterable[str] | None) -> list[str] | None:
    if tags is None:
        return None
    return [tags] if isinstance(tags, str) else list(tags)


class Associations:
    """``network.associations``: join requests and associations (``manage_nodes``)."""

    def __init__(self, http: Http) -> None:
        self.http = http

    def list(self, state: str | None = None) -> list[Json]:
        return list(self.http.get("/associations", params={"state": state} if state else None))

    def approve(self, association_id: int, note: str = "") -> Json:
        return dict(self.http.post(f"/associations/{segment(association_id)}/approve", json={"note": note}))

    def deny(self, association_id: int, note: str = "") -> Json:
        return dict(self.http.post(f"/associations/{segment(association_id)}/deny", json={"note": note}))

    def end(self, association_id: int) -> Json:
        return dict(self.http.delete(f"/associations/{segment(association_id)}"))


class Network:
    """One Network's API: ``search``, ``nodes``, ``associations``, ``invite``, ``node_statistics``."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 30.0,
                 ca_file: str | None = None) -> None:
        self.http = Http(url, token, timeout=timeout, ca_file=ca_file)
        self.url = self.http.url
        self.associations = Associations(self.http)

    def __repr__(self) -> str:
        return f"Network({self.url!r})"

    def __enter__(self) -> Network:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def login(self, email: str, password: str) -> Json:
        session = dict(self.http.post("/auth/login", json={"email": email, "password": password}))
        self.http.set_token(str(session["token"]))
        return session

    def search(self, text: str | None = None, *, tags: str | Iterable[str] | None = None, kind: str | None = None,
               node: str | None = None, limit: int = 50, offset: int = 0) -> NetworkSearchResults:
        """Tensors and datasets of every associated Node matching every word of ``text`` and every tag."""
        params = {k: v for k, v in {"text": text, "tag": _tags(tags), "kind": kind, "node": node, "limit": limit,
                                    "offset": offset}.items() if v is not None}
        page = self.http.get("/search", params=params)
        return NetworkSearchResults((Hit.from_json(h) for h in page["items"]), total=int(page["total"]),
                                    limit=int(page["limit"]), offset=int(page["offset"]))

    def nodes(self) -> list[Json]:
        """The associated Nodes: name, URL, entries, when last heard from, stale or not."""
        return list(self.http.get("/nodes"))

    def invite(self, note: str = "") -> Json:
        """A one-time invitation code for a Node's administrator (``manage_nodes``); shown once."""
        return dict(self.http.post("/invitations", json={"note": note}))

    def node_statistics(self, association_id: int) -> Json:
        """A Node's statistics, read by the Network from the Node (``view_statistics``)."""
        return dict(self.http.get(f"/nodes/{segment(association_id)}/statistics"))

    def close(self) -> None:
        self.http.close()


def connect_network(url: str, *, email: str | None = None, password: str | None = None, token: str | None = None,
                    timeout: float = 30.0, ca_file: str | None = None) -> Network:
    """A client for the Network at ``url``: log in with ``email`` and ``password``, or use ``token``."""
    if token and (email or password):
        raise GridctlError("usage", "connect_network() takes either token=... or email=... and password=..., not both")
    if not token and not (email and password):
        raise GridctlError("usage", "connect_network() needs token=... or both email=... and password=...")
    network = Network(url, token=token, timeout=timeout, ca_file=ca_file)
    if email and password:
        try:
            network.login(email, password)
        except BaseException:
            network.close()
            raise
    return network


class NodeNetworks:
    """``node.networks``: this Node's Network associations (``manage_infrastructure``) and its statistics."""

    def __init__(self, http: Http) -> None:
        self.http = http

    def join(self, network_url: str, *, invitation: str | None = None, node_url: str | None = None,
             network_ca_pem: str | None = None, node_ca_pem: str | None = None) -> Json:
        """Ask the Network to associate this Node; with an invitation it is approved at once. ``network_ca_pem``:
        PEM text of the root(s) the Network's certificate chains to (the Node then trusts those only when it calls
        this Network); ``node_ca_pem``: the root of this Node's own certificate, for the Network to verify it."""
        body = {k: v for k, v in {"network_url": network_url, "invitation": invitation, "node_url": node_url,
                                  "network_ca_pem": network_ca_pem, "node_ca_pem": node_ca_pem}.items()
                if v is not None}
        return dict(self.http.post("/network/associations", json=body))

    def list(self) -> list[Json]:
        return list(self.http.get("/network/associations"))

    def sync(self, association_id: int) -> Json:
        """Ask the Network for the association's state now and, once approved, push the whole catalogue."""
        return dict(self.http.post(f"/network/associations/{segment(association_id)}/sync"))

    def leave(self, association_id: int) -> Json:
        return dict(self.http.delete(f"/network/associations/{segment(association_id)}"))

    def statistics(self) -> Json:
        return dict(self.http.get("/node/statistics"))


__all__ = ["Hit", "Network", "NetworkSearchResults", "NodeNetworks", "connect_network"]
