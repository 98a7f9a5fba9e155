"""Rebuilding the MNIST sample embedded in the package (``spykehw/data/sample/``).

The sample is the first ``SAMPLE_TRAIN_COUNT`` rows of the official MNIST train files and the
first ``SAMPLE_TEST_COUNT`` rows of the t10k files, written with :func:`~spykehw.data.idx.write_idx`
under the standard file names, plus a README with provenance, licence and checksums.
``spykehw data make-sample --data-dir DIR --out DIR`` runs :func:`make_sample`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..output import atomic_write, sha256_file
from .datasets import (
    MNIST_STEMS,
    SAMPLE_TEST_COUNT,
    SAMPLE_TRAIN_COUNT,
    DatasetError,
    load_mnist,
)
from .idx import read_content, write_idx
from .registry import content_hash_of

__all__ = ["make_sample", "sample_readme"]

_ROWS = {"train_images": SAMPLE_TRAIN_COUNT, "train_labels": SAMPLE_TRAIN_COUNT,
         "test_images": SAMPLE_TEST_COUNT, "test_labels": SAMPLE_TEST_COUNT}


def sample_readme(sources: dict[str, str], written: dict[str, tuple[str, str]]) -> str:
    """The sample README text.

    ``sources``: role -> decompressed SHA-256 of the source file; ``written``: file name ->
    (SHA-256 of the .gz file, SHA-256 of its decompressed content).
    """
    lines = [
        "# Embedded MNIST sample",
        "",
        "A small slice of MNIST shipped inside the package, so that `spykehw run` and the tests",
        f"work without a download: the first {SAMPLE_TRAIN_COUNT:,} images of the MNIST training "
        f"set and the first {SAMPLE_TEST_COUNT:,}",
        "images of the MNIST test set (t10k), with their labels, in the standard IDX format",
        "(gzip) under the standard file names. Load it with `spykehw.data.load_sample()`",
        "(dataset name `mnist-sample`).",
        "",
        "## Provenance",
        "",
        "| sample file | rows taken | source file | SHA-256 of the decompressed source |",
        "|---|---|---|---|",
    ]
    for role, stem in MNIST_STEMS.items():
        lines.append(f"| {stem}.gz | 0 .. {_ROWS[role] - 1} | {stem} | {sources[role]} |")
    lines += [
        "",
        "The source hashes are those of the original uncompressed MNIST files (listed in the",
        "team's datasets README; the same files as the official `*.gz` downloads, decompressed).",
        "Images and labels are copied unchanged (rows in file order).",
        "",
        "Rebuild (bit-identical content) with:",
        "",
        "    spykehw data make-sample --data-dir DIR_WITH_MNIST --out spykehw/data/sample",
        "",
        "## Licence",
        "",
        "MNIST is by Y. LeCun, C. Cortes and C. Burges (http://yann.lecun.com/exdb/mnist/) and is",
        "usually distributed under the Creative Commons Attribution-Share Alike 3.0 licence",
        "(CC BY-SA 3.0). This sample is a verbatim extract and carries the same licence.",
        "",
        "## Checksums",
        "",
        "| file | SHA-256 of the file | SHA-256 of the decompressed content |",
        "|---|---|---|",
    ]
    for name, (file_hash, content_hash) in written.items():
        lines.append(f"| {name} | {file_hash} | {content_hash} |")
    lines += [
        "",
        "The gzip streams are written with `mtime=0`, no file name and level 9, so the same zlib",
        "reproduces the same `.gz` bytes; the decompressed content hash is the one that must match.",
        "",
    ]
    return "\n".join(lines)


def make_sample(data_dir: str | Path | None, out_dir: str | Path) -> list[Path]:
    """Write the sample (four IDX .gz files + README.md) into ``out_dir`` from real MNIST.

    Raises
    ------
    DatasetError
        The source files are not the official MNIST (their decompressed SHA-256 differs from
        the pinned value), so the README's provenance would be false.
    """
    ds = load_mnist(data_dir)
    out_dir = Path(out_dir)
    sources = {}
    for role, stem in MNIST_STEMS.items():
        record = ds.provenance["files"][role]
        expected = content_hash_of(stem)
        if record["sha256"] != expected:
            raise DatasetError(f"{record['path']}: expected the official MNIST content "
                               f"(SHA-256 {expected}), found {record['sha256']}")
        sources[role] = record["sha256"]
    arrays = {
        "train_images": ds.train_images[:SAMPLE_TRAIN_COUNT],
        "train_labels": ds.train_labels[:SAMPLE_TRAIN_COUNT].astype(np.uint8),
        "test_images": ds.test_images[:SAMPLE_TEST_COUNT],
        "test_labels": ds.test_labels[:SAMPLE_TEST_COUNT].astype(np.uint8),
    }
    written: dict[str, tuple[str, str]] = {}
    paths = []
    for role, stem in MNIST_STEMS.items():
        path = write_idx(out_dir / f"{stem}.gz", arrays[role])
        written[path.name] = (sha256_file(path), hashlib.sha256(read_content(path)).hexdigest())
        paths.append(path)
    readme = out_dir / "README.md"
    with atomic_write(readme, "w") as f:
        f.write(sample_readme(sources, written))
    return paths + [readme]
