"""Self-describing test-vector files: the contract between the golden model and the RTL.

One vector file is one ``.npz`` archive (see ``vectors/README.md`` for the full description):

- ``_header``: a uint8 array holding UTF-8 JSON ``{format: "spykehw-vectors", version: 1, kind,
  formats, options, seed, created_by, description, arrays: {name: {dtype, shape}},
  arrays_sha256}`` (``arrays_sha256``: :func:`spykehw.stored.arrays_digest` of the arrays,
  verified on reading; files written before it existed have none);
  ``formats`` is :meth:`NumberFormats.to_dict` of the config the vectors were made with.
- one integer array per name listed in ``arrays``.

A *kind* (``softmax``, later ``conv-infer``, ``conv-learn``, ``classifier``) fixes which arrays a
file holds, their dtypes and their dimensions by symbol (``("N", "C")``: every array's ``N`` is
the same number), and which ``options`` keys it must record. Kinds live in :data:`KINDS`; a new
kind is added with :func:`register_kind` in this module, so the whole contract stays in one
place.

:func:`read_vectors` refuses anything it does not fully understand (not an npz, no header,
another format or version, an unknown kind or number-format key, missing or extra arrays,
dtype or shape different from the header or the kind) with a :class:`VectorError` that names the
file and the problem. A kind may also register a ``check`` (run on every file read): the
meaning of the arrays against the header -- value ranges from the number formats and options,
offsets, counts that must agree (``options.cases`` against the arrays' image count) -- so a file
that a co-simulation would misread or only partly check is refused before it drives anything;
:func:`require`, :func:`check_range` and :func:`check_offsets` are the building blocks. Files are written atomically and deterministically (fixed zip timestamps,
sorted entries), so regenerating an unchanged set gives the same bytes.

This module is used on both sides: by the golden-side generators and tests, and inside cocotb
testbenches (the simulator's embedded Python imports it like any other module).
"""

from __future__ import annotations

import importlib
import io
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ...golden.errors import SpykehwError
from ...golden.files import atomic_write, json_default
from ...golden.formats import FormatError, NumberFormats
from ...golden.options import dotted_keys
from ...golden.stored import arrays_digest

__all__ = [
    "VECTORS_DIR",
    "FORMAT",
    "VERSION",
    "HEADER",
    "VectorError",
    "ArraySpec",
    "KindSpec",
    "KINDS",
    "register_kind",
    "VectorSet",
    "ragged",
    "write_vectors",
    "read_vectors",
    "to_readmemh",
    "require",
    "check_range",
    "check_offsets",
]

VECTORS_DIR = Path(str(resources.files("spykehw.vectors")))
"""The committed vector sets: package data (``vectors/`` in the source tree), so an installed
wheel finds them as an editable install does."""

FORMAT = "spykehw-vectors"
VERSION = 1
HEADER = "_header"
_INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class VectorError(SpykehwError, ValueError):
    """A vector file that cannot be written or read as asked; names the file and the problem."""


@dataclass(frozen=True)
class ArraySpec:
    """One array of a kind: its dtype and its dimensions named by symbol (``("N", "C")``)."""

    dtype: str
    dims: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True)
class KindSpec:
    name: str
    description: str
    arrays: Mapping[str, ArraySpec]
    options: tuple[str, ...] = ()   # keys every file of this kind records in ``options``
    # Checks of the content against the header (ranges, offsets, counts); raises VectorError.
    check: "Callable[[VectorSet], None] | None" = None


def require(cond: Any, vs: "VectorSet", message: str) -> None:
    """Raise :class:`VectorError` naming the file of ``vs`` unless ``cond``."""
    if not cond:
        raise VectorError(f"{vs.path or vs.kind}: {message}")


