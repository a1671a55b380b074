"""``gridctl.connect``: the SDK's front door."""

from __future__ import annotations

from gridctl.sdk.errors import GridctlError
from gridctl.sdk.node import Node


def connect(url: str, *, email: str | None = None, password: str | None = None, token: str | None = None,
            timeout: float = 30.0, ca_file: str | None = None) -> Node:
    """A client for the Node at ``url``: log in with ``email`` and ``password``, or use ``token``
    (a session or API token). ``ca_file`` pins the Node's own TLS root certificate.

    >>> node = gridctl.connect("http://127.0.0.1:8000", token=os.environ["GRIDCTL_TOKEN"])
    >>> node.users.me()["email"]
    """
    if token and (email or password):
        raise GridctlError("usage", "connect() takes either token=... or email=... and password=..., not both")
    if not token and not (email and password):
        raise GridctlError("usage", "connect() needs token=... or both email=... and password=...")
    node = Node(url, token=token, timeout=timeout, ca_file=ca_file)
    if email and password:
        try:
            node.login(email, password)
        except BaseException:
            node.close()
            raise
    return node
