"""One FPGA implementation run: Verilog -> Yosys -> fit check -> nextpnr -> report dict.

Stages (each prints its name and elapsed time; tool output goes to a log in the run folder):

1. **Verilog**: each block through :func:`spykehw.rtl.verilog.generate` (``rtl/<module>.v``,
   ``.il``, ``.json``), the same design as RTLIL with Amaranth's ``src`` attributes
   (``rtl/<module>.src.il``, the synthesis input, so that the critical path names Python source
   lines), then the study wrapper (:mod:`spykehw.fpga.wrapper`) as ``fpga_top.il`` and
   ``fpga_top.v``, instantiating the blocks by module name and connecting only each block's own
   top-level ports (:func:`top_ports`).
2. **Synthesis** (``synth.ys``, ``synth.log``): ``synth_ecp5`` or ``synth_ice40`` with the block
   modules marked ``keep_hierarchy``, so ``stat -json`` (``stat.json``) counts each block's cells
   apart from the wrapper's. Memories are mapped by ``memory_libmap``; the log says what each
   became (block RAM, LUT RAM, SPRAM or flip-flops). ``--ram-style PATTERN=STYLE`` sets Yosys'
   ``ram_style`` attribute on matching memories between ``memory -nomap`` and the mapping
   (``block``, ``distributed``, ``huge`` (SPRAM) or ``logic``). The hierarchy is then flattened
   into ``netlist.json``.
3. **Fit check** against the device capacity from the synthesized cell counts; a design that is
   over on any resource is reported as not fitting and nextpnr is not run.
4. **Place and route** (``nextpnr.log``, ``nextpnr-report.json``; further seeds
   ``nextpnr-seed<N>.log`` ...): nextpnr once per ``--seed`` (the reported Fmax is the median
   over the seeds, each seed's is listed), with ``--freq``, ``--timing-allow-fail`` (so a design that misses the target still reports its
   achieved Fmax), ``--router`` and optionally ``--placed-svg``. A nextpnr failure is read from
   its log; an overused resource there is a no-fit too. The critical path is summarised with
   the mapped netlist's cell types and the source lines nextpnr reports.
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import dataclass
from typing import Any

from amaranth.back import rtlil, verilog

from ..golden.errors import SpykehwError
from ..output import RunFolder
from ..rtl.verilog import GeneratedVerilog, generate
from . import parse
from .blocks import Block, BlockSet, BlockSettings, build_blocks, images_per_second
from .devices import Device
from .memories import memory_bound_table
from .reports import render_markdown, summary_line
from .tools import Stages, run_tool, tool_version
from .wrapper import PINS, TOP_NAME, StudyWrapper

__all__ = ["FlowError", "FlowOptions", "RAM_STYLES", "ROUTERS", "DEFAULT_FREQ_MHZ", "run_flow", "fit_check",
           "implement", "top_ports", "REPORT_FORMAT", "REPORT_VERSION"]

REPORT_FORMAT = "spykehw-fpga-report"
REPORT_VERSION = 1
RAM_STYLES = ("block", "distributed", "huge", "logic")
ROUTERS = ("router1", "router2")
# Default --freq per family: the goal for ECP5; iCE40 UltraPlus fabric is roughly a
# third as fast.
DEFAULT_FREQ_MHZ = {"ecp5": 100.0, "ice40": 30.0}

RESOURCE_NAMES = {"lut4": "LUT4", "ff": "flip-flops", "lc": "logic cells", "bram": "block RAM",
                  "spram": "SPRAM", "dsp": "DSP", "lutram": "LUT RAM (16x4)", "io": "I/O"}


class FlowError(SpykehwError, RuntimeError):
    """A tool failed for a reason other than the design not fitting (names the log)."""


@dataclass(frozen=True)
class FlowOptions:
    device: Device
    freq_mhz: float
    seeds: tuple[int, ...] = (1,)   # nextpnr placement seeds: Fmax is their median
    placed_svg: bool = False
    ram_styles: tuple[tuple[str, str], ...] = ()
    route: bool = True              # False: synthesis and fit check only
    pnr_timeout_s: float | None = None
    router: str = "router1"         # nextpnr --router (router2 is often faster when congested)

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.device.name, "freq_mhz": self.freq_mhz, "seeds": list(self.seeds),
                "placed_svg": self.placed_svg, "ram_styles": [f"{p}={s}" for p, s in self.ram_styles],
                "route": self.route, "router": self.router}


# --- helpers -----------------------------------------------------------------------------------

def _percent(used: int | float | None, available: int) -> float | None:
    if used is None or not available:
        return None
    return 100.0 * used / available


def fit_check(device: Device, totals: dict[str, int], stage: str) -> dict[str, Any]:
    """``{fits, stage, over: [{resource, needed, available, percent}], message}``."""
    caps = device.capacities()
    over = []
    for key in ("lut4", "ff", "lc", "bram", "spram", "dsp", "io"):
        need = totals.get(key)
        if need is None or key not in caps:
            continue
        if need > caps[key]:
            over.append({"resource": key, "needed": int(need), "available": caps[key],
                         "percent": _percent(need, caps[key])})
    if over:
        parts = [f"{o['needed']:,} {RESOURCE_NAMES[o['resource']]} needed, {o['available']:,} "
                 f"available ({o['percent']:.0f}%)" for o in over]
        message = f"does not fit {device.name}: " + "; ".join(parts)
    else:
        message = f"fits {device.name}"
    return {"fits": not over, "stage": stage, "over": over, "message": message}


def _synth_script(device: Device, modules: list[str], ram_styles: tuple[tuple[str, str], ...]) -> str:
    synth = device.synth_command(TOP_NAME)
    lines = [f"read_rtlil rtl/{m}.src.il" for m in modules]
    lines += [
        f"read_rtlil {TOP_NAME}.il",
        f"hierarchy -top {TOP_NAME}",
        # Keep each block a module of its own through mapping, so `stat` counts it apart
        # from the wrapper (the blocks' own submodules are still flattened into them).
        "setattr -mod -set keep_hierarchy 1 " + " ".join(modules),
        f"{synth} -run :map_ram",
    ]
    for pattern, style in ram_styles:
        # After `memory -nomap` each memory is one $mem_v2 cell named after the memory.
        lines.append(f'setattr -set ram_style "{style}" */{pattern} */t:$mem_v2 %i')
    lines += [
        f"{synth} -run map_ram:",
        "tee -q -o stat.json stat -json",
        "setattr -mod -unset keep_hierarchy " + " ".join(modules),
        "flatten",
        "write_json netlist.json",
    ]
    return "\n".join(lines) + "\n"


_MODULE = re.compile(r"^module\s+\\?(\S+?)\s*\(", re.M)
_DECL = re.compile(r"^\s*(input|output|inout)\s+(?:\[\d+:\d+\]\s+)?\\?(\S+?)\s*;", re.M)


def top_ports(g: GeneratedVerilog) -> list[Any]:
    """The ports of the generated top module only.

    ``generate()`` reads port declarations from the whole Verilog file, so when the design has
    submodules their ports are listed too (e.g. ``conv_core.json`` lists ``fired_set_en``); the
    wrapper must connect only the top module's own ports.
    """
    text = g.verilog_path.read_text()
    starts = [(m.start(), m.group(1)) for m in _MODULE.finditer(text)] + [(len(text), "")]
    own: set[str] = set()
    for (start, name), (end, _) in zip(starts, starts[1:]):
        if name == g.name:
            own = {m.group(2) for m in _DECL.finditer(text[start:end])}
    if not own:
        raise FlowError(f"{g.verilog_path}: module {g.name} not found")
    return [p for p in g.ports if p.name in own]


def _module_resources(device: Device, cells: dict[str, dict[str, int]], module: str) -> dict[str, int]:
    return parse.resources_from_cells(device.family, cells.get(module, {}))


def _add(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in sorted(set(a) | set(b))}


# --- the flow ----------------------------------------------------------------------------------

def run_flow(blocks: BlockSet, settings: BlockSettings, opts: FlowOptions, folder: RunFolder,
             stages: Stages) -> dict[str, Any]:
    """Run every stage for ``blocks`` on ``opts.device``; returns the report dict (see
    :mod:`spykehw.fpga.reports`). ``report["status"]`` is ``ok``, ``no-fit`` or ``failed``."""
    dev = opts.device
    work = folder.path
    generated: list[GeneratedVerilog] = []

    # 1. Verilog of each block and of the wrapper.
    stages.say(f"verilog: {', '.join(b.module for b in blocks.blocks)}")
    for b in blocks.blocks:
        component = b.make()
        g = generate(component, b.module, work / "rtl", component.params(), formats=settings.formats)
        generated.append(g)
        for path, what in ((g.verilog_path, "Verilog"), (g.rtlil_path, "RTLIL"),
                           (g.json_path, "port and parameter description")):
            folder.add(f"rtl/{path.name}", f"{b.kind}: {what} (spykehw.rtl.verilog.generate)")
        # The same design with Amaranth's source-line attributes: synthesis reads this one, so
        # that nextpnr's critical path names the Python lines (generate() omits them on purpose,
        # for reproducible files).
        folder.write_text(f"rtl/{b.module}.src.il", rtlil.convert(component, name=b.module),
                          f"{b.kind}: RTLIL with source attributes (synthesis input)")
    wrapper = StudyWrapper([(g.name, top_ports(g)) for g in generated])
    folder.write_text(f"{TOP_NAME}.il", rtlil.convert(wrapper, name=TOP_NAME, emit_src=False),
                      "study wrapper (RTLIL): input shift chain and output signature register")
    folder.write_text(f"{TOP_NAME}.v", verilog.convert(wrapper, name=TOP_NAME, emit_src=False),
                      "study wrapper (Verilog, for reference)")

    modules = [g.name for g in generated]
    report: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "status": "failed",
        "target": _target_dict(dev),
        "settings": settings.to_dict(),
        "options": opts.to_dict(),
        "blocks": [],
        "missing_blocks": dict(blocks.missing),
        "wrapper": {
            "module": TOP_NAME, "pins": list(PINS),
            "input_bits": wrapper.cost.input_bits, "output_bits": wrapper.cost.output_bits,
            "method": "inputs from one shift register fed by pin si (one flip-flop per input bit); "
                      "outputs into a signature register misr[i] <= misr[i-1] ^ out[i] read out on "
                      "pin so; blocks kept as separate modules during mapping (keep_hierarchy)",
        },
        "tools": {"yosys": tool_version("yosys"), "nextpnr": tool_version(dev.nextpnr)},
    }

    # 2. Synthesis.
    script = _synth_script(dev, modules, opts.ram_styles)
    folder.write_text("synth.ys", script, "Yosys script")
    syn = run_tool("yosys", ["-s", "synth.ys"], cwd=work, log_name="synth.log",
                   stage="synthesis", stages=stages)
    _add_if_exists(folder, "synth.log", "Yosys log (synthesis, memory mapping, statistics)")
    _add_if_exists(folder, syn.console.name, "Yosys console output (warnings and errors)")
    if syn.returncode != 0:
        report["error"] = f"yosys failed (exit {syn.returncode}); see synth.log"
        report["synthesis"] = {"seconds": syn.seconds, "ok": False}
        return report
    folder.add("stat.json", "Yosys stat -json after mapping (cells per module)")
    folder.add("netlist.json", "mapped, flattened netlist (nextpnr input)")
    stat = json.loads((work / "stat.json").read_text())
    cells = parse.cells_by_module(stat)
    memories = parse.memory_mapping((work / "synth.log").read_text(errors="replace"))

    block_total: dict[str, int] = {}
    for b, g in zip(blocks.blocks, generated):
        res = _module_resources(dev, cells, g.name)
        block_total = _add(block_total, res)
        report["blocks"].append({
            "kind": b.kind, "module": b.module, "params": g.params,
            "cells": cells.get(g.name, {}), "resources": res,
            "memories": [mm for mm in memories if mm["module"] == g.name],
            "cycles_per_image": b.cycles.to_dict(),
            "external_bytes_per_image": b.external_bytes.to_dict(),
        })
    wrap_res = _module_resources(dev, cells, TOP_NAME)
    total = _add(block_total, wrap_res)
    total["io"] = len(PINS)
    report["wrapper"]["cells"] = cells.get(TOP_NAME, {})
    report["wrapper"]["resources"] = wrap_res
    report["synthesis"] = {"ok": True, "seconds": syn.seconds, "blocks": block_total,
                           "total": total, "memories": memories}

    # 3. Fit check from the synthesized counts.
    fit = fit_check(dev, total, "synthesis")
    report["fit"] = fit
    stages.say(f"fit check: {fit['message']}")
    if not fit["fits"]:
        report["status"] = "no-fit"
        _throughput(report, blocks.blocks, None)
        return report
    if not opts.route:
        report["status"] = "ok"
        report["pnr"] = None
        _throughput(report, blocks.blocks, None)
        return report

    # 4. Place and route, once per seed: the clock figure is the median over the seeds (one
    # seed's Fmax varies by several MHz with placement alone); resources and the critical
    # path are the first seed's.
    runs = []
    for k, seed in enumerate(opts.seeds):
        suffix = "" if k == 0 else f"-seed{seed}"
        res, seconds = _place_and_route(dev, opts, seed, suffix, folder, stages)
        runs.append((seed, res, seconds))
        if not res.ok:
            break
    seed, res, seconds = runs[0]
    types = _netlist_types(work / "netlist.json") if res.critical_paths else None
    report["pnr"] = _pnr_dict(dev, res, seconds, opts.freq_mhz, modules, types)
    if not all(r.ok for _, r, _ in runs):
        res = next(r for _, r, _ in runs if not r.ok)
        over = {k: v for k, v in report["pnr"]["utilization"].items()
                if v.get("available") and v["used"] > v["available"]}
        if over or any("no BELs remaining" in e or "Unable to place" in e for e in res.errors):
            used = {k: v["used"] for k, v in report["pnr"]["utilization"].items()}
            report["fit"] = fit_check(dev, used, "place-and-route")
            if report["fit"]["fits"]:
                report["fit"] = {"fits": False, "stage": "place-and-route", "over": [],
                                 "message": f"does not fit {dev.name}: nextpnr: {res.errors[0]}"}
            report["status"] = "no-fit"
        else:
            report["error"] = f"nextpnr failed: {'; '.join(res.errors)[:500]} (see nextpnr.log)"
        _throughput(report, blocks.blocks, None)
        return report
    per_seed = [{"seed": sd, "fmax_mhz": (r.clock() or (None, {"achieved": None}))[1]["achieved"],
                 "seconds": sec} for sd, r, sec in runs]
    known = [p["fmax_mhz"] for p in per_seed if p["fmax_mhz"] is not None]
    median = statistics.median(known) if known else None
    report["pnr"].update(seeds=per_seed, fmax_mhz_first_seed=report["pnr"]["fmax_mhz"], fmax_mhz=median,
                         fmax_statistic=f"median over {len(known)} placement seed(s)",
                         passed=None if median is None else median >= opts.freq_mhz)
    report["status"] = "ok"
    _throughput(report, blocks.blocks, median)
    return report


def _place_and_route(dev: Device, opts: FlowOptions, seed: int, suffix: str, folder: RunFolder,
                     stages: Stages) -> tuple[parse.NextpnrResult, float]:
    """One nextpnr run on ``netlist.json`` (files ``nextpnr<suffix>.log`` / ``-report.json``)."""
    work = folder.path
    log, rep = f"nextpnr{suffix}.log", f"nextpnr{suffix}-report.json"
    args = [*dev.nextpnr_args(), "--json", "netlist.json", "--top", TOP_NAME,
            "--freq", f"{opts.freq_mhz:g}", "--seed", str(seed),
            "--report", rep, "--timing-allow-fail", "--router", opts.router]
    if opts.placed_svg and not suffix:
        args += ["--placed-svg", "placed.svg"]
    run = run_tool(dev.nextpnr, args, cwd=work, log_name=log, stage=f"place and route (seed {seed})",
                   stages=stages, timeout=opts.pnr_timeout_s)
    _add_if_exists(folder, log, f"nextpnr log, seed {seed} (packing, placement, routing, timing)")
    _add_if_exists(folder, run.console.name, f"nextpnr console output, seed {seed}")
    res = parse.read_nextpnr(work / rep, work / log, run.returncode)
    if res.ok:
        folder.add(rep, f"nextpnr --report, seed {seed}: utilisation, Fmax, critical paths")
        if opts.placed_svg and not suffix and (work / "placed.svg").exists():
            folder.add("placed.svg", "placement picture (nextpnr --placed-svg)")
    return res, run.seconds


def _add_if_exists(folder: RunFolder, name: str, description: str) -> None:
    if folder.file(name).exists():
        folder.add(name, description)


def _target_dict(dev: Device) -> dict[str, Any]:
    return {"name": dev.name, "family": dev.family, "part": dev.part, "package": dev.package,
            "speed": dev.speed, "capacities": dev.capacities(),
            "bram_block_bits": dev.bram_block_bits, "spram_block_bits": dev.spram_block_bits,
            "sources": dev.sources}


def _pnr_dict(dev: Device, res: parse.NextpnrResult, seconds: float, freq: float,
              modules: list[str], types: dict[str, str] | None = None) -> dict[str, Any]:
    keys = parse.NEXTPNR_KEYS[dev.family]
    util = {}
    for key, cell in keys.items():
        if cell in res.utilization:
            u = res.utilization[cell]
            util[key] = {"cell": cell, "used": u["used"], "available": u["available"],
                         "percent": _percent(u["used"], u["available"])}
    out: dict[str, Any] = {"ok": res.ok, "seconds": seconds, "utilization": util,
                           "errors": res.errors, "target_mhz": freq}
    clk = res.clock()
    if clk is not None:
        name, f = clk
        out.update(clock=name, fmax_mhz=f["achieved"], passed=f["achieved"] >= freq)
    else:
        out.update(clock=None, fmax_mhz=None, passed=None)
    prefixes = tuple(f"{m}." for m in modules)
    out["critical_paths"] = [parse.critical_path_summary(p, prefixes, types) for p in res.critical_paths]
    return out


def _netlist_types(path) -> dict[str, str]:
    """Cell name -> type of the mapped, flattened netlist (to name the cells on the critical
    path)."""
    try:
        netlist = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    cells = netlist.get("modules", {}).get(TOP_NAME, {}).get("cells", {})
    return {name: c.get("type", "?") for name, c in cells.items()}


def _throughput(report: dict[str, Any], blocks: list[Block], fmax: float | None) -> None:
    """Images/s at the achieved Fmax and the external bandwidth it needs.

    With several blocks the pipeline's rate is set by the slowest block (each block works on a
    different image).
    """
    per_block = []
    for b in blocks:
        ips = images_per_second(fmax, b.cycles.value)
        bw = None if ips is None or b.external_bytes.value is None else ips * b.external_bytes.value
        per_block.append({"kind": b.kind, "cycles_per_image": b.cycles.value,
                          "cycles_kind": b.cycles.kind, "images_per_second": ips,
                          "external_bytes_per_image": b.external_bytes.value,
                          "external_bytes_per_second": bw})
    known = [p for p in per_block if p["cycles_per_image"]]
    slowest = max(known, key=lambda p: p["cycles_per_image"]) if known else None
    ips = images_per_second(fmax, slowest["cycles_per_image"]) if slowest else None
    ext = [b.external_bytes.value for b in blocks]
    ext_total = None if any(v is None for v in ext) else sum(ext)
    bursts = sum(b.bursts_per_image for b in blocks)
    report["throughput"] = {
        "fmax_mhz": fmax,
        "bottleneck": slowest["kind"] if slowest else None,
        "cycles_per_image": slowest["cycles_per_image"] if slowest else None,
        "images_per_second": ips,
        "external_bytes_per_image": ext_total,
        "external_bytes_per_second": None if ips is None or ext_total is None else ips * ext_total,
        "external_bursts_per_image": bursts,
        "external_memories": memory_bound_table(ext_total or 0, bursts, ips),
        "blocks": per_block,
    }


def implement(block: str, settings: BlockSettings, opts: FlowOptions, folder: RunFolder,
              stages: Stages, command: str | None = None) -> dict[str, Any]:
    """Build the blocks, run the flow and write ``report.json`` and ``report.md`` (last, so a
    folder with ``report.json`` holds a finished run); returns the report."""

    blocks = build_blocks(block, settings)
    for kind, why in blocks.missing.items():
        stages.say(f"skipping {kind}: {why}")
    report = run_flow(blocks, settings, opts, folder, stages)
    report["command"] = command
    folder.write_text("report.md", render_markdown(report, command), "the report (Markdown)")
    folder.result("status", report["status"])
    folder.result("summary", summary_line(report))
    folder.write_json("report.json", report, "the report (JSON): resources, Fmax, throughput")
    return report
