"""Fingerprints of artifacts for officers: HMAC-SHA256 under a node secret, not plain content hashes.

A plain sha256 of a small artifact (a noisy count, a quantile, a one-weight model) is an oracle: anyone who
sees it can try candidate values until one hashes the same. Keyed with a secret that never leaves the Node,
the fingerprint still lets an officer approve exactly what they inspected (``approve --fingerprint``) and
lets the Node notice an artifact that changed, but it says nothing about the content to whoever lacks the
key. The secret is generated at the first use (owner-only, 0600) in the state directory, like the webhook
secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from pathlib import Path

from grid_runtime.core.security import write_private_file

SECRET_FILE = "fingerprint-secret"  # noqa: S105  (a file name, not a secret)


def secret_path(state_dir: Path) -> Path:
    return state_dir / SECRET_FILE


def node_secret(state_dir: Path) -> bytes:
    """The node's fingerprint secret, generated (owner-only file) if there is none yet."""
    path = secret_path(state_dir)
    if path.exists():
        return path.read_text().strip().encode()
    value = secrets.token_urlsafe(32)
    write_private_file(path, value + "\n")
    return value.encode()


def fingerprint(state_dir: Path, *, target_type: str, sha256: str) -> str:
    """The officer's fingerprint of an artifact (a result or a tensor) whose content hashes to ``sha256``."""
    message = f"{target_type}:{sha256.lower()}".encode()
    return hmac.new(node_secret(state_dir), message, hashlib.sha256).hexdigest()


def dataset_digest(members: Iterable[tuple[str, str]]) -> str:
    """A dataset's content as one sha256: of its members' roles and their tensors' sha256, in role order. A
    dataset whose member tensor is replaced (or which gains or loses a member) gets another digest."""
    content = sorted((role, sha256.lower()) for role, sha256 in members)
    return hashlib.sha256(json.dumps(content, separators=(",", ":")).encode()).hexdigest()


def matches(state_dir: Path, *, target_type: str, sha256: str, claimed: str) -> bool:
    """Constant-time: is ``claimed`` the fingerprint of that artifact?"""
    return hmac.compare_digest(fingerprint(state_dir, target_type=target_type, sha256=sha256), claimed.lower())
