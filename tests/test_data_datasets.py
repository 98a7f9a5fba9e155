"""Dataset loaders, the stratified split and the embedded sample.

Oracles: published facts (MNIST decompressed SHA-256 from the shared datasets README, the first
MNIST labels, EMNIST bymerge's 116,323 test images and 47 classes, the shape of the digit 1),
a minimal IDX reader written here, and a second implementation of the documented split.
The real-data tests use the shared datasets folder and are skipped when it is absent; the
embedded sample is always tested.
"""

import gzip
import hashlib
import struct

import numpy as np
import pytest

from spykehw.data import (
    Dataset,
    DatasetError,
    IdxError,
    load_dataset,
    load_emnist_balanced,
    load_emnist_bymerge,
    load_mnist,
    load_sample,
    stratified_split,
    write_idx,
)
from spykehw.data.datasets import MNIST_STEMS, SAMPLE_DIR
from spykehw.data.locate import (
    default_data_dir,
    find_dataset_files,
    shared_datasets_dir,
    user_data_dir,
)
from spykehw.data.sample import make_sample

SHARED = shared_datasets_dir()
MNIST_DIR = SHARED / "mnist" if SHARED is not None else None
EMNIST_DIR = SHARED / "emnist" if SHARED is not None else None
needs_mnist = pytest.mark.skipif(
    MNIST_DIR is None or not MNIST_DIR.is_dir(),
    reason="shared datasets folder with mnist/ (../shared/datasets beside the repo) not present")
needs_emnist = pytest.mark.skipif(
    EMNIST_DIR is None or not EMNIST_DIR.is_dir(),
    reason="shared datasets folder with emnist/ (../shared/datasets beside the repo) not present")

