"""Layering as DESIGN.md states it, checked on the import graph read from the source.

- ``golden/`` imports nothing of ours outside ``golden/``;
- ``rtl/`` imports ``rtl/`` and, from ``golden/``, only number formats, options, the design
  point, tables and the file/error helpers (:data:`RTL_FROM_GOLDEN`), never the model;
- ``sim/`` imports ``golden/``, ``rtl/`` and ``sim/``, and the datasets only through
  :mod:`spykehw.sim.framework.images` (:data:`ALLOWED_ARROWS`);
- the CLI and the studies (the rest of ``spykehw/``) sit on top;
- no import cycle anywhere, module-level and function-level imports alike;
- inside ``golden/``, ``rtl/`` and ``sim/`` no function-level import of our own modules (they
  hid the cycles); the top tier imports ``rtl``/``sim`` (the optional ``hw`` extra: Amaranth,
  cocotb) and the plots (matplotlib) inside functions, so that the golden model and the studies
  run without them.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from import_graph import Import, cycles, read_graph

RTL_FROM_GOLDEN = frozenset({
    "spykehw.golden.formats", "spykehw.golden.options", "spykehw.golden.design_point",
    "spykehw.golden.fixed", "spykehw.golden.exp_lut", "spykehw.golden.errors",
    "spykehw.golden.files",
})

# Arrows outside the tier rules, each with its reason.
ALLOWED_ARROWS = {
    ("spykehw.sim.framework.images", "spykehw.data"):
        "vector generation and long runs need real images; this module is the only door",
}


def tier(module: str) -> str:
    for name in ("golden", "rtl", "sim"):
        if module == f"spykehw.{name}" or module.startswith(f"spykehw.{name}."):
            return name
    return "top"


def arrow_allowed(e: Import) -> bool:
    src, dst = tier(e.source), tier(e.target)
    if any(e.source == a and (e.target == b or e.target.startswith(b + "."))
           for a, b in ALLOWED_ARROWS):
        return True
    if src == "top":
        return True
    if src == "sim":
        return dst != "top"
    if src == "rtl":
        return dst == "rtl" or e.target in RTL_FROM_GOLDEN
    return dst == "golden"


def layering_violations(edges: list[Import]) -> list[str]:
    bad = []
    for e in edges:
        if not arrow_allowed(e):
            bad.append(f"{e.path.name}:{e.line}: {e.source} -> {e.target} (arrow back)")
        elif e.in_function and tier(e.source) != "top":
            bad.append(f"{e.path.name}:{e.line}: {e.source} -> {e.target} (import inside a function)")
    return bad


@pytest.fixture(scope="module")
def graph() -> list[Import]:
    return read_graph()


def test_no_arrow_back(graph):
    assert layering_violations(graph) == []


def test_no_cycle(graph):
    assert cycles(graph) == []


def test_graph_sees_the_known_arrows(graph):
    # The reader must find arrows at all (a reader that finds nothing passes every rule).
    pairs = {(e.source, e.target) for e in graph}
    assert ("spykehw.rtl.conv_core", "spykehw.rtl.conv_learning") in pairs
    assert ("spykehw.sim.conv.tb", "spykehw.sim.conv.packing") in pairs
    assert ("spykehw.rtl.conv_core", "spykehw.golden.formats") in pairs or \
        ("spykehw.rtl.conv_config", "spykehw.golden.formats") in pairs


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    for folder in ("golden", "rtl", "sim", "spykehw"):
        (tmp_path / folder).mkdir(exist_ok=True)
        (tmp_path / folder / "__init__.py").touch()
    return tmp_path


def test_the_test_fails_on_an_arrow_back(tmp_path):
    root = _tree(tmp_path, {
        "golden/model.py": "from ..rtl import core\n",
        "rtl/core.py": "from ..golden.formats import X\n",
        "golden/formats.py": "X = 1\n",
    })
    bad = layering_violations(read_graph(root))
    assert bad == ["model.py:1: spykehw.golden.model -> spykehw.rtl.core (arrow back)"]


def test_the_test_fails_on_rtl_using_the_model(tmp_path):
    root = _tree(tmp_path, {"rtl/core.py": "from ..golden import conv\n", "golden/conv.py": ""})
    assert len(layering_violations(read_graph(root))) == 1


def test_the_test_fails_on_a_hidden_cycle(tmp_path):
    root = _tree(tmp_path, {
        "sim/a.py": "from .b import f\n",
        "sim/b.py": "def f():\n    from .a import g\n",
    })
    edges = read_graph(root)
    assert cycles(edges) == [["spykehw.sim.a", "spykehw.sim.b"]]
    assert layering_violations(edges) == [
        "b.py:2: spykehw.sim.b -> spykehw.sim.a (import inside a function)"]


def test_type_checking_imports_are_not_arrows(tmp_path):
    root = _tree(tmp_path, {
        "golden/m.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..rtl import x\n",
        "rtl/x.py": "",
    })
    assert layering_violations(read_graph(root)) == []
