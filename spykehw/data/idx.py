"""IDX files (the MNIST/EMNIST format): reading with full checks, and atomic writing.

An IDX file is a 4-byte magic ``0x00 0x00 <type> <ndims>``, then ``ndims`` big-endian uint32
dimensions, then exactly ``prod(dims)`` big-endian items. MNIST/EMNIST use type ``0x08``
(unsigned byte): images have magic 2051 (``0x00000803``, 3 dims), labels 2049 (``0x00000801``,
1 dim). Files are usually gzip-compressed; compression is detected from the gzip magic bytes
``1f 8b``, never from the file name (the datasets README warns that names are not to be trusted).

Every problem with a file raises :class:`IdxError` naming the file, what was expected and what
was found, so a mislabelled, truncated or corrupt download is reported before any work starts.
"""

from __future__ import annotations

import gzip as _gzip
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..golden.errors import SpykehwError
from ..output import atomic_write

__all__ = [
    "IdxError", "IdxHeader", "IdxData", "IMAGES_MAGIC", "LABELS_MAGIC", "describe_magic",
    "encode_idx", "read_idx", "read_idx_data", "read_idx_header", "read_content", "write_idx",
]

IMAGES_MAGIC = 2051  # ubyte, 3 dims
LABELS_MAGIC = 2049  # ubyte, 1 dim
_GZIP_MAGIC = b"\x1f\x8b"

# IDX type byte -> big-endian numpy dtype (the format's full type table).
_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_TYPE_OF_DTYPE = {np.dtype(v).newbyteorder("="): k for k, v in _TYPES.items()}
_KIND = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}


class IdxError(SpykehwError):
    """An IDX file is unreadable, corrupt, truncated or not the kind of file that was expected."""


@dataclass(frozen=True)
class IdxHeader:
    """What an IDX header says: ``magic`` (e.g. 2051), item ``dtype`` and ``shape``."""

    magic: int
    dtype: np.dtype
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        """Payload bytes the header promises."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    @property
    def offset(self) -> int:
        """Header length in bytes (where the payload starts)."""
        return 4 + 4 * len(self.shape)


@dataclass(frozen=True)
class IdxData:
    """An IDX file's array plus the SHA-256 of its decompressed content (for provenance)."""

    array: np.ndarray
    magic: int
    sha256: str
    path: Path


def describe_magic(magic: int) -> str:
    """``2049`` -> ``"magic 2049 (labels, 1 dim)"``, for error messages."""
    kind = _KIND.get(magic)
    ndims = magic & 0xFF
    return f"magic {magic}" + (f" ({kind}, {ndims} dim{'s' if ndims != 1 else ''})" if kind else "")


