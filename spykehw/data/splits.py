"""Seeded stratified train/test split (used to make a 47-class task from EMNIST bymerge test).

The procedure, exactly (so another implementation can reproduce it):

1. ``rng = numpy.random.default_rng(seed)`` -- one generator for the whole split.
2. For each class ``c`` in ascending label order: take the row indices of class ``c`` in file
   order, ``rng.shuffle`` them, put the first ``round(test_fraction * n_c)`` into test and the
   rest into train (Python ``round``: half to even).
3. Concatenate the train indices (class by class) and ``rng.shuffle`` them once, so the classes
   are mixed in the training order.
4. Sort the test indices ascending: the test set keeps the file's order, which is already mixed,
   so evaluating only its first rows is not biased towards low labels.

Every class therefore has ``|n_test_c - test_fraction * n_c| <= 0.5``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["stratified_split"]


def stratified_split(labels: np.ndarray, *, test_fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split row indices per class; see the module docstring for the exact procedure.

    Returns
    -------
    train_idx, test_idx
        int64 index arrays into ``labels``; disjoint, together all rows.
    """
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be in [0, 1], got {test_fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    order = np.argsort(labels, kind="stable")  # rows grouped by class, file order within
    classes, starts = np.unique(labels[order], return_index=True)
    bounds = list(starts) + [labels.size]
    train, test = [], []
    for i in range(classes.size):
        idx = order[bounds[i]:bounds[i + 1]].astype(np.int64)
        rng.shuffle(idx)
        k = round(test_fraction * idx.size)
        test.append(idx[:k])
        train.append(idx[k:])
    empty = np.zeros(0, np.int64)
    train_idx = np.concatenate(train) if train else empty
    rng.shuffle(train_idx)
    test_idx = np.sort(np.concatenate(test)) if test else empty
    return train_idx, test_idx
