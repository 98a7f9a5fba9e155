"""The float classifier's parameters and what it is given (spec section 7): the parameter
shapes, the checks of its inputs (binary feature rows, labels), the notebooks' validation split,
the initialisation and the dropout masks. The model and its training:
:mod:`spykehw.golden.classifier`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import SpykehwError
from .options import ClassifierOptions

__all__ = ["ClassifierError", "ClassifierParams", "check_binary", "check_labels", "split_validation",
           "init_params", "dropout_masks", "class_weights"]


class ClassifierError(SpykehwError, ValueError):
    """Bad classifier input (shapes, non-binary features, labels out of range)."""



@dataclass(frozen=True)
class ClassifierParams:
    """``W2 (F, H)``, ``b2 (H,)``, ``W3 (H, C)``, ``b3 (C,)``; float32 from training (float64
    is accepted, e.g. for gradient checks)."""

    W2: np.ndarray
    b2: np.ndarray
    W3: np.ndarray
    b3: np.ndarray

    def __post_init__(self) -> None:
        f, h = self.W2.shape
        if self.b2.shape != (h,) or self.W3.ndim != 2 or self.W3.shape[0] != h \
                or self.b3.shape != (self.W3.shape[1],):
            raise ClassifierError(
                f"params: inconsistent shapes W2 {self.W2.shape}, b2 {self.b2.shape}, "
                f"W3 {self.W3.shape}, b3 {self.b3.shape}")

    @property
    def features(self) -> int:
        return self.W2.shape[0]

    @property
    def hidden(self) -> int:
        return self.W2.shape[1]

    @property
    def classes(self) -> int:
        return self.W3.shape[1]

    def copy(self) -> "ClassifierParams":
        return ClassifierParams(self.W2.copy(), self.b2.copy(), self.W3.copy(), self.b3.copy())

    def astype(self, dtype) -> "ClassifierParams":
        return ClassifierParams(*(np.asarray(a, dtype=dtype) for a in (self.W2, self.b2, self.W3, self.b3)))


def check_binary(x: np.ndarray, what: str = "features") -> np.ndarray:
    """C-contiguous uint8 view/copy of a binary ``(N, F)`` array; raises on any value > 1."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ClassifierError(f"{what}: expected a 2-d (N, F) array, found shape {x.shape}")
    if x.dtype != np.bool_ and x.size and (x.min() < 0 or x.max() > 1):
        raise ClassifierError(f"{what}: expected binary 0/1 values, found range "
                              f"{x.min()}..{x.max()}")
    return np.ascontiguousarray(x, dtype=np.uint8)


def check_labels(y: np.ndarray, n: int, n_classes: int, what: str = "labels") -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise ClassifierError(f"{what}: expected shape ({n},), found {y.shape}")
    if n and (y.min() < 0 or y.max() >= n_classes):
        raise ClassifierError(f"{what}: expected labels 0..{n_classes - 1}, found {y.min()}..{y.max()}")
    return np.ascontiguousarray(y, dtype=np.int64)


def split_validation(x: np.ndarray, y: np.ndarray, val_fraction: float):
    """``(train_x, train_y, val_x, val_y)``: the first ``int(val_fraction * N)`` rows are the
    validation set, in stored order (the notebooks' split, spec 1.5)."""
    n_val = int(val_fraction * len(x))
    return x[n_val:], y[n_val:], x[:n_val], y[:n_val]


def _truncated_normal(rng: np.random.Generator, shape, std: float) -> np.ndarray:
    """``tf.truncated_normal``: N(0, std), values beyond 2 std redrawn until none is left."""
    v = rng.standard_normal(shape)
    bad = np.abs(v) > 2.0
    while bad.any():
        v[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(v) > 2.0
    return v * std


def init_params(F: int, H: int, C: int, opts: ClassifierOptions, seed: int) -> ClassifierParams:
    """float32 initial params: W2 then W3 drawn from ``default_rng([seed, 0])``; zero biases.

    ``truncated_normal``: std ``opts.init_std`` truncated at 2 std (TF's rule);
    ``uniform_fan_in``: ``U(-sqrt(4/fan_in), +sqrt(4/fan_in))`` with fan_in F for W2, H for W3.
    """
    rng = np.random.default_rng([seed, 0])
    if opts.init == "truncated_normal":
        W2 = _truncated_normal(rng, (F, H), opts.init_std)
        W3 = _truncated_normal(rng, (H, C), opts.init_std)
    else:
        W2 = rng.uniform(-math.sqrt(4.0 / F), math.sqrt(4.0 / F), (F, H))
        W3 = rng.uniform(-math.sqrt(4.0 / H), math.sqrt(4.0 / H), (H, C))
    return ClassifierParams(W2.astype(np.float32), np.zeros(H, np.float32),
                            W3.astype(np.float32), np.zeros(C, np.float32))


def dropout_masks(rng: np.random.Generator, rows: int, hidden: int, p: float) -> np.ndarray:
    """Bool ``(rows, hidden)``, True = dropped; drawn as ``rng.random(..., float32) < p``."""
    if p <= 0:
        return np.zeros((rows, hidden), dtype=np.bool_)
    return rng.random((rows, hidden), dtype=np.float32) < np.float32(p)



def class_weights(y: np.ndarray, n_classes: int, mode: str) -> np.ndarray:
    """Per-class factors of ``delta3`` (``ClassifierOptions.class_weights``), float64 ``(C,)``:
    all 1.0 for ``"uniform"``; ``N / (C * n_c)`` for ``"balanced"`` (``n_c`` the rows of class
    ``c`` among the ``N`` labels ``y``; a class without rows gets 0.0, it has no sample to scale)."""
    if mode == "uniform":
        return np.ones(n_classes, np.float64)
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes)[:n_classes]
    out = np.zeros(n_classes, np.float64)
    seen = counts > 0
    out[seen] = len(y) / (n_classes * counts[seen].astype(np.float64))
    return out
