"""A small network for the tests of predict and verify, made without training: random Conv1
weights and a random 3630 -> 24 -> 10 classifier (scaled so the classes vary), saved as a run
folder's two state files. What those commands must do does not depend on the weights being good.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
from spykehw.golden.classifier_params import ClassifierParams
from spykehw.golden.classifier_int import IntClassifier, quantize_classifier
from spykehw.golden.conv import quantize_weights
from spykehw.golden.formats import preset
from spykehw.golden.options import ClassifierOptions, NetworkOptions
from spykehw.golden.state import make_state, save_state


def make_run(folder: Path, *, seed: int = 7, hidden: int = 24) -> SimpleNamespace:
    """Write ``float_state.npz`` and ``int_state.npz`` into ``folder``; returns the parts."""
    fmt = preset("fpga-16")
    opts = NetworkOptions(classifier=ClassifierOptions(hidden=hidden, epochs=1))
    rng = np.random.default_rng(seed)
    wf = rng.uniform(0.3, 1.0, (30, 2, 5, 5)).astype(np.float32)
    wi = quantize_weights(wf, fmt.conv.weight_bits)
    params = ClassifierParams(rng.normal(0, 0.3, (3630, hidden)).astype(np.float32),
                              rng.normal(0, 0.3, hidden).astype(np.float32),
                              rng.normal(0, 2.0, (hidden, 10)).astype(np.float32),
                              rng.normal(0, 1.0, 10).astype(np.float32))
    q: IntClassifier = quantize_classifier(params, fmt)
    folder.mkdir(parents=True, exist_ok=True)
    cint = {"W2q": q.W2q, "b2q": q.b2q, "W3q": q.W3q, "b3q": q.b3q}
    for w, f, name, c in ((wf, None, "float_state.npz", None), (wi, fmt, "int_state.npz", cint)):
        trace = SimpleNamespace(weights=w, final_weights=w, snapshots=np.zeros((0,) + w.shape, w.dtype),
                                snapshot_steps=[])
        save_state(folder / name, make_state(trace, opts, f, classifier=params, classifier_int=c))
    return SimpleNamespace(folder=folder, fmt=fmt, opts=opts, float_weights=wf, int_weights=wi,
                           params=params, q=q)
