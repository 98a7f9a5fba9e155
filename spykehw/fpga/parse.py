"""Read what Yosys and nextpnr wrote: cell counts, memory mapping, utilisation, Fmax, critical path.

Inputs are the files the flow keeps in the run folder:

* ``stat.json`` (Yosys ``stat -json`` after technology mapping): cells per module, the block
  modules kept apart from the wrapper (``keep_hierarchy``);
* ``synth.log``: the ``memory_libmap`` lines (``mapping memory <module>.<memory> via <cell>``)
  and the ``memory_map`` lines (``Mapping memory \\<memory> in module \\<module>:``, memories
  turned into flip-flops and logic);
* ``nextpnr-report.json`` (``--report``): ``utilization`` (used/available per cell type),
  ``fmax`` (achieved and constrained MHz per clock, after routing) and ``critical_paths``;
* ``nextpnr.log``: the ``Max frequency`` lines and ``ERROR`` lines (when nextpnr fails there is
  no report).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

__all__ = [
    "RESOURCE_KEYS",
    "cells_by_module",
    "resources_from_cells",
    "memory_mapping",
    "NextpnrResult",
    "read_nextpnr",
    "nextpnr_log_fmax",
    "nextpnr_log_utilisation",
    "nextpnr_errors",
    "critical_path_summary",
    "cell_type",
]

# Report resource keys, in table order.
RESOURCE_KEYS = ("lut4", "ff", "lc", "bram", "spram", "dsp", "lutram", "io")

# Yosys cell types per resource. ECP5: a CCU2C carry cell holds two LUT4s and a
# TRELLIS_DPR16X4 (16x4 LUT RAM) four (two slices in RAM mode), as nextpnr packs them.
_ECP5_LUT_WEIGHTS = {"LUT4": 1, "CCU2C": 2, "TRELLIS_DPR16X4": 4}

# nextpnr utilisation cell types per resource.
NEXTPNR_KEYS = {
    "ecp5": {"lut4": "TRELLIS_COMB", "ff": "TRELLIS_FF", "bram": "DP16KD", "dsp": "MULT18X18D",
             "io": "TRELLIS_IO"},
    "ice40": {"lc": "ICESTORM_LC", "bram": "ICESTORM_RAM", "spram": "ICESTORM_SPRAM",
              "dsp": "ICESTORM_DSP", "io": "SB_IO"},
}


def _strip(name: str) -> str:
    return name[1:] if name.startswith("\\") else name


def cells_by_module(stat: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """``{module: {cell type: count}}`` from Yosys ``stat -json`` (submodule instances dropped)."""
    modules = {_strip(k): v for k, v in stat["modules"].items()}
    out = {}
    for name, mod in modules.items():
        out[name] = {t: int(n) for t, n in mod.get("num_cells_by_type", {}).items()
                     if _strip(t) not in modules}
    return out


def resources_from_cells(family: str, cells: Mapping[str, int]) -> dict[str, int]:
    """LUT4 (equivalents), FF, block RAM, SPRAM, DSP and LUT-RAM counts of mapped cells."""
    if family == "ecp5":
        return {
            "lut4": sum(w * cells.get(t, 0) for t, w in _ECP5_LUT_WEIGHTS.items()),
            "ff": cells.get("TRELLIS_FF", 0),
            "bram": cells.get("DP16KD", 0),
            "dsp": cells.get("MULT18X18D", 0) + cells.get("ALU54B", 0),
            "lutram": cells.get("TRELLIS_DPR16X4", 0),
        }
    if family == "ice40":
        return {
            "lut4": cells.get("SB_LUT4", 0),
            "ff": sum(n for t, n in cells.items() if t.startswith("SB_DFF")),
            "bram": sum(n for t, n in cells.items() if t.startswith("SB_RAM40_4K")),
            "spram": cells.get("SB_SPRAM256KA", 0),
            "dsp": cells.get("SB_MAC16", 0),
        }
    raise ValueError(f"unknown family {family!r}")


_LIBMAP = re.compile(r"^mapping memory (\S+?)\.(\S+) via (\S+)\s*$", re.M)
_MEMMAP = re.compile(r"^Mapping memory \\?(\S+) in module \\?(\S+?):\s*$", re.M)

_MAPPED_TO = {
    "$__DP16KD_": "block RAM (DP16KD)", "$__PDPW16KD_": "block RAM (DP16KD, 36-bit)",
    "$__TRELLIS_DPR16X4_": "LUT RAM (TRELLIS_DPR16X4)",
    "$__ICE40_RAM4K_": "block RAM (SB_RAM40_4K)", "$__ICE40_SPRAM_": "SPRAM (SB_SPRAM256KA)",
}


def memory_mapping(log_text: str) -> list[dict[str, str]]:
    """``[{module, memory, mapped_to, cell}]``: what each memory became, in log order."""
    out = []
    for m in _LIBMAP.finditer(log_text):
        module, memory, cell = m.groups()
        out.append({"module": module, "memory": memory, "cell": cell,
                    "mapped_to": _MAPPED_TO.get(cell, cell)})
    for m in _MEMMAP.finditer(log_text):
        memory, module = m.groups()
        if memory.startswith("$auto$proc_rom"):
            # Yosys' proc_rom turns a constant case table (an Amaranth Array of Consts) into a
            # ROM, and memory_map turns it back into LUTs.
            memory, what = "(constant table)", "LUTs (a case statement Yosys read as a ROM)"
        else:
            what = "soft logic (memory_map: flip-flops for a RAM, LUTs for a ROM)"
        out.append({"module": module, "memory": memory, "cell": "", "mapped_to": what})
    return out


# --- nextpnr ---------------------------------------------------------------------------------

_FMAX = re.compile(r"Max frequency for clock '([^']+)': ([0-9.]+) MHz \((PASS|FAIL) at ([0-9.]+) MHz\)")
_UTIL = re.compile(r"^Info:\s+([A-Z0-9_]+):\s+(\d+)/\s*(\d+)\s+(\d+)%\s*$", re.M)


def nextpnr_log_fmax(text: str) -> dict[str, dict[str, Any]]:
    """``{clock: {achieved, constraint, passed}}`` from the *last* ``Max frequency`` line of
    each clock (nextpnr prints one after placement and one after routing)."""
    out: dict[str, dict[str, Any]] = {}
    for m in _FMAX.finditer(text):
        out[m.group(1)] = {"achieved": float(m.group(2)), "constraint": float(m.group(4)),
                           "passed": m.group(3) == "PASS"}
    return out


def nextpnr_log_utilisation(text: str) -> dict[str, dict[str, int]]:
    """The ``Device utilisation`` table of the log: ``{cell type: {used, available}}``."""
    start = text.find("Device utilisation:")
    if start < 0:
        return {}
    block = text[start:]
    end = block.find("\n\n")
    block = block[:end] if end > 0 else block
    return {m.group(1): {"used": int(m.group(2)), "available": int(m.group(3))}
            for m in _UTIL.finditer(block)}


def nextpnr_errors(text: str) -> list[str]:
    return [line[len("ERROR: "):].strip() for line in text.splitlines() if line.startswith("ERROR: ")]


@dataclass
class NextpnrResult:
    """What one nextpnr run produced (``ok`` False: ``errors`` says why)."""

    ok: bool
    utilization: dict[str, dict[str, int]] = field(default_factory=dict)
    fmax: dict[str, dict[str, Any]] = field(default_factory=dict)
    critical_paths: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def clock(self) -> tuple[str, dict[str, Any]] | None:
        """The design clock (the wrapper has one): name and ``{achieved, constraint, passed}``."""
        if not self.fmax:
            return None
        name = sorted(self.fmax, key=lambda k: ("clk" not in k, k))[0]
        return name, self.fmax[name]


def read_nextpnr(report_path: Path, log_path: Path, returncode: int) -> NextpnrResult:
    """The report JSON when nextpnr finished, else what the log says."""
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    errors = nextpnr_errors(log)
    if returncode == 0 and report_path.exists():
        rep = json.loads(report_path.read_text())
        fmax = {}
        log_fmax = nextpnr_log_fmax(log)
        for clk, v in rep.get("fmax", {}).items():
            fmax[clk] = {"achieved": float(v["achieved"]), "constraint": float(v["constraint"]),
                         "passed": float(v["achieved"]) >= float(v["constraint"])}
            if clk in log_fmax:
                # The log rounds to 0.01 MHz; the report JSON has the full value.
                fmax[clk]["log_achieved"] = log_fmax[clk]["achieved"]
        util = {k: {"used": int(v["used"]), "available": int(v["available"])}
                for k, v in rep.get("utilization", {}).items()}
        return NextpnrResult(True, util, fmax, rep.get("critical_paths", []), errors)
    return NextpnrResult(False, nextpnr_log_utilisation(log), nextpnr_log_fmax(log), [],
                         errors or [f"nextpnr exited with status {returncode}"])


# --- critical path ---------------------------------------------------------------------------

_SUFFIX = re.compile(r"(_(LUT4|PFUMX|L6MUX21|CCU2C|TRELLIS_FF|TRELLIS_DPR16X4|DP16KD|MULT18X18D|"
                     r"SB_LUT4|SB_CARRY|SB_DFF\w*|SB_RAM40_4K\w*|SB_MAC16)_[A-Z0-9]+.*$)")


def _signal(net: str, prefixes: tuple[str, ...]) -> str:
    """A readable signal name: the instance prefix and Yosys' mapping suffixes removed."""
    for p in prefixes:
        if net.startswith(p):
            net = net[len(p):]
            break
    net = _SUFFIX.sub("", net)
    return net


