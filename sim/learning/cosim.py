"""Co-simulation of the learning conv core (Verilator / Icarus through cocotb) and the long run
(``spykehw cosim learn``): STDP training in the RTL compared with the golden model.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ...golden.formats import DEFAULT_PRESET, NumberFormats, load_formats
from ...golden.options import CONV1, NetworkOptions
from ...golden.pipeline2 import pool1_spikes, train_conv2
from ...rtl.conv_config import ConvCoreConfig
from ..conv.cases import encode_cases
from ..conv.cosim import ConvCosimResult, build_conv_cosim
from ..conv.harness import LONG_RUN_DEPTHS
from ..conv.layer2 import DEFAULT_CONV2_PARALLELISM
from ..conv.tb import ENV_STATS
from ..conv.vector_gen import core_config
from ..framework.cocotb_support import ENV_STALL
from ..framework.images import mnist_train_images
from ..framework.runners import CosimFailure, run_tests, tb_env, waveforms
from .tb import ENV_LEARN_EVERY, ENV_LEARN_IMAGES, ENV_LEARN_OUT
from .vector_gen import (
    conv2_learn_vectors,
    initial_weights,
    make_learn_vectors,
    write_vector_set,
)

__all__ = [
    "build_learn_cosim",
    "run_learn_cosim",
    "long_run",
    "train_images",
    "run_learn_vectors",
    "long_run_conv2",
]


# ----- co-simulation (Verilator / Icarus through cocotb) -----------------------------------------

def build_learn_cosim(cfg: "ConvCoreConfig", simulator: str, folder, *, waves: bool = False,
                      optimize: bool = False, long: bool = False):
    """Generate and build the harness of a learning core (:func:`build_conv_cosim` with
    ``learning=True``; ``long``: the large capture memories of long runs)."""

    if not cfg.learning:
        cfg = dataclasses.replace(cfg, learning=True)
    depths = dict(LONG_RUN_DEPTHS, winner_depth=1 << 15) if long else {}
    return build_conv_cosim(cfg, simulator, folder, waves=waves, optimize=optimize, **depths)


def run_learn_cosim(cosim, vectors, test_dir, *, images: int | None = None, every_image: bool = True,
                    stall: bool = False, check: bool = True, weights_out=None, waves: bool = False):
    """Run :mod:`spykehw.sim.learning.tb` on a ``conv-learn`` file (the first ``images``
    images, or all); returns a :class:`~spykehw.sim.conv.harness.ConvCosimResult`. With
    ``check`` a mismatch raises :class:`~spykehw.sim.framework.runners.CosimFailure`;
    ``weights_out``: an ``.npz`` file for the weights and snapshot read from the core at the end;
    ``waves`` (on a build with waves): the run's waveform (FST) in ``test_dir``."""


    test_dir = Path(test_dir)
    test_dir.mkdir(parents=True, exist_ok=True)
    stats_path = test_dir / "learn_stats.json"
    extra = {ENV_STATS: str(stats_path.resolve()), ENV_LEARN_EVERY: "1" if every_image else "0"}
    if images is not None:
        extra[ENV_LEARN_IMAGES] = str(int(images))
    if weights_out is not None:
        extra[ENV_LEARN_OUT] = str(Path(weights_out).resolve())
    if stall:
        extra[ENV_STALL] = "0.5"
    env = tb_env(vectors=vectors, ports=cosim.design.json_path, **extra)
    result = run_tests(cosim.build, "spykehw.sim.learning.tb", test_dir, extra_env=env,
                       check=False, waves=waves)
    stats = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
    out = ConvCosimResult(result, stats)
    if check and not result.passed:
        raise CosimFailure(result.summary(), result)
    return out


# ----- the long run ----------------------------------------------------------------------------

