"""Integer softmax through the exp lookup table, and the argmax it must agree with.

Definition (also in :mod:`spykehw.golden.formats`): for integer logits ``z`` of one image,
``d = max(z) - z``; ``e = EXP_LUT[d]`` if ``d < exp_lut_entries`` else 0; ``S = sum(e)``
(``S >= EXP_LUT[0] > 0``); word ``= min(2**softmax_bits - 1, (e << softmax_bits) // S)``.
The class is ``argmax(z)`` with the lowest index on ties; the formats' validation guarantees that
``argmax(words)`` (lowest index on ties) is the same class for up to 47 classes.
"""

from __future__ import annotations

import numpy as np

from .exp_lut import exp_lut

__all__ = ["argmax_lowest", "softmax_int"]


def argmax_lowest(z: np.ndarray) -> np.ndarray:
    """Row-wise argmax, lowest index on ties (numpy's rule, stated because hardware must match)."""
    return np.argmax(z, axis=-1)


def softmax_int(logits: np.ndarray, softmax_format) -> tuple[np.ndarray, np.ndarray]:
    """``(classes (N,), words (N, C))`` for int logits ``(N, C)`` (or ``(C,)``)."""
    z = np.asarray(logits, dtype=np.int64)
    single = z.ndim == 1
    z = np.atleast_2d(z)
    lut = exp_lut(softmax_format)
    d = z.max(axis=1, keepdims=True) - z
    e = np.where(d < len(lut), lut[np.minimum(d, len(lut) - 1)], 0)
    s = e.sum(axis=1, keepdims=True)
    p = softmax_format.softmax_bits
    words = np.minimum((1 << p) - 1, (e << p) // s)
    classes = argmax_lowest(z)
    return (classes[0], words[0]) if single else (classes, words)
