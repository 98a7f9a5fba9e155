"""The trained-state file: everything a trained SpykeFlow model is, in one checked file.

A state file is a zip archive (readable by ``numpy.load`` as an ``.npz``) with:

``meta.json``
    ``{"format": "spykehw-state", "version": 1, "model", "options", "formats", "provenance",
    "results", "arrays": {name: {"dtype", "shape"}}, "sha256"}``.
``<name>.npy``
    one entry per array listed in ``arrays``: ``conv1_weights``, ``conv1_final_weights``,
    ``snapshots``, ``snapshot_steps``, ``classifier.W2`` .. ``classifier.b3`` (if a classifier
    is stored) and ``classifier_int.<key>`` (quantized integer classifier arrays, if stored).

``sha256`` is the SHA-256 of the canonical JSON of the metadata without ``sha256``
(``sort_keys``, compact separators), followed, for each array in sorted name order, by its
name, a NUL byte and its C-order bytes; dtype and shape are in the metadata and so covered too.
The zip's CRC-32 only protects each entry against itself; the checksum also catches an entry
replaced by another valid one, a metadata edit, or an array of the wrong size. Files are written
atomically (:func:`spykehw.golden.files.atomic_write`), uncompressed (the weights barely compress).

Metadata dicts must be JSON-serialisable: numpy scalars are stored as Python numbers and tuples
come back as lists, so they load back equal to their JSON form.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .classifier_params import ClassifierParams
from .errors import SpykehwError
from .files import atomic_write
from .formats import NumberFormats
from .options import NetworkOptions

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "StateError", "TrainedState", "make_state",
           "save_state", "load_state"]

FORMAT_NAME = "spykehw-state"
FORMAT_VERSION = 1
_META = "meta.json"
_CLS = ("W2", "b2", "W3", "b3")


class StateError(SpykehwError):
    """A state file that cannot be used: damaged, not a state file, or an unknown version."""


@dataclass(frozen=True, eq=False)
class TrainedState:
    """A trained model: Conv1 (weights and their evolution) and the classifier.

    Attributes
    ----------
    model : ``"float"`` or ``"int"``
    options : dict
        :meth:`NetworkOptions.to_dict` of the run.
    formats : dict or None
        :meth:`NumberFormats.to_dict` for the integer model, None for the float one.
    conv1_weights : (M, C, K, K)
        The weights inference uses (float32, or int64 UQ0.B for the integer model).
    conv1_final_weights : (M, C, K, K)
        The weights after the last STDP step (same dtype).
    snapshots : (S, M, C, K, K), snapshot_steps : int64 (S,)
        The weight snapshots and the global step each was taken at.
    classifier : ClassifierParams or None
        The best-validation parameters (float32).
    classifier_int : dict of str to ndarray, or None
        Quantized integer classifier arrays (integer model), keyed by plain names. An empty
        dict is stored as nothing and loads back as None.
    provenance : dict
        :attr:`spykehw.data.Dataset.provenance` of the training data.
    results : dict
        Free-form results (accuracies, epochs, timings).
    """

    model: str
    options: dict[str, Any]
    formats: dict[str, Any] | None
    conv1_weights: np.ndarray
    conv1_final_weights: np.ndarray
    snapshots: np.ndarray
    snapshot_steps: np.ndarray
    classifier: ClassifierParams | None = None
    classifier_int: dict[str, np.ndarray] | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.model not in ("float", "int"):
            raise StateError(f"model: expected 'float' or 'int', found {self.model!r}")
        if (self.formats is None) != (self.model == "float"):
            raise StateError(f"formats: expected {'None' if self.model == 'float' else 'a dict'} "
                             f"for the {self.model} model, found {type(self.formats).__name__}")
        w = self.conv1_weights
        if w.ndim != 4:
            raise StateError(f"conv1_weights: expected (M, C, K, K), found shape {w.shape}")
        want = np.float32 if self.model == "float" else np.int64
        for name in ("conv1_weights", "conv1_final_weights", "snapshots"):
            a = getattr(self, name)
            if a.dtype != want:
                raise StateError(f"{name}: expected {np.dtype(want)} for the {self.model} model, "
                                 f"found {a.dtype}")
        if self.conv1_final_weights.shape != w.shape:
            raise StateError(f"conv1_final_weights: expected shape {w.shape}, found "
                             f"{self.conv1_final_weights.shape}")
        if self.snapshots.shape[1:] != w.shape or self.snapshot_steps.shape != self.snapshots.shape[:1]:
            raise StateError(f"snapshots: expected (S,) + {w.shape} with (S,) steps, found "
                             f"{self.snapshots.shape} and steps {self.snapshot_steps.shape}")
        for k in self.classifier_int or {}:
            if not k or not all(ch.isalnum() or ch == "_" for ch in k):
                raise StateError(f"classifier_int: key {k!r} must be a plain name ([A-Za-z0-9_])")

    def network_options(self) -> NetworkOptions:
        return NetworkOptions.from_dict(self.options)

    def number_formats(self) -> NumberFormats | None:
        return None if self.formats is None else NumberFormats.from_dict(self.formats)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array of the state under its entry name (see the module docstring)."""
        out = {"conv1_weights": self.conv1_weights, "conv1_final_weights": self.conv1_final_weights,
               "snapshots": self.snapshots, "snapshot_steps": self.snapshot_steps}
        if self.classifier is not None:
            out.update({f"classifier.{k}": getattr(self.classifier, k) for k in _CLS})
        for k, a in (self.classifier_int or {}).items():
            out[f"classifier_int.{k}"] = a
        return out


