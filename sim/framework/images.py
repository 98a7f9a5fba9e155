"""Real images for vector generation and long runs: the co-simulation's one door to the datasets
(:mod:`spykehw.data`), so the generators take arrays and never locate files themselves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ... import data as data_package
from ...data.datasets import EMNIST_BYMERGE_STEMS, load_dataset, read_labelled
from ...data.emnist import EMNIST_47_CLASSES, upright
from ...data.locate import find_dataset_files, search_dataset

__all__ = [
    "data_code_files",
    "load_dataset",
    "mnist_test_images",
    "mnist_train_images",
    "emnist_test_images",
]


# ----- real images -------------------------------------------------------------------------------

def mnist_test_images(source: str = "mnist-sample", data_dir: str | Path | None = None) -> np.ndarray:
    """MNIST test images: ``mnist-sample`` (the first 1,000, embedded) or ``mnist`` (10,000)."""

    return load_dataset(source, data_dir).test_images


def mnist_train_images(source: str = "mnist-sample", data_dir: str | Path | None = None) -> np.ndarray:

    return load_dataset(source, data_dir).train_images


def emnist_test_images(data_dir: str | Path | None = None) -> np.ndarray:
    """EMNIST bymerge test images in file order, upright (no split: stable indices)."""

    stems = {k: v for k, v in EMNIST_BYMERGE_STEMS.items() if k != "mapping"}
    files = (search_dataset("emnist", stems) if data_dir is None
             else find_dataset_files(data_dir, "emnist", stems))
    x, _y, _rec = read_labelled(files["images"], files["labels"], len(EMNIST_47_CLASSES))
    return upright(x)


def data_code_files() -> list[Path]:
    """The source files of the data loaders (for cache keys: a cache built by other loaders is
    not reused)."""
    return sorted(Path(data_package.__file__).parent.glob("*.py"))
