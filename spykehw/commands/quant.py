"""``spykehw quant``: number-format sweeps of the integer pipeline on Dask (see :mod:`spykehw.quant`)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from ..argtypes import count, count_list, nonneg_int, output_dir, workers
from ..golden.progress import format_duration
from ..options_args import add_options_arguments
from ..output import RunFolder
from ..quant.points import (
    Sweep,
    SweepError,
    build_points,
    network_options,
    parse_int_list,
    parse_lut,
    parse_overrides,
    parse_str_list,
    sweep_from_toml,
)
from ..quant.report import report_meta, report_sections, run_lines, write_report
from ..quant.sweep import load_saved, parse_injection, plan_sweep, run_sweep, save_plan
from . import HELP

__all__ = ["register"]

_EPILOG = """\
examples:
  spykehw quant                                   # quick: embedded MNIST sample, default axes
  spykehw quant --dataset mnist,emnist --epochs 10 --repeats 1
  spykehw quant --dataset mnist --conv-bits 16 --rounding half_up --classifier-bits none \\
      --lut none --epochs 40                      # float vs fpga-16 only (the acceptance gap)
  spykehw quant --point conv.weight_bits=6,stdp.rounding=stochastic,classifier.hidden_weight_bits=8
  spykehw quant --dataset mnist --base fpga-8 --conv-bits none --lut none \\
      --classifier-bits 2,4,8 --hidden 128,256,512   # each hidden size x each classifier bits
  spykehw quant --sweep my-sweep.toml --dir runs/my-sweep     # rerun the same --dir to resume

A sweep file (TOML) takes the same settings as the flags (flags win):
  dataset = ["mnist", "emnist"]
  base = "fpga-16"
  conv_bits = [4, 6, 8, 12, 16]
  rounding = ["truncate", "half_up", "stochastic"]
  classifier_bits = [4, 6, 8, 12, 16]
  lut = ["8:8", "16:10", "32:16"]
  hidden = [128, 256]
  repeats = 1
  epochs = 10
  [[point]]
  conv.weight_bits = 6
  stdp.rounding = "stochastic"
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "quant", help=HELP["quant"],
        description="Run the integer pipeline (encoder, STDP Conv1, features, classifier trained in "
                    "float then quantized) at many number formats and the float pipeline as the "
                    "baseline, on one or more datasets, in parallel on Dask. Finished points are "
                    "stored as they complete; rerunning with the same --dir resumes and recomputes "
                    "nothing. Writes results.csv, results.md, summary.json and plots.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("what to sweep")
    g.add_argument("--dataset", help="comma list of mnist-sample (default), mnist, emnist (47 classes), "
                                     "emnist-balanced")
    g.add_argument("--data-dir", type=Path, help="folder with the real IDX files (default: the standard "
                                                 "data folders, e.g. the shared datasets)")
    g.add_argument("--base", "--config", dest="base",
                   help="base formats: a preset (fpga-16 (default), fpga-8, edge-4, "
                        "paper-float-equivalent) or a formats TOML file")
    g.add_argument("--conv-bits", help="Conv1 weight bits, each with every --rounding mode "
                                       "(default 4,6,8,12,16; 'none' = axis off)")
    g.add_argument("--rounding", help="STDP rounding modes for the conv axis "
                                      "(default truncate,half_up,stochastic)")
    g.add_argument("--rounding-bits", help="cross the rounding modes only with these conv bits (e.g. "
                                           "4,6,8); the other conv bits use the base's rounding "
                                           "(default: every conv bits value)")
    g.add_argument("--classifier-bits", help="hidden and output weight bits (default 4,6,8,12,16; 'none' = off)")
    g.add_argument("--frac-rule", choices=("range", "preset"),
                   help="classifier fraction bits: 'range' (default: largest fraction at which no "
                        "trained weight saturates) or 'preset' (keep the base's integer bits)")
    g.add_argument("--bias-extra", type=nonneg_int, help="classifier biases are this many bits wider (default 4)")
    g.add_argument("--lut", help="exp LUT ENTRIES:BITS[:SOFTMAX_BITS] list (default 8:8,16:10,32:16; 'none' = off)")
    g.add_argument("--point", action="append", metavar="KEY=V,...",
                   help="an extra point: dotted overrides of the base (repeatable), e.g. "
                        "conv.weight_bits=6,stdp.rounding=stochastic")
    g.add_argument("--sweep", type=Path, help="a TOML sweep file (see below); flags override it")
    s = p.add_argument_group("stages")
    s.add_argument("--repeats", type=count, help="seeds per point (Conv1 init and classifier; default 1)")
    s.add_argument("--epochs", type=count, help="classifier epochs (default: the authors' 40 MNIST, 35 EMNIST)")
    s.add_argument("--hidden", type=count_list, metavar="H[,H...]",
                   help="hidden neurons; several sizes make an axis crossed with every other, each with "
                        "its own float baseline (default: 1000 MNIST, 1500 EMNIST)")
    s.add_argument("--qat", type=nonneg_int, metavar="EPOCHS",
                   help="quantization-aware fine-tuning epochs after post-training quantization (default 0)")
    s.add_argument("--stdp-images", type=count, help="images for Conv1 STDP (default 6000)")
    add_options_arguments(s)
    s.add_argument("--train-limit", type=count, help="use only the first N training images")
    s.add_argument("--test-limit", type=count, help="use only the first N test images")
    r = p.add_argument_group("running")
    r.add_argument("--out", type=output_dir, default=Path("runs"), help="where a new sweep folder goes (default runs/)")
    r.add_argument("--dir", type=output_dir, help="the sweep folder to use: created, or resumed if it exists")
    r.add_argument("--store", type=output_dir, help="the results store (default: DIR/store); several sweep "
                                              "folders may share one store, and so its cached stages")
    r.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler (default: a "
                                                          "LocalCluster on this machine)")
    r.add_argument("--workers", type=workers, help="LocalCluster worker processes (default: all usable cores)")
    r.add_argument("--retries", type=nonneg_int, default=2, help="retries of a failed or lost task (default 2)")
    r.add_argument("--dry-run", action="store_true", help="list the points (and which are stored) and exit")
    r.add_argument("--report-only", action="store_true",
                   help="rewrite the report of --dir from its store, computing nothing")
    r.add_argument("--quiet", action="store_true", help="no progress lines")
    r.add_argument("--debug", action="store_true", help="show tracebacks for input errors")
    # Testing aid: make the point with this label raise once (or always) to exercise retries.
    r.add_argument("--inject-failure", metavar="LABEL[:once|always]", help=argparse.SUPPRESS)
    p.set_defaults(func=_main)


