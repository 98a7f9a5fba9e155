"""Dataset loaders: MNIST, the 47-class EMNIST task, and the MNIST sample shipped in the package.

Every loader returns a :class:`Dataset` with upright uint8 images (N, 28, 28), int64 labels,
the class characters and a provenance record (source files with the SHA-256 of their
decompressed content, the split, the counts), so a result can always say what it was run on.

Names for :func:`load_dataset`:

``mnist-sample`` (default)
    5,000 train / 1,000 test MNIST images embedded in the package (no download, no data folder).
``mnist``
    The official 60,000 / 10,000 MNIST split.
``emnist``
    EMNIST bymerge test (116,323 images, 47 classes) split into train/test by a seeded
    stratified split (:mod:`spykehw.data.splits`); this is how the 47-class task is studied
    offline. Report balanced accuracy (mean per-class recall) to compare with EMNIST balanced.
``emnist-balanced``
    The official EMNIST balanced split (112,800 / 18,800), if ``spykehw data fetch emnist``
    has downloaded it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .emnist import EMNIST_47_CLASSES, check_mapping, upright
from .idx import IMAGES_MAGIC, LABELS_MAGIC, IdxError, read_idx_data
from .locate import (
    DatasetError,
    default_data_dir,
    find_dataset_files,
    search_dataset,
    shared_datasets_dir,
)
from .splits import stratified_split

__all__ = [
    "DATASET_NAMES", "Dataset", "DatasetError", "EMNIST_BALANCED_STEMS", "EMNIST_BYMERGE_STEMS",
    "MNIST_CLASSES", "MNIST_STEMS", "check_split_sizes", "limit_rows", "SAMPLE_DIR", "SAMPLE_TEST_COUNT", "SAMPLE_TRAIN_COUNT",
    "default_data_dir", "load_dataset", "load_emnist_balanced", "load_emnist_bymerge",
    "load_mnist", "load_sample", "read_labelled", "shared_datasets_dir",
]

DATASET_NAMES = ("mnist-sample", "mnist", "emnist", "emnist-balanced")
MNIST_CLASSES: tuple[str, ...] = tuple("0123456789")
SAMPLE_DIR = Path(__file__).resolve().with_name("sample")
SAMPLE_TRAIN_COUNT = 5000  # the sample is the first rows of the official files
SAMPLE_TEST_COUNT = 1000

MNIST_STEMS = {
    "train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte",
}
EMNIST_BYMERGE_STEMS = {
    "images": "emnist-bymerge-test-images-idx3-ubyte",
    "labels": "emnist-bymerge-test-labels-idx1-ubyte",
    "mapping": "emnist-bymerge-mapping.txt",
}
EMNIST_BALANCED_STEMS = {
    "train_images": "emnist-balanced-train-images-idx3-ubyte",
    "train_labels": "emnist-balanced-train-labels-idx1-ubyte",
    "test_images": "emnist-balanced-test-images-idx3-ubyte",
    "test_labels": "emnist-balanced-test-labels-idx1-ubyte",
    "mapping": "emnist-balanced-mapping.txt",
}


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled train/test set.

    Attributes
    ----------
    name : str
        ``mnist-sample``, ``mnist``, ``emnist``, ...
    train_images, test_images : uint8 (N, 28, 28)
        Upright images (EMNIST already transposed). Plain writable arrays owned by this object.
    train_labels, test_labels : int64 (N,)
        Values ``0 .. len(classes) - 1``.
    classes : tuple of str
        The character of each label (``'0'..'9'``, or the 47 EMNIST characters).
    provenance : dict
        ``files`` (role -> path and SHA-256 of the decompressed content), ``split`` and
        ``counts``; JSON-serialisable, meant for run manifests.
    """

    name: str
    train_images: np.ndarray = field(repr=False)
    train_labels: np.ndarray = field(repr=False)
    test_images: np.ndarray = field(repr=False)
    test_labels: np.ndarray = field(repr=False)
    classes: tuple[str, ...]
    provenance: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # Loader bugs, not user errors: a Dataset that breaks the data contract never exists.
        for split in ("train", "test"):
            x, y = getattr(self, f"{split}_images"), getattr(self, f"{split}_labels")
            if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
                raise ValueError(f"{split}_images: expected uint8 (N, 28, 28), "
                                 f"got {x.dtype} {x.shape}")
            if y.dtype != np.int64 or y.shape != (x.shape[0],):
                raise ValueError(f"{split}_labels: expected int64 ({x.shape[0]},), "
                                 f"got {y.dtype} {y.shape}")
            if y.size and (y.min() < 0 or y.max() >= len(self.classes)):
                raise ValueError(f"{split}_labels: expected 0..{len(self.classes) - 1}, "
                                 f"found {y.min()}..{y.max()}")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={len(self.train_labels)}, "
                f"test={len(self.test_labels)}, classes={self.num_classes})")


