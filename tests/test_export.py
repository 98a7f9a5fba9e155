"""The weight export: the packing of the blocks' memory words (hand-computed cases and a naive
reference), and export -> load -> integer golden model on a small network trained on the
embedded MNIST sample (the same predictions and softmax words as the original state), file
checks (a changed or truncated file is refused by name) and the ``spykehw export`` command."""

from __future__ import annotations

import numpy as np
import pytest

from spykehw.rtl.packing import (LOAD_TARGETS, PackingError, classifier_load_words, conv_weight_rows,
                                 conv_weight_words, conv_weights_from_rows, pack_rows, rows_to_ints,
                                 unpack_rows, w2_row_words)


def naive_word(values, bits):
    """Lane k in bits k*bits.., two's complement: a plain-Python reference."""
    word = 0
    for k, v in enumerate(values):
        word |= (int(v) % (1 << bits)) << (k * bits)
    return word


# --- packing ---------------------------------------------------------------------------------------

def test_two_lanes_of_three_bits_by_hand():
    """W2 of 2 features x 3 hidden units, 2 lanes of 3-bit signed weights: G = 2 words per row,
    the last lane of each row padding. Row 0 = (-1, 2, 3): word 0 = 0b010_111 = 0x17, word 1 =
    0b000_011 = 0x03; row 1 = (-4, 0, 1): 0b000_100 = 0x04, 0b000_001 = 0x01."""
    W2 = np.array([[-1, 2, 3], [-4, 0, 1]])
    assert w2_row_words(W2, 2, 3) == [[0x17, 0x03], [0x04, 0x01]]
    data = pack_rows([[-1, 2], [3, 0], [-4, 0], [1, 0]], 3, signed=True)
    assert data.tolist() == [[0x17], [0x03], [0x04], [0x01]]
    assert unpack_rows(data, 2, 3, signed=True).tolist() == [[-1, 2], [3, 0], [-4, 0], [1, 0]]


def test_conv_weight_words_by_hand():
    """4 maps, 1 channel, K = 2, 2 lanes of 3 bits: G = 2; word index*2 + g holds maps 2g, 2g+1
    of kernel position index = kr*2 + kc."""
    w = np.zeros((4, 1, 2, 2), np.int64)
    w[:, 0, 0, 0] = [1, 2, 3, 4]
    w[:, 0, 1, 1] = [7, 0, 5, 6]
    words = conv_weight_words(w, 2, 3)
    # index 0: g0 = 1 | 2<<3 = 0x11, g1 = 3 | 4<<3 = 0x23; index 1, 2: zeros; index 3: 7 | 0 = 0x07,
    # 5 | 6<<3 = 0x35
    assert words == [0x11, 0x23, 0, 0, 0, 0, 0x07, 0x35]
    assert np.array_equal(conv_weights_from_rows(conv_weight_rows(w, 2), w.shape), w)
    with pytest.raises(PackingError, match="does not fit 3 bits unsigned"):
        conv_weight_words(w + 1, 2, 3)


@pytest.mark.parametrize("bits,signed", [(1, False), (3, True), (7, True), (16, True), (24, False),
                                         (33, True), (63, True)])
def test_pack_rows_against_the_naive_reference(bits, signed):
    rng = np.random.default_rng(bits)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    values = rng.integers(lo, hi, (20, 5), endpoint=True)
    values[0] = lo
    values[1] = hi
    data = pack_rows(values, bits, signed=signed)
    assert data.shape == (20, -(-5 * bits // 8))
    assert rows_to_ints(data) == [naive_word(row, bits) for row in values]
    assert np.array_equal(unpack_rows(data, 5, bits, signed=signed), values)


def test_unpack_refuses_stray_bits_above_the_word():
    data = pack_rows([[1, 2]], 3)           # 6 bits in one byte
    data[0, 0] |= 0x80
    with pytest.raises(PackingError, match="word 0: bits above the 6-bit word are set"):
        unpack_rows(data, 2, 3, signed=False)


def test_classifier_load_words_order_and_layout():
    """b2 (padded to whole words), W3 one row per word, b3 one word, then W2 on chip."""
    W2, b2, W3, b3 = np.array([[1, 2, 3], [4, 5, 6]]), np.array([-1, -2, -3]), \
        np.array([[7, 8], [9, 10], [11, 12]]), np.array([-5, 6])
    bits = {"W2": 8, "b2": 12, "W3": 8, "b3": 12}
    got = classifier_load_words(W2, b2, W3, b3, lanes=2, bits=bits, w2_on_chip=True)
    assert got == [("B2", 0, naive_word([-1, -2], 12)), ("B2", 1, naive_word([-3, 0], 12)),
                   ("W3", 0, naive_word([7, 8], 8)), ("W3", 1, naive_word([9, 10], 8)),
                   ("W3", 2, naive_word([11, 12], 8)), ("B3", 0, naive_word([-5, 6], 12)),
                   ("W2", 0, 0x0201), ("W2", 1, 0x0003), ("W2", 2, 0x0504), ("W2", 3, 0x0006)]


def test_load_target_codes_equal_the_hardware_enum():
    LoadTarget = pytest.importorskip("spykehw.rtl.classifier").LoadTarget
    assert [(t.name, t.value) for t in LoadTarget] == [(n, i) for i, n in enumerate(LOAD_TARGETS)]
