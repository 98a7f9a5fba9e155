#!/usr/bin/env python3
"""Block RAMs of the on-chip classifier as Yosys maps them (ECP5), per hidden size and weight bits.

For each ``HIDDEN:BITS`` the classifier block (``rtl/classifier.py``, ``W2`` on chip, 32 lanes,
3630 features, 10 classes; base formats with the classifier weights at ``BITS`` bits, biases
``BITS + 4``) is written as RTLIL and run through ``synth_ecp5 -run begin:map_ffram`` (YoWASP
Yosys of the ``fpga`` extra): up to and including the memory mapping, which fixes the DP16KD
count (place and route does not change it). Prints a line per point and writes a JSON
``{"H:BITS": {"dp16kd", "lutram", "memories": [{memory, mapped_to}], "seconds"}}``.

Usage::

    python tools/measure_classifier_bram.py 128:4 256:3 --out runs/classifier-bram.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from amaranth.back import rtlil
from spykehw.fpga.parse import memory_mapping
from spykehw.fpga.tools import find_tool
from spykehw.golden.formats import load_formats
from spykehw.golden.options import CONV1
from spykehw.rtl.classifier import Classifier, ClassifierConfig

SCRIPT = """read_rtlil classifier.il
hierarchy -top classifier
synth_ecp5 -top classifier -run begin:map_ffram
tee -q -o stat.json stat -json
"""


def measure(hidden: int, bits: int, base: str, lanes: int, classes: int) -> dict:
    fmt = load_formats(base).replace(**{
        "classifier.hidden_weight_bits": bits, "classifier.hidden_weight_frac": bits - 1,
        "classifier.hidden_bias_bits": bits + 4, "classifier.output_weight_bits": bits,
        "classifier.output_weight_frac": bits - 1, "classifier.output_bias_bits": bits + 4})
    cfg = ClassifierConfig(CONV1.features, hidden, classes, fmt, lanes=lanes, w2_on_chip=True)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "classifier.il").write_text(rtlil.convert(Classifier(cfg), name="classifier", emit_src=False))
        (work / "synth.ys").write_text(SCRIPT)
        run = subprocess.run([*find_tool("yosys"), "-s", "synth.ys"], cwd=work, capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"yosys failed for H={hidden}, {bits} bits:\n{run.stdout[-2000:]}")
        cells = json.loads((work / "stat.json").read_text())["design"]["num_cells_by_type"]
        mems = memory_mapping(run.stdout)
    return {"hidden": hidden, "bits": bits, "lanes": lanes, "dp16kd": cells.get("DP16KD", 0),
            "lutram": cells.get("TRELLIS_DPR16X4", 0),
            "memories": [{"memory": m["memory"], "mapped_to": m["mapped_to"]} for m in mems],
            "seconds": round(time.perf_counter() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("points", nargs="+", metavar="HIDDEN:BITS")
    ap.add_argument("--base", default="fpga-8")
    ap.add_argument("--lanes", type=int, default=32)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--out", type=Path, required=True, help="JSON file (updated: points already in it are kept)")
    args = ap.parse_args(argv)
    done = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for item in args.points:
        if item in done:
            continue
        h, b = (int(x) for x in item.split(":"))
        done[item] = measure(h, b, args.base, args.lanes, args.classes)
        r = done[item]
        print(f"H={h} bits={b}: {r['dp16kd']} DP16KD, {r['lutram']} TRELLIS_DPR16X4 ({r['seconds']} s)", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(done, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