def check_range(vs: "VectorSet", name: str, lo: int, hi: int, *, column: int | None = None,
                what: str = "") -> None:
    """Every value of array ``name`` (or of one ``column``) is within ``lo..hi``."""
    a = vs[name] if column is None else vs[name][:, column]
    if a.size == 0:
        return
    amin, amax = int(a.min()), int(a.max())
    label = name if column is None else f"{name}[:, {column}]"
    require(lo <= amin and amax <= hi, vs, f"array {label!r}{' (' + what + ')' if what else ''} must "
            f"be within {lo}..{hi}, found {amin}..{amax}")


def check_offsets(vs: "VectorSet", name: str, items: int, rows: int) -> None:
    """CSR offsets: ``items + 1`` values, from 0, non-decreasing, ending at ``rows``."""
    o = vs[name]
    require(o.shape == (items + 1,), vs, f"array {name!r} must have {items + 1} entries (one per "
            f"image + 1), found {o.shape[0]}")
    require(o[0] == 0 and o[-1] == rows and np.all(np.diff(o) >= 0), vs,
            f"array {name!r} must rise from 0 to {rows} (its rows), found {o[0]}..{o[-1]}"
            + ("" if np.all(np.diff(o) >= 0) else ", decreasing"))


KINDS: dict[str, KindSpec] = {}


def register_kind(spec: KindSpec) -> KindSpec:
    """Add a kind to :data:`KINDS` (re-registering an identical spec is a no-op)."""
    for name, a in spec.arrays.items():
        if a.dtype not in _INT_DTYPES:
            raise ValueError(f"kind {spec.name}: array {name}: dtype must be one of {_INT_DTYPES}")
    old = KINDS.get(spec.name)
    if old is not None and old != spec:
        raise ValueError(f"kind {spec.name!r} is already registered with another definition")
    KINDS[spec.name] = spec
    return spec


def _check_softmax(vs: "VectorSet") -> None:
    """Logits within ``options.logit_bits``, classes their argmax, words within the formats."""
    o = vs.options
    N, C = vs["logits"].shape
    require(o["classes"] == C, vs, f"options.classes is {o['classes']!r}, the arrays have {C} columns")
    lb = o["logit_bits"]
    require(isinstance(lb, int) and 1 <= lb <= 62, vs, f"options.logit_bits must be 1..62, found {lb!r}")
    check_range(vs, "logits", -(1 << (lb - 1)), (1 << (lb - 1)) - 1, what=f"{lb}-bit logits")
    check_range(vs, "words", 0, (1 << vs.formats.softmax.softmax_bits) - 1,
                what=f"{vs.formats.softmax.softmax_bits}-bit softmax words")
    if N:
        require(np.array_equal(vs["classes"], np.argmax(vs["logits"], axis=1)), vs,
                "array 'classes' is not the argmax of each row of 'logits'")


register_kind(KindSpec(
    name="softmax",
    description="integer softmax + argmax of one image's logits (golden softmax_int)",
    arrays={
        "logits": ArraySpec("int64", ("N", "C"), "signed logits, each within options.logit_bits"),
        "classes": ArraySpec("int64", ("N",), "argmax of each row of logits, lowest index on ties"),
        "words": ArraySpec("int64", ("N", "C"), "softmax words, unsigned UQ0.softmax_bits"),
    },
    options=("classes", "logit_bits", "random_images", "cases"),
    check=_check_softmax,
))


