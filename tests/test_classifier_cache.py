"""The co-simulation classifier cache (``real_classifier``): keyed by the data it was trained on
and the code that made it; a damaged file is discarded with a line naming it (issue 14, item 2)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from spykehw.sim.classifier.vector_gen import real_classifier

from spykehw.data import load_sample, write_idx

SMALL = dict(hidden=8, epochs=1, stdp_images=20)


def _mnist_dir(root, offset: int, n_train: int = 60, n_test: int = 12):
    ds = load_sample()
    d = root / "mnist"
    tr = slice(offset, offset + n_train)
    write_idx(d / "train-images-idx3-ubyte.gz", ds.train_images[tr])
    write_idx(d / "train-labels-idx1-ubyte.gz", ds.train_labels[tr].astype(np.uint8))
    write_idx(d / "t10k-images-idx3-ubyte.gz", ds.test_images[:n_test])
    write_idx(d / "t10k-labels-idx1-ubyte.gz", ds.test_labels[:n_test].astype(np.uint8))
    return root


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPYKEHW_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "classifier"


def test_a_cache_built_on_other_data_is_not_reused(tmp_path, cache):
    a = real_classifier("mnist", data_dir=_mnist_dir(tmp_path / "a", 0), **SMALL)
    assert len(list(cache.glob("*.npz"))) == 1
    again = real_classifier("mnist", data_dir=_mnist_dir(tmp_path / "a2", 0), **SMALL)
    assert len(list(cache.glob("*.npz"))) == 1          # same content elsewhere: reused
    np.testing.assert_array_equal(again.q.W2q, a.q.W2q)
    real_classifier("mnist", data_dir=_mnist_dir(tmp_path / "b", 100), **SMALL)
    assert len(list(cache.glob("*.npz"))) == 2          # other data: its own entry


def test_a_truncated_cache_file_is_discarded_and_named(tmp_path, cache, capsys):
    d = _mnist_dir(tmp_path / "a", 0)
    first = real_classifier("mnist", data_dir=d, **SMALL)
    (path,) = cache.glob("*.npz")
    path.write_bytes(path.read_bytes()[:100])
    again = real_classifier("mnist", data_dir=d, **SMALL)   # was: BadZipFile on every later run
    err = capsys.readouterr().err
    assert str(path) in err and "discarded" in err
    np.testing.assert_array_equal(again.q.W2q, first.q.W2q)
    assert path.is_file() and path.with_name(path.name + ".corrupt").is_file()


def test_cold_runs_started_together_both_work(tmp_path, cache):
    """The temporary file had a fixed name: the second writer failed."""
    d = _mnist_dir(tmp_path / "a", 0)
    out, errors = [], []

    def run():
        try:
            out.append(real_classifier("mnist", data_dir=d, **SMALL))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(out) == 2
    assert not list(cache.glob("*.tmp")) and len(list(cache.glob("*.npz"))) == 1
