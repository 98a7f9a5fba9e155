"""``spykehw cosim``: co-simulate generated Verilog against golden vectors (Verilator/Icarus)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..accelerator_cosim import cosim_export, train_and_export
from ..argtypes import count, existing_dir, existing_file, output_dir, probability
from ..conv2_run import load_conv2_run
from ..errors import SpykehwError
from ..export import load_export
from ..golden.formats import DEFAULT_PRESET, load_formats
from ..golden.options import NetworkOptions
from ..golden.progress import Progress
from ..output import RunFolder
from ..sim.framework.toolchain import find_simulator, missing_reason
from ..sim.framework.vectors import read_vectors
from .verilog import accelerator_arguments, accelerator_point, conv_config

__all__ = ["register"]


def _waves_argument(parser: argparse.ArgumentParser, where: str) -> None:
    """``--waves``, the same for every block: the simulator runs record FST waveforms."""
    parser.add_argument("--waves", action="store_true",
                        help=f"record the simulator's waveform (FST, for GTKWave or Surfer; {where}); "
                             "choose few images")


def _print_waveforms(paths) -> None:
    for path in paths:
        print(f"waveform (FST, GTKWave or Surfer): {path}")


def _missing(simulator: str) -> bool:
    """True (after one line on stderr) when ``simulator`` is not installed."""
    if find_simulator(simulator) is None:
        print(f"spykehw cosim: {simulator} unavailable: {missing_reason(simulator)}", file=sys.stderr)
        return True
    return False


def _learn(args: argparse.Namespace) -> int:
    """``spykehw cosim learn``: the long STDP run, printed as JSON; exit status 1 if not identical."""
    import json

    from ..sim.learning.cosim import (  # the hw extra (Amaranth, cocotb) is optional
        long_run,
        long_run_conv2,
    )

    if args.waves and args.out is None:
        raise SpykehwError("--waves: needs --out DIR (the waveform is kept there)")
    common = dict(epochs=args.epochs, simulator=args.simulator, folder=args.out, data_dir=args.data_dir,
                  optimize=not args.no_optimize, every_image=not args.batched, waves=args.waves)
    if args.layer == "conv2":
        opts, fmt, conv1, note = _conv2_network(args)
        print(f"Conv2 STDP in the RTL on the Pool1 spike trains of {args.images} MNIST training "
              f"images (Conv1 weights: {note}); golden training, building, simulating...", file=sys.stderr)
        out = long_run_conv2(args.images, conv1, opts, fmt, parallelism=args.parallelism or 40,
                             conv1_note=note, **common)
    else:
        if args.run is not None:
            raise SpykehwError("--run: only with --layer conv2 (Conv1 learns from the authors' initial weights)")
        out = long_run(args.images, parallelism=args.parallelism or 30, formats=args.config or DEFAULT_PRESET,
                       **common)
    print(json.dumps(out, indent=1))
    return 0 if out["identical"] else 1


def _conv2_network(args: argparse.Namespace):
    """Options, formats and Conv1 weights of the Conv2 hardware: those of ``--run``, or without
    it the default options, ``--config`` and Conv1 STDP on 300 sample images."""
    from ..sim.conv.vector_gen import conv1_weights  # the hw extra (Amaranth) is optional

    if args.run is not None:
        if args.config is not None:
            raise SpykehwError("--config: with --run the number formats are the run's")
        run = load_conv2_run(args.run)
        return run.options, run.formats, run.conv1_weights, f"{run.path / 'int_state.npz'}"
    fmt = load_formats(args.config or DEFAULT_PRESET)
    w, note = conv1_weights(fmt, data_dir=args.data_dir)
    return NetworkOptions(), fmt, w, note


def _conv2_vectors_check(args: argparse.Namespace) -> None:
    if args.run is None:
        raise SpykehwError("--layer conv2: needs --run RUN, a `spykehw run --layers 2` folder (its "
                           "trained Conv2 weights)")
    if args.config is not None or args.state is not None:
        raise SpykehwError("--layer conv2: the formats and weights are the run's (no --config, --state)")


def _conv2_vectors(args: argparse.Namespace):
    """``cosim conv --layer conv2``: the core config and a conv-infer set of the run's trained Conv2
    on the Pool1 spike trains of the first ``--count`` test images."""
    from ..sim.conv.layer2 import (  # the hw extra (Amaranth) is optional
        conv2_core_config,
        conv2_infer_vectors,
    )
    from ..sim.conv.vector_gen import source_test_images

    run = load_conv2_run(args.run)
    cfg = conv2_core_config(run.options, run.formats, args.parallelism)
    images, labels, sources = source_test_images(args.source, args.count, data_dir=args.data_dir)
    print(f"vectors: the Pool1 spike trains of {args.count} {args.source} test images (rows 0.."
          f"{args.count - 1}) through Conv2 of {run.describe()}", file=sys.stderr)
    vs = conv2_infer_vectors(
        images, labels, run.conv1_weights, run.conv2_weights, run.options, run.formats,
        sources={**sources, "conv2": f"trained Conv2 of {run.path / 'int_conv2_state.npz'}",
                 "events": "golden pipeline2.pool1_spikes (Conv1 of int_state.npz, the run's pool1 options)"},
        description=f"conv2 of {run.path}: {args.count} {args.source} test images' Pool1 spike trains; "
                    "expected values from golden run_conv")
    return cfg, vs


def _conv(args: argparse.Namespace) -> int:
    # hw extra (amaranth, cocotb) for the sim.* imports of every command here
    from ..sim.conv.cosim import build_conv_cosim, cosim_vector_file
    from ..sim.conv.harness import LONG_RUN_DEPTHS
    from ..sim.conv.vector_gen import (
        KIND,
        conv1_weights,
        core_config,
        source_vectors,
        write_vector_set,
    )

    if args.pool1_rtl and (args.layer != "conv2" or args.vectors is not None):
        raise SpykehwError("--pool1-rtl: only with --layer conv2 --run RUN (not --vectors)")
    if args.layer == "conv2" and args.vectors is None:
        _conv2_vectors_check(args)
    if _missing(args.simulator):
        return 2
    if args.pool1_rtl:
        return _conv2_chain(args)
    folder = RunFolder(args.out, "cosim-conv", args=vars(args) | {"func": None})
    if args.vectors is not None:
        vs = read_vectors(args.vectors, kind=KIND)
        vectors = args.vectors
        cfg = core_config(vs, args.parallelism)
    elif args.layer == "conv2":
        cfg, vs = _conv2_vectors(args)
        vectors = write_vector_set(folder.file("vectors.npz"), vs)
        folder.add("vectors.npz", f"conv-infer vectors (Conv2): {vs.description}")
    else:
        if args.run is not None:
            raise SpykehwError("--run: only with --layer conv2 (Conv1 weights: --state)")
        cfg = conv_config(args.config, "conv1", args.parallelism, 12)
        weights, note = conv1_weights(cfg.formats, state=args.state, data_dir=args.data_dir)
        print(f"vectors: {args.count} {args.source} test images (rows 0..{args.count - 1}), "
              f"weights: {note}", file=sys.stderr)
        vs = source_vectors(cfg.formats, args.source, args.count, first=True, weights=weights,
                            weights_note=note, data_dir=args.data_dir)
        vectors = write_vector_set(folder.file("vectors.npz"), vs)
        folder.add("vectors.npz", f"conv-infer vectors: {vs.description}")
    print(f"building the harness for {args.simulator} (L = {cfg.parallelism})...", file=sys.stderr)
    cosim = build_conv_cosim(cfg, args.simulator, folder.file("build"), optimize=not args.no_optimize,
                             **LONG_RUN_DEPTHS)
    n = int(vs["weight_set"].shape[0])
    with Progress("cosim", total=n, unit="img", enabled=not args.quiet) as progress:
        summary = cosim_vector_file(cosim, vectors, folder.file("runs"), chunk=args.chunk,
                                    stall=args.stall, progress=progress, waves=args.waves)
    _write_summary(folder, summary, f"compared on {args.simulator}")
    for line in summary["mismatch_lines"]:
        print(f"  {line}")
    if summary["waveform"]:
        print(f"waveform of the first mismatching image: {summary['waveform']}")
    _print_waveforms(summary["waveforms"])
    print(f"results: {folder.path}")
    if summary["images"] != summary["images_in_file"]:
        print(f"spykehw cosim: error: {summary['images']} images compared, the vector file holds "
              f"{summary['images_in_file']}", file=sys.stderr)
        return 1
    return 0 if summary["mismatches"] == 0 else 1


def _conv2_chain(args: argparse.Namespace) -> int:
    """``cosim conv --layer conv2 --pool1-rtl``: Conv1 core -> Pool1 -> Conv2 core as one design
    on the encoder's spikes of the first ``--count`` test images."""
    from ..sim.pool1.chain import (  # the hw extra (Amaranth, cocotb) is optional
        build_chain_cosim,
        chain_vectors,
        run_chain_cosim,
        write_chain_vectors,
    )
    from ..sim.conv.vector_gen import source_test_images

    run = load_conv2_run(args.run)
    folder = RunFolder(args.out, "cosim-conv2-chain", args=vars(args) | {"func": None})
    images, labels, sources = source_test_images(args.source, args.count, data_dir=args.data_dir)
    print(f"vectors: {args.count} {args.source} test images (rows 0..{args.count - 1}) through "
          f"Conv1 -> Pool1 -> Conv2 of {run.describe()}", file=sys.stderr)
    vs = chain_vectors(images, labels, run.conv1_weights, run.conv2_weights, run.options, run.formats,
                       conv2_parallelism=args.parallelism,
                       sources={**sources, "weights": f"{run.path / 'int_state.npz'}, "
                                                      f"{run.path / 'int_conv2_state.npz'}"},
                       description=f"Conv1 -> Pool1 -> Conv2 of {run.path}: {args.count} {args.source} "
                                   "test images; expected values from the golden second layer")
    vectors = write_chain_vectors(folder.file("vectors.npz"), vs)
    folder.add("vectors.npz", f"layer2-chain vectors: {vs.description}")
    print(f"building Conv1 core -> Pool1 -> Conv2 core for {args.simulator}...", file=sys.stderr)
    design, build = build_chain_cosim(run.options, run.formats, run.conv1_weights, run.conv2_weights,
                                      args.simulator, folder.file("build"),
                                      conv2_parallelism=args.parallelism, waves=args.waves)
    with Progress("cosim", total=args.count, unit="img", enabled=not args.quiet) as progress:
        summary = run_chain_cosim(design, build, vectors, folder.file("runs"), chunk=args.chunk,
                                  stall="0.2:1" if args.stall else "", progress=progress)
    _write_summary(folder, summary, f"through Conv1 -> Pool1 ({design.params['pool1']['mode']}) "
                                    f"-> Conv2 on {args.simulator}")
    for line in summary["mismatch_lines"] + summary["failures"][:5]:
        print(f"  {line}")
    print(f"results: {folder.path}")
    ok = summary["images"] == summary["images_in_file"] and summary["mismatches"] == 0 and not summary["failures"]
    return 0 if ok else 1


