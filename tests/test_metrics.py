"""Metrics on hand-made confusion cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from spykehw.golden.errors import SpykehwError
from spykehw.golden.metrics import (
    EMNIST_CHARS,
    EMNIST_COLLAPSED_SETS,
    accuracy,
    balanced_accuracy,
    collapse_map,
    collapsed_accuracy,
    conditioned_accuracy,
    conditioned_predictions,
    confusion_matrix,
    per_class_accuracy,
)

# 3 classes; true 0 x4 (3 right, 1 -> 2), true 1 x1 (-> 0), true 2 x3 (all right)
Y_TRUE = [0, 0, 0, 0, 1, 2, 2, 2]
Y_PRED = [0, 0, 2, 0, 0, 2, 2, 2]


def test_confusion_matrix_rows_true_cols_predicted():
    m = confusion_matrix(Y_TRUE, Y_PRED)
    np.testing.assert_array_equal(m, [[3, 0, 1], [1, 0, 0], [0, 0, 3]])
    assert confusion_matrix(Y_TRUE, Y_PRED, 4).shape == (4, 4)
    with pytest.raises(SpykehwError):
        confusion_matrix([0, 5], [0, 0], 3)


def test_accuracy_and_balanced_accuracy():
    assert accuracy(Y_TRUE, Y_PRED) == 6 / 8
    np.testing.assert_allclose(per_class_accuracy(Y_TRUE, Y_PRED), [3 / 4, 0.0, 1.0])
    assert balanced_accuracy(Y_TRUE, Y_PRED) == pytest.approx((0.75 + 0 + 1) / 3)
    # a class that never occurs in y_true is left out of the balanced mean (class 1 here)
    r = per_class_accuracy([0, 0, 2], [0, 1, 2], 3)
    assert r[0] == 0.5 and math.isnan(r[1]) and r[2] == 1.0
    assert balanced_accuracy([0, 0, 2], [0, 1, 2], 3) == pytest.approx(0.75)
    assert math.isnan(accuracy([], []))
    with pytest.raises(SpykehwError):
        accuracy([0, 1], [0])


def test_emnist_label_tables():
    assert len(EMNIST_CHARS) == 47
    # emnist-bymerge-mapping.txt: 40 -> 102 'f', 44 -> 113 'q', 46 -> 116 't'
    assert EMNIST_CHARS[40] == "f" and EMNIST_CHARS[44] == "q" and EMNIST_CHARS[46] == "t"
    F, O, L, I, S, Z = 15, 24, 21, 18, 28, 35  # A=10 ... Z=35
    assert EMNIST_COLLAPSED_SETS == ((40, F), (0, O), (44, 9), (1, L, I), (S, 5), (2, Z))
    m = collapse_map()
    assert m[I] == m[L] == m[1] == 1 and m[F] == m[40] and m[3] == 3 and m[46] == 46


def test_conditioned_accuracy_restricts_argmax_to_the_true_group():
    logits = np.zeros((4, 47))
    logits[0, [24, 0]] = [5, 4]      # true 0 (digit): overall argmax O (24), within digits 0 -> right
    logits[1, [44, 9, 41]] = [6, 1, 3]  # true q (44): overall q -> right
    logits[2, [41, 44, 9]] = [3, 2, 9]  # true q: 9 excluded (digit), g (41) wins within lower -> wrong
    logits[3, [12, 13]] = [7, 7]      # true D (13): tie C/D -> lowest index C -> wrong
    y = np.array([0, 44, 44, 13])
    np.testing.assert_array_equal(conditioned_predictions(logits, y), [0, 44, 41, 12])
    assert conditioned_accuracy(logits, y) == 0.5
    assert accuracy(y, np.argmax(logits, axis=1)) == 0.25


def test_collapsed_accuracy():
    y_true = [0, 24, 44, 18, 21, 28, 35, 40, 3, 36]
    y_pred = [24, 0, 9, 1, 18, 5, 2, 15, 8, 10]  # all pairs count as right except 3->8, a->A
    assert collapsed_accuracy(y_true, y_pred) == 0.8
    assert accuracy(y_true, y_pred) == 0.0
