"""``spykehw predict``: classify the user's images with a trained network (:mod:`spykehw.api`)."""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

from ..api import load
from ..argtypes import output_file
from ..images import read_images
from ..output import atomic_write
from . import HELP

__all__ = ["register", "format_csv", "format_json"]

POLICY = ("Images must be 28x28 pixels (other sizes are refused, not resized); colour and palette "
          "images are converted to grey with Pillow's 'L' mode (ITU-R 601-2 luma: "
          "L = 0.299 R + 0.587 G + 0.114 B, alpha dropped); 16-bit and float images are refused; "
          "arrays must hold integers 0..255 shaped (N, 28, 28), (28, 28) or (N, 784) (in an .npz, "
          "the array 'images' or the only one). Digits bright on dark, like MNIST; nothing is "
          "inverted.")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict", help=HELP["predict"],
        description="Classify images with a trained network: a run folder of 'spykehw run', a state "
                    "file or an export folder. Images: a folder of PNG/JPEG files (name order), one "
                    "picture, an .npy/.npz array or an IDX file. " + POLICY + " Output: one row per "
                    "image with the class and the softmax (integer model: the hardware's softmax "
                    "words; float model: probabilities).")
    p.add_argument("source", type=Path, metavar="RUN_FOLDER|STATE_FILE|EXPORT")
    p.add_argument("images", type=Path, metavar="IMAGES", help="folder of PNG/JPEG, .png/.jpg, .npy, .npz or IDX")
    p.add_argument("--model", choices=["int", "float"], default=None,
                   help="int (the integer golden model = the hardware; default when present) or float")
    p.add_argument("--format", choices=["csv", "json"], default="csv", help="output format (default csv)")
    p.add_argument("--json", action="store_true", help="JSON output (same as --format json)")
    p.add_argument("--out", type=output_file, default=None, metavar="FILE", help="write here (default: stdout)")
    p.add_argument("--quiet", action="store_true", help="no summary line on stderr")
    p.add_argument("--debug", action="store_true", help="show tracebacks for input errors")
    p.set_defaults(func=_main)


def format_csv(names: list[str], pred) -> str:
    """``image,class,softmax_0..softmax_{C-1}``: integer words, or probabilities (``%.9g``)."""
    buf = io.StringIO()
    c = pred.softmax.shape[1]
    buf.write(",".join(["image", "class", *(f"softmax_{k}" for k in range(c))]) + "\n")
    for name, cls, row in zip(names, pred.classes, pred.softmax):
        values = [str(int(v)) for v in row] if pred.softmax_bits is not None else [f"{v:.9g}" for v in row]
        quoted = '"' + name.replace('"', '""') + '"' if any(ch in name for ch in ',"\n') else name
        buf.write(",".join([quoted, str(int(cls)), *values]) + "\n")
    return buf.getvalue()


def format_json(names: list[str], pred, source: str, model_name: str) -> str:
    """``{"source", "model", "softmax_bits", "predictions": [{"image", "class", "softmax"}]}``."""
    rows = [{"image": n, "class": int(c),
             "softmax": [int(v) for v in s] if pred.softmax_bits is not None else [float(v) for v in s]}
            for n, c, s in zip(names, pred.classes, pred.softmax)]
    doc = {"source": source, "model": model_name, "softmax_bits": pred.softmax_bits, "predictions": rows}
    return json.dumps(doc, indent=1) + "\n"


def _main(args: argparse.Namespace) -> int:
    net = load(args.source)
    names, images = read_images(args.images)
    pred = net.predict(images, model=args.model)
    model_name = pred.model if pred.model == "float" else f"int[{net.formats.name}]"
    if args.json or args.format == "json":
        text = format_json(names, pred, str(args.source), model_name)
    else:
        text = format_csv(names, pred)
    if args.out is None:
        sys.stdout.write(text)
    else:
        with atomic_write(args.out, "w") as f:
            f.write(text)
    if not args.quiet:
        where = "" if args.out is None else f" -> {args.out}"
        print(f"spykehw predict: {len(names)} image(s), model {model_name}{where}", file=sys.stderr)
    return 0
