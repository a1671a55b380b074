"""The Node facade: what ``gridctl.connect`` returns, and what every CLI command talks through."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from gridctl.sdk.admin import Audit, Groups, Roles, Tokens, Users
from gridctl.sdk.data import Datasets, Permissions, Requests, SearchResults, Tensors
from gridctl.sdk.errors import NotConfigured
from gridctl.sdk.fl import FLProcesses
from gridctl.sdk.http import Http, segment
from gridctl.sdk.jobs import Job, Jobs, Results
from gridctl.sdk.network import NodeNetworks


class Node:
    """One Node's API. Sub-APIs: ``users``, ``roles``, ``groups``, ``tokens``, ``audit``; data: ``tensors``,
    ``datasets``, ``permissions``, ``requests`` and ``search(...)``; privacy: ``budget()`` and
    ``budget_ledger()``; Networks: ``networks`` (join, list, sync, leave; the Node's statistics); federated
    learning: ``fl`` (processes, checkpoints, client tokens).

    ``Node(url, token=...)`` uses an existing token; ``node.login(email, password)`` gets a session token.
    Usable as a context manager (closes the connection pool).
    """

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 30.0,
                 ca_file: str | None = None) -> None:
        self.http = Http(url, token, timeout=timeout, ca_file=ca_file)
        self.url = self.http.url
        self.users = Users(self.http)
        self.roles = Roles(self.http)
        self.groups = Groups(self.http)
        self.tokens = Tokens(self.http)
        self.audit = Audit(self.http)
        self.tensors = Tensors(self.http)
        self.datasets = Datasets(self.http)
        self.permissions = Permissions(self.http)
        self.requests = Requests(self.http)
        self.jobs = Jobs(self.http)
        self.results = Results(self.http)
        self.networks = NodeNetworks(self.http)
        self.fl = FLProcesses(self.http)

    def __repr__(self) -> str:
        return f"Node({self.url!r})"

    def __enter__(self) -> Node:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def train(self, spec_or_module: Any, **settings: Any) -> Job:
        """Train a model on a dataset you may compute on (``dataset=``, ``features=``, ``labels=``, ``loss=``,
        ``optimizer=``, ``lr=``, ``epochs=``, ``batch_size=``, ``dp=DP(...)``); see ``gridctl.sdk.jobs``."""
        return self.jobs.train(spec_or_module, **settings)

    def search(self, text: str | None = None, **filters: Any) -> SearchResults:
        """Search tensors: ``text`` in names and descriptions, and ``tags`` (all; ``any_tag=True``: any),
        ``dataset``, ``visibility``, ``dtype``, ``shape``, ``sort``, ``limit``, ``offset``. Returns one page
        of ``TensorPointer``s, each with your ``level``; ``.total`` counts every match."""
        return self.tensors.search(text, **filters)

    def budget(self, user: int | str | None = None) -> dict[str, Any]:
        """Your privacy budget (or, with manage_budgets, ``user``'s, by id or email): ``budget_epsilon`` (the
        cap), ``spent_epsilon`` (the Rényi filter's figure, the one enforced), ``simple_sum_epsilon`` (each
        event's own ε added up, for comparison), ``remaining_epsilon`` (the largest single further event the
        filter admits), ``ceiling_epsilon`` (the highest cap ever held, where the Node reports it), ``events``,
        ``delta`` and ``rdp_order``."""
        return self.http.get("/budget" if user is None else f"/budget/users/{segment(user)}")

    def budget_ledger(self, user: int | str | None = None, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """One page (``items``, ``total``) of your privacy events, newest first (``user``: manage_budgets)."""
        path = "/budget/ledger" if user is None else f"/budget/users/{segment(user)}/ledger"
        return self.http.get(path, params={"limit": limit, "offset": offset})

    def health(self) -> dict[str, Any]:
        return self.http.get("/health")

    def login(self, email: str, password: str) -> dict[str, Any]:
        """Log in; later calls use the new session token. Returns ``{token, expires_at, user_id}``."""
        session = self.http.post("/auth/login", json={"email": email, "password": password})
        self.http.set_token(session["token"])
        return session

    def logout(self) -> None:
        """Revoke the token this client uses, on the Node, and forget it."""
        if not self.http.has_token:
            raise NotConfigured("not logged in")
        self.http.post("/auth/logout")
        self.http.set_token(None)

    def close(self) -> None:
        self.http.close()
