"""What datasets are where: the report behind ``spykehw data info``.

Counts come from the IDX headers (cheap); ``verify=True`` reads every file completely (size and
consistency checks of :mod:`spykehw.data.idx`) and compares the SHA-256 of its decompressed
content with the official value pinned in :mod:`spykehw.data.registry`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..golden.errors import SpykehwError
from .datasets import (
    EMNIST_BALANCED_STEMS,
    EMNIST_BYMERGE_STEMS,
    MNIST_STEMS,
    SAMPLE_DIR,
)
from .emnist import check_mapping
from .idx import read_idx, read_idx_data, read_idx_header
from .locate import DatasetError, candidate_data_dirs, find_dataset_files
from .registry import content_hash_of
from .splits import stratified_split

__all__ = ["DatasetInfo", "describe", "format_report"]

# name -> (subfolder, file stems, optional roles)
_KINDS = {
    "mnist": ("mnist", MNIST_STEMS, ()),
    "emnist": ("emnist", EMNIST_BYMERGE_STEMS, ("mapping",)),
    "emnist-balanced": ("emnist", EMNIST_BALANCED_STEMS, ("mapping",)),
}


@dataclass
class DatasetInfo:
    """One dataset found (or not) in one folder."""

    name: str
    folder: Path
    found: bool
    summary: str = ""
    files: dict[str, Path] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)
    error: str = ""


def _count(files: dict[str, Path], role: str) -> int:
    return read_idx_header(files[role]).shape[0]


def _summary(name: str, files: dict[str, Path], seed: int) -> str:
    if name == "emnist":
        labels = read_idx(files["labels"])
        train, test = stratified_split(labels, test_fraction=1 / 7, seed=seed)
        k = int(np.unique(labels).size)
        mapping = "; mapping file agrees" if "mapping" in files else "; no mapping file"
        return (f"{labels.size} images (bymerge test), {k} classes present -> split seed {seed}: "
                f"train {train.size}, test {test.size}{mapping}")
    n_tr, n_te = _count(files, "train_images"), _count(files, "test_images")
    return f"train {n_tr}, test {n_te}"


def _verify(files: dict[str, Path], pinned: bool) -> list[str]:
    out = []
    for role, path in files.items():
        if role == "mapping":
            continue
        digest = read_idx_data(path).sha256
        official = content_hash_of(path.name.removesuffix(".gz")) if pinned else None
        verdict = ("see the sample's README.md" if not pinned else
                   "official content" if digest == official else
                   "not pinned" if official is None else "DIFFERS from the official content")
        out.append(f"{path.name}: content sha256 {digest} ({verdict})")
    return out


def _describe_one(name: str, folder: Path, verify: bool, seed: int,
                  kind: str | None = None) -> DatasetInfo:
    subdir, stems, optional = _KINDS[kind or name]
    try:
        files = find_dataset_files(folder, subdir, stems, optional=optional)
    except SpykehwError:
        return DatasetInfo(name, folder, False)
    info = DatasetInfo(name, folder, True, files=files)
    try:
        if "mapping" in files:
            check_mapping(files["mapping"])
        info.summary = _summary(kind or name, files, seed)
        if verify:
            info.checks = _verify(files, pinned=kind is None)
    except SpykehwError as e:
        info.error = str(e)
    return info


def describe(data_dir: str | Path | None = None, *, verify: bool = False,
             seed: int = 0) -> list[tuple[str, Path, list[DatasetInfo]]]:
    """``(origin, folder, [DatasetInfo per dataset])`` for the sample and each data folder.

    ``data_dir`` replaces the default data folders (:func:`~spykehw.data.locate.candidate_data_dirs`).
    """
    report = [("embedded sample", SAMPLE_DIR,
               [_describe_one("mnist-sample", SAMPLE_DIR, verify, seed, kind="mnist")])]
    if data_dir is not None and not Path(data_dir).is_dir():
        raise DatasetError(f"{data_dir}: expected a data folder, found "
                           f"{'a file' if Path(data_dir).exists() else 'nothing'}")
    roots = [("--data-dir", Path(data_dir))] if data_dir is not None else candidate_data_dirs()
    for origin, folder in roots:
        report.append((origin, folder, [_describe_one(n, folder, verify, seed) for n in _KINDS]))
    return report


def format_report(report: list[tuple[str, Path, list[DatasetInfo]]]) -> str:
    lines = []
    for origin, folder, infos in report:
        lines.append(f"{origin}: {folder}")
        for i in infos:
            if not i.found:
                lines.append(f"  {i.name:<16} not found")
                continue
            where = sorted({str(p.parent) for p in i.files.values()})
            lines.append(f"  {i.name:<16} {i.summary or 'ERROR'}  [{', '.join(where)}]")
            if i.error:
                lines.append(f"  {'':<16} error: {i.error}")
            lines.extend(f"  {'':<16} {c}" for c in i.checks)
    if len(report) == 1:
        lines.append("no data folder: pass --data-dir DIR, set SPYKEHW_DATA_DIR, or run "
                     "`spykehw data fetch mnist|emnist`")
    return "\n".join(lines)
