"""Pool1 block words: an image's conv spikes as the block's input payloads, its output payloads
split back into per-image events, and the golden Pool1 events of the same conv spikes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ...golden.conv import ConvRun
from ...golden.options import PoolOptions
from ...golden.pool import pool_spikes
from ...rtl.layouts import pack, unpack
from ...rtl.pool1 import Pool1Config

__all__ = ["spike_payloads", "split_events", "golden_pool_events", "pool_options_of"]


def pool_options_of(mode: str) -> PoolOptions:
    """The :class:`PoolOptions` a Pool1 ``mode`` computes."""
    return PoolOptions(lateral_inhibition=mode == "inhibit", spike_accumulation=mode == "accumulate")


def spike_payloads(cfg: Pool1Config, spikes: np.ndarray) -> list[int]:
    """One image's conv spikes ``(k, 5)`` rows ``(t, m, u, v, p)`` (any order within a step) as
    the block's input payloads: each step's spikes in the given order, then its marker."""
    lay = cfg.in_layout()
    spikes = np.asarray(spikes, dtype=np.int64).reshape(-1, 5)
    out = []
    for t in range(cfg.steps):
        for tt, mm, u, v, p in spikes[spikes[:, 0] == t]:
            fields = {"m": mm, "u": u, "v": v, "t": tt}
            if cfg.inhibit:
                fields["p"] = p
            out.append(pack(lay, fields))
        out.append(pack(lay, {"t": t, "step_end": 1, "last": int(t == cfg.steps - 1)}))
    return out


def split_events(cfg: Pool1Config, payloads: Sequence[int]) -> list[np.ndarray]:
    """The block's output payloads -> per image ``(k, 4)`` rows ``(t, c, y, x)`` in output
    order (an image ends after ``steps`` markers; an unfinished image is dropped)."""
    lay = cfg.out_layout()
    images, rows, t = [], [], 0
    for raw in payloads:
        f = unpack(lay, raw)
        if f["step_end"]:
            t += 1
            if t == cfg.steps:
                images.append(np.asarray(rows, dtype=np.int64).reshape(-1, 4))
                rows, t = [], 0
        else:
            rows.append((t, f["c"], f["y"], f["x"]))
    return images


def golden_pool_events(cfg: Pool1Config, images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The golden :func:`~spykehw.golden.pool.pool_spikes` of each image's conv spikes
    ``(k, 5)`` rows ``(t, m, u, v, p)`` (sorted by step here, as ``run_conv`` records them), as
    ``(k, 4)`` rows ``(t, c, y, x)`` in the golden order."""
    H = cfg.conv_size
    n = len(images)
    width = max([H * H] + [len(s) for s in images])
    rec = {f: np.zeros((n, width), dtype=np.int64) for f in ("t", "m", "u", "v", "p")}
    counts = np.zeros(n, dtype=np.int64)
    for k, s in enumerate(images):
        s = np.asarray(s, dtype=np.int64).reshape(-1, 5)
        s = s[np.argsort(s[:, 0], kind="stable")]
        counts[k] = len(s)
        for col, f in enumerate(("t", "m", "u", "v", "p")):
            rec[f][k, :len(s)] = s[:, col]
    run = ConvRun(np.zeros((n, 1), np.uint8), np.zeros((n, cfg.maps), np.int32), counts, rec)
    pooled = pool_spikes(run, cfg.maps, cfg.pool_size, cfg.steps, pool_options_of(cfg.mode))
    return [np.asarray(pooled.events.image(k), dtype=np.int64).reshape(-1, 4) for k in range(n)]
