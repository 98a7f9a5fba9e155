"""Encoder front end: viridis grey LUT and the exact 28->27 area resize (golden/image.py)."""

import numpy as np
import pytest
from spykehw.golden.encoding_numpy import encoder_stages_numpy
from spykehw.golden.image import VIRIDIS_L, prepare_image, resize_weights, viridis_index
from spykehw.golden.options import EncoderOptions

RAW = np.zeros(0, np.uint8)


def resize(img: np.ndarray, lut: np.ndarray = RAW) -> np.ndarray:
    out = np.empty((27, 27), np.int64)
    prepare_image(np.ascontiguousarray(img, dtype=np.uint8), lut, out)
    return out


def area_average_reference(img: np.ndarray) -> np.ndarray:
    """Independent INTER_AREA: blow each input pixel up to 27x27 sub-pixels (756x756), average
    28x28 blocks, round half up."""
    fine = np.kron(img.astype(np.float64), np.ones((27, 27)))
    mean = fine.reshape(27, 28, 27, 28).mean(axis=(1, 3))
    return np.floor(mean + 0.5).astype(np.int64)


def test_resize_weights_by_hand():
    k = resize_weights()
    assert k.shape == (27, 28)
    assert list(k[0, :3]) == [27, 1, 0] and k[0, 3:].sum() == 0
    assert list(k[1, :4]) == [0, 26, 2, 0]
    assert list(k[26, -3:]) == [0, 1, 27]
    assert list(k[13, 13:15]) == [14, 14]
    np.testing.assert_array_equal(k.sum(axis=1), 28)
    np.testing.assert_array_equal(k.sum(axis=0), 27)  # every input row is used up exactly


@pytest.mark.parametrize("v", [0, 1, 49, 200, 255])
def test_constant_image_stays_constant(v):
    np.testing.assert_array_equal(resize(np.full((28, 28), v)), v)


def test_single_bright_pixel_spreads_with_k_weights():
    img = np.zeros((28, 28), np.uint8)
    img[0, 0] = 255
    out = resize(img)
    expected = np.zeros((27, 27), np.int64)
    expected[0, 0] = 237  # 27*27*255/784 = 237.08
    np.testing.assert_array_equal(out, expected)

    img = np.zeros((28, 28), np.uint8)
    img[1, 1] = 255  # weights: out(0,0) 1*1, out(0,1) 1*26, out(1,1) 26*26
    out = resize(img)
    expected = np.zeros((27, 27), np.int64)
    expected[0, 1] = expected[1, 0] = 8  # 26*255/784 = 8.46
    expected[1, 1] = 220  # 676*255/784 = 219.87; out(0,0) = 255/784 rounds to 0
    np.testing.assert_array_equal(out, expected)


def test_resize_rounds_half_up():
    img = np.zeros((28, 28), np.uint8)
    img[8, 1] = 49  # rows: K[7][8] = 8, K[8][8] = 19; cols: K[0][1] = 1, K[1][1] = 26
    out = resize(img)
    assert out[7, 0] == 1  # 8*1*49 = 392 = exactly half of 784: rounds up
    assert out[7, 1] == 13  # 8*26*49 = 10192 = 13*784
    assert out[8, 0] == 1  # 19*49 = 931 -> 1.19
    assert out[8, 1] == 31  # 19*26*49 = 24206 -> 30.875
    assert out.sum() == 1 + 13 + 1 + 31


def test_resize_matches_float_area_average():
    rng = np.random.default_rng(1)
    for img in list(rng.integers(0, 256, (20, 28, 28))) + [np.eye(28) * 255, np.tri(28) * 17]:
        np.testing.assert_array_equal(resize(img), area_average_reference(img))


def test_numpy_resize_matches_area_average():
    rng = np.random.default_rng(2)
    imgs = rng.integers(0, 256, (5, 28, 28)).astype(np.uint8)
    small = encoder_stages_numpy(imgs, EncoderOptions(image_mode="raw"))["resized"]
    for img, s in zip(imgs, small):
        np.testing.assert_array_equal(s, area_average_reference(img))


def test_viridis_lut_spot_values_from_appendix_a():
    assert VIRIDIS_L.shape == (256,) and VIRIDIS_L.dtype == np.uint8
    spots = {0: 30, 1: 31, 3: 34, 31: 60, 32: 61, 64: 81, 96: 96, 127: 109, 128: 110, 159: 128,
             160: 129, 192: 157, 224: 186, 254: 214, 255: 215}
    for index, grey in spots.items():
        assert VIRIDIS_L[index] == grey, index
    assert np.all(np.diff(VIRIDIS_L.astype(int)) >= 0)


def test_viridis_index_formula():
    assert viridis_index(0, 0, 255) == 0
    assert viridis_index(255, 0, 255) == 255  # 256 clipped
    assert viridis_index(128, 0, 255) == 128  # 32768 // 255 = 128.5 -> 128
    assert viridis_index(127, 0, 255) == 127  # 32512 // 255 = 127.5 -> 127
    assert viridis_index(15, 10, 20) == 128  # 256 * 5 / 10
    assert viridis_index(19, 10, 20) == 230  # 2304 / 10 = 230.4
    assert viridis_index(7, 7, 7) == 0  # constant image


def test_viridis_grey_image_before_resize():
    img = np.zeros((28, 28), np.uint8)
    img[:, 14:] = 255
    out = resize(img, VIRIDIS_L.copy())
    assert out[0, 0] == 30 and out[0, 26] == 215
    # column 13 mixes input cols 13 (K=14, grey 30) and 14 (K=14, grey 215): (14*30 + 14*215)/28
    assert out[5, 13] == 123  # 122.5 rounds half up


def test_constant_image_maps_to_index_zero():
    out = resize(np.full((28, 28), 77), VIRIDIS_L.copy())
    np.testing.assert_array_equal(out, 30)
