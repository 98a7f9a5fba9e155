"""Benchmark of the conv core: cycles per image, co-simulation speed, Yosys statistics (JSON).

Measures, on the first ``--images`` MNIST test images (STDP weights from 300 training images,
preset ``fpga-16``):

- cycles per Conv1 image at ``L = 30`` and at ``L = 10`` (``--parallelism``; with
  ``--potentials spram`` the UP5K core, reported as ``L<n>-spram``) (the harness's cycle
  counter: from the first token to the end of the last image, partners never stalling);
- images per second on Verilator (``-O2``, free-running clock inside the simulation) and on
  Icarus (on ``--icarus-images`` images): images over the testbench's wall time, which
  includes loading the weights, writing the event memory, reading the capture memories and
  checking every step against the golden expectations;
- Yosys statistics of the ``fpga-16`` core at ``L = 30`` (cells, flip-flop bits, memory bits).

Every run must also match the golden model (``mismatches`` must be 0). Speed targets are
reported next to the numbers, never asserted::

    .venv/bin/python -m spykehw.sim.conv.bench [--images 500] [--icarus-images 10] [--out F]
        [--parallelism 30,10] [--potentials block|spram]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from ...golden.files import atomic_write
from ...golden.formats import DEFAULT_PRESET, preset
from ...golden.options import CONV1, TIME_STEPS
from ...rtl.conv_config import ConvCoreConfig
from ...rtl.conv_core import ConvCore
from ...rtl.verilog import generate
from ..framework.lint import yosys_stat
from ..framework.toolchain import find_simulator, missing_reason
from ..framework.vectors import read_vectors
from .cosim import build_conv_cosim, cosim_vector_file
from .harness import LONG_RUN_DEPTHS
from .vector_gen import KIND, conv1_weights, source_vectors, write_vector_set

__all__ = ["TARGETS", "run_benchmark", "main"]

TARGETS = {"conv1_cycles_per_image_L30": 8000, "verilator_images_per_s": 50}


def _cosim(cfg, simulator, vectors, folder, *, optimize, images=None):

    t0 = time.perf_counter()
    cosim = build_conv_cosim(cfg, simulator, folder / "build", optimize=optimize, **LONG_RUN_DEPTHS)
    build_s = time.perf_counter() - t0
    if images is not None:
        vs = read_vectors(vectors, kind=KIND)
        if images < len(vs.options["cases"]):
            sub = source_vectors(vs.formats, "mnist", images, first=True,
                                 weights=vs["weights"][0], weights_note=vs.options["sources"]["stdp"])
            vectors = write_vector_set(folder / "vectors-subset.npz", sub)
    summary = cosim_vector_file(cosim, vectors, folder / "runs", chunk=1000)
    summary["build_s"] = build_s
    summary["optimized"] = optimize
    return summary


def run_benchmark(images: int = 500, icarus_images: int = 10, folder: Path | None = None,
                  simulators: tuple[str, ...] = ("verilator", "icarus"),
                  parallelisms: tuple[int, ...] = (30, 10), potential_memory: str = "block") -> dict:

    folder = Path(folder or tempfile.mkdtemp(prefix="spykehw-bench-conv-"))
    fmt = preset(DEFAULT_PRESET)
    weights, note = conv1_weights(fmt)
    vs = source_vectors(fmt, "mnist", images, first=True, weights=weights, weights_note=note)
    vectors = write_vector_set(folder / "vectors.npz", vs)
    cfgs = {f"L{p}" + ("-spram" if potential_memory == "spram" else ""):
            ConvCoreConfig(options=CONV1, formats=fmt, steps=TIME_STEPS, parallelism=p,
                           potential_memory=potential_memory) for p in parallelisms}
    first, cfg30 = next(iter(cfgs.items()))
    report: dict = {"preset": fmt.name, "layer": "conv1", "images": images, "weights": note,
                    "potential_memory": potential_memory,
                    "targets": TARGETS, "results": {}, "skipped": {}}
    res = report["results"]

    if "verilator" in simulators and find_simulator("verilator") is not None:
        runs = {key: _cosim(cfg, "verilator", vectors, folder / f"verilator-{key}", optimize=True)
                for key, cfg in cfgs.items()}
        for key, run in runs.items():
            res[f"verilator_{key}"] = _brief(run)
        res["conv1_cycles_per_image"] = {key: run["cycles_per_image"] for key, run in runs.items()}
        res["verilator_images_per_s"] = runs[first]["images_per_s"]
    elif "verilator" in simulators:
        report["skipped"]["verilator"] = missing_reason("verilator")
    if "icarus" in simulators and find_simulator("icarus") is not None and icarus_images > 0:
        ic = _cosim(cfg30, "icarus", vectors, folder / f"icarus-{first}", optimize=False,
                    images=icarus_images)
        res[f"icarus_{first}"] = _brief(ic)
        res["icarus_images_per_s"] = ic["images_per_s"]
    elif "icarus" in simulators and icarus_images > 0:
        report["skipped"]["icarus"] = missing_reason("icarus")

    core = ConvCore(cfg30)
    g = generate(core, "conv_core", folder / "yosys", core.params(), formats=fmt)
    t0 = time.perf_counter()
    stat = yosys_stat(g)
    res[f"yosys_fpga16_{first}"] = {
        "tool": stat["tool"], "level": stat["level"], "cells": stat["cells"],
        "flip_flops": stat["flip_flops"], "memory_bits": stat["memory_bits"],
        "memories": len(stat["memories"]), "seconds": round(time.perf_counter() - t0, 1),
        # By hand: the memories of ConvCoreConfig.memory_bits(), plus the two small ROMs Yosys
        # makes of the pool-window tables (2**5 rows x (7 + 4) bits for H = 23, P = 11); the
        # flags are most of the flip-flops.
        "expected": {"memory_bits_by_hand": sum(cfg30.memory_bits().values()),
                     "window_table_rom_bits": 32 * (7 + 4),
                     "flag_flip_flops": cfg30.flag_bits()},
    }
    report["mismatches"] = sum(r.get("mismatches", 0) for r in res.values() if isinstance(r, dict))
    report["ok"] = report["mismatches"] == 0
    report["folder"] = str(folder)
    return report


def _brief(summary: dict) -> dict:
    keys = ("images", "mismatches", "cycles_per_image", "images_per_s", "tb_wall_s", "wall_s",
            "build_s", "optimized", "parallelism")
    return {k: (round(summary[k], 2) if isinstance(summary[k], float) else summary[k]) for k in keys}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m spykehw.sim.conv.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=500, help="MNIST test images (default 500)")
    p.add_argument("--icarus-images", type=int, default=10, help="images on Icarus (default 10)")
    p.add_argument("--simulators", default="verilator,icarus")
    p.add_argument("--folder", type=Path, default=None, help="work folder (default: a temporary one)")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    p.add_argument("--parallelism", default="30,10", metavar="L[,L...]",
                   help="conv core lanes to measure (default 30,10; Icarus and Yosys: the first)")
    p.add_argument("--potentials", choices=("block", "spram"), default="block",
                   help="ConvCoreConfig.potential_memory: block (the ECP5 core, default) or spram "
                        "(the UP5K core; results keyed L<n>-spram)")
    args = p.parse_args(argv)
    try:
        lanes = tuple(int(x) for x in args.parallelism.split(",") if x.strip())
    except ValueError:
        p.error(f"--parallelism: expected integers separated by commas, found {args.parallelism!r}")
    report = run_benchmark(args.images, args.icarus_images, args.folder,
                           tuple(s.strip() for s in args.simulators.split(",") if s.strip()),
                           lanes, args.potentials)
    text = json.dumps(report, indent=2, sort_keys=True) + "\n"
    if args.out is not None:
        with atomic_write(args.out, "w") as f:
            f.write(text)
    sys.stdout.write(text)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
