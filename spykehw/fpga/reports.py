"""The FPGA report as JSON and Markdown, and the trade-off table of a sweep.

The JSON (``report.json``) is the dict :func:`spykehw.fpga.flow.run_flow` returns; the Markdown
(``report.md``) says the same for a reader: verdict (fits or not, and what is over), resources
against the device capacity (block alone from Yosys, the study wrapper, and the placed total
from nextpnr), memory mapping, Fmax and its critical path, and throughput with the source of
every cycle figure.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Iterable, Mapping

__all__ = ["render_markdown", "summary_line", "sweep_row", "SWEEP_COLUMNS", "render_sweep_markdown",
           "render_sweep_csv", "fmt_int", "fmt_rate"]

_NAMES = {"lut4": "LUT4", "ff": "flip-flops", "lc": "logic cells (LUT4+FF)", "bram": "block RAM",
          "spram": "SPRAM", "dsp": "DSP", "lutram": "LUT RAM (16x4 cells)", "io": "I/O pins"}


def fmt_int(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.1f}"
    return f"{int(v):,}"


def fmt_rate(v: float | None, unit: str = "") -> str:
    if v is None:
        return "—"
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:,.2f} {prefix}{unit}"
    return f"{v:,.1f} {unit}".rstrip()


def _pct(used: Any, avail: Any) -> str:
    if used is None or not avail:
        return "—"
    return f"{100.0 * used / avail:.1f}%"


def _bram_unit(report: Mapping[str, Any]) -> str:
    bits = report["target"]["bram_block_bits"]
    return f"{bits // 1024} Kb blocks"


def summary_line(report: Mapping[str, Any]) -> str:
    """One line: verdict, Fmax and images/s."""
    t = report["target"]["name"]
    blocks = "+".join(b["kind"] for b in report.get("blocks", [])) or "?"
    if report["status"] == "no-fit":
        return f"{blocks} on {t}: {report['fit']['message']}"
    if report["status"] != "ok":
        return f"{blocks} on {t}: FAILED: {report.get('error', 'unknown error')}"
    pnr = report.get("pnr") or {}
    thr = report.get("throughput", {})
    if not pnr:
        return f"{blocks} on {t}: {report['fit']['message']} (synthesis only)"
    verdict = "meets" if pnr.get("passed") else "misses"
    seeds = pnr.get("seeds") or []
    spread = (f", median of {len(seeds)} seeds: " + "/".join(f"{p['fmax_mhz']:.1f}" for p in seeds
                                                             if p["fmax_mhz"] is not None)) if len(seeds) > 1 else ""
    return (f"{blocks} on {t}: fits; Fmax {pnr['fmax_mhz']:.1f} MHz{spread} ({verdict} {pnr['target_mhz']:g} MHz); "
            f"{fmt_rate(thr.get('images_per_second'), 'img/s')}")


def _resource_rows(report: Mapping[str, Any]) -> list[list[str]]:
    caps = report["target"]["capacities"]
    syn = report.get("synthesis") or {}
    blocks, wrapper = syn.get("blocks", {}), report["wrapper"].get("resources", {})
    placed = (report.get("pnr") or {}).get("utilization", {})
    rows = []
    for key in ("lut4", "ff", "lc", "bram", "spram", "dsp", "lutram", "io"):
        if key not in caps and key not in blocks and key not in placed:
            continue
        if key == "spram" and "spram" not in caps:
            continue
        cap = caps.get(key) or (placed.get(key) or {}).get("available")
        b = blocks.get(key) if key != "io" else None
        w = wrapper.get(key) if key != "io" else None
        p = (placed.get(key) or {}).get("used")
        used = p if p is not None else ((b or 0) + (w or 0) if b is not None else None)
        if key == "io":
            used = p if p is not None else syn.get("total", {}).get("io")
        name = _NAMES[key] + (f" ({_bram_unit(report)})" if key == "bram" else "")
        rows.append([name, fmt_int(b), _pct(b, cap), fmt_int(w), fmt_int(p), fmt_int(cap), _pct(used, cap)])
    return rows


def _table(header: list[str], rows: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(report: Mapping[str, Any], command: str | None = None) -> str:
    t = report["target"]
    out = [f"# FPGA implementation report: {' + '.join(b['kind'] for b in report.get('blocks', []))} "
           f"on {t['name']}", ""]
    out.append(f"**{summary_line(report)}**")
    out.append("")
    if command:
        out += ["Command:", "", f"    {command}", ""]
    s = report["settings"]
    out.append(f"Device: {t['part']} ({t['package']}{', speed ' + t['speed'] if t['speed'] else ''}); "
               f"capacities: {t['sources']}. Number formats: `{s['formats']}`; conv parallelism "
               f"L={s['parallelism']}; classifier lanes {s['lanes']}; {s['classes']} classes, "
               f"{s['hidden']} hidden units. Target clock {report['options']['freq_mhz']:g} MHz, "
               f"nextpnr seeds {', '.join(map(str, report['options']['seeds']))} (Fmax: their median). Tools: {report['tools']['yosys']}; "
               f"{report['tools']['nextpnr']}.")
    out.append("")
    if report.get("missing_blocks"):
        out.append("Blocks not built (RTL not available yet): " +
                   "; ".join(f"{k}: {v}" for k, v in report["missing_blocks"].items()))
        out.append("")
    if report.get("error"):
        out += [f"**Error:** {report['error']}", ""]

    fit = report.get("fit")
    if fit:
        out.append(f"## Fit ({fit['stage']})")
        out.append("")
        out.append(fit["message"] + ".")
        out.append("")

    if report.get("synthesis", {}).get("ok"):
        out.append("## Resources")
        out.append("")
        out.append(_table(["resource", "block(s) (Yosys)", "block % of device", "study wrapper (Yosys)",
                           "placed total (nextpnr)", "available", "used %"], _resource_rows(report)))
        out.append("")
        out.append("Block and wrapper columns come from Yosys `stat` after technology mapping, with the "
                   "blocks kept as separate modules (LUT4 counts LUT4 cells, two per CCU2C carry cell and "
                   "four per 16x4 LUT-RAM cell on ECP5). The placed total is nextpnr's packed utilisation of "
                   "the whole design (ECP5: TRELLIS_COMB, which also counts route-through LUTs that the "
                   "packer adds for flip-flops fed without logic; iCE40: logic cells, each one LUT4 + one "
                   "flip-flop). The used % is of the placed total when nextpnr ran. "
                   f"Study wrapper: {report['wrapper']['input_bits']} input + "
                   f"{report['wrapper']['output_bits']} output bits on pins "
                   f"{', '.join(report['wrapper']['pins'])} "
                   f"({report['wrapper']['method']}).")
        out.append("")
        mems = report["synthesis"].get("memories", [])
        if mems:
            out.append("### Memories")
            out.append("")
            out.append(_table(["module", "memory", "mapped to"],
                              [[m["module"], m["memory"], m["mapped_to"]] for m in mems]))
            out.append("")

    pnr = report.get("pnr")
    if pnr:
        out.append("## Clock")
        out.append("")
        if pnr.get("fmax_mhz") is not None:
            verdict = "PASS" if pnr["passed"] else "FAIL"
            out.append(f"Maximum clock frequency (nextpnr, after routing): **{pnr['fmax_mhz']:.2f} MHz** "
                       f"({verdict} at {pnr['target_mhz']:g} MHz; clock net `{pnr['clock']}`).")
        else:
            out.append("No Fmax: " + "; ".join(pnr.get("errors", [])))
        out.append("")
        cps = [p for p in pnr.get("critical_paths", [])
               if p["from"] == p["to"] and p["from"].startswith("posedge")]
        for cp in cps[:1]:
            out.append(f"Critical path: {cp['delay_ns']:.2f} ns = {cp['logic_ns']:.2f} ns logic + "
                       f"{cp['routing_ns']:.2f} ns routing, {cp['logic_levels']} logic cells, from "
                       f"`{cp['start_cell']}` to `{cp['end_cell']}`.")
            if cp.get("by_type"):
                out.append("")
                parts = [f"{t}: {v['cells']} cell{'s' if v['cells'] != 1 else ''}, {v['ns']:.2f} ns"
                         for t, v in sorted(cp["by_type"].items(), key=lambda kv: -kv[1]["ns"])]
                out.append("Logic delay by cell type: " + "; ".join(parts) + ".")
            if cp.get("source_lines"):
                out.append("")
                out.append("Source lines along the path (first occurrence order): " +
                           ", ".join(f"`{s}`" for s in cp["source_lines"]) + ".")
            out.append("")
            out.append("Nets along the path: " + " → ".join(f"`{s}`" for s in cp["signals"][:40]) +
                       (" …" if len(cp["signals"]) > 40 else ""))
            out.append("")

    thr = report.get("throughput")
    if thr:
        out.append("## Throughput")
        out.append("")
        rows = []
        for b, tb in zip(report["blocks"], thr["blocks"]):
            c = b["cycles_per_image"]
            e = b["external_bytes_per_image"]
            rows.append([b["kind"], fmt_int(c["value"]), c["kind"],
                         fmt_rate(tb["images_per_second"], "img/s"),
                         fmt_int(e["value"]), fmt_rate(tb["external_bytes_per_second"], "B/s"),
                         c["source"] + "; bytes: " + e["source"]])
        out.append(_table(["block", "cycles/image", "kind", "images/s at Fmax", "external bytes/image",
                           "external bandwidth", "source"], rows))
        out.append("")
        if thr.get("images_per_second") is not None:
            out.append(f"At {thr['fmax_mhz']:.2f} MHz the design processes "
                       f"**{fmt_rate(thr['images_per_second'], 'images/s')}** "
                       f"(bottleneck: {thr['bottleneck']}; "
                       f"with several blocks each works on a different image) and needs "
                       f"{fmt_rate(thr['external_bytes_per_second'], 'B/s')} of external-memory bandwidth.")
            out.append("")
        mems = thr.get("external_memories") or []
        if mems:
            out.append("### With a named external memory")
            out.append("")
            out.append(f"{fmt_int(thr['external_bytes_per_image'])} bytes in "
                       f"{thr['external_bursts_per_image']:.1f} bursts per image "
                       f"({mems[0]['burst_bytes']:.0f} bytes per burst); each burst a DRAM row miss "
                       "(spykehw/fpga/memories.py: time = row_miss_ns + bytes / peak; refresh not modelled):")
            out.append("")
            out.append(_table(["memory", "board", "peak", "row miss", "effective at this burst",
                               "memory-bound images/s", "images/s = min(compute, memory)", "limited by"],
                              [[f"`{m['name']}`", m["board"], fmt_rate(m["peak_bytes_per_s"], "B/s"),
                                f"{m['row_miss_ns']:.1f} ns", fmt_rate(m["effective_bytes_per_s"], "B/s"),
                                fmt_rate(m["memory_images_per_second"], "img/s"),
                                f"**{fmt_rate(m['images_per_second'], 'img/s')}**", m["limited_by"]]
                               for m in mems]))
            out.append("")
    out.append("Files: `synth.log` and `nextpnr.log` (tool logs), `stat.json` (Yosys cell counts), "
               "`nextpnr-report.json` (utilisation, Fmax, critical paths), `rtl/` (generated Verilog), "
               "`report.json` (this report as data); `manifest.json` lists them all.")
    out.append("")
    return "\n".join(out)


# --- sweep table ------------------------------------------------------------------------------

SWEEP_COLUMNS = ("block", "target", "config", "parallelism", "lanes", "accuracy", "status", "lut4",
                 "lut4_pct", "ff", "bram", "dsp", "fmax_mhz", "cycles_per_image", "cycles_kind",
                 "images_per_second", "external_bytes_per_second", "verdict")


def sweep_row(point: Mapping[str, Any], report: Mapping[str, Any], accuracy: float | None) -> dict[str, Any]:
    """One row of the trade-off table from a point's report."""
    pnr = report.get("pnr") or {}
    util = pnr.get("utilization", {})
    total = (report.get("synthesis") or {}).get("total", {})
    lut_key = "lc" if "lc" in util else "lut4"
    lut = (util.get(lut_key) or {}).get("used", total.get("lut4"))
    cap = report["target"]["capacities"].get("lut4")
    thr = report.get("throughput") or {}
    return {
        "block": point["block"], "target": point["target"], "config": point["config"],
        "parallelism": point["parallelism"], "lanes": point["lanes"], "accuracy": accuracy,
        "status": report["status"], "lut4": lut,
        "lut4_pct": None if lut is None or not cap else round(100.0 * lut / cap, 1),
        "ff": (util.get("ff") or {}).get("used", total.get("ff")),
        "bram": (util.get("bram") or {}).get("used", total.get("bram")),
        "dsp": (util.get("dsp") or {}).get("used", total.get("dsp")),
        "fmax_mhz": pnr.get("fmax_mhz"),
        "cycles_per_image": thr.get("cycles_per_image"),
        "cycles_kind": next((b["cycles_kind"] for b in thr.get("blocks", [])
                             if b["kind"] == thr.get("bottleneck")), None),
        "images_per_second": thr.get("images_per_second"),
        "external_bytes_per_second": thr.get("external_bytes_per_second"),
        "verdict": summary_line(report),
    }


