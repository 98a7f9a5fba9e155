"""``spykehw verilog``: generate the Verilog of an RTL block, its JSON description, lint it."""

from __future__ import annotations

import argparse

from ..argtypes import count, existing_dir, output_dir, verilog_identifier
from ..export import load_export
from ..export.host import window_words
from ..fusesoc import write_core
from ..golden.design_point import DesignPoint
from ..golden.formats import DEFAULT_PRESET, load_formats
from ..golden.options import CONV1, CONV2, TIME_STEPS
from ..output import RunFolder
from ..sim.framework.lint_waivers import write_vlt

__all__ = ["register"]

LAYERS = ("conv1", "conv2")
DEFAULT_PARALLELISM = {"conv1": 30, "conv2": 40}
MAX_SPIKES = {"conv1": 1, "conv2": 4}     # Conv2's inputs are Pool1 neurons (spec 5.2)


def conv_config(preset_or_toml: str | None, layer: str, parallelism: int | None, steps: int):
    """The ConvCoreConfig the ``conv`` subcommands build (shared with ``cosim``)."""
    from ..rtl.conv_config import (
        ConvCoreConfig,  # hw extra: amaranth (all rtl/sim imports here)
    )

    fmt = load_formats(preset_or_toml or DEFAULT_PRESET)
    opts = CONV1 if layer == "conv1" else CONV2
    return ConvCoreConfig(options=opts, formats=fmt, steps=steps,
                          parallelism=DEFAULT_PARALLELISM[layer] if parallelism is None else parallelism,
                          max_spikes_per_input=MAX_SPIKES[layer])


def _emit(g, folder, args: argparse.Namespace, headline: str) -> int:
    """Record the generated files in the run folder, print the ports, lint and (optionally) the
    Yosys statistics: the same for every block. Returns the exit status (1 on lint warnings)."""
    # hw extra (Amaranth, cocotb): loaded only when this runs
    from ..sim.framework.lint import lint, yosys_stat

    vlt = write_vlt(g.verilog_path)
    core = write_core(g, vlt=vlt)
    for path, what in ((g.verilog_path, "Verilog"), (g.json_path, "parameters, number formats, ports"),
                       (g.rtlil_path, "RTLIL (for Yosys)"), (vlt, "Verilator lint waivers"),
                       (core, "FuseSoC core (CAPI2)")):
        folder.add(path.name, what)
    print(headline)
    for p in g.ports:
        sign = " signed" if p.signed else ""
        print(f"  {p.direction:6} {p.width:5}{sign:7} {p.name}")
    status = 0
    if not args.no_lint:
        warnings = lint(g.verilog_path, vlt=vlt)
        folder.result("lint_warnings", [str(w) for w in warnings])
        print(f"verilator --lint-only -Wall {vlt.name} {g.verilog_path.name}: {len(warnings)} warning(s) beyond the waivers")
        for w in warnings:
            print(f"  {w}")
        status = 1 if warnings else 0
    if args.stat:
        stat = yosys_stat(g)
        folder.result("yosys", {k: v for k, v in stat.items() if k != "memories"})
        print(f"yosys ({stat['level']}): {stat['cells']} cells, {stat['flip_flops']} flip-flops, "
              f"{stat['memory_bits']} memory bits")
    return status


def _conv(args: argparse.Namespace) -> int:
    # hw extra (Amaranth, cocotb): loaded only when this runs
    from ..rtl.conv_core import ConvCore
    from ..rtl.verilog import generate

    cfg = conv_config(args.config, args.layer, args.parallelism, args.steps)
    core = ConvCore(cfg)
    folder = RunFolder(args.out, "verilog", path=args.out,
                       args={"block": "conv", "config": cfg.formats.name, "layer": args.layer,
                             "parallelism": cfg.parallelism, "steps": cfg.steps})
    g = generate(core, args.name, args.out, core.params(), formats=cfg.formats)
    return _emit(g, folder, args,
                 f"{g.verilog_path}: {args.layer} conv core, {cfg.formats.name}, L = {cfg.parallelism} "
                 f"({cfg.groups} group{'s' if cfg.groups > 1 else ''}), V = {cfg.potential_bits} bits, "
                 f"threshold {cfg.threshold}")