def make_state(trace, options: NetworkOptions, formats: NumberFormats | None, *,
               classifier: ClassifierParams | None = None,
               classifier_int: dict[str, np.ndarray] | None = None,
               provenance: dict[str, Any] | None = None,
               results: dict[str, Any] | None = None) -> TrainedState:
    """A :class:`TrainedState` from a :class:`~spykehw.golden.conv_training.TrainTrace` and the rest."""
    return TrainedState(
        model="float" if formats is None else "int", options=options.to_dict(),
        formats=None if formats is None else formats.to_dict(),
        conv1_weights=trace.weights, conv1_final_weights=trace.final_weights,
        snapshots=trace.snapshots, snapshot_steps=np.asarray(trace.snapshot_steps, np.int64),
        classifier=classifier, classifier_int=classifier_int,
        provenance=dict(provenance or {}), results=dict(results or {}))


# ----- checksum and metadata -----------------------------------------------------------------

def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True).encode()


def _checksum(body: dict[str, Any], arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256(_canonical(body))
    for name in sorted(arrays):
        h.update(name.encode() + b"\0")
        h.update(np.ascontiguousarray(arrays[name]).tobytes())
    return h.hexdigest()


def _json_value(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _plain(d: dict[str, Any] | None, what: str) -> Any:
    """The JSON form of a metadata dict (what will load back)."""
    try:
        return json.loads(json.dumps(d, default=_json_value, allow_nan=True))
    except (TypeError, ValueError) as e:
        raise StateError(f"{what}: cannot be stored as JSON ({e})") from None


# ----- save ---------------------------------------------------------------------------------

def save_state(path: str | Path, state: TrainedState) -> Path:
    """Write ``state`` to ``path`` atomically; returns the path."""
    path = Path(path)
    arrays = state.arrays()
    for name, a in arrays.items():
        if a.dtype.hasobject:
            raise StateError(f"{name}: object arrays cannot be stored")
    body = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "model": state.model,
        "options": _plain(state.options, "options"),
        "formats": _plain(state.formats, "formats"),
        "provenance": _plain(state.provenance, "provenance"),
        "results": _plain(state.results, "results"),
        "arrays": {n: {"dtype": a.dtype.str, "shape": list(a.shape)} for n, a in arrays.items()},
    }
    meta = dict(body, sha256=_checksum(body, arrays))
    with atomic_write(path, "wb") as f:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as zf:
            zf.writestr(_META, json.dumps(meta, indent=1, sort_keys=True, allow_nan=True))
            for name, a in arrays.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.ascontiguousarray(a), allow_pickle=False)
                zf.writestr(name + ".npy", buf.getvalue())
    return path


