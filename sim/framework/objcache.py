"""A compiler wrapper for Verilator's ``OBJCACHE`` hook that caches its C++ runtime objects.

Most of a cocotb Verilator build is compiling Verilator's runtime (``verilated*.cpp`` from
``$VERILATOR_ROOT/include``), which does not depend on the design. The Makefile Verilator
generates runs every compile as ``$(OBJCACHE) $(CXX) ...``; :mod:`spykehw.sim.framework.runners` sets
``OBJCACHE`` to ``python -m spykehw.sim.framework.objcache``, so this module sees each compile command:

- a source under ``$VERILATOR_ROOT/include``: the object (and its ``-MMD`` dependency file) is
  taken from the cache when the command line (output path aside), the source and every runtime
  header, and the compiler binary are unchanged; otherwise it is compiled and stored;
- anything else (the design, cocotb's ``verilator.cpp``, which includes the design's header):
  compiled as usual.

The cache lives in ``$SPYKEHW_CACHE_DIR`` (default ``$XDG_CACHE_HOME/spykehw`` or
``~/.cache/spykehw``) under ``verilator-objects/``; entries are written atomically, so parallel
builds (pytest-xdist) can share it. Deleting the folder is always safe.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["cache_root", "main"]


def cache_root() -> Path:
    env = os.environ.get("SPYKEHW_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "spykehw"


def _runtime_source(argv: list[str]) -> tuple[Path, Path] | None:
    """``(source, output)`` when this is ``-c -o out.o <runtime>.cpp``, else None."""
    root = os.environ.get("VERILATOR_ROOT")
    if not root or "-c" not in argv or "-o" not in argv:
        return None
    i = argv.index("-o")
    if i + 1 >= len(argv):
        return None
    out = Path(argv[i + 1])
    sources = [a for a in argv[1:] if a.endswith(".cpp")]
    if len(sources) != 1 or out.suffix != ".o":
        return None
    src = Path(sources[0]).resolve()
    include = (Path(root) / "include").resolve()
    return (src, out) if src.parent in (include, include / "vltstd") else None


def _key(argv: list[str], src: Path, out: Path) -> str:
    h = hashlib.sha256()
    compiler = shutil.which(argv[0]) or argv[0]
    st = os.stat(compiler)
    h.update(f"{compiler}|{st.st_size}|{st.st_mtime_ns}\0".encode())
    h.update("\0".join(out.name if a == str(out) else a for a in argv).encode())
    h.update(src.read_bytes())
    for folder in (src.parent, src.parent / "vltstd"):
        if folder.is_dir():
            for f in sorted(folder.iterdir()):
                if f.is_file():
                    s = f.stat()
                    h.update(f"{f.name}|{s.st_size}|{s.st_mtime_ns}\0".encode())
    return h.hexdigest()[:24]


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m spykehw.sim.framework.objcache COMPILER ARGS...", file=sys.stderr)
        return 2
    found = _runtime_source(argv)
    if found is None:
        return subprocess.call(argv)
    src, out = found
    dep = out.with_suffix(".d")
    try:
        entry = cache_root() / "verilator-objects" / _key(argv, src, out)
    except OSError:
        return subprocess.call(argv)
    if (entry / "obj.o").is_file():
        shutil.copyfile(entry / "obj.o", out)
        if (entry / "obj.d").is_file():
            shutil.copyfile(entry / "obj.d", dep)
        return 0
    rc = subprocess.call(argv)
    if rc == 0:
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=entry.parent))
            shutil.copyfile(out, tmp / "obj.o")
            if dep.is_file():
                shutil.copyfile(dep, tmp / "obj.d")
            try:
                tmp.rename(entry)               # atomic; a parallel build may have won
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            pass                                # an unwritable cache is no error
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