def _classifier(args: argparse.Namespace) -> int:
    # hw extra (Amaranth, cocotb): loaded only when this runs
    from ..rtl.classifier import DEFAULT_SHAPE, ClassifierConfig, generate_classifier

    def opt(name):
        value = getattr(args, name)
        return DEFAULT_SHAPE[name] if value is None else value

    formats = load_formats(args.config or DEFAULT_PRESET)
    cfg = ClassifierConfig(opt("features"), opt("hidden"), opt("classes"), formats,
                           lanes=opt("lanes"), w2_on_chip=args.w2_on_chip)
    folder = RunFolder(args.out, "verilog", path=args.out,
                       args={"block": "classifier", "config": formats.name, **cfg.to_dict()})
    g = generate_classifier(cfg, args.out, name=args.name)
    w2 = "on chip" if cfg.w2_on_chip else f"through the memory port ({cfg.bytes_per_row:.0f} B per active feature)"
    return _emit(g, folder, args,
                 f"{g.verilog_path}: classifier {cfg.features} -> {cfg.hidden} -> {cfg.classes}, "
                 f"{formats.name}, L = {cfg.lanes} (G = {cfg.groups}), accumulators "
                 f"{cfg.hidden_acc_bits}/{cfg.output_acc_bits} bits, logits {cfg.logit_bits} bits, W2 {w2}")


def accelerator_point(args: argparse.Namespace):
    """The DesignPoint the ``accelerator`` subcommands build (shared with ``cosim``)."""
    return DesignPoint(formats=load_formats(args.config or ACCELERATOR_PRESET), hidden=args.hidden,
                       classes=args.classes, steps=args.steps, conv_lanes=args.conv_lanes,
                       classifier_lanes=args.classifier_lanes, weights=args.weights)


def accelerator_arguments(a: argparse.ArgumentParser) -> None:
    """Design-point options of the accelerator (Conv1 on 2x27x27 inputs, on-chip weights)."""
    a.add_argument("--hidden", type=count, default=128, help="hidden units (default 128)")
    a.add_argument("--classes", type=count, default=10, help="classes (default 10)")
    a.add_argument("--steps", type=count, default=TIME_STEPS, help=f"time steps per image (default {TIME_STEPS})")
    a.add_argument("--conv-lanes", type=count, default=30, help="conv core maps per cycle (default 30)")
    a.add_argument("--classifier-lanes", type=count, default=32, help="classifier lanes (default 32)")
    a.add_argument("--weights", choices=["on-chip", "external"], default="on-chip",
                   help="on-chip (default): every memory in block RAM; external: W2 over AXI4")


ACCELERATOR_PRESET = "fpga-8"


def _accelerator(args: argparse.Namespace) -> int:
    # hw extra (Amaranth, cocotb): loaded only when this runs
    from ..rtl.accelerator import generate_accelerator

    weights, source = None, "memories empty (load them over AXI4-Lite)"
    if args.export is not None:
        export = load_export(args.export)
        point, weights = export.point, window_words(export)
        source = f"memories initialised from {args.export} ({', '.join(sorted(weights))})"
    else:
        point = accelerator_point(args)
    folder = RunFolder(args.out, "verilog", path=args.out,
                       args={"block": "accelerator", "design_point": point.to_dict(), "point_id": point.id32,
                             "export": None if args.export is None else str(args.export)})
    g = generate_accelerator(point, args.out, name=args.name, weights=weights)
    return _emit(g, folder, args,
                 f"{g.verilog_path}: accelerator, Conv1 -> {point.features} -> {point.hidden} -> "
                 f"{point.classes}, {point.formats.name}, weights {point.weights}, POINT_ID {point.id32:#010x}; "
                 f"{source} (register map in {g.json_path.name})")


