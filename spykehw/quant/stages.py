"""The work of one point, in three stages, the first two shared and cached on disk.

1. **Conv1** (:func:`conv1_stage`): encoder -> STDP training of Conv1 on the first
   ``stdp_images`` training images (:func:`~spykehw.golden.pipeline.train_conv1`) -> features of
   every train and test image (:func:`~spykehw.golden.pipeline.extract_features`), for the
   integer model at the point's encoder/conv/STDP formats, or the float model. Stored: the
   weights, the features packed 8 per byte (``np.packbits`` along the feature axis) and the
   labels.
2. **Classifier** (:func:`classifier_stage`): the float classifier trained on those features
   (:func:`~spykehw.golden.classifier.train_classifier`; validation = the first
   ``val_fraction`` (9%) of the training rows; the best-validation snapshot is kept).
3. **Point** (:func:`point_stage`): float model: its test accuracy. Integer model: the
   classifier formats (derived from the trained weights for a classifier-bits point,
   :mod:`spykehw.quant.rules`), post-training quantization
   (:func:`~spykehw.golden.classifier_int.quantize_classifier`), optionally QAT fine-tuning
   (:func:`~spykehw.golden.qat.qat_finetune`), the integer forward pass
   (:func:`~spykehw.golden.classifier_int.forward_int`): accuracy, balanced accuracy, and the
   softmax words' error against the float softmax of the same integer logits
   (:func:`softmax_error`).

Each stage first looks in the :class:`~spykehw.quant.store.Store`; stage functions run on Dask
workers (or in-process) and exchange only small records: the arrays go through the store, so
the sweep folder must be visible to every worker (a shared file system for remote workers).
Numba uses as many threads as the worker has task slots (:func:`limit_threads`).
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import data, golden, quant
from ..data import load_dataset
from ..data.datasets import limit_rows
from ..golden import metrics
from ..golden.classifier import ClassifierParams, predict, train_classifier
from ..golden.classifier_int import forward_int, quantize_classifier
from ..golden.errors import SpykehwError
from ..golden.formats import NumberFormats
from ..golden.options import NetworkOptions
from ..golden.pipeline import extract_features, model_name, train_conv1
from ..golden.qat import qat_finetune
from ..golden.stored import code_digest
from .points import Keys
from .rules import classifier_formats, saturation_counts
from .store import Store

__all__ = ["PointTask", "InjectedFailure", "DatasetMismatch", "PROGRESS_TOPIC", "code_version",
           "dataset_identity", "load_limited", "limit_threads", "softmax_error", "conv1_stage",
           "classifier_stage", "point_stage"]

PROGRESS_TOPIC = "spykehw-quant-progress"
"""Dask event topic of the per-epoch lines of long stages (the client prints them)."""


class InjectedFailure(RuntimeError):
    """Raised by a point on purpose (``--inject-failure``), to exercise retries and reporting."""


class DatasetMismatch(SpykehwError, RuntimeError):
    """A worker sees other dataset files than the client did."""


@dataclass(frozen=True)
class PointTask:
    """Everything a worker needs for one point (picklable, small)."""

    store: str
    dataset: str
    data_dir: str | None
    dataset_id: dict
    train_limit: int | None
    test_limit: int | None
    options: NetworkOptions
    formats: NumberFormats | None
    classifier_bits: int | None
    frac_rule: str
    bias_extra: int
    qat: int
    keys: Keys
    repeat: int
    label: str
    axes: tuple[str, ...]
    fail: str | None = None   # None, "once" or "always" (testing aid)


# --- identity --------------------------------------------------------------------------------

_CODE_DIRS = (("golden", None), ("quant", ("stages.py", "rules.py")),
              ("data", ("datasets.py", "splits.py", "emnist.py", "idx.py")))


def code_version() -> str:
    """SHA-256 (16 hex) of the code that computes a result: every golden model module, this
    module, the fraction rules and the dataset loaders, as syntax trees without comments and
    docstrings. Any code change there gives new keys, so no stale result is ever reused."""

    roots = {"golden": Path(golden.__file__).parent, "quant": Path(quant.__file__).parent,
             "data": Path(data.__file__).parent}
    files = []
    for name, names in _CODE_DIRS:
        paths = sorted(roots[name].glob("*.py")) if names is None else [roots[name] / f for f in names]
        files += [(f"{name}/{p.name}", p) for p in paths]
    return code_digest(files)


def dataset_identity(ds, train_limit: int | None, test_limit: int | None) -> dict[str, Any]:
    """Name, file hashes, split and counts of a (limited) dataset: what a result was run on."""
    prov = ds.provenance
    files = {role: rec.get("sha256") for role, rec in sorted(prov.get("files", {}).items())}
    return {"name": ds.name, "files": files, "split": prov.get("split"),
            "train": len(ds.train_labels), "test": len(ds.test_labels), "classes": len(ds.classes),
            "train_limit": train_limit, "test_limit": test_limit}


@lru_cache(maxsize=2)
def load_limited(name: str, data_dir: str | None, train_limit: int | None, test_limit: int | None):
    """The dataset with only its first ``train_limit`` / ``test_limit`` rows (cached per process)."""

    return limit_rows(load_dataset(name, data_dir, seed=0), train_limit, test_limit)


def _dataset(task: PointTask):
    ds = load_limited(task.dataset, task.data_dir, task.train_limit, task.test_limit)
    found = dataset_identity(ds, task.train_limit, task.test_limit)
    if found != task.dataset_id:
        raise DatasetMismatch(f"{task.dataset}: worker {socket.gethostname()} reads other files than "
                              f"the client (expected {task.dataset_id}, found {found})")
    return ds


def limit_threads() -> None:
    """Numba threads = the Dask worker's task slots (1 on the default LocalCluster), so that
    concurrent points do not oversubscribe the cores. Outside a worker: unchanged."""
    try:
        from distributed import get_worker
        n = int(get_worker().state.nthreads)
    except Exception:  # not on a worker
        return
    import numba
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))


class _EpochLines(io.TextIOBase):
    """Receives what training prints and passes each per-epoch summary line (the lines with an
    ETA) on as a Dask event, tagged with the point, so the client can show it."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.buf = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.buf += text
        while "\n" in self.buf:
            line, self.buf = self.buf.split("\n", 1)
            if ("ETA" in line and "img/s training" in line) or "final test" in line:
                _emit(self.tag, line.strip())
        return len(text)


