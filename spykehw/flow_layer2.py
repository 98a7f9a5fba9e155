"""``spykehw run --layers 2``: the second layer of one model, after its Conv1 (spec 6).

For the float reference or the integer model: Pool1 spike trains of every image (with the
``pool1`` options), Conv2 STDP on the first ``conv2_images`` training images for
``conv2_epochs`` epochs (the authors' net4; net5 with Pool1 lateral inhibition, 60,000 images,
2 epochs), Pool2 features (1800), the classifier on Pool2 and on Pool1 + Pool2 features (the
paper reports no accuracy from Pool2), the Section VII figures, a Conv2 state file and the
packed Pool2 features, all in the run folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .golden import metrics
from .golden.classifier import predict, train_classifier
from .golden.classifier_int import forward_int, quantize_classifier
from .golden.formats import NumberFormats
from .golden.pipeline import model_name
from .golden.pipeline2 import extract_conv2, pool1_spikes, train_conv2
from .golden.progress import Progress, format_duration
from .golden.stored import stable_key, write_checked_npz

__all__ = ["SecondLayerResult", "run_second_layer", "compare_second_layer", "CONV2_STATE_KIND"]

CONV2_STATE_KIND = "spykehw-conv2-state"
FEATURE_SETS = ("pool2", "pool1+pool2")


@dataclass
class SecondLayerResult:
    name: str
    test_acc: dict[str, float]
    test_features: np.ndarray
    pool1_spikes_per_image: float
    seconds: dict[str, float] = field(default_factory=dict)


def _timed(sec: dict[str, float], key: str, fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    sec[key] = round(time.perf_counter() - t, 3)
    return out


def _classify(x: np.ndarray, xt: np.ndarray, ds, opts, fmt: NumberFormats | None, progress: bool
              ) -> tuple[float, Any]:
    """Test accuracy of the classifier trained on ``x`` (best validation epoch; quantized and
    run by the integer forward pass for the integer model)."""
    n_val = int(opts.classifier.val_fraction * len(x))
    y = ds.train_labels
    res = train_classifier(x[n_val:], y[n_val:], x[:n_val], y[:n_val], len(ds.classes), opts.classifier,
                           test_x=xt, test_y=ds.test_labels, progress=progress)
    if fmt is None:
        _, pred = predict(res.best_params, xt, opts.classifier)
    else:
        pred = forward_int(quantize_classifier(res.best_params, fmt), xt, keep_hidden=False).classes
    return metrics.accuracy(ds.test_labels, pred), res


def run_second_layer(ds, cfg, fmt: NumberFormats | None, conv1_trace, folder, report) -> SecondLayerResult:
    """Pool1 trains -> Conv2 STDP -> Pool2 features -> classifiers, plots and files."""
    opts = cfg.options
    name = model_name(fmt)
    tag = "float" if fmt is None else "int"
    sec: dict[str, float] = {}
    n_all = len(ds.train_images) + len(ds.test_images)
    with Progress(f"[{name}] Pool1 spike trains", n_all, enabled=cfg.progress) as p:
        p1 = _timed(sec, "pool1_train", pool1_spikes, ds.train_images, conv1_trace.weights, opts, fmt, progress=p)
        p1t = _timed(sec, "pool1_test", pool1_spikes, ds.test_images, conv1_trace.weights, opts, fmt, progress=p)
    n2 = min(opts.conv2_images, len(ds.train_images))
    with Progress(f"[{name}] Conv2 STDP", n2 * opts.conv2_epochs, enabled=cfg.progress) as p:
        trace2 = _timed(sec, "conv2_stdp", train_conv2, p1.events, opts, fmt, progress=p)
    with Progress(f"[{name}] Pool2 features", n_all, enabled=cfg.progress) as p:
        r2 = _timed(sec, "pool2_train", extract_conv2, p1.events, trace2.weights, opts, fmt, progress=p)
        r2t = _timed(sec, "pool2_test", extract_conv2, p1t.events, trace2.weights, opts, fmt, progress=p)
    sets = {"pool2": (r2.features, r2t.features),
            "pool1+pool2": (np.concatenate([p1.features, r2.features], axis=1),
                            np.concatenate([p1t.features, r2t.features], axis=1))}
    acc: dict[str, float] = {}
    best_val: dict[str, float] = {}
    for key, (x, xt) in sets.items():
        acc[key], res = _timed(sec, f"classifier_{key}", _classify, x, xt, ds, opts, fmt, cfg.progress)
        best_val[key] = res.best_val_acc

    spikes1 = float(p1.spikes_per_image().mean()) if len(p1.features) else 0.0
    wpi = trace2.winners_per_image(opts.encoder.steps)
    conv2_c, conv2_td = trace2.convergence() if len(trace2.snapshots) >= 2 else (np.zeros(0), np.zeros(0))
    _save_files(folder, tag, name, trace2, r2.features, r2t.features, ds, opts, fmt, acc)
    _plots(folder, tag, conv1_trace, trace2, opts.encoder.steps)

    pool_mode = ("lateral inhibition" if opts.pool1.lateral_inhibition else "no inhibition") + \
        (", accumulation" if opts.pool1.spike_accumulation else "")
    report.say(f"[{name}] Pool1 ({pool_mode}): {spikes1:.1f} spikes/image on the training images "
               f"(authors' saved EMNIST run: 154.1 without inhibition, 61 with), "
               f"{p1.features.sum(axis=1).mean():.1f} active features of {p1.features.shape[1]}")
    report.say(f"[{name}] Conv2 STDP: {n2} images x {opts.conv2_epochs} epoch(s) in "
               f"{format_duration(sec['conv2_stdp'])} ({n2 * opts.conv2_epochs / max(sec['conv2_stdp'], 1e-9):,.0f} "
               f"img/s), {wpi.mean():.2f} winners/image, {len(trace2.snapshots)} snapshots"
               + (f", final C_l {conv2_c[-1]:.4f}, TD {conv2_td[-1]:.2e}" if len(conv2_c) else ""))
    t_feat = sec["pool2_train"] + sec["pool2_test"]
    report.say(f"[{name}] Pool2 features: {n_all} images in {format_duration(t_feat)} "
               f"({n_all / max(t_feat, 1e-9):,.0f} img/s), {r2.features.sum(axis=1).mean():.1f} active of "
               f"{r2.features.shape[1]} per image; test accuracy Pool2 {100 * acc['pool2']:.2f}%, "
               f"Pool1+Pool2 {100 * acc['pool1+pool2']:.2f}%")
    report.result(f"{name} layer2", {
        "pool1": {"lateral_inhibition": opts.pool1.lateral_inhibition,
                  "spike_accumulation": opts.pool1.spike_accumulation,
                  "spikes_per_image_train": spikes1,
                  "spikes_per_image_test": float(p1t.spikes_per_image().mean()) if len(p1t.features) else 0.0},
        "conv2": {"images": n2, "epochs": opts.conv2_epochs, "winners_per_image": float(wpi.mean()),
                  "snapshots": len(trace2.snapshots),
                  "convergence_last": float(conv2_c[-1]) if len(conv2_c) else None,
                  "td_last": float(conv2_td[-1]) if len(conv2_td) else None,
                  "updates_per_map_min": int(trace2.updates_per_map.min()),
                  "updates_per_map_max": int(trace2.updates_per_map.max())},
        "pool2_features_per_image": float(r2.features.sum(axis=1).mean()),
        "test_acc": acc, "val_acc": best_val, "seconds": sec})
    return SecondLayerResult(name, acc, r2t.features, spikes1, sec)


def _save_files(folder, tag, name, trace2, ftrain, ftest, ds, opts, fmt, acc) -> None:
    meta = {"model": name, "options": opts.to_dict(), "formats": None if fmt is None else fmt.to_dict(),
            "provenance": ds.provenance, "test_acc": acc}
    key = stable_key({"options": opts.to_dict(), "formats": meta["formats"]})
    write_checked_npz(folder.file(f"{tag}_conv2_state.npz"), {
        "conv2_weights": trace2.weights, "conv2_final_weights": trace2.final_weights,
        "snapshots": trace2.snapshots, "snapshot_steps": np.asarray(trace2.snapshot_steps, np.int64),
        "updates_per_map": trace2.updates_per_map, "winners_per_step": trace2.winners_per_step},
        kind=CONV2_STATE_KIND, key=key, meta=meta)
    folder.add(f"{tag}_conv2_state.npz", f"trained {name} Conv2 (weights used, final weights, snapshots, "
               "STDP statistics); a checked npz (spykehw.golden.stored.read_checked_npz)")
    write_checked_npz(folder.file(f"{tag}_pool2_features.npz"), {
        "train_bits": np.packbits(ftrain, axis=1), "test_bits": np.packbits(ftest, axis=1),
        "train_labels": ds.train_labels, "test_labels": ds.test_labels,
        "features": np.array([ftrain.shape[1]], np.int64)},
        kind="spykehw-pool2-features", key=key, meta=meta, compressed=True)
    folder.add(f"{tag}_pool2_features.npz", f"{name} Pool2 features (1800 bits per image, np.packbits "
               "along axis 1) of the train and test images, with their labels")


def _plots(folder, tag, trace1, trace2, steps: int) -> None:
    from . import plots, plots_layer2  # matplotlib: slow to import

    def emit(name: str, description: str, fn, *args, **kwargs) -> None:
        fn(*args, folder.file(f"{tag}_{name}"), **kwargs)
        folder.add(f"{tag}_{name}", description)

    emit("conv2-spikes-per-image.png", "Conv2 STDP spikes per training image, zoomed inset (paper Fig. 22)",
         plots_layer2.conv2_spikes_per_image_plot, trace2.winners_per_image(steps))
    emit("conv2-updates-per-map.png", "STDP updates per Conv2 map", plots.updates_per_map_plot,
         trace2.updates_per_map, layer="Conv2")
    layers = {}
    for label, tr in (("Conv1", trace1), ("Conv2", trace2)):
        if len(tr.snapshots) >= 2:
            c, td = tr.convergence()
            layers[label] = (c, td, tr.snapshot_steps[1:])
    if layers:
        emit("convergence-both-layers.png", "C_l and TD of Conv1 and Conv2 per snapshot (paper Figs. 23-24, 27-28)",
             plots_layer2.two_layer_convergence_plot, layers, steps_per_image=steps)
    w1 = trace1.to_unit(trace1.weights)
    if len(trace2.snapshots):
        emit("conv2-features.png", "the Conv2 kernels inference uses, projected through Conv1 (ON minus OFF)",
             plots_layer2.conv2_features_plot, trace2.to_unit(trace2.weights), w1)
        # at most 60 frames: a 200-tile frame takes about 0.2 s to draw
        pick = np.unique(np.linspace(0, len(trace2.snapshots) - 1, min(60, len(trace2.snapshots))).round().astype(int))
        emit("conv2-features.gif", "the projected Conv2 kernels during STDP, one frame per snapshot (up to 60)",
             plots_layer2.conv2_features_gif, trace2.to_unit(trace2.snapshots[pick]), trace2.snapshot_steps[pick],
             w1, steps_per_image=steps)


def compare_second_layer(f: SecondLayerResult, i: SecondLayerResult, report) -> None:
    same = np.all(f.test_features == i.test_features, axis=1)
    agree = float((f.test_features == i.test_features).mean())
    report.say(f"[compare layer 2] {i.name} vs float: identical Pool2 features on {100 * same.mean():.1f}% "
               f"of test images ({100 * agree:.2f}% of bits); accuracy gap Pool2 "
               f"{100 * (i.test_acc['pool2'] - f.test_acc['pool2']):+.2f}, Pool1+Pool2 "
               f"{100 * (i.test_acc['pool1+pool2'] - f.test_acc['pool1+pool2']):+.2f} points")
    report.result("compare layer2", {"identical_pool2_features": float(same.mean()),
                                     "pool2_bit_agreement": agree})
