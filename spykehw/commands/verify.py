"""``spykehw verify``: the same images through every level of the flow (:mod:`spykehw.verify`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..api import load
from ..argtypes import count, output_dir
from ..data import load_sample
from ..images import read_images
from ..verify import VerifyError, agreement, available_levels, first_difference, locate, verify
from . import HELP

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify", help=HELP["verify"],
        description="Run the same images through each level of the verification ladder and compare "
                    "with the integer golden model: float (agreement rate; not meant to be equal), "
                    "int (the reference), amaranth (Amaranth simulator), verilator and icarus "
                    "(generated Verilog under cocotb). Every level below int must equal it: classes, "
                    "softmax words, Pool1 features, and every step's spikes (checked inside each "
                    "level); netlist runs both cores as their Yosys synth_ecp5 netlists (gate level, "
                    "Yosys's ECP5 cell models, on Verilator; needs the fpga extra; synthesis is cached, "
                    "the first run takes minutes"
                    "). Prints a table and, per level, the first image that differs and what "
                    "differed, with, for the simulator levels, the signal, cycle and time of the earliest "
                    "differing value and a waveform (FST) that shows it (with --out: the run's own "
                    "with --waves, else that image run again alone). 'tb check' is the level's own "
                    "testbench check against the trained integer model, every step's spikes "
                    "included. Exit status 1 if a level below int differs.")
    p.add_argument("source", type=Path, metavar="RUN_FOLDER|STATE_FILE|EXPORT")
    p.add_argument("--images", type=count, default=50, help="how many images (default 50)")
    p.add_argument("--images-from", type=Path, default=None, metavar="PATH",
                   help="images as for 'spykehw predict' (default: the embedded sample's test images)")
    p.add_argument("--levels", default=None, metavar="LIST",
                   help="comma-separated levels among float,int,amaranth,verilator,icarus,netlist "
                        "(default: all this machine and network can run)")
    p.add_argument("--corrupt-weight", default=None, metavar="M,C,ROW,COL",
                   help="load this one Conv1 weight inverted into the hardware levels only (a fault "
                        "for the ladder to find; they are still checked against the trained model)")
    p.add_argument("--waves", action="store_true",
                   help="record the simulators' waveforms (FST, for GTKWave or Surfer; kept under "
                        "--out), named in the first-difference lines")
    p.add_argument("--out", type=output_dir, default=None, metavar="DIR",
                   help="keep the simulators' vectors, builds and logs here (default: temporary)")
    p.add_argument("--json", action="store_true", help="print the table and differences as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--debug", action="store_true", help="show tracebacks for input errors")
    p.set_defaults(func=_main)


def _cell(count, n: int) -> str:
    return "-" if count is None else f"{count}/{n}"


def _table(rows: list[dict]) -> list[str]:
    lines = [f"{'level':10} {'images':>6} {'classes':>9} {'softmax':>9} {'features':>9} {'tb check':>9} "
             f"{'seconds':>8}  verdict"]
    for r in rows:
        n = r["images"]
        inside = {None: "-", True: "pass", False: "FAIL"}[r["inside"]]
        verdict = r.get("verdict") or ("equal" if r["equal"] else "DIFFERS")
        lines.append(f"{r['level']:10} {n:>6} {_cell(r['classes'], n):>9} {_cell(r['softmax'], n):>9} "
                     f"{_cell(r['features'], n):>9} {inside:>9} {r['seconds']:>8.1f}  {verdict}")
    return lines


def _main(args: argparse.Namespace) -> int:
    net = load(args.source)
    if args.images_from is not None:
        names, images = read_images(args.images_from)
    else:
        images = load_sample().test_images
        names = [f"mnist-sample test[{i}]" for i in range(len(images))]
    names, images = names[:args.images], images[:args.images]
    levels = available_levels(net) if args.levels is None else [s.strip() for s in args.levels.split(",") if s.strip()]

    def say(level: str) -> None:
        if not args.quiet:
            what = level if ":" in level else f"{len(images)} image(s) through {level}"
            print(f"spykehw verify: {what}...", file=sys.stderr, flush=True)

    corrupt = None
    if args.corrupt_weight is not None:
        try:
            corrupt = [int(v) for v in args.corrupt_weight.split(",")]
        except ValueError:
            corrupt = None
        if corrupt is None or len(corrupt) != 4:
            raise VerifyError(f"--corrupt-weight: expected M,C,ROW,COL integers, found {args.corrupt_weight!r}")
    results = verify(net, images, levels, folder=args.out, progress=say, corrupt=corrupt, waves=args.waves)
    ref = results["int"]
    rows, diffs = [], []
    for level, res in results.items():
        row = agreement(ref, res)
        if level == "int":
            row.update(verdict="reference", equal=True)
        elif level == "float":
            row.update(verdict=f"agreement {100 * row['classes'] / max(1, len(images)):.1f}% (not meant to be equal)",
                       equal=True, softmax=None)
        else:
            d = first_difference(ref, res)
            if d is not None:
                if args.out is not None and res.waveform is None and d["image"] is not None and level != "amaranth":
                    say(f"{level}: image {d['image']} again alone, with its waveform")
                d = locate(net, res, d, images, folder=args.out, corrupt=corrupt)
                d["level"] = level
                d["name"] = None if d["image"] is None else names[d["image"]]
                d["testbench"] = res.notes[0] if res.notes else None    # its first signal-level mismatch
                diffs.append(d)
        rows.append(row)
    if args.json:
        print(json.dumps({"source": str(args.source), "images": len(images), "levels": rows,
                          "first_differences": diffs}, indent=1))
    else:
        print("\n".join(_table(rows)))
        for d in diffs:
            where = "" if d["image"] is None else f" at image {d['image']} ({d['name']})"
            wave = f" (waveform {d['waveform']})" if d["waveform"] else ""
            print(f"first difference, {d['level']}{where}: {d['detail']}{wave}")
            if d["cycle"] is not None or d["time_ns"] is not None:
                at = [] if d["cycle"] is None else [f"cycle {d['cycle']}"]
                at += [] if d["time_ns"] is None else [f"{d['time_ns']:g} ns"]
                print(f"  where: signal {d['signal']}, {', '.join(at)} in the waveform")
            if d["at"]:
                print(f"  earliest there: {d['at']}")
            elif d["testbench"]:
                print(f"  its testbench: {d['testbench']}")
            if d["waveform"] is None and d["level"] in ("verilator", "icarus", "netlist"):
                print("  waveform: run again with --out DIR (and --waves for every image's)")
    return 1 if any(not r["equal"] for r in rows) else 0