def cell_type(name: str, types: Mapping[str, str]) -> str:
    """The netlist cell type of a (packed) nextpnr cell name: nextpnr appends ``$...`` to the
    cells it splits (``x$CCU2_COMB0``), names the cells it inserts ``$nextpnr_<TYPE>_<n>`` and,
    on iCE40, the logic cells and RAMs it packs ``<lut>_LC`` and ``<ram>_RAM``."""
    if name in types:
        return types[name]
    if name.endswith("_LC"):        # iCE40: a packed logic cell (LUT4, carry, flip-flop)
        return "ICESTORM_LC"
    if name.endswith("_RAM") and name[:-4] in types:      # iCE40: a packed SB_RAM40_4K
        return types[name[:-4]]
    m = re.match(r"^\$nextpnr_(.+?)_\d+(?:\$|$)", name)
    if m:
        return m.group(1)
    base = name.split("$")[0]
    return types.get(base, "?")


def critical_path_summary(path: Mapping[str, Any], prefixes: tuple[str, ...] = (),
                          types: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Delay split, logic depth and the signals along one nextpnr critical path.

    ``path`` is an entry of the report's ``critical_paths``: segments of type ``clk-to-q``,
    ``source``, ``logic``, ``routing``, ``setup``. Net names are shortened (``prefixes`` of
    instance paths removed, Yosys' ``_LUT4_Z...`` suffixes dropped) and repeated names merged.
    With ``types`` (cell name -> type, from the mapped netlist) the logic delay is also split by
    cell type (``by_type``: ``{type: {cells, ns}}``; the first entry is the launching cell's
    clock-to-output).
    """
    segments = path.get("path", [])
    total = sum(float(s.get("delay", 0.0)) for s in segments)
    logic = sum(float(s.get("delay", 0.0)) for s in segments if s.get("type") != "routing")
    routing = total - logic
    levels = sum(1 for s in segments if s.get("type") == "logic")
    signals: list[str] = []
    for s in segments:
        if s.get("type") == "routing" and s.get("net"):
            name = _signal(s["net"], prefixes)
            if not signals or signals[-1] != name:
                signals.append(name)
    sources: list[str] = []
    for s in segments:
        for src in s.get("sources", []) or []:
            line = _source_line(src)
            if line and line not in sources:
                sources.append(line)
    by_type: dict[str, dict[str, float]] = {}
    if types is not None:
        for s in segments:
            if s.get("type") in ("clk-to-q", "logic"):
                t = cell_type(s["from"]["cell"], types)
                if s["type"] == "clk-to-q":
                    t += " (clock to output)"
                e = by_type.setdefault(t, {"cells": 0, "ns": 0.0})
                e["cells"] += 1
                e["ns"] += float(s.get("delay", 0.0))
    start = segments[0]["from"]["cell"] if segments else ""
    end = segments[-1]["to"]["cell"] if segments else ""
    cell_types = []
    for s in segments:
        if s.get("type") == "logic":
            cell_types.append(s["from"]["cell"])
    return {
        "from": path.get("from", ""), "to": path.get("to", ""),
        "delay_ns": total, "logic_ns": logic, "routing_ns": routing, "logic_levels": levels,
        "start_cell": _signal(start, prefixes), "end_cell": _signal(end, prefixes),
        "signals": signals, "source_lines": sources, "by_type": by_type,
    }


def _source_line(src: str) -> str | None:
    """``rtl/conv_core.py:412`` from an Amaranth ``src`` attribute; None for Yosys' own
    techmap files (``/share/...``)."""
    if src.startswith("/share/") or ".py:" not in src:
        return None
    path, _, line = src.rpartition(":")
    for anchor in ("/site-packages/", "/rtl/", "/spykehw/", "/sim/", "/golden/"):
        i = path.rfind(anchor)
        if i >= 0:
            path = path[i + len(anchor):] if anchor == "/site-packages/" else path[i + 1:]
            break
    return f"{path}:{line.split('.')[0]}"
