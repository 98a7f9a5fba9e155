"""The committed conv-infer sets ``vectors/conv/<name>.npz`` (:data:`COMMITTED`), made by
:func:`write_committed`; a test regenerates them (from the source images stored in the files, so no dataset is needed) and
checks they equal the files. Regenerate with::

    .venv/bin/python -m spykehw.sim.conv.committed
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...golden.arithmetic import int_arithmetic
from ...golden.conv import run_conv
from ...golden.formats import preset
from ...golden.options import CONV1, CONV2
from ...golden.spikes import SpikeEvents
from ..framework.images import emnist_test_images, mnist_test_images, mnist_train_images
from ..framework.vectors import VECTORS_DIR, VectorSet, ragged, read_vectors
from .cases import (
    STDP_TRAIN_IMAGES,
    ConvCase,
    adversarial_cases,
    adversarial_weight_sets,
    encode_cases,
    pattern_weights,
    pool_events,
    pool_repeat_case,
    row_labels,
    stdp_weights,
)
from .vector_gen import KIND, make_conv_vectors, write_vector_set

__all__ = ["COMMITTED_SEED", "CommittedSpec", "COMMITTED", "committed_path", "committed_set",
           "write_committed"]

COMMITTED_SEED = 20240607


@dataclass(frozen=True)
class CommittedSpec:
    """What a committed file holds: Conv1 (or Conv2 fed by Conv1's pool) for one preset."""

    preset: str
    layer: str
    mnist: tuple[int, ...]          # rows of the MNIST test set
    emnist: tuple[int, ...]         # rows of the EMNIST bymerge test file
    adversarial: tuple[tuple[str, str], ...]    # (weight set, event case)


_ALL_ADV = (("stdp", "empty"), ("stdp", "all_first_step"), ("stdp", "all_last_step"),
            ("stdp", "borders"), ("stdp", "dense_random"), ("stdp", "one_per_step"),
            ("ties", "all_first_step"), ("ties", "dense_random"), ("max", "all_first_step"),
            ("max", "borders"), ("max_last", "all_first_step"), ("overtake", "all_first_step"),
            ("overtake", "borders"))

COMMITTED: dict[str, CommittedSpec] = {
    "fpga-16": CommittedSpec("fpga-16", "conv1", tuple(range(8)), tuple(range(4)), _ALL_ADV),
    "fpga-8": CommittedSpec("fpga-8", "conv1", (0, 1, 2), (0,),
                            (("stdp", "empty"), ("stdp", "all_first_step"), ("stdp", "borders"),
                             ("ties", "all_first_step"), ("max_last", "all_first_step"))),
    "conv2-fpga-16": CommittedSpec("fpga-16", "conv2", (0, 1), (),
                                   (("pattern", "all_first_step"), ("pattern", "pool_repeat"),
                                    ("max_last", "pool_repeat"))),
}


def committed_path(name: str) -> Path:
    return VECTORS_DIR / "conv" / f"{name}.npz"


def committed_set(name: str, *, images: np.ndarray | None = None) -> VectorSet:
    """The committed set ``name`` (see :data:`COMMITTED`).

    The real cases are encoded from ``images`` (the stored source images, in case order) when
    given, else loaded from the datasets (MNIST from the embedded sample, EMNIST from the data
    folders). The Conv1 weights are STDP-trained on the first 300 images of the embedded MNIST
    training sample.
    """
    spec = COMMITTED[name]
    fmt = preset(spec.preset)
    n_real = len(spec.mnist) + len(spec.emnist)
    if images is None:
        real = [mnist_test_images()[list(spec.mnist)]]
        if spec.emnist:
            real.append(emnist_test_images()[list(spec.emnist)])
        images = np.concatenate(real)
    images = np.asarray(images)[:n_real]
    labels = row_labels("mnist-test", spec.mnist) + row_labels("emnist-bymerge-test", spec.emnist)
    conv1_w = stdp_weights(mnist_train_images()[:STDP_TRAIN_IMAGES], fmt)
    sources = {"mnist-test": "MNIST t10k rows (the embedded mnist-sample has the first 1,000)",
               "emnist-bymerge-test": "EMNIST bymerge test file rows, file order, upright",
               "stdp": f"golden train_conv1 on mnist-sample train rows 0..{STDP_TRAIN_IMAGES - 1}"}
    if spec.layer == "conv1":
        opts, steps, max_spikes = CONV1, 12, 1
        base = conv1_w
        sets = {"stdp": base}
        cases = encode_cases(images, labels, fmt)
    else:

        opts, steps, max_spikes = CONV2, 12, 4
        base = pattern_weights(CONV2, fmt.conv.weight_bits)
        sets = {"pattern": base}
        sources["pattern"] = "pattern_weights(CONV2): structured, so that the file stays small"
        sources["events"] = "Pool1 spikes of golden Conv1 (stdp weights) on the real images"
        c1 = encode_cases(images, labels, fmt)
        ev = SpikeEvents(*ragged([c.events for c in c1]), steps, (2, 27, 27))
        run = run_conv(ev, conv1_w, CONV1, int_arithmetic(CONV1, fmt), record=True)
        pooled = pool_events([run.spike_list(i) for i in range(len(c1))], CONV1, steps)
        cases = [ConvCase(c.name, p, 0, c.image) for c, p in zip(c1, pooled)]
    sets.update(adversarial_weight_sets(base, fmt.conv.weight_bits))
    adv = adversarial_cases(opts, steps, COMMITTED_SEED)
    if spec.layer == "conv2":
        adv["pool_repeat"] = pool_repeat_case(opts)
    # Weight set 0 is the base (the real cases use it), then those the adversarial cases name.
    used = {w for w, _ in spec.adversarial}
    order = [n for k, n in enumerate(sets) if k == 0 or n in used]
    index = {n: k for k, n in enumerate(order)}
    for wname, ename in spec.adversarial:
        cases.append(ConvCase(f"adversarial:{ename}@{wname}", adv[ename], index[wname]))
    return make_conv_vectors(
        fmt, opts, [(n, sets[n]) for n in order], cases, steps=steps,
        max_spikes_per_input=max_spikes, layer=spec.layer, sources=sources, seed=COMMITTED_SEED,
        description=(f"{spec.layer} of preset {spec.preset}: {len(spec.mnist)} MNIST and "
                     f"{len(spec.emnist)} EMNIST test images, then {len(spec.adversarial)} "
                     "adversarial cases (options.cases); expected values from golden run_conv"))


def write_committed(name: str, folder: Path | None = None, *, images: np.ndarray | None = None) -> Path:
    """(Re)write the committed set ``name`` (into ``folder`` instead, for tests)."""
    vs = committed_set(name, images=images)
    path = committed_path(name) if folder is None else Path(folder) / f"{name}.npz"
    return write_vector_set(path, vs)


def _main() -> None:
    for name in COMMITTED:
        path = write_committed(name)
        vs = read_vectors(path, kind=KIND)
        print(f"{path}: {len(vs['weight_set'])} images, {len(vs['spikes'])} spikes, "
              f"{path.stat().st_size} bytes")


if __name__ == "__main__":
    _main()