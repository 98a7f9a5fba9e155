"""TODO docstring"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...golden.formats import DEFAULT_PRESET, preset
from ...golden.options import TIME_STEPS, ConvOptions
from ...rtl.classifier import ClassifierConfig
from ...rtl.conv_config import ConvCoreConfig
from ..conv.vector_gen import write_vector_set as write_conv_vectors
from ..framework.runners import waveforms
from .cosim import build_chain, build_top, generate_harness, run_chain, run_cosim
from .vector_gen import chain_vectors, real_classifier, real_vectors, write_vector_set

__all__ = [
    "long_run_classifier",
    "long_run_chain",
]


# ----- long runs ------------------------------------------------------------------------------

def long_run_classifier(dataset: str = "mnist", images: int = 10000, *, lanes: int = 64, latency: int = 16,
                        folder: str | Path | None = None, simulator: str = "verilator",
                        epochs: int = 10, hidden: int = 1000, data_dir=None,
                        waves: bool = False) -> dict[str, Any]:
    """Every one of ``images`` test images of ``dataset`` through the classifier RTL (features
    from the integer golden pipeline, a classifier trained on the full training set: see
    :func:`~spykehw.sim.classifier.vector_gen.real_classifier`), checked value by value.
    ``waves``: the run's waveform (FST) in ``folder/run/`` (``waveforms`` in the summary).

    Returns a summary (mismatches, accuracy of the RTL's classes, cycles, times).
    """


    fmt = preset(DEFAULT_PRESET)
    t0 = time.perf_counter()
    rc = real_classifier(dataset, fmt, hidden=hidden, epochs=epochs, data_dir=data_dir)
    n = min(images, len(rc.test_y))
    vs = real_vectors(rc, n)
    t_golden = time.perf_counter() - t0
    work = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="spykehw-long-"))
    cfg = ClassifierConfig(rc.q.features, rc.q.hidden, rc.q.classes, fmt, lanes=lanes)
    design = generate_harness(cfg, work / "rtl", ev_depth=1 << 15, image_depth=256)
    t0 = time.perf_counter()
    build = build_top(simulator, {"harness": design}, optimize=True, waves=waves)
    t_build = time.perf_counter() - t0
    vectors = write_vector_set(work / f"{dataset}-{n}.npz", vs)
    t0 = time.perf_counter()
    result = run_cosim(build, design, vectors, work / "run", latency=latency, dump=work / "out.npz", check=False)
    t_run = time.perf_counter() - t0
    out = dict(np.load(work / "out.npz"))
    report = result.report or {}
    compared = int(len(out["classes"]))
    if compared != n:   # a short run must fail, never pass on the images it did compare
        out["classes"] = np.full(n, -1, np.int64)
    return {
        "dataset": dataset, "images": n, "images_compared": compared, "simulator": simulator,
        "shape": [cfg.features, cfg.hidden, cfg.classes],
        "lanes": lanes, "passed": bool(result.passed and compared == n), "checked": report.get("checked"),
        "mismatches": len(report.get("mismatches", [])),
        "first_mismatches": [m["message"] for m in report.get("mismatches", [])[:5]],
        "rtl_accuracy": float(np.mean(out["classes"] == vs["labels"])),
        "golden_accuracy": float(np.mean(vs["classes"] == vs["labels"])),
        "float_classifier_test_accuracy": rc.float_test_acc,
        "rtl_classes_equal_golden": int(np.sum(out["classes"] == vs["classes"])),
        "cycles": int(out["batch_cycles"].sum()), "cycles_per_image": float(out["batch_cycles"].sum()) / n,
        "bytes_fetched_per_image": int(out["words_fetched"]) * cfg.w2_word_bits / 8 / n,
        "seconds": {"golden": round(t_golden, 1), "build": round(t_build, 1), "cosim": round(t_run, 1),
                    "sim_run": round(float(out["run_seconds"]), 1)},
        "images_per_s_sim": n / float(out["run_seconds"]), "folder": str(work),
        "waveforms": waveforms(result),
    }


def long_run_chain(dataset: str = "emnist", images: int = 1000, *, lanes: int = 64,
                   conv_parallelism: int = 30, folder: str | Path | None = None,
                   simulator: str = "verilator", epochs: int = 8, hidden: int = 1500,
                   data_dir=None, waves: bool = False) -> dict[str, Any]:
    """``images`` test images end to end: golden integer encoder -> conv core RTL -> classifier
    RTL (:func:`run_chain`), every spike, feature and classifier output checked; the chain's
    class must equal the golden model's for every image. ``waves`` as for
    :func:`long_run_classifier`."""


    fmt = preset(DEFAULT_PRESET)
    t0 = time.perf_counter()
    rc = real_classifier(dataset, fmt, hidden=hidden, epochs=epochs, data_dir=data_dir)
    n = min(images, len(rc.test_y))
    conv_vs, clf_vs = chain_vectors(fmt, rc.conv_weights, rc.q, rc.test_images[:n], rc.test_y[:n],
                                    source=dataset, rows=range(n))
    t_golden = time.perf_counter() - t0
    work = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="spykehw-chain-"))
    conv_path = write_conv_vectors(work / "conv.npz", conv_vs)
    clf_path = write_vector_set(work / "classifier.npz", clf_vs)
    conv_cfg = ConvCoreConfig(ConvOptions(), fmt, steps=TIME_STEPS, parallelism=conv_parallelism)
    cfg = ClassifierConfig(rc.q.features, rc.q.hidden, rc.q.classes, fmt, lanes=lanes)
    t0 = time.perf_counter()
    chain = build_chain(conv_cfg, cfg, simulator, work / "rtl", optimize=True, waves=waves)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = run_chain(chain, conv_path, clf_path, work / "run", dump=work / "out.npz", check=False)
    t_run = time.perf_counter() - t0
    out = np.load(work / "out.npz")
    report = result.report or {}
    return {
        "dataset": dataset, "images": n, "simulator": simulator,
        "shape": [cfg.features, cfg.hidden, cfg.classes], "lanes": lanes, "conv_parallelism": conv_parallelism,
        "passed": result.passed, "checked": report.get("checked"),
        "mismatches": len(report.get("mismatches", [])), "conv_mismatches": int(out["conv_mismatches"]),
        "first_mismatches": [m["message"] for m in report.get("mismatches", [])[:5]],
        "chain_class_equals_golden": int(np.sum(out["classes"] == clf_vs["classes"])),
        "rtl_accuracy": float(np.mean(out["classes"] == clf_vs["labels"])),
        "golden_accuracy": float(np.mean(clf_vs["classes"] == clf_vs["labels"])),
        "float_classifier_test_accuracy": rc.float_test_acc,
        "conv_cycles_per_image": float(out["conv_batch_cycles"].sum()) / n,
        "classifier_cycles_per_image": float(out["clf_batch_cycles"].sum()) / n,
        "active_features_per_image": float(out["feature_counts"].mean()),
        "seconds": {"golden": round(t_golden, 1), "build": round(t_build, 1), "cosim": round(t_run, 1),
                    "sim_run": round(float(out["run_seconds"]), 1)},
        "folder": str(work), "waveforms": waveforms(result),
    }


def _main(argv: Sequence[str] | None = None) -> int:
    """``python -m spykehw.sim.classifier.long_run long-mnist|long-chain [N]``: a long run, JSON."""

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("long-mnist", "long-chain"):
        print("usage: python -m spykehw.sim.classifier.long_run long-mnist|long-chain [images]", file=sys.stderr)
        return 2
    n = int(argv[1]) if len(argv) > 1 else None
    if argv[0] == "long-mnist":
        summary = long_run_classifier("mnist", n or 10000)
    else:
        summary = long_run_chain("emnist", n or 1000)
    print(json.dumps(summary, indent=2))
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(_main())
