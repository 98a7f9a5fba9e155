"""How a "classifier bits" sweep value becomes classifier formats (the fraction-bit rule).

A sweep value ``b`` sets ``hidden_weight_bits = output_weight_bits = b`` and the biases
``b + bias_extra`` bits (biases collect more than one weight's worth of range; they keep their
layer's fraction bits, as :mod:`spykehw.golden.formats` requires). The fraction bits of each layer
come from one of two rules:

``range`` (default)
    the largest ``frac`` such that every trained float weight of the layer quantizes without
    saturating: ``-2**(b-1) <= round_half_up(w * 2**frac) <= 2**(b-1) - 1`` for the layer's
    smallest and largest weight. All the format's codes go to the range the weights actually
    use; a bias that still falls outside its wider range saturates (and is counted).
``preset``
    keep the base preset's integer bits: ``frac = max(0, b - (base_bits - base_frac))`` per
    layer (fpga-16: 2 integer bits for the hidden layer, 6 for the output layer). Independent of
    the trained weights, so the format is known before training.

``frac`` is clamped to what the config accepts (``0 .. min(40, b + 16)``).
"""

from __future__ import annotations

import math

import numpy as np

from ..golden.classifier_int import quant_table
from ..golden.fixed import signed_range
from ..golden.formats import NumberFormats

__all__ = ["FRAC_RULES", "range_frac", "classifier_formats", "provisional_classifier_formats",
           "saturation_counts"]

FRAC_RULES = ("range", "preset")
_FRAC_MAX = 40


def range_frac(weights: np.ndarray, bits: int) -> int:
    """Largest ``frac`` in ``0 .. min(40, bits + 16)`` at which no weight saturates in
    ``bits``-bit signed fixed point (round half up); the cap when all weights are 0."""
    top = min(_FRAC_MAX, bits + 16)
    w = np.asarray(weights, dtype=np.float64)
    if w.size == 0:
        return top
    lo_w, hi_w = float(w.min()), float(w.max())
    lo, hi = signed_range(bits)
    for frac in range(top, -1, -1):
        s = float(1 << frac)
        if math.floor(hi_w * s + 0.5) <= hi and math.floor(lo_w * s + 0.5) >= lo:
            return frac
    return 0


def _name(base: str, bits: int, rule: str) -> str:
    suffix = f"+classifier={bits}({rule})"
    return base if base.endswith(suffix) else base + suffix


def _layer(bits: int, frac: int, extra: int) -> tuple[int, int, int]:
    return bits, max(0, min(frac, _FRAC_MAX, bits + 16)), bits + extra


def classifier_formats(base: NumberFormats, bits: int, rule: str, bias_extra: int,
                       params=None) -> NumberFormats:
    """``base`` with its classifier formats set from ``bits`` by ``rule`` (module docstring).

    ``params`` (a :class:`~spykehw.golden.classifier.ClassifierParams`) is needed by the
    ``range`` rule. Invalid results raise the config's own :class:`FormatError`.
    """
    c = base.classifier
    if rule == "range":
        if params is None:
            raise ValueError("the 'range' rule needs the trained params")
        hf, of = range_frac(params.W2, bits), range_frac(params.W3, bits)
    elif rule == "preset":
        hf = bits - (c.hidden_weight_bits - c.hidden_weight_frac)
        of = bits - (c.output_weight_bits - c.output_weight_frac)
    else:
        raise ValueError(f"rule: expected one of {', '.join(FRAC_RULES)}, not {rule!r}")
    hb, hf, hbb = _layer(bits, hf, bias_extra)
    ob, of, obb = _layer(bits, of, bias_extra)
    return base.replace(**{
        "name": _name(base.name, bits, rule),
        "classifier.hidden_weight_bits": hb, "classifier.hidden_weight_frac": hf,
        "classifier.hidden_bias_bits": hbb, "classifier.output_weight_bits": ob,
        "classifier.output_weight_frac": of, "classifier.output_bias_bits": obb})


def provisional_classifier_formats(base: NumberFormats, bits: int, rule: str,
                                   bias_extra: int) -> NumberFormats:
    """The formats of a classifier-bits point before training (``range`` provisionally uses
    ``frac = bits - 1``): validates the widths before any work starts."""
    if rule == "preset":
        return classifier_formats(base, bits, rule, bias_extra)
    if rule != "range":
        raise ValueError(f"rule: expected one of {', '.join(FRAC_RULES)}, not {rule!r}")
    return base.replace(**{
        "name": _name(base.name, bits, rule),
        "classifier.hidden_weight_bits": bits, "classifier.hidden_weight_frac": bits - 1,
        "classifier.hidden_bias_bits": bits + bias_extra, "classifier.output_weight_bits": bits,
        "classifier.output_weight_frac": bits - 1, "classifier.output_bias_bits": bits + bias_extra})


def saturation_counts(params, fmt: NumberFormats) -> dict[str, int]:
    """How many values of W2, b2, W3, b3 fall outside their format (and so saturate)."""

    out = {}
    for name, (frac, bits) in quant_table(fmt).items():
        q = np.floor(np.asarray(getattr(params, name), dtype=np.float64) * float(1 << frac) + 0.5)
        lo, hi = signed_range(bits)
        out[name] = int(np.count_nonzero((q < lo) | (q > hi)))
    return out
