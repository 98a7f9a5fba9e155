"""Build and run the accelerator co-simulation (Verilator or Icarus), short and long runs.

Why no simulation top here (unlike the block harnesses): cocotbext-axi drives and samples the
top's own AXI ports at clock edges, so the DUT is the generated ``accelerator`` module itself,
with a cocotb clock; a top that registers the inputs would break the handshakes.

Builds are cached like the harness builds (:func:`spykehw.sim.classifier.cosim.build_top`):
keyed by the Verilog text, the simulator and the options, under the spykehw cache folder.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...golden.design_point import DesignPoint
from ...rtl.accelerator import Accelerator
from ...rtl.design import classifier_config
from ...rtl.verilog import GeneratedVerilog, generate
from ..framework.runners import CocotbResult, SimBuild, cached_build, run_tests, tb_env, waveforms
from .vectors import (
    AcceleratorParams,
    Job,
    WeightImage,
    make_job,
    malformed_frames,
    write_job,
)

__all__ = ["TB_MODULE", "TOP", "AcceleratorCosim", "build_accelerator", "run_job", "cosim_images"]

TB_MODULE = "spykehw.sim.accelerator.tb"
TOP = "accelerator"


@dataclass(frozen=True)
class AcceleratorCosim:
    point: DesignPoint
    simulator: str
    design: GeneratedVerilog
    build: SimBuild


def build_accelerator(point: DesignPoint, simulator: str, folder: str | Path, *, waves: bool = False,
                      optimize: bool = False, weights: dict[str, list[int]] | None = None) -> AcceleratorCosim:
    """Generate the top of ``point`` (its memories holding ``weights`` after configuration, see
    :class:`~spykehw.rtl.accelerator.Accelerator`) into ``folder`` and build it for
    ``simulator`` (cached)."""
    dut = Accelerator(point, weights=weights)
    design = generate(dut, TOP, Path(folder), dut.params(), formats=point.formats)
    args = ["-CFLAGS", "-O2"] if optimize and simulator == "verilator" else []
    build = cached_build(simulator, TOP, {f"{TOP}.v": design.verilog_path.read_text()}, waves=waves, build_args=args)
    return AcceleratorCosim(point, simulator, design, build)


def run_job(cosim: AcceleratorCosim, job: Job, folder: str | Path, *, testcase: str = "accelerator_matches_golden",
            check: bool = True, progress=None) -> tuple[CocotbResult, dict[str, Any]]:
    """Write ``job`` into ``folder``, run one cocotb test on it; (result, statistics). A
    ``progress`` (:class:`~spykehw.golden.progress.Progress`) advances by the result frames the
    testbench reports while it runs."""
    folder = Path(folder)
    job_path = write_job(folder / "job.npz", job)
    stats_path, progress_path = folder / "stats.json", folder / "progress.txt"
    stats_path.unlink(missing_ok=True)
    progress_path.unlink(missing_ok=True)
    env = tb_env(vectors=job_path, ports=cosim.design.json_path, SPYKEHW_ACCEL_STATS=str(stats_path.resolve()),
                 SPYKEHW_ACCEL_PROGRESS=str(progress_path.resolve()))
    stop = threading.Event()
    seen = [0]

    def watch():
        while not stop.wait(1.0):
            try:
                n = int(progress_path.read_text())
            except (OSError, ValueError):
                continue
            if n > seen[0]:
                progress.advance(n - seen[0])
                seen[0] = n

    watcher = threading.Thread(target=watch, daemon=True) if progress is not None else None
    if watcher is not None:
        watcher.start()
    try:
        result = run_tests(cosim.build, TB_MODULE, folder / "run", extra_env=env, testcase=testcase, check=check)
    finally:
        stop.set()
        if watcher is not None:
            watcher.join()
    stats = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
    if progress is not None:
        progress.advance(max(0, len(job.frames) - seen[0]))
    return result, stats


def cosim_images(cosim: AcceleratorCosim, params: AcceleratorParams, events: Sequence[np.ndarray],
                 folder: str | Path, *, weights: WeightImage | None = None, stall: float = 0.25, seed: int = 1,
                 malformed: bool = False, chunk: int = 0, progress=None, preloaded: bool = False) -> dict[str, Any]:
    """Every image of ``events`` through the top loaded with ``weights`` (default: built from
    ``params``), in chunks of ``chunk`` images per simulator run (0 = one run), compared with the
    golden model of ``params``; with ``malformed`` the malformed variants of the first image are
    interleaved. ``preloaded``: ``cosim`` was built with ``weights`` in its memories (no window
    writes). Returns a summary."""
    folder = Path(folder)
    n = len(events)
    chunk = chunk or max(1, n)
    mismatches: list[str] = []
    sent = compared = 0
    cycles = busy = wall = 0.0
    w2_bytes = w2_beats = 0
    passed = True
    rtl_classes: list[int] = []
    golden_classes: list[int] = []
    results: list[CocotbResult] = []
    t0 = time.perf_counter()
    for part, a in enumerate(range(0, max(n, 1), chunk)):
        ev = list(events[a:a + chunk])
        bad = []
        if malformed and part == 0 and ev:
            frames = malformed_frames(cosim.point, ev[0])
            bad = [(min(len(ev), 1 + 2 * i), name, beats, flags) for i, (name, beats, flags) in enumerate(frames)]
            if progress is not None:
                progress.total += len(bad)          # the malformed frames come back too
        job = make_job(cosim.point, params, ev, weights=weights, malformed=bad, stall=stall, seed=seed + part,
                       preloaded=preloaded)
        result, stats = run_job(cosim, job, folder / f"part{part:04d}", check=False, progress=progress)
        results.append(result)
        report = result.report or {}
        mismatches += [m["message"] for m in report.get("mismatches", [])]
        passed &= result.passed
        if not result.passed and not report.get("mismatches"):
            mismatches.append(result.summary())
        good = [i for i, f in enumerate(job.flags) if f == 0]
        got = stats.get("rtl_classes", [])
        rtl_classes += [got[i] for i in good if i < len(got)]
        golden_classes += [int(job.classes[i]) for i in good]
        sent += len(job.frames)
        compared += int(stats.get("frames_received", 0))
        cycles += stats.get("sim_cycles", 0.0)
        busy += stats.get("busy_cycles", 0)
        wall += stats.get("wall_s", 0.0)
        w2_bytes += stats.get("w2_bytes", 0)
        w2_beats += stats.get("w2_beats", 0)
    return {
        "simulator": cosim.simulator, "point_id": cosim.point.id32, "frames_sent": sent,
        "frames_compared": compared, "passed": passed and compared == sent, "mismatches": len(mismatches),
        "first_mismatches": mismatches[:10], "cycles_per_image": cycles / max(1, sent),
        "busy_cycles_per_image": busy / max(1, sent), "images_per_s_sim": sent / wall if wall else None,
        "wall_s": round(time.perf_counter() - t0, 1), "folder": str(folder),
        "rtl_classes": rtl_classes, "golden_classes": golden_classes, "waveforms": waveforms(*results),
        "w2_bytes_per_image": w2_bytes / max(1, sent),
        "w2_bursts_per_image": w2_beats / max(1, sent) / max(1, classifier_config(cosim.point).groups),
    }
