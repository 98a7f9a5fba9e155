"""Encoder on real MNIST: numba kernels vs the numpy slow path, float vs integer agreement."""

import gzip
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from spykehw.golden.encoding import encode_float, encode_int
from spykehw.golden.encoding_agreement import dog_error_bound, encoder_agreement
from spykehw.golden.encoding_numpy import encode_numpy
from spykehw.golden.formats import preset
from spykehw.golden.options import EncoderOptions

import spykehw.data
from spykehw.data import load_dataset

# The embedded sample (the first 1,000 MNIST test images, shipped in the package): the tests run
# everywhere; the long full-test-set run reads the 10,000 from the data folders (-m long).
SAMPLE_TEST = Path(spykehw.data.__file__).parent / "sample" / "t10k-images-idx3-ubyte.gz"


@lru_cache(maxsize=1)
def _idx_images(path: Path) -> np.ndarray:
    # A self-contained IDX reader (magic 2051, big-endian dims), independent of spykehw.data.
    with gzip.open(path, "rb") as f:
        raw = f.read()
    assert int.from_bytes(raw[:4], "big") == 2051
    n, rows, cols = (int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(n, rows, cols)
    images.setflags(write=False)
    return images


def mnist(n: int) -> np.ndarray:
    if n <= 1000:
        return np.array(_idx_images(SAMPLE_TEST)[:n])
    return np.array(load_dataset("mnist").test_images[:n])   # long runs only: the full test set


@pytest.mark.parametrize("image_mode", ["viridis", "raw"])
@pytest.mark.parametrize("local_contrast", [True, False])
def test_numba_float_equals_numpy(image_mode, local_contrast):
    images = mnist(300)
    opts = EncoderOptions(image_mode=image_mode, local_contrast=local_contrast)
    np.testing.assert_array_equal(encode_float(images, opts), encode_numpy(images, opts))


@pytest.mark.parametrize("image_mode", ["viridis", "raw"])
@pytest.mark.parametrize("local_contrast", [True, False])
@pytest.mark.parametrize("name", ["fpga-16", "paper-float-equivalent", "edge-4"])
def test_numba_int_equals_numpy(image_mode, local_contrast, name):
    images = mnist(300)
    opts = EncoderOptions(image_mode=image_mode, local_contrast=local_contrast)
    fmt = preset(name)
    np.testing.assert_array_equal(encode_int(images, opts, fmt), encode_numpy(images, opts, fmt))


def test_numba_equals_numpy_other_options():
    images = mnist(100)
    opts = EncoderOptions(dog_threshold=30.5, border=0, bins=7, steps=12)
    np.testing.assert_array_equal(encode_float(images, opts), encode_numpy(images, opts))
    fmt = preset("fpga-8")
    np.testing.assert_array_equal(encode_int(images, opts, fmt), encode_numpy(images, opts, fmt))


def test_latency_statistics_are_plausible():
    lat = encode_float(mnist(200), EncoderOptions())
    counts = (lat >= 0).sum(axis=(2, 3))
    assert (counts > 10).all()  # every digit has ON and OFF edges
    assert lat.min() == -1 and lat.max() == 9
    assert (lat[:, :, :2] == -1).all() and (lat[:, :, :, 25:] == -1).all()


def test_float_int_agreement_paper_float_equivalent():
    images = mnist(500)
    r = encoder_agreement(images, EncoderOptions(), preset("paper-float-equivalent"))
    # Every difference must be explained by the kernel quantization (see encoding_agreement).
    assert r["unexplained_images"] == 0
    assert r["max_threshold_margin"] <= r["dog_error_bound"]
    assert r["max_misorder_gap"] <= r["key_gap_bound"]
    # At 24 fraction bits the quantized kernel moves a DoG value by at most E ~ 4e-4 (with
    # exact 128-bit ranking), below the gaps real images have: every image must agree.
    # (At 14 bits, E ~ 0.38 and 94% of MNIST test images agree; see the long test.)
    assert r["identical_fraction"] >= 0.995
    assert r["pixel_agreement"] >= 0.9999


def test_error_bound_shrinks_with_fraction_bits():
    bounds = [dog_error_bound(f) for f in (4, 6, 8, 14, 24)]
    assert bounds == sorted(bounds, reverse=True) and bounds[-2] < 0.4 and bounds[-1] < 1e-3


@pytest.mark.long
@pytest.mark.parametrize("name", ["paper-float-equivalent", "fpga-16", "fpga-8", "edge-4"])
def test_float_int_agreement_full_mnist_test_set(name):
    images = mnist(10_000)
    r = encoder_agreement(images, EncoderOptions(), preset(name))
    assert r["images"] == 10_000
    assert r["unexplained_images"] == 0
    if name == "paper-float-equivalent":
        assert r["identical_fraction"] >= 0.995  # measured 1.0000 (24 fraction bits)
    if name == "fpga-16":
        assert r["identical_fraction"] >= 0.93  # measured 0.9442 (14 fraction bits)
