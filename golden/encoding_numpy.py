"""Slow, vectorised-numpy encoder: an independent cross-check of :mod:`.encoding`.

It implements the same specification (see :mod:`.encoding`) without sharing any code with the
numba kernels: the LUT index and the resize come from the interval-overlap matrix and a matrix
product, the padding from ``np.pad(mode="reflect")`` (numpy's "reflect" is OpenCV's
BORDER_REFLECT_101), the box sum from an integral image, the rounding quirk from ``np.round``
and the ranking from counting, for every candidate, the candidates that precede it (exact
cross-multiplication, ties to the lower flat index), with bins from ``ceil(bins * k / n) - 1``.

Only the float DoG must add its taps in the same order as the numba kernel (row-major kernel
order, starting from 0): float addition is not associative and the two models must agree bit for
bit. Everything else is exact, so its order does not matter.

:func:`encoder_stages_numpy` also returns the intermediate maps, which the agreement study
(:mod:`.encoding_agreement`) uses to explain where the float and integer models differ.
"""

from __future__ import annotations

import numpy as np

from .dog import dog_kernel, dog_kernel_fixed
from .encoding import BOX_SIZE, EncodingError, _encoder_format
from .fixed import round_half_up
from .formats import EncoderFormat, NumberFormats
from .image import IN_SIZE, OUT_SIZE, VIRIDIS_L, resize_weights
from .options import EncoderOptions

__all__ = ["encoder_stages_numpy", "encode_numpy", "rank_counts_numpy"]


