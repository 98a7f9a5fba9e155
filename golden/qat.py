"""Quantization-aware fine-tuning of the binary classifier (straight-through estimator).

Float32 *shadow* params are trained; the forward pass of every training step uses their
quantized values (:func:`spykehw.golden.classifier_int.quant_table` formats, round half up,
saturated), held as float64 ``k / 2**frac`` so that ``z2``, the hidden bits and ``floor(z3)`` equal
the integer model's ``acc2``, hidden bits and logits exactly. The gradient passes straight through
the quantizer to the shadow params (same update rule as float training, spec 7), and after each
update the touched shadow values are clipped to their format's range (so they cannot drift
beyond what saturation maps to the same integer) and requantized.

Epoch loop and model selection are the float training's (:func:`~spykehw.golden.classifier.run_epochs`),
with every evaluation done by the integer model (:func:`~spykehw.golden.classifier_int.forward_int`),
so the reported accuracies are the integer classifier's.
"""

from __future__ import annotations

import numpy as np

from .classifier import TrainResult, TrainState, run_epochs, softmax_ce
from .classifier_int import (
    forward_int,
    quant_table,
    quantize_classifier,
    require_binary_hidden,
)
from .classifier_params import (
    ClassifierError,
    ClassifierParams,
    check_binary,
    check_labels,
)
from .fixed import signed_range
from .formats import NumberFormats
from .options import ClassifierOptions

__all__ = ["qat_table", "evaluate_int", "qat_finetune"]


def qat_table(fmt: NumberFormats) -> np.ndarray:
    """``(4, 3)`` float64 rows ``(2**frac, lo, hi)`` for W2, b2, W3, b3 (the kernel's ``qp``)."""
    rows = []
    for frac, bits in quant_table(fmt).values():
        lo, hi = signed_range(bits)
        rows.append((float(1 << frac), float(lo), float(hi)))
    return np.array(rows, dtype=np.float64)


def evaluate_int(params: ClassifierParams, fmt: NumberFormats, x: np.ndarray, y: np.ndarray):
    """``(accuracy, mean softmax CE of the integer logits)`` of the quantized ``params``."""
    if len(y) == 0:
        return float("nan"), float("nan")
    out = forward_int(quantize_classifier(params, fmt), x, keep_hidden=False)
    y = np.asarray(y, dtype=np.int64)
    return float(np.mean(out.classes == y)), float(softmax_ce(out.logits, y).mean())


def qat_finetune(params: ClassifierParams, fmt: NumberFormats, train_x, train_y, val_x, val_y,
                 opts: ClassifierOptions, epochs: int, *, test_x=None, test_y=None,
                 progress: bool = True) -> TrainResult:
    """Fine-tune ``params`` for ``epochs`` epochs with the forward pass on quantized weights.

    Uses ``opts`` for everything but the epoch count (eta, batch, dropout, gradient, seed).
    Returns shadow params (quantize them with :func:`quantize_classifier`); ``best_params`` is
    the snapshot with the strictly best *integer* validation accuracy (epoch 0 = the
    post-training-quantized input params, clipped to the formats' ranges).
    """
    require_binary_hidden(opts)
    train_x = check_binary(train_x, "train features")
    val_x = check_binary(val_x, "validation features")
    if train_x.shape[1] != params.features:
        raise ClassifierError(f"train features: expected {params.features} columns, found {train_x.shape[1]}")
    n_classes = params.classes
    train_y = check_labels(train_y, len(train_x), n_classes, "train labels")
    val_y = check_labels(val_y, len(val_x), n_classes, "validation labels")
    if test_x is not None:
        test_x = check_binary(test_x, "test features")
        test_y = check_labels(test_y, len(test_x), n_classes, "test labels")

    def evaluate_fn(p, x, y):
        return evaluate_int(p, fmt, x, y)

    state = TrainState(params, qp=qat_table(fmt))
    return run_epochs(state, evaluate_fn, train_x, train_y, val_x, val_y, opts, epochs,
                      test_x=test_x, test_y=test_y, progress=progress, label=f"qat {fmt.name}")