def render_sweep_markdown(rows: list[Mapping[str, Any]], title: str) -> str:
    header = ["config", "block", "L", "lanes", "accuracy", "LUTs (%)", "FF", "BRAM", "DSP", "Fmax MHz",
              "cycles/img", "img/s", "ext. B/s", "status"]
    body = []
    for r in rows:
        acc = "" if r["accuracy"] is None else f"{100 * r['accuracy']:.2f}%"
        lut = "—" if r["lut4"] is None else f"{r['lut4']:,} ({r['lut4_pct']}%)"
        par = str(r["parallelism"]) if r["block"] in ("conv", "all") else "—"
        lanes = str(r["lanes"]) if r["block"] in ("classifier", "all") else "—"
        body.append([r["config"], r["block"], par, lanes, acc, lut,
                     fmt_int(r["ff"]), fmt_int(r["bram"]), fmt_int(r["dsp"]),
                     "—" if r["fmax_mhz"] is None else f"{r['fmax_mhz']:.1f}",
                     fmt_int(r["cycles_per_image"])
                     + (f" ({r['cycles_kind']})" if r.get("cycles_kind") else ""),
                     fmt_rate(r["images_per_second"]),
                     fmt_rate(r["external_bytes_per_second"]), r["status"]])
    return (f"# {title}\n\n" + _table(header, body) + "\n\nLUTs: placed LUT4s on ECP5 (TRELLIS_COMB), "
            "placed logic cells on iCE40; Yosys' count when the design was not placed. Cycles per "
            "image of the slowest block, with where the figure comes from (measured, model, bound); "
            "images/s at the achieved Fmax.\n")


def render_sweep_csv(rows: list[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(SWEEP_COLUMNS), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in SWEEP_COLUMNS})
    return buf.getvalue()
