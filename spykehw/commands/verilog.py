"""``spykehw verilog``: generate the Verilog of an RTL block, its JSON description, lint it."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]

LAYERS = ("conv1", "conv2")
DEFAULT_PARALLELISM = {"conv1": 30, "conv2": 40}
MAX_SPIKES = {"conv1": 1, "conv2": 4}     # Conv2's inputs are Pool1 neurons (spec 5.2)


def conv_config(preset_or_toml: str | None, layer: str, parallelism: int | None, steps: int):
    """The ConvCoreConfig the ``conv`` subcommands build (shared with ``cosim``)."""
    from ..golden.formats import DEFAULT_PRESET, load_formats
    from ..golden.options import CONV1, CONV2
    from ..rtl.conv_core import ConvCoreConfig

    fmt = load_formats(preset_or_toml or DEFAULT_PRESET)
    opts = CONV1 if layer == "conv1" else CONV2
    return ConvCoreConfig(options=opts, formats=fmt, steps=steps,
                          parallelism=DEFAULT_PARALLELISM[layer] if parallelism is None else parallelism,
                          max_spikes_per_input=MAX_SPIKES[layer])


def _conv(args: argparse.Namespace) -> int:
    from ..output import RunFolder
    from ..rtl.conv_core import ConvCore
    from ..rtl.verilog import generate, lint, yosys_stat

    cfg = conv_config(args.config, args.layer, args.parallelism, args.steps)
    core = ConvCore(cfg)
    folder = RunFolder(args.out, "verilog", path=args.out,
                       args={"block": "conv", "config": cfg.formats.name, "layer": args.layer,
                             "parallelism": cfg.parallelism, "steps": cfg.steps})
    g = generate(core, args.name, args.out, core.params(), formats=cfg.formats)
    for path, what in ((g.verilog_path, "Verilog"), (g.json_path, "parameters, number formats, ports"),
                       (g.rtlil_path, "RTLIL (for Yosys)")):
        folder.add(path.name, what)
    print(f"{g.verilog_path}: {args.layer} conv core, {cfg.formats.name}, L = {cfg.parallelism} "
          f"({cfg.groups} group{'s' if cfg.groups > 1 else ''}), V = {cfg.potential_bits} bits, "
          f"threshold {cfg.threshold}")
    for p in g.ports:
        sign = " signed" if p.signed else ""
        print(f"  {p.direction:6} {p.width:5}{sign:7} {p.name}")
    status = 0
    if not args.no_lint:
        warnings = lint(g.verilog_path)
        folder.result("lint_warnings", [str(w) for w in warnings])
        print(f"verilator --lint-only -Wall: {len(warnings)} warning(s) beyond the waivers")
        for w in warnings:
            print(f"  {w}")
        status = 1 if warnings else 0
    if args.stat:
        stat = yosys_stat(g)
        folder.result("yosys", {k: v for k, v in stat.items() if k != "memories"})
        print(f"yosys ({stat['level']}): {stat['cells']} cells, {stat['flip_flops']} flip-flops, "
              f"{stat['memory_bits']} memory bits")
    return status


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("verilog", help="generate the Verilog of an RTL block (+ JSON, lint)",
                              description="Write <name>.v, <name>.json (parameters, number formats, "
                                          "ports) and <name>.il for an RTL block, then lint the "
                                          "Verilog with verilator -Wall.")
    sub = p.add_subparsers(dest="block", metavar="BLOCK", required=True)
    c = sub.add_parser("conv", help="the conv/inhibition core (inference)",
                       description="The conv/inhibition core of Conv1 (2x27x27 -> 30x23x23) or "
                                   "Conv2 (30x11x11 -> 200x7x7) for a number-format preset.")
    c.add_argument("--config", default=None, metavar="PRESET",
                   help="number formats: a preset (paper-float-equivalent, fpga-16 (default), "
                        "fpga-8, edge-4) or a TOML file")
    c.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    c.add_argument("--layer", choices=LAYERS, default="conv1", help="conv1 (default) or conv2")
    c.add_argument("--parallelism", type=int, default=None, metavar="L",
                   help="maps updated per cycle, a divisor of the maps (default 30 for conv1, "
                        "40 for conv2)")
    c.add_argument("--steps", type=int, default=12, help="time steps per image (default 12)")
    c.add_argument("--name", default="conv_core", help="Verilog module name (default conv_core)")
    c.add_argument("--no-lint", action="store_true", help="skip the Verilator lint")
    c.add_argument("--stat", action="store_true", help="also print Yosys statistics")
    c.add_argument("--debug", action="store_true", help="show tracebacks for input errors")
    c.set_defaults(func=_conv)
