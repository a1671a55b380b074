"""What the Node's and the Network's apps share at the HTTP edge: who is calling (the address behind trusted
proxies, and the key a per-address limit counts it under) and which other origins a browser may call from (CORS).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection

from fastapi import FastAPI
from starlette.requests import Request

ADDRESS_LENGTH = 64
"""Addresses are stored in 64 characters (audit rows, throttles); an IPv6 address takes at most 45."""

IPV6_PREFIX = 64
"""One IPv6 client usually holds a whole /64: per-address limits count the /64, not each address in it."""


def client_address(request: Request, trusted_proxies: Collection[str]) -> str:
    """The caller's address: the peer's, or the ``X-Forwarded-For`` one when the peer is a trusted proxy
    (``trusted_proxies``; none by default, so nobody can write what they like into the audit log or pick the
    address a limit counts against). The right-most address that is not itself a trusted proxy is the one the
    proxy saw."""
    peer = request.client.host if request.client else "unknown"
    if trusted_proxies and peer in trusted_proxies:
        forwarded = request.headers.get("x-forwarded-for", "")
        for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
            if hop not in trusted_proxies:
                return hop[:ADDRESS_LENGTH]
    return peer[:ADDRESS_LENGTH]


def address_key(address: str) -> str:
    """The key per-address limits count under: an IPv4 address itself, an IPv6 address's /64 (an IPv4-mapped
    one as IPv4), anything else (a test client's name) as given."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:ADDRESS_LENGTH]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{parsed}/{IPV6_PREFIX}", strict=False))
    return str(parsed)


def allow_origins(app: FastAPI, origins: Collection[str]) -> None:
    """Let browsers on ``origins`` (an Admin served from another host) call the API: CORS for exactly those
    origins, the methods the API has and the two headers it reads (``Authorization``, ``Content-Type``). None
    listed: no CORS middleware, so a browser refuses every cross-origin call."""
    if not origins:
        return
    from fastapi.middleware.cors import CORSMiddleware

    app.add_middleware(CORSMiddleware, allow_origins=list(origins), allow_methods=["*"],
                       allow_headers=["Authorization", "Content-Type"], expose_headers=["Retry-After"])