def _sweep(args: argparse.Namespace) -> Sweep:
    values = sweep_from_toml(args.sweep) if args.sweep else {}
    flags = {
        "datasets": (args.dataset, lambda v: parse_str_list(v, "--dataset")),
        "base": (args.base, str),
        "conv_bits": (args.conv_bits, lambda v: parse_int_list(v, "--conv-bits")),
        "rounding": (args.rounding, lambda v: parse_str_list(v, "--rounding")),
        "rounding_bits": (args.rounding_bits, lambda v: parse_int_list(v, "--rounding-bits")),
        "classifier_bits": (args.classifier_bits, lambda v: parse_int_list(v, "--classifier-bits")),
        "frac_rule": (args.frac_rule, str),
        "bias_extra": (args.bias_extra, int),
        "lut": (args.lut, lambda v: parse_lut(v, "--lut")),
        "custom": (args.point, lambda v: tuple(parse_overrides(t, "--point") for t in v)),
        "repeats": (args.repeats, int),
        "epochs": (args.epochs, int),
        "hidden": (args.hidden, tuple),
        "qat": (args.qat, int),
        "stdp_images": (args.stdp_images, int),
        "train_limit": (args.train_limit, int),
        "test_limit": (args.test_limit, int),
        "options": (args.options, str),
        "settings": (args.settings, tuple),
    }
    for key, (value, parse) in flags.items():
        if value is not None:
            values[key] = parse(value)
    return Sweep(**values)


