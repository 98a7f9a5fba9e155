"""What a host driver does with an export: which words go through the accelerator's weight
window, and which memory image its AXI4 master reads.

Why here, beside the loader, with numpy only: a host program (or the co-simulation, which plays
the host) needs nothing but the checked files; the register writes themselves are the
accelerator's business (:func:`spykehw.sim.accelerator.vectors.weight_writes` turns these words
into AXI4-Lite writes through the window ``WSEL``/``WADDR``/``WDATA``).
"""

from __future__ import annotations

from .loader import Export

__all__ = ["WINDOW_TARGETS", "window_words", "external_memory"]

WINDOW_TARGETS = {"conv1_weights": "conv", "W2": "W2", "b2": "b2", "W3": "W3", "b3": "b3"}
"""Export memory name -> the accelerator's weight-window target (``W2`` only when on chip)."""


def window_words(export: Export) -> dict[str, list[int]]:
    """``{target: words by address}``: what the host writes through the weight window, read
    from the export's ``.bin`` files (``W2`` only for an on-chip design point)."""
    on_chip = export.point.weights == "on-chip"
    return {target: list(export.words[name]) for name, target in WINDOW_TARGETS.items()
            if name != "W2" or on_chip}


def external_memory(export: Export) -> tuple[bytes, int]:
    """``(weights.bin, offset of W2 in it)``: load the image at a base address ``A`` of the
    memory the accelerator's AXI4 master reads and write ``W2_BASE = A + offset``."""
    w2 = next(m for m in export.memory_map["memories"] if m["name"] == "W2")
    return export.image, int(w2["offset"])
