"""The main job: the whole SpykeFlow flow on one dataset, for the float and the integer model.

Stages, each reporting what it did (and each later hardware issue adds one):

1. data: the embedded MNIST sample by default, or real MNIST / EMNIST-47 from ``--data-dir``;
2. for the float reference and then the integer golden model (same initial weights):
   STDP training of Conv1, feature extraction (encode + Conv1 + Pool1), classifier training
   (float, selected by best validation accuracy), quantization (integer model), test accuracy,
   plots and a trained-state file;
3. comparison of the two models (encoder and feature agreement, accuracy gap);
4. hardware: Verilog of the RTL blocks and co-simulation of a few test images (when the
   hardware extras are installed).

Everything goes to one run folder with a manifest (:mod:`spykehw.output`).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .data import Dataset, load_dataset
from .data.datasets import limit_rows
from .golden import metrics
from .golden.classifier import TrainResult, predict, train_classifier
from .golden.classifier_int import forward_int, quantize_classifier
from .golden.formats import DEFAULT_PRESET, NumberFormats, preset
from .golden.option_sets import changed_keys, options_preset, options_to_toml
from .golden.options import NetworkOptions, classifier_defaults
from .golden.pipeline import encode, extract_features, model_name, train_conv1
from .golden.progress import Progress, format_duration
from .golden.state import make_state, save_state
from .flow_layer2 import compare_second_layer, run_second_layer
from .hw_flow import run_hardware_stage
from .output import RunFolder

__all__ = ["RunConfig", "run_flow", "ModelResult"]


@dataclass(frozen=True)
class RunConfig:
    dataset: str = "mnist-sample"
    data_dir: Path | None = None
    seed: int = 0
    options: NetworkOptions = field(default_factory=lambda: NetworkOptions(
        classifier=classifier_defaults("mnist")))
    formats: NumberFormats = field(default_factory=lambda: preset(DEFAULT_PRESET))
    integer: bool = True
    hardware: bool = True
    train_limit: int | None = None
    test_limit: int | None = None
    out_root: Path = Path("runs")
    progress: bool = True
    options_source: str = "authors-code"
    """How the options were chosen (``--options`` and ``--set``), for the report."""
    layers: int = 1
    """2 adds the second layer (Pool1 trains, Conv2, Pool2 features): :mod:`spykehw.flow_layer2`."""


@dataclass
class ModelResult:
    name: str
    fmt: NumberFormats | None
    test_acc: float
    test_acc_final: float | None
    balanced_acc: float
    val_acc: float
    best_epoch: int
    predictions: np.ndarray
    logits: np.ndarray
    train_features: np.ndarray
    test_features: np.ndarray
    test_latencies: np.ndarray
    classifier: TrainResult
    extra: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    conv1_trace: Any = None


class _Report:
    """Collects the short printed report and the JSON results."""

    def __init__(self, folder: RunFolder, stream=None) -> None:
        self.folder = folder
        self.lines: list[str] = []
        self.stream = stream if stream is not None else sys.stdout  # the current one, not import time's

    def say(self, line: str) -> None:
        self.lines.append(line)
        print(line, file=self.stream, flush=True)

    def result(self, key: str, value: Any) -> None:
        self.folder.result(key, value)


def _timed(seconds: dict[str, float], key: str, fn: Callable, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    seconds[key] = round(time.perf_counter() - t, 3)
    return out


def _run_model(ds: Dataset, cfg: RunConfig, fmt: NumberFormats | None, folder: RunFolder,
               report: _Report) -> ModelResult:
    """STDP -> features -> classifier -> accuracy for one model (float when ``fmt`` is None)."""
    opts = cfg.options
    name = model_name(fmt)
    tag = "float" if fmt is None else "int"
    sec: dict[str, float] = {}
    n_stdp = min(opts.stdp_images, len(ds.train_images))
    with Progress(f"[{name}] Conv1 STDP", n_stdp, enabled=cfg.progress) as p:
        trace = _timed(sec, "stdp", train_conv1, ds.train_images[:n_stdp], opts, fmt, progress=p)
    wpi = trace.winners_per_image(opts.encoder.steps)
    n_all = len(ds.train_images) + len(ds.test_images)
    with Progress(f"[{name}] features", n_all, enabled=cfg.progress) as p:
        train_run = _timed(sec, "features_train", extract_features, ds.train_images, trace.weights,
                           opts, fmt, progress=p)
        test_run = _timed(sec, "features_test", extract_features, ds.test_images, trace.weights,
                          opts, fmt, progress=p)
    n_val = int(opts.classifier.val_fraction * len(ds.train_images))
    x, y = train_run.features, ds.train_labels
    result = _timed(sec, "classifier", train_classifier, x[n_val:], y[n_val:], x[:n_val], y[:n_val],
                    len(ds.classes), opts.classifier, test_x=test_run.features,
                    test_y=ds.test_labels, progress=cfg.progress)
    extra: dict[str, Any] = {}
    if fmt is None:
        logits, pred = predict(result.best_params, test_run.features, opts.classifier)
    else:
        extra["float_classifier_test_acc"] = result.test_acc_best
        q = quantize_classifier(result.best_params, fmt)
        fw = _timed(sec, "integer_forward", forward_int, q, test_run.features)
        logits, pred = fw.logits, fw.classes
        extra["quantized"] = q
    test_acc = metrics.accuracy(ds.test_labels, pred)
    if len(ds.classes) == 47:  # EMNIST: the paper's conditioned and collapsed-label accuracies
        extra["conditioned_acc"] = metrics.conditioned_accuracy(logits, ds.test_labels)
        extra["collapsed_acc"] = metrics.collapsed_accuracy(ds.test_labels, pred)
    res = ModelResult(name, fmt, test_acc, result.test_acc_final, 
                      metrics.balanced_accuracy(ds.test_labels, pred, len(ds.classes)),
                      result.best_val_acc, result.best_epoch, pred, logits, x,
                      test_run.features, encode(ds.test_images, opts.encoder, fmt), result, extra, sec,
                      trace)

    # files: trained state, plots
    state = make_state(trace, opts, fmt, classifier=result.best_params,
                       classifier_int=_int_arrays(extra.get("quantized")),
                       provenance=ds.provenance, results={"test_acc": test_acc})
    save_state(folder.file(f"{tag}_state.npz"), state)
    folder.add(f"{tag}_state.npz", f"trained {name} model (Conv1 weights and snapshots, classifier)")
    _plots(folder, tag, trace, test_run, ds, pred, result)

    feat_mean = float(x.sum(axis=1).mean())
    report.say(f"[{name}] Conv1 STDP: {n_stdp} images in {format_duration(sec['stdp'])} "
               f"({n_stdp / max(sec['stdp'], 1e-9):,.0f} img/s), {wpi.mean():.2f} winners/image, "
               f"{len(trace.snapshots)} snapshots")
    report.say(f"[{name}] features: {n_all} images in "
               f"{format_duration(sec['features_train'] + sec['features_test'])}, "
               f"{feat_mean:.1f} active of {x.shape[1]} per image, "
               f"{train_run.pool_counts.sum(axis=1).mean():.1f} pool spikes/image")
    line = (f"[{name}] classifier H={opts.classifier.hidden}: best validation {100 * result.best_val_acc:.2f}% "
            f"after {result.best_epoch} epochs; test {100 * test_acc:.2f}% "
            f"(balanced {100 * res.balanced_acc:.2f}%)")
    if "conditioned_acc" in extra:
        line += (f"; conditioned (digit/upper/lower) {100 * extra['conditioned_acc']:.2f}%, "
                 f"collapsed labels {100 * extra['collapsed_acc']:.2f}%")
    if fmt is not None:
        line += f"; float classifier on these features {100 * result.test_acc_best:.2f}%"
    report.say(line)
    report.result(name, {
        "test_acc": test_acc, "balanced_acc": res.balanced_acc, "val_acc": result.best_val_acc,
        "best_epoch": result.best_epoch, "test_acc_final_params": result.test_acc_final,
        "stdp_winners_per_image": float(wpi.mean()), "features_per_image": feat_mean,
        "seconds": sec, **{k: v for k, v in extra.items() if k != "quantized"},
    })
    return res


def _int_arrays(q) -> dict[str, np.ndarray] | None:
    if q is None:
        return None
    return {"W2q": q.W2q, "b2q": q.b2q, "W3q": q.W3q, "b3q": q.b3q}


def _plots(folder: RunFolder, tag: str, trace, run, ds: Dataset, pred: np.ndarray,
           result: TrainResult) -> None:
    from . import plots  # matplotlib: slow to import, and only when plotting
    n = len(ds.classes)
    plots.write_all_plots(folder, trace=trace, run=run, labels=ds.test_labels, classes=ds.classes,
                          confusion=metrics.confusion_matrix(ds.test_labels, pred, n),
                          per_class=metrics.per_class_accuracy(ds.test_labels, pred, n),
                          history=result.history, prefix=f"{tag}_")


def _compare(f: ModelResult, i: ModelResult, report: _Report) -> None:
    same_lat = np.all(f.test_latencies == i.test_latencies, axis=(1, 2, 3))
    same_feat = np.all(f.test_features == i.test_features, axis=1)
    same_pred = f.predictions == i.predictions
    gap = 100 * (i.test_acc - f.test_acc)
    report.say(f"[compare] {i.name} vs float on {len(same_lat)} test images: identical encodings "
               f"{100 * same_lat.mean():.1f}%, identical features {100 * same_feat.mean():.1f}%, "
               f"same class {100 * same_pred.mean():.1f}%, accuracy gap {gap:+.2f} points")
    report.result("compare", {"identical_encodings": float(same_lat.mean()),
                              "identical_features": float(same_feat.mean()),
                              "same_prediction": float(same_pred.mean()), "accuracy_gap_points": gap})


def run_flow(cfg: RunConfig) -> RunFolder:
    t0 = time.perf_counter()
    folder = RunFolder(cfg.out_root, "run", args={
        "dataset": cfg.dataset, "data_dir": str(cfg.data_dir) if cfg.data_dir else None,
        "seed": cfg.seed, "formats": cfg.formats.to_dict(), "options": cfg.options.to_dict(),
        "options_source": cfg.options_source,
        "integer": cfg.integer, "hardware": cfg.hardware, "layers": cfg.layers,
        "train_limit": cfg.train_limit, "test_limit": cfg.test_limit})
    report = _Report(folder)
    ds = limit_rows(load_dataset(cfg.dataset, cfg.data_dir, seed=cfg.seed), cfg.train_limit,
                    cfg.test_limit, val_fraction=cfg.options.classifier.val_fraction)
    report.say(f"spykehw run: {ds.name}, {len(ds.train_images)} train / {len(ds.test_images)} test images, "
               f"{len(ds.classes)} classes; integer formats '{cfg.formats.name}'; output {folder.path}")
    diff = changed_keys(cfg.options, options_preset("authors-code", cfg.dataset))
    report.say(f"options: {cfg.options_source}; differs from authors-code in "
               + (", ".join(f"{k}={v}" for k, v in diff.items()) if diff else "nothing")
               + " (all of them in options.toml)")
    folder.write_text("options.toml", options_to_toml(cfg.options),
                      "the options in force (spykehw run --options options.toml reruns them)")
    flt = _run_model(ds, cfg, None, folder, report)
    flt2 = run_second_layer(ds, cfg, None, flt.conv1_trace, folder, report) if cfg.layers == 2 else None
    if cfg.integer:
        ints = _run_model(ds, cfg, cfg.formats, folder, report)
        _compare(flt, ints, report)
        if flt2 is not None:
            compare_second_layer(flt2, run_second_layer(ds, cfg, cfg.formats, ints.conv1_trace, folder, report),
                                 report)
        if cfg.hardware:
            run_hardware_stage(cfg, ints, ds, folder, report)
    total = time.perf_counter() - t0
    report.say(f"done in {format_duration(total)}; results, plots and trained states in {folder.path} "
               f"(manifest.json lists every file)")
    folder.result("seconds_total", round(total, 1))
    folder.write_text("report.txt", "\n".join(report.lines) + "\n", "the printed report")
    return folder
