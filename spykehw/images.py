"""Images from the user's files, as the network takes them: ``uint8`` arrays ``(N, 28, 28)``.

Accepted inputs (:func:`read_images`):

- a **folder** of PNG/JPEG files (``.png``, ``.jpg``, ``.jpeg``, any case), read in name order;
  other files in the folder are ignored, a folder without any is refused;
- a single **PNG/JPEG** file;
- a **NumPy** ``.npy`` array or ``.npz`` archive (the array named ``images``, else its only array);
- an **IDX** image file (MNIST/EMNIST format, gzip or raw; magic 2051).

Policy for images that are not 28x28 grey (stated in the README and in ``spykehw predict
--help``):

- colour and palette images are converted to grey with Pillow's ``L`` mode (ITU-R 601-2 luma,
  ``L = R * 299/1000 + G * 587/1000 + B * 114/1000``; an alpha channel is dropped); 16-bit and
  floating-point images (Pillow modes ``I``, ``I;16``, ``F``) are refused;
- any size other than 28x28 is **refused** (no resizing: the network was trained on MNIST's 28x28
  digits, and a resize filter would be a silent choice of ours);
- arrays must be integers in 0..255 (any integer dtype), shaped ``(N, 28, 28)``, ``(28, 28)`` or
  ``(N, 784)``; floating-point arrays are refused (their scale, 0..1 or 0..255, is ambiguous);
- like MNIST, the digit is bright on a dark background; images are not inverted.

Every refusal is an :class:`ImageError` naming the file and what was wrong.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .data.idx import IMAGES_MAGIC, IdxError, read_idx
from .golden.errors import SpykehwError

__all__ = ["ImageError", "IMAGE_SUFFIXES", "SIZE", "as_images", "read_images"]

SIZE = 28
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_REFUSED_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


class ImageError(SpykehwError, ValueError):
    """An input that is not usable as the network's images (the message names the file)."""


def as_images(array: np.ndarray, what: str = "images") -> np.ndarray:
    """Check and shape an array as ``uint8 (N, 28, 28)`` (see the module docstring).

    Parameters
    ----------
    array : array_like
        ``(N, 28, 28)``, ``(28, 28)`` or ``(N, 784)`` integers in 0..255.
    what : str
        How to name the input in an error (a file name, ``"images"``).

    Returns
    -------
    numpy.ndarray
        ``uint8`` of shape ``(N, 28, 28)`` (a copy only when the dtype or shape changes).
    """
    a = np.asarray(array)
    if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer):
        raise ImageError(f"{what}: expected integer pixels 0..255, found dtype {a.dtype}")
    if a.ndim == 2 and a.shape == (SIZE, SIZE):
        a = a[None]
    elif a.ndim == 2 and a.shape[1] == SIZE * SIZE:
        a = a.reshape(-1, SIZE, SIZE)
    if a.ndim != 3 or a.shape[1:] != (SIZE, SIZE):
        raise ImageError(f"{what}: expected shape (N, 28, 28), (28, 28) or (N, 784), found {a.shape}")
    if a.size and (int(a.min()) < 0 or int(a.max()) > 255):
        raise ImageError(f"{what}: pixel values {int(a.min())}..{int(a.max())} outside 0..255")
    return np.ascontiguousarray(a, dtype=np.uint8)


def _read_picture(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError  # Pillow: only when pictures are read

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in _REFUSED_MODES:
                raise ImageError(f"{path}: {im.mode} image (16-bit or floating point); only 8-bit "
                                 f"grey or colour images are accepted")
            if im.size != (SIZE, SIZE):
                raise ImageError(f"{path}: {im.size[0]}x{im.size[1]} pixels; the network takes 28x28 "
                                 f"images (no resizing is done)")
            grey = im if im.mode == "L" else im.convert("L")
            return np.asarray(grey, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ImageError(f"{path}: not a readable PNG/JPEG image ({e})") from None


def _read_npz(path: Path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as z:
            names = list(z.files)
            if "images" in names:
                key = "images"
            elif len(names) == 1:
                key = names[0]
            else:
                raise ImageError(f"{path}: no array named 'images' and {len(names)} arrays "
                                 f"({', '.join(names) or 'none'}); name the images array 'images'")
            return as_images(z[key], f"{path}[{key}]")
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        if isinstance(e, ImageError):
            raise
        raise ImageError(f"{path}: not a readable .npz archive ({e})") from None


def _read_npy(path: Path) -> np.ndarray:
    try:
        a = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ImageError(f"{path}: not a readable .npy array ({e})") from None
    return as_images(a, str(path))


def _looks_like_idx(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(4)
    return head[:2] == b"\x1f\x8b" or (len(head) == 4 and head[:2] == b"\0\0")


def read_images(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Read images from a folder of pictures, a picture, ``.npy``, ``.npz`` or IDX file.

    Parameters
    ----------
    path : str or Path
        See the module docstring for what is accepted and how other images are treated.

    Returns
    -------
    names : list of str
        One name per image: the file name for pictures, ``"<file>[i]"`` for arrays.
    images : numpy.ndarray
        ``uint8 (N, 28, 28)``.

    Raises
    ------
    ImageError
        An unreadable or unsuitable input, naming the file.
    FileNotFoundError
        No such file or folder.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ImageError(f"{path}: no PNG or JPEG files in this folder")
        return [p.name for p in files], np.stack([_read_picture(p) for p in files])
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return [path.name], _read_picture(path)[None]
    if suffix == ".npz":
        images = _read_npz(path)
    elif suffix == ".npy":
        images = _read_npy(path)
    elif _looks_like_idx(path):
        try:
            images = as_images(read_idx(path, expect_magic=IMAGES_MAGIC, expect_shape=(None, SIZE, SIZE)),
                               str(path))
        except IdxError as e:
            raise ImageError(str(e)) from None
    else:
        raise ImageError(f"{path}: not an image input (expected a folder of PNG/JPEG files, a "
                         f".png/.jpg, .npy, .npz or IDX file)")
    return [f"{path.name}[{i}]" for i in range(len(images))], images
