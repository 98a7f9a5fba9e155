"""Reading an export back: every check a host or a test needs before trusting the files.

:func:`load_export` refuses, with one line naming the file (and the key or memory):

- a missing, unreadable or foreign ``memory_map.json`` (format, version, required keys);
- a design point that does not rebuild, or whose ``digest()``/``id32`` differ from the map's
  (the map was edited, or made by a spykehw whose design point hashes differently);
- memories that differ from what that design point needs (names, order, depth, widths, number
  formats, bus/target, offsets: recomputed by :func:`~spykehw.export.memories.memory_specs`);
- any ``.hex``, ``.bin`` or ``weights.bin`` whose size or sha256 differs from the map (a
  truncated or changed file), or a ``weights.bin`` slice that is not its memory's ``.bin``;
- words that do not decode (bits above the word, nonzero padding lanes), a threshold or exp LUT
  that is not the formats' own (the golden model cannot compute with any other).

:func:`run_golden` then runs the integer golden model with the decoded parameters.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..golden.classifier_int import IntClassifier, IntForward, forward_int
from ..golden.design_point import DesignPoint
from ..golden.errors import SpykehwError
from ..golden.exp_lut import exp_lut
from ..golden.options import NetworkOptions
from ..golden.pipeline import extract_features
from ..rtl.packing import PackingError, rows_to_ints, unpack_rows
from .errors import ExportError
from .memories import MemorySpec, conv_threshold, decode_rows, memory_specs
from .writer import FORMAT, IMAGE_FILE, MAP_FILE, VERSION, align, image_slice

__all__ = ["Export", "load_export", "run_golden"]

REQUIRED = ("format", "version", "design_point", "digest", "id32", "network_options", "weights_bin",
            "memories")
_CHECKED = ("depth", "word_bits", "word_bytes", "lanes", "lane_bits", "number_format", "bus", "target",
            "target_code", "row_words", "row_stride")


@dataclass(frozen=True, eq=False)
class Export:
    """A checked export: the design point and the integer model's parameters."""

    path: Path
    point: DesignPoint
    options: NetworkOptions
    conv_weights: np.ndarray        # (M, C, K, K) int64
    threshold: int
    classifier: IntClassifier
    exp_lut: np.ndarray
    memory_map: dict[str, Any]
    words: dict[str, list[int]]     # per memory its words by address, read from its checked .bin
    image: bytes                    # weights.bin, checked


def _read_map(folder: Path) -> dict[str, Any]:
    path = folder / MAP_FILE
    if not path.is_file():
        raise ExportError(f"{path}: missing (not an export, or an interrupted one)")
    try:
        mm = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ExportError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(mm, dict) or mm.get("format") != FORMAT:
        found = mm.get("format") if isinstance(mm, dict) else type(mm).__name__
        raise ExportError(f"{path}: format: expected {FORMAT!r}, found {found!r}")
    if mm.get("version") != VERSION:
        raise ExportError(f"{path}: version: this spykehw reads {FORMAT} version {VERSION}, found "
                          f"{mm.get('version')!r}")
    missing = [k for k in REQUIRED if k not in mm]
    if missing:
        raise ExportError(f"{path}: missing key {missing[0]!r}")
    return mm


def _design_point(mm: dict[str, Any], path: Path) -> tuple[DesignPoint, NetworkOptions]:
    try:
        point = DesignPoint.from_dict(mm["design_point"])
        options = NetworkOptions.from_dict(mm["network_options"])
    except (SpykehwError, TypeError, ValueError, KeyError) as e:
        raise ExportError(f"{path}: design_point/network_options: {e}") from None
    if point.digest() != mm["digest"]:
        raise ExportError(f"{path}: digest: the design point hashes to {point.digest()}, the map says "
                          f"{mm['digest']!r}")
    if point.id32 != mm["id32"]:
        raise ExportError(f"{path}: id32: the design point's is {point.id32}, the map says {mm['id32']!r}")
    if options.conv != point.conv or options.encoder.steps != point.steps:
        raise ExportError(f"{path}: network_options: conv layer or steps differ from the design point's")
    return point, options


def _check_file(folder: Path, entry: Any, what: str) -> bytes:
    """The bytes of a file the map lists (``file``, ``size``, ``sha256``), checked."""
    try:
        name, size, digest = entry["file"], entry["size"], entry["sha256"]
    except (TypeError, KeyError):
        raise ExportError(f"{folder / MAP_FILE}: {what}: expected file, size and sha256, "
                          f"found {entry!r}") from None
    path = folder / Path(str(name)).name
    if not path.is_file():
        raise ExportError(f"{path}: missing")
    data = path.read_bytes()
    if len(data) != size:
        raise ExportError(f"{path}: {len(data)} bytes, {MAP_FILE} says {size} (truncated or changed)")
    if hashlib.sha256(data).hexdigest() != digest:
        raise ExportError(f"{path}: sha256 differs from {MAP_FILE} (the file was changed)")
    return data


