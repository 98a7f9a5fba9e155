"""Where the float reference's accuracy goes (issue 15, item 3): stage statistics and cheap
classifier experiments on cached features.

    python tools/accuracy_gap.py features --dataset mnist --data-dir ../shared/datasets \
        [--set KEY=VALUE ...] [--cache DIR]
    python tools/accuracy_gap.py classify --dataset mnist --data-dir ../shared/datasets \
        [--set KEY=VALUE ...] [--seeds 0,1,2] [--train-rows N] [--epochs E] [--out result.json]

``features`` trains Conv1 (float reference, the options in force) and extracts the features of
every image once; they are cached under ``--cache`` (default ``runs/feature-cache``) by a digest
of the dataset, the options that change them and the code (``quant.stages.code_version``, the
quantization store's key), and it prints the
stage statistics the spec quotes (encoder spikes per image, STDP winners per image, Conv1
``C_l``, Pool1 spikes and active features per image). ``classify`` trains the float classifier
on the cached features (computing them if needed) with the classifier options in force, one
run per seed, and prints the validation curve, the best validation accuracy and the test
accuracies (at the best validation epoch and of the final parameters), plain and balanced.
``--permute SEED`` shuffles the training rows once before the validation split (the authors'
stored order is not known for MNIST). ``--train-rows`` keeps the validation rows and only the first N training rows after them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from spykehw.data import load_dataset
from spykehw.golden import metrics
from spykehw.golden.classifier import predict, train_classifier
from spykehw.golden.option_sets import apply_settings, changed_keys, options_preset, parse_setting
from spykehw.golden.options import dotted_keys
from spykehw.golden.pipeline import encode, extract_features, train_conv1
from spykehw.quant.stages import code_version

ROOT = Path(__file__).resolve().parents[1]


def _options(a):
    base = options_preset("authors-code", a.dataset)
    return apply_settings(base, [parse_setting(s) for s in a.set])


def _feature_key(a, opts) -> str:
    d = dotted_keys(opts.to_dict())
    relevant = {k: v for k, v in d.items() if not k.startswith("classifier.") or k == "classifier.seed"}
    relevant.pop("classifier.seed", None)
    blob = json.dumps([a.dataset, a.data_seed, relevant, code_version()], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def features(a, opts, quiet: bool = False):
    cache = Path(a.cache) / f"{a.dataset}-{_feature_key(a, opts)}.npz"
    ds = load_dataset(a.dataset, a.data_dir, seed=a.data_seed)
    if cache.exists():
        z = np.load(cache)
        return ds, z["train"], z["test"], json.loads(str(z["stats"]))
    t0 = time.perf_counter()
    trace = train_conv1(ds.train_images[:opts.stdp_images], opts, None)
    t1 = time.perf_counter()
    tr = extract_features(ds.train_images, trace.weights, opts, None)
    te = extract_features(ds.test_images, trace.weights, opts, None)
    t2 = time.perf_counter()
    lat = encode(ds.train_images[:10000], opts.encoder, None)
    cl, _ = trace.convergence()
    stats = {
        "encoder_spikes_per_image": float((lat >= 0).sum(axis=(1, 2, 3)).mean()),
        "encoder_on_off_per_image": [float(v) for v in (lat >= 0).sum(axis=(2, 3)).mean(axis=0)],
        "stdp_winners_per_image": float(trace.winners_per_image(opts.encoder.steps).mean()),
        "stdp_winners_last_1000": float(trace.winners_per_image(opts.encoder.steps)[-1000:].mean()),
        "conv1_C_l_last": float(cl[-1]) if len(cl) else None,
        "conv1_spikes_per_image": float(tr.spike_counts.mean()),
        "pool1_spikes_per_image": float(tr.pool_counts.sum(axis=1).mean()),
        "active_features_per_image": float(tr.features.sum(axis=1).mean()),
        "maps_used": int((tr.features.reshape(len(tr.features), opts.conv.maps, -1).sum(axis=(0, 2)) > 0).sum()),
        "seconds_stdp": round(t1 - t0, 1), "seconds_features": round(t2 - t1, 1),
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".{__import__('os').getpid()}.tmp.npz")
    np.savez_compressed(tmp, train=tr.features, test=te.features, stats=json.dumps(stats))
    tmp.replace(cache)
    return ds, tr.features, te.features, stats


def classify(a, opts):
    ds, xtr, xte, stats = features(a, opts)
    c = opts.classifier
    n_val = int(c.val_fraction * len(xtr))
    end = len(xtr) if a.train_rows is None else n_val + a.train_rows
    ytr = ds.train_labels
    if a.permute is not None:  # the stored order the classifier sees (validation rows and batches)
        perm = np.random.default_rng(a.permute).permutation(len(xtr))
        xtr, ytr = xtr[perm], ytr[perm]
    out = []
    for seed in a.seeds:
        co = apply_settings(opts, [("classifier.seed", seed)]).classifier
        if a.epochs:
            co = apply_settings(opts, [("classifier.seed", seed), ("classifier.epochs", a.epochs)]).classifier
        r = train_classifier(xtr[n_val:end], ytr[n_val:end], xtr[:n_val], ytr[:n_val], len(ds.classes), co,
                             test_x=xte, test_y=ds.test_labels, progress=False)
        _, pred = predict(r.best_params, xte, co)
        row = {"seed": seed, "best_val": r.best_val_acc, "best_epoch": r.best_epoch,
               "test_best": r.test_acc_best, "test_final": r.test_acc_final,
               "balanced_best": metrics.balanced_accuracy(ds.test_labels, pred, len(ds.classes)),
               "val_curve": [round(h["val_acc"], 5) for h in r.history],
               "train_curve": [round(h["train_acc"], 5) for h in r.history],
               "seconds": round(r.seconds, 1)}
        out.append(row)
        print(f"seed {seed}: best val {100 * row['best_val']:.2f}% (epoch {row['best_epoch']}), test at "
              f"best val {100 * row['test_best']:.2f}% (balanced {100 * row['balanced_best']:.2f}%), "
              f"final {100 * row['test_final']:.2f}%, {row['seconds']:.0f}s; val curve "
              + " ".join(f"{100 * v:.2f}" for v in row["val_curve"]), flush=True)
    tb = np.array([r["test_best"] for r in out])
    print(f"test at best val over {len(out)} seeds: mean {100 * tb.mean():.2f}% std "
          f"{100 * tb.std(ddof=1) if len(tb) > 1 else 0:.2f} min {100 * tb.min():.2f} max {100 * tb.max():.2f}")
    return {"stats": stats, "runs": out}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["features", "classify"])
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-dir", type=Path)
    p.add_argument("--data-seed", type=int, default=0, help="the EMNIST split's seed")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--cache", default=str(ROOT / "runs" / "feature-cache"))
    p.add_argument("--seeds", default="0")
    p.add_argument("--train-rows", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--permute", type=int, metavar="SEED",
                   help="shuffle the training rows once (seeded) before the validation split")
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    a.seeds = [int(s) for s in a.seeds.split(",")]
    opts = _options(a)
    diff = changed_keys(opts, options_preset("authors-code", a.dataset))
    print(f"options: authors-code{''.join(f' + {k}={v}' for k, v in diff.items())}", flush=True)
    if a.what == "features":
        res = {"stats": features(a, opts)[3]}
    else:
        res = classify(a, opts)
    print(json.dumps(res["stats"]), flush=True)
    if a.out:
        a.out.write_text(json.dumps({"options": diff, **res}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
