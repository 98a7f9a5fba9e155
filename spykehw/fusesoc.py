"""FuseSoC core description (CAPI2 ``.core``) of a generated Verilog design.

The core names the design ``spykehw:spykehw:<module>:<version>``, lists the Verilog
(``verilogSource``) and, when there is one, the Verilator waiver file (``vlt``, used by the
``lint`` target), and sets the top module. The designs have no Verilog parameters (Amaranth
elaborates them), so the generator's parameters are recorded as comments.

Use: ``fusesoc --cores-root DIR run --target lint spykehw:spykehw:conv_core``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping

from . import __version__

__all__ = ["core_text", "write_core", "VENDOR", "LIBRARY"]

VENDOR = "spykehw"
LIBRARY = "spykehw"


def _name_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def core_text(module: str, verilog: str, *, vlt: str | None = None,
              params: Mapping[str, Any] | None = None, description: str = "",
              version: str = __version__) -> str:
    """The text of a CAPI2 core file.

    Parameters
    ----------
    module : str
        The top module (and the core's name).
    verilog, vlt : str
        File names relative to the core file.
    params : mapping, optional
        Generator parameters, written as ``# key: <JSON>`` comments.
    description : str
        One line.
    version : str
        The core's version (default: spykehw's).

    Returns
    -------
    str
    """
    lines = ["CAPI=2:", f"name: {VENDOR}:{LIBRARY}:{_name_part(module)}:{version}",
             f"description: {json.dumps(description or f'spykehw {module} (Amaranth-generated Verilog)')}",
             "", "# Generator parameters (fixed in the Verilog; the module has no Verilog parameters):"]
    for key, value in (params or {}).items():
        lines.append(f"#   {key}: {json.dumps(value, sort_keys=True, default=str)}")
    lines += ["", "filesets:", "  rtl:", "    files:", f"      - {verilog}", "    file_type: verilogSource"]
    if vlt is not None:
        lines += ["  waivers:", "    files:", f"      - {vlt}", "    file_type: vlt"]
    lines += ["", "targets:", "  default: &default", "    filesets: [rtl]", f"    toplevel: {module}"]
    if vlt is not None:
        lines += ["  lint:", "    <<: *default", "    default_tool: verilator", "    filesets: [rtl, waivers]",
                  "    tools:", "      verilator:", "        mode: lint-only", "        verilator_options: [-Wall]"]
    return "\n".join(lines) + "\n"


def write_core(generated: Any, *, vlt: str | Path | None = None, description: str = "") -> Path:
    """Write ``<name>.core`` beside a :class:`~spykehw.rtl.verilog.GeneratedVerilog`'s Verilog.

    Parameters
    ----------
    generated : GeneratedVerilog
        ``name``, ``verilog_path`` and ``params`` are used.
    vlt : str or Path, optional
        The Verilator waiver file (in the same folder).
    description : str
        One line for the core.

    Returns
    -------
    Path
        The core file.
    """
    path = Path(generated.verilog_path).with_suffix(".core")
    text = core_text(generated.name, Path(generated.verilog_path).name,
                     vlt=None if vlt is None else Path(vlt).name, params=generated.params,
                     description=description)
    path.write_text(text)
    return path