def long_run(n_images: int = 500, *, epochs: int = 1, simulator: str = "verilator",
             parallelism: int = 30, formats: str = DEFAULT_PRESET, folder=None, data_dir=None,
             optimize: bool = True, every_image: bool = True, progress: Any = None,
             waves: bool = False) -> dict[str, Any]:
    """STDP-train Conv1 (default options) in the RTL for ``epochs`` epochs over the first
    ``n_images`` MNIST training images, from the authors' initial weights, and compare with the
    golden ``train_conv``: the winners of every image, and the weights and the last snapshot
    (the golden ``last_snapshot_weights``) after every image (``every_image``) or batch.

    Images come from the embedded ``mnist-sample`` (5,000 training images) unless
    ``n_images > 5000`` or ``data_dir`` is given (then the full MNIST from the data folders).
    The weights and snapshot read from the core at the end go to ``<folder>/onchip_weights.npz``
    when ``folder`` is given, and with ``waves`` the run's waveform (FST) to ``<folder>/run/``
    (``waves`` needs ``folder``). Returns a JSON-friendly summary (:func:`run_learn_vectors`).
    """
    if waves and folder is None:
        raise ValueError("waves: needs a folder to keep the waveform in (--out DIR)")
    fmt = load_formats(formats)
    t0 = time.perf_counter()
    images, labels, source = train_images(n_images, data_dir)
    events = [c.events for c in encode_cases(images, labels, fmt)]
    vs = make_learn_vectors(fmt, CONV1, initial_weights(CONV1, fmt), events, labels, layer="conv1",
                            images=images, sources={"mnist-train": source}, epochs=epochs,
                            description=f"long run: Conv1 STDP on {n_images} {source} training "
                                        f"images, {epochs} epoch(s)")
    return run_learn_vectors(vs, time.perf_counter() - t0, simulator=simulator, parallelism=parallelism,
                             folder=folder, optimize=optimize, every_image=every_image,
                             waves=waves, extra={"source": source})


def train_images(n_images: int, data_dir=None) -> tuple[Any, list[str], str]:
    """The first ``n_images`` MNIST training images, their labels and source: the embedded
    ``mnist-sample`` (5,000) unless ``n_images > 5000`` or ``data_dir`` is given."""
    source = "mnist-sample" if n_images <= 5000 and data_dir is None else "mnist"
    images = mnist_train_images(source, data_dir)[:n_images]
    if len(images) < n_images:
        raise ValueError(f"{source} has only {len(images)} training images, not {n_images}")
    return images, [f"mnist-train[{i}]" for i in range(n_images)], source