def _common_arguments(c: argparse.ArgumentParser, name: str) -> None:
    c.add_argument("--config", default=None, metavar="PRESET",
                   help="number formats: a preset (paper-float-equivalent, fpga-16 (default; "
                        f"{ACCELERATOR_PRESET} for the accelerator), fpga-8, edge-4) or a TOML file")
    c.add_argument("--out", type=output_dir, required=True, metavar="DIR", help="output folder")
    c.add_argument("--name", default=name, type=verilog_identifier, help=f"Verilog module name (default {name})")
    c.add_argument("--no-lint", action="store_true", help="skip the Verilator lint")
    c.add_argument("--stat", action="store_true", help="also print Yosys statistics")
    c.add_argument("--debug", action="store_true", help="show tracebacks for input errors")


def register(subparsers: argparse._SubParsersAction) -> None:
    # hw extra (Amaranth, cocotb): loaded only when this runs
    from ..rtl.classifier import DEFAULT_SHAPE

    p = subparsers.add_parser("verilog", help="generate the Verilog of an RTL block (+ JSON, lint)",
                              description="Write <name>.v, <name>.json (parameters, number formats, "
                                          "ports), <name>.il, <name>.vlt (Verilator lint waivers) and "
                                          "<name>.core (FuseSoC CAPI2) for an RTL block, then lint the "
                                          "Verilog with verilator -Wall <name>.vlt <name>.v.")
    sub = p.add_subparsers(dest="block", metavar="BLOCK", required=True)
    c = sub.add_parser("conv", help="the conv/inhibition core (inference)",
                       description="The conv/inhibition core of Conv1 (2x27x27 -> 30x23x23) or "
                                   "Conv2 (30x11x11 -> 200x7x7) for a number-format preset.")
    _common_arguments(c, "conv_core")
    c.add_argument("--layer", choices=LAYERS, default="conv1", help="conv1 (default) or conv2")
    c.add_argument("--parallelism", type=count, default=None, metavar="L",
                   help="maps updated per cycle, a divisor of the maps (default 30 for conv1, "
                        "40 for conv2)")
    c.add_argument("--steps", type=count, default=12, help="time steps per image (default 12)")
    c.set_defaults(func=_conv)

    k = sub.add_parser("classifier", help="the binary-activation classifier with exp-LUT softmax",
                       description="The classifier F -> H -> C (default 3630 -> 1500 -> 47, 64 lanes): "
                                   "W2 rows fetched through a memory port, add-only accumulation, "
                                   "binary hidden layer, floored logits, argmax and softmax words "
                                   "by the exp LUT.")
    _common_arguments(k, "classifier")
    for key, what in (("features", "input features F"), ("hidden", "hidden units H"),
                      ("classes", "classes C"), ("lanes", "hidden accumulators updated per cycle L")):
        k.add_argument(f"--{key}", type=count, default=None, help=f"{what} (default {DEFAULT_SHAPE[key]})")
    k.add_argument("--w2-on-chip", action="store_true",
                   help="keep W2 in an on-chip memory instead of the memory port")
    k.set_defaults(func=_classifier)

    a = sub.add_parser("accelerator", help="the whole accelerator top (AXI4-Stream, AXI4-Lite)",
                       description="Event checker -> conv core -> classifier -> result frames, with "
                                   "an AXI4-Lite register file (control, status, counters, errors, ID "
                                   "registers, weight window); every weight on chip. The JSON holds "
                                   "the register map and the beat formats.")
    _common_arguments(a, "accelerator")
    a.add_argument("--export", type=existing_dir, default=None, metavar="DIR",
                   help="a spykehw export folder: its design point, and every on-chip memory "
                        "initialised with its words (the bitstream classifies from configuration "
                        "on; the design-point options below are then ignored)")
    accelerator_arguments(a)
    a.set_defaults(func=_accelerator)
