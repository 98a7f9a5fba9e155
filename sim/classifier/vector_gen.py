"""Classifier test vectors (kind ``classifier``) from the golden ``forward_int``.

A file holds one quantized classifier, the active feature indices of ``N`` images (in the order
they are streamed) and every observable the RTL must reproduce: hidden bits, logits, class and
softmax words. Three sources:

``random``/adversarial (:func:`adversarial_vectors`)
    A random classifier with weights spread over the whole format and some exactly at its
    extremes, two classes whose ``W3`` columns and biases are equal (the class that wins most
    images and a partner: their logits tie wherever it wins, and the lower index must win), and
    hidden units whose bias makes ``acc2`` exactly 0 and -1 for one image (the ``>= 0`` edge).
    Images: no active feature, every feature active, single features, sparse and dense random
    sets, and the same set in ascending, descending and shuffled order.
``extremes`` (:func:`extreme_vectors`)
    Every weight and bias at the extreme of its format (``sign=+1``: the largest; ``-1``: the
    smallest hidden weights with alternating output columns), so that the all-active image
    drives the accumulators exactly to the worst-case bounds their widths were derived from.
``mnist``/``emnist`` (:func:`real_vectors`)
    A classifier trained on real Pool1 features of the integer golden pipeline
    (:func:`real_classifier`), on test images it has never seen.

The committed sets (``vectors/classifier/*.npz``, :data:`COMMITTED`) are small: the real ones
use the first :data:`REAL_SUBSET` features (maps 0..3) and ``H = 64``. A test recomputes their
expectations from their own weights and indices and regenerates the synthetic ones; the real
ones are regenerated (training included) by a long test. Rewrite them with::

    .venv/bin/python -m spykehw.sim.classifier.vector_gen

Importing this module registers the kind; it imports the golden model only when generating, so
that cocotb testbenches stay light.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ... import golden as golden_package
from ...golden.classifier import train_classifier
from ...golden.classifier_int import IntClassifier, forward_int, quantize_classifier
from ...golden.files import clean_stale_temps
from ...golden.fixed import signed_range
from ...golden.formats import DEFAULT_PRESET, NumberFormats, preset
from ...golden.options import (
    ClassifierOptions,
    ConvOptions,
    EncoderOptions,
    NetworkOptions,
)
from ...golden.pipeline import extract_features, train_conv1
from ...golden.stored import (
    code_digest,
    read_checked_npz,
    stable_key,
    write_checked_npz,
)
from ..conv.cases import encode_cases
from ..conv.vector_gen import make_conv_vectors
from ..framework.images import data_code_files, load_dataset
from ..framework.objcache import cache_root
from ..framework.vector_checks import check_classifier
from ..framework.vectors import (
    VECTORS_DIR,
    ArraySpec,
    KindSpec,
    VectorSet,
    read_vectors,
    register_kind,
    write_vectors,
)

__all__ = [
    "KIND",
    "COMMITTED_SEED",
    "REAL_SUBSET",
    "REAL_SETTINGS",
    "SYNTHETIC",
    "COMMITTED",
    "committed_path",
    "image_indices",
    "real_options",
    "make_vector_set",
    "adversarial_vectors",
    "extreme_vectors",
    "RealClassifier",
    "real_classifier",
    "real_vectors",
    "chain_vectors",
    "small_classifier",
    "expectations",
    "write_vector_set",
    "write_committed",
]

KIND = register_kind(KindSpec(
    name="classifier",
    description="binary-activation classifier with exp-LUT softmax (golden forward_int)",
    arrays={
        "w2": ArraySpec("int32", ("F", "H"), "W2q, signed hidden_weight_bits"),
        "b2": ArraySpec("int64", ("H",), "b2q, signed hidden_bias_bits"),
        "w3": ArraySpec("int32", ("H", "C"), "W3q, signed output_weight_bits"),
        "b3": ArraySpec("int64", ("C",), "b3q, signed output_bias_bits"),
        "indices": ArraySpec("int32", ("K",), "active feature indices of every image, in stream order"),
        "counts": ArraySpec("int32", ("N",), "active features per image (images are consecutive in indices)"),
        "hidden": ArraySpec("uint8", ("N", "H"), "hidden bits acc2 >= 0"),
        "logits": ArraySpec("int64", ("N", "C"), "acc3 >> output_weight_frac"),
        "classes": ArraySpec("int64", ("N",), "argmax of the logits, lowest index on ties"),
        "words": ArraySpec("int64", ("N", "C"), "softmax words, unsigned UQ0.softmax_bits"),
        "labels": ArraySpec("int64", ("N",), "true class of a real image, -1 for a synthetic one"),
    },
    options=("features", "hidden", "classes", "source", "cases"),
    check=check_classifier,
))

COMMITTED_SEED = 20240607
REAL_SUBSET = 484
"""Features of the committed real sets: maps 0..3 (``m*121 + i*11 + j < 484``)."""



def committed_path(name: str) -> Path:
    return VECTORS_DIR / "classifier" / f"{name}.npz"


def image_indices(vs: VectorSet) -> list[np.ndarray]:
    """The active indices of each image, in stream order."""
    ends = np.cumsum(vs["counts"])
    return np.split(np.asarray(vs["indices"], dtype=np.int64), ends[:-1]) if len(ends) else []


def expectations(formats: NumberFormats, w2, b2, w3, b3, images: Sequence[Sequence[int]]):
    """``forward_int`` of the images (lists of indices): hidden, logits, classes, words."""

    q = IntClassifier(np.asarray(w2, np.int64), np.asarray(b2, np.int64), np.asarray(w3, np.int64),
                      np.asarray(b3, np.int64), formats)
    x = np.zeros((len(images), q.features), np.uint8)
    for r, idx in enumerate(images):
        x[r, np.asarray(idx, dtype=np.int64)] = 1
    fw = forward_int(q, x)
    return fw.hidden, fw.logits, np.asarray(fw.classes, np.int64), np.asarray(fw.words, np.int64)


def make_vector_set(formats: NumberFormats, w2, b2, w3, b3, images: Sequence[Sequence[int]], *,
                    source: str, cases: Sequence[str] = (), labels=None, seed: int | None = None,
                    description: str = "", extra_options: dict[str, Any] | None = None) -> VectorSet:
    """A ``classifier`` vector set with expectations from the golden model."""
    w2, w3 = np.asarray(w2), np.asarray(w3)
    for idx in images:
        if len(set(map(int, idx))) != len(idx) or (len(idx) and not 0 <= min(idx) <= max(idx) < w2.shape[0]):
            raise ValueError("each image's indices must be distinct and < F")
    hidden, logits, classes, words = expectations(formats, w2, b2, w3, b3, images)
    n = len(images)
    labels = np.full(n, -1, np.int64) if labels is None else np.asarray(labels, np.int64)
    flat = np.concatenate([np.asarray(i, np.int64) for i in images]) if n else np.zeros(0, np.int64)
    return VectorSet(
        kind="classifier", formats=formats,
        options={"features": int(w2.shape[0]), "hidden": int(w2.shape[1]), "classes": int(w3.shape[1]),
                 "source": source, "cases": list(cases), **(extra_options or {})},
        seed=seed, description=description,
        arrays={"w2": w2.astype(np.int32), "b2": np.asarray(b2, np.int64), "w3": w3.astype(np.int32),
                "b3": np.asarray(b3, np.int64), "indices": flat.astype(np.int32),
                "counts": np.array([len(i) for i in images], np.int32),
                "hidden": hidden.astype(np.uint8), "logits": logits, "classes": classes,
                "words": words, "labels": labels})


# ----- synthetic sets -----------------------------------------------------------------------

def _spread(rng: np.random.Generator, shape, bits: int, extreme_fraction: float = 0.02) -> np.ndarray:
    """Values spread over the whole signed format, a fraction of them exactly at its ends."""
    lo, hi = signed_range(bits)
    v = rng.integers(lo, hi + 1, size=shape, dtype=np.int64)
    ends = rng.random(shape) < extreme_fraction
    v[ends] = np.where(rng.random(int(ends.sum())) < 0.5, lo, hi)
    return v


def adversarial_vectors(formats: NumberFormats, *, features: int = 48, hidden: int = 40, classes: int = 10,
                        random_images: int = 8, seed: int = COMMITTED_SEED) -> VectorSet:
    """A random classifier with a tie pair and ``acc2 == 0`` edges, on adversarial images (see
    the module docstring)."""
    rng = np.random.default_rng(seed)
    c = formats.classifier
    F, H, C = features, hidden, classes
    # Hidden biases small against the weights so the hidden bits are not all equal.
    w2 = _spread(rng, (F, H), c.hidden_weight_bits)
    blo, bhi = signed_range(c.hidden_bias_bits)
    wlo, whi = signed_range(c.hidden_weight_bits)
    b2 = np.clip(rng.integers(wlo, whi + 1, size=H) * 2, blo, bhi)
    w3 = _spread(rng, (H, C), c.output_weight_bits)
    b3 = _spread(rng, C, c.output_bias_bits)

    cases: list[tuple[str, list[int]]] = []
    cases.append(("no_active", []))
    cases.append(("all_active", list(range(F))))
    cases.append(("single_first", [0]))
    cases.append(("single_last", [F - 1]))
    base = sorted(rng.choice(F, size=max(1, F // 3), replace=False).tolist())
    cases.append(("ascending", base))
    cases.append(("descending", base[::-1]))
    cases.append(("shuffled", rng.permutation(base).tolist()))
    for k in range(random_images):
        p = (0.03, 0.1, 0.3, 0.6)[k % 4]
        idx = np.flatnonzero(rng.random(F) < p)
        cases.append((f"random_p{p}", rng.permutation(idx).tolist()))

    # acc2 exactly 0 (bit 1) and exactly -1 (bit 0) for the 'ascending' image, where the bias
    # format can hold the value needed.
    s = w2[base].sum(axis=0)
    for h, offset in ((0, 0), (1, -1)):
        if blo <= -s[h] + offset <= bhi:
            b2[h] = -s[h] + offset
    # A tie pair: the class that wins most images is copied (W3 column and bias) into a
    # partner, so their logits tie whenever it wins; the lower index of the two must win.
    images = [idx for _, idx in cases]
    _, _, classes_before, _ = expectations(formats, w2, b2, w3, b3, images)
    winner = int(np.bincount(classes_before, minlength=C).argmax())
    partner = (winner + C // 2) % C
    w3[:, partner] = w3[:, winner]
    b3[partner] = b3[winner]
    return make_vector_set(
        formats, w2, b2, w3, b3, images, source="random", cases=[n for n, _ in cases], seed=seed,
        extra_options={"tie": [min(winner, partner), max(winner, partner)]},
        description=(f"random {F}->{H}->{C} classifier at {formats.name} (2% of weights at the format "
                     f"extremes; classes {winner} and {partner} identical (options.tie); b2[0], b2[1] "
                     f"put acc2 at 0 and -1 for 'ascending'); images: options.cases; expectations "
                     f"from golden forward_int"))


def extreme_vectors(formats: NumberFormats, sign: int, *, features: int = 32, hidden: int = 24,
                    classes: int = 5) -> VectorSet:
    """Every weight and bias at an extreme of its format (see the module docstring).

    ``sign=+1``: ``W2 = b2 = max`` (every hidden bit 1, and ``acc2`` reaches its upper bound on
    the all-active image); output column ``c`` at ``max`` for even ``c`` and ``min`` for odd
    ``c`` (``acc3`` reaches both bounds). ``sign=-1``: ``W2 = b2 = min`` (``acc2`` reaches its
    lower bound, every hidden bit 0, so the logits are the floored biases).
    """
    if sign not in (1, -1):
        raise ValueError(f"sign must be +1 or -1, not {sign}")
    c = formats.classifier
    F, H, C = features, hidden, classes
    wlo, whi = signed_range(c.hidden_weight_bits)
    blo, bhi = signed_range(c.hidden_bias_bits)
    olo, ohi = signed_range(c.output_weight_bits)
    plo, phi = signed_range(c.output_bias_bits)
    w2 = np.full((F, H), whi if sign > 0 else wlo, np.int64)
    b2 = np.full(H, bhi if sign > 0 else blo, np.int64)
    even = np.arange(C) % 2 == 0
    w3 = np.tile(np.where(even, ohi, olo), (H, 1))
    b3 = np.where(even, phi, plo) if sign > 0 else np.where(even, plo, phi)
    cases = [("all_active", list(range(F))), ("no_active", []), ("half", list(range(0, F, 2))),
             ("all_active_reversed", list(range(F))[::-1])]
    return make_vector_set(
        formats, w2, b2, w3, b3, [i for _, i in cases], source=f"extremes{'+' if sign > 0 else '-'}",
        cases=[n for n, _ in cases], seed=None,
        description=(f"{F}->{H}->{C} classifier with every weight and bias at the "
                     f"{'upper' if sign > 0 else 'lower'} extreme of its {formats.name} format "
                     f"(output columns alternate); the all-active image reaches the accumulator "
                     f"bounds; expectations from golden forward_int"))


# ----- real classifiers -------------------------------------------------------------------------

@dataclass(frozen=True)
class RealClassifier:
    """A classifier trained on the integer golden pipeline's features of a real dataset."""

    dataset: str
    formats: NumberFormats
    q: Any                      # IntClassifier
    conv_weights: np.ndarray    # (M, C, K, K) integer Conv1 weights the features came from
    test_x: np.ndarray          # (N, F) uint8 features of the test images (F possibly a subset)
    test_y: np.ndarray          # (N,) labels
    test_images: np.ndarray     # (N, 28, 28) uint8
    float_test_acc: float       # the float classifier on these features
    settings: dict

    @property
    def options(self) -> NetworkOptions:
        """The network options the features and the classifier were made with."""
        return real_options(self.dataset, self.settings["hidden"], self.settings["epochs"])

    @property
    def features_used(self) -> int:
        return self.q.features


