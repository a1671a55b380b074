"""Private CAs and Nodes and Networks served over TLS with them, for the tests of pinned trust roots.

``python -m tests.tls CERT KEY node|network`` runs the service's own ``__main__`` (its settings, its uvicorn
options) with uvicorn given the certificate and key: the server a cloud machine's Caddy fronts, with TLS in the
process instead.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.live import OWNER_EMAIL, OWNER_PASSWORD, LiveNode, free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class CA:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def sha256(self) -> str:
        return self.certificate.fingerprint(hashes.SHA256()).hex()

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.pem)

    def issue(self, directory: Path, *, ip: str = "127.0.0.1") -> tuple[Path, Path]:
        """A server certificate for ``ip`` (an IP SAN, as Caddy's internal CA issues) and its key, as files."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ip)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / "server.crt", directory / "server.key"
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return cert_path, key_path

    def leaf_pem(self, directory: Path) -> str:
        """A leaf certificate (not a CA's) issued by this CA, as PEM."""
        cert_path, _ = self.issue(directory)
        return cert_path.read_text()


def make_ca(name: str, *, days: int = 30, expired: bool = False) -> CA:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    start, end = (now - timedelta(days=10), now - timedelta(days=1)) if expired else (now - timedelta(minutes=5),
                                                                                      now + timedelta(days=days))
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return CA(certificate, key)


def _wait_healthy(url: str, verify: ssl.SSLContext, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1, verify=verify).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"not healthy after 120s:\n{log.read_text()[-3000:]}")


def start_tls(kind: str, state_dir: Path, ca: CA, extra_env: dict[str, str] | None = None) -> LiveNode:
    """A Node or a Network (``kind``) over https on 127.0.0.1 with a certificate of ``ca``, its Owner set up and
    logged in (``owner_token``)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    cert, key = ca.issue(state_dir / "tls")
    port = free_port()
    prefix = "GRID_NODE" if kind == "node" else "GRID_NETWORK"
    env = {**os.environ, f"{prefix}_STATE_DIR": str(state_dir), f"{prefix}_PORT": str(port), **(extra_env or {})}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    log = state_dir / f"{kind}.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "tests.tls", str(cert), str(key), kind], env=env,
                                   stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    server = LiveNode(url=f"https://127.0.0.1:{port}", state_dir=state_dir, process=process, env=env)
    verify = ca.context()
    try:
        _wait_healthy(server.url, verify, process, log)
        setup_token = (state_dir / "setup-token").read_text().strip()
        httpx.post(f"{server.api}/setup", json={"setup_token": setup_token, "email": OWNER_EMAIL,
                                                "password": OWNER_PASSWORD}, timeout=60, verify=verify
                   ).raise_for_status()
        answer = httpx.post(f"{server.api}/auth/login", json={"email": OWNER_EMAIL, "password": OWNER_PASSWORD},
                            timeout=60, verify=verify)
        answer.raise_for_status()
        server.owner_token = answer.json()["token"]
    except BaseException:
        server.stop()
        raise
    return server


def _serve() -> None:
    import uvicorn

    cert, key, kind = sys.argv[1:4]
    run = uvicorn.run

    def with_tls(app: object, **options: object) -> None:
        run(app, ssl_certfile=cert, ssl_keyfile=key, **options)  # type: ignore[arg-type]

    uvicorn.run = with_tls
    if kind == "node":
        from grid_runtime.node.__main__ import main
    else:
        from grid_runtime.network.__main__ import main
    main()


if __name__ == "__main__":
    _serve()
