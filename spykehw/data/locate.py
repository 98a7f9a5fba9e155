"""Where datasets live: the data folders searched by default, and finding a dataset's files.

A data folder holds one subfolder per dataset (``mnist/``, ``emnist/``), as
``/work/shared/datasets`` and ``spykehw data fetch`` lay them out; a folder that directly holds
a dataset's files is accepted too. When no folder is given, these are searched in order:

1. ``$SPYKEHW_DATA_DIR``, if set (it must exist);
2. the shared folder ``../shared/datasets`` beside the repository (development checkouts);
3. the per-user folder that ``spykehw data fetch`` writes to by default
   (``$XDG_DATA_HOME/spykehw/datasets``, else ``~/.local/share/spykehw/datasets``).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..golden.errors import SpykehwError

__all__ = [
    "DatasetError", "ENV_VAR", "candidate_data_dirs", "default_data_dir", "find_dataset_files",
    "search_dataset", "shared_datasets_dir", "user_data_dir",
]

ENV_VAR = "SPYKEHW_DATA_DIR"


class DatasetError(SpykehwError):
    """A dataset is missing, incomplete or inconsistent (files disagree with each other)."""


def shared_datasets_dir() -> Path | None:
    """The team's shared dataset folder (``<repo>/../shared/datasets``), or None if absent.

    Found relative to this source file (``<repo>/spykehw/data/locate.py``), so it only exists
    for a checkout beside the shared folder, never for an installed package.
    """
    p = Path(__file__).resolve().parents[3] / "shared" / "datasets"
    return p if p.is_dir() else None


def user_data_dir() -> Path:
    """The per-user folder ``spykehw data fetch`` downloads to when no ``--out`` is given."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "spykehw" / "datasets"


def candidate_data_dirs() -> list[tuple[str, Path]]:
    """The existing default data folders, in search order, as ``(origin, path)`` pairs.

    Raises
    ------
    DatasetError
        ``$SPYKEHW_DATA_DIR`` is set but is not a folder (a typo must not be silently skipped).
    """
    out: list[tuple[str, Path]] = []
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env).expanduser()
        if not p.is_dir():
            raise DatasetError(f"{ENV_VAR}={env}: expected an existing folder, found "
                               f"{'a file' if p.exists() else 'nothing'}")
        out.append((f"${ENV_VAR}", p))
    shared = shared_datasets_dir()
    if shared is not None:
        out.append(("shared folder", shared))
    user = user_data_dir()
    if user.is_dir():
        out.append(("user folder", user))
    return out


def _no_data_message(what: str) -> str:
    return (f"no {what} found: pass --data-dir DIR, set {ENV_VAR}, or run `spykehw data fetch "
            f"mnist|emnist` (downloads to {user_data_dir()})")


def default_data_dir() -> Path:
    """The first default data folder (see the module docstring).

    Raises
    ------
    DatasetError
        None exists; the message says how to get one.
    """
    dirs = candidate_data_dirs()
    if not dirs:
        raise DatasetError(_no_data_message("data folder"))
    return dirs[0][1]


def _find_one(folder: Path, stem: str) -> Path | None:
    # Files may be kept gzipped (as distributed) or gunzipped; the reader detects which.
    for name in (stem + ".gz", stem) if not stem.endswith(".txt") else (stem,):
        if (folder / name).is_file():
            return folder / name
    return None


def find_dataset_files(data_dir: str | Path, subdir: str, stems: dict[str, str], *,
                       optional: tuple[str, ...] = ()) -> dict[str, Path]:
    """Locate a dataset's files in ``data_dir`` or ``data_dir/subdir``.

    Parameters
    ----------
    stems
        role -> file name without ``.gz`` (e.g. ``{"train_images": "train-images-idx3-ubyte"}``);
        ``name.gz`` and ``name`` are both accepted.
    optional
        Roles that may be missing (left out of the result).

    Raises
    ------
    DatasetError
        Neither folder holds all required files; the message lists what is missing.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DatasetError(f"{data_dir}: expected a data folder, found "
                           f"{'a file' if data_dir.exists() else 'nothing'}")
    required = [r for r in stems if r not in optional]
    best: tuple[Path, list[str]] | None = None
    for folder in (data_dir, data_dir / subdir):
        found = {r: _find_one(folder, s) for r, s in stems.items()}
        missing = [stems[r] + ("" if stems[r].endswith(".txt") else "[.gz]")
                   for r in required if found[r] is None]
        if not missing:
            return {r: p for r, p in found.items() if p is not None}
        if best is None or len(missing) < len(best[1]):
            best = (folder, missing)
    assert best is not None
    raise DatasetError(f"{data_dir}: expected the {subdir} files in {data_dir} or "
                       f"{data_dir / subdir}; missing in {best[0]}: {', '.join(best[1])}")


def search_dataset(subdir: str, stems: dict[str, str], *,
                   optional: tuple[str, ...] = ()) -> dict[str, Path]:
    """:func:`find_dataset_files` in the first default data folder that has the dataset."""
    dirs = candidate_data_dirs()
    for _, d in dirs:
        try:
            return find_dataset_files(d, subdir, stems, optional=optional)
        except DatasetError:
            continue
    looked = "; looked in " + ", ".join(f"{o} {p}" for o, p in dirs) if dirs else ""
    raise DatasetError(_no_data_message(f"{subdir} dataset") + looked)
