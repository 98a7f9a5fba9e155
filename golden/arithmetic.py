"""How the numbers of a conv layer work: float (the reference) or integer (the golden model).

The conv dynamics (integration, threshold, lateral inhibition, STDP competition) are one
numba kernel for both models (:mod:`spykehw.golden.conv`, :mod:`spykehw.golden.conv_training`);
what differs is the weight dtype, the
threshold and the two weight updates, which live here as small njit functions with the same
signature. The kernel calls :func:`stdp_update` and :func:`homeostasis_decay`, which numba
resolves at compile time by the weights' dtype (float -> reference, integer -> golden model),
so one source compiles to both models and the compiled kernels can be cached on disk.

Signatures (``W`` is the layer's weights in kernel layout ``(C, K, K, M)`` with the ``kc`` axis
reversed, see :func:`spykehw.golden.conv.to_kernel_layout`; logical weight ``(ch, kr, kc)`` of map
``m`` is ``W[ch, kr, K-1-kc, m]``):

``stdp(W, m, r, c, pre, level, prm, st)``
    update the 5x5xC patch of map ``m`` whose top-left input is ``(r, c)``: LTP where
    ``pre[ch, r+kr, c+kc]`` (the input spiked at or before this step of the image), LTD
    elsewhere, weights visited in ``(ch, kr, kc)`` order.
``decay(W, m, prm, st)``
    the homeostasis decay of all weights of map ``m``, same order.

``level`` counts the doublings of the learning-rate schedule so far; ``prm`` is a float64
parameter vector and ``st`` an int64 state vector (``st[0]`` is the LFSR state of stochastic
rounding).

Float (spec 4.5): ``dw = +A+ w(1-w)`` or ``-A- w(1-w)`` in float64 from the float32 weight, stored
back as float32, no clipping; ``A+ = min(a_plus * 2**level, cap)``, ``A- = 0.75 A+``.
Integer: see :mod:`spykehw.golden.formats` ("STDP").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, types
from numba.extending import overload

from .fixed import ROUNDING_CODES, shr_round
from .formats import NumberFormats
from .options import ConvOptions

__all__ = ["Arithmetic", "float_arithmetic", "int_arithmetic", "stdp_update", "homeostasis_decay"]


# ----- float (reference) -------------------------------------------------------------------
# prm = [a_plus, cap (inf = none), homeostasis_coeff]

@njit(cache=True)
def _float_rate(level, prm):
    a = prm[0] * (2.0 ** level)
    return a if a < prm[1] else prm[1]


@njit(cache=True)
def _stdp_float(W, m, r, c, pre, level, prm, st):
    a_plus = _float_rate(level, prm)
    a_minus = 0.75 * a_plus
    C, K = W.shape[0], W.shape[1]
    for ch in range(C):
        for kr in range(K):
            for kc in range(K):
                w = np.float64(W[ch, kr, K - 1 - kc, m])
                if pre[ch, r + kr, c + kc]:
                    w = w + a_plus * w * (1.0 - w)
                else:
                    w = w - a_minus * w * (1.0 - w)
                W[ch, kr, K - 1 - kc, m] = w


@njit(cache=True)
def _decay_float(W, m, prm, st):
    coeff = prm[2]
    C, K = W.shape[0], W.shape[1]
    for ch in range(C):
        for kr in range(K):
            for kc in range(K):
                w = np.float64(W[ch, kr, K - 1 - kc, m])
                W[ch, kr, K - 1 - kc, m] = w - coeff * w * (1.0 - w)


# ----- integer (golden) --------------------------------------------------------------------
# prm = [weight_bits, stdp_shift, stdp_shift_min, rounding code, homeostasis_mult, homeostasis_shift]

@njit(cache=True)
def _stdp_int(W, m, r, c, pre, level, prm, st):
    bits = np.int64(prm[0])
    s = np.int64(prm[1]) - level
    if s < np.int64(prm[2]):
        s = np.int64(prm[2])
    mode = np.int64(prm[3])
    wmax = (np.int64(1) << bits) - 1
    one = np.int64(1) << bits
    C, K = W.shape[0], W.shape[1]
    for ch in range(C):
        for kr in range(K):
            for kc in range(K):
                w = np.int64(W[ch, kr, K - 1 - kc, m])
                p = w * (one - w)
                if pre[ch, r + kr, c + kc]:
                    d, st[0] = shr_round(p, bits + s, mode, st[0])
                    w = w + d
                else:
                    d, st[0] = shr_round(3 * p, bits + s + 2, mode, st[0])
                    w = w - d
                if w > wmax:
                    w = wmax
                elif w < 0:
                    w = 0
                W[ch, kr, K - 1 - kc, m] = w


@njit(cache=True)
def _decay_int(W, m, prm, st):
    bits = np.int64(prm[0])
    mode = np.int64(prm[3])
    mult = np.int64(prm[4])
    hshift = np.int64(prm[5])
    wmax = (np.int64(1) << bits) - 1
    one = np.int64(1) << bits
    C, K = W.shape[0], W.shape[1]
    for ch in range(C):
        for kr in range(K):
            for kc in range(K):
                w = np.int64(W[ch, kr, K - 1 - kc, m])
                d, st[0] = shr_round(mult * (w * (one - w)), bits + hshift, mode, st[0])
                w = w - d
                if w < 0:
                    w = 0
                elif w > wmax:
                    w = wmax
                W[ch, kr, K - 1 - kc, m] = w


def stdp_update(W, m, r, c, pre, level, prm, st):
    """STDP of one winner (see module docstring); numba picks the float or integer rule."""
    raise NotImplementedError("called from numba-compiled code only")


def homeostasis_decay(W, m, prm, st):
    """Homeostasis decay of one map (see module docstring); float or integer by dtype."""
    raise NotImplementedError("called from numba-compiled code only")


@overload(stdp_update)
def _stdp_update_overload(W, m, r, c, pre, level, prm, st):
    return (_stdp_float if isinstance(W.dtype, types.Float) else _stdp_int).py_func


@overload(homeostasis_decay)
def _homeostasis_decay_overload(W, m, prm, st):
    return (_decay_float if isinstance(W.dtype, types.Float) else _decay_int).py_func


@dataclass(frozen=True, eq=False)
class Arithmetic:
    """Everything the conv kernel needs to know about a layer's numbers.

    ``threshold`` is in potential units; ``weight_dtype`` is the dtype of the weights as the
    kernel holds them (float32 like the reference, or the potential's integer type: an integer
    weight always fits it) and ``potential_dtype`` that of the potentials; ``prm``/``state0`` feed
    the update functions; ``to_unit`` maps weights to [0, 1).
    """

    kind: str
    threshold: float | int
    weight_dtype: type
    potential_dtype: type
    prm: np.ndarray
    state0: np.ndarray
    weight_scale: float

    def to_unit(self, w: np.ndarray) -> np.ndarray:
        """Weights as float64 fractions of 1 (for convergence statistics and plots)."""
        return np.asarray(w, dtype=np.float64) / self.weight_scale

    def new_state(self) -> np.ndarray:
        return self.state0.copy()


def float_arithmetic(opts: ConvOptions) -> Arithmetic:
    cap = np.inf if opts.rate_cap is None else opts.rate_cap
    prm = np.array([opts.a_plus, cap, opts.homeostasis_coeff], dtype=np.float64)
    # float64 potentials: sums of float32 weights are then exact in practice, so the model does
    # not depend on summation order. With float32 (the reference's TF dtype) trained weights
    # near 1.0 leave maps within an ulp of each other and the winner depends on the order.
    return Arithmetic("float", float(opts.threshold), np.float32, np.float64, prm, np.zeros(1, np.int64), 1.0)


def int_arithmetic(opts: ConvOptions, fmt: NumberFormats, *, max_spikes_per_input: int = 1) -> Arithmetic:
    st = fmt.stdp
    prm = np.array([fmt.conv.weight_bits, st.stdp_shift, st.stdp_shift_min,
                    ROUNDING_CODES[st.rounding], st.homeostasis_mult, st.homeostasis_shift],
                   dtype=np.float64)
    bits = fmt.potential_bits(opts.in_channels, opts.kernel, max_spikes_per_input)
    # Potentials fit 31 bits for Conv1 at up to 24-bit weights; int32 halves memory traffic.
    pot = np.int32 if bits <= 31 else np.int64
    return Arithmetic("int", fmt.threshold_int(opts.threshold), pot, pot, prm, np.array([st.lfsr_seed], dtype=np.int64), float(1 << fmt.conv.weight_bits))