def _write_summary(folder: RunFolder, summary: dict, what: str) -> None:
    """A conv co-simulation's summary into the run folder and its one-line result."""
    folder.write_json("summary.json", summary, "mismatches, cycles and images/s")
    for k in ("images", "images_in_file", "mismatches", "cycles_per_image", "images_per_s"):
        folder.result(k, summary[k])
    print(f"{summary['images']} of {summary['images_in_file']} images {what}: "
          f"{summary['mismatches']} mismatches, "
          f"{summary['cycles_per_image']:.0f} cycles/image, {summary['images_per_s']:.2f} images/s "
          f"(testbench wall time; {summary['wall_s']:.1f} s in all)")


def _classifier(args: argparse.Namespace) -> int:
    # hw extra (Amaranth, cocotb): loaded only when this runs
    from ..sim.classifier.long_run import long_run_chain, long_run_classifier

    if _missing(args.simulator):
        return 2
    hidden = args.hidden or (1500 if args.dataset == "emnist" else 1000)
    what = "end to end (conv core RTL -> classifier RTL)" if args.end_to_end else "classifier RTL"
    folder = RunFolder(args.out, "cosim-classifier", args=vars(args) | {"func": None})
    print(f"{args.images} {args.dataset} test images, {what}, 3630 -> {hidden}, {args.lanes} lanes, "
          f"on {args.simulator}: training the classifier (cached after the first run), building, "
          "simulating...", file=sys.stderr)
    common = dict(lanes=args.lanes, folder=folder.file("work"), simulator=args.simulator,
                  epochs=args.epochs, hidden=hidden, data_dir=args.data_dir, waves=args.waves)
    if args.end_to_end:
        summary = long_run_chain(args.dataset, args.images, **common)
        agree = summary["chain_class_equals_golden"]
    else:
        summary = long_run_classifier(args.dataset, args.images, **common)
        agree = summary["rtl_classes_equal_golden"]
    folder.write_json("summary.json", summary, "mismatches, accuracy, cycles, times")
    for k in ("images", "mismatches", "rtl_accuracy", "golden_accuracy"):
        folder.result(k, summary[k])
    n = summary["images"]
    cycles = (f"conv core {summary['conv_cycles_per_image']:,.0f} + classifier "
              f"{summary['classifier_cycles_per_image']:,.0f} cycles/image" if args.end_to_end
              else f"{summary['cycles_per_image']:,.0f} cycles/image, "
                   f"{summary['bytes_fetched_per_image']:,.0f} bytes fetched/image")
    print(f"{n} images on {args.simulator}: {summary['mismatches']} mismatching values "
          f"({summary['checked']} checked); RTL class = golden class for {agree}/{n}; accuracy "
          f"{100 * summary['rtl_accuracy']:.2f}% (golden {100 * summary['golden_accuracy']:.2f}%); {cycles}")
    for line in summary["first_mismatches"]:
        print(f"  {line}")
    _print_waveforms(summary["waveforms"])
    print(f"results: {folder.path}")
    if summary.get("images_compared", n) != n:
        print(f"spykehw cosim: error: {summary['images_compared']} images compared, {n} expected",
              file=sys.stderr)
        return 1
    return 0 if summary["passed"] and agree == n else 1