# ----- load ---------------------------------------------------------------------------------

def _read(zf: zipfile.ZipFile, entry: str, path: Path) -> bytes:
    try:
        return zf.read(entry)
    except KeyError:
        raise StateError(f"{path}: missing entry {entry!r} (incomplete state file)") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise StateError(f"{path}: entry {entry!r} is damaged ({e})") from None


def _parse_meta(raw: bytes, path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(raw.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StateError(f"{path}: {_META} is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise StateError(f"{path}: expected format {FORMAT_NAME!r}, found {found!r}")
    if meta.get("version") != FORMAT_VERSION:
        raise StateError(f"{path}: unsupported {FORMAT_NAME} version {meta.get('version')!r} "
                         f"(this spykehw reads version {FORMAT_VERSION})")
    missing = [k for k in ("model", "options", "formats", "provenance", "results", "arrays",
                           "sha256") if k not in meta]
    if missing:
        raise StateError(f"{path}: {_META} lacks {', '.join(missing)}")
    if not isinstance(meta["arrays"], dict):
        raise StateError(f"{path}: {_META} 'arrays' must be a table")
    return meta


def _load_array(raw: bytes, name: str, spec: Any, path: Path) -> np.ndarray:
    try:
        a = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise StateError(f"{path}: array {name!r} is damaged ({e})") from None
    try:
        want_dtype, want_shape = np.dtype(spec["dtype"]), tuple(spec["shape"])
    except (TypeError, KeyError, ValueError):
        raise StateError(f"{path}: {_META} has a bad entry for array {name!r}: {spec!r}") from None
    if a.dtype != want_dtype or a.shape != want_shape:
        raise StateError(f"{path}: array {name!r}: expected {want_dtype} {want_shape}, found "
                         f"{a.dtype} {a.shape}")
    return a


def load_state(path: str | Path) -> TrainedState:
    """Read and verify a state file (see the module docstring).

    Raises
    ------
    StateError
        Not a zip archive, truncated, an entry damaged or missing, an unknown format or
        version, or a checksum mismatch; the message names the file and the problem.
    FileNotFoundError
        No such file.
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(4)
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        if head == b"PK\x03\x04":
            raise StateError(f"{path}: damaged or truncated state file (zip directory "
                             f"unreadable)") from None
        raise StateError(f"{path}: not a {FORMAT_NAME} file (not a zip archive)") from None
    with zf:
        meta = _parse_meta(_read(zf, _META, path), path)
        names = set(zf.namelist())
        extra = sorted(names - {_META} - {n + ".npy" for n in meta["arrays"]})
        if extra:
            raise StateError(f"{path}: unexpected entries {', '.join(extra)}")
        arrays = {n: _load_array(_read(zf, n + ".npy", path), n, spec, path)
                  for n, spec in meta["arrays"].items()}
    body = {k: v for k, v in meta.items() if k != "sha256"}
    if _checksum(body, arrays) != meta["sha256"]:
        raise StateError(f"{path}: checksum mismatch (content differs from what was saved; "
                         f"the file was damaged or edited)")
    try:
        cls = None
        if any(f"classifier.{k}" in arrays for k in _CLS):
            cls = ClassifierParams(*(arrays[f"classifier.{k}"] for k in _CLS))
        cint = {n.split(".", 1)[1]: a for n, a in arrays.items() if n.startswith("classifier_int.")}
        return TrainedState(
            model=meta["model"], options=meta["options"], formats=meta["formats"],
            conv1_weights=arrays["conv1_weights"],
            conv1_final_weights=arrays["conv1_final_weights"], snapshots=arrays["snapshots"],
            snapshot_steps=arrays["snapshot_steps"], classifier=cls,
            classifier_int=cint or None, provenance=meta["provenance"], results=meta["results"])
    except KeyError as e:
        raise StateError(f"{path}: missing array {e.args[0]!r}") from None
    except SpykehwError as e:  # StateError or ClassifierError from the constructors
        raise StateError(f"{path}: inconsistent content: {e}") from None