def _emit(tag: str, line: str) -> None:
    try:
        from distributed import get_worker
        get_worker().log_event(PROGRESS_TOPIC, {"tag": tag, "line": line})
    except Exception:  # not on a worker: nobody to tell
        pass


@contextlib.contextmanager
def _epoch_progress(task: PointTask, stage: str):
    """While training runs on a Dask worker, its epoch lines go to the client as events."""
    try:
        from distributed import get_worker
        get_worker()
    except Exception:
        yield False
        return
    with contextlib.redirect_stderr(_EpochLines(f"{task.dataset} r{task.repeat} {task.label} ({stage})")):
        yield True


# --- per-process cache of loaded artifacts ---------------------------------------------------

_LOADED: OrderedDict = OrderedDict()
_LOADED_MAX = 4


def _cached(kind: str, key: str, load: Callable[[], Any]) -> Any:
    """Points that share a stage often land on the same worker one after another: keep the
    last few unpacked artifacts instead of reading and unpacking them again."""
    k = (kind, key)
    if k in _LOADED:
        _LOADED.move_to_end(k)
        return _LOADED[k]
    value = load()
    _LOADED[k] = value
    while len(_LOADED) > _LOADED_MAX:
        _LOADED.popitem(last=False)
    return value


def _info(stage: str, key: str, computed: bool, meta: dict[str, Any], seconds: float) -> dict[str, Any]:
    return {"stage": stage, "key": key, "computed": computed, "seconds": round(seconds, 3),
            "host": socket.gethostname(), "pid": os.getpid(),
            "stage_seconds": meta.get("seconds", {})}


# --- stage 1: Conv1 weights and features -----------------------------------------------------

