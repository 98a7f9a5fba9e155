"""The float classifier's dense numpy reference: forward and backward of one batch
(:func:`gradients`) and training with it (:func:`train_steps_dense`). The plain statement of the
math of :mod:`spykehw.golden.classifier` (its module docstring), slow; the tests check the numba
kernels against it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .classifier import softmax_ce
from .classifier_params import ClassifierParams, class_weights
from .options import ClassifierOptions

__all__ = ["Gradients", "gradients", "train_steps_dense"]


@dataclass(frozen=True)
class Gradients:
    """Batch sums ``dW2 = x^T delta2``, ``db2 = sum delta2``, ``dW3 = a2^T delta3``,
    ``db3 = sum delta3``, the mean ``loss`` and the forward/backward intermediates (float64)."""

    dW2: np.ndarray
    db2: np.ndarray
    dW3: np.ndarray
    db3: np.ndarray
    loss: float
    z2: np.ndarray
    a2: np.ndarray
    z3: np.ndarray
    a3: np.ndarray
    delta2: np.ndarray
    delta3: np.ndarray


def gradients(params: ClassifierParams, x: np.ndarray, y: np.ndarray, opts: ClassifierOptions,
              dropout_mask: np.ndarray | None = None, cw: np.ndarray | None = None) -> Gradients:
    """Dense numpy forward + backward of one batch (float64), the reference for the kernels.

    ``dropout_mask`` (bool ``(n, H)``, True = dropped) sets ``z2 = -1`` for the dropped units.
    ``cw`` (``(C,)``, optional) scales each sample's ``delta3`` by ``cw[label]`` (class weights).
    Returns batch *sums*; for the relu path ``d loss / d theta = grad / n``.
    """
    W2, b2, W3, b3 = (np.asarray(a, dtype=np.float64) for a in (params.W2, params.b2, params.W3, params.b3))
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    n = len(x)
    z2 = x @ W2 + b2
    if dropout_mask is not None:
        z2 = np.where(dropout_mask, -1.0, z2)
    if opts.gradient == "relu":
        a2 = np.maximum(z2, 0.0)
        z3 = a2 @ W3 + b3
        gate = z2 >= 0.0
    else:
        a2 = (z2 >= 0.0).astype(np.float64)
        z3 = np.floor(a2 @ W3 + b3)
        gate = (z2 >= 0.0) & (z2 <= opts.sg1_window) if opts.gradient == "sg1" else z2 >= 0.0
    onehot = np.zeros_like(z3)
    onehot[np.arange(n), y] = 1.0
    if opts.cost == "quadratic":
        a3 = np.maximum(z3, 0.0)
        loss = float(np.mean(0.5 * ((a3 - onehot) ** 2).sum(axis=1)))
    else:
        e = np.exp(z3 - z3.max(axis=1, keepdims=True))
        a3 = e / e.sum(axis=1, keepdims=True)
        loss = float(np.mean(softmax_ce(z3, y)))
    d3 = a3 - onehot
    if cw is not None:
        d3 = d3 * np.asarray(cw, dtype=np.float64)[y][:, None]
    d2 = (d3 @ W3.T) * gate
    return Gradients(dW2=x.T @ d2, db2=d2.sum(axis=0), dW3=a2.T @ d3, db3=d3.sum(axis=0),
                     loss=loss, z2=z2, a2=a2, z3=z3, a3=a3, delta2=d2, delta3=d3)


def train_steps_dense(params: ClassifierParams, x: np.ndarray, y: np.ndarray,
                      opts: ClassifierOptions, masks: np.ndarray) -> ClassifierParams:
    """Train ``len(x) // batch`` batches in row order with :func:`gradients` (slow reference).

    ``masks`` is bool ``(n_batches * batch, H)``. Same rounding rule as the kernels: float64
    update, one rounding to the params' dtype.
    """
    p = params.copy()
    bs = opts.batch
    cw = class_weights(y[:len(x) // bs * bs], p.classes, opts.class_weights)
    for b in range(len(x) // bs):
        sl = slice(b * bs, (b + 1) * bs)
        gr = gradients(p, x[sl], y[sl], opts, masks[sl], cw)
        lr = opts.eta / bs
        p = ClassifierParams(
            W2=(p.W2.astype(np.float64) - lr * gr.dW2).astype(p.W2.dtype),
            b2=(p.b2.astype(np.float64) - opts.eta * (gr.db2 / bs)).astype(p.b2.dtype),
            W3=(p.W3.astype(np.float64) - lr * gr.dW3).astype(p.W3.dtype),
            b3=(p.b3.astype(np.float64) - opts.eta * (gr.db3 / bs)).astype(p.b3.dtype))
    return p

