"""Output folders with a manifest: every file a command writes is listed with its SHA-256.

A run folder is ``<root>/<command>-<UTC timestamp>/``, or a folder the user names (``--out DIR``,
``--dir DIR``). Files are written atomically (a temporary file with a unique name holding the
writer's PID, fsync, rename), so a crash never leaves a half-written file under its final name,
and a temporary file left by a killed writer is removed by the next run in that folder
(:func:`clean_stale_temps`). The manifest (``manifest.json``) is rewritten after each file, so
it always describes what is there, and it tells the truth about the run: ``status`` is
``running`` until the command ends, then ``finished``, ``failed`` (with the error line) or
``interrupted`` (SIGINT/SIGTERM); :func:`close_open_folders` is called by the command line. A
reused folder keeps the files and runs of the earlier commands (``history``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from .errors import SpykehwError
from .golden.files import (
    atomic_write,
    clean_stale_temps,
    json_default,
    pid_alive,
    sha256_file,
)

__all__ = ["RunFolder", "atomic_write", "atomic_write_bytes", "sha256_file", "json_default",
           "clean_stale_temps", "close_open_folders", "OutsideFolder"]


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_write(path, "wb") as f:
        f.write(data)
    return Path(path)


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


class OutsideFolder(SpykehwError):
    """A file name that would leave its run folder (``..``, an absolute path)."""


_OPEN: list["RunFolder"] = []


class RunFolder:
    """A folder of results plus ``manifest.json`` (command, arguments, versions, files, status)."""

    def __init__(self, root: str | Path, command: str, *, args: dict[str, Any] | None = None,
                 path: str | Path | None = None) -> None:
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        previous: dict[str, Any] = {}
        if path is not None:        # a folder the user named: reuse it
            self.path = Path(path)
            if self.path.exists() and not self.path.is_dir():
                raise OutsideFolder(f"{self.path}: expected a folder, found a file")
            self.path.mkdir(parents=True, exist_ok=True)
            clean_stale_temps(self.path)
            previous = self._previous()
        else:
            self.path = _new_folder(Path(root), f"{command}-{stamp}")
        files = {k: v for k, v in previous.get("files", {}).items() if (self.path / k).is_file()}
        history = list(previous.get("history", []))
        if previous.get("command"):
            earlier = {k: previous.get(k) for k in
                       ("command", "started_utc", "finished_utc", "args", "status", "error", "results")}
            pid = previous.get("pid")
            if earlier["status"] == "running" and isinstance(pid, int) and not pid_alive(pid):
                # Its process is gone without closing the manifest: SIGKILL, power loss.
                earlier["status"] = "killed"
            history.append(earlier)
        self.manifest: dict[str, Any] = {
            "command": command,
            "started_utc": stamp,
            "args": args or {},
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "versions": _versions(),
            "status": "running",
            "pid": os.getpid(),
            "files": files,
            "results": {},
        }
        if history:
            self.manifest["history"] = history
        self._save()
        _OPEN.append(self)

    def _previous(self) -> dict[str, Any]:
        """The manifest of an earlier command in this folder (kept, not restarted); an
        unreadable one is set aside under a dated name, and the run says so."""
        m = self.path / "manifest.json"
        if not m.is_file():
            return {}
        try:
            data = json.loads(m.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            return data
        except (ValueError, UnicodeDecodeError) as e:
            aside = m.with_name(f"manifest.json.unreadable-{os.getpid()}")
            os.replace(m, aside)
            print(f"spykehw: {m}: unreadable manifest ({e}); kept as {aside.name}, "
                  "starting a new one", file=sys.stderr)
            return {}

    def file(self, name: str) -> Path:
        """``self.path / name``, refusing a name that would leave the folder."""
        p = Path(name)
        if p.is_absolute() or ".." in p.parts or not p.parts:
            raise OutsideFolder(f"{name!r}: a file name inside {self.path} was expected")
        return self.path / p

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

    def close(self, status: str = "finished", error: str | None = None) -> None:
        """Record how the command ended: ``finished``, ``failed`` (with ``error``, the line
        printed) or ``interrupted``. Called once, by the command line."""
        if self in _OPEN:
            _OPEN.remove(self)
        self.manifest["status"] = status
        self.manifest["finished_utc"] = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
        if error:
            self.manifest["error"] = error
        try:
            self._save()
        except OSError:
            pass  # the folder went away (or the disk is full): nothing better to do on the way out

    def _save(self) -> None:
        with atomic_write(self.path / "manifest.json", "w") as f:
            json.dump(self.manifest, f, indent=2, sort_keys=True, default=json_default)
            f.write("\n")


def close_open_folders(status: str, error: str | None = None) -> None:
    """Close every run folder still open in this process (the command line's last word)."""
    for folder in list(_OPEN):
        folder.close(status, error)


def _versions() -> dict[str, str]:
    from importlib import metadata
    out = {}
    for dist in ("spykehw", "numpy", "numba", "amaranth", "cocotb"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out
