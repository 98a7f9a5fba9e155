"""The bit-accurate integer classifier: post-training quantization and the add-only forward pass.

This is the definition the RTL must match bit for bit (DESIGN.md contract 2). Formats are
``NumberFormats.classifier`` and ``NumberFormats.softmax`` (see :mod:`spykehw.golden.formats`):

- ``W2q`` ``(F, H)``: signed ``hidden_weight_bits``, ``hidden_weight_frac`` fraction bits;
  ``b2q`` ``(H,)``: signed ``hidden_bias_bits``, same fraction bits.
- ``W3q`` ``(H, C)``: signed ``output_weight_bits``, ``output_weight_frac`` fraction bits;
  ``b3q`` ``(C,)``: signed ``output_bias_bits``, same fraction bits.
- Quantization: ``round_half_up(w * 2**frac)`` with the ``quantize_overflow`` policy
  (:func:`spykehw.golden.fixed.quantize`).

Forward pass (per image, features ``x`` in {0,1}^F), additions only:

1. ``acc2 = b2q + sum of W2q[i] over active inputs i`` (no multiplication by the input bit);
2. hidden bit ``a2[h] = acc2[h] >= 0``;
3. ``acc3 = b3q + sum of W3q[h] over hidden units with a2[h] == 1``;
4. ``logits = acc3 >> output_weight_frac`` (arithmetic shift = floor, the float model's
   ``floor(z3)``);
5. class = argmax of the logits, lowest index on ties; softmax words from
   :func:`spykehw.golden.softmax_int.softmax_int`.

Accumulator widths (derived from the formats, never configured; :class:`IntClassifier`
properties): the worst case of ``acc2`` is all ``F`` inputs active with every weight at its
extreme, ``F * (-2**(wb-1)) + (-2**(bb-1)) <= acc2 <= F * (2**(wb-1)-1) + (2**(bb-1)-1)``
(``wb`` = hidden_weight_bits, ``bb`` = hidden_bias_bits); likewise ``acc3`` with ``H`` hidden
units, ``output_weight_bits`` and ``output_bias_bits``. The accumulator width is the smallest
two's-complement width that holds that range, so it can never overflow. The model itself
accumulates in int64 (asserted to be wide enough).

Only binary hidden layers (``sg1``/``sg2``) have an integer model; ``relu`` is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from .classifier_kernels import add_rows
from .classifier_params import ClassifierError, ClassifierParams, check_binary
from .errors import SpykehwError
from .fixed import accumulator_range, quantize, signed_range, signed_width
from .formats import NumberFormats
from .options import ClassifierOptions
from .softmax_int import softmax_int

__all__ = [
    "QuantizationError",
    "IntClassifier",
    "IntForward",
    "require_binary_hidden",
    "quant_table",
    "quantize_classifier",
    "dequantize",
    "forward_int",
]

_TENSORS = ("W2", "b2", "W3", "b3")


class QuantizationError(SpykehwError, OverflowError):
    """A value does not fit its format under the ``error`` overflow policy, or the model is
    not quantizable (relu hidden layer)."""


def quant_table(fmt: NumberFormats) -> dict[str, tuple[int, int]]:
    """``{tensor: (frac, bits)}`` for W2, b2, W3, b3: the one statement of the classifier formats."""
    c = fmt.classifier
    return {
        "W2": (c.hidden_weight_frac, c.hidden_weight_bits),
        "b2": (c.hidden_weight_frac, c.hidden_bias_bits),
        "W3": (c.output_weight_frac, c.output_weight_bits),
        "b3": (c.output_weight_frac, c.output_bias_bits),
    }


def require_binary_hidden(opts: ClassifierOptions | None) -> None:
    if opts is not None and opts.gradient == "relu":
        raise QuantizationError(
            "classifier.gradient: the integer classifier needs a binary hidden layer "
            "('sg1' or 'sg2'), found 'relu' (its hidden activations are not bits)")


@dataclass(frozen=True)
class IntClassifier:
    """Quantized classifier: int64 arrays holding fixed-point integers, and their formats."""

    W2q: np.ndarray
    b2q: np.ndarray
    W3q: np.ndarray
    b3q: np.ndarray
    formats: NumberFormats

    def __post_init__(self) -> None:
        arrays = dict(W2=self.W2q, b2=self.b2q, W3=self.W3q, b3=self.b3q)
        for name, a in arrays.items():
            if not np.issubdtype(a.dtype, np.integer):
                raise ClassifierError(f"{name}q: expected an integer array, found {a.dtype}")
        f, h = self.W2q.shape
        if self.b2q.shape != (h,) or self.W3q.ndim != 2 or self.W3q.shape[0] != h \
                or self.b3q.shape != (self.W3q.shape[1],):
            raise ClassifierError(
                f"IntClassifier: inconsistent shapes W2q {self.W2q.shape}, b2q {self.b2q.shape}, "
                f"W3q {self.W3q.shape}, b3q {self.b3q.shape}")
        for name, (frac, bits) in quant_table(self.formats).items():
            a = arrays[name]
            lo, hi = signed_range(bits)
            if a.size and (int(a.min()) < lo or int(a.max()) > hi):
                raise QuantizationError(f"{name}q: values {int(a.min())}..{int(a.max())} do not fit "
                                        f"{bits}-bit signed [{lo}, {hi}]")
        if max(self.hidden_acc_bits, self.output_acc_bits) > 63:
            raise QuantizationError("classifier: accumulators wider than 63 bits are not supported")

    @property
    def features(self) -> int:
        return self.W2q.shape[0]

    @property
    def hidden(self) -> int:
        return self.W2q.shape[1]

    @property
    def classes(self) -> int:
        return self.W3q.shape[1]

    @property
    def output_frac(self) -> int:
        return self.formats.classifier.output_weight_frac

    @property
    def hidden_acc_range(self) -> tuple[int, int]:
        """Worst-case ``(min, max)`` of ``acc2``: all F inputs active, weights and bias at the
        extremes of their formats."""
        c = self.formats.classifier
        return accumulator_range(self.features, c.hidden_weight_bits, c.hidden_bias_bits)

    @property
    def hidden_acc_bits(self) -> int:
        """Signed width of the hidden accumulator (holds :attr:`hidden_acc_range`)."""
        return signed_width(*self.hidden_acc_range)

    @property
    def output_acc_range(self) -> tuple[int, int]:
        """Worst-case ``(min, max)`` of ``acc3``: all H hidden units active."""
        c = self.formats.classifier
        return accumulator_range(self.hidden, c.output_weight_bits, c.output_bias_bits)

    @property
    def output_acc_bits(self) -> int:
        return signed_width(*self.output_acc_range)

    @property
    def logit_range(self) -> tuple[int, int]:
        lo, hi = self.output_acc_range
        return lo >> self.output_frac, hi >> self.output_frac

    @property
    def logit_bits(self) -> int:
        """Signed width of the floored logits ``acc3 >> output_weight_frac``."""
        return signed_width(*self.logit_range)


@dataclass(frozen=True)
class IntForward:
    """Every observable of the integer forward pass (``hidden``/``acc2`` are ``None`` when the
    caller asked not to keep them)."""

    hidden: np.ndarray | None   # (N, H) uint8
    acc2: np.ndarray | None     # (N, H) int64
    acc3: np.ndarray            # (N, C) int64
    logits: np.ndarray          # (N, C) int64, floor(z3)
    classes: np.ndarray         # (N,) int64, lowest index on ties
    words: np.ndarray           # (N, C) int64 softmax words, UQ0.softmax_bits


def quantize_classifier(params: ClassifierParams, fmt: NumberFormats, *,
                        opts: ClassifierOptions | None = None) -> IntClassifier:
    """Post-training quantization (round half up, ``fmt.classifier.quantize_overflow``).

    ``opts`` (optional) is checked: a ``relu`` classifier has no integer model.
    """
    require_binary_hidden(opts)
    policy = fmt.classifier.quantize_overflow
    out = {}
    for name, (frac, bits) in quant_table(fmt).items():
        try:
            out[name] = quantize(getattr(params, name), frac, bits, overflow=policy,
                                 what=f"classifier {name}")
        except OverflowError as e:
            raise QuantizationError(f"classifier.quantize_overflow = 'error': {e}") from None
    return IntClassifier(out["W2"], out["b2"], out["W3"], out["b3"], fmt)


def dequantize(q: IntClassifier) -> ClassifierParams:
    """The real values the integer model computes with (float64, exact)."""
    t = quant_table(q.formats)
    arrays = dict(W2=q.W2q, b2=q.b2q, W3=q.W3q, b3=q.b3q)
    return ClassifierParams(*(arrays[n].astype(np.float64) / float(1 << t[n][0]) for n in _TENSORS))


@njit(cache=True, parallel=True)
def _forward_int_kernel(W2q, b2q, W3q, b3q, x, frac, keep):
    n = x.shape[0]
    H = W2q.shape[1]
    C = W3q.shape[1]
    hidden = np.zeros((n if keep else 0, H), np.uint8)
    acc2_all = np.zeros((n if keep else 0, H), np.int64)
    acc3 = np.empty((n, C), np.int64)
    logits = np.empty((n, C), np.int64)
    for r in prange(n):
        acc2 = np.empty(H, np.int64)
        bits = np.empty(H, np.uint8)
        add_rows(W2q, b2q, x[r], acc2)
        for h in range(H):
            bits[h] = 1 if acc2[h] >= 0 else 0
        add_rows(W3q, b3q, bits, acc3[r])
        for c in range(C):
            logits[r, c] = acc3[r, c] >> frac
        if keep:
            hidden[r] = bits
            acc2_all[r] = acc2
    return hidden, acc2_all, acc3, logits


def forward_int(q: IntClassifier, x: np.ndarray, *, keep_hidden: bool = True) -> IntForward:
    """Integer forward pass of binary features ``x (N, F)``.

    ``keep_hidden=False`` drops the ``(N, H)`` hidden bits and ``acc2`` (8 bytes per unit per
    image) when only the outputs are needed.
    """
    x = check_binary(x)
    if x.shape[1] != q.features:
        raise ClassifierError(f"features: expected {q.features} columns, found {x.shape[1]}")
    W2q, b2q, W3q, b3q = (np.ascontiguousarray(a, dtype=np.int64) for a in (q.W2q, q.b2q, q.W3q, q.b3q))
    hidden, acc2, acc3, logits = _forward_int_kernel(W2q, b2q, W3q, b3q, x, q.output_frac, keep_hidden)
    if len(x):
        classes, words = softmax_int(logits, q.formats.softmax)
    else:
        classes, words = np.zeros(0, np.int64), np.zeros((0, q.classes), np.int64)
    return IntForward(hidden=hidden if keep_hidden else None, acc2=acc2 if keep_hidden else None,
                      acc3=acc3, logits=logits, classes=classes, words=words)
