#!/usr/bin/env python3
"""Mutation testing of the integer golden model's arithmetic (``make mutation``; not in CI).

Why our own runner: mutmut 3 skips decorated functions, and here that is every ``@njit`` kernel,
the ``@property`` accumulator widths and the ``@lru_cache`` exp LUT. This runner mutates any
code, decorated or not.

How one mutant runs
    1. The mutant is one edit of the source text at an AST node's position (so line numbers,
       comments and the rest of the file stay as they are): a comparison (``<`` <-> ``<=``,
       ``>`` <-> ``>=``, ``==`` <-> ``!=``), an arithmetic or bitwise operator (``+`` <-> ``-``,
       ``*`` -> ``+``, ``//`` -> ``*``, ``%`` -> ``//``, ``<<`` <-> ``>>``, ``&`` <-> ``|``,
       ``^`` -> ``|``), an integer constant ``n -> n + 1``, ``and`` <-> ``or``, a dropped ``not``
       or unary minus. Error messages (``raise`` statements, f-strings) and docstrings are left
       alone.
    2. It is written into a private copy of ``golden/`` inside an overlay package tree
       (``<work>/overlay/spykehw``: the real ``spykehw/``, ``rtl/``, ``sim/``, ``vectors/`` by
       symlink, ``golden/`` copied) that ``PYTHONPATH`` puts before the editable install; the
       working tree is never modified, so concurrent edits and commits are safe.
    3. numba's cache (``NUMBA_CACHE_DIR``) is a copy of the cache warmed by the unmutated run
       with every entry of the mutated module and of every golden module importing it
       (transitively) removed, so every kernel that can see the mutant is compiled from it.
       Bytecode is never written (``PYTHONDONTWRITEBYTECODE``), so no stale ``.pyc`` either.
    4. The module's tests run (``-x -q -p no:xdist``, a fixed hypothesis seed) with a timeout
       (``--timeout-factor`` times the unmutated run, at least 120 s).
Result per mutant: ``killed`` (tests fail), ``survived``, ``timeout`` (counts as killed) or
``equivalent`` (survived, and listed in ``EQUIVALENT`` below with a reason).

Usage::

    .venv/bin/python tools/mutate.py --sample 150 --seed 1 --out mutation-report.json
    .venv/bin/python tools/mutate.py --list                 # every mutant, no run
    .venv/bin/python tools/mutate.py --rerun mutation-report.json   # re-run its survivors
    .venv/bin/python tools/mutate.py --rescore mutation-report.json # re-apply EQUIVALENT

Score = killed (incl. timeouts) / (mutants - equivalent).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "golden"

MODULES = ["fixed", "formats", "softmax_int", "exp_lut", "classifier_int", "ranking"]

# The files written against the survivors of the first run (issue 16) run last: a mutant whose
# first failing test is in one of them was not killed by the tests that existed before, so one
# run gives the score before and after them.
NEW_TESTS = ("tests/test_arith_exact.py", "tests/test_arith_properties.py")

# Tests that exercise each module and run in seconds (the slow end-to-end ones are deselected:
# they train a classifier or write vectors and add nothing to these modules' arithmetic).
_CLASSIFIER_FAST = "tests/test_classifier_int.py"
_ARITH_TESTS = list(NEW_TESTS)
TESTS: dict[str, list[str]] = {
    "fixed": ["tests/test_fixed.py", _CLASSIFIER_FAST, *_ARITH_TESTS],
    "formats": [_CLASSIFIER_FAST, "tests/test_config_names.py", *_ARITH_TESTS],
    "softmax_int": [_CLASSIFIER_FAST, *_ARITH_TESTS],
    "exp_lut": [_CLASSIFIER_FAST, *_ARITH_TESTS],
    "classifier_int": [_CLASSIFIER_FAST, *_ARITH_TESTS],
    "ranking": ["tests/test_encoding_ranking.py", *_ARITH_TESTS],
}
DESELECT = ("not (every_preset_keeps or int_accuracy_tracks or qat_ or "
            "changed_preset_does_not_overwrite or formats_only_share_the_name or "
            "vectors_never_write_outside)")

# Mutants that cannot change any observable result, keyed by "module:line:col:edit", with the
# reason. Mutants of type annotations are equivalent by rule (``equivalence``).
EQUIVALENT: dict[str, str] = {
    'ranking:129:23:not->(dropped)': 'always two radix passes: in_order flips twice and ends True either way',
    'ranking:107:19:-->+': 'radix pre-sort of rank_order: only speed (its bucket window); it still yields a permutation and the insertion sort with the exact comparison makes the order exact',
    'ranking:108:16:0->1': 'radix pre-sort of rank_order: only speed (its bucket window); it still yields a permutation and the insertion sort with the exact comparison makes the order exact',
    'ranking:111:20:0->1': 'radix pre-sort of rank_order: only speed (its bucket window); it still yields a permutation and the insertion sort with the exact comparison makes the order exact',
    'ranking:109:35:>>-><<': 'radix pre-sort of rank_order: only speed (its bucket window); it still yields a permutation and the insertion sort with the exact comparison makes the order exact',
    'ranking:109:56:!=->==': 'radix pre-sort of rank_order: only speed (its bucket window); it still yields a permutation and the insertion sort with the exact comparison makes the order exact',
    'ranking:109:25:and->or': 'radix pre-sort of rank_order: only speed (its bucket window); it still yields a permutation and the insertion sort with the exact comparison makes the order exact',
    'ranking:82:9:8->9': 'radix pre-sort of rank_order: only speed (its bucket window); it still yields a permutation and the insertion sort with the exact comparison makes the order exact (the count array is sized from _DIGIT)',
    'ranking:110:18:+=->-=': 'radix pre-sort of rank_order: only speed; width -1 gives shift 0 (the loop stops: a shift by 2**64-1 is 0 here), still a permutation',
    'ranking:113:41:1->2': 'radix pre-sort of rank_order: only speed; mask 254 gives coarser buckets, still a permutation inside the count array, and the insertion sort makes the order exact',
    'ranking:109:22:64->65': 'span < 2**63 (positive float64 bit patterns): the loop stops before width 63',
    'ranking:58:23:>->>=': 'inside `if h1 != h2`: equality cannot happen there',
    'ranking:60:23:>->>=': 'inside `if l1 != l2`: equality cannot happen there',
    'ranking:58:15:1->2': 'only the sign of the comparison is used (s > 0, s == 0)',
    'ranking:58:34:1->2': 'only the sign of the comparison is used (s > 0, s == 0)',
    'ranking:60:15:1->2': 'only the sign of the comparison is used (s > 0, s == 0)',
    'ranking:60:34:1->2': 'only the sign of the comparison is used (s > 0, s == 0)',
    'ranking:67:11:1->2': 'only the sign of the comparison is used (s > 0, s == 0)',
    'ranking:67:29:1->2': 'only the sign of the comparison is used (s > 0, s == 0)',
    'formats:211:48:>=->>': 'gap << softmax_bits is even (softmax_bits >= 1), 47 * (2**W - 1) is odd: never equal',
    'formats:202:17:*->+': 'the STDP product check cannot fail in the validated ranges (2*24 + 2 + 8 = 58 <= 62): weaker still',
    'formats:202:21:+->-': 'the STDP product check cannot fail in the validated ranges (2*24 + 2 + 8 = 58 <= 62): weaker still',
    'formats:202:23:2->3': 'the STDP product check cannot fail in the validated ranges (2*24 + 2 + 8 = 58 <= 62): 59 <= 62',
    'formats:202:25:+->-': 'the STDP product check cannot fail in the validated ranges (2*24 + 2 + 8 = 58 <= 62): weaker still',
    'formats:202:31:8->9': 'the STDP product check cannot fail in the validated ranges (2*24 + 2 + 8 = 58 <= 62): 59 <= 62',
    'formats:202:75:<=-><': 'the STDP product check cannot fail in the validated ranges (2*24 + 2 + 8 = 58 <= 62): 58 < 62',
    'formats:202:78:62->63': 'the STDP product check cannot fail in the validated ranges (2*24 + 2 + 8 = 58 <= 62): 58 <= 63',
    'formats:210:19:>->>=': 'EXP_LUT[0] - EXP_LUT[1] >= 2 for every exp_lut_bits >= 2 ([3, 1] at 2 bits)',
    'formats:210:21:0->1': 'EXP_LUT[0] - EXP_LUT[1] >= 2 for every exp_lut_bits >= 2 ([3, 1] at 2 bits)',
    'fixed:79:15:<-><=': 'n == 32 gives k = 32 on both branches',
    'fixed:79:17:32->33': 'n == 32 gives k = 32 on both branches',
    'fixed:43:38:2->3': 'the rounding codes are used only by name (ROUNDING_CODES, the constants); any code other than TRUNCATE and HALF_UP is stochastic',
}


def equivalence(key: str, kind: str) -> str:
    """Why the mutant is equivalent ("" if it is not known to be)."""
    if kind == "annotation":
        return "type annotation: never evaluated (from __future__ import annotations)"
    return EQUIVALENT.get(key, "")

CMP_SWAP = {ast.Lt: "<=", ast.LtE: "<", ast.Gt: ">=", ast.GtE: ">", ast.Eq: "!=", ast.NotEq: "=="}
CMP_TEXT = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
BIN_SWAP = {ast.Add: ("+", "-"), ast.Sub: ("-", "+"), ast.Mult: ("*", "+"),
            ast.FloorDiv: ("//", "*"), ast.Mod: ("%", "//"), ast.LShift: ("<<", ">>"),
            ast.RShift: (">>", "<<"), ast.BitAnd: ("&", "|"), ast.BitOr: ("|", "&"),
            ast.BitXor: ("^", "|")}


@dataclass
class Mutant:
    module: str
    line: int
    col: int
    end_line: int
    end_col: int
    old: str       # the replaced source text
    new: str
    kind: str
    function: str

    @property
    def key(self) -> str:
        return f"{self.module}:{self.line}:{self.col}:{self.old.strip()}->{self.new.strip() or '(dropped)'}"


def _offsets(src: str) -> list[int]:
    out, pos = [], 0
    for line in src.splitlines(keepends=True):
        out.append(pos)
        pos += len(line)
    out.append(pos)
    return out


def _find_op(src: str, offs: list[int], a: ast.AST, b: ast.AST, op: str) -> tuple[int, int] | None:
    """Absolute position of the operator text ``op`` between the end of ``a`` and the start of
    ``b`` (outside comments and parentheses' contents are not possible there)."""
    start = offs[a.end_lineno - 1] + a.end_col_offset
    end = offs[b.lineno - 1] + b.col_offset
    seg = src[start:end]
    seg_nocomment = re.sub(r"#[^\n]*", lambda m: " " * len(m.group()), seg)
    pat = re.escape(op) if op.isalpha() is False else rf"\b{op}\b"
    for m in re.finditer(pat, seg_nocomment):
        # make sure "<" is not part of "<<" or "<=" etc.
        i, j = m.start(), m.end()
        before = seg_nocomment[i - 1] if i > 0 else " "
        after = seg_nocomment[j] if j < len(seg_nocomment) else " "
        if not op.isalpha() and (before in "<>=!*/&|^%+-" or after in "<>=*/&|^%"):
            continue
        return start + i, start + j
    return None


def _pos(offs: list[int], abs_pos: int) -> tuple[int, int]:
    import bisect
    line = bisect.bisect_right(offs, abs_pos) - 1
    return line + 1, abs_pos - offs[line]


_SOURCES: dict[str, str] = {}


def source(module: str) -> str:
    """The module's text as first read: a run mutates one snapshot even if the tree changes."""
    if module not in _SOURCES:
        _SOURCES[module] = (GOLDEN / f"{module}.py").read_text()
    return _SOURCES[module]


def mutants_of(module: str) -> list[Mutant]:
    src = source(module)
    tree = ast.parse(src)
    offs = _offsets(src)
    skip: set[int] = set()
    parents: dict[int, str] = {}

    def mark(node: ast.AST) -> None:
        for n in ast.walk(node):
            skip.add(id(n))

    for node in ast.walk(tree):
        if isinstance(node, (ast.Raise, ast.JoinedStr, ast.Assert)):
            mark(node)
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Module)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                mark(body[0])
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                for t in node.targets):
            mark(node)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_check":
            # the message (third argument) is text, not arithmetic
            if len(node.args) >= 3:
                mark(node.args[2])
    annotation: set[int] = set()  # never evaluated (``from __future__ import annotations``)
    for node in ast.walk(tree):
        ann = []
        if isinstance(node, ast.arg) and node.annotation is not None:
            ann.append(node.annotation)
        if isinstance(node, ast.FunctionDef) and node.returns is not None:
            ann.append(node.returns)
        if isinstance(node, ast.AnnAssign):
            ann.append(node.annotation)
        for a in ann:
            annotation.update(id(n) for n in ast.walk(a))
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.ClassDef)):
            for n in ast.walk(fn):
                parents[id(n)] = fn.name  # innermost wins: ast.walk is breadth-first

    out: list[Mutant] = []

    def add(a: int, b: int, new: str, kind: str, node: ast.AST) -> None:
        l1, c1 = _pos(offs, a)
        l2, c2 = _pos(offs, b)
        if id(node) in annotation:
            kind = "annotation"
        out.append(Mutant(module, l1, c1, l2, c2, src[a:b], new, kind, parents.get(id(node), "<module>")))

    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Compare):
            left = node.left
            for op, right in zip(node.ops, node.comparators):
                if type(op) in CMP_SWAP:
                    p = _find_op(src, offs, left, right, CMP_TEXT[type(op)])
                    if p:
                        add(*p, CMP_SWAP[type(op)], "compare", node)
                left = right
        elif isinstance(node, ast.BinOp) and type(node.op) in BIN_SWAP:
            old, new = BIN_SWAP[type(node.op)]
            p = _find_op(src, offs, node.left, node.right, old)
            if p:
                add(*p, new, "binop", node)
        elif isinstance(node, ast.AugAssign) and type(node.op) in BIN_SWAP:
            old, new = BIN_SWAP[type(node.op)]
            p = _find_op(src, offs, node.target, node.value, old + "=")
            if p:
                add(*p, new + "=", "augassign", node)
        elif isinstance(node, ast.BoolOp):
            word = "and" if isinstance(node.op, ast.And) else "or"
            for a, b in zip(node.values, node.values[1:]):
                p = _find_op(src, offs, a, b, word)
                if p:
                    add(*p, "or" if word == "and" else "and", "boolop", node)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
            a = offs[node.lineno - 1] + node.col_offset
            b = offs[node.operand.lineno - 1] + node.operand.col_offset
            if src[b - 1] == "(":  # keep the operand's parentheses
                b -= 1
            add(a, b, "", "drop-not" if isinstance(node.op, ast.Not) else "drop-minus", node)
        elif (isinstance(node, ast.Constant) and type(node.value) is int):
            a = offs[node.lineno - 1] + node.col_offset
            b = offs[node.end_lineno - 1] + node.end_col_offset
            add(a, b, repr(node.value + 1), "constant", node)
    out.sort(key=lambda m: (m.line, m.col, m.new))
    return out


