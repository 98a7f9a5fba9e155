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

Every stored file is checked before it is trusted: a point carries ``stored = {key, sha256}``
(the SHA-256 of its canonical JSON without that field), a stage file carries its key, its stage
and the SHA-256 of its arrays in its ``meta``. A file that is truncated, not ours, made for
another key (copied or renamed) or altered is discarded (renamed to ``<name>.corrupt``) with one
line naming it, and counts as missing, so the stage or point is computed again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..output import atomic_write, clean_stale_temps, json_default

__all__ = ["stable_key", "canonical_json", "arrays_digest", "Store", "STAGES"]

STAGES = ("conv1", "classifier")


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal inputs give equal text on any machine."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False,
                      default=json_default)


def stable_key(obj: Any, length: int = 20) -> str:
    """SHA-256 of :func:`canonical_json`, first ``length`` hex digits."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over each array's name, dtype, shape and bytes (sorted by name)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


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

    def _discard(self, path: Path, why: str) -> None:
        self._verified.pop(path, None)
        try:
            os.replace(path, path.with_name(path.name + ".corrupt"))
        except FileNotFoundError:
            return
        self.warn(f"{path}: {why}; discarded (kept as {path.name}.corrupt), it will be recomputed")

    def _known_good(self, path: Path) -> bool:
        try:
            st = path.stat()
        except FileNotFoundError:
            return False
        return self._verified.get(path) == (st.st_mtime_ns, st.st_size)

    def _mark_good(self, path: Path) -> None:
        st = path.stat()
        self._verified[path] = (st.st_mtime_ns, st.st_size)

    # --- points ---------------------------------------------------------------------------

    def point_path(self, key: str) -> Path:
        return self.root / "points" / f"{key}.json"

    def has_point(self, key: str) -> bool:
        return self.load_point(key) is not None

    def load_point(self, key: str) -> dict[str, Any] | None:
        """The stored result, or ``None`` when missing or not a sound result for ``key``."""
        path = self.point_path(key)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:
            self._discard(path, f"unreadable ({e})")
            return None
        try:
            result = json.loads(text)
            stored = result.pop("stored")
            body = canonical_json(result)
        except (ValueError, TypeError, AttributeError, KeyError):
            self._discard(path, "not a stored point (truncated or not JSON)")
            return None
        if not isinstance(stored, dict) or stored.get("key") != key or result.get("key", key) != key:
            self._discard(path, f"holds the point of key {stored.get('key') if isinstance(stored, dict) else None!r}, "
                                f"not {key!r}")
            return None
        if hashlib.sha256(body.encode()).hexdigest() != stored.get("sha256"):
            self._discard(path, "content does not match its SHA-256")
            return None
        return result

    def save_point(self, key: str, result: dict[str, Any]) -> Path:
        path = self.point_path(key)
        result = {k: v for k, v in result.items() if k != "stored"}
        # Round-trip through JSON first so the hash is of exactly what a reader will see.
        result = json.loads(canonical_json(result))
        stored = {"key": key, "sha256": hashlib.sha256(canonical_json(result).encode()).hexdigest()}
        with atomic_write(path, "w") as f:
            f.write(json.dumps({**result, "stored": stored}, indent=1, sort_keys=True,
                               default=json_default) + "\n")
        return path

    # --- shared stages --------------------------------------------------------------------

    def artifact_path(self, stage: str, key: str) -> Path:
        if stage not in STAGES:
            raise ValueError(f"stage: expected one of {STAGES}, not {stage!r}")
        return self.root / stage / f"{key}.npz"

    def save_artifact(self, stage: str, key: str, arrays: dict[str, np.ndarray],
                      meta: dict[str, Any]) -> Path:
        path = self.artifact_path(stage, key)
        meta = {**meta, "stored": {"key": key, "stage": stage, "arrays_sha256": arrays_digest(arrays)}}
        with atomic_write(path, "wb") as f:
            np.savez(f, __meta__=np.frombuffer(canonical_json(meta).encode(), np.uint8), **arrays)
        return path

    def load_artifact(self, stage: str, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """``(arrays, meta)``, or ``None`` when the file is missing or not a sound file of
        this stage and key (then it is discarded, saying so)."""
        path = self.artifact_path(stage, key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            meta = json.loads(arrays.pop("__meta__").tobytes().decode())
            stored = meta.pop("stored")
            if not isinstance(stored, dict):
                raise ValueError("no stored record")
        except Exception as e:  # truncated by a crash of the file system, or not ours: recompute
            self._discard(path, f"unreadable {stage} stage file ({type(e).__name__})")
            return None
        if stored.get("key") != key or stored.get("stage") != stage:
            self._discard(path, f"holds the {stored.get('stage', '?')} stage of key "
                                f"{stored.get('key')!r}, not {stage} {key!r}")
            return None
        if stored.get("arrays_sha256") != arrays_digest(arrays):
            self._discard(path, "arrays do not match their SHA-256")
            return None
        self._mark_good(path)
        return arrays, meta

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