def _grey(images: np.ndarray, image_mode: str) -> np.ndarray:
    g = images.astype(np.int64)
    if image_mode == "raw":
        return g
    pmin = g.min(axis=(1, 2), keepdims=True)
    d = g.max(axis=(1, 2), keepdims=True) - pmin
    index = np.where(d > 0, np.minimum((256 * (g - pmin)) // np.maximum(d, 1), 255), 0)
    return VIRIDIS_L[index].astype(np.int64)


def _resize(g: np.ndarray) -> np.ndarray:
    k = resize_weights()
    total = np.einsum("ir,nrc,jc->nij", k, g, k)  # int64, exact
    return (total + 392) // 784


def _dog(small: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    h = kernel.shape[0] // 2
    p = np.pad(small, ((0, 0), (h, h), (h, h)), mode="reflect").astype(kernel.dtype)
    n = small.shape[1]
    acc = np.zeros(small.shape, kernel.dtype)
    for a in range(kernel.shape[0]):  # row-major taps: the float model's summation order
        for b in range(kernel.shape[1]):
            acc = acc + kernel[a, b] * p[:, a:a + n, b:b + n]
    return acc


def _box(units: np.ndarray) -> np.ndarray:
    """17x17 reflect-101 box sums of int64 maps (..., 27, 27) via an integral image."""
    h = BOX_SIZE // 2
    pad = [(0, 0)] * (units.ndim - 2) + [(h, h), (h, h)]
    p = np.pad(units, pad, mode="reflect")
    ii = np.zeros(p.shape[:-2] + (p.shape[-2] + 1, p.shape[-1] + 1), np.int64)
    ii[..., 1:, 1:] = p.cumsum(axis=-2).cumsum(axis=-1)
    n = units.shape[-1]
    s = BOX_SIZE
    return (ii[..., s:s + n, s:s + n] - ii[..., :n, s:s + n]
            - ii[..., s:s + n, :n] + ii[..., :n, :n])


def rank_counts_numpy(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """1-based rank of each candidate (given in ascending flat index order): one plus the number
    of candidates with a larger key ``num / den``, or an equal key and a lower index."""
    if np.issubdtype(num.dtype, np.integer):
        # Python integers: the products exceed 64 bits at high DoG precision.
        num, den = num.astype(object), den.astype(object)
    lhs = num[:, None] * den[None, :]  # [q, p] = num_q * den_p
    rhs = num[None, :] * den[:, None]  # [q, p] = num_p * den_q
    q = np.arange(num.shape[0])
    precedes = (lhs > rhs) | ((lhs == rhs) & (q[:, None] < q[None, :]))
    return 1 + precedes.sum(axis=0)


def encoder_stages_numpy(images: np.ndarray, opts: EncoderOptions,
                         fmt: EncoderFormat | NumberFormats | None = None) -> dict[str, np.ndarray]:
    """All intermediate maps of the encoder (float model if ``fmt`` is None).

    Returns a dict of arrays over the N images: ``grey`` (N, 28, 28) after the LUT, ``resized``
    (N, 27, 27), ``response`` (N, 27, 27) the full DoG map (float ``x`` or integer ``R``),
    ``values`` (N, 2, 27, 27) thresholded, masked (and, float, rounded) ON/OFF maps, ``box``
    (N, 2, 27, 27) int64 box sums (float: in units of 1e-5; zeros without local contrast),
    ``num``/``den`` (N, 2, 27, 27) the ranking key of every candidate (0/1 elsewhere), and
    ``latency`` (N, 2, 27, 27) int8.
    """
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (IN_SIZE, IN_SIZE) or images.dtype != np.uint8:
        raise EncodingError(f"images: expected uint8 (N, {IN_SIZE}, {IN_SIZE}), "
                            f"found {images.dtype} {images.shape}")
    if fmt is None:
        kernel = np.asarray(dog_kernel(), dtype=np.float64)
        threshold: float | int = float(opts.dog_threshold)
    else:
        f = _encoder_format(fmt).dog_frac_bits
        kernel = np.asarray(dog_kernel_fixed(f), dtype=np.int64)
        threshold = int(round_half_up(opts.dog_threshold * 2 ** f))
    grey = _grey(images, opts.image_mode)
    small = _resize(grey)
    response = _dog(small, kernel)

    n = OUT_SIZE
    inside = np.zeros((n, n), bool)
    inside[opts.border:n - opts.border, opts.border:n - opts.border] = True
    signed = np.stack([response, -response], axis=1)
    keep = (signed >= threshold) & inside
    values = np.where(keep, signed, 0).astype(kernel.dtype)
    if fmt is None:
        values = np.round(values, 5)
    keep = values > 0  # a zero value has an infinite latency in the reference: never a spike

    if opts.local_contrast:
        units = np.rint(values * 1e5).astype(np.int64) if fmt is None else values
        box = _box(units)
        if fmt is None:
            with np.errstate(divide="ignore", invalid="ignore"):
                num = np.where(keep, values / ((box / 1e5 + 1e-4) / 289), 0.0)
            den = np.ones_like(num)
        else:
            num, den = values, np.where(keep, box, 1)
    else:
        box = np.zeros(values.shape, np.int64)
        num, den = values, np.ones_like(values)

    latency = np.full(values.shape, -1, np.int8)
    flat = (values.shape[0], 2, n * n)
    lat, keep_f, num_f, den_f = (a.reshape(flat) for a in (latency, keep, num, den))
    for i in range(values.shape[0]):
        for ch in range(2):
            idx = np.flatnonzero(keep_f[i, ch])  # ascending flat index r * 27 + c
            if idx.size == 0:
                continue
            k = rank_counts_numpy(num_f[i, ch, idx], den_f[i, ch, idx])
            lat[i, ch, idx] = -((-opts.bins * k) // idx.size) - 1  # ceil(bins * k / n) - 1
    return {"grey": grey, "resized": small, "response": response, "values": values, "box": box,
            "num": num, "den": den, "latency": latency}


def encode_numpy(images: np.ndarray, opts: EncoderOptions,
                 fmt: EncoderFormat | NumberFormats | None = None) -> np.ndarray:
    """Latencies int8 (N, 2, 27, 27) of the float (``fmt`` None) or integer model, slowly."""
    return encoder_stages_numpy(images, opts, fmt)["latency"]
