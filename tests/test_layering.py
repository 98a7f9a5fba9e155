"""Layering as DESIGN.md states it, checked on the import graph read from the source.

- ``golden/`` imports nothing of ours outside ``golden/``;
- ``rtl/`` imports ``rtl/`` and, from ``golden/``, only number formats, options, the design
  point, tables and the file/error helpers (:data:`RTL_FROM_GOLDEN`), never the model;
- ``sim/`` imports ``golden/``, ``rtl/`` and ``sim/``, and the datasets only through
  :mod:`spykehw.sim.framework.images` (:data:`ALLOWED_ARROWS`);
- the CLI and the studies (the rest of ``spykehw/``) sit on top;
- no import cycle anywhere, module-level and function-level imports alike;
- inside ``golden/``, ``rtl/`` and ``sim/`` no function-level import of our own modules (they
  hid the cycles);
- in the top tier a function-level import of our own modules only where that module loads an
  optional heavy package (:data:`OPTIONAL`: the ``hw`` extra Amaranth and cocotb, Dask,
  matplotlib), directly or through its module-level imports, so that the golden model and the
  studies run without them; with a comment saying why (one per function). Everything else is
  imported at the top of the module (the command line imports only the command it runs).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from import_graph import Import, comment_lines, cycles, read_graph

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


# Packages imported only inside the functions that need them: optional (the hw extra: Amaranth,
# cocotb; Dask) or slow to import for what does not plot (matplotlib).
OPTIONAL = frozenset({"amaranth", "cocotb", "cocotbext", "dask", "distributed", "matplotlib"})

# Function-level imports in the top tier of modules that load nothing of OPTIONAL, each with its
# reason.
LAZY_ALLOWED = {
    ("spykehw", "spykehw.api"):
        "`import spykehw` stays light (no numpy, test_api): the API's names load on first use",
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


def ours(module: str) -> bool:
    return module == "spykehw" or module.startswith("spykehw.")


def heavy_modules(edges: list[Import]) -> set[str]:
    """Our modules whose import loads a package of :data:`OPTIONAL`: by a module-level import,
    of that package or of a heavy module, in the module or in a package it sits in (``edges``
    read with ``external=True``)."""
    deps: dict[str, set[str]] = {}
    for e in edges:
        deps.setdefault(e.target, set())
        if not e.in_function:
            deps.setdefault(e.source, set()).add(e.target)
    for m, d in deps.items():
        parts = m.split(".")
        d.update(".".join(parts[:i]) for i in range(1, len(parts)) if ours(m))
    heavy = set(OPTIONAL)
    grown = True
    while grown:
        grown = False
        for m, d in deps.items():
            if m not in heavy and d & heavy:
                heavy.add(m)
                grown = True
    return {m for m in heavy if ours(m)}


def light_lazy_imports(edges: list[Import]) -> list[Import]:
    """Function-level imports in the top tier of our modules that load nothing optional."""
    heavy = heavy_modules(edges)
    return [e for e in edges if e.in_function and tier(e.source) == "top" and ours(e.target)
            and e.target not in heavy]


def lazy_import_violations(edges: list[Import], allowed=frozenset(LAZY_ALLOWED)) -> list[str]:
    return [f"{e.path.name}:{e.line}: {e.source} -> {e.target} (loads nothing optional: import "
            f"it at the top of the module)"
            for e in light_lazy_imports(edges) if (e.source, e.target) not in allowed]


def uncommented_lazy_imports(edges: list[Import], exempt=frozenset()) -> list[tuple[str, str]]:
    """``(module, message)`` of each function of the top tier that imports our modules without a
    comment saying why (on the line before the first such import, or on a line of them)."""
    spans: dict[tuple[Path, str, str], tuple[int, int]] = {}
    for e in edges:
        if e.in_function and tier(e.source) == "top" and ours(e.target) and e.source not in exempt:
            key = (e.path, e.source, e.function)
            lo, hi = spans.get(key, (e.line, e.end_line))
            spans[key] = (min(lo, e.line), max(hi, e.end_line))
    comments = {path: comment_lines(path) for path, _, _ in spans}
    return [(source, f"{path.name}:{lo}: {source}.{function}: no comment saying why it imports here")
            for (path, source, function), (lo, hi) in spans.items()
            if not comments[path] & set(range(lo - 1, hi + 1))]


@pytest.fixture(scope="module")
def graph() -> list[Import]:
    return read_graph()


@pytest.fixture(scope="module")
def full_graph() -> list[Import]:
    return read_graph(external=True)


def test_no_arrow_back(graph):
    assert layering_violations(graph) == []


def test_no_cycle(graph):
    assert cycles(graph) == []


def test_top_tier_imports_inside_functions_only_what_is_optional(full_graph):
    assert lazy_import_violations(full_graph) == []


def test_imports_inside_functions_say_why(full_graph):
    assert [message for _, message in uncommented_lazy_imports(full_graph)] == []


def test_the_allow_lists_hold_no_stale_entries(full_graph):
    # An entry that no longer excuses anything goes (and with it the chance to add one back).
    light = {(e.source, e.target) for e in light_lazy_imports(full_graph)}
    assert sorted(set(LAZY_ALLOWED) - light) == []


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


def test_the_test_fails_on_a_light_import_inside_a_function(tmp_path):
    root = _tree(tmp_path, {
        "spykehw/commands.py": ("def light():\n    from .model import f  # no need\n\n"
                                "def hardware():\n    from .generate import g  # hw extra\n"),
        "spykehw/model.py": "import numpy\nfrom .golden.state import load\n",
        "spykehw/generate.py": "from .rtl.core import Core\n",
        "golden/state.py": "import numpy\n",
        "rtl/core.py": "from amaranth import Module\n",
    })
    edges = read_graph(root, external=True)
    assert heavy_modules(edges) == {"spykehw.generate", "spykehw.rtl.core"}
    assert lazy_import_violations(edges) == [
        "commands.py:2: spykehw.commands -> spykehw.model (loads nothing optional: import it at "
        "the top of the module)"]


def test_the_test_fails_on_an_import_inside_a_function_without_a_reason(tmp_path):
    root = _tree(tmp_path, {
        "spykehw/commands.py": ("def said():\n    # hw extra: Amaranth\n    from .rtl import a\n"
                                "    from .rtl import b\n\n"
                                "def unsaid():\n    from .rtl import a\n"),
        "rtl/a.py": "import amaranth\n", "rtl/b.py": "import amaranth\n",
    })
    assert uncommented_lazy_imports(read_graph(root, external=True)) == [
        ("spykehw.commands", "commands.py:7: spykehw.commands.unsaid: no comment saying why it "
                             "imports here")]
