"""Latency encoder stages and kernels (golden/encoding.py) on hand-made inputs."""

import math
from fractions import Fraction

import numpy as np
import pytest
from numba import njit, prange
from scipy import ndimage
from spykehw.golden.dog import dog_kernel, dog_kernel_fixed
from spykehw.golden.encoding import (
    EncodingError,
    box_sum,
    dog_correlate,
    encode,
    encode_float,
    encode_image_float,
    encode_image_int,
    encode_int,
    float_encoder_args,
    int_encoder_args,
)
from spykehw.golden.encoding_numpy import encode_numpy
from spykehw.golden.formats import EncoderFormat, FormatError, preset
from spykehw.golden.image import VIRIDIS_L, prepare_image
from spykehw.golden.options import EncoderOptions

RAW = np.zeros(0, np.uint8)
F16 = preset("fpga-16")

# Spec section 2.2, values by squared distance from the centre.
DOG_BY_D2 = {0: 1.0, 1: 0.433004250795, 2: 0.116568735166, 4: -0.131441192332,
             5: -0.161281283605, 8: -0.127534999288, 9: -0.103130501445, 10: -0.078224693601,
             13: -0.011208489331, 18: 0.063962640177}


def identity_kernel(dtype):
    k = np.zeros((7, 7), dtype)
    k[3, 3] = 1
    return k


def run_one(img, lut, kernel, threshold, border=2, lc=True, bins=10):
    out = np.full((2, 27, 27), 99, np.int8)
    f = encode_image_float if kernel.dtype == np.float64 else encode_image_int
    f(np.ascontiguousarray(img, dtype=np.uint8), lut, kernel, threshold, border, lc, bins, out)
    return out


def expected_bins_in_flat_order(n, bins=10):
    return [math.ceil(Fraction(bins * k, n)) - 1 for k in range(1, n + 1)]


# --- DoG kernel and filtering ---------------------------------------------------------------

def test_dog_kernel_values_from_spec():
    k = dog_kernel()
    for r in range(7):
        for c in range(7):
            assert k[r, c] == pytest.approx(DOG_BY_D2[(r - 3) ** 2 + (c - 3) ** 2], abs=1e-11)
    assert abs(k.sum()) < 1e-12


@pytest.mark.parametrize("frac_bits", [4, 8, 14, 24])
def test_fixed_kernel_is_round_half_up_with_zero_sum_centre(frac_bits):
    k = dog_kernel_fixed(frac_bits)
    rounded = {}
    for r in range(7):
        for c in range(7):
            v = Fraction(DOG_BY_D2[(r - 3) ** 2 + (c - 3) ** 2]) * 2 ** frac_bits
            rounded[r, c] = math.floor(v + Fraction(1, 2))
            if (r, c) != (3, 3):
                assert k[r, c] == rounded[r, c]
    # the centre absorbs the rounding residue so the integer kernel sums to 0, like the float one
    assert k[3, 3] == rounded[3, 3] - sum(rounded.values())
    assert k.sum() == 0


def test_dog_correlate_is_reflect101_correlation():
    rng = np.random.default_rng(3)
    g = rng.integers(0, 256, (27, 27)).astype(np.int64)
    # asymmetric kernels, so a convolution (flipped) or another border mode would show
    kf = rng.normal(size=(7, 7))
    out = np.zeros((27, 27))
    dog_correlate(g, kf, 0, 27, out)
    np.testing.assert_allclose(out, ndimage.correlate(g.astype(float), kf, mode="mirror"),
                               rtol=0, atol=1e-9)
    ki = rng.integers(-3000, 3000, (7, 7)).astype(np.int64)
    out = np.zeros((27, 27), np.int64)
    dog_correlate(g, ki, 0, 27, out)
    np.testing.assert_array_equal(out, ndimage.correlate(g, ki, mode="mirror"))


def test_dog_correlate_touches_only_the_requested_window():
    g = np.arange(27 * 27, dtype=np.int64).reshape(27, 27) % 251
    full = np.zeros((27, 27), np.int64)
    dog_correlate(g, dog_kernel_fixed(8), 0, 27, full)
    part = np.full((27, 27), -7, np.int64)
    dog_correlate(g, dog_kernel_fixed(8), 2, 25, part)
    np.testing.assert_array_equal(part[2:25, 2:25], full[2:25, 2:25])
    assert (part[:2] == -7).all() and (part[25:] == -7).all()
    assert (part[:, :2] == -7).all() and (part[:, 25:] == -7).all()


