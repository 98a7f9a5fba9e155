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
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..output import atomic_write, json_default

__all__ = ["stable_key", "canonical_json", "Store", "STAGES"]

STAGES = ("conv1", "classifier")


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal inputs give equal text on any machine."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False,
                      default=json_default)


def stable_key(obj: Any, length: int = 20) -> str:
    """SHA-256 of :func:`canonical_json`, first ``length`` hex digits."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


class Store:
    """The ``store/`` folder of a sweep (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # --- points ---------------------------------------------------------------------------

    def point_path(self, key: str) -> Path:
        return self.root / "points" / f"{key}.json"

    def has_point(self, key: str) -> bool:
        return self.point_path(key).is_file()

    def load_point(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads(self.point_path(key).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def save_point(self, key: str, result: dict[str, Any]) -> Path:
        path = self.point_path(key)
        with atomic_write(path, "w") as f:
            f.write(json.dumps(result, indent=1, sort_keys=True, default=json_default) + "\n")
        return path

    # --- shared stages --------------------------------------------------------------------

    def artifact_path(self, stage: str, key: str) -> Path:
        if stage not in STAGES:
            raise ValueError(f"stage: expected one of {STAGES}, not {stage!r}")
        return self.root / stage / f"{key}.npz"

    def save_artifact(self, stage: str, key: str, arrays: dict[str, np.ndarray],
                      meta: dict[str, Any]) -> Path:
        path = self.artifact_path(stage, key)
        with atomic_write(path, "wb") as f:
            np.savez(f, __meta__=np.frombuffer(canonical_json(meta).encode(), np.uint8), **arrays)
        return path

    def load_artifact(self, stage: str, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """``(arrays, meta)``, or ``None`` when the file is missing or unreadable."""
        path = self.artifact_path(stage, key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            meta = json.loads(arrays.pop("__meta__").tobytes().decode())
        except Exception:  # truncated by a crash of the file system, or not ours: recompute
            return None
        return arrays, meta

    def has_artifact(self, stage: str, key: str) -> bool:
        return self.artifact_path(stage, key).is_file()

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
