"""``spykehw bench``: images/s and peak memory of encoding, STDP, feature extraction and the
classifier, as JSON (the speed targets live here, never in unit tests)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..argtypes import count, output_file, workers
from ..bench import (
    BENCHMARKS,
    BenchConfig,
    BenchError,
    bench_options,
    quick_config,
    resolve_dataset,
    run_benchmarks,
    to_json,
)
from ..golden.files import atomic_write
from ..golden.formats import load_formats
from ..options_args import add_options_arguments
from . import HELP

__all__ = ["register"]


def _bench(args: argparse.Namespace) -> int:
    load_formats(args.config)  # a bad preset or file fails here, not in every child
    names = tuple(n.strip() for n in args.only.split(",") if n.strip()) if args.only else BENCHMARKS
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise BenchError(f"--only: unknown benchmark {', '.join(unknown)} "
                         f"(known: {', '.join(BENCHMARKS)})")
    # A bad options file or --set fails here, before the dataset lookup prints anything and
    # before every child process would fail on it.
    bench_options(BenchConfig(options=args.options or "authors-code",
                              settings=tuple(args.settings or ())))
    dataset, note = resolve_dataset(args.dataset, args.data_dir)
    if note:
        print(f"spykehw bench: {note}", file=sys.stderr)
    sizes = {k: v for k, v in (("encode_images", args.encode_images),
                               ("stdp_images", args.stdp_images),
                               ("classifier_images", args.classifier_images),
                               ("hidden", args.hidden)) if v is not None}
    common = dict(dataset=dataset, data_dir=None if args.data_dir is None else str(args.data_dir),
                  formats=args.config, threads=args.threads, options=args.options or "authors-code",
                  settings=tuple(args.settings or ()), **sizes)
    cfg = quick_config(**common) if args.quick else BenchConfig(**common)
    report = run_benchmarks(cfg, names, quick=args.quick, requested_dataset=args.dataset,
                            dataset_note=note)
    text = to_json(report)
    # The measurement goes to stdout first: a failure to save it must not lose it.
    sys.stdout.write(text)
    sys.stdout.flush()
    if args.out is not None:
        with atomic_write(args.out, "w") as f:
            f.write(text)
    return 0 if report["ok"] else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench", help=HELP["bench"],
        description="Benchmark the golden models on real MNIST (the embedded sample if MNIST is "
                    "not found): encoding, Conv1 STDP training and feature extraction for the "
                    "float and integer models, one classifier epoch, and Conv2 STDP training and "
                    "Conv2 + Pool2 feature extraction (the second layer). Each benchmark runs in "
                    "its own process (peak memory = its ru_maxrss); numba compilation is excluded "
                    "by a warm-up. Prints JSON, with the issue's speed targets for comparison.")
    p.add_argument("--quick", action="store_true",
                   help="a few hundred images per benchmark (checks that it runs; times mean little)")
    p.add_argument("--dataset", choices=("mnist", "mnist-sample"), default="mnist",
                   help="mnist (default; falls back to the sample if not found) or mnist-sample")
    p.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                   help="folder holding mnist/ (default: the standard data folders)")
    p.add_argument("--only", default=None, metavar="NAMES",
                   help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    p.add_argument("--config", default="fpga-16", metavar="PRESET|TOML",
                   help="number formats of the integer model (default fpga-16)")
    p.add_argument("--threads", type=workers, default=None, metavar="N",
                   help="numba threads (default: numba's default, one per CPU)")
    p.add_argument("--encode-images", type=count, default=None, metavar="N",
                   help="images for encoding and feature extraction (default 10000; quick 300)")
    p.add_argument("--stdp-images", type=count, default=None, metavar="N",
                   help="images for STDP training (default 6000; quick 300)")
    p.add_argument("--classifier-images", type=count, default=None, metavar="N",
                   help="feature rows for the classifier epoch (default 10000; quick 300)")
    p.add_argument("--hidden", type=count, default=None, metavar="H",
                   help="classifier hidden units (default: the options', 1000)")
    add_options_arguments(p)
    p.add_argument("--out", type=output_file, default=None, metavar="FILE",
                   help="also write the JSON to FILE")
    p.set_defaults(func=_bench)
