"""Layering (DESIGN.md): ``golden/`` imports nothing of ours outside ``golden/``; ``rtl/`` never
imports ``sim/``. Checked on the source, so a new import that breaks it fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _our_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import of ours, relative imports resolved against the package of
    ``path`` (``spykehw.<folder>``)."""
    pkg = ["spykehw", path.parent.name]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
                names = [mod] if node.module else [f"{mod}.{a.name}" for a in node.names]
            else:
                names = [node.module or ""]
            out += [(node.lineno, n) for n in names if n.startswith("spykehw")]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("spykehw")]
    return out


def test_golden_imports_nothing_of_ours_outside_golden():
    bad = [f"{p.name}:{line} {mod}" for p in sorted((ROOT / "golden").glob("*.py"))
           for line, mod in _our_imports(p) if not mod.startswith("spykehw.golden")]
    assert not bad, bad


@pytest.mark.xfail(strict=True, reason="rtl/verilog.py finds Verilator and Yosys through "
                   "sim.toolchain (lint, stat); to move with the sim/ restructure")
def test_rtl_never_imports_sim():
    bad = [f"{p.name}:{line} {mod}" for p in sorted((ROOT / "rtl").glob("*.py"))
           for line, mod in _our_imports(p) if mod.startswith("spykehw.sim")]
    assert not bad, bad
