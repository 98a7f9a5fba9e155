"""Atomic file writes: the one way the project writes a file that must never be seen half-written
(results, states, stores, caches, vectors, manifests).

Here in ``golden/`` because the golden model saves its trained states itself and imports nothing
of ours outside ``golden/``; :mod:`spykehw.output` re-exports :func:`atomic_write` and adds the
clean-up of temporary files left by killed writers (``clean_stale_temps``), which relies on the
naming below: ``.<final name>.<writer's PID>.<random>.tmp`` beside the final file -- unique per
writer, so concurrent writers of one file never share a temporary file, and the PID tells
whether the writer is still alive.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

__all__ = ["atomic_write", "TMP_SUFFIX"]

TMP_SUFFIX = ".tmp"


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