def run_learn_vectors(vs, golden_s: float, *, simulator: str = "verilator", parallelism: int = 30,
                      folder=None, optimize: bool = True, every_image: bool = True,
                      waves: bool = False, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build a learning core for the ``conv-learn`` set ``vs`` (``parallelism`` maps per cycle),
    train it on the whole sequence and compare (:func:`run_learn_cosim`). Returns a
    JSON-friendly summary: ``identical``, mismatch lines, cycles per image, simulated cycles per
    second and images per second, wall times (``golden_s``: making ``vs``)."""
    t0 = time.perf_counter() - golden_s
    tmp = None
    if folder is None:
        tmp = tempfile.TemporaryDirectory(prefix="spykehw-learn-")
        folder = tmp.name
    folder = Path(folder)
    n_seq = len(vs.options["cases"])
    try:
        path = write_vector_set(folder / "long.npz", vs)
        t1 = time.perf_counter()
        cosim = build_learn_cosim(core_config(vs, parallelism, learning=True), simulator, folder / "build",
                                  optimize=optimize and simulator == "verilator", long=True, waves=waves)
        t_build = time.perf_counter() - t1
        res = run_learn_cosim(cosim, path, folder / "run", every_image=every_image, check=False,
                              weights_out=None if tmp is not None else folder / "onchip_weights.npz",
                              waves=waves)
        report = res.result.report or {}
        mism = report.get("mismatches", [])
        st = res.stats
        images_run = int(st.get("images", 0))
        cycles = int(st.get("cycles", 0))
        sim_s = float(st.get("sim_s", 0.0))
        epochs = n_seq // max(1, int(vs.options["epoch_images"]))
        return {
            "layer": vs.options["layer"], "images": images_run, "requested": n_seq, "epochs": epochs,
            **(extra or {}),
            "formats": vs.formats.name, "max_spikes_per_input": int(vs.options["max_spikes_per_input"]),
            "simulator": simulator, "parallelism": parallelism,
            "optimized_build": bool(optimize and simulator == "verilator"),
            "identical": bool(res.passed and images_run == n_seq and not mism),
            "compared": (f"the winners of every image, and every weight and every snapshot weight "
                         f"after each of {len(st.get('batches', []))} batches"
                         f"{' (one per image)' if every_image else ''}"),
            "mismatches": len(mism), "mismatch_lines": [m["message"] for m in mism][:20],
            "golden_winners": int(len(vs["winners"])), "golden_final_level": vs.options["final_level"],
            "cycles": cycles, "cycles_per_image": cycles / images_run if images_run else 0.0,
            "sim_cycles_per_s": cycles / sim_s if sim_s else 0.0,
            "images_per_s": images_run / float(st.get("wall_s", 0.0)) if st.get("wall_s") else 0.0,
            "golden_s": golden_s, "build_s": t_build, "tb_wall_s": float(st.get("wall_s", 0.0)),
            "wall_s": time.perf_counter() - t0, "waveforms": waveforms(res.result),
        }
    finally:
        if tmp is not None:
            tmp.cleanup()


def long_run_conv2(n_images: int, conv1_weights, options: NetworkOptions, fmt: NumberFormats, *,
                   epochs: int = 1, simulator: str = "verilator", parallelism: int = DEFAULT_CONV2_PARALLELISM,
                   folder=None, data_dir=None, optimize: bool = True, every_image: bool = True,
                   waves: bool = False, conv1_note: str = "") -> dict[str, Any]:
    """STDP-train Conv2 (``options``' ``conv2`` and ``pool1``, ``fmt.conv2_formats()``) in the
    RTL on the real Pool1 spike trains of the first ``n_images`` MNIST training images (Conv1
    inference with ``conv1_weights``), ``epochs`` epochs, from the authors' initial Conv2
    weights; compared with the golden training image by image as :func:`long_run` does.

    The expected values are also checked against the second layer's own training
    (:func:`spykehw.golden.pipeline2.train_conv2` on those images, its final weights):
    ``golden_equals_train_conv2``, part of ``identical``.
    """
    if waves and folder is None:
        raise ValueError("waves: needs a folder to keep the waveform in (--out DIR)")
    t0 = time.perf_counter()
    images, labels, source = train_images(n_images, data_dir)
    vs = conv2_learn_vectors(
        images, labels, conv1_weights, options, fmt, epochs=epochs,
        sources={"mnist-train": source, "conv1_weights": conv1_note,
                 "events": "golden pipeline2.pool1_spikes of the images (the run's pool1 options)"},
        description=f"long run: Conv2 STDP on the Pool1 spike trains of {n_images} {source} training "
                    f"images, {epochs} epoch(s)")
    trained = train_conv2(pool1_spikes(images, conv1_weights, options, fmt).events,
                          dataclasses.replace(options, conv2_images=n_images, conv2_epochs=epochs), fmt)
    same = bool(np.array_equal(trained.final_weights, vs["weights"][-1]))
    out = run_learn_vectors(vs, time.perf_counter() - t0, simulator=simulator, parallelism=parallelism,
                            folder=folder, optimize=optimize, every_image=every_image, waves=waves,
                            extra={"source": source, "conv1_weights": conv1_note,
                                   "pool1": dataclasses.asdict(options.pool1),
                                   "golden_equals_train_conv2": same})
    out["identical"] = bool(out["identical"] and same)
    return out