# /work/shared/datasets/README.md: SHA-256 of the decompressed official MNIST files.
MNIST_CONTENT_SHA256 = {
    "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
# The first ten labels of the MNIST training and test files (a widely quoted fact).
MNIST_TRAIN_FIRST_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
MNIST_TEST_FIRST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
EMNIST_47 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabdefghnqrt"


def raw_idx(path) -> np.ndarray:
    """A minimal independent IDX reader (gzip only, no checks)."""
    data = gzip.open(path).read()
    _, _, _, nd = struct.unpack(">BBBB", data[:4])
    dims = struct.unpack(f">{nd}I", data[4:4 + 4 * nd])
    return np.frombuffer(data[4 + 4 * nd:], np.uint8).reshape(dims)


def check_contract(ds: Dataset, n_classes: int):
    for x, y in ((ds.train_images, ds.train_labels), (ds.test_images, ds.test_labels)):
        assert x.dtype == np.uint8 and x.shape[1:] == (28, 28)
        assert y.dtype == np.int64 and y.shape == (x.shape[0],)
    assert len(ds.classes) == n_classes


# --- embedded sample (always) ---------------------------------------------------------------

def test_sample_loads_with_known_first_labels():
    ds = load_sample()
    check_contract(ds, 10)
    assert ds.name == "mnist-sample" and ds.classes == tuple("0123456789")
    assert (len(ds.train_labels), len(ds.test_labels)) == (5000, 1000)
    assert ds.train_labels[:10].tolist() == MNIST_TRAIN_FIRST_LABELS
    assert ds.test_labels[:10].tolist() == MNIST_TEST_FIRST_LABELS
    # Every digit is present in both parts.
    assert set(ds.train_labels.tolist()) == set(range(10))
    assert set(ds.test_labels.tolist()) == set(range(10))


def test_sample_readme_lists_the_files_hashes():
    readme = (SAMPLE_DIR / "README.md").read_text()
    assert "CC BY-SA 3.0" in readme and "LeCun" in readme
    for name in MNIST_CONTENT_SHA256:
        p = SAMPLE_DIR / name
        assert hashlib.sha256(p.read_bytes()).hexdigest() in readme
        assert hashlib.sha256(gzip.open(p).read()).hexdigest() in readme
        assert MNIST_CONTENT_SHA256[name] in readme  # the source's provenance


def test_load_dataset_default_is_the_sample():
    ds = load_dataset()
    assert ds.name == "mnist-sample" and len(ds.test_labels) == 1000
    with pytest.raises(DatasetError, match="unknown dataset 'cifar'.*mnist-sample"):
        load_dataset("cifar")


def test_dataset_repr_is_short():
    assert repr(load_sample()) == "Dataset('mnist-sample', train=5000, test=1000, classes=10)"


@needs_mnist
def test_sample_matches_the_first_rows_of_the_real_files():
    ds = load_sample()
    for got, name, n in ((ds.train_images, "train-images-idx3-ubyte.gz", 5000),
                         (ds.train_labels, "train-labels-idx1-ubyte.gz", 5000),
                         (ds.test_images, "t10k-images-idx3-ubyte.gz", 1000),
                         (ds.test_labels, "t10k-labels-idx1-ubyte.gz", 1000)):
        np.testing.assert_array_equal(got, raw_idx(MNIST_DIR / name)[:n])


@needs_mnist
def test_make_sample_reproduces_the_shipped_sample(tmp_path):
    make_sample(SHARED, tmp_path)
    for name in MNIST_CONTENT_SHA256:
        assert gzip.open(tmp_path / name).read() == gzip.open(SAMPLE_DIR / name).read(), name
    assert (tmp_path / "README.md").read_text() == (SAMPLE_DIR / "README.md").read_text()


def test_make_sample_refuses_unofficial_sources(tmp_path):
    src = tmp_path / "fake"
    write_idx(src / "train-images-idx3-ubyte.gz", np.zeros((3, 28, 28), np.uint8))
    write_idx(src / "train-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    write_idx(src / "t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28), np.uint8))
    write_idx(src / "t10k-labels-idx1-ubyte.gz", np.zeros(2, np.uint8))
    with pytest.raises(DatasetError, match="expected the official MNIST content"):
        make_sample(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- MNIST ----------------------------------------------------------------------------------

@needs_mnist
def test_mnist_counts_and_known_content_hashes():
    ds = load_mnist(SHARED)
    check_contract(ds, 10)
    assert (len(ds.train_labels), len(ds.test_labels)) == (60000, 10000)
    assert ds.train_labels[:10].tolist() == MNIST_TRAIN_FIRST_LABELS
    assert ds.test_labels[:10].tolist() == MNIST_TEST_FIRST_LABELS
    files = ds.provenance["files"]
    for role, name in (("train_images", "train-images-idx3-ubyte.gz"),
                       ("train_labels", "train-labels-idx1-ubyte.gz"),
                       ("test_images", "t10k-images-idx3-ubyte.gz"),
                       ("test_labels", "t10k-labels-idx1-ubyte.gz")):
        assert files[role]["sha256"] == MNIST_CONTENT_SHA256[name]
        assert files[role]["path"].endswith(name)
    assert ds.provenance["counts"] == {"train": 60000, "test": 10000}


@needs_mnist
def test_mnist_files_found_in_dir_or_dir_mnist():
    a = find_dataset_files(SHARED, "mnist", MNIST_STEMS)
    b = find_dataset_files(MNIST_DIR, "mnist", MNIST_STEMS)
    assert a == b == {role: MNIST_DIR / f"{stem}.gz" for role, stem in MNIST_STEMS.items()}


def make_mnist_dir(root, n_train=4, n_test=3, swap=False, test_labels=None):
    rng = np.random.default_rng(0)
    d = root / "mnist"
    xtr = rng.integers(0, 256, (n_train, 28, 28)).astype(np.uint8)
    xte = rng.integers(0, 256, (n_test, 28, 28)).astype(np.uint8)
    ytr = (np.arange(n_train) % 10).astype(np.uint8)
    yte = (np.arange(n_test) % 10).astype(np.uint8) if test_labels is None else test_labels
    write_idx(d / "train-images-idx3-ubyte.gz", ytr if swap else xtr)
    write_idx(d / "train-labels-idx1-ubyte.gz", xtr if swap else ytr)
    write_idx(d / "t10k-images-idx3-ubyte.gz", xte)
    write_idx(d / "t10k-labels-idx1-ubyte.gz", yte)
    return xtr, ytr


def test_mnist_loader_on_a_small_folder(tmp_path):
    xtr, ytr = make_mnist_dir(tmp_path)
    ds = load_mnist(tmp_path)
    np.testing.assert_array_equal(ds.train_images, xtr)
    np.testing.assert_array_equal(ds.train_labels, ytr.astype(np.int64))
    assert ds.provenance["files"]["train_images"]["sha256"] == hashlib.sha256(
        gzip.open(tmp_path / "mnist" / "train-images-idx3-ubyte.gz").read()).hexdigest()


def test_mnist_swapped_files_are_rejected(tmp_path):
    make_mnist_dir(tmp_path, swap=True)
    with pytest.raises(IdxError, match=r"train-images-idx3-ubyte\.gz: expected IDX magic 2051 "
                                       r"\(images, 3 dims\), found magic 2049"):
        load_mnist(tmp_path)


def test_mnist_label_count_mismatch(tmp_path):
    make_mnist_dir(tmp_path, test_labels=np.zeros(5, np.uint8))
    with pytest.raises(IdxError, match=r"t10k-labels-idx1-ubyte\.gz: expected 3 labels \(one per "
                                       r"image of .*t10k-images-idx3-ubyte\.gz\), found 5"):
        load_mnist(tmp_path)


def test_mnist_label_out_of_range(tmp_path):
    make_mnist_dir(tmp_path, test_labels=np.array([1, 10, 2], np.uint8))
    with pytest.raises(DatasetError, match=r"expected labels 0\.\.9, found 10 at index 1"):
        load_mnist(tmp_path)


def test_mnist_missing_files_are_listed(tmp_path):
    make_mnist_dir(tmp_path)
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError, match=r"missing in .*mnist: t10k-labels-idx1-ubyte\[\.gz\]"):
        load_mnist(tmp_path)


