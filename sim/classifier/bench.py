"""Benchmark of the classifier RTL: cycles and bytes per image, simulation speed, Yosys stats (JSON).

``python -m spykehw.sim.classifier.bench [--images N] [--lanes 32,64] [--latency 16] [--out F]``

For 3630 -> 1500 -> 47 (EMNIST-47) and 3630 -> 1000 -> 10 (MNIST) at each lane count, the
generated harness runs ``N`` real test images on Verilator (``-O2``, no waveform), with a
classifier trained on the integer golden pipeline's features
(:func:`spykehw.sim.classifier.vector_gen.real_classifier`: trained on first use, then cached),
behind the memory model with ``--latency`` cycles and no stalls. Every image is also checked
against the golden model (a mismatch fails the benchmark). Reported per configuration:

``cycles_per_image``
    Steady-state throughput: cycles between the first and the last image's final output word,
    divided by ``N - 1`` (the three stages overlap, so this is the slowest stage's time).
``latency_cycles_first_image``
    From ``start`` to the first image's last output word (all stages in sequence).
``model``
    :meth:`ClassifierConfig.cycles_hidden` at the images' mean number of active features, and
    at 90 and 170 active features (the usual range); ``target_cycles`` = 5,000 (3630 -> 1500 ->
    47 at 64 lanes).
``bytes_per_image``
    Bytes over the memory port (the model's word count x word bits / 8 / N), and per active
    feature.
``images_per_s_sim``
    Images per second of wall time while the batch ran (loading excluded).

``yosys`` holds :func:`spykehw.sim.framework.lint.yosys_stat` of the default preset's classifier
(3630 -> 1500 -> 47, 64 lanes, fpga-16). Speed targets are reported against, never asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ...golden.files import atomic_write
from ...golden.formats import DEFAULT_PRESET, preset
from ...rtl.classifier import DEFAULT_SHAPE, ClassifierConfig, generate_classifier
from ..framework.lint import yosys_stat
from ..framework.toolchain import find_verilator
from .cosim import build_top, generate_harness, run_cosim
from .vector_gen import real_classifier, real_vectors, write_vector_set

__all__ = ["SHAPES", "TARGET_CYCLES", "bench_config", "yosys_default", "main"]

SHAPES = {"emnist": (3630, 1500, 47), "mnist": (3630, 1000, 10)}
TARGET_CYCLES = 5000
"""The issue's target: at most 5,000 cycles per image for 3630 -> 1500 -> 47 at 64 lanes."""


def bench_config(dataset: str, lanes: int, images: int, latency: int, folder: Path,
                 *, epochs: int | None = None) -> dict[str, Any]:

    F, H, C = SHAPES[dataset]
    fmt = preset(DEFAULT_PRESET)
    t0 = time.perf_counter()
    rc = real_classifier(dataset, fmt, hidden=H, epochs=epochs or (10 if dataset == "mnist" else 8))
    t_golden = time.perf_counter() - t0
    vs = real_vectors(rc, images)
    active = vs["counts"].astype(np.int64)
    cfg = ClassifierConfig(F, H, C, fmt, lanes=lanes)
    sub = folder / f"{dataset}-{lanes}"
    design = generate_harness(cfg, sub / "rtl", ev_depth=int(active.sum() + images + 16),
                              image_depth=images)
    t0 = time.perf_counter()
    build = build_top("verilator", {"harness": design}, optimize=True)
    t_build = time.perf_counter() - t0
    vectors = write_vector_set(sub / "vectors.npz", vs)
    t0 = time.perf_counter()
    result = run_cosim(build, design, vectors, sub / "run", latency=latency, dump=sub / "out.npz")
    t_run = time.perf_counter() - t0
    out = np.load(sub / "out.npz")
    stamps = out["stamps"]
    words = int(out["words_fetched"])
    per_image = float(stamps[-1] - stamps[0]) / (images - 1) if images > 1 else float(stamps[0])
    first_word = max(latency + 1, 3)        # the memory model's request-to-first-word cycles
    return {
        "dataset": dataset, "features": F, "hidden": H, "classes": C, "lanes": lanes,
        "groups": cfg.groups, "images": images, "memory_latency": latency,
        "active_features_mean": float(active.mean()), "active_features_max": int(active.max()),
        "cycles_per_image": per_image,
        "latency_cycles_first_image": int(stamps[0]),
        "model": {
            "hidden_stage_at_mean_active": cfg.cycles_hidden(int(round(active.mean())), first_word),
            "hidden_stage_at_90_active": cfg.cycles_hidden(90, first_word),
            "hidden_stage_at_170_active": cfg.cycles_hidden(170, first_word),
            "softmax_cycles": cfg.softmax_cycles,
        },
        "target_cycles": TARGET_CYCLES if (F, H, C, lanes) == (3630, 1500, 47, 64) else None,
        "bytes_per_image": words * cfg.w2_word_bits / 8 / images,
        "bytes_per_active_feature": cfg.bytes_per_row,
        "requests": int(out["requests"]), "words": words,
        "images_per_s_sim": images / float(out["run_seconds"]),
        "all_images_match_golden": result.passed,
        "accuracy_on_these_images": float(np.mean(vs["classes"] == vs["labels"])),
        "seconds": {"golden": round(t_golden, 2), "build": round(t_build, 2), "cosim": round(t_run, 2),
                    "sim_run": round(float(out["run_seconds"]), 2),
                    "load_parameters": round(float(out["load_seconds"]), 2)},
    }


