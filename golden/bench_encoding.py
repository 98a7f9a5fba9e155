"""Encoder benchmark and float/integer agreement report; prints JSON on stdout.

Usage::

    python -m spykehw.golden.bench_encoding [--images IDX.gz] [--n N] [--threads T]
                                            [--repeats R] [--agreement]

Speed: best of ``R`` runs of :func:`encode_float` and :func:`encode_int` (fpga-16) over the
first ``N`` images with ``T`` numba threads, after a warm-up run (compilation excluded). The
process CPU time per run is reported next to the wall time: ``cpu_per_wall`` well below the
thread count means other processes were competing for the cores.

``--agreement`` adds :func:`~.encoding_agreement.encoder_agreement` for every preset.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numba
import numpy as np

from .encoding import encode_float, encode_int
from .encoding_agreement import encoder_agreement
from .formats import DEFAULT_PRESET, PRESETS, preset
from .options import EncoderOptions

__all__ = ["main", "read_idx_images", "bench"]

DEFAULT_IMAGES = (Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist"
                  / "t10k-images-idx3-ubyte.gz")


def read_idx_images(path: Path) -> np.ndarray:
    """uint8 (N, rows, cols) from a gzipped IDX3 file."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if int.from_bytes(raw[:4], "big") != 2051:
        raise ValueError(f"{path}: not an IDX image file (magic {raw[:4].hex()})")
    n, rows, cols = (int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    return np.frombuffer(raw, np.uint8, offset=16).reshape(n, rows, cols)


def bench(fn, images: np.ndarray, repeats: int) -> dict[str, float]:
    fn(images[:64])  # compile (or load the cache) outside the timing
    best_wall, cpu_at_best = float("inf"), 0.0
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        fn(images)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        if wall < best_wall:
            best_wall, cpu_at_best = wall, cpu
    return {"images_per_s": images.shape[0] / best_wall, "wall_s": best_wall,
            "cpu_per_wall": cpu_at_best / best_wall,
            "images_per_cpu_s": images.shape[0] / cpu_at_best}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--agreement", action="store_true")
    args = ap.parse_args(argv)

    images = np.ascontiguousarray(read_idx_images(args.images)[:args.n])
    numba.set_num_threads(args.threads)
    opts = EncoderOptions()
    fmt = preset(DEFAULT_PRESET)
    report: dict = {"images": int(images.shape[0]), "threads": args.threads,
                    "encode_float": bench(lambda x: encode_float(x, opts), images, args.repeats),
                    "encode_int": bench(lambda x: encode_int(x, opts, fmt), images, args.repeats)}
    if args.agreement:
        preset(DEFAULT_PRESET)  # fills PRESETS
        report["agreement"] = {name: encoder_agreement(images, opts, preset(name))
                               for name in PRESETS}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
