"""Upload and download of a 1 GiB tensor through a real Node's HTTP API, beside a plain file copy.

Starts a Node (uvicorn in a subprocess, SQLite and the local object store in a temporary directory), writes a
1 GiB float32 tensor as safetensors, uploads it streamed from the file with httpx, downloads it streamed to a
file (checking the sha256 header), and copies the same file with shutil for comparison. Samples the server
process's resident memory every 50 ms and reports its peak (and the kernel's VmHWM): streaming keeps it far
below the tensor's size.

    python bench/transfer.py [--gib 1.0]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.live import start_live_node  # noqa: E402

CHUNK = 1024 * 1024
RSS_LIMIT_MB = 300


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class PeakRss:
    """Samples a process's VmRSS; the kernel's VmHWM is read at the end as a cross-check."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, _status_kb(self.pid, "VmRSS"))
            time.sleep(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def write_tensor(path: Path, nbytes: int) -> str:
    """A float32 vector of ``nbytes`` as safetensors, written in chunks; returns its sha256."""
    count = nbytes // 4
    header = json.dumps({"x": {"dtype": "F32", "shape": [count], "data_offsets": [0, count * 4]}}).encode()
    header += b" " * (-len(header) % 8)
    digest = hashlib.sha256()
    block = bytes(range(256)) * (CHUNK // 256)
    with path.open("wb") as out:
        for piece in (struct.pack("<Q", len(header)), header):
            out.write(piece)
            digest.update(piece)
        remaining = count * 4
        while remaining:
            piece = block[:min(CHUNK, remaining)]
            out.write(piece)
            digest.update(piece)
            remaining -= len(piece)
    return digest.hexdigest()


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        state = root / "state"
        state.mkdir()
        node = start_live_node(state, {"GRID_NODE_MAX_UPLOAD_BYTES": str(4 * 1024**3)})
        try:
            source = root / "tensor.safetensors"
            sha = write_tensor(source, int(args.gib * 1024**3))
            size = source.stat().st_size
            mb = size / 1e6
            headers = {"Authorization": f"Bearer {node.owner_token}"}
            idle_kb = _status_kb(node.process.pid, "VmRSS")

            start = time.perf_counter()
            shutil.copyfile(source, root / "copy.safetensors")
            copy_s = time.perf_counter() - start
            (root / "copy.safetensors").unlink()

            with httpx.Client(timeout=600) as client, PeakRss(node.process.pid) as rss:
                start = time.perf_counter()
                # public: the Owner's own private upload would default to search only (domain guide)
                params = {"name": "big", "format": "safetensors", "visibility": "public"}
                response = client.post(f"{node.api}/tensors", params=params,
                                       headers={**headers, "Content-Length": str(size)},
                                       content=_file_chunks(source))
                upload_s = time.perf_counter() - start
                response.raise_for_status()
                created = response.json()
                assert created["sha256"] == sha, "the Node's sha256 differs from the file's"

                start = time.perf_counter()
                digest = hashlib.sha256()
                with client.stream("GET", f"{node.api}/tensors/{created['id']}/data", headers=headers) as stream:
                    stream.raise_for_status()
                    with (root / "downloaded.safetensors").open("wb") as out:
                        for chunk in stream.iter_bytes(CHUNK):
                            digest.update(chunk)
                            out.write(chunk)
                    header_sha = stream.headers["x-content-sha256"]
                download_s = time.perf_counter() - start
            assert digest.hexdigest() == header_sha == sha, "downloaded bytes do not match"
            hwm_kb = _status_kb(node.process.pid, "VmHWM")
        finally:
            node.stop()
    print(f"tensor: {size / 1024**3:.2f} GiB float32 safetensors ({size:,} bytes)")
    print(f"  plain file copy   {mb / copy_s:8.0f} MB/s  ({copy_s:.2f} s)")
    print(f"  upload (HTTP)     {mb / upload_s:8.0f} MB/s  ({upload_s:.2f} s; {copy_s / upload_s:.2f}x the copy's "
          "speed)")
    print(f"  download (HTTP)   {mb / download_s:8.0f} MB/s  ({download_s:.2f} s; {copy_s / download_s:.2f}x the "
          "copy's speed)")
    print(f"  server RSS: idle {idle_kb / 1024:.0f} MB, peak sampled {rss.peak_kb / 1024:.0f} MB, VmHWM "
          f"{hwm_kb / 1024:.0f} MB (limit {RSS_LIMIT_MB} MB)")
    if hwm_kb / 1024 >= RSS_LIMIT_MB:
        raise SystemExit(f"server peak RSS {hwm_kb / 1024:.0f} MB is over {RSS_LIMIT_MB} MB")


if __name__ == "__main__":
    main()