def _main(args: argparse.Namespace) -> int:
    if args.report_only:
        if args.dir is None:
            raise SweepError("--report-only: needs --dir, the sweep folder to report on")
        saved = load_saved(args.dir, args.store)
        folder = RunFolder(args.out, "quant", path=args.dir, args={"report_only": True, "argv": sys.argv[1:]})
        for name in ("points.json", "sweep.json", "run.json"):
            if folder.file(name).is_file():
                folder.add(name, "recorded by the last run")
        meta = report_meta(saved.sweep, saved.code, saved.dataset_ids, folder,
                           saved.lines + ["report rewritten from the store (spykehw quant --report-only)"],
                           saved.failed)
        _summary_lines(write_report(folder, saved.results, report_sections(saved.sweep), meta))
        return 0

    sweep = _sweep(args)
    for ds in sweep.datasets:  # a bad options file fails here, with one line naming the key
        for h in sweep.hidden or (None,):
            network_options(sweep, ds, 0, h)
    points = build_points(sweep)  # impossible combinations fail here, before any work
    inject = parse_injection(args.inject_failure)
    if args.dry_run:
        root = args.store or ((args.dir / "store") if args.dir else Path(tempfile.mkdtemp()) / "store")
        plan = plan_sweep(sweep, root, data_dir=args.data_dir, inject=inject, points=points)
        for t in plan.tasks:
            state = "stored" if plan.store.has_point(t.keys.point) else "to run"
            print(f"{t.dataset:14s} r{t.repeat} {t.label:40s} {'+'.join(t.axes):18s} {t.keys.point} {state}")
        print(f"{len(plan.tasks)} points, {len({t.keys.conv1 for t in plan.tasks})} Conv1 stages, "
              f"{len({t.keys.classifier for t in plan.tasks})} classifier trainings")
        return 0
    folder = RunFolder(args.out, "quant", path=args.dir, args={
        "sweep": sweep.to_dict(), "data_dir": args.data_dir, "store": args.store, "scheduler": args.scheduler,
        "workers": args.workers, "retries": args.retries, "argv": sys.argv[1:]})
    plan = plan_sweep(sweep, args.store or folder.path / "store", data_dir=args.data_dir, inject=inject,
                      points=points)
    save_plan(folder, plan)
    print(f"spykehw quant: sweep folder {folder.path}, store {plan.store.root} (rerun with "
          f"--dir {folder.path} to resume)", flush=True)
    try:
        # SIGTERM arrives as a KeyboardInterrupt too (spykehw.cli): the cluster is closed, the
        # resume hint printed and the run folder marked interrupted.
        outcome = run_sweep(plan, scheduler=args.scheduler, workers=args.workers,
                            retries=args.retries, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"spykehw quant: stopped; finished points are stored, rerun with --dir {folder.path} "
              f"to resume", file=sys.stderr, flush=True)
        raise
    lines = run_lines(outcome, args.scheduler, args.workers)
    folder.write_json("run.json", {"lines": lines, "failed": outcome.failed},
                      "what the last run computed and how long it took")
    meta = report_meta(sweep, plan.code, plan.dataset_ids, folder, lines, outcome.failed)
    _summary_lines(write_report(folder, outcome.results, report_sections(sweep), meta))
    folder.result("stages", {"computed": outcome.computed, "cached": outcome.cached,
                             "points_total": len(plan.tasks), "points_already_stored": outcome.already_done,
                             "failed": outcome.failed})
    folder.result("seconds", round(outcome.seconds, 1))
    print(f"done in {format_duration(outcome.seconds)}: {len(outcome.results)}/{len(plan.tasks)} points "
          f"stored, {len(outcome.failed)} failed; report {folder.file('results.md')}")
    if outcome.failed:
        print(f"spykehw quant: {len(outcome.failed)} point(s) failed; rerun with --dir {folder.path} "
              f"to retry them (finished points are kept)", file=sys.stderr)
        return 1
    return 0


def _summary_lines(summary: dict) -> None:
    for ds, d in summary.items():
        line = f"[{ds}] float {100 * d['float']['mean']:.2f}%" if d["float"] else f"[{ds}] float n/a"
        if d["base"] and d["base"].get("gap_points") is not None:
            line += (f"; {d['base']['label']} {100 * d['base']['acc']['mean']:.2f}% "
                     f"(gap {d['base']['gap_points']:+.2f} points)")
        print(line)
        for tol, s in d["smallest"].items():
            parts = []
            if s["conv"]:
                parts.append(f"conv {s['conv']['value'][0]} bits ({s['conv']['value'][1]})")
            if s["classifier"]:
                parts.append(f"classifier {s['classifier']['value'][0]} bits")
            if s["lut"]:
                parts.append(f"LUT {s['lut']['value'][0]}:{s['lut']['value'][1]}")
            print(f"[{ds}] smallest within {tol} points of float: " + (", ".join(parts) or "none"))
