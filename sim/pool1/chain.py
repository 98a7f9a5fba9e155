"""The second layer on chip (:class:`~spykehw.rtl.layer2_chain.Layer2Chain`: Conv1 core -> Pool1
-> Conv2 core) co-simulated on real images against the golden second layer.

``layer2-chain`` vector sets hold, per image, the encoder's spikes (the chain's input), the
golden Pool1 events (for diagnosis: inside the chain) and the golden Conv2 spikes and Pool2
features (:func:`~spykehw.sim.conv.layer2.conv2_infer_vectors`: ``pipeline2.pool1_spikes`` with
the run's Pool1 options, then ``run_conv`` with the second layer's arithmetic), plus both
weight sets. The testbench :mod:`spykehw.sim.pool1.chain_tb` streams the encoder's spikes in and
compares the Conv2 outputs (spikes as a set per step, features as a set per image).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...golden.formats import NumberFormats
from ...golden.options import NetworkOptions
from ...golden.pipeline import encode_events
from ...rtl.conv_config import ConvCoreConfig
from ...rtl.layer2_chain import Layer2Chain
from ...rtl.pool1 import Pool1Config
from ...rtl.verilog import generate
from ..conv.layer2 import conv2_core_config, conv2_infer_vectors
from ..conv.packing import weight_words
from ..framework.runners import build_sim, run_tests, tb_env
from ..framework.vectors import (
    ArraySpec,
    KindSpec,
    VectorSet,
    check_offsets,
    ragged,
    read_vectors,
    register_kind,
    write_vectors,
)

__all__ = ["KIND", "chain_configs", "chain_vectors", "write_chain_vectors", "build_chain_cosim",
           "run_chain_cosim", "ENV_STATS"]

KIND = "layer2-chain"
TB = "spykehw.sim.pool1.chain_tb"
ENV_STATS = "SPYKEHW_CHAIN_STATS"
CONV1_PARALLELISM = 30


def _check(vs: VectorSet) -> None:
    n = len(vs["images"])
    check_offsets(vs, "event_offsets", n, len(vs["events"]))
    check_offsets(vs, "pool_offsets", n, len(vs["pool_events"]))
    check_offsets(vs, "spike_offsets", n, len(vs["spikes"]))


register_kind(KindSpec(
    name=KIND,
    description="Conv1 -> Pool1 -> Conv2 on chip: encoder spikes in, golden Conv2 spikes and "
                "Pool2 features out; see spykehw.sim.pool1.chain",
    arrays={
        "images": ArraySpec("uint8", ("N", "R", "R"), "source images"),
        "event_offsets": ArraySpec("int64", ("N1",), "CSR offsets of each image's encoder spikes"),
        "events": ArraySpec("int16", ("E", "Q"), "encoder spikes (t, c, y, x): the chain's input"),
        "pool_offsets": ArraySpec("int64", ("N1",), "CSR offsets of each image's Pool1 events"),
        "pool_events": ArraySpec("int16", ("PE", "Q"), "golden Pool1 events (t, c, y, x)"),
        "spike_offsets": ArraySpec("int64", ("N1",), "CSR offsets of each image's Conv2 spikes"),
        "spikes": ArraySpec("int16", ("NS", "Q"), "expected Conv2 spikes (t, m, u, v)"),
        "features": ArraySpec("uint8", ("N", "F"), "expected Pool2 features, 0/1"),
        "conv1_weights": ArraySpec("int64", ("M1", "C1", "K", "K"), "Conv1 weights"),
        "conv2_weights": ArraySpec("int64", ("M2", "C2", "K", "K"), "Conv2 weights"),
    },
    options=("conv1", "pool1", "conv2", "cases", "sources"),
    check=_check,
))


def chain_configs(opts: NetworkOptions, fmt: NumberFormats, conv2_parallelism: int | None = None
                  ) -> tuple[ConvCoreConfig, Pool1Config, ConvCoreConfig]:
    """The three blocks that compute ``opts``' second layer as the golden model does."""
    mode = Pool1Config.mode_of(opts.pool1)
    conv1 = ConvCoreConfig(options=opts.conv, formats=fmt, steps=opts.encoder.steps,
                           parallelism=CONV1_PARALLELISM, spike_potentials=mode == "inhibit")
    pool1 = Pool1Config(maps=conv1.maps, conv_size=conv1.out_size, steps=conv1.steps,
                        potential_bits=conv1.potential_bits, mode=mode)
    return conv1, pool1, conv2_core_config(opts, fmt, conv2_parallelism)


