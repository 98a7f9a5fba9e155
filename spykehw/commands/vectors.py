"""``spykehw vectors``: make test vectors (golden expectations) for the RTL blocks."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..argtypes import count, existing_file, output_dir, seed
from ..golden.formats import DEFAULT_PRESET, load_formats
from ..output import RunFolder
from ..sim.framework.vectors import read_vectors
from . import HELP

__all__ = ["register"]


def _conv(args: argparse.Namespace) -> int:
    # hw extra: the vector generators build the RTL's configuration (Amaranth)
    from ..sim.conv.committed import COMMITTED, write_committed
    from ..sim.conv.vector_gen import conv1_weights, source_vectors, write_vector_set

    if args.source == "committed":
        names = [n for n in COMMITTED]
        for name in names:
            path = write_committed(name, args.out)
            print(f"{path}")
        return 0
    fmt = load_formats(args.config or DEFAULT_PRESET)
    weights, note = conv1_weights(fmt, state=args.state, train_images=args.train_images,
                                  data_dir=args.data_dir)
    vs = source_vectors(fmt, args.source, args.count, seed=args.seed, first=args.first,
                        weights=weights, weights_note=note, data_dir=args.data_dir)
    folder = RunFolder(args.out, "vectors", path=args.out,
                       args={"block": "conv", "config": fmt.name, "source": args.source,
                             "count": args.count, "seed": args.seed})
    name = f"conv-{args.source}-{fmt.name}.npz"
    path = write_vector_set(folder.file(name), vs)
    folder.add(name, f"conv-infer vectors: {vs.description}")
    n = len(vs.options["cases"])
    print(f"{path}: {n} image(s), {len(vs['spikes'])} expected spikes, weights: {note}")
    return 0


def _classifier(args: argparse.Namespace) -> int:
    from ..sim.classifier.vector_gen import (  # hw extra: Amaranth
        COMMITTED,
        write_committed,
    )

    names = list(COMMITTED) if args.only == "all" else [args.only]
    for name in names:
        path = write_committed(name, args.out)
        o = read_vectors(path, kind="classifier").options
        print(f"{path}: {o['features']}->{o['hidden']}->{o['classes']}, {path.stat().st_size} bytes")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("vectors", help=HELP["vectors"],
                              description="Run inputs through the integer golden model and write "
                                          "self-describing vector files (vectors/README.md).")
    sub = p.add_subparsers(dest="block", metavar="BLOCK", required=True)
    c = sub.add_parser("conv", help="conv-infer vectors for the Conv1 core",
                       description="Conv1 inference vectors: real test images encoded by the "
                                   "integer encoder, or the adversarial cases; weights from STDP "
                                   "(golden train_conv1) or a state file.")
    c.add_argument("--config", default=None, metavar="PRESET",
                   help="number formats: a preset (default fpga-16) or a TOML file")
    c.add_argument("--out", type=output_dir, required=True, metavar="DIR", help="output folder")
    c.add_argument("--source", required=True,
                   choices=["mnist", "mnist-sample", "emnist", "adversarial", "committed"],
                   help="test images of MNIST (10,000), the embedded MNIST sample (1,000), EMNIST "
                        "bymerge test, the adversarial cases, or the committed sets (vectors/conv)")
    c.add_argument("--count", type=count, default=16, help="images (default 16)")
    c.add_argument("--first", action="store_true", help="the first COUNT rows instead of random ones")
    c.add_argument("--seed", type=seed, default=0, help="row selection / random cases (default 0)")
    c.add_argument("--state", type=existing_file, default=None, metavar="STATE",
                   help="take Conv1 weights from a state file (spykehw run) instead of STDP")
    c.add_argument("--train-images", type=count, default=300,
                   help="MNIST training images for the STDP weights (default 300)")
    c.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                   help="folder holding mnist/ and emnist/ (default: the standard data folders)")
    c.add_argument("--debug", action="store_true", help="show tracebacks for input errors")
    c.set_defaults(func=_conv)

    from ..sim.classifier.vector_gen import COMMITTED  # hw extra: Amaranth
    k = sub.add_parser("classifier", help="classifier vectors (the committed sets, rebuilt)",
                       description="Classifier vectors: the adversarial, extreme and real sets that "
                                   "vectors/classifier holds, rebuilt from their seeds (the real "
                                   "ones train a classifier on first use, cached).")
    k.add_argument("--only", default="all", choices=["all", *COMMITTED],
                   help="which set (default all)")
    k.add_argument("--out", type=output_dir, required=True, metavar="DIR", help="output folder")
    k.set_defaults(func=_classifier)