def real_options(dataset: str, hidden: int, epochs: int) -> NetworkOptions:
    """The options :func:`real_classifier` trains with (the default network; the classifier's
    learning rate 0.02 on EMNIST, 0.01 on MNIST)."""
    return NetworkOptions(classifier=ClassifierOptions(
        hidden=hidden, epochs=epochs, eta=0.02 if dataset.startswith("emnist") else 0.01))


def _cache_dir() -> Path:
    return cache_root() / "classifier"


def real_classifier(dataset: str = "mnist", formats: NumberFormats | None = None, *, hidden: int = 1000,
                    epochs: int = 40, features: int | None = None, stdp_images: int = 6000,
                    train_limit: int | None = None, seed: int = 0, data_dir=None,
                    progress: bool = False, cache: bool = True) -> RealClassifier:
    """Conv1 STDP + features with the integer golden pipeline, then the float classifier
    (selected by validation accuracy, as in the main job) and its quantization.

    ``features`` keeps only the first that many features (the committed sets); ``train_limit``
    the first training images. Results are cached under the spykehw cache folder, so a long
    test or a benchmark pays for the training once. The key holds every argument, the SHA-256
    of the data files read (a classifier trained on a 300-image ``data_dir`` is never reused for
    full MNIST) and the content of the code that produces it (:func:`_producer_digest`); the
    file carries its key and content hash, and a truncated or foreign file is discarded with a
    line naming it (:mod:`spykehw.stored`). Writes are atomic with unique temporary names, so
    cold runs started together both work.
    """

    formats = formats or preset(DEFAULT_PRESET)
    settings = {"dataset": dataset, "formats": formats.to_dict(), "hidden": hidden, "epochs": epochs,
                "features": features, "stdp_images": stdp_images, "train_limit": train_limit,
                "seed": seed, "version": 2}
    ds = load_dataset(dataset, data_dir, seed=seed)
    data_files = {role: rec.get("sha256") for role, rec in
                  sorted(ds.provenance.get("files", {}).items())}
    key = stable_key({"settings": settings, "data": data_files, "split": ds.provenance.get("split"),
                      "code": _producer_digest()}, 16)
    path = _cache_dir() / f"real-{dataset}-{key}.npz"
    clean_stale_temps(path.parent)      # left by a killed cold run (a live one's are kept)
    got = read_checked_npz(path, kind="real-classifier", key=key) if cache else None
    if got is not None:
        z, meta = got
        q = IntClassifier(z["W2q"], z["b2q"], z["W3q"], z["b3q"], formats)
        return RealClassifier(dataset, formats, q, z["conv"], z["test_x"], z["test_y"],
                              ds.test_images, float(meta["float_acc"]), settings)
    opts = real_options(dataset, hidden, epochs)
    train_images, train_y = ds.train_images[:train_limit], ds.train_labels[:train_limit]
    trace = train_conv1(train_images[:stdp_images], opts, formats)
    tr = extract_features(train_images, trace.weights, opts, formats).features
    te = extract_features(ds.test_images, trace.weights, opts, formats).features
    if features is not None:
        tr, te = tr[:, :features], te[:, :features]
    n_val = int(opts.classifier.val_fraction * len(tr))
    result = train_classifier(tr[n_val:], train_y[n_val:], tr[:n_val], train_y[:n_val], len(ds.classes),
                              opts.classifier, test_x=te, test_y=ds.test_labels, progress=progress)
    q = quantize_classifier(result.best_params, formats)
    out = RealClassifier(dataset, formats, q, trace.weights, te, np.asarray(ds.test_labels),
                         ds.test_images, float(result.test_acc_best or 0.0), settings)
    if cache:
        write_checked_npz(path, {"W2q": q.W2q, "b2q": q.b2q, "W3q": q.W3q, "b3q": q.b3q,
                                 "conv": trace.weights, "test_x": te,
                                 "test_y": np.asarray(ds.test_labels)},
                          kind="real-classifier", key=key, compressed=True,
                          meta={"float_acc": out.float_test_acc, "settings": settings,
                                "data": data_files})
    return out