def conv1_stage(task: PointTask, *, force: bool = False) -> dict[str, Any]:
    """Train Conv1 and extract the features of every image, unless the store has them."""

    store, key, t0 = Store(task.store), task.keys.conv1, time.perf_counter()
    if not force and store.has_artifact("conv1", key):
        return _info("conv1", key, False, {}, time.perf_counter() - t0)
    limit_threads()
    ds = _dataset(task)
    opts, fmt = task.options, task.formats
    n_stdp = min(opts.stdp_images, len(ds.train_images))
    t = time.perf_counter()
    trace = train_conv1(ds.train_images[:n_stdp], opts, fmt)
    t_stdp = time.perf_counter() - t
    t = time.perf_counter()
    tr = extract_features(ds.train_images, trace.weights, opts, fmt)
    te = extract_features(ds.test_images, trace.weights, opts, fmt)
    t_feat = time.perf_counter() - t
    meta = {
        "key": key, "model": model_name(fmt), "dataset": task.dataset_id, "stdp_images": n_stdp,
        "features": int(tr.features.shape[1]), "classes": int(task.dataset_id["classes"]),
        "winners_per_image": float(trace.winners_per_image(opts.encoder.steps).mean()) if n_stdp else 0.0,
        "features_per_image": float(tr.features.sum(axis=1).mean()) if len(tr.features) else 0.0,
        "seconds": {"stdp": round(t_stdp, 3), "features": round(t_feat, 3)},
    }
    store.save_artifact("conv1", key, {
        "weights": trace.weights,
        "train_x": np.packbits(tr.features, axis=1), "test_x": np.packbits(te.features, axis=1),
        "train_y": ds.train_labels, "test_y": ds.test_labels}, meta)
    return _info("conv1", key, True, meta, time.perf_counter() - t0)


def _conv1_data(task: PointTask) -> dict[str, Any]:
    """Unpacked features and labels of the point's Conv1 stage (computed here if missing)."""
    store, key = Store(task.store), task.keys.conv1

    def load():
        got = store.load_artifact("conv1", key)
        if got is None:  # deleted or unreadable since it was made: make it again
            conv1_stage(task, force=True)
            got = store.load_artifact("conv1", key)
        arrays, meta = got
        F = meta["features"]
        return {"train_x": np.unpackbits(arrays["train_x"], axis=1, count=F),
                "test_x": np.unpackbits(arrays["test_x"], axis=1, count=F),
                "train_y": arrays["train_y"].astype(np.int64), "test_y": arrays["test_y"].astype(np.int64),
                "meta": meta}
    return _cached("conv1", key, load)


def _split(d: dict[str, Any], opts: NetworkOptions):
    x, y = d["train_x"], d["train_y"]
    n_val = int(opts.classifier.val_fraction * len(x))
    return x[n_val:], y[n_val:], x[:n_val], y[:n_val]


# --- stage 2: the float classifier -----------------------------------------------------------

def classifier_stage(task: PointTask, conv1_info: dict | None = None, *,
                     force: bool = False) -> dict[str, Any]:
    """Train the float classifier on the Conv1 stage's features, unless the store has it."""

    store, key, t0 = Store(task.store), task.keys.classifier, time.perf_counter()
    if not force and store.has_artifact("classifier", key):
        return _info("classifier", key, False, {}, time.perf_counter() - t0)
    limit_threads()
    d = _conv1_data(task)
    opts = task.options
    trx, try_, vax, vay = _split(d, opts)
    with _epoch_progress(task, "classifier") as on_worker:
        res = train_classifier(trx, try_, vax, vay, d["meta"]["classes"], opts.classifier,
                               test_x=d["test_x"], test_y=d["test_y"], progress=on_worker)
    p = res.best_params
    meta = {"key": key, "conv1": task.keys.conv1, "epochs": opts.classifier.epochs,
            "hidden": opts.classifier.hidden, "best_epoch": res.best_epoch,
            "best_val_acc": res.best_val_acc, "test_acc_best": res.test_acc_best,
            "test_acc_final": res.test_acc_final, "train_rows": len(trx), "val_rows": len(vax),
            "history": res.history, "seconds": {"train": round(res.seconds, 3)}}
    store.save_artifact("classifier", key, {"W2": p.W2, "b2": p.b2, "W3": p.W3, "b3": p.b3}, meta)
    return _info("classifier", key, True, meta, time.perf_counter() - t0)


def _classifier_data(task: PointTask) -> dict[str, Any]:

    store, key = Store(task.store), task.keys.classifier

    def load():
        got = store.load_artifact("classifier", key)
        if got is None:
            classifier_stage(task, force=True)
            got = store.load_artifact("classifier", key)
        arrays, meta = got
        params = ClassifierParams(arrays["W2"], arrays["b2"], arrays["W3"], arrays["b3"])
        d = _conv1_data(task)
        _, pred = predict(params, d["test_x"], task.options.classifier)
        return {"params": params, "meta": meta, "float_pred": pred}
    return _cached("classifier", key, load)


# --- stage 3: the point ----------------------------------------------------------------------