def test_box_sum_is_reflect101_17x17():
    rng = np.random.default_rng(4)
    x = np.where(rng.random((27, 27)) < 0.3, rng.integers(1, 10 ** 9, (27, 27)), 0)
    out = np.zeros((27, 27), np.int64)
    box_sum(x, 17, 0, 27, out)
    np.testing.assert_array_equal(out, ndimage.correlate(x, np.ones((17, 17), np.int64),
                                                         mode="mirror"))
    out2 = np.zeros((27, 27), np.int64)
    box_sum(x, 17, 2, 25, out2)
    np.testing.assert_array_equal(out2[2:25, 2:25], out[2:25, 2:25])


# --- threshold, border, channels, ties ------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.int64])
@pytest.mark.parametrize("border,lc", [(2, False), (0, True)])
def test_constant_image_all_tied_ranked_in_flat_order(dtype, border, lc):
    # Identity kernel: the response is the (constant) resized image, so every candidate has the
    # same value; without local contrast, or with no border (every 17x17 box then sums the
    # same constant map), every key is the same too.
    img = np.full((28, 28), 80, np.uint8)
    out = run_one(img, RAW, identity_kernel(dtype), dtype(80), border, lc)  # exactly at threshold
    assert (out[1] == -1).all()  # OFF = -80 never reaches the threshold
    on = out[0]
    inner = on[border:27 - border, border:27 - border]
    assert (inner >= 0).sum() == (on >= 0).sum()
    assert inner.ravel().tolist() == expected_bins_in_flat_order(inner.size)
    assert (run_one(img, RAW, identity_kernel(dtype), dtype(81), border, lc) == -1).all()
    if dtype == np.float64:
        assert (run_one(img, RAW, identity_kernel(dtype), 80.000001, border, lc) == -1).all()


def test_local_contrast_ranks_by_value_over_box_mean():
    # A constant map with a 2-px border: pixels whose 17x17 box reaches into the empty border
    # have a smaller box sum, hence a larger key; the centre pixel (box fully inside) is last.
    img = np.full((28, 28), 80, np.uint8)
    out = run_one(img, RAW, identity_kernel(np.int64), 80)[0]
    assert out[2, 2] == 0 and out[13, 13] == 9
    box = ndimage.correlate(np.pad(np.ones((23, 23), np.int64), 2), np.ones((17, 17), np.int64),
                            mode="mirror")
    for b in range(9):  # key 80/S: bin b has larger-or-equal keys (smaller S) than bin b + 1
        assert box[out == b].max() <= box[out == b + 1].min()


@pytest.mark.parametrize("border,n", [(0, 729), (2, 529), (12, 9)])
def test_border_mask(border, n):
    img = np.full((28, 28), 200, np.uint8)
    for lc in (False, True):
        out = run_one(img, RAW, identity_kernel(np.int64), 100, border=border, lc=lc)
        spikes = np.argwhere(out[0] >= 0)
        assert len(spikes) == n
        assert spikes.min() == border and spikes.max() == 26 - border
        assert sorted(out[0][out[0] >= 0].tolist()) == expected_bins_in_flat_order(n)


def test_local_contrast_off_ranks_by_value():
    rng = np.random.default_rng(8)
    img = rng.integers(60, 256, (28, 28)).astype(np.uint8)
    g = np.empty((27, 27), np.int64)
    prepare_image(img, RAW, g)
    for dtype in (np.float64, np.int64):
        out = run_one(img, RAW, identity_kernel(dtype), dtype(50), lc=False)[0]
        assert (out[2:25, 2:25] >= 0).all()
        for b in range(9):  # every value in bin b is >= every value in bin b + 1
            assert g[out == b].min() >= g[out == b + 1].max()
        lc = run_one(img, RAW, identity_kernel(dtype), dtype(50), lc=True)[0]
        assert (lc != out).any()  # local contrast changes the order


