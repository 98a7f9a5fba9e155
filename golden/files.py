"""Atomic file writes and content hashes: the one way the project writes a file that must never be seen half-written
(results, states, stores, caches, vectors, manifests).

Here in ``golden/`` because the golden model saves its trained states itself and imports nothing
of ours outside ``golden/``; :mod:`spykehw.output` re-exports :func:`atomic_write` and adds the
clean-up of temporary files left by killed writers (``clean_stale_temps``), which relies on the
naming below: ``.<final name>.<writer's PID>.<random>.tmp`` beside the final file -- unique per
writer, so concurrent writers of one file never share a temporary file, and the PID tells
whether the writer is still alive.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

__all__ = ["atomic_write", "TMP_SUFFIX", "clean_stale_temps", "pid_alive", "json_default", "sha256_file"]

TMP_SUFFIX = ".tmp"


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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=TMP_SUFFIX,
                               dir=path.parent)
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


def json_default(o: Any) -> Any:
    """``json.dumps(default=...)`` for what the project writes: numpy scalars and arrays,
    paths, sets (sorted, so that equal sets give equal text)."""
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


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_temps(folder: str | Path, *, recursive: bool = False) -> list[Path]:
    """Remove the temporary files of :func:`atomic_write` whose writer is dead (SIGKILL, power
    loss); files of live writers (a concurrent run) are left alone. Returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in (folder.rglob if recursive else folder.glob)(f".*{TMP_SUFFIX}"):
        parts = p.name.split(".")
        # "", <name parts...>, <pid>, <random>, "tmp"
        pid = parts[-3] if len(parts) >= 5 else ""
        if not pid.isdigit() or pid_alive(int(pid)):
            continue
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed
