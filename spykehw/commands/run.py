"""``spykehw run``: the main job (see :mod:`spykehw.flow`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..argtypes import count, output_dir, seed
from ..flow import RunConfig, run_flow
from ..golden.formats import DEFAULT_PRESET, load_formats
from ..options_args import add_options_arguments, describe_options, options_from_args
from ..seeds import run_seeds
from . import HELP

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help=HELP["run"],
        description="STDP-train Conv1, extract features, train and test the classifier, for the float "
                    "reference and the integer golden model; then generate the RTL and co-simulate a "
                    "few test images. Prints a short report; files go to a run folder with a manifest.")
    p.add_argument("--dataset", default="mnist-sample",
                   choices=["mnist-sample", "mnist", "emnist", "emnist-balanced"],
                   help="mnist-sample (embedded, default), mnist (60k/10k), emnist (47 classes, "
                        "seeded stratified split of EMNIST bymerge-test) or emnist-balanced")
    p.add_argument("--data-dir", type=Path, help="folder with the real IDX files (mnist/, emnist/)")
    p.add_argument("--config", default=None,
                   help="number formats of the integer model: a preset name (paper-float-equivalent, "
                        "fpga-16 (default), fpga-8, edge-4) or a TOML file")
    p.add_argument("--out", type=output_dir, default=Path("runs"), help="where run folders go (default: runs/)")
    p.add_argument("--seed", type=seed, default=0, help="split seed (EMNIST) (default 0)")
    p.add_argument("--seeds", type=count, default=None, metavar="N",
                   help="run N seeds (--seed, --seed+1, ...; each seeds the Conv1 and classifier "
                        "initialisation, dropout and the EMNIST split) and report mean, std, min, max")
    p.add_argument("--stdp-images", type=count, default=None,
                   help="images for Conv1 STDP training, first of the training order (default 6000; "
                        "= --set stdp_images=N)")
    p.add_argument("--epochs", type=count, help="classifier epochs (default: 40 MNIST, 35 EMNIST)")
    p.add_argument("--hidden", type=count, help="hidden neurons (default: 1000 MNIST, 1500 EMNIST)")
    p.add_argument("--gradient", choices=["sg1", "sg2", "relu"], default=None,
                   help="classifier training: surrogate gradient 1 (default), 2, or the actual "
                        "gradient of a ReLU network (float model only)")
    p.add_argument("--layers", choices=["1", "2"], default="1",
                   help="1 (default): Conv1 + Pool1 features; 2: also STDP-train Conv2 on the Pool1 "
                        "spike trains (the authors' net4/net5), extract Pool2 features and test the "
                        "classifier on Pool2 and Pool1+Pool2 features")
    p.add_argument("--pool1-inhibition", action="store_true",
                   help="Pool1 lateral inhibition and spike accumulation, as the authors' net3/net5 "
                        "(= --set pool1.lateral_inhibition=true --set pool1.spike_accumulation=true)")
    p.add_argument("--conv2-images", type=count, default=None,
                   help="images for Conv2 STDP (default 35000, net4; net5: 60000) (= --set conv2_images=N)")
    p.add_argument("--conv2-epochs", type=count, default=None,
                   help="Conv2 STDP epochs (default 1, net4; net5: 2) (= --set conv2_epochs=N)")
    add_options_arguments(p)
    p.add_argument("--train-limit", type=count, help="use only the first N training images")
    p.add_argument("--test-limit", type=count, help="use only the first N test images")
    p.add_argument("--float-only", action="store_true", help="skip the integer model and hardware")
    p.add_argument("--no-hardware", action="store_true", help="skip Verilog and co-simulation")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--debug", action="store_true", help="show tracebacks for input errors")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    opts = options_from_args(args, args.dataset, [
        ("classifier.gradient", args.gradient), ("classifier.epochs", args.epochs),
        ("classifier.hidden", args.hidden), ("stdp_images", args.stdp_images),
        ("pool1.lateral_inhibition", True if args.pool1_inhibition else None),
        ("pool1.spike_accumulation", True if args.pool1_inhibition else None),
        ("conv2_images", args.conv2_images), ("conv2_epochs", args.conv2_epochs)])
    integer = not args.float_only and opts.classifier.gradient != "relu"
    cfg = RunConfig(dataset=args.dataset, data_dir=args.data_dir, seed=args.seed, options=opts,
                    formats=load_formats(args.config or DEFAULT_PRESET), integer=integer,
                    hardware=integer and not args.no_hardware, train_limit=args.train_limit,
                    test_limit=args.test_limit, out_root=args.out, progress=not args.quiet,
                    options_source=describe_options(args.options, args.settings), layers=int(args.layers))
    if args.seeds is not None:
        run_seeds(cfg, args.seeds)
    else:
        run_flow(cfg)
    return 0