def test_default_data_dir_env_var(tmp_path, monkeypatch):
    make_mnist_dir(tmp_path)
    monkeypatch.setenv("SPYKEHW_DATA_DIR", str(tmp_path))
    assert default_data_dir() == tmp_path
    assert len(load_dataset("mnist").train_labels) == 4  # data_dir=None searches the env dir
    monkeypatch.setenv("SPYKEHW_DATA_DIR", str(tmp_path / "nope"))
    with pytest.raises(DatasetError, match=r"SPYKEHW_DATA_DIR=.*nope: expected an existing "
                                           r"folder, found nothing"):
        default_data_dir()


def test_no_data_folder_error_says_what_to_do(monkeypatch, tmp_path):
    import spykehw.data.locate as locate
    monkeypatch.delenv("SPYKEHW_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(locate, "shared_datasets_dir", lambda: None)
    assert user_data_dir() == tmp_path / "xdg" / "spykehw" / "datasets"
    with pytest.raises(DatasetError, match=r"--data-dir.*spykehw data fetch"):
        default_data_dir()
    with pytest.raises(DatasetError, match=r"no mnist dataset found: pass --data-dir"):
        load_dataset("mnist")


def test_shared_datasets_dir_is_beside_the_repository():
    from pathlib import Path

    import spykehw
    expected = Path(spykehw.__file__).resolve().parents[2] / "shared" / "datasets"
    assert SHARED == (expected if expected.is_dir() else None)


# --- the stratified split -------------------------------------------------------------------

def reference_split(labels, test_fraction, seed):
    """Second implementation of the procedure documented in spykehw.data.splits."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in sorted(set(labels.tolist())):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        k = round(test_fraction * len(idx))
        test += idx[:k].tolist()
        train += idx[k:].tolist()
    train = np.array(train, np.int64)
    rng.shuffle(train)
    return train, np.array(sorted(test), np.int64)


def test_split_counts_by_hand():
    labels = np.repeat([0, 1, 2], [7, 14, 3])
    train, test = stratified_split(labels, test_fraction=1 / 7, seed=0)
    # round(1) = 1, round(2) = 2, round(3/7 = 0.43) = 0
    assert np.bincount(labels[test], minlength=3).tolist() == [1, 2, 0]
    assert sorted(train.tolist() + test.tolist()) == list(range(24))


def test_split_matches_reference_implementation():
    labels = np.random.default_rng(5).integers(0, 6, 500)
    for seed in (0, 1, 42):
        got = stratified_split(labels, test_fraction=0.3, seed=seed)
        want = reference_split(labels, 0.3, seed)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_split_rejects_bad_fraction():
    with pytest.raises(ValueError, match="test_fraction"):
        stratified_split(np.zeros(3, np.int64), test_fraction=1.5, seed=0)


# --- EMNIST ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def emnist_raw():
    return (raw_idx(EMNIST_DIR / "emnist-bymerge-test-images-idx3-ubyte.gz"),
            raw_idx(EMNIST_DIR / "emnist-bymerge-test-labels-idx1-ubyte.gz").astype(np.int64))


@pytest.fixture(scope="module")
def emnist():
    return load_emnist_bymerge(SHARED, seed=0)


@needs_emnist
def test_emnist_counts_and_classes(emnist, emnist_raw):
    check_contract(emnist, 47)
    assert "".join(emnist.classes) == EMNIST_47
    assert len(emnist.train_labels) + len(emnist.test_labels) == 116323
    _, labels = emnist_raw
    total = np.bincount(labels, minlength=47)
    assert total.size == 47 and total.min() == 415 and total.max() == 6400  # shared README
    both = np.bincount(emnist.train_labels, minlength=47) + np.bincount(emnist.test_labels,
                                                                         minlength=47)
    np.testing.assert_array_equal(both, total)
    assert emnist.provenance["split"]["seed"] == 0
    assert emnist.provenance["counts"]["total"] == 116323


@needs_emnist
def test_emnist_split_proportions_within_one_image(emnist, emnist_raw):
    _, labels = emnist_raw
    total = np.bincount(labels, minlength=47)
    test = np.bincount(emnist.test_labels, minlength=47)
    assert np.all(np.abs(test - total / 7) <= 1)


@needs_emnist
def test_emnist_images_are_the_transposed_file_rows(emnist, emnist_raw):
    images, labels = emnist_raw
    train_idx, test_idx = reference_split(labels, 1 / 7, 0)
    np.testing.assert_array_equal(emnist.test_labels, labels[test_idx])
    np.testing.assert_array_equal(emnist.train_labels, labels[train_idx])
    np.testing.assert_array_equal(emnist.test_images, images[test_idx].transpose(0, 2, 1))
    np.testing.assert_array_equal(emnist.train_images[:500],
                                  images[train_idx[:500]].transpose(0, 2, 1))


@needs_emnist
def test_emnist_is_upright_the_digit_one_is_tall(emnist):
    # A '1' is a vertical stroke: in the upright mean image the ink spreads far more along the
    # rows (vertically) than along the columns.
    one = emnist.classes.index("1")
    mean = emnist.train_images[emnist.train_labels == one].astype(np.float64).mean(axis=0)
    rows, cols = mean.sum(axis=1), mean.sum(axis=0)
    pos = np.arange(28)

    def spread(profile):
        m = (profile * pos).sum() / profile.sum()
        return np.sqrt((profile * (pos - m) ** 2).sum() / profile.sum())

    assert spread(rows) > 1.5 * spread(cols)


@needs_emnist
def test_emnist_split_reproducible_and_seed_dependent(emnist_raw):
    _, labels = emnist_raw
    a = stratified_split(labels, test_fraction=1 / 7, seed=0)
    b = stratified_split(labels, test_fraction=1 / 7, seed=0)
    c = stratified_split(labels, test_fraction=1 / 7, seed=1)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    assert a[1].size == c[1].size  # the same per-class counts, other images
    assert np.intersect1d(a[0], a[1]).size == 0
    assert a[0].size + a[1].size == labels.size


def make_emnist_dir(root, mapping_lines=None, stems="bymerge"):
    """A tiny EMNIST-like folder: each image stored transposed, as in the official files."""
    d = root / "emnist"
    upright = np.zeros((47 * 2, 28, 28), np.uint8)
    upright[:, 2:26, 14] = 255  # a vertical bar, upright
    upright[:, 3, 10:18] = 100  # and a short horizontal bar near the top
    labels = np.repeat(np.arange(47), 2).astype(np.uint8)
    stored = upright.transpose(0, 2, 1)
    if stems == "bymerge":
        write_idx(d / "emnist-bymerge-test-images-idx3-ubyte.gz", stored)
        write_idx(d / "emnist-bymerge-test-labels-idx1-ubyte.gz", labels)
    else:
        for part in ("train", "test"):
            write_idx(d / f"emnist-balanced-{part}-images-idx3-ubyte.gz", stored)
            write_idx(d / f"emnist-balanced-{part}-labels-idx1-ubyte.gz", labels)
    if mapping_lines is not None:
        (d / f"emnist-{stems}-mapping.txt").write_text("\n".join(mapping_lines) + "\n")
    return upright, labels


def official_mapping_lines():
    return [f"{i} {ord(c)}" for i, c in enumerate(EMNIST_47)]


def test_emnist_loader_transposes_small_folder(tmp_path):
    upright, _ = make_emnist_dir(tmp_path, official_mapping_lines())
    ds = load_emnist_bymerge(tmp_path, seed=3, test_fraction=0.5)
    assert len(ds.test_labels) == 47 and len(ds.train_labels) == 47
    np.testing.assert_array_equal(ds.test_images, upright[: len(ds.test_labels)])
    np.testing.assert_array_equal(np.bincount(ds.test_labels, minlength=47), np.ones(47))


@needs_emnist
def test_shared_mapping_file_matches_the_table():
    lines = (EMNIST_DIR / "emnist-bymerge-mapping.txt").read_text().split("\n")
    assert [ln for ln in lines if ln.strip()] == official_mapping_lines()


def test_emnist_mapping_disagreement_is_an_error(tmp_path):
    lines = official_mapping_lines()
    lines[36] = "36 99"  # 'c' where the table has 'a'
    make_emnist_dir(tmp_path, lines)
    with pytest.raises(DatasetError, match=r"emnist-bymerge-mapping\.txt: label 36: expected 'a' "
                                           r"\(ASCII 97\), found 'c' \(ASCII 99\)"):
        load_emnist_bymerge(tmp_path)


def test_emnist_mapping_with_missing_labels(tmp_path):
    make_emnist_dir(tmp_path, official_mapping_lines()[:-1])
    with pytest.raises(DatasetError, match=r"expected labels 0\.\.46, missing \[46\]"):
        load_emnist_bymerge(tmp_path)


def test_emnist_balanced_loader(tmp_path):
    upright, labels = make_emnist_dir(tmp_path, official_mapping_lines(), stems="balanced")
    ds = load_dataset("emnist-balanced", tmp_path)
    np.testing.assert_array_equal(ds.train_images, upright)
    np.testing.assert_array_equal(ds.test_labels, labels.astype(np.int64))
    assert ds == ds and load_emnist_balanced(tmp_path).name == "emnist-balanced"
