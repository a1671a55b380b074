"""Password hashing (argon2id) and opaque tokens (random, stored as SHA-256, never in clear)."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verifying against this when the account does not exist keeps the response time the same. It is made, not
# computed (hashing at import would add a hash's time to the Node's start): random salt and digest under the
# hasher's own parameters, so verifying against it costs what verifying against a real hash costs.
_DUMMY_HASH = "$argon2id$v=19$m={},t={},p={}${}${}".format(
    _hasher.memory_cost, _hasher.time_cost, _hasher.parallelism,
    *(base64.b64encode(os.urandom(n)).decode().rstrip("=") for n in (_hasher.salt_len, _hasher.hash_len)))

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token(prefix: str) -> tuple[str, str]:
    """A fresh opaque token and the hash to store. Tokens carry 256 bits of randomness."""
    token = f"{prefix}_{secrets.token_urlsafe(32)}"
    return token, hash_token(token)


def hash_token(token: str) -> str:
    # High-entropy tokens need no slow hash: SHA-256 is enough and keeps each request cheap.
    return hashlib.sha256(token.encode()).hexdigest()


def write_private_file(path: Path, content: str) -> None:
    """Write ``content`` readable by the owner only (mode 0600), replacing any previous file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(content)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