def all_mutants(modules: list[str]) -> list[Mutant]:
    return [m for mod in modules for m in mutants_of(mod)]


def apply(src: str, m: Mutant) -> str:
    offs = _offsets(src)
    a = offs[m.line - 1] + m.col
    b = offs[m.end_line - 1] + m.end_col
    assert src[a:b] == m.old, (m, src[a:b])
    return src[:a] + m.new + src[b:]


# ----- the overlay package tree and numba's cache ----------------------------------------------

def build_overlay(work: Path) -> Path:
    ov = work / "overlay" / "spykehw"
    ov.mkdir(parents=True)
    for entry in (ROOT / "spykehw").iterdir():
        if entry.name != "__pycache__":
            (ov / entry.name).symlink_to(entry)
    shutil.copytree(GOLDEN, ov / "golden", ignore=shutil.ignore_patterns("__pycache__"))
    for module, text in _SOURCES.items():
        (ov / "golden" / f"{module}.py").write_text(text)
    for d in ("rtl", "sim", "vectors"):
        (ov / d).symlink_to(ROOT / d)
    return ov / "golden"


def _kernel_visible(src: str) -> set[str]:
    """Names a numba kernel elsewhere could compile into itself: ``@njit`` functions and
    module-level integer constants."""
    tree = ast.parse(src)
    out = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(
                "njit" in ast.unparse(d) for d in node.decorator_list):
            out.add(node.name)
        if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Constant, ast.Tuple)):
            out.update(t.id for t in node.targets if isinstance(t, ast.Name))
            out.update(e.id for t in node.targets if isinstance(t, ast.Tuple)
                       for e in t.elts if isinstance(e, ast.Name))
    return out


