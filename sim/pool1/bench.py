"""Pool1 figures (``python -m spykehw.sim.pool1.bench``): per mode, the bare block's cycles per
image in the Amaranth simulator on the golden Conv1 spikes of the committed ``fpga-16`` set's
MNIST images (partners never stalling), and its size after Yosys' generic synthesis
(:func:`~spykehw.sim.framework.lint.yosys_stat`: cells, flip-flops, memory bits)."""

from __future__ import annotations

import tempfile

import numpy as np

from ...rtl.pool1 import POOL1_MODES, Pool1, Pool1Config
from ...rtl.verilog import generate
from ..framework.lint import yosys_stat
from .pysim import simulate_pool1
from .vector_gen import conv1_spikes

__all__ = ["pool1_figures"]


def pool1_figures() -> list[dict]:
    spikes, _cases, _fmt, core = conv1_spikes()
    out = []
    for mode in POOL1_MODES:
        cfg = Pool1Config(maps=core.maps, conv_size=core.out_size, steps=core.steps,
                          potential_bits=core.potential_bits, mode=mode)
        run = simulate_pool1(cfg, spikes)
        block = Pool1(cfg)
        with tempfile.TemporaryDirectory(prefix="spykehw-pool1-") as tmp:
            stat = yosys_stat(generate(block, "pool1", tmp, block.params()))
        out.append({"mode": mode, "images": len(spikes), "cycles_per_image": float(np.mean(run.cycles)),
                    "conv_spikes_per_image": float(np.mean([len(s) for s in spikes])),
                    "pool_spikes_per_image": float(np.mean([len(e) for e in run.events])),
                    "cells": stat["cells"], "flip_flops": stat["flip_flops"],
                    "memory_bits": stat["memory_bits"], "synthesis": f"{stat['tool']} {stat['level']}"})
    return out


def _main() -> None:
    for f in pool1_figures():
        print(f"{f['mode']}: {f['cycles_per_image']:.0f} cycles/image over {f['images']} images "
              f"({f['conv_spikes_per_image']:.1f} conv spikes, {f['pool_spikes_per_image']:.1f} pool "
              f"spikes per image); {f['cells']} cells, {f['flip_flops']} flip-flops, "
              f"{f['memory_bits']} memory bits ({f['synthesis']})")


if __name__ == "__main__":
    _main()
