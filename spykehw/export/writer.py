"""Writing an export: per memory ``NAME.hex`` and ``NAME.bin``, ``weights.bin``, ``memory_map.json``.

File rules (the hardware, the host and the tests read the same files):

``NAME.hex``
    ``$readmemh``: one word per line, address order, ``ceil(word_bits / 4)`` lowercase hex digits
    (zero-padded, the full word), lane 0 in the least significant bits.
``NAME.bin``
    raw: each word in ``ceil(word_bits / 8)`` bytes, little-endian (lane 0 in the low bits of the
    first byte), words in address order, nothing else.
``weights.bin``
    one external-memory image: every memory's ``.bin`` in ``memory_map.json`` order, each at an
    offset that is a multiple of :data:`ALIGNMENT` (4 KiB: an AXI burst never crosses a 4 KiB
    boundary, so a memory's start is a burst boundary), zero bytes between. ``W2``'s rows lie
    ``row_stride`` bytes apart (zero bytes after each row when the stride is larger than the
    row: external ``W2``, where the accelerator reads row ``r`` at ``W2_BASE + r * row_stride``).
``memory_map.json``
    written last, so a folder without it is an incomplete export. Its fields are in
    :func:`memory_map`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..output import atomic_write
from ..rtl.packing import PackingError, pack_rows
from .errors import ExportError
from .memories import MemorySpec, memory_rows, memory_specs
from .source import ExportSource

__all__ = ["FORMAT", "VERSION", "ALIGNMENT", "MAP_FILE", "IMAGE_FILE", "hex_text", "align",
           "image_slice", "write_export"]

FORMAT = "spykehw-export"
VERSION = 2
ALIGNMENT = 4096
MAP_FILE = "memory_map.json"
IMAGE_FILE = "weights.bin"

RULES = {
    "word": "lane k of a word in bits k*lane_bits .. k*lane_bits+lane_bits-1 (lane 0 least "
            "significant); signed values two's complement; padding lanes 0",
    "hex": "$readmemh: one word per line in address order, ceil(word_bits/4) lowercase hex digits",
    "bin": "each word in ceil(word_bits/8) bytes, little-endian, address order",
    "weights_bin": f"every memory's .bin in this map's order at its offset (a multiple of "
                   f"{ALIGNMENT} bytes), zero bytes between; a memory with row_stride has row r "
                   f"(row_words words) at offset + r * row_stride",
    "value": "real value = integer / number_format.scale",
}


def align(n: int) -> int:
    return -(-n // ALIGNMENT) * ALIGNMENT


def hex_text(data: np.ndarray, word_bits: int) -> str:
    """``$readmemh`` lines of packed words (:func:`~spykehw.rtl.packing.pack_rows` output)."""
    digits = -(-word_bits // 4)
    return "".join(row[::-1].tobytes().hex()[-digits:] + "\n" for row in np.asarray(data, np.uint8))


def image_slice(spec: MemorySpec, raw: bytes) -> bytes:
    """The bytes of a memory in ``weights.bin``: its ``.bin``, rows spread to ``row_stride``."""
    if spec.image_bytes == len(raw):
        return raw
    row = spec.row_words * spec.word_bytes
    rows = np.frombuffer(raw, np.uint8).reshape(-1, row)
    out = np.zeros((rows.shape[0], spec.row_stride), np.uint8)
    out[:, :row] = rows
    return out.tobytes()


def _sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _write(path: Path, content: bytes) -> dict[str, Any]:
    with atomic_write(path, "wb") as f:
        f.write(content)
    return {"file": path.name, "size": len(content), "sha256": _sha256(content)}


def _packed(spec: MemorySpec, rows: np.ndarray) -> np.ndarray:
    if rows.shape != (spec.depth, spec.lanes):
        raise ExportError(f"{spec.name}: {rows.shape} lane values, the design point needs "
                          f"({spec.depth}, {spec.lanes})")
    try:
        return pack_rows(rows, spec.lane_bits, signed=spec.signed)
    except PackingError as e:
        raise ExportError(f"{spec.name}: {e}") from None


def memory_map(source: ExportSource, entries: list[dict[str, Any]], image: dict[str, Any]) -> dict[str, Any]:
    """The map: format and version; the design point (``DesignPoint.to_dict()``, its
    ``digest()`` and ``id32``, what the accelerator's ID register reports); the network options
    (the encoder stays in software); where the parameters came from; the packing rules; the
    ``weights.bin`` image; per memory its geometry, number format, bus/target, files, offset,
    size and sha256."""
    point = source.point
    return {
        "format": FORMAT,
        "version": VERSION,
        "design_point": point.to_dict(),
        "digest": point.digest(),
        "id32": point.id32,
        "id32_hex": f"0x{point.id32:08x}",
        "network_options": source.options.to_dict(),
        "source": source.provenance,
        "rules": RULES,
        "weights_bin": image,
        "memories": entries,
    }


def write_export(source: ExportSource, out: str | Path) -> dict[str, Any]:
    """Write every memory of ``source`` into ``out`` (see the module docstring); returns the map."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    (out / MAP_FILE).unlink(missing_ok=True)     # an interrupted re-export is not an export
    specs = memory_specs(source.point)
    rows = memory_rows(source.point, source.conv_weights, source.classifier)
    entries: list[dict[str, Any]] = []
    image = bytearray()
    for spec in specs:
        data = _packed(spec, rows[spec.name])
        raw = data.tobytes()
        files = {"hex": _write(out / f"{spec.name}.hex", hex_text(data, spec.word_bits).encode()),
                 "bin": _write(out / f"{spec.name}.bin", raw)}
        offset = align(len(image))
        image += bytes(offset - len(image)) + image_slice(spec, raw)
        entries.append({**spec.to_dict(), "files": files, "offset": offset, "size": len(raw),
                        "sha256": files["bin"]["sha256"]})
    image_entry = {**_write(out / IMAGE_FILE, bytes(image)), "alignment": ALIGNMENT}
    mm = memory_map(source, entries, image_entry)
    with atomic_write(out / MAP_FILE, "w") as f:
        f.write(json.dumps(mm, indent=1) + "\n")
    return mm
