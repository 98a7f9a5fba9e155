"""Long co-simulation runs of the accelerator on real test images (``spykehw cosim accelerator``).

Why its own module: a real run needs a trained network (Conv1 STDP + a classifier trained on the
integer pipeline's features, cached by :func:`~spykehw.sim.classifier.vector_gen.real_classifier`),
the images' integer encoding as event frames, and one simulator run for all images (the weights
are loaded once over AXI4-Lite, which is the slow part of a short run).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ...golden.design_point import DesignPoint
from ...golden.formats import NumberFormats
from ...golden.options import EncoderOptions
from ...golden.pipeline import encode_events
from ..classifier.vector_gen import real_classifier
from .runner import build_accelerator, cosim_images
from .vectors import AcceleratorParams

__all__ = ["real_point_and_params", "long_run"]


def real_point_and_params(dataset: str, formats: NumberFormats, *, hidden: int, epochs: int,
                          conv_lanes: int = 30, classifier_lanes: int = 32, weights: str = "on-chip",
                          data_dir=None
                          ) -> tuple[DesignPoint, AcceleratorParams, Any]:
    """The design point of a classifier trained on ``dataset`` (Conv1 by default), its
    integer parameters, and the :class:`RealClassifier` (test images and labels)."""
    rc = real_classifier(dataset, formats, hidden=hidden, epochs=epochs, data_dir=data_dir)
    point = DesignPoint(formats=formats, hidden=rc.q.hidden, classes=rc.q.classes,
                        conv_lanes=conv_lanes, classifier_lanes=classifier_lanes, weights=weights)
    return point, AcceleratorParams(np.asarray(rc.conv_weights, np.int64), rc.q), rc


def long_run(dataset: str, images: int, formats: NumberFormats, *, simulator: str = "verilator",
             hidden: int = 128, epochs: int = 10, conv_lanes: int = 30, classifier_lanes: int = 32,
             weights: str = "on-chip", stall: float = 0.1, chunk: int = 0, malformed: bool = False, folder: str | Path,
             optimize: bool = True, data_dir=None) -> dict[str, Any]:
    """The first ``images`` test images of ``dataset`` through the accelerator; a summary with
    mismatches, images compared, cycles per image, simulated images/s and accuracy."""
    folder = Path(folder)
    t0 = time.perf_counter()
    point, params, rc = real_point_and_params(dataset, formats, hidden=hidden, epochs=epochs,
                                              conv_lanes=conv_lanes, classifier_lanes=classifier_lanes,
                                              weights=weights, data_dir=data_dir)
    n = min(images, len(rc.test_y))
    spikes = encode_events(rc.test_images[:n], EncoderOptions(steps=point.steps), formats)
    events = [spikes.image(i) for i in range(n)]
    t_golden = time.perf_counter() - t0
    t0 = time.perf_counter()
    cosim = build_accelerator(point, simulator, folder / "rtl", optimize=optimize)
    t_build = time.perf_counter() - t0
    summary = cosim_images(cosim, params, events, folder / "runs", stall=stall, chunk=chunk, malformed=malformed)
    rtl, golden = np.asarray(summary.pop("rtl_classes")), np.asarray(summary.pop("golden_classes"))
    summary.update({
        "dataset": dataset, "images": n, "formats": formats.name, "design_point": point.to_dict(),
        "shape": [point.features, point.hidden, point.classes],
        "float_classifier_test_accuracy": rc.float_test_acc,
        "seconds": {"golden_and_training": round(t_golden, 1), "build": round(t_build, 1)},
    })
    labels = np.asarray(rc.test_y[:n])
    summary["rtl_class_equals_golden"] = int(np.sum(rtl == golden)) if len(rtl) == len(golden) else 0
    summary["rtl_accuracy"] = float(np.mean(rtl == labels)) if len(rtl) == n else None
    summary["golden_accuracy"] = float(np.mean(golden == labels)) if len(golden) == n else None
    return summary
