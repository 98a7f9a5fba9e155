"""The accelerator co-simulated from a weight export (``spykehw cosim accelerator``).

Why on top (not in ``sim/``): the weights reach the simulated chip only as a host would load
them, from the files of a ``spykehw export`` folder (:mod:`spykehw.export.host`): the weight
window's words from each memory's checked ``.bin``, and for external ``W2`` the whole
``weights.bin`` as the memory the AXI4 master reads. The golden expectations come from the
parameters the loader decoded from the same files. Without an export folder the command trains a
network (cached: :func:`~spykehw.sim.classifier.vector_gen.real_classifier`) and exports it into
the run folder first, so both paths go through the files.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from .data import load_dataset
from .errors import SpykehwError
from .export import Export, ExportSource, write_export
from .export.host import external_memory, window_words
from .golden.design_point import DesignPoint
from .golden.pipeline import encode_events

__all__ = ["AcceleratorRunError", "train_and_export", "cosim_export"]


class AcceleratorRunError(SpykehwError, ValueError):
    """An export that does not fit the requested run (names what differs)."""


def train_and_export(dataset: str, point: DesignPoint, out: Path, *, epochs: int, data_dir=None) -> Path:
    """Train Conv1 and a classifier of ``point``'s hidden size on ``dataset`` (cached) and export
    them for ``point`` into ``out``; returns ``out``."""
    from .sim.classifier.vector_gen import (
        real_classifier,  # hw extra: the sim package needs amaranth
    )

    rc = real_classifier(dataset, point.formats, hidden=point.hidden, epochs=epochs, data_dir=data_dir)
    if rc.q.classes != point.classes:
        point = point.replace(classes=rc.q.classes)
    source = ExportSource(point, rc.options, np.asarray(rc.conv_weights, np.int64), rc.q,
                          {"state": f"spykehw cosim accelerator: trained on {dataset} (cached)",
                           "conv1_weights": "last snapshot of Conv1 STDP (integer model)",
                           "classifier": f"float classifier ({epochs} epochs) quantized with "
                                         f"'{point.formats.name}'",
                           "training": rc.settings})
    write_export(source, out)
    return out


def weight_image(export: Export):
    """The :class:`~spykehw.sim.accelerator.vectors.WeightImage` a host loads from ``export``
    (external ``W2``: ``weights.bin`` at address 0, so ``W2_BASE`` is ``W2``'s offset)."""
    from .sim.accelerator.vectors import WeightImage  # hw extra: amaranth

    if export.point.weights != "external":
        return WeightImage(window_words(export))
    image, w2_offset = external_memory(export)
    return WeightImage(window_words(export), image, w2_offset)


def cosim_export(export: Export, dataset: str, images: int, *, simulator: str, folder: Path,
                 stall: float = 0.1, chunk: int = 0, malformed: bool = False, optimize: bool = True,
                 data_dir=None, progress=None, preloaded: bool = False, waves: bool = False) -> dict[str, Any]:
    """The first ``images`` test images of ``dataset`` (encoded with the export's options)
    through the accelerator of ``export``'s design point, loaded from its files (``preloaded``:
    its memories initialised with them at generation, as ``verilog accelerator --export``
    builds it, instead of writes through the weight window); a summary with mismatches, cycles
    per image, simulated images/s, accuracy and W2 traffic. ``waves``: each simulator run's
    waveform (FST, ``waveforms`` in the summary: one per ``chunk`` of images)."""
    from .sim.accelerator.runner import (  # hw extra: amaranth, cocotb
        build_accelerator,
        cosim_images,
    )
    from .sim.accelerator.vectors import AcceleratorParams

    point = export.point
    ds = load_dataset(dataset, data_dir)
    if len(ds.classes) != point.classes:
        raise AcceleratorRunError(f"{export.path}: the design point has {point.classes} classes, {dataset} "
                                  f"has {len(ds.classes)}")
    n = min(images, len(ds.test_labels))
    t0 = time.perf_counter()
    spikes = encode_events(ds.test_images[:n], export.options.encoder, point.formats)
    events = [spikes.image(i) for i in range(n)]
    t_encode = time.perf_counter() - t0
    t0 = time.perf_counter()
    image = weight_image(export)
    cosim = build_accelerator(point, simulator, folder / "rtl", optimize=optimize, waves=waves,
                              weights=image.words if preloaded else None)
    t_build = time.perf_counter() - t0
    params = AcceleratorParams(export.conv_weights, export.classifier)
    summary = cosim_images(cosim, params, events, folder / "runs", weights=image, stall=stall,
                           chunk=chunk, malformed=malformed, progress=progress, preloaded=preloaded)
    rtl, golden = np.asarray(summary.pop("rtl_classes")), np.asarray(summary.pop("golden_classes"))
    labels = np.asarray(ds.test_labels[:n])
    summary.update({
        "dataset": dataset, "images": n, "export": str(export.path), "preloaded": preloaded, "formats": point.formats.name,
        "design_point": point.to_dict(), "shape": [point.features, point.hidden, point.classes],
        "seconds": {"encode": round(t_encode, 1), "build": round(t_build, 1)},
        "rtl_class_equals_golden": int(np.sum(rtl == golden)) if len(rtl) == len(golden) else 0,
        "rtl_accuracy": float(np.mean(rtl == labels)) if len(rtl) == n else None,
        "golden_accuracy": float(np.mean(golden == labels)) if len(golden) == n else None,
    })
    return summary

