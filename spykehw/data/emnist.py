"""EMNIST specifics: the 47-class character set and the checking of a mapping file.

EMNIST "bymerge" and "balanced" share one 47-class label set: the digits, the 26 upper-case
letters, and the 11 lower-case letters whose shape differs from their capital (the other 15
lower-case letters, c i j k l m o p s u v w x y z, are merged into their capital). Labels are
0-9 digits, 10-35 'A'-'Z', 36-46 'a b d e f g h n q r t' (Cohen et al. 2017; the
``emnist-*-mapping.txt`` files give the same table as ``label ASCII-code`` lines).

EMNIST images are stored transposed (column-major) in the IDX files; :func:`upright` turns
them the right way up.
"""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np

from .locate import DatasetError

__all__ = ["EMNIST_47_CLASSES", "check_mapping", "read_mapping", "upright"]

EMNIST_47_CLASSES: tuple[str, ...] = (
    tuple(string.digits) + tuple(string.ascii_uppercase) + tuple("abdefghnqrt"))


def read_mapping(path: str | Path) -> dict[int, str]:
    """Parse an EMNIST mapping file (``label ascii_code`` per line) into label -> character.

    Raises
    ------
    DatasetError
        A line is not two integers, a code is not printable ASCII, or a label repeats.
    """
    path = Path(path)
    out: dict[int, str] = {}
    for n, line in enumerate(path.read_text(encoding="ascii", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            label, code = (int(p) for p in parts)
        except ValueError:
            raise DatasetError(f"{path}:{n}: expected 'label ascii_code' (two integers), "
                               f"found {line!r}") from None
        if not 33 <= code <= 126:
            raise DatasetError(f"{path}:{n}: expected a printable ASCII code 33..126, found {code}")
        if label in out:
            raise DatasetError(f"{path}:{n}: label {label} appears twice")
        out[label] = chr(code)
    return out


def check_mapping(path: str | Path, classes: tuple[str, ...] = EMNIST_47_CLASSES) -> None:
    """Check that a mapping file agrees with the built-in class list.

    Raises
    ------
    DatasetError
        Naming the first label where they differ (or the labels that are missing/extra).
    """
    mapping = read_mapping(path)
    expected = dict(enumerate(classes))
    if set(mapping) != set(expected):
        missing = sorted(set(expected) - set(mapping))
        extra = sorted(set(mapping) - set(expected))
        raise DatasetError(f"{path}: expected labels 0..{len(classes) - 1}, "
                           f"missing {missing}, extra {extra}")
    for label in sorted(expected):
        if mapping[label] != expected[label]:
            raise DatasetError(f"{path}: label {label}: expected {expected[label]!r} "
                               f"(ASCII {ord(expected[label])}), found {mapping[label]!r} "
                               f"(ASCII {ord(mapping[label])})")


def upright(images: np.ndarray) -> np.ndarray:
    """EMNIST images as stored (N, 28, 28), transposed to upright, as a new C-contiguous array."""
    return np.ascontiguousarray(np.swapaxes(images, 1, 2))
