"""Reading what users upload and turning it into one-tensor safetensors files, without unpickling anything.

Accepted: safetensors (one tensor; the header is checked against the file before anything is kept), ``.npy``
and ``.npz`` (read with pickles off: an object array is refused, never loaded), ``.pt`` through
``torch.load(weights_only=True)``, and CSV (a header row, then numbers only: every column becomes a column of a
float32 tensor, the names kept). Everything is processed from files on disk in chunks, so a large upload never
sits in memory (the exceptions are Fortran-ordered ``.npy`` and ``.pt``, read through a memory map).

Limits: the upload limit applies to what would be *stored*, checked before anything is converted (a few bytes of
``.pt`` can describe a stride-0 view of hundreds of megabytes; a CSV of one-digit values grows fourfold as
float32). A safetensors header is at most ``MAX_HEADER_BYTES`` and may not nest past the JSON parser's depth; a CSV
field is at most the csv module's limit. Each is refused with a 4xx naming the limit, never a 500.
"""

from __future__ import annotations

import csv
import json
import math
import os
import struct
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from grid_runtime.core.errors import InvalidInput, PayloadTooLarge
from grid_runtime.core.lazy import LazyModule
from grid_runtime.core.storage import StoredObject

if TYPE_CHECKING:
    import numpy as np
else:
    np = LazyModule("numpy")  # off the Node's start path: loaded by the first .npy/.npz/.pt/CSV upload

FORMATS = ("safetensors", "npy", "npz", "pt", "csv")
_SUFFIXES = {".safetensors": "safetensors", ".npy": "npy", ".npz": "npz", ".pt": "pt", ".pth": "pt", ".csv": "csv"}
CHUNK = 1024 * 1024
MAX_HEADER_BYTES = 8 * 1024 * 1024  # one tensor's header; the format itself allows 100 MB
MAX_CSV_COLUMNS = 65_536
TENSOR_KEY = "tensor"  # the single entry's name in files this module writes

# canonical dtype name -> (safetensors code, item size in bytes)
DTYPES: dict[str, tuple[str, int]] = {
    "bool": ("BOOL", 1), "uint8": ("U8", 1), "int8": ("I8", 1), "int16": ("I16", 2), "uint16": ("U16", 2),
    "int32": ("I32", 4), "uint32": ("U32", 4), "int64": ("I64", 8), "uint64": ("U64", 8),
    "float16": ("F16", 2), "bfloat16": ("BF16", 2), "float32": ("F32", 4), "float64": ("F64", 8),
    "complex64": ("C64", 8), "float8_e4m3fn": ("F8_E4M3", 1), "float8_e5m2": ("F8_E5M2", 1),
}
_BY_CODE = {code: (name, size) for name, (code, size) in DTYPES.items()}
_NUMPY_NAMES = {"bool", "uint8", "int8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "float16",
                "float32", "float64", "complex64"}


class TensorFormatError(InvalidInput):
    """The upload is not a tensor this Node accepts; the message names the problem."""

    code = "invalid_tensor"


@dataclass
class StagedTensor:
    """A validated one-tensor safetensors file on local disk, ready for the object store."""

    path: Path
    dtype: str
    shape: list[int]
    columns: list[str] | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    stored: StoredObject | None = None
    """Set once the file is in the object store (before the transaction that adds its row)."""


def resolve_format(format: str | None, filename: str | None) -> str:
    """The upload's format: named explicitly, or taken from the file name's suffix."""
    if format:
        fmt = format.lower().lstrip(".")
        fmt = "pt" if fmt == "pth" else fmt
        if fmt not in FORMATS:
            raise TensorFormatError(f"unsupported format {format!r}; accepted: {', '.join(FORMATS)}",
                                    details={"format": format})
        return fmt
    if filename:
        suffix = Path(filename).suffix.lower()
        if suffix in _SUFFIXES:
            return _SUFFIXES[suffix]
        raise TensorFormatError(
            f"cannot tell the format of {filename!r} from its suffix; accepted: "
            f"{', '.join(sorted(_SUFFIXES))} (or pass format=)", details={"filename": filename})
    raise TensorFormatError("say what the upload is: pass format= (" + ", ".join(FORMATS) + ") or filename=")


