"""The project's import graph, read from the source (not by importing it).

Every ``import``/``from ... import`` statement of the package's modules, at module level or inside
a function, resolved to the absolute ``spykehw...`` module it names (with ``external=True`` also
the other packages', named by their top-level name: ``amaranth``, ``numpy``). Used by
``tests/test_layering.py``; kept separate so the rules and the reading can be tested apart.
"""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Source folder -> import name (pyproject's package-dir).
PACKAGE_DIRS = {"golden": "spykehw.golden", "rtl": "spykehw.rtl", "sim": "spykehw.sim",
                "spykehw": "spykehw"}


@dataclass(frozen=True)
class Import:
    source: str      # importing module
    target: str      # imported module (ours, absolute; or another package's top-level name)
    line: int
    in_function: bool
    path: Path
    function: str = ""      # the enclosing function's qualified name ("" at module level)
    end_line: int = 0       # the statement's last line


def module_name(path: Path, root: Path = ROOT) -> tuple[str, bool]:
    """``(module, is_package)`` of a source file."""
    rel = path.relative_to(root)
    parts = PACKAGE_DIRS[rel.parts[0]].split(".") + list(rel.with_suffix("").parts[1:])
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def source_files(root: Path = ROOT) -> list[Path]:
    files = []
    for folder in PACKAGE_DIRS:
        files += sorted(p for p in (root / folder).rglob("*.py") if "__pycache__" not in p.parts)
    return files


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


class _Visitor(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool, known: set[str], path: Path,
                 external: bool) -> None:
        self.module, self.is_package, self.known, self.path = module, is_package, known, path
        self.external = external
        self.functions: list[str] = []
        self.found: list[Import] = []

    def _add(self, target: str, node: ast.AST) -> None:
        if not (target == "spykehw" or target.startswith("spykehw.")):
            if not self.external or not target:
                return
            target = target.split(".")[0]
        self.found.append(Import(self.module, target, node.lineno, bool(self.functions), self.path,
                                 ".".join(self.functions), node.end_lineno or node.lineno))

    def visit_FunctionDef(self, node) -> None:
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = _resolve(self.module, self.is_package, node.level, node.module)
        for alias in node.names:
            # "from pkg import name" names a module when pkg.name is one.
            full = f"{base}.{alias.name}"
            self._add(full if full in self.known else base, node)

    def visit_If(self, node: ast.If) -> None:
        # ``if TYPE_CHECKING:`` imports never run: not an arrow.
        test = node.test
        if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)


def read_graph(root: Path = ROOT, external: bool = False) -> list[Import]:
    """Every import of ours; with ``external``, the other packages' too."""
    files = source_files(root)
    known = {module_name(p, root)[0] for p in files}
    found: list[Import] = []
    for path in files:
        module, is_package = module_name(path, root)
        visitor = _Visitor(module, is_package, known, path, external)
        visitor.visit(ast.parse(path.read_text(), str(path)))
        found += visitor.found
    return found


def comment_lines(path: Path) -> set[int]:
    """The lines of ``path`` that hold a comment."""
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    return {t.start[0] for t in tokens if t.type == tokenize.COMMENT}


def cycles(edges: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted.

    Package ``__init__`` arrows to their own submodules are left out: importing ``a.b`` runs
    ``a/__init__`` first by Python's rules, not by a choice of ours."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        if e.target.startswith(e.source + "."):
            continue
        graph.setdefault(e.source, set()).add(e.target)
        graph.setdefault(e.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out
