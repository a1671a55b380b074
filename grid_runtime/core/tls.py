"""Pinned trust roots for calls between a Node and a Network (docs/network.md, "Private certificates").

A Node or a Network served with a private CA (Caddy's own, on a cloud deployment without a domain) cannot be
verified against the public CAs. Whoever joins may then give the root(s) the peer's certificate chains to, as PEM
text: ``parse_ca_bundle`` checks it (CERTIFICATE blocks only, CA certificates only, not expired, bounded) and
``pinned_ssl_context`` verifies a peer against exactly those roots, hostname (or IP address) checked, and nothing
else: not the public CAs.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from grid_runtime.core.errors import GridError, InvalidInput

if TYPE_CHECKING:
    from cryptography import x509

MAX_BUNDLE_BYTES = 64 * 1024
MAX_CERTIFICATES = 10
_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_BEGIN = re.compile(r"-----BEGIN [^-\r\n]*-----")


class UntrustedCertificate(GridError):
    """A Node's call to a Network met a certificate that the pinned roots (or the public CAs, when none were given)
    do not verify: nothing was sent past the handshake. 422: what to trust is the caller's to give."""

    code, status = "untrusted_certificate", 422


def parse_ca_bundle(pem: str, field: str) -> list[x509.Certificate]:
    """The CA certificates of ``pem`` (one or more PEM ``CERTIFICATE`` blocks), or ``InvalidInput`` naming
    ``field``: not PEM, another kind of block (a private key is never accepted), a certificate that is not a CA's
    (basicConstraints CA true), expired, more than ``MAX_CERTIFICATES`` or over ``MAX_BUNDLE_BYTES``."""
    from cryptography import x509

    def refuse(problem: str) -> InvalidInput:
        return InvalidInput(f"the {field} {problem}", details={"field": field})

    if len(pem.encode("utf-8", "surrogatepass")) > MAX_BUNDLE_BYTES:
        raise refuse(f"is larger than {MAX_BUNDLE_BYTES // 1024} KiB")
    begins = len(_BEGIN.findall(pem))  # counted first: the block pattern then runs from at most a few starts
    if begins > MAX_CERTIFICATES:
        raise refuse(f"holds {begins} PEM blocks; at most {MAX_CERTIFICATES} are accepted")
    blocks = _BLOCK.findall(pem) if begins else []
    if not blocks or begins != len(blocks):
        raise refuse("is not PEM text of CA certificates (-----BEGIN CERTIFICATE----- blocks)")
    others = sorted({kind for kind, _ in blocks if kind != "CERTIFICATE"})
    if others:
        raise refuse(f"holds a {others[0]} block; only CERTIFICATE blocks are accepted")
    now = datetime.now(UTC)
    certificates = []
    for index, (_, body) in enumerate(blocks, start=1):
        if not body.isascii():
            raise refuse(f"certificate {index} is not a valid X.509 certificate (PEM is ASCII)")
        block = f"-----BEGIN CERTIFICATE-----{body}-----END CERTIFICATE-----\n".encode()
        try:
            certificate = x509.load_pem_x509_certificate(block)
            name = certificate.subject.rfc4514_string()[:120]
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            raise refuse(f"certificate {index} is not a CA certificate (it has no basicConstraints)") from None
        except Exception:  # noqa: BLE001  (whatever the parser refuses: a malformed certificate is the sender's)
            raise refuse(f"certificate {index} is not a valid X.509 certificate") from None
        if not constraints.ca:
            raise refuse(f"certificate {index} ({name}) is not a CA certificate (basicConstraints CA is false)")
        if certificate.not_valid_after_utc <= now:
            raise refuse(f"certificate {index} ({name}) expired on {certificate.not_valid_after_utc:%Y-%m-%d}")
        certificates.append(certificate)
    try:
        pinned_ssl_context(canonical_bundle(certificates))
    except ssl.SSLError as exc:
        raise refuse(f"cannot be used to verify a peer ({exc.reason or exc})") from None
    return certificates


def canonical_bundle(certificates: list[x509.Certificate]) -> str:
    """The certificates as plain PEM, nothing else: what is stored and pinned."""
    from cryptography.hazmat.primitives.serialization import Encoding

    return "".join(c.public_bytes(Encoding.PEM).decode() for c in certificates)


def checked_bundle(pem: str | None, field: str) -> str | None:
    """``pem`` checked (``parse_ca_bundle``) and made canonical; None stays None."""
    return None if pem is None else canonical_bundle(parse_ca_bundle(pem, field))


def fingerprint(pem: str | None) -> str | None:
    """The SHA-256 of each certificate's DER, in hex, joined by commas (one for one certificate); None if unset."""
    if not pem:
        return None
    import base64

    return ",".join(hashlib.sha256(base64.b64decode("".join(body.split()))).hexdigest()
                    for kind, body in _BLOCK.findall(pem) if kind == "CERTIFICATE")


@lru_cache(maxsize=64)
def pinned_ssl_context(pem: str) -> ssl.SSLContext:
    """A client context trusting exactly the certificates of ``pem`` as anchors (never the public CAs), the peer's
    name or IP address checked against its certificate, TLS 1.2 at least."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname on, CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # a pinned intermediate is a trust anchor too
    context.load_verify_locations(cadata=pem)
    return context


def verify_for(pem: str | None) -> ssl.SSLContext | bool:
    """What to give httpx as ``verify``: the pinned roots when given, else the public CAs (True)."""
    return pinned_ssl_context(pem) if pem else True


def certificate_problem(exc: BaseException) -> str | None:
    """Why the peer's certificate was refused, when ``exc`` (an httpx error) comes from a failed verification."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return str(current.verify_message or current.reason or "certificate verify failed")
        if "CERTIFICATE_VERIFY_FAILED" in str(current):
            return "certificate verify failed"
        current = current.__cause__ or current.__context__
    return None


__all__ = ["MAX_BUNDLE_BYTES", "MAX_CERTIFICATES", "UntrustedCertificate", "canonical_bundle", "certificate_problem",
           "checked_bundle", "fingerprint", "parse_ca_bundle", "pinned_ssl_context", "verify_for"]
