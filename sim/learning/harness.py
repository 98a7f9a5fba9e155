"""Running the learning conv core: the golden expectation, the Amaranth simulator, the long run.

:func:`golden_training` runs the golden integer ``train_conv`` (one epoch, weights traced after
every image) and returns what the RTL must reproduce: per image the STDP winners ``(t, m, r, c)``
(step within the image, map, row, column; by step, then map ascending: the order the golden
model applies them) and the weights after the image.

:func:`simulate_learning` runs a :class:`~spykehw.rtl.conv_core.ConvCore` built with
``learning=True`` in the Amaranth simulator: it loads the initial weights over the weight bus,
streams the images' tokens, collects the ``o_winners`` stream, and after every image (when the
core is ``idle``) reads every weight and the snapshot copy back over the bus; with
``epoch_images`` it pulses ``new_epoch`` before every ``epoch_images``-th image.

:func:`long_run` is the long check: STDP-train Conv1 in the RTL (Verilator through cocotb,
:mod:`spykehw.sim.learning.tb`) on ``N`` real MNIST training images from the authors' initial
weights, and compare the final weights with the golden model's. Run it with::

    .venv/bin/python -m spykehw.sim.learning.harness long 500 [--simulator verilator] [--parallelism 30]

which prints one JSON object (identical or not, cycles per image, simulator speed).
:func:`register` adds the same as ``spykehw cosim learn`` (``_learn(args)``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ...rtl.conv_config import ConvCoreConfig
from ...rtl.conv_core import ConvCore
from ...rtl.layouts import spike_layout, unpack
from ..conv.packing import image_tokens, pack_tokens, weight_words
from ..framework.streams import simulate

# Amaranth and the harness are imported where they are used, so that registering the command
# line (``register``) stays cheap.

__all__ = [
    "words_to_weights",
    "LearnRun",
    "simulate_learning",
    "winners_by_image",
]


def words_to_weights(cfg: "ConvCoreConfig | dict", words: Sequence[int]) -> np.ndarray:
    """Weight-bus words (address ``index*G + g``) back to (M, C, K, K): the inverse of
    :func:`~spykehw.sim.conv.packing.weight_words`."""
    if not isinstance(cfg, dict):
        L, G, B, M, C, K = (cfg.parallelism, cfg.groups, cfg.weight_bits, cfg.maps, cfg.channels,
                            cfg.kernel)
    else:
        L, G, B, M, C, K = (cfg["parallelism"], cfg["groups"], cfg["weight_bits"], cfg["maps"],
                            cfg["channels"], cfg["kernel"])
    mask = (1 << B) - 1
    flat = np.zeros((M, C * K * K), dtype=np.int64)
    for a, word in enumerate(words):
        index, g = divmod(a, G)
        for lane in range(L):
            flat[g * L + lane, index] = (int(word) >> (lane * B)) & mask
    return flat.reshape(M, C, K, K)


def winners_by_image(cfg: "ConvCoreConfig | dict", words: Sequence[int], n_images: int
                     ) -> tuple[list[np.ndarray], list[str]]:
    """The captured ``o_winners`` payloads -> per image (k, 4) rows ``(t, m, r, c)`` in stream
    order, and protocol problems (markers out of place)."""

    if not isinstance(cfg, dict):
        lay, T = spike_layout(cfg.maps, cfg.out_size, cfg.steps), cfg.steps
    else:
        lay, T = cfg["layouts"]["winner"], cfg["steps"]
    out: list[list[tuple[int, int, int, int]]] = [[] for _ in range(n_images)]
    problems: list[str] = []
    img, t = 0, 0
    for k, raw in enumerate(words):
        p = unpack(lay, raw)
        if img >= n_images:
            problems.append(f"winner word {k} after the last image: {p}")
            continue
        if p["t"] != t:
            problems.append(f"image {img}: winner word {k} says step {p['t']}, expected {t}")
        if p["step_end"]:
            if p["last"] != int(t == T - 1):
                problems.append(f"image {img}: end-of-step marker of step {t} has last={p['last']}")
            t += 1
            if t == T:
                img, t = img + 1, 0
        else:
            out[img].append((t, p["m"], p["u"], p["v"]))
    if img < n_images:
        problems.append(f"the winners stream stopped in step {t} of image {img} (of {n_images})")
    return [np.array(w, dtype=np.int64).reshape(-1, 4) for w in out], problems


@dataclass
class LearnRun:
    """Result of :func:`simulate_learning`: per image the winners ``(t, m, r, c)``, the
    weights and the snapshot copy read back after it, and the stream problems."""

    winners: list[np.ndarray]
    weights: list[np.ndarray]
    snapshots: list[np.ndarray] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def simulate_learning(cfg: "ConvCoreConfig", weights0: np.ndarray, images: Sequence[np.ndarray], *,
                      read_every_image: bool = True, epoch_images: int | None = None,
                      vcd: str | None = None) -> LearnRun:
    """Train a learning ConvCore on ``images`` (each ``(k, 4)`` rows ``(t, c, y, x)``) in the
    Amaranth simulator; see the module docstring."""

    if not cfg.learning:
        cfg = dataclasses.replace(cfg, learning=True)
    core = ConvCore(cfg, hierarchy=True)
    tokens = [pack_tokens(cfg, image_tokens(ev, cfg.steps)) for ev in images]
    n = len(images)
    lay = spike_layout(cfg.maps, cfg.out_size, cfg.steps)
    win_words: list[int] = []
    run = LearnRun([], [])
    W = cfg.weight_words

    async def read_weights(ctx, base: int = 0) -> np.ndarray:
        bus = core.weights
        got = []
        ctx.set(bus.r_en, 1)
        for addr in range(base, base + W):
            ctx.set(bus.addr, addr)
            await ctx.tick().until(bus.r_ready)
            got.append(ctx.get(bus.r_data))
        ctx.set(bus.r_en, 0)
        return words_to_weights(cfg, got)

    async def producer(ctx):
        bus = core.weights
        await ctx.tick().until(core.idle)
        ctx.set(bus.w_en, (1 << cfg.parallelism) - 1)
        for addr, word in enumerate(weight_words(cfg, weights0)):
            ctx.set(bus.addr, addr)
            ctx.set(bus.w_data, word)
            await ctx.tick()
        ctx.set(bus.w_en, 0)
        for i in range(n):
            if epoch_images and i and i % epoch_images == 0:
                ctx.set(core.new_epoch, 1)
                await ctx.tick()
                ctx.set(core.new_epoch, 0)
            for tok in tokens[i]:
                ctx.set(core.i_events.valid, 1)
                ctx.set(core.i_events.payload.as_value(), tok)
                await ctx.tick().until(core.i_events.ready)
                ctx.set(core.i_events.valid, 0)
            await ctx.tick()
            await ctx.tick().until(core.idle)
            if read_every_image or i == n - 1:
                run.weights.append(await read_weights(ctx))
                run.snapshots.append(await read_weights(ctx, cfg.snapshot_base))

    async def drain(ctx, s, words, count_last):
        ctx.set(s.ready, 1)
        done = 0
        while done < n:
            payload, = await ctx.tick().sample(s.payload.as_value()).until(s.valid)
            if words is not None:
                words.append(payload)
            if count_last(payload):
                done += 1

    def spike_last(raw):
        p = unpack(lay, raw)
        return p["step_end"] and p["last"]

    async def winners(ctx):
        await drain(ctx, core.o_winners, win_words, spike_last)

    async def spikes(ctx):
        await drain(ctx, core.o_spikes, None, spike_last)

    async def features(ctx):
        flay = core.o_features.payload.shape()
        await drain(ctx, core.o_features, None, lambda raw: unpack(flay, raw)["last"])

    simulate(core, producer, winners, spikes, features, vcd=vcd)
    run.winners, run.problems = winners_by_image(cfg, win_words, n)
    return run