def chain_vectors(images: np.ndarray, labels: Sequence[str], conv1_weights: np.ndarray,
                  conv2_weights: np.ndarray, opts: NetworkOptions, fmt: NumberFormats, *,
                  conv2_parallelism: int | None = None, sources: dict[str, Any] | None = None,
                  description: str = "") -> VectorSet:
    images = np.asarray(images, dtype=np.uint8)
    conv2 = conv2_infer_vectors(images, labels, conv1_weights, conv2_weights, opts, fmt)
    enc = encode_events(images, opts.encoder, fmt)
    e_off, e_rows = ragged([enc.image(n) for n in range(len(images))])
    conv1, pool1, conv2_cfg = chain_configs(opts, fmt, conv2_parallelism)
    return VectorSet(
        kind=KIND, formats=fmt,
        options={"conv1": conv1.to_dict(), "pool1": pool1.to_dict(), "conv2": conv2_cfg.to_dict(),
                 "cases": list(labels), "sources": dict(sources or {})},
        seed=None, description=description,
        arrays={"images": images, "event_offsets": e_off, "events": e_rows,
                "pool_offsets": np.asarray(conv2["event_offsets"]), "pool_events": np.asarray(conv2["events"]),
                "spike_offsets": np.asarray(conv2["spike_offsets"]), "spikes": np.asarray(conv2["spikes"]),
                "features": np.asarray(conv2["features"]),
                "conv1_weights": np.asarray(conv1_weights, np.int64),
                "conv2_weights": np.asarray(conv2_weights, np.int64)})


def write_chain_vectors(path: str | Path, vs: VectorSet) -> Path:
    return write_vectors(path, vs.kind, vs.arrays, formats=vs.formats, options=vs.options,
                         seed=vs.seed, description=vs.description, created_by="spykehw.sim.pool1.chain")


def build_chain_cosim(opts: NetworkOptions, fmt: NumberFormats, conv1_weights: np.ndarray,
                      conv2_weights: np.ndarray, simulator: str, folder: str | Path, *,
                      conv2_parallelism: int | None = None, waves: bool = False):
    """Generate the chain's Verilog (weights as the memories' contents) and build it."""
    folder = Path(folder)
    conv1, pool1, conv2 = chain_configs(opts, fmt, conv2_parallelism)
    chain = Layer2Chain(conv1, pool1, conv2, conv1_weights=weight_words(conv1, conv1_weights),
                        conv2_weights=weight_words(conv2, conv2_weights))
    design = generate(chain, "layer2_chain", folder / "rtl", chain.params(), formats=fmt)
    args = ("-O3",) if simulator == "verilator" else ()
    build = build_sim(simulator, [design.verilog_path], design.name, folder / f"build-{simulator}",
                      waves=waves, build_args=args)
    return design, build


def run_chain_cosim(design, build, vectors: str | Path, folder: str | Path, *, chunk: int = 250,
                    stall: str = "", progress=None) -> dict[str, Any]:
    """The testbench on ``vectors``, ``chunk`` images per simulator run; a summary (images,
    mismatches, cycles per image, wall time)."""
    folder = Path(folder).resolve()     # the simulator runs in another working directory
    n = len(read_vectors(vectors, kind=KIND)["images"])
    summary: dict[str, Any] = {"images": 0, "mismatches": 0, "cycles": 0, "wall_s": 0.0,
                               "mismatch_lines": [], "failures": []}
    for a in range(0, n, chunk):
        part = folder / f"images-{a}"
        part.mkdir(parents=True, exist_ok=True)
        stats = part / "stats.json"
        env = tb_env(vectors=vectors, ports=design.json_path, SPYKEHW_CHAIN_IMAGES=f"{a}:{min(n, a + chunk)}",
                     **{ENV_STATS: str(stats)}, **({"SPYKEHW_STALL": stall} if stall else {}))
        t0 = time.time()
        result = run_tests(build, TB, part, extra_env=env, check=False)
        summary["wall_s"] += time.time() - t0
        st = json.loads(stats.read_text()) if stats.is_file() else {}
        summary["images"] += st.get("images", 0)
        summary["cycles"] += st.get("cycles", 0)
        report = result.report or {}
        summary["mismatches"] += len(report.get("mismatches", []))
        summary["mismatch_lines"] += [m["message"] for m in report.get("mismatches", [])][:20]
        summary["failures"] += list(result.failures)
        if progress is not None:
            progress.advance(st.get("images", 0))
    summary["images_in_file"] = n
    summary["cycles_per_image"] = summary["cycles"] / max(1, summary["images"])
    summary["images_per_s"] = summary["images"] / max(1e-9, summary["wall_s"])
    return summary