def _producer_digest() -> str:
    """The content of the code a cached classifier comes from: the golden model, the data
    loaders and this module (comments and docstrings aside)."""
    files = [(f"golden/{p.name}", p) for p in sorted(Path(golden_package.__file__).parent.glob("*.py"))]
    files += [(f"data/{p.name}", p) for p in data_code_files()]
    files.append(("sim/classifier/vector_gen.py", Path(__file__)))
    return code_digest(files)


def real_vectors(rc: RealClassifier, images: int | Sequence[int], *, order: str = "ascending",
                 seed: int = COMMITTED_SEED) -> VectorSet:
    """Vectors of test images of a real classifier (``images``: a count from the start, or
    the test indices); ``order`` of the indices in the stream: ascending or shuffled."""
    rows = np.arange(images) if isinstance(images, int) else np.asarray(images)
    rng = np.random.default_rng(seed)
    idx = []
    for r in rows:
        a = np.flatnonzero(rc.test_x[r])
        idx.append(rng.permutation(a) if order == "shuffled" else a)
    q = rc.q
    s = rc.settings
    return make_vector_set(
        rc.formats, q.W2q, q.b2q, q.W3q, q.b3q, idx, source=rc.dataset, labels=rc.test_y[rows],
        seed=seed,
        description=(f"{rc.dataset} classifier {q.features}->{q.hidden}->{q.classes} trained on the "
                     f"integer golden pipeline's features ({s['epochs']} epochs, STDP on "
                     f"{s['stdp_images']} images, formats {rc.formats.name}"
                     + (f", first {s['features']} features only" if s['features'] else "")
                     + f"); {len(rows)} test images, indices {order}; expectations from golden forward_int"),
        extra_options={"test_rows": [int(r) for r in rows], "order": order})