def test_threshold_exactly_at_integer_response_spikes():
    rng = np.random.default_rng(5)
    img = (rng.random((28, 28)) < 0.3).astype(np.uint8) * 255
    fb = 8
    g = np.empty((27, 27), np.int64)
    prepare_image(img, RAW, g)
    r = ndimage.correlate(g, dog_kernel_fixed(fb), mode="mirror")  # independent R
    inner = r[2:25, 2:25]
    t = int(np.sort(inner[inner > 0])[len(inner[inner > 0]) // 2])  # a response that occurs
    opts = EncoderOptions(image_mode="raw", dog_threshold=t / 2 ** fb)  # exactly t in fixed point
    assert int_encoder_args(opts, EncoderFormat(dog_frac_bits=fb))[2] == t
    out = encode_int(img[None], opts, EncoderFormat(dog_frac_bits=fb))[0]
    mask = np.zeros((27, 27), bool)
    mask[2:25, 2:25] = True
    np.testing.assert_array_equal(out[0] >= 0, (r >= t) & mask)
    np.testing.assert_array_equal(out[1] >= 0, (-r >= t) & mask)
    assert ((r == t) & mask).any()


def test_on_and_off_ranked_separately_each_pixel_once():
    img = np.zeros((28, 28), np.uint8)
    img[6:22, 12:16] = 255  # a bar: ON inside, OFF along both sides
    for fmt in (None, F16):
        out = encode(img[None], EncoderOptions(image_mode="raw"), fmt)[0]
        for ch in range(2):
            b = out[ch][out[ch] >= 0]
            assert len(b) >= 10 and b.min() == 0 and b.max() == 9  # each channel fills 0..9
            assert np.bincount(b, minlength=10).tolist() == np.bincount(
                expected_bins_in_flat_order(len(b))).tolist()
        assert not ((out[0] >= 0) & (out[1] >= 0)).any()  # x >= 50 and -x >= 50 exclude
        assert set(np.unique(out).tolist()) <= set(range(-1, 10))


@pytest.mark.parametrize("fmt", [None, F16, preset("paper-float-equivalent")])
def test_mirror_symmetric_image_ties_go_to_lower_flat_index(fmt):
    img = np.zeros((28, 28), np.uint8)
    img[5:23, 8:11] = 255
    img[5:8, 8:20] = 255
    img[:, 14:] = img[:, :14][:, ::-1]  # symmetric: column c mirrors 27 - c
    out = encode(img[None], EncoderOptions(image_mode="raw"), fmt)[0]
    # the resized image is symmetric (j <-> 26 - j), so mirrored pixels tie exactly
    for ch in range(2):
        left, right = out[ch][:, :13], out[ch][:, 14:][:, ::-1]
        np.testing.assert_array_equal(left >= 0, right >= 0)
        assert (left <= right).all()  # the lower flat index is ranked first
        assert (left < right).any()  # ... and some tied pairs straddle a bin boundary


def test_constant_viridis_image_has_no_spikes():
    img = np.full((1, 28, 28), 123, np.uint8)
    for fmt in (None, F16, preset("edge-4")):
        assert (encode(img, EncoderOptions(), fmt) == -1).all()


def test_bins_option():
    img = np.full((28, 28), 90, np.uint8)
    out = run_one(img, RAW, identity_kernel(np.int64), 50, lc=False, bins=4)
    assert out[0][out[0] >= 0].tolist() == expected_bins_in_flat_order(529, bins=4)


# --- API ------------------------------------------------------------------------------------

def test_encoder_args():
    opts = EncoderOptions()
    lut, k, t, border, lc, bins = float_encoder_args(opts)
    np.testing.assert_array_equal(lut, VIRIDIS_L)
    assert k.dtype == np.float64 and t == 50.0 and (border, lc, bins) == (2, True, 10)
    lut, k, t, border, lc, bins = int_encoder_args(EncoderOptions(image_mode="raw"), F16)
    assert lut.shape == (0,) and k.dtype == np.int64 and t == 50 * 2 ** 14
    np.testing.assert_array_equal(k, dog_kernel_fixed(14))
    assert int_encoder_args(EncoderOptions(dog_threshold=0.7), EncoderFormat(4))[2] == 11
    with pytest.raises(FormatError, match="dog_frac_bits"):
        int_encoder_args(opts, EncoderFormat(dog_frac_bits=25))  # box sums would overflow int64


def test_bad_images_rejected():
    with pytest.raises(EncodingError, match=r"uint8 \(N, 28, 28\)"):
        encode_float(np.zeros((2, 27, 27), np.uint8), EncoderOptions())
    with pytest.raises(EncodingError, match="float64"):
        encode_int(np.zeros((2, 28, 28)), EncoderOptions(), F16)
    assert encode_float(np.zeros((0, 28, 28), np.uint8), EncoderOptions()).shape == (0, 2, 27, 27)


@njit(parallel=True)
def _caller_loop(images, lut, kernel, threshold, border, lc, bins, out):
    # How the conv feature extraction calls the per-image kernel from its own prange loop.
    for i in prange(images.shape[0]):
        encode_image_int(images[i], lut, kernel, threshold, border, lc, bins, out[i])


def test_per_image_kernels_callable_from_numba_and_match_batch():
    rng = np.random.default_rng(6)
    imgs = (rng.random((6, 28, 28)) < 0.25).astype(np.uint8) * rng.integers(0, 256, (6, 28, 28),
                                                                              dtype=np.uint8)
    opts = EncoderOptions()
    out = np.empty((6, 2, 27, 27), np.int8)
    _caller_loop(imgs, *int_encoder_args(opts, F16), out)
    np.testing.assert_array_equal(out, encode_int(imgs, opts, F16))
    np.testing.assert_array_equal(out, encode_numpy(imgs, opts, F16))
    single = np.empty((2, 27, 27), np.int8)
    encode_image_float(imgs[0], *float_encoder_args(opts), single)
    np.testing.assert_array_equal(single, encode_float(imgs[:1], opts)[0])
