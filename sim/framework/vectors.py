"""Self-describing test-vector files: the contract between the golden model and the RTL.

One vector file is one ``.npz`` archive (see ``vectors/README.md`` for the full description):

- ``_header``: a uint8 array holding UTF-8 JSON ``{format: "spykehw-vectors", version: 1, kind,
  formats, options, seed, created_by, description, arrays: {name: {dtype, shape}}}``;
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
file and the problem. Files are written atomically and deterministically (fixed zip timestamps,
sorted entries), so regenerating an unchanged set gives the same bytes.

This module is used on both sides: by the golden-side generators and tests, and inside cocotb
testbenches (the simulator's embedded Python imports it like any other module).
"""

from __future__ import annotations

import importlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ...golden.errors import SpykehwError
from ...golden.files import atomic_write, json_default
from ...golden.formats import FormatError, NumberFormats

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
    "write_vectors",
    "read_vectors",
    "to_readmemh",
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


register_kind(KindSpec(
    name="softmax",
    description="integer softmax + argmax of one image's logits (golden softmax_int)",
    arrays={
        "logits": ArraySpec("int64", ("N", "C"), "signed logits, each within options.logit_bits"),
        "classes": ArraySpec("int64", ("N",), "argmax of each row of logits, lowest index on ties"),
        "words": ArraySpec("int64", ("N", "C"), "softmax words, unsigned UQ0.softmax_bits"),
    },
    options=("classes", "logit_bits", "random_images", "cases"),
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
        mine, theirs = _flat(self.formats.to_dict()), _flat(other.formats.to_dict())
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


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
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
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as e:
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
    file_kind = header["kind"]
    if kind is not None and file_kind != kind:
        raise VectorError(f"{where}: holds {file_kind!r} vectors, expected {kind!r}")
    spec = _kind(where, file_kind)
    try:
        formats = NumberFormats.from_dict(header["formats"])
    except (FormatError, TypeError, AttributeError) as e:
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
    _check_against_kind(where, spec, raw, header["options"])
    return VectorSet(kind=file_kind, formats=formats, options=header["options"], seed=header["seed"],
                     description=header["description"], arrays=raw, created_by=header["created_by"],
                     version=header["version"], path=path)


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