def yosys_default(folder: Path) -> dict[str, Any]:
    """Yosys statistics of ``spykehw verilog classifier`` with no options (the default preset)."""

    s = DEFAULT_SHAPE
    cfg = ClassifierConfig(s["features"], s["hidden"], s["classes"], preset(DEFAULT_PRESET), lanes=s["lanes"])
    t0 = time.perf_counter()
    stat = yosys_stat(generate_classifier(cfg, folder / "yosys"))
    stat["seconds"] = round(time.perf_counter() - t0, 1)
    stat["config"] = {**s, "preset": DEFAULT_PRESET}
    stat["memories"] = _summarise_memories(stat["memories"])
    return stat


def _summarise_memories(mems: list[dict]) -> list[dict]:
    """Group identical memories (the 47 per-class W3 memories) into one line each."""
    groups: dict[tuple, dict] = {}
    for m in mems:
        name = m["name"].rstrip("0123456789").rstrip("_") or m["name"]
        key = (name, m["width"], m["depth"], m["rom"])
        g = groups.setdefault(key, {"name": name, "width": m["width"], "depth": m["depth"],
                                    "rom": m["rom"], "count": 0})
        g["count"] += 1
    return list(groups.values())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m spykehw.sim.classifier.bench", description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=200, help="test images per configuration (default 200)")
    p.add_argument("--lanes", default="32,64", help="lane counts (default 32,64)")
    p.add_argument("--datasets", default="emnist,mnist", help="emnist (3630-1500-47), mnist (3630-1000-10)")
    p.add_argument("--latency", type=int, default=16, help="memory model latency in cycles (default 16)")
    p.add_argument("--no-yosys", action="store_true", help="skip the Yosys statistics")
    p.add_argument("--out", type=Path, help="also write the JSON here")
    p.add_argument("--work", type=Path, help="keep the generated files here (default: a temporary folder)")
    args = p.parse_args(argv)

    if find_verilator() is None:
        print("bench_classifier: needs Verilator", file=sys.stderr)
        return 2
    lanes = [int(v) for v in args.lanes.split(",") if v.strip()]
    with tempfile.TemporaryDirectory(prefix="spykehw-bench-clf-") as tmp:
        folder = args.work or Path(tmp)
        report: dict[str, Any] = {"benchmark": "classifier", "configs": []}
        for ds in (d.strip() for d in args.datasets.split(",") if d.strip()):
            for ln in lanes:
                report["configs"].append(bench_config(ds, ln, args.images, args.latency, folder))
                print(f"[bench_classifier] {ds} lanes {ln}: "
                      f"{report['configs'][-1]['cycles_per_image']:.0f} cycles/image", file=sys.stderr)
        if not args.no_yosys:
            report["yosys"] = yosys_default(folder)
        text = json.dumps(report, indent=2) + "\n"
    if args.out is not None:
        with atomic_write(args.out, "w") as f:
            f.write(text)
    sys.stdout.write(text)
    return 0 if all(c["all_images_match_golden"] for c in report["configs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
