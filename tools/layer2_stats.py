"""Pool1 spike counts and Conv2 convergence on real data, without the classifiers (issue 17).

What the closing note compares with the authors' saved run (spec 5.4, 6, 9): Pool1 spikes per
image with and without Pool1 lateral inhibition (61 and 154.1 on their EMNIST data), and Conv2
STDP as net4 (no inhibition, 35,000 images, 1 epoch) or net5 (inhibition, 60,000 images,
2 epochs): winners per image, C_l and TD per snapshot, the image at which A+ reaches its cap.

    python tools/layer2_stats.py --dataset emnist --data-dir ../shared/datasets --net 4 \
        [--model float|int] [--pool-images N] [--conv2-images N] [--out stats.json]

Conv1 is trained as in ``spykehw run`` (first 6,000 training images); Pool1 counts are over the
first ``--pool-images`` training images; Conv2 trains on the first ``--conv2-images`` (default:
the net's count) for the net's epochs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from spykehw.data import load_dataset
from spykehw.golden.formats import preset
from spykehw.golden.options import NetworkOptions, PoolOptions
from spykehw.golden.pipeline import train_conv1
from spykehw.golden.pipeline2 import pool1_spikes, train_conv2

NETS = {4: (PoolOptions(), 35000, 1), 5: (PoolOptions(True, True), 60000, 2)}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="emnist")
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--net", type=int, choices=[4, 5], default=4)
    p.add_argument("--model", choices=["float", "int"], default="float")
    p.add_argument("--pool-images", type=int, default=20000)
    p.add_argument("--conv2-images", type=int, default=None)
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    fmt = None if a.model == "float" else preset("fpga-16")
    pool, n2, epochs = NETS[a.net]
    n2 = a.conv2_images or n2
    ds = load_dataset(a.dataset, a.data_dir)
    opts = NetworkOptions()
    out: dict = {"dataset": ds.name, "model": a.model, "net": a.net, "seconds": {}}
    t = time.perf_counter()
    w1 = train_conv1(ds.train_images[:opts.stdp_images], opts, fmt).weights
    out["seconds"]["conv1_stdp"] = round(time.perf_counter() - t, 1)
    x = ds.train_images[:max(a.pool_images, n2)]
    counts = {}
    for label, po in (("no_inhibition", PoolOptions()), ("inhibition", PoolOptions(True, True))):
        t = time.perf_counter()
        r = pool1_spikes(x[:a.pool_images], w1, dataclasses.replace(opts, pool1=po), fmt)
        counts[label] = float(r.spikes_per_image().mean())
        out["seconds"][f"pool1_{label}"] = round(time.perf_counter() - t, 1)
    out["pool1_spikes_per_image"] = {**counts, "images": min(a.pool_images, len(x)),
                                     "authors_saved_run": {"no_inhibition": 154.1, "inhibition": 61}}
    print(json.dumps(out["pool1_spikes_per_image"]), flush=True)
    o2 = dataclasses.replace(opts, pool1=pool, conv2_images=n2, conv2_epochs=epochs)
    t = time.perf_counter()
    p1 = pool1_spikes(x[:n2], w1, o2, fmt)
    tr = train_conv2(p1.events, o2, fmt)
    out["seconds"]["conv2_stdp"] = round(time.perf_counter() - t, 1)
    c, td = tr.convergence()
    wpi = tr.winners_per_image(opts.encoder.steps)
    images = tr.snapshot_steps[1:] / opts.encoder.steps
    pick = np.unique(np.linspace(0, len(c) - 1, min(12, len(c))).round().astype(int))
    # rate level k is reached at global step (k - 1) * lr_period (step0_doubling): A+ = a_plus * 2^k
    cap_level = next(k for k in range(64) if o2.conv2.a_plus * 2 ** k >= (o2.conv2.rate_cap or np.inf))
    out["conv2"] = {
        "images": n2, "epochs": epochs, "pool1": dataclasses.asdict(pool),
        "winners_per_image": float(wpi.mean()),
        "winners_per_image_first_100": float(wpi[:100].mean()),
        "winners_per_image_last_1000": float(wpi[-1000:].mean()),
        "snapshots": int(len(tr.snapshots)),
        "C_l": {f"{images[i]:.0f}": round(float(c[i]), 5) for i in pick},
        "TD": {f"{images[i]:.0f}": float(f"{td[i]:.3e}") for i in pick},
        "C_l_last": float(c[-1]), "TD_last": float(td[-1]),
        "rate_cap_reached_at_image": (cap_level - 1) * o2.conv2.lr_period / opts.encoder.steps,
        "updates_per_map": {"min": int(tr.updates_per_map.min()), "max": int(tr.updates_per_map.max()),
                            "maps_never_updated": int((tr.updates_per_map == 0).sum())},
    }
    text = json.dumps(out, indent=1)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