def softmax_error(logits: np.ndarray, words: np.ndarray, softmax_bits: int) -> dict[str, float]:
    """The integer softmax words (``UQ0.softmax_bits``) against the float softmax of the same
    integer logits: max and mean absolute error (in probability units) and the fraction of
    images whose argmax of the words (lowest index on ties) is the logits' argmax."""
    z = np.asarray(logits, dtype=np.float64)
    if z.size == 0:
        return {"max_abs_err": float("nan"), "mean_abs_err": float("nan"), "argmax_agreement": float("nan")}
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    q = np.asarray(words, dtype=np.float64) / float(1 << softmax_bits)
    err = np.abs(q - p)
    agree = np.argmax(words, axis=1) == np.argmax(z, axis=1)
    return {"max_abs_err": float(err.max()), "mean_abs_err": float(err.mean()),
            "argmax_agreement": float(agree.mean())}


def _fail(task: PointTask) -> None:
    if task.fail == "always":
        raise InjectedFailure(f"{task.label}: injected failure (always)")
    if task.fail == "once":
        marker = Path(task.store) / "injected" / task.keys.point
        if not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
            raise InjectedFailure(f"{task.label}: injected failure (once)")


def point_stage(task: PointTask, classifier_info: dict | None = None) -> dict[str, Any]:
    """Quantize, (fine-tune,) and test one point; the result is stored before it is returned."""

    store, key, t0 = Store(task.store), task.keys.point, time.perf_counter()
    done = store.load_point(key)
    if done is not None:
        return done
    _fail(task)
    limit_threads()
    d = _conv1_data(task)
    c = _classifier_data(task)
    opts, params = task.options, c["params"]
    x, y = d["test_x"], d["test_y"]
    n_classes = d["meta"]["classes"]
    fmt = task.formats
    out: dict[str, Any] = {}
    if fmt is None:
        _, pred = predict(params, x, opts.classifier)
        out.update(acc_ptq=None, acc_qat=None, softmax=None, saturated=None)
    else:
        if task.classifier_bits is not None:
            fmt = classifier_formats(fmt, task.classifier_bits, task.frac_rule, task.bias_extra, params)
        out["saturated"] = saturation_counts(params, fmt)
        fw = forward_int(quantize_classifier(params, fmt, opts=opts.classifier), x, keep_hidden=False)
        out["acc_ptq"] = metrics.accuracy(y, fw.classes)
        out["acc_qat"] = None
        if task.qat:
            trx, try_, vax, vay = _split(d, opts)
            with _epoch_progress(task, "QAT") as on_worker:
                r = qat_finetune(params, fmt, trx, try_, vax, vay, opts.classifier, task.qat,
                                 progress=on_worker)
            fw = forward_int(quantize_classifier(r.best_params, fmt), x, keep_hidden=False)
            out["acc_qat"] = metrics.accuracy(y, fw.classes)
            out["qat_best_epoch"] = r.best_epoch
        pred = fw.classes
        out["softmax"] = softmax_error(fw.logits, fw.words, fmt.softmax.softmax_bits)
    cm, cc = d["meta"], c["meta"]
    result = {
        "key": key, "label": task.label, "axes": list(task.axes), "dataset": task.dataset,
        "repeat": task.repeat, "model": "float" if fmt is None else "int",
        "formats": None if fmt is None else fmt.to_dict(),
        "classifier_bits": task.classifier_bits, "frac_rule": task.frac_rule,
        "bias_extra": task.bias_extra, "qat_epochs": task.qat if fmt is not None else 0,
        "acc": metrics.accuracy(y, pred),
        "balanced_acc": metrics.balanced_accuracy(y, pred, n_classes),
        "float_classifier_acc": cc["test_acc_best"],
        "same_class_as_float_classifier": float(np.mean(pred == c["float_pred"])) if len(y) else float("nan"),
        **out,
        "test_images": int(len(y)), "train_images": int(len(d["train_y"])),
        "conv1": {"key": task.keys.conv1, "winners_per_image": cm["winners_per_image"],
                  "features_per_image": cm["features_per_image"], "stdp_images": cm["stdp_images"],
                  "seconds": cm["seconds"]},
        "classifier": {"key": task.keys.classifier, "epochs": cc["epochs"], "hidden": cc["hidden"],
                       "best_epoch": cc["best_epoch"], "best_val_acc": cc["best_val_acc"],
                       "seconds": cc["seconds"]},
        "seconds_point": round(time.perf_counter() - t0, 3),
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": socket.gethostname(), "pid": os.getpid(),
    }
    store.save_point(key, result)
    return result
