"""Output folders with a manifest: every file a command writes is listed with its SHA-256.

A run folder is ``<root>/<command>-<UTC timestamp>/``. Files are written atomically (temporary
file, fsync, rename), so a crash never leaves a half-written file under its final name, and the
manifest (``manifest.json``) is rewritten after each file, so it always describes what is there.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import sys
from pathlib import Path
from typing import Any

from .golden.files import atomic_write, json_default, sha256_file

__all__ = ["RunFolder", "atomic_write", "sha256_file", "json_default"]


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


def _versions() -> dict[str, str]:
    from importlib import metadata
    out = {}
    for dist in ("spykehw", "numpy", "numba", "amaranth", "cocotb"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out
