"""Calls from the Network to its Nodes: only to read a Node's statistics, for the Network's administrators.

Each call presents the node credential that Node made for this Network, goes only to the URL the Node joined
with (checked again: its host must still resolve to public addresses unless private ones are allowed), never
follows a redirect, and is bounded in time and size. Its certificate is verified against the roots the Node gave
at join (``node_ca_pem``) only, when it gave them, else against the public CAs. Search never calls a Node.
"""

from __future__ import annotations

from typing import Any

import httpx

from grid_runtime.core.errors import Unavailable
from grid_runtime.core.settings import NetworkSettings
from grid_runtime.core.tls import certificate_problem, verify_for
from grid_runtime.core.urls import resolves_public

STATISTICS_PATH = "/api/v1/node/statistics"
MAX_ANSWER_BYTES = 64 * 1024


def node_statistics(*, node_url: str, node_credential: str, settings: NetworkSettings,
                    node_ca_pem: str | None = None) -> dict[str, Any]:
    """The Node's statistics as it answers them; ``Unavailable`` (503) if it cannot be reached, its certificate is
    not trusted, or it refuses."""
    if not settings.allow_private_nodes and not resolves_public(node_url):
        raise Unavailable("the Node's host does not resolve to public addresses only; not called")
    try:
        with httpx.Client(timeout=settings.node_timeout_seconds, follow_redirects=False,
                          verify=verify_for(node_ca_pem)) as client, \
                client.stream("GET", node_url + STATISTICS_PATH,
                              headers={"Authorization": f"Bearer {node_credential}"}) as response:
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise Unavailable("the Node's answer is larger than a statistics answer can be")
    except httpx.HTTPError as exc:
        problem = certificate_problem(exc)
        if problem is not None:
            trusted = ("the root certificate(s) it gave at join" if node_ca_pem
                       else "the public CAs (it gave no node_ca_pem at join)")
            raise Unavailable(f"the Node's TLS certificate is not trusted: {problem[:200]}; it was verified against "
                              f"{trusted}", details={"reason": "untrusted_certificate"}) from None
        raise Unavailable(f"the Node could not be reached: {type(exc).__name__}") from None
    if response.is_redirect:
        raise Unavailable("the Node answered with a redirect, which the Network does not follow")
    if not response.is_success:
        raise Unavailable(f"the Node refused to give its statistics (HTTP {response.status_code})",
                          details={"node_status": response.status_code})
    try:
        answer = httpx.Response(200, content=body).json()
    except ValueError:
        raise Unavailable("the Node's answer is not JSON") from None
    if not isinstance(answer, dict):
        raise Unavailable("the Node's answer is not a statistics object")
    return answer


__all__ = ["node_statistics"]