# ----- end to end ------------------------------------------------------------------------------

def chain_vectors(formats: NumberFormats, conv_weights: np.ndarray, q, images: np.ndarray,
                  labels: Sequence[int], *, source: str = "", rows: Sequence[int] | None = None
                  ) -> tuple[VectorSet, VectorSet]:
    """The two vector sets of an end-to-end run (encoder -> conv core -> classifier) of real
    images: a ``conv-infer`` set (the images' integer encoding, the expected Conv1 spikes and
    Pool1 features, from :mod:`spykehw.sim.conv.vector_gen`) and a ``classifier`` set of the same
    images in the same order (their golden features, ascending, and every expectation of the
    classifier ``q``). The end-to-end testbench feeds the classifier the features the conv core
    RTL produced, and compares with both."""

    images = np.asarray(images, dtype=np.uint8).reshape(-1, 28, 28)
    rows = list(range(len(images))) if rows is None else [int(r) for r in rows]
    names = [f"{source}[{r}]" for r in rows]
    enc = EncoderOptions()
    conv_vs = make_conv_vectors(formats, ConvOptions(), [("trained", np.asarray(conv_weights, np.int64))],
                                encode_cases(images, names, formats, enc), steps=enc.steps,
                                layer="conv1", encoder=enc, sources={"dataset": source, "rows": rows},
                                description=f"{len(images)} {source} test images, trained Conv1 weights")
    feats = conv_vs["features"]
    if feats.shape[1] != q.features:
        raise ValueError(f"the classifier takes {q.features} features, Conv1 makes {feats.shape[1]}")
    clf_vs = make_vector_set(
        formats, q.W2q, q.b2q, q.W3q, q.b3q, [np.flatnonzero(f) for f in feats], source=source,
        cases=names, labels=np.asarray(labels), extra_options={"test_rows": rows},
        description=(f"{len(images)} {source} test images: golden Pool1 features (ascending) and the "
                     f"classifier's expectations (golden forward_int)"))
    return conv_vs, clf_vs


