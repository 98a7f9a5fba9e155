#!/usr/bin/env python3
"""On-chip design points from ``spykehw quant`` sweeps: accuracy, block RAM estimate, the choice.

Reads the ``results.csv`` of one or more sweep folders (the classifier-bits points, with their
float baselines per dataset and hidden size), estimates each point's classifier block RAMs on
the target with every weight on chip (:mod:`spykehw.fpga.onchip`), takes the synthesised count
where ``--measured`` (``tools/measure_classifier_bram.py``) has it, adds the conv core's
measured blocks, and writes a JSON report, a Markdown table (stdout) and the chosen point as a formats
TOML (``spykehw verilog accelerator --config FILE --hidden H``).

Usage::

    python tools/design_points.py runs/dp-mnist [runs/dp-qat ...] --conv-bram 33 \\
        --measured runs/classifier-bram.json \\
        --conv-bram-source "spykehw fpga --block conv ... (synth.log)" \\
        --json reports/design_points_mnist.json --toml configs/mnist-onchip.toml
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from spykehw.fpga.devices import device
from spykehw.fpga.onchip import DEFAULT_CLASSIFIER_LANES, choose_design_point, classifier_bram
from spykehw.golden.formats import ClassifierFormat, load_formats
from spykehw.golden.options import CONV1

TEST_IMAGES = 10000     # the MNIST test set the accuracies are measured on

FORMAT_COLUMNS = ("hidden_weight_bits", "hidden_weight_frac", "hidden_bias_bits",
                  "output_weight_bits", "output_weight_frac", "output_bias_bits")


def read_rows(folders: list[Path]) -> list[dict]:
    rows = []
    for folder in folders:
        with open(folder / "results.csv", newline="") as f:
            rows += [dict(r, sweep=str(folder)) for r in csv.DictReader(f)]
    return rows


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def design_points(rows: list[dict], dev, conv_blocks: int, lanes: int, measured: dict) -> list[dict]:
    """One point per (dataset, hidden, bits, QAT epochs): accuracies averaged over the repeats
    found (each repeat listed; the range rule may give each its own fractions: the first
    repeat's formats define the point), float baseline of the same hidden size averaged over the
    same repeats."""
    floats: dict[tuple, dict[int, float]] = {}
    groups: dict[tuple, dict[int, dict]] = {}
    for r in rows:
        hidden = int(r["classifier_hidden"])
        if r["model"] == "float":
            floats.setdefault((r["dataset"], hidden), {})[int(r["repeat"])] = float(r["acc_pct"])
        elif "classifier" in r["axes"].split("+"):
            key = (r["dataset"], hidden, int(r["hidden_weight_bits"]), int(r["qat_epochs"] or 0))
            groups.setdefault(key, {})[int(r["repeat"])] = r
    out = []
    for (ds, hidden, bits, qat), by_repeat in groups.items():
        reps = [by_repeat[k] for k in sorted(by_repeat)]
        r = reps[0]
        fmt = ClassifierFormat(**{k: int(r[k]) for k in FORMAT_COLUMNS})
        need = classifier_bram(fmt, hidden, dev, features=CONV1.features, lanes=lanes)
        synth = measured.get(f"{hidden}:{bits}", {}).get("dp16kd")
        total = (need["blocks"] if synth is None else synth) + conv_blocks
        acc = _mean([float(x["acc_pct"]) for x in reps])
        flt = {k: v for k, v in floats.get((ds, hidden), {}).items() if k in by_repeat}
        flt_mean = None if not flt else _mean(list(flt.values()))
        out.append({
            "dataset": ds, "hidden": hidden, "bits": bits, "qat_epochs": qat,
            "epochs": int(r["classifier_epochs"]), "repeats": len(reps),
            "formats": {k: int(r[k]) for k in FORMAT_COLUMNS},
            "acc_pct": acc, "acc_pct_by_repeat": {int(x["repeat"]): float(x["acc_pct"]) for x in reps},
            "balanced_acc_pct": _mean([float(x["balanced_acc_pct"]) for x in reps]),
            "acc_ptq_pct_by_repeat": {int(x["repeat"]): float(x["acc_ptq_pct"]) for x in reps if x["acc_ptq_pct"]},
            "float_acc_pct": flt_mean, "float_acc_pct_by_repeat": flt,
            "delta_vs_float_points": None if flt_mean is None else acc - flt_mean,
            "test_images": int(r["test_images"]),
            "saturated": {k: int(r[f"saturated_{k}"]) for k in ("W2", "b2", "W3", "b3")},
            "w2_kbit": CONV1.features * hidden * bits / 1024,
            "weight_kbit": need["weight_bits"] / 1024, "memories": need["memories"],
            "blocks_classifier_estimate": need["blocks"], "blocks_classifier_synthesised": synth,
            "blocks_conv": conv_blocks, "blocks_total": total,
            "fits": total <= dev.bram_blocks,
            "point_overrides": ",".join(f"classifier.{k}={r[k]}" for k in FORMAT_COLUMNS),
            "keys": [x["key"] for x in reps], "sweeps": sorted({x["sweep"] for x in reps}),
        })
    return sorted(out, key=lambda p: (p["dataset"], p["hidden"], p["bits"], p["qat_epochs"]))


def markdown(points: list[dict], dev) -> str:
    lines = ["| H | bits | QAT epochs | integer acc % (per seed) | float acc % (same H) | W2 Kbit | classifier EBR estimate "
             f"| classifier EBR synthesised | + conv = total EBR | fits {dev.name} ({dev.bram_blocks}) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for p in points:
        synth = p["blocks_classifier_synthesised"]
        acc = f"{p['acc_pct']:.2f}" + ("" if p["repeats"] == 1 else " (" + " / ".join(
            f"{a:.2f}" for a in p["acc_pct_by_repeat"].values()) + ")")
        lines.append(f"| {p['hidden']} | {p['bits']} | {p['qat_epochs'] or '-'} | {acc} | "
                     f"{p['float_acc_pct']:.2f} | {p['w2_kbit']:,.0f} | {p['blocks_classifier_estimate']} | "
                     f"{'-' if synth is None else synth} | + {p['blocks_conv']} = {p['blocks_total']} | "
                     f"{'yes' if p['fits'] else 'no'} |")
    return "\n".join(lines)


def point_toml(p: dict, base: str) -> str:
    body = "\n".join(f"{k} = {v}" for k, v in p["formats"].items())
    return (f"# The on-chip MNIST design point of the accelerator (README \"Design points\"): {base} with "
            f"{p['bits']}-bit classifier weights,\n# hidden {p['hidden']}, {p['acc_pct']:.2f}% integer accuracy; "
            f"written by tools/design_points.py --toml\n"
            f'preset = "{base}"\nname = "mnist-onchip"\n\n[classifier]\n{body}\n')


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweeps", nargs="+", type=Path, help="spykehw quant sweep folders")
    ap.add_argument("--conv-bram", type=int, required=True, help="the conv core's block RAMs")
    ap.add_argument("--conv-bram-source", required=True, help="where that number comes from")
    ap.add_argument("--measured", type=Path, help="JSON of tools/measure_classifier_bram.py")
    ap.add_argument("--target", default="ecp5-85k")
    ap.add_argument("--base", default="fpga-8", help="the sweeps' base formats (for the TOML)")
    ap.add_argument("--lanes", type=int, default=DEFAULT_CLASSIFIER_LANES)
    ap.add_argument("--target-acc", type=float, default=97.5)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--toml", type=Path)
    args = ap.parse_args(argv)
    dev = device(args.target)
    measured = json.loads(args.measured.read_text()) if args.measured else {}
    points = design_points(read_rows(args.sweeps), dev, args.conv_bram, args.lanes, measured)
    # One seed on 10,000 test images: an accuracy is uncertain by its standard error, about 0.15
    # points near 97.5%; the main flow quantizes after training, so QAT points are listed only.
    margin = 100 * (args.target_acc / 100 * (1 - args.target_acc / 100) / TEST_IMAGES) ** 0.5
    chosen, why = choose_design_point(points, args.target_acc, margin_pct=margin, post_training_only=True)
    print(markdown(points, dev))
    print(f"\nchosen: {why}: " + ("none" if chosen is None else
          f"H={chosen['hidden']}, {chosen['bits']} bits, QAT {chosen['qat_epochs']}, "
          f"{chosen['acc_pct']:.2f}%, {chosen['blocks_total']} blocks"))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "target": dev.name, "bram_blocks": dev.bram_blocks, "bram_block_bits": dev.bram_block_bits,
            "classifier_lanes": args.lanes, "features": CONV1.features, "base": args.base,
            "conv_bram": args.conv_bram, "conv_bram_source": args.conv_bram_source,
            "target_acc_pct": args.target_acc, "margin_pct": margin, "post_training_only": True, "estimate": "spykehw.fpga.onchip (W2, b2, W3 per class, "
            "hidden accumulators; b3 a register; each memory in its best single block configuration, "
            "or LUT RAM where Yosys' costs make it cheaper)",
            "synthesised": "tools/measure_classifier_bram.py: DP16KD after Yosys synth_ecp5 memory mapping "
            "of the classifier with W2 on chip" if measured else None,
            "chosen": chosen, "why": why, "points": points}, indent=1) + "\n")
    if args.toml and chosen is not None:
        args.toml.write_text(point_toml(chosen, args.base))
        load_formats(args.toml)   # the file must load
    return 0


if __name__ == "__main__":
    sys.exit(main())
