"""Latency encoder L1: u8 28x28 image -> int8 (2, 27, 27) time bins (spec section 2).

One pipeline serves both models; numba compiles it once for float64 (the float reference) and
once for int64 (the bit-accurate integer model), chosen by the dtype of the DoG kernel:

1. optional viridis grey LUT, then the exact 28->27 area resize (:mod:`.image`; exact, shared).
   A constant image becomes a constant grey image and produces no spikes;
2. DoG correlation 7x7, same size, border reflect-101 (index -1 -> 1, 27 -> 25). Float: float64
   image and kernel (the reference computes in float32 through OpenCV; our reference is
   float64). Integer: the exact int64 sum ``R`` with the kernel ``round_half_up(k * 2**F)``.
   ON = R, OFF = -R;
3. border mask: only rows/cols ``border .. 26 - border`` can spike (the response outside is
   never computed);
4. threshold: keep ``x >= threshold`` (float: ``dog_threshold``; integer:
   ``round_half_up(dog_threshold * 2**F)``), else 0. The float model then rounds to 5 decimals
   (``rint(x * 1e5) / 1e5``, exactly what the reference's ``round(decimals=5)`` computes). A
   zero value never spikes (the reference's latency ``1/x`` is infinite);
5. local contrast (option): ``S`` = 17x17 box sum (reflect-101) of the thresholded map of the
   same channel. Float key ``x / ((S + 1e-4) / 289)``; integer key the exact ratio ``R / S``.
   Without local contrast the key is ``x`` (or ``R``);
6. rank the survivors of each channel by key descending, ties to the lower flat index
   ``r * 27 + c``, and bin them into ``bins`` equal-count bins (:mod:`.ranking`).

Output latencies: ``-1`` = no spike, else the bin ``0..bins-1``. Channel 0 = ON, 1 = OFF.

Float arithmetic, defined so that every implementation can reproduce it bit for bit
    Each DoG value starts at 0 and adds the taps in row-major kernel order (numba does not
    contract to FMA without ``fastmath``). The float box sum is exact: the rounded values are
    multiples of 1e-5, so they are summed as integers in units of 1e-5 and ``S`` is that sum
    divided by 1e5 (the correctly rounded sum; the reference's float32 box filter is within
    about 1e-7 relative of it). The numpy slow path (:mod:`.encoding_numpy`) agrees bit for bit.

Calling from numba
    The per-image kernels take plain arrays and scalars, so other ``njit`` code (for example a
    ``prange`` loop over images) can call them::

        args = int_encoder_args(opts, fmt)   # (lut, kernel, threshold, border, lc, bins)
        encode_image_int(img, *args, out)    # inside njit: pass the six values through

    :func:`encode_image_float` and :func:`encode_image_int` take, in this order:

    - ``img``: uint8 (28, 28);
    - ``lut``: uint8 (256,) :data:`~.image.VIRIDIS_L` (image_mode 'viridis') or uint8 (0,)
      ('raw');
    - ``kernel``: float64 (7, 7) :func:`~.dog.dog_kernel` / int64 (7, 7)
      :func:`~.dog.dog_kernel_fixed`;
    - ``threshold``: float ``dog_threshold`` / int ``round_half_up(dog_threshold * 2**F)``;
    - ``border``: int 0..12; ``local_contrast``: bool; ``bins``: int 1..127;
    - ``out``: int8 (2, 27, 27), fully overwritten.

    Both run the same pipeline; the kernel's dtype, not the name, selects the model.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from .dog import dog_kernel, dog_kernel_fixed
from .errors import SpykehwError
from .fixed import round_half_up
from .formats import EncoderFormat, NumberFormats
from .image import IN_SIZE, OUT_SIZE, VIRIDIS_L, prepare_image
from .options import EncoderOptions
from .ranking import rank_bins

__all__ = [
    "BOX_SIZE",
    "EncodingError",
    "reflect101",
    "dog_correlate",
    "box_sum",
    "encode_image_float",
    "encode_image_int",
    "float_encoder_args",
    "int_encoder_args",
    "encode_float",
    "encode_int",
    "encode",
]

BOX_SIZE = 17
"""Side of the local-contrast box (its area 289 is the reference's mean divisor)."""
_BOX_AREA = BOX_SIZE * BOX_SIZE
_CONTRAST_EPS = 1e-4  # the reference's ``boxsum + 1e-4`` (avoids 0/0; only matters at near-ties)
_ROUND_SCALE = 1e5  # the reference's ``round(decimals=5)``


class EncodingError(SpykehwError, ValueError):
    """Bad encoder input (array shape or dtype, number format)."""


# --- the float-only quirks, chosen by dtype (numba compiles the matching implementation) -----

def _round5(x):
    return np.rint(x * _ROUND_SCALE) / _ROUND_SCALE  # np.round(x, 5) computes exactly this


def _units5(x):
    return np.int64(np.rint(x * _ROUND_SCALE))  # exact: x is a multiple of 1e-5 below 2**53


def _float_key(x, s):
    return x / ((s / _ROUND_SCALE + _CONTRAST_EPS) / _BOX_AREA), 1.0


def _same(x):
    return x


def _int_key(x, s):
    return x, s


def _is_float(x) -> bool:
    return isinstance(x, (float, np.floating, types.Float))


def _quirk_round(x):
    """Float model: the reference's ``round(decimals=5)``; integer model: ``x`` unchanged."""
    return _round5(x) if _is_float(x) else x


def _box_units(x):
    """A thresholded value as an exact integer for the box sum: float ``rint(x * 1e5)`` (the
    value is a multiple of 1e-5 after :func:`_quirk_round`), integer ``x`` itself."""
    return _units5(x) if _is_float(x) else x


def _contrast_key(x, s):
    """Local-contrast key ``(num, den)`` from the box sum ``s`` (in :func:`_box_units`):
    float ``(x / ((s / 1e5 + 1e-4) / 289), 1.0)``, integer ``(x, s)`` (the exact ratio)."""
    return _float_key(x, s) if _is_float(x) else _int_key(x, s)


@overload(_quirk_round)
def _quirk_round_nb(x):
    return _round5 if _is_float(x) else _same


@overload(_box_units)
def _box_units_nb(x):
    return _units5 if _is_float(x) else _same


@overload(_contrast_key)
def _contrast_key_nb(x, s):
    return _float_key if _is_float(x) else _int_key


# --- shared stages ----------------------------------------------------------------------------

@njit(cache=True)
def reflect101(i: int, n: int) -> int:
    """BORDER_REFLECT_101 index (-1 -> 1, n -> n - 2) for offsets smaller than ``n``."""
    if i < 0:
        return -i
    if i >= n:
        return 2 * (n - 1) - i
    return i


@njit(cache=True)
def dog_correlate(g, kernel, lo, hi, out):
    """``out[i, j] = sum_ab kernel[a, b] * g[refl(i + a - h), refl(j + b - h)]`` (correlation,
    reflect-101, ``h`` the kernel radius) for ``lo <= i, j < hi``; other entries of ``out`` are
    left untouched. ``out`` has the kernel's dtype. Each sum starts at 0 and adds the taps in
    row-major kernel order (this fixes the float result)."""
    if hi <= lo:
        return
    n = g.shape[0]
    h = kernel.shape[0] // 2
    m = hi - lo
    w = m + 2 * h
    # The window plus its reflected halo, and one spare zero row: the flat runs below read a
    # few elements past the last row.
    padded = np.zeros((w + 1, w), kernel.dtype)
    for r in range(w):
        src_row = g[reflect101(lo - h + r, n)]
        for c in range(w):
            padded[r, c] = src_row[reflect101(lo - h + c, n)]
    flat = padded.reshape(-1)
    # acc[(i - lo) * w + (j - lo)] holds out[i, j]; the last 2h columns of each row are junk.
    # One long run per tap (not one short run per row and tap) vectorises with little overhead.
    length = m * w
    acc = np.zeros(length, kernel.dtype)
    for a in range(kernel.shape[0]):
        for b in range(kernel.shape[1]):
            k = kernel[a, b]
            src = flat[a * w + b:a * w + b + length]
            for t in range(length):
                acc[t] += k * src[t]
    for i in range(m):
        for j in range(m):
            out[lo + i, lo + j] = acc[i * w + j]


@njit(cache=True)
def box_sum(x, size, lo, hi, out):
    """``size`` x ``size`` box sum (``size`` odd, ``size // 2 < n``) of the integer map ``x``
    with reflect-101 borders, for ``lo <= i, j < hi``; exact (running sums in int64)."""
    if hi <= lo:
        return
    n = x.shape[0]
    h = size // 2
    col = np.zeros(n, np.int64)  # col[c] = sum of x[refl(i + a), c] for |a| <= h
    for a in range(-h, h + 1):
        row = x[reflect101(lo + a, n)]
        for c in range(n):
            col[c] += row[c]
    for i in range(lo, hi):
        if i > lo:
            enter = x[reflect101(i + h, n)]
            leave = x[reflect101(i - h - 1, n)]
            for c in range(n):
                col[c] += enter[c] - leave[c]
        s = np.int64(0)
        for b in range(-h, h + 1):
            s += col[reflect101(lo + b, n)]
        out[i, lo] = s
        for j in range(lo + 1, hi):
            s += col[reflect101(j + h, n)] - col[reflect101(j - h - 1, n)]
            out[i, j] = s


@njit(cache=True)
def _encode_image(img, lut, kernel, threshold, border, local_contrast, bins, out):
    """The one encoder pipeline; the kernel dtype (float64 or int64) selects the model."""
    n = OUT_SIZE
    lo = border
    hi = n - border
    g = np.empty((n, n), np.int64)
    prepare_image(img, lut, g)
    resp = np.zeros((n, n), kernel.dtype)
    dog_correlate(g, kernel, lo, hi, resp)

    # Thresholded ON/OFF maps; ``units`` holds them as exact integers for the box sums.
    maps = np.zeros((2, n, n), kernel.dtype)
    units = np.zeros((2, n, n), np.int64)
    for i in range(lo, hi):
        for j in range(lo, hi):
            v = resp[i, j]
            if v >= threshold:
                maps[0, i, j] = _quirk_round(v)
                units[0, i, j] = _box_units(maps[0, i, j])
            if -v >= threshold:
                maps[1, i, j] = _quirk_round(-v)
                units[1, i, j] = _box_units(maps[1, i, j])

    box = np.zeros((n, n), np.int64)
    num = np.empty(n * n, kernel.dtype)
    den = np.empty(n * n, kernel.dtype)
    pos = np.empty(n * n, np.int64)
    bin_of = np.empty(n * n, np.int64)
    out[:, :, :] = -1
    for ch in range(2):
        x = maps[ch]
        if local_contrast:
            box_sum(units[ch], BOX_SIZE, lo, hi, box)
        cnt = 0
        for i in range(lo, hi):  # row-major: candidates in ascending flat index
            for j in range(lo, hi):
                if x[i, j] != 0:
                    if local_contrast:
                        num[cnt], den[cnt] = _contrast_key(x[i, j], box[i, j])
                    else:
                        num[cnt] = x[i, j]
                        den[cnt] = 1
                    pos[cnt] = i * n + j
                    cnt += 1
        rank_bins(num, den, cnt, bins, bin_of)
        for p in range(cnt):
            out[ch, pos[p] // n, pos[p] % n] = bin_of[p]


@njit(cache=True)
def encode_image_float(img, lut, kernel, threshold, border, local_contrast, bins, out):
    """Float reference for one image (``kernel`` float64, ``threshold`` float); see module doc."""
    _encode_image(img, lut, kernel, threshold, border, local_contrast, bins, out)


@njit(cache=True)
def encode_image_int(img, lut, kernel, threshold, border, local_contrast, bins, out):
    """Integer golden model for one image (``kernel`` int64, ``threshold`` int); see module doc."""
    _encode_image(img, lut, kernel, threshold, border, local_contrast, bins, out)


@njit(cache=True, parallel=True)
def _encode_batch(images, lut, kernel, threshold, border, local_contrast, bins, out):
    for k in prange(images.shape[0]):
        _encode_image(images[k], lut, kernel, threshold, border, local_contrast, bins, out[k])


# --- Python helpers ---------------------------------------------------------------------------

def _lut(opts: EncoderOptions) -> np.ndarray:
    return VIRIDIS_L.copy() if opts.image_mode == "viridis" else np.zeros(0, np.uint8)


def float_encoder_args(opts: EncoderOptions) -> tuple:
    """``(lut, kernel f64, threshold float, border, local_contrast, bins)``: the float kernels'
    arguments between ``img`` and ``out``."""
    return (_lut(opts), np.array(dog_kernel(), dtype=np.float64), float(opts.dog_threshold),
            int(opts.border), bool(opts.local_contrast), int(opts.bins))


def _encoder_format(fmt: EncoderFormat | NumberFormats) -> EncoderFormat:
    if isinstance(fmt, NumberFormats):
        return fmt.encoder
    if isinstance(fmt, EncoderFormat):
        # NumberFormats validates that the exact ranking products fit int64.
        return NumberFormats(encoder=fmt).encoder
    raise EncodingError(f"encoder format: expected EncoderFormat or NumberFormats, "
                        f"found {type(fmt).__name__}")


def int_encoder_args(opts: EncoderOptions, fmt: EncoderFormat | NumberFormats) -> tuple:
    """``(lut, kernel i64, threshold int, border, local_contrast, bins)``: the integer kernels'
    arguments between ``img`` and ``out``.

    The threshold is ``round_half_up(dog_threshold * 2**dog_frac_bits)``. ``fmt`` may be the
    whole :class:`NumberFormats` or its :class:`EncoderFormat` (validated the same way).
    """
    f = _encoder_format(fmt).dog_frac_bits
    return (_lut(opts), np.array(dog_kernel_fixed(f), dtype=np.int64),
            int(round_half_up(opts.dog_threshold * (1 << f))),
            int(opts.border), bool(opts.local_contrast), int(opts.bins))


def _check_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (IN_SIZE, IN_SIZE) or images.dtype != np.uint8:
        raise EncodingError(f"images: expected uint8 (N, {IN_SIZE}, {IN_SIZE}), "
                            f"found {images.dtype} {images.shape}")
    return np.ascontiguousarray(images)


def _run(images: np.ndarray, args: tuple) -> np.ndarray:
    images = _check_images(images)
    out = np.empty((images.shape[0], 2, OUT_SIZE, OUT_SIZE), np.int8)
    if images.shape[0]:
        _encode_batch(images, *args, out)
    return out


def encode_float(images: np.ndarray, opts: EncoderOptions) -> np.ndarray:
    """Float reference: uint8 (N, 28, 28) -> int8 latencies (N, 2, 27, 27), parallel over images."""
    return _run(images, float_encoder_args(opts))


def encode_int(images: np.ndarray, opts: EncoderOptions,
               fmt: EncoderFormat | NumberFormats) -> np.ndarray:
    """Integer golden model: uint8 (N, 28, 28) -> int8 latencies (N, 2, 27, 27), parallel."""
    return _run(images, int_encoder_args(opts, fmt))


def encode(images: np.ndarray, opts: EncoderOptions,
           fmt: EncoderFormat | NumberFormats | None = None) -> np.ndarray:
    """:func:`encode_float` if ``fmt`` is None, else :func:`encode_int`."""
    return encode_float(images, opts) if fmt is None else encode_int(images, opts, fmt)