def small_classifier(conv_weights: np.ndarray, formats: NumberFormats | None = None, *, hidden: int = 32,
                     train_images: int = 1000, epochs: int = 1):
    """A small real classifier for end-to-end tests: ``3630 -> hidden -> 10``, trained for
    ``epochs`` on the Pool1 features (made with ``conv_weights``) of the first ``train_images``
    images of the embedded MNIST sample (seconds, no dataset needed)."""

    formats = formats or preset(DEFAULT_PRESET)
    opts = NetworkOptions(classifier=ClassifierOptions(hidden=hidden, epochs=epochs))
    ds = load_dataset("mnist-sample")
    x = extract_features(ds.train_images[:train_images], conv_weights, opts, formats).features
    y = ds.train_labels[:train_images]
    n_val = train_images // 10
    res = train_classifier(x[n_val:], y[n_val:], x[:n_val], y[:n_val], 10, opts.classifier, progress=False)
    return quantize_classifier(res.best_params, formats)


# ----- the committed sets -----------------------------------------------------------------------

REAL_SETTINGS = {"hidden": 64, "epochs": 4, "features": REAL_SUBSET, "train_limit": 20000,
                 "stdp_images": 2000}
"""The committed real sets' classifiers: small on purpose (file size; training time)."""


def _real(dataset: str, n: int) -> Callable[[], VectorSet]:
    def build() -> VectorSet:
        rc = real_classifier(dataset, preset("fpga-16"), **REAL_SETTINGS)
        return real_vectors(rc, n, order="shuffled")
    return build


