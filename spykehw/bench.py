"""Throughput and peak memory of the golden models on real MNIST (``spykehw bench``).

Benchmarks (``BENCHMARKS``), each in its own fresh Python process (``python -m spykehw.bench``)
so that its peak memory is its own (numba allocates outside Python's allocator, so ``tracemalloc`` cannot see
it; the kernel's ``ru_maxrss`` can):

``encode_float``, ``encode_int``
    latency encoding (image LUT, resize, DoG, local contrast, ranking) of test images.
``stdp_float``, ``stdp_int``
    Conv1 STDP training (one epoch, in order) on train images; the events are encoded first,
    untimed (their encoding time is reported beside the training rate).
``extract_float``, ``extract_int``
    feature extraction = encode + Conv1 inference + Pool1
    (:func:`spykehw.golden.pipeline.extract_features`) of test images, with the Conv1 weights
    the matching ``stdp_*`` benchmark trained (or trained in the process, untimed, if it did
    not run).
``classifier_epoch``
    one training epoch of the float classifier (H=1000, batch 5, dropout 0.5) on the Pool1
    features of train images (features computed untimed with the float ``stdp`` weights), and
    one evaluation pass over the same features; then ``study_epoch_seconds``: one epoch as a
    study runs it (:func:`~spykehw.golden.classifier.run_epochs`: evaluate the training and
    validation rows, first 9%, and train one epoch).
``conv2_stdp_*``, ``conv2_extract_*``
    the second layer: :mod:`spykehw.bench_layer2` (Conv2 STDP on ``stdp_images`` train images,
    Conv2 + Pool2 features of ``encode_images`` test images).

Timing excludes numba compilation: every benchmark first runs the same call on a few images
(``warmup_images``), then times the real call with ``time.perf_counter``. Memory: right before
the timed call the process's peak-RSS counter is reset (``/proc/self/clear_refs``, Linux), so
``peak_rss_mb`` is the peak while the benchmark ran (interpreter, libraries, dataset and inputs
included, compilation excluded); ``process_peak_rss_mb`` is the peak over the whole process.

Images: the test set first, then train images if more are asked for (and train images first for
STDP and the classifier); with the embedded sample (1,000 test / 5,000 train) the counts are
capped, and the JSON says how many were used.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numba
import numpy as np

from .data import load_dataset
from .data.datasets import MNIST_STEMS
from .data.locate import DatasetError, find_dataset_files, search_dataset
from .golden.classifier import TrainState, evaluate, run_epochs
from .golden.classifier_params import init_params, split_validation
from .golden.conv_training import train_conv
from .golden.errors import SpykehwError
from .golden.formats import load_formats
from .golden.option_sets import apply_settings, load_options
from .bench_layer2 import bench_conv2_extract, bench_conv2_stdp
from .golden.pipeline import (
    conv1_arithmetic,
    encode,
    encode_events,
    extract_features,
    initial_conv1_weights,
    train_conv1,
)

__all__ = ["BENCHMARKS", "TARGETS", "BenchConfig", "BenchError", "quick_config",
           "resolve_dataset", "run_benchmarks", "run_one", "to_json"]

BENCHMARKS = ("encode_float", "encode_int", "stdp_float", "stdp_int", "extract_float",
              "extract_int", "classifier_epoch", "conv2_stdp_float", "conv2_stdp_int",
              "conv2_extract_float", "conv2_extract_int")

TARGETS = {
    "feature_extraction": {"benchmarks": ("extract_float", "extract_int"),
                           "target_images_per_s": 10000, "cores": 2},
    "stdp_training": {"benchmarks": ("stdp_float", "stdp_int"),
                      "target_images_per_s": 3000, "cores": 2},
    "conv2_feature_extraction": {"benchmarks": ("conv2_extract_float", "conv2_extract_int"),
                                 "target_images_per_s": 1000, "cores": 2},
}
"""The issue's speed targets (images/s on 2 cores); reported against, never asserted."""


class BenchError(SpykehwError):
    """A bad benchmark request (unknown benchmark name, bad size)."""