@dataclass(frozen=True)
class VectorSet:
    """A vector file's content. ``arrays`` are read-only numpy arrays."""

    kind: str
    formats: NumberFormats
    options: Mapping[str, Any]
    seed: int | None
    description: str
    arrays: Mapping[str, np.ndarray]
    created_by: str = ""
    version: int = VERSION
    path: Path | None = field(default=None, compare=False)

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.arrays[name]
        except KeyError:
            raise KeyError(f"{self.path or 'vector set'}: no array {name!r} "
                           f"(arrays: {', '.join(self.arrays)})") from None

    @property
    def name(self) -> str:
        """File name for messages (``fpga-16.npz``), or the kind when not read from a file."""
        return self.path.name if self.path is not None else self.kind

    def differences(self, other: "VectorSet") -> list[str]:
        """What differs from ``other`` apart from ``created_by`` and the path; [] if the same."""
        out = []
        for attr in ("kind", "version", "seed", "description"):
            if getattr(self, attr) != getattr(other, attr):
                out.append(f"{attr}: {getattr(self, attr)!r} != {getattr(other, attr)!r}")
        mine, theirs = dotted_keys(self.formats.to_dict()), dotted_keys(other.formats.to_dict())
        for key in sorted(set(mine) | set(theirs)):
            if mine.get(key) != theirs.get(key):
                out.append(f"formats.{key}: {mine.get(key)!r} != {theirs.get(key)!r}")
        if _canonical(self.options) != _canonical(other.options):
            out.append(f"options: {self.options!r} != {other.options!r}")
        for name in sorted(set(self.arrays) | set(other.arrays)):
            a, b = self.arrays.get(name), other.arrays.get(name)
            if a is None or b is None:
                out.append(f"array {name}: only in {'one' if a is not None else 'the other'} set")
            elif a.dtype != b.dtype or a.shape != b.shape:
                out.append(f"array {name}: {a.dtype}{a.shape} != {b.dtype}{b.shape}")
            elif not np.array_equal(a, b):
                out.append(f"array {name}: {int(np.sum(a != b))} values differ")
        return out


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=json_default)


def _check_against_kind(where: str, spec: KindSpec, arrays: Mapping[str, np.ndarray],
                        options: Mapping[str, Any]) -> None:
    missing = [n for n in spec.arrays if n not in arrays]
    extra = [n for n in arrays if n not in spec.arrays]
    if missing or extra:
        raise VectorError(f"{where}: kind {spec.name!r} needs arrays {sorted(spec.arrays)}; "
                          f"missing {missing}, unexpected {extra}")
    dims: dict[str, tuple[int, str]] = {}
    for name, a in spec.arrays.items():
        arr = arrays[name]
        if arr.dtype != np.dtype(a.dtype):
            raise VectorError(f"{where}: array {name!r} must be {a.dtype}, found {arr.dtype}")
        if arr.ndim != len(a.dims):
            raise VectorError(f"{where}: array {name!r} must have dims {a.dims}, found shape {arr.shape}")
        for sym, n in zip(a.dims, arr.shape):
            if sym in dims and dims[sym][0] != n:
                raise VectorError(f"{where}: dimension {sym} is {dims[sym][0]} in {dims[sym][1]!r} "
                                  f"but {n} in {name!r}")
            dims.setdefault(sym, (n, name))
    missing_opts = [k for k in spec.options if k not in options]
    if missing_opts:
        raise VectorError(f"{where}: kind {spec.name!r} needs options {list(spec.options)}; "
                          f"missing {missing_opts}")


# Kinds defined beside their generators; imported on first use so that reading a file never
# depends on which modules the caller happened to import.
_KIND_MODULES = {
    "conv-infer": "spykehw.sim.conv.vector_gen",
    "classifier": "spykehw.sim.classifier.vector_gen",
    "conv-learn": "spykehw.sim.learning.vector_gen",
}


def _kind(where: str, kind: str) -> KindSpec:
    if kind not in KINDS and kind in _KIND_MODULES:
        importlib.import_module(_KIND_MODULES[kind])
    try:
        return KINDS[kind]
    except KeyError:
        raise VectorError(f"{where}: unknown kind {kind!r} (known: {', '.join(sorted(KINDS))}; "
                          "kinds are registered in spykehw.sim.framework.vectors)") from None


