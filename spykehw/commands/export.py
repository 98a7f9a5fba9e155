"""``spykehw export``: every memory of a trained network as hardware files (:mod:`spykehw.export`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..argtypes import count, output_dir
from ..export import read_source, write_export
from ..golden.formats import load_formats

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="write a trained network's memories as $readmemh/binary files + memory_map.json",
        description="Export every memory the hardware holds (Conv1 weights in the conv core's lane "
                    "layout, threshold, W2, b2, W3, b3, exp LUT) from a run folder (its int_state.npz) "
                    "or a state file: NAME.hex ($readmemh), NAME.bin (raw little-endian), weights.bin "
                    "(one external-memory image, 4 KiB-aligned memories) and memory_map.json (design "
                    "point and its hash, per memory depth, width, packing, format, offset, sha256).")
    p.add_argument("source", type=Path, metavar="RUN_FOLDER|STATE_FILE")
    p.add_argument("--config", default=None,
                   help="number formats (preset or TOML); default: the state's. Only the classifier "
                        "and softmax formats may differ from the state's")
    p.add_argument("--conv-lanes", type=count, default=None,
                   help="maps per cycle of the conv core (divides the maps; default all)")
    p.add_argument("--classifier-lanes", type=count, default=None,
                   help="hidden accumulators per cycle of the classifier (default min(64, hidden))")
    p.add_argument("--weights", choices=["on-chip", "external"], default="on-chip",
                   help="where W2 lives: on-chip (loaded over the classifier's load bus, default) or "
                        "external (read over the memory port)")
    p.add_argument("--out", type=output_dir, required=True, help="the export folder (created)")
    p.add_argument("--debug", action="store_true", help="show tracebacks for input errors")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    # Imported here: the golden model (numba) takes seconds to import, `spykehw --help` should not.

    fmt = None if args.config is None else load_formats(args.config)
    source = read_source(args.source, formats=fmt, conv_lanes=args.conv_lanes,
                         classifier_lanes=args.classifier_lanes, weights=args.weights)
    mm = write_export(source, args.out)
    point = source.point
    print(f"{args.out}: design point {mm['id32_hex']} (digest {mm['digest'][:16]}...), formats "
          f"'{point.formats.name}', {point.features}->{point.hidden}->{point.classes}, conv lanes "
          f"{point.conv_lanes}, classifier lanes {point.classifier_lanes}, W2 {point.weights}")
    for m in mm["memories"]:
        target = f" target {m['target']}" if m["target"] else ""
        print(f"  {m['name']:16} {m['depth']:7} x {m['word_bits']:5} bits  {m['size']:10,} B at "
              f"{m['offset']:#010x}  {m['bus']}{target}")
    print(f"  weights.bin {mm['weights_bin']['size']:,} B; conv1: {source.provenance['conv1_weights']}; "
          f"classifier: {source.provenance['classifier']}")
    return 0