@dataclass(frozen=True)
class BenchConfig:
    """What to run on: ``dataset`` is ``mnist`` or ``mnist-sample`` (already resolved)."""

    dataset: str = "mnist"
    data_dir: str | None = None
    encode_images: int = 10000
    stdp_images: int = 6000
    classifier_images: int = 10000
    hidden: int | None = None
    """Classifier hidden units (``None``: the options', 1000 by default)."""
    formats: str = "fpga-16"
    warmup_images: int = 16
    threads: int | None = None
    weights_dir: str | None = None
    """Folder where the ``stdp_*`` benchmarks leave their weights for the later ones."""
    options: str = "authors-code"
    """Algorithm options: a preset or a TOML options file (for MNIST)."""
    settings: tuple = ()
    """``--set`` changes, (dotted key, value) pairs, applied after ``options``."""

    def __post_init__(self) -> None:
        for key in ("encode_images", "stdp_images", "classifier_images", "hidden", "warmup_images"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise BenchError(f"{key}: must be >= 1, not {getattr(self, key)}")
        if self.threads is not None and self.threads < 1:
            raise BenchError(f"threads: must be >= 1, not {self.threads}")


def quick_config(**changes: Any) -> BenchConfig:
    """A few hundred images per benchmark: checks that everything runs, times mean little."""
    base = dict(encode_images=300, stdp_images=300, classifier_images=300, warmup_images=8)
    base.update(changes)
    return BenchConfig(**base)


def resolve_dataset(requested: str, data_dir: str | Path | None) -> tuple[str, str | None]:
    """``(dataset to use, note)``: ``mnist`` if its files are found, else the embedded sample
    with a note saying why (the note is None when nothing was substituted)."""
    if requested == "mnist-sample":
        return "mnist-sample", None
    if requested != "mnist":
        raise BenchError(f"dataset: expected 'mnist' or 'mnist-sample', not {requested!r}")
    try:
        if data_dir is None:
            search_dataset("mnist", MNIST_STEMS)
        else:
            find_dataset_files(data_dir, "mnist", MNIST_STEMS)
        return "mnist", None
    except DatasetError as e:
        return "mnist-sample", (f"MNIST not found ({e}); fell back to the embedded sample "
                                f"(5,000 train / 1,000 test images)")


# ----- inside the benchmark process ----------------------------------------------------------

def _mb(kib: float) -> float:
    return round(kib / 1024.0, 1)


def _proc_status(key: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


class _Meter:
    """Peak RSS of the timed part: reset the kernel's high-water mark, then read ru_maxrss."""

    def __init__(self) -> None:
        self.before_reset = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.reset = True
        except OSError:
            self.reset = False
        self.rss_before = _proc_status("VmRSS")
        self.t0 = time.perf_counter()
        self.cpu0 = time.process_time()

    def done(self) -> dict[str, Any]:
        seconds = time.perf_counter() - self.t0
        cpu = time.process_time() - self.cpu0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if self.rss_before is not None:  # VmRSS and ru_maxrss are sampled a little apart
            peak = max(peak, self.rss_before)
        return {"seconds": round(seconds, 4),
                "cpu_seconds": round(cpu, 4),  # all threads of the process: less load-dependent
                "peak_rss_mb": _mb(peak),
                "process_peak_rss_mb": _mb(max(peak, self.before_reset)),
                "rss_before_mb": None if self.rss_before is None else _mb(self.rss_before),
                "peak_reset": self.reset}


def _images(ds, n: int, first: str) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n`` images and labels, ``first`` split first, then the other one."""
    order = ("test", "train") if first == "test" else ("train", "test")
    xs = [getattr(ds, f"{s}_images") for s in order]
    ys = [getattr(ds, f"{s}_labels") for s in order]
    if len(xs[0]) >= n:
        return xs[0][:n], ys[0][:n]
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def _source(ds, n: int, first: str) -> str:
    a = len(getattr(ds, f"{first}_images"))
    other = "train" if first == "test" else "test"
    return f"{ds.name} {first}" if n <= a else f"{ds.name} {first} + {n - a} {other}"


def _setup(cfg: BenchConfig, model: str):
    ds = load_dataset(cfg.dataset, cfg.data_dir)
    fmt = None if model == "float" else load_formats(cfg.formats)
    return ds, bench_options(cfg), fmt


def bench_options(cfg: BenchConfig):
    """The algorithm options of every benchmark: ``cfg.options`` for MNIST, then ``cfg.settings``."""
    return apply_settings(load_options(cfg.options, "mnist"), [tuple(kv) for kv in cfg.settings])


def _rate(n: int, r: dict[str, Any]) -> dict[str, Any]:
    return {"images": n, "images_per_s": round(n / r["seconds"], 1) if r["seconds"] > 0 else None, **r}


def _bench_encode(cfg: BenchConfig, model: str) -> dict[str, Any]:
    ds, opts, fmt = _setup(cfg, model)
    x, _ = _images(ds, cfg.encode_images, "test")
    encode(x[:cfg.warmup_images], opts.encoder, fmt)
    meter = _Meter()
    encode(x, opts.encoder, fmt)
    return {**_rate(len(x), meter.done()), "source": _source(ds, len(x), "test")}


def _weights_file(cfg: BenchConfig, model: str) -> Path | None:
    return None if cfg.weights_dir is None else Path(cfg.weights_dir) / f"conv1-{model}.npy"


def _bench_stdp(cfg: BenchConfig, model: str) -> dict[str, Any]:
    ds, opts, fmt = _setup(cfg, model)
    x, _ = _images(ds, cfg.stdp_images, "train")
    t0 = time.perf_counter()
    events = encode_events(x, opts.encoder, fmt)
    t_enc = time.perf_counter() - t0
    w0 = initial_conv1_weights(opts.conv, fmt)
    arith = conv1_arithmetic(opts.conv, fmt)
    train_conv(events.select(np.arange(min(cfg.warmup_images, len(x)))), w0, opts.conv, arith)
    meter = _Meter()
    trace = train_conv(events, w0, opts.conv, arith)
    r = _rate(len(x), meter.done())
    wf = _weights_file(cfg, model)
    if wf is not None:
        np.save(wf, trace.weights)
    return {**r, "source": _source(ds, len(x), "train"),
            "encode_seconds": round(t_enc, 4),
            "images_per_s_with_encoding": round(len(x) / (r["seconds"] + t_enc), 1),
            "winners_per_image": round(float(trace.winners_per_image().mean()), 3),
            "snapshots": int(len(trace.snapshots))}


def _conv1_weights(cfg: BenchConfig, model: str, ds, opts, fmt) -> tuple[np.ndarray, str]:
    wf = _weights_file(cfg, model)
    if wf is not None and wf.is_file():
        return np.load(wf), f"trained by stdp_{model} ({cfg.stdp_images} images requested)"
    x, _ = _images(ds, cfg.stdp_images, "train")
    return train_conv1(x, opts, fmt).weights, f"trained here on {len(x)} images (untimed)"


def _bench_extract(cfg: BenchConfig, model: str) -> dict[str, Any]:
    ds, opts, fmt = _setup(cfg, model)
    w, how = _conv1_weights(cfg, model, ds, opts, fmt)
    x, _ = _images(ds, cfg.encode_images, "test")
    extract_features(x[:cfg.warmup_images], w, opts, fmt)
    meter = _Meter()
    run = extract_features(x, w, opts, fmt)
    return {**_rate(len(x), meter.done()), "source": _source(ds, len(x), "test"),
            "conv1_weights": how,
            "pool_spikes_per_image": round(float(run.pool_counts.sum(axis=1).mean()), 2),
            "features_per_image": round(float(run.features.sum(axis=1).mean()), 2)}


def _bench_classifier(cfg: BenchConfig, model: str) -> dict[str, Any]:
    ds, opts, _ = _setup(cfg, "float")
    w, how = _conv1_weights(cfg, "float", ds, opts, None)
    x, y = _images(ds, cfg.classifier_images, "train")
    feats = extract_features(x, w, opts, None).features
    copts = dataclasses.replace(opts.classifier, hidden=cfg.hidden or opts.classifier.hidden, epochs=1)
    params = init_params(feats.shape[1], copts.hidden, ds.num_classes, copts, copts.seed)
    k = max(copts.batch, cfg.warmup_images)
    TrainState(params).epoch(feats[:k], y[:k], copts, np.random.default_rng(0))
    evaluate(params, feats[:k], y[:k], copts)
    state = TrainState(params)
    meter = _Meter()
    state.epoch(feats, y, copts, np.random.default_rng([copts.seed, 1]))
    r = _rate(len(x), meter.done())
    t0 = time.perf_counter()
    acc, _ = evaluate(state.params(), feats, y, copts)
    t_eval = time.perf_counter() - t0
    # What a study spends per epoch: run_epochs' loop (evaluate the train and validation rows,
    # then train one epoch) on the same rows split as the flow splits them.
    tx, ty, vx, vy = split_validation(feats, y, copts.val_fraction)
    t0, c0 = time.perf_counter(), time.process_time()
    run_epochs(TrainState(params), lambda p_, x_, y_: evaluate(p_, x_, y_, copts), tx, ty, vx, vy,
               copts, 1, progress=False)
    t_study, c_study = time.perf_counter() - t0, time.process_time() - c0
    return {**r, "source": _source(ds, len(x), "train"), "conv1_weights": how,
            "hidden": copts.hidden, "batch": copts.batch, "dropout": copts.dropout,
            "gradient": copts.gradient,
            "eval_seconds": round(t_eval, 4),
            "study_epoch_seconds": round(t_study, 4),
            "study_epoch_cpu_seconds": round(c_study, 4),
            "eval_images_per_s": round(len(x) / t_eval, 1) if t_eval > 0 else None,
            "train_accuracy_after_epoch": round(acc, 4)}


def _bench_conv2(cfg: BenchConfig, model: str, stage: str) -> dict[str, Any]:
    ds, opts, fmt = _setup(cfg, model)
    w1, how = _conv1_weights(cfg, model, ds, opts, fmt)
    wf = None if cfg.weights_dir is None else Path(cfg.weights_dir) / f"conv2-{model}.npy"
    first, n = ("train", cfg.stdp_images) if stage == "stdp" else ("test", cfg.encode_images)
    x, _ = _images(ds, n, first)
    if stage == "stdp":
        r = bench_conv2_stdp(x, w1, opts, fmt, warmup=cfg.warmup_images, meter=_Meter, weights_file=wf)
    else:
        r = bench_conv2_extract(x, w1, opts, fmt, warmup=cfg.warmup_images, meter=_Meter, weights_file=wf,
                                train_x=_images(ds, 500, "train")[0])
    return {**_rate(len(x), r), "source": _source(ds, len(x), first), "conv1_weights": how}


_FUNCS: dict[str, tuple[Callable[[BenchConfig, str], dict[str, Any]], str]] = {
    "encode_float": (_bench_encode, "float"), "encode_int": (_bench_encode, "int"),
    "stdp_float": (_bench_stdp, "float"), "stdp_int": (_bench_stdp, "int"),
    "extract_float": (_bench_extract, "float"), "extract_int": (_bench_extract, "int"),
    "classifier_epoch": (_bench_classifier, "float"),
    **{f"conv2_{stage}_{model}": (lambda cfg, model, stage=stage: _bench_conv2(cfg, model, stage), model)
       for stage in ("stdp", "extract") for model in ("float", "int")},
}


def run_one(name: str, cfg: BenchConfig) -> dict[str, Any]:
    """Run one benchmark in this process (the benchmark process calls this)."""
    if cfg.threads is not None:
        numba.set_num_threads(min(cfg.threads, numba.config.NUMBA_NUM_THREADS))
    fn, model = _FUNCS[name]
    out = fn(cfg, model)
    out["threads"] = numba.get_num_threads()
    return out


def _child_main(argv: list[str]) -> int:
    """``python -m spykehw.bench NAME CONFIG_JSON RESULT_FILE``: one benchmark, result as JSON."""
    name, cfg_json, result_file = argv
    try:
        result = {"status": "ok", "result": run_one(name, BenchConfig(**json.loads(cfg_json)))}
    except BaseException:  # report everything, the parent decides
        result = {"status": "error", "traceback": traceback.format_exc()}
    Path(result_file).write_text(json.dumps(result))
    return 0 if result["status"] == "ok" else 1


def _run_in_process(name: str, cfg: BenchConfig) -> dict[str, Any]:
    """Run one benchmark in a fresh interpreter (``python -m``, not multiprocessing: that would
    re-run the caller's main module) and return its result."""
    with tempfile.TemporaryDirectory(prefix="spykehw-bench-result-") as tmp:
        out = Path(tmp) / "result.json"
        proc = subprocess.run([sys.executable, "-m", "spykehw.bench", name,
                               json.dumps(dataclasses.asdict(cfg)), str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if out.is_file():
            res = json.loads(out.read_text())
        else:
            res = {"status": "error", "traceback": proc.stderr or "no output"}
    if res["status"] != "ok":
        tb = res["traceback"].strip()
        return {"error": tb.splitlines()[-1] if tb else "failed", "traceback": tb,
                "exitcode": proc.returncode}
    return res["result"]


# ----- the run --------------------------------------------------------------------------------

def _versions() -> dict[str, str]:
    from importlib import metadata
    out = {"python": sys.version.split()[0]}
    for dist in ("spykehw", "numpy", "numba", "llvmlite"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def _machine() -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {"cpu_count": os.cpu_count(), "usable_cpus": usable, "platform": platform.platform(),
            "processor": platform.processor() or platform.machine()}


def _load() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _targets(benchmarks: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, t in TARGETS.items():
        entry: dict[str, Any] = {"target_images_per_s": t["target_images_per_s"],
                                 "target_cores": t["cores"]}
        for name in t["benchmarks"]:
            rate = benchmarks.get(name, {}).get("images_per_s")
            if rate is not None:
                entry[name] = {"images_per_s": rate, "met": rate >= t["target_images_per_s"],
                               "threads": benchmarks[name].get("threads")}
        out[key] = entry
    return out


def run_benchmarks(cfg: BenchConfig, names: tuple[str, ...] = BENCHMARKS, *, quick: bool = False,
                   requested_dataset: str = "mnist", dataset_note: str | None = None,
                   progress: bool = True) -> dict[str, Any]:
    """Run ``names`` (in :data:`BENCHMARKS` order), each in its own process; the report dict."""
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise BenchError(f"unknown benchmark {', '.join(unknown)} (known: {', '.join(BENCHMARKS)})")
    names = tuple(n for n in BENCHMARKS if n in names)
    report: dict[str, Any] = {
        "command": "spykehw bench",
        "started_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "quick": quick,
        "dataset": {"requested": requested_dataset, "used": cfg.dataset,
                    "fallback": cfg.dataset != requested_dataset, "note": dataset_note},
        "sizes": {"encode_and_extract_images": cfg.encode_images, "stdp_images": cfg.stdp_images,
                  "classifier_images": cfg.classifier_images,
                  "classifier_hidden": cfg.hidden or bench_options(cfg).classifier.hidden,
                  "warmup_images": cfg.warmup_images},
        "formats": cfg.formats,
        "options": {"source": " + ".join([cfg.options] + [f"{k}={v}" for k, v in cfg.settings]),
                    "in_force": bench_options(cfg).to_dict()},
        "numba_threads": cfg.threads if cfg.threads is not None else numba.get_num_threads(),
        "machine": {**_machine(), "load_average_before": _load()},
        "versions": _versions(),
        "notes": {
            "timing": "numba compilation excluded: each benchmark first runs on warmup_images "
                      "images, then the timed call (time.perf_counter) runs on all of them",
            "memory": "each benchmark runs in its own process (python -m spykehw.bench); "
                      "peak_rss_mb is ru_maxrss with the peak reset (/proc/self/clear_refs) just before the timed call, "
                      "so it covers the timed work plus what the process already held "
                      "(rss_before_mb: interpreter, numba, dataset, inputs); "
                      "process_peak_rss_mb includes compilation",
            "targets": "the issue's targets, for comparison only; measured on this machine "
                       "with the thread count shown and the load average beside it",
        },
        "benchmarks": {},
    }
    with tempfile.TemporaryDirectory(prefix="spykehw-bench-") as tmp:
        cfg = dataclasses.replace(cfg, weights_dir=tmp)
        for name in names:
            t0 = time.perf_counter()
            r = _run_in_process(name, cfg)
            r["wall_seconds"] = round(time.perf_counter() - t0, 2)
            r["load_average_after"] = _load()
            report["benchmarks"][name] = r
            if progress:
                log = sys.stderr  # looked up now: callers (and pytest) may have replaced it
                if "error" in r:
                    print(f"bench {name}: FAILED: {r['error']}", file=log, flush=True)
                else:
                    print(f"bench {name}: {r['images']} images, {r['images_per_s']:,.0f} img/s, "
                          f"peak {r['peak_rss_mb']:.0f} MB ({r['threads']} threads, "
                          f"{r['wall_seconds']:.1f}s with start-up)", file=log, flush=True)
    report["machine"]["load_average_after"] = _load()
    report["targets"] = _targets(report["benchmarks"])
    report["ok"] = not any("error" in r for r in report["benchmarks"].values())
    return report


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2) + "\n"


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
