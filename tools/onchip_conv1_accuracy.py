#!/usr/bin/env python3
"""Test accuracy of a trained integer network with the Conv1 weights trained on chip.

Takes a golden run's integer state (``spykehw run`` -> ``run-*/int_state.npz``: Conv1 STDP with
the default options, then the integer classifier) and the weights read from the learning core
after ``spykehw cosim learn --out DIR`` (``DIR/onchip_weights.npz``: ``snapshot``, the last
snapshot, which the default ``last_snapshot_weights`` hands to inference, and ``weights``, the
final ones). Says whether they equal the state's ``conv1_weights`` and ``conv1_final_weights``,
writes a copy of the state with the on-chip weights in their place, and classifies the test set
with both states through the integer model (``spykehw.load(...).predict``). Prints one JSON object.

Usage::

    python tools/onchip_conv1_accuracy.py RUN/int_state.npz DIR/onchip_weights.npz \\
        --dataset mnist --data-dir ../shared/datasets --out DIR/onchip_state.npz
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

import spykehw
from spykehw.data.datasets import load_dataset
from spykehw.golden.state import load_state, save_state


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("state", type=Path, help="golden integer state (run-*/int_state.npz)")
    ap.add_argument("onchip", type=Path, help="onchip_weights.npz from spykehw cosim learn --out")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--test-limit", type=int, default=None)
    ap.add_argument("--out", type=Path, required=True, help="where the state with on-chip weights goes")
    args = ap.parse_args()

    t0 = time.perf_counter()
    golden = load_state(args.state)
    with np.load(args.onchip) as f:
        snapshot, final = np.asarray(f["snapshot"], np.int64), np.asarray(f["weights"], np.int64)
    onchip = dataclasses.replace(
        golden, conv1_weights=snapshot, conv1_final_weights=final,
        snapshots=snapshot[None], snapshot_steps=golden.snapshot_steps[-1:],
        results={**golden.results, "conv1_weights_source": str(args.onchip)})
    save_state(args.out, onchip)
    ds = load_dataset(args.dataset, args.data_dir)
    images, labels = ds.test_images[:args.test_limit], ds.test_labels[:args.test_limit]
    out = {
        "snapshot_equals_golden_conv1_weights": bool(np.array_equal(snapshot, golden.conv1_weights)),
        "final_equals_golden_conv1_final_weights": bool(np.array_equal(final, golden.conv1_final_weights)),
        "test_images": int(len(labels)),
    }
    classes = {}
    for name, path in (("golden", args.state), ("onchip", args.out)):
        classes[name] = spykehw.load(path).predict(images, model="int").classes
        out[f"{name}_test_accuracy"] = float(np.mean(classes[name] == labels))
    out["same_class_images"] = int(np.sum(classes["golden"] == classes["onchip"]))
    out["wall_s"] = time.perf_counter() - t0
    print(json.dumps(out, indent=1))
    return 0 if out["golden_test_accuracy"] == out["onchip_test_accuracy"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