def stage(source: Path, fmt: str, workdir: Path, *, max_bytes: int) -> StagedTensor:
    """Validate ``source`` in format ``fmt`` and return it as a one-tensor safetensors file in ``workdir``."""
    readers = {"safetensors": _stage_safetensors, "npy": _stage_npy, "npz": _stage_npz, "pt": _stage_pt,
               "csv": _stage_csv}
    return readers[fmt](source, workdir, max_bytes)


# ---------------------------------------------------------------------------------------------- safetensors


def read_safetensors_header(path: Path) -> tuple[str, list[int], dict[str, str]]:
    """Check a safetensors file holding one tensor against its own header; return (dtype, shape, metadata).

    Refused: a header length that does not fit the file, a header that is not a JSON object, more or fewer than
    one tensor, an unknown dtype, a bad shape, data offsets that disagree with shape x item size, and a data
    section that is shorter (truncated) or longer (trailing bytes) than the header says.
    """
    file_size = path.stat().st_size
    with path.open("rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise TensorFormatError(f"not a safetensors file: {file_size} bytes is shorter than the 8-byte header "
                                    "length")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > MAX_HEADER_BYTES:
            raise TensorFormatError(f"safetensors header length {header_len} exceeds this Node's limit of "
                                    f"{MAX_HEADER_BYTES} bytes for a one-tensor header",
                                    details={"header_length": header_len, "max_header_bytes": MAX_HEADER_BYTES})
        if 8 + header_len > file_size:
            raise TensorFormatError(f"safetensors header says it is {header_len} bytes but the file has only "
                                    f"{file_size - 8} bytes after the length field",
                                    details={"header_length": header_len, "file_size": file_size})
        raw = f.read(header_len)
    try:
        header = json.loads(raw.decode("utf-8"))
    except RecursionError:
        # json's parser recurses once per level; a hostile header nests thousands deep.
        raise TensorFormatError("safetensors header nests too deeply (a one-tensor header needs 3 levels)"
                                ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TensorFormatError(f"safetensors header is not valid JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise TensorFormatError("safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise TensorFormatError("safetensors __metadata__ must map strings to strings")
    if len(header) != 1:
        names = ", ".join(sorted(header)[:5])
        raise TensorFormatError(
            f"a tensor upload holds exactly one tensor; this safetensors file holds {len(header)}"
            + (f" ({names})" if names else ""), details={"tensors": len(header)})
    ((name, entry),) = header.items()
    if not isinstance(entry, dict):
        raise TensorFormatError(f"safetensors entry {name!r} is not an object")
    code = entry.get("dtype")
    if code not in _BY_CODE:
        raise TensorFormatError(f"unsupported safetensors dtype {code!r}; accepted: {', '.join(sorted(_BY_CODE))}",
                                details={"dtype": code})
    dtype, itemsize = _BY_CODE[code]
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise TensorFormatError(f"safetensors shape {shape!r} is not a list of non-negative integers")
    offsets = entry.get("data_offsets")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
        raise TensorFormatError(f"safetensors data_offsets {offsets!r} is not a pair of integers")
    begin, end = offsets
    expected = math.prod(shape) * itemsize
    if begin != 0 or end - begin != expected:
        raise TensorFormatError(
            f"safetensors data_offsets [{begin}, {end}] do not match shape {shape} x {itemsize} bytes "
            f"({expected} bytes from offset 0)", details={"data_offsets": offsets, "expected_bytes": expected})
    available = file_size - 8 - header_len
    if available < end:
        raise TensorFormatError(f"safetensors file is truncated: the header promises {end} data bytes, the file "
                                f"has {available}", details={"expected_bytes": end, "available_bytes": available})
    if available > end:
        raise TensorFormatError(f"safetensors file has {available - end} bytes after the tensor data",
                                details={"expected_bytes": end, "available_bytes": available})
    return dtype, list(shape), {str(k): str(v) for k, v in metadata.items()}


def _stage_safetensors(source: Path, workdir: Path, max_bytes: int) -> StagedTensor:
    dtype, shape, metadata = read_safetensors_header(source)
    # Kept byte for byte: what the uploader hashed is what is stored and downloaded.
    return StagedTensor(path=source, dtype=dtype, shape=shape, metadata=metadata)


def check_stored_size(nbytes: int, max_bytes: int | None, what: str = "the tensor") -> None:
    """Refuse (413) a tensor whose stored form would pass the upload limit, before it is written."""
    if max_bytes is not None and nbytes > max_bytes:
        raise PayloadTooLarge(f"{what} would be stored as {nbytes} bytes; this Node stores at most {max_bytes} "
                              "bytes per upload", details={"stored_bytes": nbytes, "max_upload_bytes": max_bytes})


def open_private(path: Path) -> IO[bytes]:
    """A new file only the Node's user may read (0600), for everything an upload leaves on disk."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")


def write_safetensors(dest: Path, *, dtype: str, shape: list[int], chunks: Iterable[bytes],
                      metadata: dict[str, str] | None = None, max_bytes: int | None = None) -> StagedTensor:
    """Write one tensor as safetensors from little-endian C-order ``chunks`` (streamed, never joined).

    With ``max_bytes``, a file that would be larger is refused before a byte is written."""
    code, itemsize = DTYPES[dtype]
    nbytes = math.prod(shape) * itemsize
    header: dict[str, Any] = {TENSOR_KEY: {"dtype": code, "shape": shape, "data_offsets": [0, nbytes]}}
    if metadata:
        header["__metadata__"] = metadata
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the data section starts 8-byte aligned
    check_stored_size(8 + len(encoded) + nbytes, max_bytes)
    written = 0
    with open_private(dest) as out:
        out.write(struct.pack("<Q", len(encoded)))
        out.write(encoded)
        for chunk in chunks:
            written += len(chunk)
            out.write(chunk)
    if written != nbytes:
        raise TensorFormatError(f"tensor data is {written} bytes, expected {nbytes} for shape {shape} {dtype}")
    return StagedTensor(path=dest, dtype=dtype, shape=list(shape), metadata=dict(metadata or {}))


# ---------------------------------------------------------------------------------------------------- numpy


def _numpy_dtype_name(dtype: np.dtype[Any], what: str) -> str:
    if dtype.hasobject:
        raise TensorFormatError(f"the {what} holds Python objects (pickled data), which this Node never loads")
    name = dtype.newbyteorder("=").name if dtype.byteorder not in ("=", "|") else dtype.name
    if dtype.fields is not None or name not in _NUMPY_NAMES:
        raise TensorFormatError(f"the {what} has dtype {dtype.str!r}, which is not a supported numeric dtype; "
                                f"accepted: {', '.join(sorted(_NUMPY_NAMES))}", details={"dtype": dtype.str})
    return name


def _read_raw(path: Path, offset: int, nbytes: int, dtype: np.dtype[Any]) -> Iterator[bytes]:
    """Raw array bytes from a file, made little-endian chunk by chunk."""
    swap = dtype.byteorder == ">" or (dtype.byteorder == "=" and np.little_endian is False)
    step = max(dtype.itemsize, CHUNK - CHUNK % dtype.itemsize)
    with path.open("rb") as f:
        f.seek(offset)
        remaining = nbytes
        while remaining:
            chunk = f.read(min(step, remaining))
            if not chunk:
                raise TensorFormatError(f"the .npy is truncated: {remaining} data bytes missing")
            remaining -= len(chunk)
            yield np.frombuffer(chunk, dtype=dtype).byteswap().tobytes() if swap else chunk


def _c_order_blocks(array: np.ndarray[Any, Any]) -> Iterator[bytes]:
    """A (possibly Fortran-ordered, memory-mapped) array's bytes in C order, a block of rows at a time."""
    little = array.dtype.newbyteorder("<")
    if array.ndim == 0:
        yield np.ascontiguousarray(array, dtype=little).tobytes()
        return
    row_bytes = max(1, array.itemsize * (math.prod(array.shape[1:]) or 1))
    rows = max(1, CHUNK // row_bytes)
    for start in range(0, array.shape[0], rows):
        yield np.ascontiguousarray(array[start:start + rows], dtype=little).tobytes()


def _stage_npy(source: Path, workdir: Path, max_bytes: int, what: str = ".npy") -> StagedTensor:
    try:
        # mmap only parses the header (pickles off; an object dtype cannot be memory-mapped and is refused).
        array = np.load(source, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise TensorFormatError(f"not a valid {what} file: {exc}") from exc
    if not isinstance(array, np.memmap):
        raise TensorFormatError(f"not a valid {what} file")
    dtype = _numpy_dtype_name(array.dtype, what)
    shape = [int(d) for d in array.shape]
    nbytes = int(array.nbytes)
    dest = workdir / "converted.safetensors"
    if array.flags.c_contiguous:
        chunks: Iterable[bytes] = _read_raw(source, int(array.offset), nbytes, array.dtype)
    else:
        chunks = _c_order_blocks(array)
    try:
        return write_safetensors(dest, dtype=dtype, shape=shape, chunks=chunks, max_bytes=max_bytes)
    finally:
        del array


def _stage_npz(source: Path, workdir: Path, max_bytes: int) -> StagedTensor:
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise TensorFormatError(f"not a valid .npz file (not a zip archive): {exc}") from exc
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) != 1 or not members[0].filename.endswith(".npy"):
            names = ", ".join(m.filename for m in members[:5])
            raise TensorFormatError(
                f"a tensor upload holds exactly one array; this .npz holds {len(members)} member(s)"
                + (f" ({names})" if names else ""), details={"members": len(members)})
        extracted = workdir / "member.npy"
        try:
            with archive.open(members[0]) as reader, open_private(extracted) as writer:
                _copy_limited(reader, writer, max_bytes, "the .npz member")
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise TensorFormatError(f"the .npz archive is damaged: {exc}") from exc
    return _stage_npy(extracted, workdir, max_bytes, what=".npz member")


def _copy_limited(reader: IO[bytes], writer: IO[bytes], max_bytes: int, what: str) -> None:
    total = 0
    while chunk := reader.read(CHUNK):
        total += len(chunk)
        if total > max_bytes:
            raise PayloadTooLarge(f"{what} expands past the upload limit of {max_bytes} bytes",
                                  details={"max_upload_bytes": max_bytes})
        writer.write(chunk)


# ---------------------------------------------------------------------------------------------------- torch


def _stage_pt(source: Path, workdir: Path, max_bytes: int) -> StagedTensor:
    try:
        import torch  # heavy: only for .pt uploads
    except ImportError as exc:
        raise TensorFormatError("this Node cannot read .pt files (torch is not installed); upload safetensors, "
                                ".npy or .npz instead") from exc
    import pickle

    def load(mmap: bool) -> Any:
        return torch.load(source, map_location="cpu", weights_only=True, mmap=mmap)

    try:
        try:
            loaded = load(True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            loaded = load(False)  # the legacy (non-zip) format cannot be memory-mapped
    except (pickle.UnpicklingError, RuntimeError, ValueError, EOFError, OSError, AttributeError, KeyError,
            TypeError, zipfile.BadZipFile) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TensorFormatError(f"refused .pt file: torch.load(weights_only=True) failed: {first}") from exc
    if isinstance(loaded, dict):
        tensors = [v for v in loaded.values() if isinstance(v, torch.Tensor)]
        if len(tensors) != 1 or len(loaded) != 1:
            raise TensorFormatError(f"a .pt upload holds one tensor (or a dict of one); this one is a dict of "
                                    f"{len(loaded)} entries")
        loaded = tensors[0]
    if not isinstance(loaded, torch.Tensor):
        raise TensorFormatError(f"a .pt upload holds one tensor; this one holds a {type(loaded).__name__}")
    tensor = loaded.detach()
    if tensor.layout != torch.strided or tensor.is_quantized:
        raise TensorFormatError(f"unsupported tensor layout {tensor.layout} (sparse and quantized tensors are not "
                                "stored); convert it to a dense tensor first")
    dtype = str(tensor.dtype).removeprefix("torch.")
    if dtype not in DTYPES:
        raise TensorFormatError(f"unsupported torch dtype {dtype}; accepted: {', '.join(sorted(DTYPES))}",
                                details={"dtype": dtype})
    # Before .contiguous(): a stride-0 view of a few bytes would expand to its full size in memory here.
    check_stored_size(tensor.numel() * tensor.element_size(), max_bytes, "the .pt tensor")
    tensor = tensor.contiguous()
    flat = tensor.reshape(-1).view(torch.uint8).numpy() if tensor.numel() else np.empty(0, np.uint8)

    def chunks() -> Iterator[bytes]:
        for start in range(0, flat.size, CHUNK):
            yield flat[start:start + CHUNK].tobytes()

    return write_safetensors(workdir / "converted.safetensors", dtype=dtype, shape=list(tensor.shape),
                             chunks=chunks(), max_bytes=max_bytes)


# ------------------------------------------------------------------------------------------------------ CSV


@dataclass
class _Column:
    """Values of one or more CSV columns written to a scratch file of float64 as rows stream by."""

    path: Path
    names: list[str]
    rows: int = 0
    integral: bool = True
    buffer: list[list[float]] = field(default_factory=list)

    max_bytes: int | None = None  # the float32 tensor these rows become may not pass the upload limit

    def add(self, values: list[float], out: IO[bytes]) -> None:
        self.buffer.append(values)
        if len(self.buffer) >= 8192:
            self.flush(out)

    def flush(self, out: IO[bytes]) -> None:
        if self.buffer:
            block = np.asarray(self.buffer, dtype=np.float64)
            if self.integral and not bool(np.all(np.isfinite(block) & (block == np.round(block)))):
                self.integral = False
            out.write(block.tobytes())
            self.rows += len(self.buffer)
            self.buffer.clear()
            check_stored_size(self.rows * len(self.names) * 4, self.max_bytes, "the CSV's tensor")


def _parse_csv(source: Path, workdir: Path, label: str | None,
               max_bytes: int | None = None) -> tuple[_Column, _Column | None]:
    handle = source.open("r", encoding="utf-8-sig", newline="")
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
        except UnicodeDecodeError as exc:
            raise TensorFormatError(f"the CSV is not UTF-8 text: {exc}") from exc
        except csv.Error as exc:  # e.g. a field longer than the csv module's limit (131,072 characters)
            raise TensorFormatError(f"the CSV header is malformed: {exc}",
                                    details={"max_field_chars": csv.field_size_limit()}) from exc
        if not header:
            raise TensorFormatError("the CSV is empty: expected a header row of column names")
        if len(header) > MAX_CSV_COLUMNS:
            raise TensorFormatError(f"the CSV has {len(header)} columns; at most {MAX_CSV_COLUMNS} are accepted",
                                    details={"columns": len(header), "max_columns": MAX_CSV_COLUMNS})
        names = [h.strip() for h in header]
        if any(not n for n in names):
            raise TensorFormatError("the CSV header has an empty column name", details={"columns": names})
        if len(set(names)) != len(names):
            raise TensorFormatError("the CSV header repeats a column name", details={"columns": names})
        label_index: int | None = None
        if label is not None:
            if label not in names:
                raise TensorFormatError(f"the CSV has no label column {label!r}; its columns are: "
                                        f"{', '.join(names)}", details={"columns": names})
            label_index = names.index(label)
            if len(names) < 2:
                raise TensorFormatError("the CSV needs at least one feature column besides the label")
        feature_names = [n for i, n in enumerate(names) if i != label_index]
        features = _Column(workdir / "features.f64", feature_names, max_bytes=max_bytes)
        labels = _Column(workdir / "labels.f64", [label], max_bytes=max_bytes) if label is not None else None
        with open_private(features.path) as fout, (open_private(labels.path) if labels else _null()) as lout:
            try:
                for row in reader:
                    if not row or all(not cell.strip() for cell in row):
                        continue
                    line = reader.line_num
                    if len(row) != len(names):
                        raise TensorFormatError(f"CSV line {line} has {len(row)} fields, the header has "
                                                f"{len(names)}", details={"line": line})
                    values = [_number(cell, line, names[i]) for i, cell in enumerate(row)]
                    if label_index is None:
                        features.add(values, fout)
                    else:
                        assert labels is not None and lout is not None
                        labels.add([values[label_index]], lout)
                        features.add(values[:label_index] + values[label_index + 1:], fout)
            except UnicodeDecodeError as exc:
                raise TensorFormatError(f"the CSV is not UTF-8 text: {exc}") from exc
            except csv.Error as exc:
                raise TensorFormatError(f"the CSV is malformed at line {reader.line_num}: {exc}",
                                        details={"line": reader.line_num,
                                                 "max_field_chars": csv.field_size_limit()}) from exc
            features.flush(fout)
            if labels is not None and lout is not None:
                labels.flush(lout)
    if features.rows == 0:
        raise TensorFormatError("the CSV has a header but no data rows")
    return features, labels


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _number(cell: str, line: int, column: str) -> float:
    text = cell.strip()
    try:
        if not text or "_" in text:
            raise ValueError
        return float(text)
    except ValueError:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise TensorFormatError(f"CSV line {line}, column {column!r}: {shown!r} is not a number (every column "
                                "must be numeric)", details={"line": line, "column": column, "value": shown}
                                ) from None


def _cast_chunks(path: Path, dtype: np.dtype[Any]) -> Iterator[bytes]:
    step = CHUNK - CHUNK % 8
    with path.open("rb") as f:
        while chunk := f.read(step):
            yield np.frombuffer(chunk, dtype="<f8").astype(dtype.newbyteorder("<")).tobytes()


def _column_tensor(column: _Column, dest: Path, *, dtype: str, squeeze: bool) -> StagedTensor:
    shape = [column.rows] if squeeze else [column.rows, len(column.names)]
    staged = write_safetensors(dest, dtype=dtype, shape=shape, chunks=_cast_chunks(column.path, np.dtype(dtype)),
                               metadata={"columns": json.dumps(column.names)}, max_bytes=column.max_bytes)
    staged.columns = list(column.names)
    column.path.unlink(missing_ok=True)
    return staged


def _stage_csv(source: Path, workdir: Path, max_bytes: int) -> StagedTensor:
    features, _ = _parse_csv(source, workdir, None, max_bytes)
    return _column_tensor(features, workdir / "converted.safetensors", dtype="float32", squeeze=False)


def stage_csv_dataset(source: Path, workdir: Path, *, label: str,
                      max_bytes: int | None = None) -> tuple[StagedTensor, StagedTensor]:
    """Split a CSV into ``features`` (float32, rows x other columns) and ``labels`` (one value per row).

    Labels are int64 when every value is a whole number (class indices, as losses expect), float32 otherwise.
    """
    features, labels = _parse_csv(source, workdir, label, max_bytes)
    assert labels is not None
    staged_features = _column_tensor(features, workdir / "features.safetensors", dtype="float32", squeeze=False)
    label_dtype = "int64" if labels.integral else "float32"
    staged_labels = _column_tensor(labels, workdir / "labels.safetensors", dtype=label_dtype, squeeze=True)
    return staged_features, staged_labels