def ragged(rows: Sequence[Any], dtype: Any = np.int16, width: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Per-item row lists packed the way vector files (and :class:`~spykehw.golden.spikes.SpikeEvents`)
    hold them: ``(offsets, packed)``, item ``n``'s rows being ``packed[offsets[n]:offsets[n + 1]]``;
    ``offsets`` int64 ``(N+1,)``, ``packed`` ``(R, width)`` of ``dtype``."""
    parts = [np.asarray(r).reshape(-1, width) for r in rows]
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    packed = np.concatenate(parts) if parts else np.zeros((0, width))
    return offsets, packed.astype(dtype)


def write_vectors(path: str | Path, kind: str, arrays: Mapping[str, Any], *, formats: NumberFormats,
                  options: Mapping[str, Any] | None = None, seed: int | None = None,
                  description: str = "", created_by: str | None = None) -> Path:
    """Write a vector file atomically; arrays are cast to the kind's dtypes when lossless.

    ``created_by`` names the generator (recorded after the spykehw version).

    Raises :class:`VectorError` if the arrays or options do not fit the kind.
    """
    path = Path(path)
    spec = _kind(str(path), kind)
    if not isinstance(formats, NumberFormats):
        raise VectorError(f"{path}: formats must be a NumberFormats, not {type(formats).__name__}")
    options = dict(options or {})
    cast: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        arr = np.asarray(value)
        want = spec.arrays[name].dtype if name in spec.arrays else None
        if arr.dtype.kind not in "iub":
            raise VectorError(f"{path}: array {name!r} must hold integers, found {arr.dtype}")
        if want is not None and arr.dtype != np.dtype(want):
            conv = arr.astype(want)
            if not np.array_equal(conv, arr):
                raise VectorError(f"{path}: array {name!r} does not fit {want} without loss")
            arr = conv
        cast[name] = np.ascontiguousarray(arr)
    _check_against_kind(str(path), spec, cast, options)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "formats": formats.to_dict(),
        "options": options,
        "seed": None if seed is None else int(seed),
        "created_by": _created_by() + (f" ({created_by})" if created_by else ""),
        "description": description,
        "arrays": {n: {"dtype": a.dtype.name, "shape": list(a.shape)} for n, a in sorted(cast.items())},
        "arrays_sha256": arrays_digest(cast),
    }
    entries = {HEADER: np.frombuffer(
        json.dumps(header, sort_keys=True, indent=1, default=json_default).encode(), dtype=np.uint8)}
    entries.update(sorted(cast.items()))
    with atomic_write(path, "wb") as f:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for name, arr in entries.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, arr, allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                z.writestr(info, buf.getvalue())
    return path


def _created_by() -> str:
    try:
        return f"spykehw {metadata.version('spykehw')}"
    except metadata.PackageNotFoundError:
        return "spykehw"


def read_vectors(path: str | Path, *, kind: str | None = None) -> VectorSet:
    """Read and fully validate a vector file; ``kind`` (if given) must match the file's."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise VectorError(f"{where}: no such vector file")
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            raw: dict[str, np.ndarray] = {}
            for entry in names:
                if not entry.endswith(".npy"):
                    raise VectorError(f"{where}: unexpected archive entry {entry!r}")
                with z.open(entry) as f:
                    raw[entry[:-4]] = np.lib.format.read_array(io.BytesIO(f.read()), allow_pickle=False)
    except VectorError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError, zlib.error,
            NotImplementedError) as e:
        # zlib.error: damaged deflate data; NotImplementedError: a damaged compression method.
        raise VectorError(f"{where}: not a vector file (not a readable .npz archive: {e})") from None
    if HEADER not in raw:
        raise VectorError(f"{where}: not a spykehw vector file (no {HEADER} entry)")
    try:
        header = json.loads(raw.pop(HEADER).tobytes().decode())
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
    except (ValueError, UnicodeDecodeError) as e:
        raise VectorError(f"{where}: unreadable header ({e})") from None
    if header.get("format") != FORMAT:
        raise VectorError(f"{where}: format is {header.get('format')!r}, expected {FORMAT!r}")
    if header.get("version") != VERSION:
        raise VectorError(f"{where}: vector format version {header.get('version')!r} is not supported "
                          f"(this reader understands version {VERSION})")
    for key in ("kind", "formats", "options", "seed", "created_by", "description", "arrays"):
        if key not in header:
            raise VectorError(f"{where}: header has no {key!r} entry")
    types = {"kind": str, "formats": dict, "options": dict, "seed": (int, type(None)),
             "created_by": str, "description": str, "arrays": dict}
    for key, t in types.items():
        if not isinstance(header[key], t) or isinstance(header[key], bool):
            raise VectorError(f"{where}: header {key!r} has the wrong type "
                              f"({type(header[key]).__name__})")
    for name, want in header["arrays"].items():
        if not isinstance(want, dict) or not isinstance(want.get("shape", []), list):
            raise VectorError(f"{where}: header arrays.{name} must be {{dtype, shape}}")
    file_kind = header["kind"]
    if kind is not None and file_kind != kind:
        raise VectorError(f"{where}: holds {file_kind!r} vectors, expected {kind!r}")
    spec = _kind(where, file_kind)
    try:
        formats = NumberFormats.from_dict(header["formats"])
    except (FormatError, TypeError, AttributeError, ValueError, SpykehwError) as e:
        raise VectorError(f"{where}: header formats: {e}") from None
    declared = header["arrays"]
    missing = sorted(set(declared) - set(raw))
    extra = sorted(set(raw) - set(declared))
    if missing or extra:
        raise VectorError(f"{where}: arrays do not match the header: missing {missing}, unexpected {extra}")
    for name, arr in raw.items():
        want = declared[name]
        if arr.dtype.name != want.get("dtype") or list(arr.shape) != list(want.get("shape", ())):
            raise VectorError(f"{where}: array {name!r} is {arr.dtype.name}{list(arr.shape)}, "
                              f"the header says {want.get('dtype')}{want.get('shape')}")
        arr.setflags(write=False)
    # The content hash (files written before it existed have none): an edited array is refused
    # even when it is still in range and the zip's CRCs were rewritten.
    if "arrays_sha256" in header and header["arrays_sha256"] != arrays_digest(raw):
        raise VectorError(f"{where}: the arrays do not match the header's arrays_sha256 (the file "
                          "was edited or damaged after it was written)")
    _check_against_kind(where, spec, raw, header["options"])
    vs = VectorSet(kind=file_kind, formats=formats, options=header["options"], seed=header["seed"],
                   description=header["description"], arrays=raw, created_by=header["created_by"],
                   version=header["version"], path=path)
    if spec.check is not None:
        try:
            spec.check(vs)
        except VectorError:
            raise
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as e:
            # A header value of the wrong type or shape (the kind's check could not even apply).
            raise VectorError(f"{where}: header does not describe the arrays ({type(e).__name__}: "
                              f"{e})") from None
    return vs


def to_readmemh(array: Any, width: int) -> str:
    """``$readmemh`` text: one word per line, row-major, two's complement in ``width`` bits.

    Values must fit ``width`` bits as signed or unsigned (``-2**(width-1) .. 2**width - 1``).
    """
    if width < 1:
        raise ValueError(f"width must be >= 1, not {width}")
    arr = np.asarray(array)
    if arr.dtype.kind not in "iub":
        raise VectorError(f"to_readmemh: integers needed, found {arr.dtype}")
    flat = [int(v) for v in arr.reshape(-1)]
    lo, hi = -(1 << (width - 1)), (1 << width) - 1
    digits = (width + 3) // 4
    mask = (1 << width) - 1
    lines = []
    for i, v in enumerate(flat):
        if not lo <= v <= hi:
            raise VectorError(f"to_readmemh: value {v} at flat index {i} does not fit {width} bits")
        lines.append(f"{v & mask:0{digits}x}")
    return "\n".join(lines) + ("\n" if lines else "")
