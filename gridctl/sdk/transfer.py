"""Moving tensor bytes: streamed uploads from a file, streamed downloads verified against their sha256.

Neither direction holds the whole file in memory. A download is written to a temporary file beside its
destination, hashed as it arrives, compared with the sha256 the Node sends (``X-Content-SHA256``) and with
the one its metadata lists, and only then renamed into place: a failed or corrupted download leaves nothing at
the destination.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import httpx

from gridctl.sdk.errors import ConnectionFailed, GridctlError
from gridctl.sdk.http import raise_for_error

if TYPE_CHECKING:
    from gridctl.sdk.http import Http

CHUNK = 1024 * 1024
SHA256_HEADER = "X-Content-SHA256"

Progress = Callable[[int, "int | None"], None]
"""Called as bytes move: ``progress(done, total)``; ``total`` is None when the size is unknown."""


class ChecksumMismatch(GridctlError):
    """The downloaded bytes do not hash to the sha256 the Node published; nothing was kept."""

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__("checksum_mismatch", message, details=details)


def _timeout(http: Http) -> httpx.Timeout:
    # Chunks move within the usual timeout, but the Node checks and converts a whole upload before it
    # answers, which takes longer than any one chunk for a large file.
    base = http.client.timeout.read or 30.0
    return httpx.Timeout(base, read=max(base, 600.0))


def _chunks(stream: BinaryIO, total: int, progress: Progress | None) -> Iterator[bytes]:
    done = 0
    if progress:
        progress(0, total)
    while chunk := stream.read(CHUNK):
        done += len(chunk)
        if progress:
            progress(done, total)
        yield chunk


def upload_file(http: Http, path: str | os.PathLike[str], endpoint: str, *, params: Any,
                progress: Progress | None = None) -> Any:
    """POST the file at ``path`` as the raw body of ``endpoint``, streamed; returns the Node's JSON."""
    source = Path(path)
    try:
        size = source.stat().st_size
        stream = source.open("rb")
    except OSError as exc:
        raise GridctlError("usage", f"cannot read {source}: {exc.strerror or exc}") from None
    with stream:
        try:
            response = http.client.post(
                endpoint, params=params, content=_chunks(stream, size, progress), timeout=_timeout(http),
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            )
        except httpx.TransportError as exc:
            raise ConnectionFailed(http.url, str(exc) or type(exc).__name__) from None
    raise_for_error(response)
    return response.json()


def download_file(http: Http, endpoint: str, dest: str | os.PathLike[str], *, expected_sha256: str | None = None,
                  progress: Progress | None = None) -> dict[str, Any]:
    """GET ``endpoint`` into ``dest``, verified; returns ``{"path", "sha256", "size_bytes"}``.

    The bytes go to a temporary file in ``dest``'s folder and are renamed over ``dest`` only when their
    sha256 matches the Node's ``X-Content-SHA256`` header (and ``expected_sha256``, when given). Otherwise
    ``ChecksumMismatch`` is raised and the temporary file is removed.
    """
    target = Path(dest)
    folder = target.parent
    if not folder.is_dir():
        raise GridctlError("usage", f"cannot write {target}: {folder} is not a folder")
    try:
        with http.client.stream("GET", endpoint, timeout=_timeout(http)) as response:
            if not response.is_success:
                response.read()
                raise_for_error(response)
            published = response.headers.get(SHA256_HEADER)
            if not published:
                raise GridctlError("checksum_mismatch", f"the Node sent no {SHA256_HEADER} header; "
                                   "the download cannot be verified and was not kept")
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".part")
            try:
                digest, size = hashlib.sha256(), 0
                with os.fdopen(fd, "wb") as out:
                    if progress:
                        progress(0, total)
                    for chunk in response.iter_bytes(CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                        if progress:
                            progress(size, total)
                    out.flush()
                    os.fsync(out.fileno())
                actual = digest.hexdigest()
                for label, wanted in (("the Node's header", published), ("the tensor's metadata", expected_sha256)):
                    if wanted and wanted.lower() != actual:
                        raise ChecksumMismatch(
                            f"download corrupted: its sha256 is {actual} but {label} says {wanted.lower()}; "
                            f"nothing was written to {target}",
                            details={"expected": wanted.lower(), "actual": actual})
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
    except httpx.TransportError as exc:
        raise ConnectionFailed(http.url, str(exc) or type(exc).__name__) from None
    return {"path": str(target), "sha256": actual, "size_bytes": size}
