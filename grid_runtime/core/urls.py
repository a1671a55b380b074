"""URLs of other servers this one calls (a Node calls its Networks and its webhook; a Network calls its Nodes).

A peer URL is refused (422 ``invalid_input``) unless it is ``https://`` (the operator may allow ``http://``) and
names a public host (the operator may allow private, loopback and link-local addresses and names such as
``localhost`` or ``*.internal``). Before each call the host is resolved again, and every address must be
public unless private ones are allowed (a name that resolved publicly when it was given may not point inside
later). Redirects are never followed: a peer that answers 3xx gets an error, so no redirect leads a call into a
private range.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from grid_runtime.core.errors import InvalidInput

PRIVATE_NAMES = ("localhost", ".localhost", ".local", ".internal", ".localdomain", ".home.arpa")


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def private_host(host: str) -> str | None:
    """What makes ``host`` (a lower-case name or a literal address) private, in words, or ``None`` when it is
    public: a private name (``localhost``, ``*.internal``, one without a dot), or a private, loopback or
    link-local address."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        if host == PRIVATE_NAMES[0] or host.endswith(PRIVATE_NAMES[1:]) or "." not in host:
            return "a private host"
        return None
    return None if is_public(literal) else "a private, loopback or link-local address"


def check_peer_url(url: str, *, field: str, allow_insecure: bool, allow_private: bool,
                   insecure_setting: str, private_setting: str) -> str:
    """``url`` as ``scheme://host[:port]`` (no path, query or credentials), or ``InvalidInput`` naming
    ``field`` and the setting that would allow it."""
    text = url.strip().rstrip("/")
    if text.endswith("/api/v1"):
        text = text[: -len("/api/v1")]
    parts = urlsplit(text)
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise InvalidInput(f"the {field} must be an absolute https:// URL", details={"field": field})
    if parts.username or parts.password or parts.query or parts.fragment or parts.path not in ("", "/"):
        raise InvalidInput(f"the {field} must be scheme://host[:port], without a path, query or credentials",
                           details={"field": field})
    try:
        port = parts.port
    except ValueError:
        raise InvalidInput(f"the {field} has an invalid port", details={"field": field}) from None
    if parts.scheme != "https" and not allow_insecure:
        raise InvalidInput(f"the {field} must use https:// (the operator may allow http:// with {insecure_setting})",
                           details={"field": field})
    if not allow_private and (private := private_host(host)):
        raise InvalidInput(f"the {field} names {private} ({host}); the operator may allow it with {private_setting}",
                           details={"field": field})
    netloc = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{netloc}" + (f":{port}" if port is not None else "")


def resolves_public(url: str) -> bool:
    """Whether every address the URL's host resolves to now is public."""
    parts = urlsplit(url)
    try:
        infos = socket.getaddrinfo(parts.hostname or "", parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    addresses = {ipaddress.ip_address(info[4][0]) for info in infos}
    return bool(addresses) and all(is_public(a) for a in addresses)
