"""How often the integer encoder reproduces the float reference, and why it differs.

The integer model quantizes the DoG kernel to ``round_half_up(k * 2**F)``, so its response
``R / 2**F`` differs from the float response ``x`` by at most

    ``E = 255 * sum_ab |k_fixed[a, b] / 2**F - k[a, b]|``

(pixels are at most 255). A differing image is *explained* by this quantization when

* every pixel whose spike/no-spike decision differs has ``|x - threshold| <= E`` (plus the
  threshold's own rounding, ``2**-(F+1)``), and
* in a channel with the same spikes, every pair of pixels that the two models order differently
  has float keys closer than the relative gap the error bound allows (see :func:`_gap_bound`).

Anything else is a bug, so ``unexplained_images`` must be 0. Separately, an image is a float
*near-tie* (the brief's definition) when two float keys on either side of a bin boundary are
within ``key_rtol`` (relative) or a masked DoG value lies within ``value_atol`` of the threshold:
there the float reference itself is fragile.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .dog import dog_kernel, dog_kernel_fixed
from .encoding import _CONTRAST_EPS, _encoder_format, encode_float, encode_int
from .encoding_numpy import encoder_stages_numpy
from .formats import EncoderFormat, NumberFormats
from .options import EncoderOptions

__all__ = ["encoder_agreement", "dog_error_bound"]

_ROUND_ERR = 5e-6  # the float model's round(decimals=5)
_SLACK = 1e-9  # float arithmetic in the float model


def dog_error_bound(frac_bits: int, pixel_max: int = 255) -> float:
    """``E``: bound on ``|R / 2**F - x|`` over all images."""
    err = dog_kernel_fixed(frac_bits) / float(1 << frac_bits) - dog_kernel()
    return float(pixel_max * np.abs(err).sum())


def _gap_bound(e: float, threshold: float, local_contrast: bool) -> float:
    """Largest relative gap ``(K_p - K_q) / K_p`` between float keys that the integer model can
    invert. Every value is at least ``threshold``, so the numerator moves by at most
    ``a = (E + 5e-6) / threshold`` (relative) and, with local contrast, the box sum by at most
    ``b = (E + 5e-6 + 1e-4) / threshold``; an integer key lies in ``K_f * [lo, hi]``."""
    a = (e + _ROUND_ERR) / threshold
    b = (e + _ROUND_ERR + _CONTRAST_EPS) / threshold if local_contrast else 0.0
    if a >= 1 or b >= 1:
        return 1.0  # the bound says nothing: every order change is possible
    lo, hi = (1 - a) / (1 + b), (1 + a) / (1 - b)
    return min(1.0, 1 - lo / hi + _SLACK)


def _precedes(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``[q, p]``: candidate q is ranked before p (key descending, then lower index)."""
    lhs = num[:, None] * den[None, :]
    rhs = num[None, :] * den[:, None]
    q = np.arange(num.shape[0])
    return (lhs > rhs) | ((lhs == rhs) & (q[:, None] < q[None, :]))


def _near_ties(st: dict[str, np.ndarray], threshold: float, border: int,
               key_rtol: float, value_atol: float) -> np.ndarray:
    """Per image: does the float encoding sit on a near-tie?"""
    n_img = st["latency"].shape[0]
    flags = np.zeros(n_img, bool)
    inner = st["response"][:, border:27 - border, border:27 - border]
    flags |= (np.abs(np.abs(inner) - threshold) <= value_atol).any(axis=(1, 2))
    keys = (st["num"] / st["den"]).reshape(n_img, 2, -1)
    lat = st["latency"].reshape(n_img, 2, -1)
    for i in np.flatnonzero(~flags):
        for ch in range(2):
            idx = np.flatnonzero(lat[i, ch] >= 0)
            if idx.size < 2:
                continue
            k = keys[i, ch, idx]
            order = np.lexsort((idx, -k))
            k, b = k[order], lat[i, ch, idx][order]
            close = (k[:-1] - k[1:]) <= key_rtol * k[:-1]
            if np.any(close & (b[:-1] != b[1:])):
                flags[i] = True
                break
    return flags


