"""Running the learning conv core: the golden expectation, the Amaranth simulator, the long run.

:func:`golden_training` runs the golden integer ``train_conv`` (one epoch, weights traced after
every image) and returns what the RTL must reproduce: per image the STDP winners ``(t, m, r, c)``
(step within the image, map, row, column; by step, then map ascending: the order the golden
model applies them) and the weights after the image.

:func:`simulate_learning` runs a :class:`~spykehw.rtl.conv_core.ConvCore` built with
``learning=True`` in the Amaranth simulator: it loads the initial weights over the weight bus,
streams the images' tokens, collects the ``o_winners`` stream, and after every image (when the
core is ``idle``) reads every weight back over the bus.

:func:`long_run` is the long check: STDP-train Conv1 in the RTL (Verilator through cocotb,
:mod:`spykehw.sim.tb_conv_learn`) on ``N`` real MNIST training images from the authors' initial
weights, and compare the final weights with the golden model's. Run it with::

    .venv/bin/python -m spykehw.sim.learn_harness long 500 [--simulator verilator] [--parallelism 30]

which prints one JSON object (identical or not, cycles per image, simulator speed).
:func:`register` adds the same as ``spykehw cosim learn`` (``_learn(args)``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..argtypes import count, output_dir

# Amaranth and the harness are imported where they are used, so that registering the command
# line (``register``) stays cheap.

__all__ = [
    "LearnExpectation",
    "golden_training",
    "words_to_weights",
    "LearnRun",
    "simulate_learning",
    "winners_by_image",
    "build_learn_cosim",
    "run_learn_cosim",
    "long_run",
    "register",
]


@dataclass
class LearnExpectation:
    """Golden training of one sequence: ``winners[n]`` (k, 4) rows ``(t, m, r, c)``,
    ``weights[n]`` (M, C, K, K) after image ``n``, and ``level``: the learning-rate doublings
    after the last image."""

    winners: list[np.ndarray]
    weights: np.ndarray
    level: int = 0


def golden_training(events: Sequence[np.ndarray], weights0: np.ndarray, opts: "ConvOptions",
                    formats: "NumberFormats", *, steps: int = 12,
                    max_spikes_per_input: int = 1) -> LearnExpectation:
    """The golden integer STDP training (``train_conv``, one epoch) of ``events`` (per image
    ``(k, 4)`` rows ``(t, c, y, x)`` in the golden order) from ``weights0``."""
    from ..golden.arithmetic import int_arithmetic
    from ..golden.conv import train_conv
    from ..golden.spikes import SpikeEvents

    S, C = opts.in_size, opts.in_channels
    counts = [len(e) for e in events]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    ev = (np.concatenate(events) if len(events) else np.zeros((0, 4))).astype(np.int16).reshape(-1, 4)
    arith = int_arithmetic(opts, formats, max_spikes_per_input=max_spikes_per_input)
    tr = train_conv(SpikeEvents(offsets, ev, steps, (C, S, S)), np.asarray(weights0, dtype=np.int64),
                    opts, arith, trace_weights=True)
    win = np.asarray(tr.winners, dtype=np.int64).reshape(-1, 4)
    per = []
    for n in range(len(events)):
        rows = win[(win[:, 0] >= n * steps) & (win[:, 0] < (n + 1) * steps)].copy()
        rows[:, 0] -= n * steps
        per.append(rows)
    wpi = (np.asarray(tr.weights_per_image, dtype=np.int64) if len(events)
           else np.zeros((0,) + np.shape(weights0), np.int64))
    return LearnExpectation(per, wpi, int(tr.level))


def words_to_weights(cfg: "ConvCoreConfig | dict", words: Sequence[int]) -> np.ndarray:
    """Weight-bus words (address ``index*G + g``) back to (M, C, K, K): the inverse of
    :func:`~spykehw.sim.conv_harness.weight_words`."""
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
    from ..rtl.layouts import spike_layout, unpack

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
    """Result of :func:`simulate_learning`: per image the winners ``(t, m, r, c)`` and the
    weights read back after it, and the stream problems."""

    winners: list[np.ndarray]
    weights: list[np.ndarray]
    problems: list[str] = field(default_factory=list)


def simulate_learning(cfg: "ConvCoreConfig", weights0: np.ndarray, images: Sequence[np.ndarray], *,
                      read_every_image: bool = True, vcd: str | None = None) -> LearnRun:
    """Train a learning ConvCore on ``images`` (each ``(k, 4)`` rows ``(t, c, y, x)``) in the
    Amaranth simulator; see the module docstring."""
    from ..rtl.conv_core import ConvCore
    from ..rtl.layouts import spike_layout, unpack
    from .conv_harness import image_tokens, pack_tokens, weight_words
    from .streams import simulate

    if not cfg.learning:
        cfg = dataclasses.replace(cfg, learning=True)
    core = ConvCore(cfg, hierarchy=True)
    tokens = [pack_tokens(cfg, image_tokens(ev, cfg.steps)) for ev in images]
    n = len(images)
    lay = spike_layout(cfg.maps, cfg.out_size, cfg.steps)
    win_words: list[int] = []
    run = LearnRun([], [])
    W = cfg.weight_words

    async def read_weights(ctx) -> np.ndarray:
        bus = core.weights
        got = []
        ctx.set(bus.r_en, 1)
        for addr in range(W):
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
            for tok in tokens[i]:
                ctx.set(core.i_events.valid, 1)
                ctx.set(core.i_events.payload.as_value(), tok)
                await ctx.tick().until(core.i_events.ready)
                ctx.set(core.i_events.valid, 0)
            await ctx.tick()
            await ctx.tick().until(core.idle)
            if read_every_image or i == n - 1:
                run.weights.append(await read_weights(ctx))

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


# ----- co-simulation (Verilator / Icarus through cocotb) -----------------------------------------

def build_learn_cosim(cfg: "ConvCoreConfig", simulator: str, folder, *, waves: bool = False,
                      optimize: bool = False, long: bool = False):
    """Generate and build the harness of a learning core (:func:`build_conv_cosim` with
    ``learning=True``; ``long``: the large capture memories of long runs)."""
    from .conv_harness import LONG_RUN_DEPTHS, build_conv_cosim

    if not cfg.learning:
        cfg = dataclasses.replace(cfg, learning=True)
    depths = dict(LONG_RUN_DEPTHS, winner_depth=1 << 15) if long else {}
    return build_conv_cosim(cfg, simulator, folder, waves=waves, optimize=optimize, **depths)


def run_learn_cosim(cosim, vectors, test_dir, *, images: int | None = None, every_image: bool = True,
                    stall: bool = False, check: bool = True):
    """Run :mod:`spykehw.sim.tb_conv_learn` on a ``conv-learn`` file (the first ``images``
    images, or all); returns a :class:`~spykehw.sim.conv_harness.ConvCosimResult`. With
    ``check`` a mismatch raises :class:`~spykehw.sim.runners.CosimFailure`."""
    import json
    from pathlib import Path

    from .cocotb_support import ENV_STALL
    from .conv_harness import ConvCosimResult
    from .runners import CosimFailure, run_tests, tb_env
    from .tb_conv import ENV_STATS
    from .tb_conv_learn import ENV_LEARN_EVERY, ENV_LEARN_IMAGES

    test_dir = Path(test_dir)
    test_dir.mkdir(parents=True, exist_ok=True)
    stats_path = test_dir / "learn_stats.json"
    extra = {ENV_STATS: str(stats_path.resolve()), ENV_LEARN_EVERY: "1" if every_image else "0"}
    if images is not None:
        extra[ENV_LEARN_IMAGES] = str(int(images))
    if stall:
        extra[ENV_STALL] = "0.5"
    env = tb_env(vectors=vectors, ports=cosim.design.json_path, **extra)
    result = run_tests(cosim.build, "spykehw.sim.tb_conv_learn", test_dir, extra_env=env,
                       check=False, waves=False)
    stats = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
    out = ConvCosimResult(result, stats)
    if check and not result.passed:
        raise CosimFailure(result.summary(), result)
    return out


# ----- the long run ----------------------------------------------------------------------------

def long_run(n_images: int = 500, *, simulator: str = "verilator", parallelism: int = 30,
             formats: str = "fpga-16", folder=None, data_dir=None, optimize: bool = True,
             progress: Any = None) -> dict[str, Any]:
    """STDP-train Conv1 (default options) in the RTL on the first ``n_images`` MNIST training
    images, from the authors' initial weights, and compare with the golden model: the winners
    of every image and the weights after every batch (and so the final weights).

    Images come from the embedded ``mnist-sample`` (5,000 training images) unless
    ``n_images > 5000`` or ``data_dir`` is given (then the full MNIST from the data folders).
    Returns a JSON-friendly summary: ``identical``, mismatch lines, cycles per image, simulated
    cycles per second and images per second, wall times.
    """
    import tempfile
    import time
    from pathlib import Path

    from ..golden.formats import load_formats
    from ..golden.options import CONV1
    from .vector_gen_conv import encode_cases, mnist_train_images
    from .vector_gen_learn import core_config, initial_weights, make_learn_vectors, write_vector_set

    fmt = load_formats(formats)
    t0 = time.perf_counter()
    source = "mnist-sample" if n_images <= 5000 and data_dir is None else "mnist"
    images = mnist_train_images(source, data_dir)[:n_images]
    if len(images) < n_images:
        raise ValueError(f"{source} has only {len(images)} training images, not {n_images}")
    labels = [f"mnist-train[{i}]" for i in range(n_images)]
    events = [c.events for c in encode_cases(images, labels, fmt)]
    vs = make_learn_vectors(fmt, CONV1, initial_weights(CONV1, fmt), events, labels, layer="conv1",
                            images=images, sources={"mnist-train": source},
                            description=f"long run: Conv1 STDP on {n_images} {source} training images")
    t_golden = time.perf_counter() - t0
    tmp = None
    if folder is None:
        tmp = tempfile.TemporaryDirectory(prefix="spykehw-learn-")
        folder = tmp.name
    folder = Path(folder)
    try:
        path = write_vector_set(folder / "long.npz", vs)
        t1 = time.perf_counter()
        cosim = build_learn_cosim(core_config(vs, parallelism), simulator, folder / "build",
                                  optimize=optimize and simulator == "verilator", long=True)
        t_build = time.perf_counter() - t1
        res = run_learn_cosim(cosim, path, folder / "run", every_image=False, check=False)
        report = res.result.report or {}
        mism = report.get("mismatches", [])
        st = res.stats
        images_run = int(st.get("images", 0))
        cycles = int(st.get("cycles", 0))
        sim_s = float(st.get("sim_s", 0.0))
        return {
            "images": images_run, "requested": n_images, "source": source, "formats": fmt.name,
            "simulator": simulator, "parallelism": parallelism,
            "optimized_build": bool(optimize and simulator == "verilator"),
            "identical": bool(res.passed and images_run == n_images and not mism),
            "compared": (f"the winners of every image, and every weight after each of "
                         f"{len(st.get('batches', []))} batches (the last: the final weights)"),
            "mismatches": len(mism), "mismatch_lines": [m["message"] for m in mism][:20],
            "golden_winners": int(len(vs["winners"])), "golden_final_level": vs.options["final_level"],
            "cycles": cycles, "cycles_per_image": cycles / images_run if images_run else 0.0,
            "sim_cycles_per_s": cycles / sim_s if sim_s else 0.0,
            "images_per_s": images_run / float(st.get("wall_s", 0.0)) if st.get("wall_s") else 0.0,
            "golden_s": t_golden, "build_s": t_build, "tb_wall_s": float(st.get("wall_s", 0.0)),
            "wall_s": time.perf_counter() - t0,
        }
    finally:
        if tmp is not None:
            tmp.cleanup()


# ----- command line ----------------------------------------------------------------------------------

def _add_arguments(p) -> None:
    p.add_argument("--images", type=count, default=500, help="MNIST training images (default 500)")
    p.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator")
    p.add_argument("--parallelism", type=count, default=30, help="maps per cycle L (default 30)")
    p.add_argument("--config", default="fpga-16", help="number formats: preset or TOML (default fpga-16)")
    p.add_argument("--data-dir", default=None, help="datasets folder (default: embedded sample)")
    p.add_argument("--folder", type=output_dir, default=None, help="keep the build and run here (default: temporary)")
    p.add_argument("--no-optimize", action="store_true", help="unoptimised Verilator build")


def _learn(args) -> int:
    """``spykehw cosim learn``: the long STDP run, printed as JSON; exit status 1 if not identical."""
    import json

    out = long_run(args.images, simulator=args.simulator, parallelism=args.parallelism,
                   formats=args.config, folder=args.folder, data_dir=args.data_dir,
                   optimize=not args.no_optimize)
    print(json.dumps(out, indent=1))
    return 0 if out["identical"] else 1


def register(subparsers) -> None:
    """Add ``learn`` to the ``cosim`` command's subparsers (see the report of issue 5)."""
    p = subparsers.add_parser("learn", help="STDP-train Conv1 in the RTL and compare with the golden model")
    _add_arguments(p)
    p.set_defaults(func=_learn)


def _main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m spykehw.sim.learn_harness")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("long", help="the long run (JSON on stdout)")
    p.add_argument("n", type=count, nargs="?", default=500, help="images (default 500)")
    _add_arguments(p)
    args = ap.parse_args(argv)
    if args.n is not None:
        args.images = args.n
    return _learn(args)


if __name__ == "__main__":
    raise SystemExit(_main())
