"""``spykehw cosim``: co-simulate generated Verilog against golden vectors (Verilator/Icarus)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["register"]


def _conv(args: argparse.Namespace) -> int:
    from ..output import RunFolder
    from ..progress import Progress
    from ..sim.conv_harness import LONG_RUN_DEPTHS, build_conv_cosim, cosim_vector_file
    from ..sim.toolchain import find_simulator, missing_reason
    from ..sim.vector_gen_conv import KIND, conv1_weights, core_config, source_vectors, write_vector_set
    from ..sim.vectors import read_vectors
    from .verilog import conv_config

    if find_simulator(args.simulator) is None:
        print(f"spykehw cosim: {args.simulator} unavailable: {missing_reason(args.simulator)}",
              file=sys.stderr)
        return 2
    folder = RunFolder(args.out, "cosim-conv", args=vars(args) | {"func": None})
    if args.vectors is not None:
        vs = read_vectors(args.vectors, kind=KIND)
        vectors = args.vectors
        cfg = core_config(vs, args.parallelism)
    else:
        cfg = conv_config(args.config, "conv1", args.parallelism, 12)
        weights, note = conv1_weights(cfg.formats, state=args.weights, data_dir=args.data_dir)
        print(f"vectors: {args.count} {args.source} test images (rows 0..{args.count - 1}), "
              f"weights: {note}", file=sys.stderr)
        vs = source_vectors(cfg.formats, args.source, args.count, first=True, weights=weights,
                            weights_note=note, data_dir=args.data_dir)
        vectors = write_vector_set(folder.file("vectors.npz"), vs)
        folder.add("vectors.npz", f"conv-infer vectors: {vs.description}")
    print(f"building the harness for {args.simulator} (L = {cfg.parallelism})...", file=sys.stderr)
    cosim = build_conv_cosim(cfg, args.simulator, folder.file("build"), optimize=not args.no_optimize,
                             **LONG_RUN_DEPTHS)
    n = len(vs.options["cases"])
    with Progress("cosim", total=n, unit="img", enabled=not args.quiet) as progress:
        summary = cosim_vector_file(cosim, vectors, folder.file("runs"), chunk=args.chunk,
                                    stall=args.stall, progress=progress)
    folder.write_json("summary.json", summary, "mismatches, cycles and images/s")
    for k in ("images", "mismatches", "cycles_per_image", "images_per_s"):
        folder.result(k, summary[k])
    print(f"{summary['images']} images on {args.simulator}: {summary['mismatches']} mismatches, "
          f"{summary['cycles_per_image']:.0f} cycles/image, {summary['images_per_s']:.1f} images/s "
          f"(testbench wall time; {summary['wall_s']:.1f} s in all)")
    for line in summary["mismatch_lines"]:
        print(f"  {line}")
    if summary["waveform"]:
        print(f"waveform of the first mismatching image: {summary['waveform']}")
    print(f"results: {folder.path}")
    return 0 if summary["mismatches"] == 0 and summary["images"] == n else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("cosim", help="co-simulate the RTL against the golden model",
                              description="Generate, build and co-simulate an RTL block on real "
                                          "images (or a vector file) and report mismatches.")
    sub = p.add_subparsers(dest="block", metavar="BLOCK", required=True)
    c = sub.add_parser("conv", help="the conv core on real images (a long run)",
                       description="Conv1 core: the first COUNT test images through the integer "
                                   "golden model and the generated Verilog; every step of every "
                                   "image is compared. Exit status 1 on any mismatch.")
    c.add_argument("--count", type=int, default=2000, help="test images (default 2000)")
    c.add_argument("--source", choices=["mnist", "mnist-sample", "emnist"], default="mnist",
                   help="image source (default mnist: the 10,000 test images)")
    c.add_argument("--vectors", type=Path, default=None, metavar="FILE",
                   help="co-simulate this conv-infer file instead")
    c.add_argument("--simulator", choices=["verilator", "icarus"], default="verilator")
    c.add_argument("--config", default=None, metavar="PRESET",
                   help="number formats: a preset (default fpga-16) or a TOML file")
    c.add_argument("--parallelism", type=int, default=None, metavar="L",
                   help="maps per cycle (default 30)")
    c.add_argument("--weights", type=Path, default=None, metavar="STATE",
                   help="Conv1 weights from a state file instead of STDP on 300 images")
    c.add_argument("--stall", action="store_true", help="random stalls on the core's streams")
    c.add_argument("--chunk", type=int, default=500, help="images per simulator run (default 500)")
    c.add_argument("--no-optimize", action="store_true",
                   help="Verilator: -O0 C++ (faster build, slower run)")
    c.add_argument("--out", type=Path, default=Path("runs"), help="run folders (default runs/)")
    c.add_argument("--data-dir", type=Path, default=None, metavar="DIR")
    c.add_argument("--quiet", action="store_true", help="no progress lines")
    c.add_argument("--debug", action="store_true", help="show tracebacks for input errors")
    c.set_defaults(func=_conv)