def encoder_agreement(images: np.ndarray, enc_opts: EncoderOptions,
                      enc_fmt: EncoderFormat | NumberFormats, *, key_rtol: float = 1e-9,
                      value_atol: float = 1e-6, chunk: int = 500) -> dict[str, Any]:
    """Compare :func:`encode_int` with :func:`encode_float` on ``images`` (uint8 (N, 28, 28)).

    Returns a JSON-ready dict: ``images``; ``identical_images``/``identical_fraction`` (all
    2x27x27 latencies equal); ``pixel_agreement`` (fraction of equal pixel-channels);
    ``spike_set_identical_fraction`` (same spiking pixels, bins ignored); ``near_tie_images``
    and ``identical_fraction_excluding_near_tie`` (float near-ties as defined in the module
    docstring); ``differing_images`` split into ``differing_threshold`` (some channel spikes at
    other pixels) and ``differing_order_only``; ``unexplained_images`` (must be 0);
    ``dog_error_bound`` ``E``, ``key_gap_bound``; ``max_threshold_margin`` (largest
    ``|x - threshold|`` of a pixel whose decision differs) and ``max_misorder_gap`` (largest
    relative float-key gap of a pair ordered differently).
    """
    enc_fmt = _encoder_format(enc_fmt)
    f_bits = enc_fmt.dog_frac_bits
    lat_f = encode_float(images, enc_opts)
    lat_i = encode_int(images, enc_opts, enc_fmt)
    n = lat_f.shape[0]
    differs = (lat_f != lat_i).any(axis=(1, 2, 3))
    thr = float(enc_opts.dog_threshold)
    e = dog_error_bound(f_bits)
    margin_bound = e + 2.0 ** -(f_bits + 1) + _SLACK
    gap_bound = _gap_bound(e, thr, enc_opts.local_contrast)

    near_tie = np.zeros(n, bool)
    n_threshold = n_order = n_unexplained = 0
    max_margin = max_gap = 0.0
    for lo in range(0, n, chunk):
        sl = slice(lo, min(n, lo + chunk))
        st_f = encoder_stages_numpy(images[sl], enc_opts, None)
        near_tie[sl] = _near_ties(st_f, thr, enc_opts.border, key_rtol, value_atol)
        bad = np.flatnonzero(differs[sl])
        if bad.size == 0:
            continue
        st_i = encoder_stages_numpy(images[sl][bad], enc_opts, enc_fmt)
        for j, i in enumerate(bad):
            threshold_cause = False
            explained = True
            for ch in range(2):
                sf = st_f["values"][i, ch] > 0
                si = st_i["values"][j, ch] > 0
                if (sf != si).any():
                    threshold_cause = True
                    x = (1 - 2 * ch) * st_f["response"][i][sf != si]
                    m = float(np.abs(x - thr).max())
                    max_margin = max(max_margin, m)
                    explained &= m <= margin_bound
                elif (st_f["latency"][i, ch] != st_i["latency"][j, ch]).any():
                    idx = sf.ravel()
                    kf = st_f["num"][i, ch].ravel()[idx] / st_f["den"][i, ch].ravel()[idx]
                    bf = _precedes(kf, np.ones_like(kf))
                    bi = _precedes(st_i["num"][j, ch].ravel()[idx], st_i["den"][j, ch].ravel()[idx])
                    q, p = np.nonzero(bf & bi.T)  # float: q before p; integer: p before q
                    gap = float(((kf[q] - kf[p]) / kf[q]).max()) if q.size else 0.0
                    max_gap = max(max_gap, gap)
                    explained &= gap <= gap_bound
            n_threshold += threshold_cause
            n_order += not threshold_cause
            n_unexplained += not explained

    identical = int(n - differs.sum())
    clean = ~near_tie
    return {
        "images": int(n),
        "dog_frac_bits": int(f_bits),
        "identical_images": identical,
        "identical_fraction": identical / n if n else 1.0,
        "pixel_agreement": float((lat_f == lat_i).mean()) if n else 1.0,
        "spike_set_identical_fraction":
            float(1 - ((lat_f >= 0) != (lat_i >= 0)).any(axis=(1, 2, 3)).mean()) if n else 1.0,
        "near_tie_images": int(near_tie.sum()),
        "identical_fraction_excluding_near_tie":
            float((~differs[clean]).mean()) if clean.any() else 1.0,
        "differing_images": int(differs.sum()),
        "differing_threshold": int(n_threshold),
        "differing_order_only": int(n_order),
        "unexplained_images": int(n_unexplained),
        "dog_error_bound": e,
        "key_gap_bound": gap_bound,
        "max_threshold_margin": max_margin,
        "max_misorder_gap": max_gap,
        "key_rtol": key_rtol,
        "value_atol": value_atol,
    }
