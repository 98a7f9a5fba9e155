"""``spykehw fpga``: synthesis, place and route, resources, Fmax and images/s of the RTL blocks.

One point (one value of each of ``--config``, ``--parallelism``, ``--lanes``) writes one run
folder with ``report.json``, ``report.md`` and the tool logs. Comma-separated lists make a sweep:
one run folder per point under ``points/`` of a sweep folder (resumable with ``--resume``) and
the trade-off table ``sweep.md`` / ``sweep.csv`` / ``sweep.json`` (see :mod:`spykehw.fpga.sweep`).

Exit status: 0 when every point was implemented (or did not fit and ``--allow-no-fit`` was
given), 3 when a design does not fit the device, 1 when a tool failed, 2 on bad input.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from spykehw.fpga.bench import bench_key, read_bench
from spykehw.fpga.blocks import (
    BLOCK_CHOICES,
    DEFAULT_ACTIVE_FEATURES,
    VARIANTS,
    BlockSettings,
    build_blocks,
)
from spykehw.fpga.devices import TARGETS, device
from spykehw.fpga.reports import (
    render_sweep_csv,
    render_sweep_markdown,
    summary_line,
    sweep_row,
)
from spykehw.fpga.sweep import (
    code_version,
    point_key,
    read_accuracy,
    run_points,
    sweep_points,
)
from spykehw.fpga.tools import Stages
from spykehw.golden.formats import load_formats
from spykehw.golden.progress import Progress
from spykehw.output import RunFolder
from spykehw.quant.store import Store

from ..argtypes import count, existing_dir, output_dir, positive_float, workers
from ..export import load_export
from ..golden.errors import SpykehwError
from ..golden.options import CONV2, TIME_STEPS, PoolOptions
from ..golden.pool import max_pool_spikes

__all__ = ["register", "EXIT_NO_FIT", "EXIT_FAILED"]

EXIT_NO_FIT = 3
EXIT_FAILED = 1


def _ints(text: str, option: str, *, zero: bool = False) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SpykehwError(f"{option}: expected integers separated by commas, found {text!r}") from None
    if not values or any(v < (0 if zero else 1) for v in values) or len(set(values)) != len(values):
        kind = "distinct integers >= 0" if zero else "distinct positive integers"
        raise SpykehwError(f"{option}: expected {kind}, found {text!r}")
    return values


def _ram_styles(items: list[str] | None) -> tuple[tuple[str, str], ...]:
    # hw extra (Amaranth, cocotb): loaded only when this runs
    from spykehw.fpga.flow import RAM_STYLES

    out = []
    for item in items or []:
        pattern, sep, style = item.partition("=")
        if not sep or not pattern or style not in RAM_STYLES:
            raise SpykehwError(f"--ram-style: expected PATTERN=STYLE with STYLE one of "
                               f"{', '.join(RAM_STYLES)}, found {item!r}")
        out.append((pattern, style))
    return tuple(out)


def _command(args: argparse.Namespace, freq: float) -> str:
    """The command line that reproduces this run, defaults spelled out."""
    parts = ["spykehw", "fpga", "--block", args.block, "--target", args.target, "--config", args.config]
    if args.block in ("conv", "all", "accelerator"):
        parts += ["--parallelism", args.parallelism]
    if args.block == "conv" and args.layer != "conv1":
        parts += ["--layer", args.layer]
    if args.block == "conv" and args.learning:
        parts += ["--learning"]
    if args.block in ("conv", "all") and args.potentials != "block":
        parts += ["--potentials", args.potentials]
    if args.block in ("classifier", "all", "accelerator"):
        parts += ["--lanes", args.lanes]
    if args.block == "accelerator":
        parts += ["--variant", args.variant] + (["--export", str(args.export)] if args.export else [])
    parts += ["--freq", f"{freq:g}", "--pnr-seeds", args.pnr_seeds]
    if args.router != "router1":
        parts += ["--router", args.router]
    if args.block in ("classifier", "softmax", "all", "accelerator"):
        parts += ["--classes", str(args.classes), "--hidden", str(args.hidden)]
    if args.block in ("classifier", "all", "accelerator"):
        parts += ["--active-features", str(args.active_features)]
    for item in args.ram_style or []:
        parts += ["--ram-style", item]
    for flag in ("allow_no_fit", "placed_svg", "synth_only"):
        if getattr(args, flag):
            parts.append("--" + flag.replace("_", "-"))
    if args.accuracy is not None:
        parts += ["--accuracy", str(args.accuracy)]
    for b in args.bench or []:
        parts += ["--bench", str(b)]
    return " ".join(shlex.quote(p) for p in parts)


def _status_code(reports: list[dict], allow_no_fit: bool) -> int:
    if any(r["status"] == "failed" for r in reports):
        return EXIT_FAILED
    if any(r["status"] == "no-fit" for r in reports) and not allow_no_fit:
        return EXIT_NO_FIT
    return 0


def _main(args: argparse.Namespace) -> int:
    # hw extra (Amaranth, cocotb): loaded only when this runs
    from spykehw.fpga.flow import DEFAULT_FREQ_MHZ, FlowOptions, implement

    dev = device(args.target)
    configs = [c.strip() for c in args.config.split(",") if c.strip()]
    formats = {c: load_formats(c) for c in configs}        # bad presets fail before any work
    parallelisms = _ints(args.parallelism, "--parallelism")
    lanes = _ints(args.lanes, "--lanes")
    freq = args.freq if args.freq is not None else DEFAULT_FREQ_MHZ[dev.family]
    if args.active_features < 0:
        raise SpykehwError(f"--active-features: expected a count >= 0, found {args.active_features}")
    if freq <= 0:
        raise SpykehwError(f"--freq: expected a positive frequency in MHz, found {freq:g}")
    opts = FlowOptions(device=dev, freq_mhz=freq, seeds=tuple(_ints(args.pnr_seeds, "--pnr-seeds", zero=True)),
                       placed_svg=args.placed_svg,
                       ram_styles=_ram_styles(args.ram_style), route=not args.synth_only,
                       pnr_timeout_s=args.pnr_timeout, router=args.router)
    accuracy = None
    if args.accuracy is not None:
        accuracy = read_accuracy(args.accuracy)
    stages = Stages(enabled=not args.quiet)
    command = _command(args, freq)
    record = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"}

    bench = None
    if args.bench:
        bench = read_bench(args.bench)

    export = None
    if args.export is not None:
        if args.block != "accelerator":
            raise SpykehwError("--export: only for --block accelerator")
        export = load_export(args.export)

    if args.layer != "conv1" and args.block != "conv":
        raise SpykehwError(f"--layer {args.layer}: only for --block conv")

    def settings_for(config: str, p: int, ln: int) -> BlockSettings:
        layer = {} if args.layer == "conv1" else {
            # Conv2 as `run --layers 2` trains it by default (net4): its STDP constants, inputs
            # spiking up to 4 times (Pool1 without inhibition)
            "conv_options": CONV2, "max_spikes_per_input": max_pool_spikes(PoolOptions(), TIME_STEPS),
            "formats": formats[config].conv2_formats()}
        return BlockSettings(**{"formats": formats[config], **layer}, parallelism=p, lanes=ln,
                             classes=args.classes, hidden=args.hidden,
                             active_features=args.active_features, bench=bench,
                             variant=args.variant, export=export, learning=args.learning,
                             potential_memory=args.potentials)

    single = len(sweep_points(args.block, dev.name, configs, parallelisms, lanes)) == 1
    if not single and args.layer != "conv1":
        raise SpykehwError(f"--layer {args.layer}: one point only (a sweep builds Conv1)")
    if single and args.resume is None and args.workers <= 1 and not args.scheduler:
        build_blocks(args.block, settings_for(configs[0], parallelisms[0], lanes[0]))  # checks first
        folder = RunFolder(args.out, "fpga", args=record)
        stages.say(f"run folder: {folder.path}")
        report = implement(args.block, settings_for(configs[0], parallelisms[0], lanes[0]), opts,
                           folder, stages, command)
        print(summary_line(report))
        print(f"report: {folder.file('report.md')}")
        return _status_code([report], args.allow_no_fit)
    return _sweep(args, dev, configs, parallelisms, lanes, opts, accuracy, settings_for, stages,
                  command, record, bench)


def _sweep(args, dev, configs, parallelisms, lanes, opts, accuracy, settings_for, stages, command,
           record, bench) -> int:

    points = sweep_points(args.block, dev.name, configs, parallelisms, lanes)
    for p in points:        # every point's settings are checked before any work starts
        build_blocks(p.block, settings_for(p.config, p.parallelism, p.lanes))
    sweep = RunFolder(args.out, "fpga-sweep", args=record, path=args.resume)
    code = code_version()
    shared = {"freq_mhz": opts.freq_mhz, "seeds": list(opts.seeds), "placed_svg": opts.placed_svg,
              "ram_styles": [list(x) for x in opts.ram_styles], "route": opts.route,
              "pnr_timeout_s": opts.pnr_timeout_s, "router": opts.router,
              "classes": args.classes, "hidden": args.hidden,
              "active_features": args.active_features,
              "bench": [str(b) for b in args.bench or []],
              **({"potential_memory": args.potentials} if args.potentials != "block" else {})}
    keys = {p: point_key(p, {**shared, "bench": bench_key(bench),
                             "formats": settings_for(p.config, 1, 1).formats.to_dict()}, code)
            for p in points}
    store = Store(sweep.path / "store")
    how = "sequential" if args.workers <= 1 and not args.scheduler else \
        f"Dask, {args.scheduler or f'{args.workers} workers'}"
    stages.say(f"sweep of {len(points)} points in {sweep.path} ({how}; resumable with --resume {sweep.path})")

    def spec_for(p):
        return {**shared, "point": p.to_dict(), "folder": str(sweep.path / "points" / keys[p]),
                "command": command, "args": record, "quiet": args.quiet or args.workers > 1}

    rows = {}
    with Progress("fpga sweep", total=len(points), unit="pt", enabled=not args.quiet) as prog:
        def on_done(p, report, stored):
            acc = None if accuracy is None else \
                accuracy.lookup(p.config, settings_for(p.config, 1, 1).formats)
            rows[p] = sweep_row(p.to_dict(), report, acc)
            print(("(stored) " if stored else "") + summary_line(report), flush=True)
            prog.advance(1)

        reports = run_points(points, store, keys, spec_for, on_done, workers=args.workers,
                             scheduler=args.scheduler)
    table = [rows[p] for p in points]
    title = f"FPGA trade-off: {args.block} on {dev.name} at {opts.freq_mhz:g} MHz target"
    note = f"\nCommand: `{command}`\n"
    if accuracy is not None:
        note += f"\nAccuracy from {accuracy.source}{': ' + accuracy.note if accuracy.note else ''}.\n"
    sweep.write_json("sweep.json", {"points": table, "command": command, "code": code,
                                    "keys": {keys[p]: p.to_dict() for p in points}},
                     "trade-off table (JSON)")
    sweep.write_text("sweep.md", render_sweep_markdown(table, title) + note, "trade-off table (Markdown)")
    sweep.write_text("sweep.csv", render_sweep_csv(table), "trade-off table (CSV)")
    for p in points:
        sweep.manifest["files"][f"points/{keys[p]}/"] = {
            "description": "the point's run folder (report, tool logs; its own manifest)"}
        sweep.manifest["files"][f"store/points/{keys[p]}.json"] = {
            "description": "the point's report in the resumable store"}
    sweep.result("points", len(points))
    print(f"table: {sweep.file('sweep.md')}")
    return _status_code(reports, args.allow_no_fit)


def register(subparsers: argparse._SubParsersAction) -> None:
    # hw extra (Amaranth, cocotb): loaded only when this runs
    from spykehw.fpga.flow import RAM_STYLES, ROUTERS

    p = subparsers.add_parser(
        "fpga", help="synthesis, place and route: resources, Fmax and images/s on an FPGA",
        description="Generate the Verilog of an RTL block, synthesise it with Yosys, place and route "
                    "it with nextpnr (YoWASP builds, offline), and report LUTs, flip-flops, block RAM "
                    "and DSP use against the device, the maximum clock frequency, cycles and images "
                    "per second, and external-memory bandwidth (JSON + Markdown, with the tool logs). "
                    "Comma-separated --config/--parallelism/--lanes run a resumable sweep and write the "
                    "trade-off table. Exit status 3 when the design does not fit (unless "
                    "--allow-no-fit), 1 when a tool fails.")
    p.add_argument("--block", choices=BLOCK_CHOICES, default="conv",
                   help="conv (Conv1 core), classifier, softmax, all (every available block in one "
                        "design) or accelerator (the whole AXI top) (default conv)")
    p.add_argument("--variant", choices=VARIANTS, default="on-chip",
                   help="accelerator: on-chip (every weight in block RAM, default) or external (W2 "
                        "over AXI4)")
    p.add_argument("--export", type=existing_dir, default=None, metavar="DIR",
                   help="accelerator: a spykehw export: its design point (then --config, "
                        "--parallelism, --lanes, --hidden, --classes, --variant are ignored), and the "
                        "block RAM initialised with its weights")
    p.add_argument("--target", choices=TARGETS, default="ecp5-85k", help="device (default ecp5-85k)")
    p.add_argument("--config", default="fpga-16", metavar="PRESET[,PRESET...]",
                   help="number formats: preset names or TOML files (default fpga-16)")
    p.add_argument("--parallelism", default="1", metavar="L[,L...]",
                   help="conv core map lanes L, a divisor of 30 (Conv2: of 200) (default 1)")
    p.add_argument("--layer", choices=("conv1", "conv2"), default="conv1",
                   help="conv: the Conv1 core (default) or the Conv2 core (CONV2: 30x11x11 -> "
                        "200x7x7, inputs spiking up to 4 times, the conv2_stdp constants; one point)")
    p.add_argument("--learning", action="store_true",
                   help="conv: the learning core (ConvCoreConfig(learning=True): STDP competition, "
                        "homeostasis, update engine, snapshot copy)")
    p.add_argument("--potentials", choices=("block", "spram"), default="block",
                   help="conv: where the potentials live: block (block RAM, one read-modify-write "
                        "per cycle; default) or spram (iCE40 UltraPlus: SB_SPRAM256KA, a "
                        "read-modify-write every other cycle, the fired/touched/pending flags in "
                        "block RAM; the UP5K configuration)")
    p.add_argument("--lanes", default="64", metavar="L[,L...]",
                   help="classifier lanes: hidden accumulators per cycle (default 64)")
    p.add_argument("--active-features", type=count, default=DEFAULT_ACTIVE_FEATURES, metavar="N",
                   help="classifier cycle and traffic model: active features per image (default "
                        f"{DEFAULT_ACTIVE_FEATURES}, the upper end of rtl/classifier.py's 90..170)")
    p.add_argument("--classes", type=count, default=10, help="classes of the classifier/softmax (default 10)")
    p.add_argument("--hidden", type=count, default=1000, help="classifier hidden units (default 1000)")
    p.add_argument("--freq", type=positive_float, default=None, metavar="MHZ",
                   help="target clock for nextpnr (default 100 on ECP5, 30 on iCE40)")
    p.add_argument("--pnr-seeds", default="1", metavar="S[,S...]",
                   help="nextpnr placement seeds (default 1); with several, Fmax and images/s are "
                        "the median over them (e.g. --pnr-seeds 1,2,3)")
    p.add_argument("--out", type=output_dir, default=Path("runs"), help="where run folders go (default runs/)")
    p.add_argument("--resume", type=Path, default=None, metavar="DIR",
                   help="continue a sweep in DIR (points already reported are skipped)")
    p.add_argument("--workers", type=workers, default=1, metavar="N",
                   help="sweep: run N points at once on a Dask LocalCluster (default 1: one after the "
                        "other in this process)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="sweep: run the points on an existing Dask scheduler")
    p.add_argument("--accuracy", type=Path, default=None, metavar="FILE",
                   help="accuracies for the trade-off table: spykehw quant's results.csv, or a CSV with "
                        "columns config|preset and accuracy")
    p.add_argument("--bench", action="append", type=Path, metavar="FILE",
                   help="measured cycles (and classifier traffic) per image: the JSON of python -m "
                        "spykehw.sim.conv.bench / bench_classifier --out FILE; repeatable")
    p.add_argument("--allow-no-fit", action="store_true",
                   help="exit 0 when the design does not fit (the report still says so)")
    p.add_argument("--placed-svg", action="store_true", help="also write nextpnr's placement picture")
    p.add_argument("--ram-style", action="append", metavar="PATTERN=STYLE",
                   help=f"Yosys ram_style for memories named PATTERN (STYLE: {', '.join(RAM_STYLES)}); "
                        "repeatable, e.g. 'weight_mem*=block'")
    p.add_argument("--synth-only", action="store_true", help="stop after synthesis and the fit check")
    p.add_argument("--router", choices=ROUTERS, default="router1",
                   help="nextpnr router (default router1, nextpnr's default; router2 is often much "
                        "faster on large, congested designs)")
    p.add_argument("--pnr-timeout", type=positive_float, default=None, metavar="SECONDS",
                   help="give up place and route after this long")
    p.add_argument("--quiet", action="store_true", help="no stage or progress lines")
    p.add_argument("--debug", action="store_true", help="show tracebacks for input errors")
    p.set_defaults(func=_main)
