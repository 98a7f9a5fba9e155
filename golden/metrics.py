"""Classification metrics, including the notebooks' EMNIST-specific ones (spec 7 and 9).

Accuracies are fractions in [0, 1]. Labels are integer class indices; for the EMNIST 47-class
metrics they are the standard EMNIST balanced/bymerge labels: 0-9 digits, 10-35 ``A``-``Z``,
36-46 ``a b d e f g h n q r t``.
"""

from __future__ import annotations

import numpy as np

from .errors import SpykehwError

__all__ = [
    "MetricsError",
    "EMNIST_GROUPS",
    "EMNIST_CHARS",
    "EMNIST_COLLAPSED_SETS",
    "accuracy",
    "confusion_matrix",
    "per_class_accuracy",
    "balanced_accuracy",
    "conditioned_predictions",
    "conditioned_accuracy",
    "collapse_map",
    "collapsed_accuracy",
]


class MetricsError(SpykehwError, ValueError):
    """Mismatched or out-of-range labels/predictions."""


EMNIST_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabdefghnqrt"
"""Character of each EMNIST balanced/bymerge label (``emnist-bymerge-mapping.txt``)."""

EMNIST_GROUPS = ((0, 10), (10, 36), (36, 47))
"""Label ranges ``[start, stop)`` of the digits, upper-case and lower-case groups."""

EMNIST_COLLAPSED_SETS = tuple(
    tuple(EMNIST_CHARS.index(ch) for ch in chars)
    for chars in ("fF", "0O", "q9", "1LI", "S5", "2Z"))
"""Label sets the notebooks count as interchangeable: {f,F}, {0,O}, {q,9}, {1,L,I}, {S,5}, {2,Z}."""


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise MetricsError(f"labels and predictions differ in length: {t.size} vs {p.size}")
    return t, p


def accuracy(y_true, y_pred) -> float:
    """Fraction of exact matches (NaN for no samples)."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(t == p)) if t.size else float("nan")


def confusion_matrix(y_true, y_pred, n_classes: int | None = None) -> np.ndarray:
    """int64 ``(C, C)``: ``M[i, j]`` = number of samples of true class ``i`` predicted ``j``."""
    t, p = _pair(y_true, y_pred)
    if n_classes is None:
        n_classes = int(max(t.max(initial=-1), p.max(initial=-1))) + 1
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= n_classes):
        raise MetricsError(f"labels/predictions must be in 0..{n_classes - 1}")
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (t, p), 1)
    return m


def per_class_accuracy(y_true, y_pred, n_classes: int | None = None) -> np.ndarray:
    """Recall of each class (float64 ``(C,)``); NaN for classes with no true samples."""
    m = confusion_matrix(y_true, y_pred, n_classes)
    support = m.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(m) / np.maximum(support, 1), np.nan)


def balanced_accuracy(y_true, y_pred, n_classes: int | None = None) -> float:
    """Mean per-class recall over the classes present in ``y_true``."""
    r = per_class_accuracy(y_true, y_pred, n_classes)
    r = r[~np.isnan(r)]
    return float(r.mean()) if r.size else float("nan")


def _group_of(y: np.ndarray, groups) -> tuple[np.ndarray, np.ndarray]:
    lo = np.full(y.shape, -1, dtype=np.int64)
    hi = np.full(y.shape, -1, dtype=np.int64)
    for a, b in groups:
        sel = (y >= a) & (y < b)
        lo[sel], hi[sel] = a, b
    if np.any(lo < 0):
        raise MetricsError(f"labels outside every group {groups}: {np.unique(y[lo < 0])[:5]}")
    return lo, hi


def conditioned_predictions(logits, y_true, groups=EMNIST_GROUPS) -> np.ndarray:
    """Argmax of each row restricted to the columns of its true label's group (lowest index
    on ties), as in the notebooks' conditioned accuracy."""
    z = np.asarray(logits, dtype=np.float64)
    t = np.asarray(y_true, dtype=np.int64)
    if z.ndim != 2 or z.shape[0] != t.size:
        raise MetricsError(f"logits must be (N, C) with N = {t.size}, found {z.shape}")
    lo, hi = _group_of(t, groups)
    cols = np.arange(z.shape[1])
    masked = np.where((cols >= lo[:, None]) & (cols < hi[:, None]), z, -np.inf)
    return np.argmax(masked, axis=1)


def conditioned_accuracy(logits, y_true, groups=EMNIST_GROUPS) -> float:
    """Accuracy when the classifier only chooses within the true label's group
    (digits / upper / lower for EMNIST)."""
    return accuracy(y_true, conditioned_predictions(logits, y_true, groups))


def collapse_map(n_classes: int = 47, sets=EMNIST_COLLAPSED_SETS) -> np.ndarray:
    """int64 ``(n_classes,)``: each label's representative (the smallest label of its set)."""
    m = np.arange(n_classes, dtype=np.int64)
    for s in sets:
        m[list(s)] = min(s)
    return m


def collapsed_accuracy(y_true, y_pred, sets=EMNIST_COLLAPSED_SETS, n_classes: int = 47) -> float:
    """Accuracy when the labels of each set in ``sets`` count as the same class."""
    t, p = _pair(y_true, y_pred)
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= n_classes):
        raise MetricsError(f"labels/predictions must be in 0..{n_classes - 1}")
    m = collapse_map(n_classes, sets)
    return accuracy(m[t], m[p])