def _accelerator(args: argparse.Namespace) -> int:

    if _missing(args.simulator):
        return 2
    folder = RunFolder(args.out, "cosim-accelerator", args=vars(args) | {"func": None})
    if args.export is None:
        point = accelerator_point(args)
        print(f"training a network on {args.dataset} for the accelerator (3630 -> {point.hidden} -> the "
              f"dataset's classes, {point.formats.name}; cached after the first run) and exporting it...",
              file=sys.stderr)
        export_dir = train_and_export(args.dataset, point, folder.file("export"), epochs=args.epochs,
                                      data_dir=args.data_dir)
    else:
        export_dir = args.export
    export = load_export(export_dir)
    point = export.point
    print(f"{args.images} {args.dataset} test images through the accelerator ({point.features} -> "
          f"{point.hidden} -> {point.classes}, {point.formats.name}, weights {point.weights}, POINT_ID "
          f"{point.id32:#010x}) on {args.simulator}, weights from {export_dir}: building, simulating...",
          file=sys.stderr)
    with Progress("cosim", total=args.images, unit="frame", enabled=not args.quiet) as progress:
        summary = cosim_export(export, args.dataset, args.images, simulator=args.simulator,
                               folder=folder.file("work"), stall=args.stall_rate, chunk=args.chunk or 0,
                               malformed=args.malformed, optimize=not args.no_optimize, data_dir=args.data_dir,
                               progress=progress, preloaded=args.preloaded, waves=args.waves)
    folder.write_json("summary.json", summary, "mismatches, cycles per image, images/s, accuracy")
    for k in ("images", "frames_sent", "frames_compared", "mismatches", "cycles_per_image", "images_per_s_sim"):
        folder.result(k, summary[k])
    acc = summary.get("rtl_accuracy")
    print(f"{summary['frames_sent']} frames sent, {summary['frames_compared']} result frames compared on "
          f"{args.simulator}: {summary['mismatches']} mismatches; RTL class = golden for "
          f"{summary['rtl_class_equals_golden']}/{summary['images']} images"
          + (f", accuracy {100 * acc:.2f}%" if acc is not None else "")
          + f"; {summary['busy_cycles_per_image']:,.0f} busy cycles/image, "
          f"{summary['images_per_s_sim'] or 0:.1f} simulated images/s"
          + (f"; W2 read {summary['w2_bytes_per_image']:,.0f} bytes/image in "
             f"{summary['w2_bursts_per_image']:.1f} bursts" if summary.get("w2_bytes_per_image") else ""))
    for line in summary["first_mismatches"]:
        print(f"  {line}")
    _print_waveforms(summary["waveforms"])
    print(f"results: {folder.path}")
    return 0 if summary["passed"] and summary["mismatches"] == 0 else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("cosim", help="co-simulate the RTL against the golden model",
                              description="Generate, build and co-simulate an RTL block on real "
                                          "images (or a vector file) and report mismatches.")
    sub = p.add_subparsers(dest="block", metavar="BLOCK", required=True)
    c = sub.add_parser("conv", help="the conv core on real images (a long run)",
                       description="Conv1 core (or with --layer conv2 the Conv2 core and a run's trained "
                                   "weights): the first COUNT test images through the integer "
                                   "golden model and the generated Verilog; every step of every "
                                   "image is compared. Exit status 1 on any mismatch.")
    c.add_argument("--layer", choices=("conv1", "conv2"), default="conv1",
                   help="conv1 (default): Conv1 on the images' encoding; conv2: Conv2 on their real Pool1 "
                        "spike trains, with the trained Conv1 and Conv2 of --run")
    c.add_argument("--run", type=existing_dir, default=None, metavar="RUN",
                   help="--layer conv2: a `spykehw run --layers 2` folder (int_state.npz, "
                        "int_conv2_state.npz; its options and formats)")
    c.add_argument("--count", type=count, default=2000, help="test images (default 2000)")
    c.add_argument("--source", choices=["mnist", "mnist-sample", "emnist"], default="mnist",
                   help="image source (default mnist: the 10,000 test images)")
    c.add_argument("--vectors", type=existing_file, default=None, metavar="FILE",
                   help="co-simulate this conv-infer file instead")
    c.add_argument("--simulator", choices=["verilator", "icarus"], default="verilator")
    c.add_argument("--config", default=None, metavar="PRESET",
                   help="number formats: a preset (default fpga-16) or a TOML file")
    c.add_argument("--parallelism", type=count, default=None, metavar="L",
                   help="maps per cycle (default 30; Conv2: 40)")
    c.add_argument("--state", type=existing_file, default=None, metavar="STATE",
                   help="Conv1 weights from a state file instead of STDP on 300 images")
    c.add_argument("--stall", action="store_true", help="random stalls on the core's streams")
    c.add_argument("--pool1-rtl", action="store_true",
                   help="with --layer conv2: Pool1 in the RTL too (Conv1 core -> Pool1 -> Conv2 core "
                        "as one design, fed the encoder's spikes)")
    c.add_argument("--chunk", type=count, default=500, help="images per simulator run (default 500)")
    _waves_argument(c, "one per --chunk of images, in the run folder's images-<first image>/")
    c.add_argument("--no-optimize", action="store_true",
                   help="Verilator: -O0 C++ (faster build, slower run)")
    c.add_argument("--out", type=output_dir, default=Path("runs"), help="run folders (default runs/)")
    c.add_argument("--data-dir", type=Path, default=None, metavar="DIR")
    c.add_argument("--quiet", action="store_true", help="no progress lines")
    c.add_argument("--debug", action="store_true", help="show tracebacks for input errors")
    c.set_defaults(func=_conv)

    k = sub.add_parser("classifier", help="the classifier (or the whole chain) on real images",
                       description="Train a classifier on the integer pipeline's features of the "
                                   "full training set (cached), then run the first IMAGES test images "
                                   "through the classifier RTL (or, with --end-to-end, encoder -> "
                                   "conv core RTL -> classifier RTL); hidden bits, logits, class and "
                                   "softmax words are compared with the golden model. Exit status 1 "
                                   "on any mismatch.")
    k.add_argument("--dataset", choices=["mnist", "emnist"], default="mnist",
                   help="mnist (3630 -> 1000 -> 10, default) or emnist (47 classes)")
    k.add_argument("--images", type=count, default=10000, help="test images (default 10000)")
    k.add_argument("--end-to-end", action="store_true", help="through the conv core RTL first")
    k.add_argument("--lanes", type=count, default=64, help="classifier lanes (default 64)")
    k.add_argument("--hidden", type=count, default=None, help="hidden units (default 1000 MNIST, 1500 EMNIST)")
    k.add_argument("--epochs", type=count, default=10, help="classifier training epochs (default 10)")
    k.add_argument("--simulator", choices=["verilator", "icarus"], default="verilator")
    _waves_argument(k, "in the run folder's work/run/")
    k.add_argument("--out", type=output_dir, default=Path("runs"), help="run folders (default runs/)")
    k.add_argument("--data-dir", type=Path, default=None, metavar="DIR")
    k.add_argument("--debug", action="store_true", help="show tracebacks for input errors")
    k.set_defaults(func=_classifier)

    a = sub.add_parser("accelerator", help="the whole accelerator top on real images (AXI buses)",
                       description="Load a weight export (spykehw export; without --export: train a "
                                   "network on the dataset (cached) and export it into the run "
                                   "folder) into the accelerator as a host would (weight window over "
                                   "AXI4-Lite; external W2: weights.bin as the AXI4 memory) and send "
                                   "the first IMAGES test images as AXI4-Stream event frames "
                                   "(cocotbext-axi, random stalls); class and softmax words of every "
                                   "image are compared with the integer golden model of the export. "
                                   "Exit status 1 on any mismatch.")
    a.add_argument("--dataset", choices=["mnist", "mnist-sample", "emnist"], default="mnist")
    a.add_argument("--images", type=count, default=200, help="test images (default 200)")
    a.add_argument("--simulator", choices=["verilator", "icarus"], default="verilator")
    a.add_argument("--export", type=existing_dir, default=None, metavar="DIR",
                   help="a spykehw export folder: its design point and weights (the design-point "
                        "options below are then ignored)")
    a.add_argument("--config", default=None, metavar="PRESET",
                   help="number formats: a preset (default fpga-8) or a TOML file")
    accelerator_arguments(a)
    a.add_argument("--epochs", type=count, default=10, help="classifier training epochs (default 10)")
    a.add_argument("--stall-rate", type=probability, default=0.1,
                   help="probability of a pause per cycle on each stream (default 0.1)")
    a.add_argument("--chunk", type=count, default=None,
                   help="images per simulator run (default: one run, weights loaded once)")
    a.add_argument("--preloaded", action="store_true",
                   help="build the top with the export's weights in its memories (as verilog "
                        "accelerator --export does) instead of loading them over AXI4-Lite: no "
                        "loading time per simulator run (--chunk)")
    _waves_argument(a, "one per --chunk of images, in the run folder's work/runs/part<N>/run/")
    a.add_argument("--malformed", action="store_true",
                   help="also interleave malformed frames (they must come back flagged)")
    a.add_argument("--no-optimize", action="store_true", help="Verilator: -O0 C++ (faster build)")
    a.add_argument("--out", type=output_dir, default=Path("runs"), help="run folders (default runs/)")
    a.add_argument("--data-dir", type=Path, default=None, metavar="DIR")
    a.add_argument("--quiet", action="store_true", help="no progress lines")
    a.add_argument("--debug", action="store_true", help="show tracebacks for input errors")
    a.set_defaults(func=_accelerator)

    lp = sub.add_parser("learn", help="STDP-train Conv1 (or Conv2) in the RTL and compare with the golden model",
                        description="STDP-train Conv1 in the RTL (default options; with --layer conv2 "
                                    "Conv2 on the images' Pool1 spike trains) for EPOCHS epochs "
                                    "over the first IMAGES MNIST training images from the authors' "
                                    "initial weights and compare the winners of every image, and the "
                                    "weights and the last snapshot (last_snapshot_weights) after "
                                    "every image, with the golden train_conv; JSON on stdout; exit "
                                    "status 1 if not identical. With --out the weights and snapshot "
                                    "read from the core go to OUT/onchip_weights.npz.")
    lp.add_argument("--layer", choices=("conv1", "conv2"), default="conv1",
                    help="conv1 (default): Conv1; conv2: Conv2 on the images' real Pool1 spike trains (the "
                         "options, formats and Conv1 of --run, else the defaults and Conv1 STDP on "
                         "300 images)")
    lp.add_argument("--run", type=existing_dir, default=None, metavar="RUN",
                    help="--layer conv2: a `spykehw run --layers 2` folder")
    lp.add_argument("--images", type=count, default=500, help="MNIST training images (default 500)")
    lp.add_argument("--epochs", type=count, default=1, help="epochs over the images (default 1)")
    lp.add_argument("--batched", action="store_true",
                    help="compare the weights after each batch of images instead of every image")
    lp.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator")
    lp.add_argument("--parallelism", type=count, default=None,
                    help="maps per cycle L (default 30; Conv2: 40)")
    lp.add_argument("--config", default=None,
                    help=f"number formats: preset or TOML (default {DEFAULT_PRESET}; with --run the run's)")
    lp.add_argument("--data-dir", type=Path, default=None, help="datasets folder (default: embedded sample)")
    lp.add_argument("--out", type=output_dir, default=None,
                    help="keep the build and run here (default: temporary)")
    lp.add_argument("--no-optimize", action="store_true", help="unoptimised Verilator build")
    _waves_argument(lp, "needs --out; written to OUT/run/")
    lp.set_defaults(func=_learn)