def importers(module: str) -> set[str]:
    """``module`` and every golden module whose numba kernels may have compiled code or
    constants of it in: it imports a kernel-visible name of it (transitively)."""
    srcs = {p.stem: p.read_text() for p in GOLDEN.glob("*.py")}
    imports: dict[str, dict[str, set[str]]] = {}
    for name, src in srcs.items():
        imports[name] = {}
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                imports[name].setdefault(node.module, set()).update(a.name for a in node.names)
    out, todo = {module}, [module]
    while todo:
        cur = todo.pop()
        visible = _kernel_visible(srcs[cur])
        for name, imp in imports.items():
            if name not in out and imp.get(cur, set()) & visible:
                out.add(name)
                todo.append(name)
    return out


def fresh_cache(base: Path, dest: Path, module: str) -> None:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(base, dest)
    stems = importers(module)
    for f in dest.rglob("*"):
        if f.is_file() and f.name.split(".", 1)[0] in stems and f.suffix in (".nbi", ".nbc"):
            f.unlink()


def test_files(module: str) -> list[str]:
    return [t for t in TESTS[module] if (ROOT / t).exists()]


def run_tests(module: str, work: Path, cache: Path, timeout: float,
              tests: list[str]) -> tuple[str, float, str]:
    tests = [str(ROOT / t) for t in tests]
    env = dict(os.environ, PYTHONPATH=str(work / "overlay"), NUMBA_CACHE_DIR=str(cache),
               PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
           "--hypothesis-seed=0", "-k", DESELECT, *tests]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=work / "run", env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return "timeout", time.monotonic() - t0, ""
    dt = time.monotonic() - t0
    if proc.returncode == 0:
        return "survived", dt, ""
    if proc.returncode == 5:  # nothing collected: treat as an error of the runner
        raise RuntimeError(f"no tests collected for {module}:\n{out[-2000:]}")
    failed = [ln for ln in out.splitlines() if ln.startswith(("FAILED", "ERROR"))]
    if failed:
        return "killed", dt, failed[0][:300]
    # a crash (numba code without bounds checks): faulthandler names the test's file and line
    frames = re.findall(r'File "[^"]*/(tests/[\w/]+\.py)", line \d+ in (\w+)', out)
    if frames:
        return "killed", dt, f"CRASH {frames[0][0]}::{frames[0][1]}"
    return "killed", dt, out.strip().splitlines()[-1][:300]


