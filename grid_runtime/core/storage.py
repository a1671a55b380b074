"""The object store: one small interface over fsspec for the Node's blobs (tensors as safetensors).

A URL picks the backend: ``file:///…`` (the default, a folder under the state dir), ``s3://bucket/prefix``,
``gs://bucket/prefix`` or ``az://container/prefix``. The cloud ones need their fsspec driver, installed by
the extras ``gridctl[s3]`` (s3fs), ``gridctl[gcs]`` (gcsfs) and ``gridctl[azure-storage]`` (adlfs); options such
as an S3 ``endpoint_url`` come from ``object_store_options``. Credentials come from the environment the Node
runs in (instance roles), never from the Node's database.

Writes are atomic: bytes go to a temporary object under ``.tmp/`` (the store's staging area) and are then
renamed (moved) to their key, so a reader never sees a half-written blob and a failed write leaves nothing under
the key. The sha256 and size are computed while the bytes stream through, in the same pass as the write. A
process killed mid-write leaves a temporary object, which ``sweep_temporaries`` removes at the next start
(``grid_runtime.node.bootstrap.recover``, which also reconciles the keys with the database's rows). On a local
store, directories are created 0700 and blobs 0600: only the Node's user reads them.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from fsspec.core import url_to_fs

CHUNK_SIZE = 1024 * 1024
_TMP = ".tmp"
_EXTRA_FOR = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure-storage", "abfs": "azure-storage"}


class ObjectStoreError(RuntimeError):
    """The store could not be reached or configured (a missing driver, a bad URL)."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str


class ObjectStore:
    """Blobs under a root URL, addressed by relative keys such as ``tensors/3f2a….safetensors``."""

    def __init__(self, url: str, options: dict[str, Any] | None = None) -> None:
        protocol = url.split("://", 1)[0] if "://" in url else "file"
        opts = dict(options or {})
        if protocol in ("file", "local"):
            opts.setdefault("auto_mkdir", True)
        try:
            self.fs, root = url_to_fs(url, **opts)
        except (ImportError, ValueError) as exc:
            extra = _EXTRA_FOR.get(protocol)
            hint = f"; install it with: pip install 'gridctl[{extra}]'" if extra else ""
            raise ObjectStoreError(f"cannot open the object store {url!r}: {exc}{hint}") from exc
        self.url = url
        self.root = root.rstrip("/")
        self.local = protocol in ("file", "local")
        if self.local:
            os.makedirs(self.root, mode=0o700, exist_ok=True)

    def _path(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"invalid object key {key!r}")
        return f"{self.root}/{key}"

    def put_file(self, key: str, source: Path | str) -> StoredObject:
        """Copy a local file to ``key`` atomically, returning its size and sha256 (computed while copying)."""
        with open(source, "rb") as reader:
            return self.put_stream(key, reader)

    def move_file(self, key: str, source: Path) -> None:
        """Put a local file at ``key`` and remove it from where it was: on a local store on the same filesystem a
        rename (atomic, no copy, no digest: for blobs whose digest nobody records), otherwise ``put_file``."""
        if self.local:
            final = self._path(key)
            os.makedirs(os.path.dirname(final), mode=0o700, exist_ok=True)
            os.chmod(source, 0o600)
            try:
                os.replace(source, final)
                return
            except OSError:  # another filesystem: copied below
                pass
        self.put_file(key, source)
        Path(source).unlink(missing_ok=True)

    def put_stream(self, key: str, reader: IO[bytes]) -> StoredObject:
        """Write everything ``reader`` yields to ``key`` atomically: a temporary object, then a rename."""
        final = self._path(key)
        temporary = self._path(f"{_TMP}/{uuid.uuid4().hex}.part")
        digest = hashlib.sha256()
        size = 0
        if self.local:  # private directories before fsspec would make them with the default mode
            for path in (temporary, final):
                os.makedirs(path.rsplit("/", 1)[0], mode=0o700, exist_ok=True)
        try:
            with self._open_for_write(temporary) as writer:
                while chunk := reader.read(CHUNK_SIZE):
                    digest.update(chunk)
                    size += len(chunk)
                    writer.write(chunk)
            self.fs.mv(temporary, final)
        except BaseException:
            self._remove_quietly(temporary)
            self._remove_quietly(final)
            raise
        return StoredObject(key=key, size=size, sha256=digest.hexdigest())

    def _open_for_write(self, path: str) -> IO[bytes]:
        if self.local:
            return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
        return self.fs.open(path, "wb")

    def open(self, key: str) -> IO[bytes]:
        return self.fs.open(self._path(key), "rb")

    def iter_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The blob's bytes in chunks, for streamed responses (never the whole blob in memory)."""
        with self.open(key) as reader:
            while chunk := reader.read(chunk_size):
                yield chunk

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._path(key)))

    def size(self, key: str) -> int:
        return int(self.fs.size(self._path(key)))

    def delete(self, key: str) -> None:
        """Remove a blob; a missing one is not an error (deletes are retried after partial failures)."""
        self._remove_quietly(self._path(key))

    def delete_prefix(self, prefix: str) -> list[str]:
        """Remove every blob under ``prefix`` (a folder-like key ending in ``/``) and, on a local store, the folder
        itself; returns the keys removed."""
        if not prefix.endswith("/"):
            raise ValueError(f"a prefix to delete must end with '/': {prefix!r}")
        removed = self.keys(prefix)
        for key in removed:
            self.delete(key)
        if self.local:
            import shutil

            shutil.rmtree(self._path(prefix.rstrip("/")), ignore_errors=True)
        return removed

    def keys(self, prefix: str = "") -> list[str]:
        """Every committed key under ``prefix`` (temporary objects excluded), sorted."""
        base = self.root + "/"
        try:
            found = self.fs.find(self._path(prefix) if prefix else self.root)
        except FileNotFoundError:
            return []
        keys = [str(p)[len(base):] if str(p).startswith(base) else str(p) for p in found]
        return sorted(k for k in keys if not k.startswith(_TMP + "/"))

    def pending_temporaries(self) -> list[str]:
        """Temporary objects left behind (there should be none once writes have finished)."""
        base = self.root + "/"
        try:
            return sorted(str(p)[len(base):] for p in self.fs.find(self._path(_TMP)))
        except FileNotFoundError:
            return []

    def sweep_temporaries(self) -> list[str]:
        """Remove every temporary object (left by a write that was killed); returns their keys.

        Only safe while nothing writes to the store: the Node calls it at start, before it serves."""
        swept = self.pending_temporaries()
        for key in swept:
            self._remove_quietly(self._path(key))
        return swept

    def _remove_quietly(self, path: str) -> None:
        try:
            if self.fs.exists(path):
                self.fs.rm(path)
        except FileNotFoundError:
            pass


def open_store(url: str, options: dict[str, Any] | None = None) -> ObjectStore:
    return ObjectStore(url, options)


__all__ = ["CHUNK_SIZE", "ObjectStore", "ObjectStoreError", "StoredObject", "open_store"]
