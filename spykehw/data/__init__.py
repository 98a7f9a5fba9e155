"""Datasets: IDX files, MNIST/EMNIST loaders, the stratified split, the embedded MNIST sample.

Modules: :mod:`~spykehw.data.idx` (IDX read/write with checks), :mod:`~spykehw.data.datasets`
(the :class:`Dataset` record and loaders), :mod:`~spykehw.data.emnist` (47-class table),
:mod:`~spykehw.data.splits` (seeded stratified split), :mod:`~spykehw.data.locate` (data
folders), :mod:`~spykehw.data.registry` (pinned URLs, sizes, hashes), :mod:`~spykehw.data.fetch`
(downloader), :mod:`~spykehw.data.sample` (rebuilding the sample), :mod:`~spykehw.data.info`
(``spykehw data info``).
"""

from .datasets import (
                       DATASET_NAMES,
                       Dataset,
                       load_dataset,
                       load_emnist_balanced,
                       load_emnist_bymerge,
                       load_mnist,
                       load_sample,
)
from .emnist import EMNIST_47_CLASSES
from .idx import IMAGES_MAGIC, LABELS_MAGIC, IdxError, read_idx, write_idx
from .locate import DatasetError, default_data_dir, shared_datasets_dir
from .splits import stratified_split

__all__ = [
    "DATASET_NAMES", "Dataset", "DatasetError", "EMNIST_47_CLASSES", "IMAGES_MAGIC", "IdxError",
    "LABELS_MAGIC", "default_data_dir", "load_dataset", "load_emnist_balanced",
    "load_emnist_bymerge", "load_mnist", "load_sample", "read_idx", "shared_datasets_dir",
    "stratified_split", "write_idx",
]
