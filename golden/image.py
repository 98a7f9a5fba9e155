"""Image front end of the encoder: the viridis grey LUT and the exact 28->27 area resize.

Both steps are exact integer arithmetic, so the float reference and the integer golden model
share them (spec sections 1.2 and 2.1, Appendix A).

Viridis LUT
    The authors save each image with ``plt.imsave`` (per-image min-max normalisation, viridis
    colour map) and read it back as PIL luma, so the DoG sees ``VIRIDIS_L[index]`` with
    ``index = min(255, (256 * (p - pmin)) // (pmax - pmin))``, computed exactly with integers.
    matplotlib computes the same index in floating point, which can differ by one where
    ``256 * (p - pmin) / (pmax - pmin)`` is an integer other than 0 and 256 (never for the usual
    0..255 MNIST range). A constant image (``pmax == pmin``) maps to index 0 everywhere, i.e.
    a constant grey image, which has no DoG response and therefore produces no spikes.
Resize
    ``cv2.resize(INTER_AREA)`` 28->27: ``out[i][j] = (sum_r sum_c K[i][r] K[j][c] g[r][c] + 392)
    // 784`` (round half up), where ``K[i][r]`` is the overlap length of the output interval
    ``[28 i, 28 i + 28)`` with the input interval ``[27 r, 27 r + 27)``. Each output interval
    overlaps exactly two input intervals: ``K[i][i] = 27 - i`` and ``K[i][i + 1] = i + 1``.
    OpenCV's float accumulation may round a remainder of exactly 392/784 either way (spec
    [AMBIG]); we round half up.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "IN_SIZE",
    "OUT_SIZE",
    "VIRIDIS_L",
    "resize_weights",
    "viridis_index",
    "prepare_image",
]

IN_SIZE = 28
OUT_SIZE = 27
_AREA = IN_SIZE * IN_SIZE  # 784: the product of two 1-D weight sums (28 each)

# Verbatim from the spec, Appendix A (index 0..255, 32 values a line; long lines kept as there).
_VIRIDIS_L_TEXT = """
30,31,32,34,34,36,37,38,39,40,41,42,43,45,45,46,47,48,49,51,51,52,53,54,55,55,56,57,58,58,60,60,
61,61,63,63,64,64,66,66,67,67,69,69,70,70,71,71,72,73,73,74,74,75,76,76,77,77,78,78,79,79,80,81,
81,82,82,83,83,84,84,85,85,86,86,86,87,87,88,88,89,89,89,90,91,91,91,92,92,93,93,94,94,95,95,96,
96,97,97,97,98,99,99,99,100,100,100,101,101,102,102,103,103,104,104,104,105,105,106,106,107,107,107,108,108,109,109,109,
110,111,111,111,112,113,113,113,114,115,115,115,116,116,117,117,118,118,119,120,120,121,122,122,123,123,124,124,125,126,127,128,
129,129,130,131,131,132,133,134,135,136,137,138,139,139,140,141,142,143,144,145,145,146,148,149,149,150,151,152,153,154,155,156,
157,158,159,160,161,162,162,164,164,165,166,167,168,169,170,171,172,173,174,175,176,176,177,178,179,180,181,181,183,183,184,185,
186,187,188,189,189,190,191,192,193,194,195,195,196,197,198,198,200,201,201,203,203,204,206,206,207,209,210,211,212,213,214,215
"""


def _parse_lut(text: str) -> np.ndarray:
    lut = np.array([int(v) for v in text.replace("\n", "").split(",") if v], dtype=np.uint8)
    assert lut.shape == (256,)
    lut.setflags(write=False)
    return lut


VIRIDIS_L = _parse_lut(_VIRIDIS_L_TEXT)
"""Grey value (PIL luma of the viridis colour) for each colour-map index 0..255 (read-only)."""


def resize_weights() -> np.ndarray:
    """``K`` (27, 28) int64: overlap lengths of the area resize, every row summing to 28."""
    i = np.arange(OUT_SIZE)[:, None]
    r = np.arange(IN_SIZE)[None, :]
    lo = np.maximum(IN_SIZE * i, OUT_SIZE * r)
    hi = np.minimum(IN_SIZE * i + IN_SIZE, OUT_SIZE * r + OUT_SIZE)
    return np.maximum(hi - lo, 0).astype(np.int64)


@njit(cache=True)
def viridis_index(p: int, pmin: int, pmax: int) -> int:
    """Colour-map index of pixel ``p`` of an image with range ``pmin..pmax`` (0 if constant)."""
    d = pmax - pmin
    if d <= 0:
        return 0
    k = (256 * (p - pmin)) // d
    return k if k < 255 else 255


@njit(cache=True)
def prepare_image(img, lut, out):
    """Optional LUT, then the exact area resize: u8 (28, 28) -> int64 ``out`` (27, 27).

    ``lut`` is :data:`VIRIDIS_L` (viridis mode) or an empty array (raw pixels).
    """
    g = np.empty((IN_SIZE, IN_SIZE), np.int64)
    if lut.shape[0] > 0:
        pmin = 255
        pmax = 0
        for r in range(IN_SIZE):
            for c in range(IN_SIZE):
                p = np.int64(img[r, c])
                pmin = min(pmin, p)
                pmax = max(pmax, p)
        # Per-image grey table for the values pmin..pmax (at most 256 divisions, not 784).
        grey = np.empty(256, np.int64)
        for p in range(pmin, pmax + 1):
            grey[p] = lut[viridis_index(p, pmin, pmax)]
        for r in range(IN_SIZE):
            for c in range(IN_SIZE):
                g[r, c] = grey[img[r, c]]
    else:
        for r in range(IN_SIZE):
            for c in range(IN_SIZE):
                g[r, c] = img[r, c]
    # Separable: columns first (t = g K^T), then rows; K[j][j] = 27 - j, K[j][j+1] = j + 1.
    t = np.empty((IN_SIZE, OUT_SIZE), np.int64)
    for r in range(IN_SIZE):
        row = g[r]
        for j in range(OUT_SIZE):
            t[r, j] = (OUT_SIZE - j) * row[j] + (j + 1) * row[j + 1]
    half = _AREA // 2
    for i in range(OUT_SIZE):
        t0 = t[i]
        t1 = t[i + 1]
        o = out[i]
        for j in range(OUT_SIZE):
            o[j] = ((OUT_SIZE - i) * t0[j] + (i + 1) * t1[j] + half) // _AREA