def _file_record(data) -> dict[str, Any]:
    return {"path": str(data.path.resolve()), "sha256": data.sha256,
            "shape": list(data.array.shape)}


def read_labelled(images_path: Path, labels_path: Path,
                  num_classes: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Read an images file and its labels file, checking each against the other.

    Returns images uint8 (N, 28, 28) as stored, labels int64 (N,) and the two file records.

    Raises
    ------
    IdxError
        A file is corrupt, not of the expected kind (labels given for images or the reverse),
        or the label count differs from the image count.
    DatasetError
        A label is outside ``0 .. num_classes - 1``.
    """
    images = read_idx_data(images_path, expect_magic=IMAGES_MAGIC, expect_shape=(None, 28, 28))
    n = images.array.shape[0]
    labels = read_idx_data(labels_path, expect_magic=LABELS_MAGIC, expect_shape=(None,))
    if labels.array.shape[0] != n:
        raise IdxError(f"{labels_path}: expected {n} labels (one per image of {images_path}), "
                       f"found {labels.array.shape[0]}")
    y = labels.array.astype(np.int64)
    if n and y.max() >= num_classes:
        bad = int(np.argmax(y >= num_classes))
        raise DatasetError(f"{labels_path}: expected labels 0..{num_classes - 1}, "
                           f"found {y[bad]} at index {bad}")
    return images.array, y, {"images": _file_record(images), "labels": _file_record(labels)}


def _mnist_from_files(files: dict[str, Path], name: str, extra: dict[str, Any]) -> Dataset:
    xtr, ytr, rec_tr = read_labelled(files["train_images"], files["train_labels"], 10)
    xte, yte, rec_te = read_labelled(files["test_images"], files["test_labels"], 10)
    provenance = {
        "dataset": name,
        "files": {"train_images": rec_tr["images"], "train_labels": rec_tr["labels"],
                  "test_images": rec_te["images"], "test_labels": rec_te["labels"]},
        "split": "official MNIST train/test files",
        "counts": {"train": len(ytr), "test": len(yte)},
        **extra,
    }
    return Dataset(name, xtr, ytr, xte, yte, MNIST_CLASSES, provenance)


def _files(data_dir: str | Path | None, subdir: str, stems: dict[str, str],
           optional: tuple[str, ...] = ()) -> dict[str, Path]:
    if data_dir is None:
        return search_dataset(subdir, stems, optional=optional)
    return find_dataset_files(data_dir, subdir, stems, optional=optional)


def load_mnist(data_dir: str | Path | None = None) -> Dataset:
    """MNIST from the four standard files in ``data_dir`` or ``data_dir/mnist/``.

    ``data_dir=None`` searches the default data folders (:mod:`spykehw.data.locate`).
    """
    return _mnist_from_files(_files(data_dir, "mnist", MNIST_STEMS), "mnist", {})


def load_sample() -> Dataset:
    """The MNIST sample embedded in the package: the first 5,000 train and 1,000 t10k images.

    See ``spykehw/data/sample/README.md`` for provenance and licence.
    """
    files = find_dataset_files(SAMPLE_DIR, "mnist", MNIST_STEMS)
    ds = _mnist_from_files(files, "mnist-sample", {
        "derived_from": f"MNIST train rows 0..{SAMPLE_TRAIN_COUNT - 1} and t10k rows "
                        f"0..{SAMPLE_TEST_COUNT - 1} (spykehw/data/sample/README.md)"})
    if (len(ds.train_labels), len(ds.test_labels)) != (SAMPLE_TRAIN_COUNT, SAMPLE_TEST_COUNT):
        raise DatasetError(f"{SAMPLE_DIR}: expected {SAMPLE_TRAIN_COUNT} train and "
                           f"{SAMPLE_TEST_COUNT} test images, found {len(ds.train_labels)} and "
                           f"{len(ds.test_labels)}")
    return ds


def load_emnist_bymerge(data_dir: str | Path | None = None, *, seed: int = 0,
                        test_fraction: float = 1 / 7) -> Dataset:
    """The 47-class task from EMNIST bymerge test, split by a seeded stratified split.

    Reads ``emnist-bymerge-test-{images-idx3,labels-idx1}-ubyte[.gz]`` from ``data_dir`` or
    ``data_dir/emnist/``; if ``emnist-bymerge-mapping.txt`` is there, it must agree with the
    built-in 47-class table (:data:`~spykehw.data.emnist.EMNIST_47_CLASSES`). Images are
    transposed to upright. The split is :func:`~spykehw.data.splits.stratified_split`: per class
    ``round(test_fraction * n_c)`` images go to test; train rows are shuffled (classes mixed),
    test rows keep file order. The default 1/7 gives the 6:1 train:test ratio of EMNIST
    balanced.
    """
    files = _files(data_dir, "emnist", EMNIST_BYMERGE_STEMS, optional=("mapping",))
    if "mapping" in files:
        check_mapping(files["mapping"])
    x, y, rec = read_labelled(files["images"], files["labels"], len(EMNIST_47_CLASSES))
    train_idx, test_idx = stratified_split(y, test_fraction=test_fraction, seed=seed)
    x = upright(x)
    provenance = {
        "dataset": "emnist",
        "files": {**rec, **({"mapping": {"path": str(files["mapping"].resolve())}}
                            if "mapping" in files else {})},
        "split": {"method": "stratified_split (spykehw.data.splits)", "seed": seed,
                  "test_fraction": test_fraction, "source": "EMNIST bymerge test"},
        "counts": {"total": len(y), "train": len(train_idx), "test": len(test_idx),
                   "per_class_test": np.bincount(y[test_idx], minlength=47).tolist(),
                   "per_class_total": np.bincount(y, minlength=47).tolist()},
    }
    return Dataset("emnist", x[train_idx], y[train_idx], x[test_idx], y[test_idx],
                   EMNIST_47_CLASSES, provenance)


def load_emnist_balanced(data_dir: str | Path | None = None) -> Dataset:
    """The official EMNIST balanced split (47 classes), images transposed to upright."""
    files = _files(data_dir, "emnist", EMNIST_BALANCED_STEMS, optional=("mapping",))
    if "mapping" in files:
        check_mapping(files["mapping"])
    k = len(EMNIST_47_CLASSES)
    xtr, ytr, rec_tr = read_labelled(files["train_images"], files["train_labels"], k)
    xte, yte, rec_te = read_labelled(files["test_images"], files["test_labels"], k)
    provenance = {
        "dataset": "emnist-balanced",
        "files": {"train_images": rec_tr["images"], "train_labels": rec_tr["labels"],
                  "test_images": rec_te["images"], "test_labels": rec_te["labels"]},
        "split": "official EMNIST balanced train/test files",
        "counts": {"train": len(ytr), "test": len(yte)},
    }
    return Dataset("emnist-balanced", upright(xtr), ytr, upright(xte), yte, EMNIST_47_CLASSES,
                   provenance)


def load_dataset(name: str = "mnist-sample", data_dir: str | Path | None = None,
                 seed: int = 0) -> Dataset:
    """Load a dataset by name (see the module docstring).

    ``data_dir`` is ignored for ``mnist-sample``; for the others ``None`` searches the default
    data folders. ``seed`` only affects ``emnist`` (the stratified split).

    Raises
    ------
    DatasetError
        Unknown name, or the dataset's files are not found.
    """
    if name == "mnist-sample":
        return load_sample()
    if name == "mnist":
        return load_mnist(data_dir)
    if name == "emnist":
        return load_emnist_bymerge(data_dir, seed=seed)
    if name == "emnist-balanced":
        return load_emnist_balanced(data_dir)
    raise DatasetError(f"unknown dataset {name!r}: expected one of {', '.join(DATASET_NAMES)}")


def limit_rows(ds: Dataset, train_limit: int | None = None, test_limit: int | None = None, *,
               val_fraction: float | None = None) -> Dataset:
    """``ds`` with only its first ``train_limit`` training and ``test_limit`` test rows, checked
    so that no split the job uses is empty.

    Why: a limit of 0 used to mean "no limit" (Python truthiness), a negative one "all but N",
    and a split left empty gave NaN accuracies and a best epoch chosen on NaN. Every limit goes
    through here; ``val_fraction`` (the classifier's validation share of the training rows) is
    checked too when given.
    """
    for flag, v in (("--train-limit", train_limit), ("--test-limit", test_limit)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise DatasetError(f"{flag}: expected an integer >= 1, found {v!r}")
    if train_limit is not None or test_limit is not None:
        ds = replace(ds, train_images=ds.train_images[:train_limit],
                     train_labels=ds.train_labels[:train_limit],
                     test_images=ds.test_images[:test_limit], test_labels=ds.test_labels[:test_limit])
    check_split_sizes(len(ds.train_labels), len(ds.test_labels), val_fraction, ds.name)
    return ds


def check_split_sizes(n_train: int, n_test: int, val_fraction: float | None, name: str) -> None:
    """Refuse an empty training, validation or test split (see :func:`limit_rows`)."""
    if n_test < 1:
        raise DatasetError(f"{name}: the test split is empty (0 images); raise --test-limit")
    if n_train < 1:
        raise DatasetError(f"{name}: the training split is empty (0 images); raise --train-limit")
    if val_fraction is None:
        return
    n_val = int(val_fraction * n_train)
    need = math.ceil(1 / val_fraction) if val_fraction > 0 else None
    if n_val < 1:
        raise DatasetError(
            f"{name}: {n_train} training images leave the validation split empty "
            f"(classifier.val_fraction = {val_fraction}); use --train-limit {need} or more")
    if n_train - n_val < 1:
        raise DatasetError(f"{name}: {n_train} training images leave no rows to train the "
                           f"classifier on after {n_val} validation rows; raise --train-limit")
