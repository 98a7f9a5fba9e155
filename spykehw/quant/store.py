"""The resumable results store of a sweep: finished points and cached shared stages, on disk.

Layout (under ``<sweep folder>/store/``):

``points/<key>.json``
    One file per finished point, written atomically (temporary file, fsync, rename) by the
    worker that computed it, the moment it is done. A point whose file exists is never run
    again; deleting the file makes the next run recompute that point only.
``conv1/<key>.npz``, ``classifier/<key>.npz``
    The expensive stages that several points share: trained Conv1 weights with the packed
    features (``np.packbits``) and labels, and the trained float classifier. Each is one atomic
    ``.npz`` holding its arrays and a JSON ``meta`` record; an unreadable file counts as missing.
``events.jsonl``
    Append-only log (one JSON line per run and per finished stage, fsynced) written by the
    client: which stages were computed and which came from the cache.

Keys are :func:`stable_key` hashes of everything a result depends on (dataset identity, number
formats, stage options, seed and code version), so a changed setting can never pick up a stale
result, and sweeps that share settings share results.

Every stored file is checked before it is trusted (:mod:`spykehw.stored`): it carries its kind,
its key and a content hash; a file that is truncated, not ours, made for another key (copied or
renamed) or altered is discarded (renamed to ``<name>.corrupt``) with one line naming it, and
counts as missing, so the stage or point is computed again.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..golden.stored import (
    arrays_digest,
    canonical_json,
    read_checked_json,
    read_checked_npz,
    stable_key,
    write_checked_json,
    write_checked_npz,
)
from ..output import clean_stale_temps, json_default

__all__ = ["stable_key", "canonical_json", "arrays_digest", "Store", "STAGES"]

STAGES = ("conv1", "classifier")


def _say(line: str) -> None:
    print(f"spykehw quant: {line}", file=sys.stderr, flush=True)


class Store:
    """The ``store/`` folder of a sweep (see the module docstring).

    ``warn`` receives one line per discarded file (default: printed to stderr).
    """

    def __init__(self, root: str | Path, *, warn: Callable[[str], None] = _say) -> None:
        self.root = Path(root)
        self.warn = warn
        self._verified: dict[Path, tuple[int, int]] = {}

    def clean(self) -> None:
        """Remove temporary files left by killed writers (client side, before a run)."""
        clean_stale_temps(self.root, recursive=True)

    def _known_good(self, path: Path) -> bool:
        try:
            st = path.stat()
        except FileNotFoundError:
            return False
        return self._verified.get(path) == (st.st_mtime_ns, st.st_size)

    # --- points ---------------------------------------------------------------------------

    def point_path(self, key: str) -> Path:
        return self.root / "points" / f"{key}.json"

    def has_point(self, key: str) -> bool:
        return self.load_point(key) is not None

    def load_point(self, key: str) -> dict[str, Any] | None:
        """The stored result, or ``None`` when missing or not a sound result for ``key``."""
        result = read_checked_json(self.point_path(key), kind="quant-point", key=key, warn=self.warn)
        if result is not None and result.get("key", key) != key:
            return None
        return result

    def save_point(self, key: str, result: dict[str, Any]) -> Path:
        return write_checked_json(self.point_path(key), result, kind="quant-point", key=key)

    # --- shared stages --------------------------------------------------------------------

    def artifact_path(self, stage: str, key: str) -> Path:
        if stage not in STAGES:
            raise ValueError(f"stage: expected one of {STAGES}, not {stage!r}")
        return self.root / stage / f"{key}.npz"

    def save_artifact(self, stage: str, key: str, arrays: dict[str, np.ndarray],
                      meta: dict[str, Any]) -> Path:
        return write_checked_npz(self.artifact_path(stage, key), arrays, kind=f"quant-{stage}",
                                 key=key, meta=meta)

    def load_artifact(self, stage: str, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """``(arrays, meta)``, or ``None`` when the file is missing or not a sound file of
        this stage and key (then it is discarded, saying so)."""
        path = self.artifact_path(stage, key)
        got = read_checked_npz(path, kind=f"quant-{stage}", key=key, warn=self.warn)
        if got is not None:
            st = path.stat()
            self._verified[path] = (st.st_mtime_ns, st.st_size)
        return got

    def has_artifact(self, stage: str, key: str) -> bool:
        path = self.artifact_path(stage, key)
        return self._known_good(path) or self.load_artifact(stage, key) is not None

    # --- log ------------------------------------------------------------------------------

    def log(self, event: dict[str, Any]) -> None:
        """Append one JSON line to ``events.jsonl`` and fsync it (client side only)."""
        path = self.root / "events.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(event, sort_keys=True, default=json_default) + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def events(self) -> list[dict[str, Any]]:
        path = self.root / "events.jsonl"
        if not path.is_file():
            return []
        out = []
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a crash
                continue
        return out