def read_content(path: str | Path, *, limit: int | None = None) -> bytes:
    """The decompressed bytes of ``path`` (gzip detected by magic), or its first ``limit`` bytes."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            if f.read(2) != _GZIP_MAGIC:
                f.seek(0)
                return f.read() if limit is None else f.read(limit)
            f.seek(0)
            if limit is None:
                # One-shot decompression is several times faster than streaming GzipFile.
                return _gzip.decompress(f.read())
            with _gzip.GzipFile(fileobj=f, mode="rb") as g:
                return g.read(limit)
    except (_gzip.BadGzipFile, EOFError, zlib.error) as e:
        # A cut-off stream is EOFError, bad deflate data zlib.error, a bad header/CRC BadGzipFile.
        raise IdxError(f"{path}: corrupt gzip stream: {e}") from None


def _parse_header(path: Path, data: bytes) -> IdxHeader:
    if len(data) < 4:
        raise IdxError(f"{path}: truncated header: expected at least 4 bytes, found {len(data)}")
    if data[0] != 0 or data[1] != 0 or data[2] not in _TYPES or data[3] == 0:
        found = " ".join(f"0x{b:02x}" for b in data[:4])
        raise IdxError(f"{path}: not an IDX file: expected magic 0x00 0x00 <type "
                       f"{'/'.join(f'0x{t:02x}' for t in _TYPES)}> <dims >= 1> "
                       f"(or a gzip stream), found {found}")
    ndims = data[3]
    offset = 4 + 4 * ndims
    if len(data) < offset:
        raise IdxError(f"{path}: truncated header: {ndims} dims need {offset} header bytes, "
                       f"found {len(data)}")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndims, offset=4))
    return IdxHeader(int.from_bytes(data[:4], "big"), np.dtype(_TYPES[data[2]]), shape)


def _check_expected(path: Path, header: IdxHeader, expect_magic: int | None,
                    expect_shape: tuple[int | None, ...] | None) -> None:
    if expect_magic is not None and header.magic != expect_magic:
        raise IdxError(f"{path}: expected IDX {describe_magic(expect_magic)}, "
                       f"found {describe_magic(header.magic)} with shape {header.shape}")
    if expect_shape is not None:
        ok = len(expect_shape) == len(header.shape) and all(
            e is None or e == d for e, d in zip(expect_shape, header.shape))
        if not ok:
            want = "(" + ", ".join("*" if e is None else str(e) for e in expect_shape) + \
                   ("," if len(expect_shape) == 1 else "") + ")"
            raise IdxError(f"{path}: expected shape {want}, found {header.shape}")


def read_idx_header(path: str | Path) -> IdxHeader:
    """Only the header of ``path`` (cheap: reads at most the first 1 KiB of content)."""
    path = Path(path)
    return _parse_header(path, read_content(path, limit=4 + 4 * 255))


def read_idx_data(path: str | Path, *, expect_magic: int | None = None,
                  expect_shape: tuple[int | None, ...] | None = None) -> IdxData:
    """Read and check an IDX file; see :func:`read_idx`. Also returns the content SHA-256."""
    path = Path(path)
    data = read_content(path)
    header = _parse_header(path, data)
    _check_expected(path, header, expect_magic, expect_shape)
    found = len(data) - header.offset
    if found != header.size:
        what = "truncated" if found < header.size else "trailing bytes"
        dims = "x".join(str(d) for d in header.shape)
        unit = f" x {header.dtype.itemsize}" if header.dtype.itemsize > 1 else ""
        raise IdxError(f"{path}: {what}: header says {dims}{unit} = {header.size} bytes of data, "
                       f"found {found}")
    # A native-endian copy: the caller owns an ordinary writable array.
    array = np.frombuffer(data, header.dtype, offset=header.offset).astype(
        header.dtype.newbyteorder("="), copy=True).reshape(header.shape)
    return IdxData(array, header.magic, hashlib.sha256(data).hexdigest(), path)


def read_idx(path: str | Path, *, expect_magic: int | None = None,
             expect_shape: tuple[int | None, ...] | None = None) -> np.ndarray:
    """Read an IDX file (gzip or raw) into a native-endian numpy array.

    Parameters
    ----------
    path
        The file. Gzip compression is detected from the content, not the name.
    expect_magic
        If given (e.g. :data:`IMAGES_MAGIC`), a file with another magic is rejected: this
        catches a labels file given where images were expected.
    expect_shape
        If given, the dimensions must match; ``None`` entries match any size, e.g.
        ``(None, 28, 28)`` for images or ``(n,)`` for the labels of ``n`` images.

    Raises
    ------
    IdxError
        Bad magic, unexpected magic or shape, truncated file, trailing bytes, corrupt gzip.
    """
    return read_idx_data(path, expect_magic=expect_magic, expect_shape=expect_shape).array


def encode_idx(array: np.ndarray) -> bytes:
    """The raw IDX bytes of ``array`` (header + big-endian payload)."""
    array = np.asarray(array)
    dtype = array.dtype.newbyteorder("=") if array.dtype.byteorder not in "=|" else array.dtype
    if dtype not in _TYPE_OF_DTYPE:
        raise ValueError(f"IDX cannot store dtype {array.dtype}; supported: "
                         f"{', '.join(str(d) for d in _TYPE_OF_DTYPE)}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"IDX needs 1..255 dimensions, got {array.ndim}")
    if any(d >= 2 ** 32 for d in array.shape):
        raise ValueError(f"IDX dimensions must fit in uint32, got {array.shape}")
    header = bytes([0, 0, _TYPE_OF_DTYPE[dtype], array.ndim]) + \
        np.asarray(array.shape, ">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype.newbyteorder(">")).tobytes()


def write_idx(path: str | Path, array: np.ndarray, *, gzip: bool = True) -> Path:
    """Write ``array`` as an IDX file, atomically, gzip-compressed unless ``gzip=False``.

    The gzip stream has ``mtime=0`` and no file name, so the same array always gives the same
    bytes (with the same zlib), which keeps the embedded sample's checksums reproducible.
    """
    data = encode_idx(array)
    if gzip:
        data = _gzip.compress(data, compresslevel=9, mtime=0)
    with atomic_write(path, "wb") as f:
        f.write(data)
    return Path(path)