def killed_by(detail: str) -> str:
    m = re.search(r"(tests/[\w/]+\.py)", detail)
    return m.group(1) if m else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--modules", default=",".join(MODULES))
    ap.add_argument("--sample", type=int, default=150, help="mutants drawn (0: all)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="mutation-report.json")
    ap.add_argument("--list", action="store_true", help="print the mutants and exit")
    ap.add_argument("--rerun", help="a report: re-run its survivors (not the equivalent ones), merge")
    ap.add_argument("--timeout-factor", type=float, default=3.0)
    ap.add_argument("--minutes", type=float, default=0,
                    help="start no mutant after this many minutes (0: no limit); the report "
                         "then covers the mutants run, still a random sample")
    ap.add_argument("--rescore", help="a report: re-apply the equivalence reasons, rewrite it")
    args = ap.parse_args(argv)
    if args.rescore:
        report = json.loads(Path(args.rescore).read_text())
        rows = rescore(report["mutants"], {m.key: m for m in all_mutants(report["modules"])})
        report.update(summary=score(rows), mutants=rows)
        Path(args.rescore).write_text(json.dumps(report, indent=1) + "\n")
        print(json.dumps(report["summary"], indent=1))
        for r in rows:
            if r["status"] == "survived":
                print(f"survived: {r['key']} in {r['function']}")
        return 0

    modules = args.modules.split(",")
    mutants = all_mutants(modules)
    previous: dict[str, dict] = {}
    if args.rerun:
        report = json.loads(Path(args.rerun).read_text())
        previous = {r["key"]: r for r in report["mutants"]}
        todo_keys = {k for k, r in previous.items()
                     if r["status"] == "survived" and not equivalence(k, r["kind"])}
        by_key = {m.key: m for m in mutants}
        missing = todo_keys - set(by_key)
        if missing:
            print(f"note: {len(missing)} mutants of the report no longer apply: {sorted(missing)}")
        sample = [by_key[k] for k in sorted(todo_keys) if k in by_key]
        seed, size = report["seed"], report["sample"]
    else:
        rng = random.Random(args.seed)
        # random order: a run stopped by --deadline is still a random sample
        sample = rng.sample(mutants, args.sample if 0 < args.sample < len(mutants) else len(mutants))
        seed, size = args.seed, len(sample)
    if args.list:
        for m in sample:
            print(f"{m.key:60s} {m.kind:10s} {m.function}")
        print(f"{len(sample)} of {len(mutants)} mutants")
        return 0

    # fixed when the run starts (tests written meanwhile do not change the run)
    tests = {mod: test_files(mod) for mod in modules}
    work = Path(tempfile.mkdtemp(prefix="spykehw-mutate-"))
    (work / "run").mkdir()
    results: dict[str, dict] = {}
    try:
        golden = build_overlay(work)
        base_cache = work / "numba-base"
        base_cache.mkdir()
        baseline: dict[str, float] = {}
        for mod in sorted({m.module for m in sample}):
            status, dt, detail = run_tests(mod, work, base_cache, 3600, tests[mod])
            if status != "survived":
                raise SystemExit(f"the unmutated tests of {mod} fail: {detail}")
            baseline[mod] = dt  # with a cold numba cache: an upper bound of a mutant's run
            print(f"baseline {mod}: {dt:.1f} s", flush=True)
        t_start = time.monotonic()
        for i, m in enumerate(sample, 1):
            if args.minutes and time.monotonic() - t_start > 60 * args.minutes:
                print(f"time limit: {i - 1} of {len(sample)} mutants run", flush=True)
                break
            target = golden / f"{m.module}.py"
            original = source(m.module)
            target.write_text(apply(original, m))
            cache = work / "numba-mutant"
            fresh_cache(base_cache, cache, m.module)
            try:
                status, dt, detail = run_tests(m.module, work, cache,
                                               max(120.0, args.timeout_factor * baseline[m.module]),
                                               tests[m.module])
            finally:
                target.write_text(original)
            if status == "survived" and equivalence(m.key, m.kind):
                status = "equivalent"
            results[m.key] = dict(asdict(m), key=m.key, status=status, seconds=round(dt, 1),
                                  detail=detail, killed_by=killed_by(detail) if status == "killed" else "",
                                  reason=equivalence(m.key, m.kind))
            print(f"[{i}/{len(sample)}] {status:10s} {m.key} ({m.function}, {dt:.0f} s)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    merged = dict(previous)
    merged.update(results)
    rows = rescore(list(merged.values()), {m.key: m for m in mutants})
    summary = score(rows)
    out = dict(seed=seed, sample=size, run=len(merged), total_mutants=len(mutants), modules=modules, tests=tests,
               command=" ".join(["tools/mutate.py", *(argv if argv is not None else sys.argv[1:])]),
               summary=summary, mutants=rows)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    for r in rows:
        if r["status"] == "survived":
            print(f"survived: {r['key']} in {r['function']}")
    return 0


def rescore(rows: list[dict], by_key: dict[str, Mutant]) -> list[dict]:
    """Re-apply the equivalence reasons (they may have been added since the report was
    written)."""
    rows = sorted(rows, key=lambda r: (r["module"], r["line"], r["col"]))
    for r in rows:
        m = by_key.get(r["key"])
        if m is not None:
            r["kind"] = m.kind
        if r["status"] in ("survived", "equivalent"):
            reason = equivalence(r["key"], r["kind"])
            r["status"] = "equivalent" if reason else "survived"
            r["reason"] = reason
    return rows


def score(rows: list[dict]) -> dict:
    def count(rs: list[dict]) -> dict:
        n = {s: sum(r["status"] == s for r in rs) for s in ("killed", "timeout", "survived", "equivalent")}
        denom = len(rs) - n["equivalent"]
        n["mutants"] = len(rs)
        n["score_all"] = round((n["killed"] + n["timeout"]) / len(rs), 3) if rs else None
        n["score_non_equivalent"] = round((n["killed"] + n["timeout"]) / denom, 3) if denom else None
        return n
    before = [dict(r, status="survived") if r.get("killed_by") in NEW_TESTS else r for r in rows]
    out = {"all": count(rows), "before_new_tests": count(before)}
    for mod in sorted({r["module"] for r in rows}):
        out[mod] = count([r for r in rows if r["module"] == mod])
    return out


if __name__ == "__main__":
    sys.exit(main())