COMMITTED: dict[str, Callable[[], VectorSet]] = {
    **{f"adversarial-{p}": (lambda p=p: adversarial_vectors(preset(p)))
       for p in ("paper-float-equivalent", "fpga-16", "fpga-8", "edge-4")},
    "adversarial-fpga-16-47": lambda: adversarial_vectors(preset("fpga-16"), classes=47, hidden=70,
                                                          features=40, random_images=4),
    **{f"extremes{'+' if s > 0 else '-'}-{p}": (lambda p=p, s=s: extreme_vectors(preset(p), s))
       for p in ("paper-float-equivalent", "fpga-16", "edge-4") for s in (1, -1)},
    "mnist-fpga-16": _real("mnist", 24),
    "emnist-fpga-16": _real("emnist", 24),
}
"""Name -> builder of every committed set (real ones train on first use; cached)."""

SYNTHETIC = tuple(n for n in COMMITTED if not n.startswith(("mnist", "emnist")))


def write_vector_set(path: str | Path, vs: VectorSet) -> Path:
    return write_vectors(path, vs.kind, vs.arrays, formats=vs.formats, options=vs.options,
                         seed=vs.seed, description=vs.description,
                         created_by="spykehw.sim.classifier.vector_gen")


def write_committed(name: str, folder: Path | None = None) -> Path:
    """(Re)write one committed set (into ``folder`` instead, for tests)."""
    vs = COMMITTED[name]()
    path = committed_path(name) if folder is None else Path(folder) / f"{name}.npz"
    return write_vector_set(path, vs)


def _main() -> None:
    names = sys.argv[1:] or list(COMMITTED)
    for name in names:
        path = write_committed(name)
        vs = read_vectors(path, kind="classifier")
        o = vs.options
        print(f"{path}: {o['features']}->{o['hidden']}->{o['classes']}, {len(vs['counts'])} images, "
              f"{path.stat().st_size} bytes")


if __name__ == "__main__":
    _main()
