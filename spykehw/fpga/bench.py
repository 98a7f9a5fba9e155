"""Measured cycles and traffic per image from the blocks' benchmark outputs (``--bench FILE``).

The conv core's and the classifier's cycles per image depend on the data (input spikes, active
features), so the figures to trust are the ones their co-simulation benchmarks measure on real
images. Those benchmarks (:mod:`spykehw.sim.conv.bench`, :mod:`spykehw.sim.classifier.bench`)
build and run Verilator models for minutes, far too long to run inside every FPGA study, so
the flow reads the JSON they write (``python -m spykehw.sim.conv.bench --out conv.json``,
``python -m spykehw.sim.classifier.bench --out classifier.json``) instead:

conv (``"layer": "conv1"``)
    ``results.conv1_cycles_per_image["L<parallelism>"]``: measured on ``images`` MNIST test
    images at preset ``preset`` (the harness's cycle counter, partners never stalling). Used for
    a Conv1 study at the same parallelism.
classifier (``"benchmark": "classifier"``)
    ``configs[*]``: ``cycles_per_image`` (steady state, the three stages overlapping) and
    ``bytes_per_image`` measured at ``features``/``hidden``/``classes``/``lanes`` behind a memory
    of ``memory_latency`` cycles, and ``active_features_mean``. Used for the same shape and
    lanes; for the same shape at other lanes, the measured mean active features feed the
    classifier's own timing model instead of the assumed default.

accelerator (``summary.json`` of ``spykehw cosim accelerator``)
    ``busy_cycles_per_image`` (images streamed back to back, random stalls on the buses),
    ``w2_bytes_per_image`` and ``w2_bursts_per_image`` (counted at the AXI4 memory model) for
    the design point ``point_id``. Used for a study of the same design point.

Without a matching entry the blocks fall back to their models (:mod:`spykehw.fpga.blocks`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..golden.errors import SpykehwError
from ..inputs import read_json

__all__ = ["BenchError", "BenchData", "read_bench", "bench_key"]


class BenchError(SpykehwError, ValueError):
    """A ``--bench`` file that is not a benchmark output this module knows."""


@dataclass(frozen=True)
class BenchData:
    """Benchmark outputs by kind: ``conv`` and ``classifier`` lists of ``(file, document)``."""

    conv: tuple[tuple[str, dict], ...] = ()
    classifier: tuple[tuple[str, dict], ...] = ()
    files: tuple[str, ...] = field(default=())
    accelerator: tuple[tuple[str, dict], ...] = ()

    def accelerator_entry(self, point_id: int) -> tuple[dict, str] | None:
        """The co-simulation summary of the design point ``point_id`` (latest file first)."""
        for path, doc in reversed(self.accelerator):
            if doc.get("point_id") == point_id:
                return doc, path
        return None

    def conv_cycles(self, parallelism: int, preset: str, *, spram: bool = False) -> tuple[float, str] | None:
        """Measured Conv1 cycles per image at ``parallelism`` (latest file first); with ``spram``
        of the UP5K core (``--potentials spram``, key ``L<n>-spram``)."""
        for path, doc in reversed(self.conv):
            per_l = (doc.get("results") or {}).get("conv1_cycles_per_image") or {}
            value = per_l.get(f"L{parallelism}" + ("-spram" if spram else ""))
            if value is None:
                continue
            note = "" if doc.get("preset") == preset else \
                f"; measured at preset {doc.get('preset')}, this study is {preset}"
            return float(value), (f"measured: {path} (spykehw.sim.conv.bench, {doc.get('images')} MNIST "
                                  f"test images, Verilator co-simulation, harness cycle counter{note})")
        return None

    def classifier_entry(self, features: int, hidden: int, classes: int,
                   lanes: int) -> tuple[dict | None, dict | None, str]:
        """``(exact, same_shape, path)``: the benchmark entry at these lanes, or else one of
        the same shape (for its measured active features)."""
        same = None
        for path, doc in reversed(self.classifier):
            for c in doc.get("configs", []):
                if (c.get("features"), c.get("hidden"), c.get("classes")) != (features, hidden, classes):
                    continue
                if c.get("lanes") == lanes:
                    return c, c, path
                same = same or (c, path)
        return (None, same[0], same[1]) if same else (None, None, "")


def read_bench(paths: list[str | Path]) -> BenchData:
    conv, cls, acc = [], [], []
    for p in paths:
        p = Path(p)
        doc = read_json(p, "benchmark JSON", BenchError, table=False)
        if isinstance(doc, dict) and doc.get("layer") == "conv1" and "results" in doc:
            conv.append((str(p), doc))
        elif isinstance(doc, dict) and doc.get("benchmark") == "classifier":
            cls.append((str(p), doc))
        elif isinstance(doc, dict) and {"point_id", "busy_cycles_per_image", "frames_sent"} <= set(doc):
            acc.append((str(p), doc))
        else:
            raise BenchError(f"{p}: expected the JSON of python -m spykehw.sim.conv.bench or "
                             "spykehw.sim.classifier.bench (--out FILE), or the summary.json of "
                             "spykehw cosim accelerator")
    return BenchData(tuple(conv), tuple(cls), tuple(str(p) for p in paths), tuple(acc))


def bench_key(data: BenchData | None) -> Any:
    """What a sweep key needs to know about the benchmark files: their contents."""
    if data is None:
        return None
    return {"conv": [d for _, d in data.conv], "classifier": [d for _, d in data.classifier],
            "accelerator": [d for _, d in data.accelerator]}