def _check_entry(entry: Any, spec: MemorySpec, path: Path, offset: int) -> None:
    if not isinstance(entry, dict) or entry.get("name") != spec.name:
        found = entry.get("name") if isinstance(entry, dict) else entry
        raise ExportError(f"{path}: memories: expected {spec.name!r} here, found {found!r}")
    want = spec.to_dict()
    for key in _CHECKED:
        if entry.get(key) != want[key]:
            raise ExportError(f"{path}: memory {spec.name}: {key} is {entry.get(key)!r}, the design point "
                              f"needs {want[key]!r}")
    if entry.get("offset") != offset or entry.get("size") != spec.depth * spec.word_bytes:
        raise ExportError(f"{path}: memory {spec.name}: offset/size {entry.get('offset')!r}/"
                          f"{entry.get('size')!r}, expected {offset}/{spec.depth * spec.word_bytes}")


def _memories(folder: Path, mm: dict[str, Any], point: DesignPoint
              ) -> tuple[dict[str, np.ndarray], dict[str, list[int]], bytes]:
    """Check every memory's files and the image; return the lane rows decoded from the .bin
    files, their words and the image."""
    path = folder / MAP_FILE
    specs = memory_specs(point)
    entries = mm["memories"]
    if not isinstance(entries, list) or len(entries) != len(specs):
        raise ExportError(f"{path}: memories: expected {len(specs)} entries "
                          f"({', '.join(s.name for s in specs)})")
    image = _check_file(folder, mm["weights_bin"], IMAGE_FILE)
    rows: dict[str, np.ndarray] = {}
    words: dict[str, list[int]] = {}
    offset = 0
    for spec, entry in zip(specs, entries):
        offset = align(offset)
        _check_entry(entry, spec, path, offset)
        files = entry.get("files") or {}
        _check_file(folder, files.get("hex"), f"memory {spec.name} hex")
        raw = _check_file(folder, files.get("bin"), f"memory {spec.name} bin")
        if files["bin"]["sha256"] != entry.get("sha256"):
            raise ExportError(f"{path}: memory {spec.name}: sha256 differs from its bin file's")
        if image[offset:offset + spec.image_bytes] != image_slice(spec, raw):
            raise ExportError(f"{folder / IMAGE_FILE}: bytes {offset}..{offset + spec.image_bytes - 1} are "
                              f"not {spec.name}.bin")
        data = np.frombuffer(raw, np.uint8).reshape(spec.depth, spec.word_bytes)
        words[spec.name] = rows_to_ints(data)
        try:
            rows[spec.name] = unpack_rows(data, spec.lanes, spec.lane_bits, signed=spec.signed)
        except PackingError as e:
            raise ExportError(f"{folder / files['bin']['file']}: {e}") from None
        offset += spec.image_bytes
    if len(image) != offset:
        raise ExportError(f"{folder / IMAGE_FILE}: {len(image)} bytes, the memories end at {offset}")
    return rows, words, image


def load_export(path: str | Path) -> Export:
    """Read and check an export folder (see the module docstring)."""
    folder = Path(path)
    if not folder.is_dir():
        raise ExportError(f"{folder}: not an export folder")
    mm = _read_map(folder)
    point, options = _design_point(mm, folder / MAP_FILE)
    rows, words, image = _memories(folder, mm, point)
    try:
        dec = decode_rows(point, rows)
    except ExportError:
        raise
    except SpykehwError as e:   # nonzero padding lanes, values outside their format
        raise ExportError(f"{folder}: {e}") from None
    if dec.threshold != conv_threshold(point):
        raise ExportError(f"{folder / 'conv1_threshold.bin'}: {dec.threshold}, the formats give "
                          f"{conv_threshold(point)}")
    if not np.array_equal(dec.exp_lut, exp_lut(point.formats.softmax)):
        raise ExportError(f"{folder / 'exp_lut.bin'}: not the formats' exp LUT")
    return Export(folder, point, options, dec.conv_weights, dec.threshold, dec.classifier, dec.exp_lut, mm,
                  words, image)


def golden_features(export: Export, images: np.ndarray) -> np.ndarray:
    """Pool1 features ``(N, F)`` of u8 images ``(N, 28, 28)``: integer encoder + Conv1 + Pool1."""
    return extract_features(images, export.conv_weights, export.options, export.point.formats).features


def run_golden(export: Export, images: np.ndarray) -> IntForward:
    """The integer golden model with the export's parameters on u8 images: classes, logits,
    softmax words (what the accelerator must output)."""
    return forward_int(export.classifier, golden_features(export, images), keep_hidden=False)
