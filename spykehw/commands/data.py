"""``spykehw data``: see which datasets are where, download them, rebuild the embedded sample."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..argtypes import count, output_dir, seed
from ..data.fetch import default_dest, fetch
from ..data.info import describe, format_report
from ..data.locate import candidate_data_dirs
from ..data.registry import DATASET_SOURCES
from ..data.sample import make_sample
from . import HELP

__all__ = ["register"]


def _info(args: argparse.Namespace) -> int:
    report = describe(args.data_dir, verify=args.verify, seed=args.seed)
    print(format_report(report))
    # An error printed in the report is an error: the exit status says so (scripts check it).
    # (Content that differs from the official files is a finding, not an error: own data.)
    errors = [i for _, _, infos in report for i in infos if i.error]
    if errors:
        print(f"spykehw data info: error: {len(errors)} dataset(s) could not be read: "
              + "; ".join(f"{i.name} in {i.folder}" for i in errors), file=sys.stderr)
        return 1
    return 0


def _fetch(args: argparse.Namespace) -> int:
    dest = args.out if args.out is not None else default_dest()
    paths = fetch(args.dataset, dest, base_url=args.base_url, keep_archive=args.keep_archive,
                  attempts=args.attempts, progress=not args.quiet)
    for p in paths:
        print(p)
    print(f"licence: {DATASET_SOURCES[args.dataset].licence}", file=sys.stderr)
    searched = {p.resolve() for _, p in candidate_data_dirs()}
    if Path(dest).resolve() not in searched:
        print(f"note: {dest} is not searched by default; pass --data-dir {dest} "
              f"or set SPYKEHW_DATA_DIR", file=sys.stderr)
    return 0


def _make_sample(args: argparse.Namespace) -> int:
    for p in make_sample(args.data_dir, args.out):
        print(p)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "data", help=HELP["data"],
        description="Datasets. `info` lists what is found where; `fetch` downloads the official "
                    "MNIST or EMNIST files (resumable, verified); `make-sample` rebuilds the "
                    "MNIST sample embedded in the package.")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    info = sub.add_parser(
        "info", help="list the datasets found, where, with counts",
        description="List the embedded sample and the datasets found in each data folder "
                    "($SPYKEHW_DATA_DIR, the shared folder beside the repository, the per-user "
                    "folder), with image counts read from the IDX headers.")
    info.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                      help="look only in DIR (and DIR/mnist, DIR/emnist)")
    info.add_argument("--verify", action="store_true",
                      help="read every file fully and compare the SHA-256 of its decompressed "
                           "content with the official value")
    info.add_argument("--seed", type=seed, default=0,
                      help="split seed used for the EMNIST train/test counts (default 0)")
    info.set_defaults(func=_info)

    fetch = sub.add_parser(
        "fetch", help="download the official MNIST or EMNIST files",
        description="Download the official files into DEST/mnist or DEST/emnist. Downloads go "
                    "to NAME.part, are resumed after an interruption (also by running the "
                    "command again), are checked against the pinned size and checksums, and only "
                    "then renamed; a file that fails the checks is deleted. For EMNIST the "
                    "official gzip.zip (about 560 MB) is downloaded and the bymerge and balanced "
                    "files are extracted from it.")
    fetch.add_argument("dataset", choices=("mnist", "emnist"), help="which dataset")
    fetch.add_argument("--out", type=output_dir, default=None, metavar="DIR",
                       help="data folder (default: $SPYKEHW_DATA_DIR, else "
                            "~/.local/share/spykehw/datasets)")
    fetch.add_argument("--base-url", default=None, metavar="URL",
                       help="download from this mirror instead (file names are appended)")
    fetch.add_argument("--keep-archive", action="store_true",
                       help="EMNIST: keep gzip.zip after extracting")
    fetch.add_argument("--attempts", type=count, default=3,
                       help="transfer attempts per file, each resuming the last (default 3)")
    fetch.add_argument("--quiet", action="store_true", help="no progress lines")
    fetch.set_defaults(func=_fetch)

    ms = sub.add_parser(
        "make-sample", help="rebuild the embedded MNIST sample from the real MNIST files",
        description="Write the first 5000 MNIST train and 1000 t10k images and labels as IDX "
                    ".gz files, plus README.md (provenance, licence, SHA-256), into --out. The "
                    "source files must be the official MNIST content (checked by SHA-256).")
    ms.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                    help="folder with the four MNIST files (or DIR/mnist); default: search the "
                         "default data folders")
    ms.add_argument("--out", type=output_dir, required=True, metavar="DIR",
                    help="output folder (the package's copy is spykehw/data/sample)")
    ms.set_defaults(func=_make_sample)
