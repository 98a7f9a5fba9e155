"""Output folders with a manifest: every file a command writes is listed with its SHA-256.

A run folder is ``<root>/<command>-<UTC timestamp>/``. Files are written atomically (temporary
file, fsync, rename), so a crash never leaves a half-written file under its final name, and the
manifest (``manifest.json``) is rewritten after each file, so it always describes what is there.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

__all__ = ["RunFolder", "atomic_write", "sha256_file", "json_default"]


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file beside ``path``; on success fsync and rename it onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # mkstemp makes 0600 files; give the final file the mode a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _new_folder(root: Path, name: str) -> Path:
    """Create ``root/name``, or ``name-2``, ``name-3``, ... if it exists: two runs started in
    the same second (parallel jobs) must never share a folder."""
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10_000):
        path = root / (name if n == 1 else f"{name}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"{root}: no free run folder name for {name}")


class RunFolder:
    """A folder of results plus ``manifest.json`` (command, arguments, versions, files)."""

    def __init__(self, root: str | Path, command: str, *, args: dict[str, Any] | None = None,
                 path: str | Path | None = None) -> None:
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        if path is not None:        # a folder the user named: reuse it
            self.path = Path(path)
            self.path.mkdir(parents=True, exist_ok=True)
        else:
            self.path = _new_folder(Path(root), f"{command}-{stamp}")
        self.manifest: dict[str, Any] = {
            "command": command,
            "started_utc": stamp,
            "args": args or {},
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "versions": _versions(),
            "files": {},
            "results": {},
        }
        self._save()

    def file(self, name: str) -> Path:
        return self.path / name

    def add(self, name: str, description: str) -> Path:
        """Record a file already written to ``self.file(name)``."""
        p = self.file(name)
        self.manifest["files"][name] = {"description": description, "bytes": p.stat().st_size,
                                        "sha256": sha256_file(p)}
        self._save()
        return p

    def write_json(self, name: str, obj: Any, description: str) -> Path:
        with atomic_write(self.file(name), "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True, default=json_default)
            f.write("\n")
        return self.add(name, description)

    def write_text(self, name: str, text: str, description: str) -> Path:
        with atomic_write(self.file(name), "w") as f:
            f.write(text)
        return self.add(name, description)

    def result(self, key: str, value: Any) -> None:
        self.manifest["results"][key] = value
        self._save()

    def _save(self) -> None:
        with atomic_write(self.path / "manifest.json", "w") as f:
            json.dump(self.manifest, f, indent=2, sort_keys=True, default=json_default)
            f.write("\n")


def json_default(o: Any) -> Any:
    """``json.dumps(default=...)`` for what the project writes: numpy scalars and arrays,
    paths, sets (sorted, so that equal sets give equal text)."""
    import numpy as np
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _versions() -> dict[str, str]:
    from importlib import metadata
    out = {}
    for dist in ("spykehw", "numpy", "numba", "amaranth", "cocotb"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out
