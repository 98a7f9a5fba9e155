"""What the accelerator co-simulation drives and expects: weights as AXI4-Lite writes, event
frames, and the golden model's results.

Why here (``sim/``): the expectations come from the integer golden model (``run_conv`` ->
``forward_int``), the stimuli from the blocks' word builders; the RTL never sees either. The
testbench (:mod:`spykehw.sim.accelerator.tb`) reads a *job* file written by :func:`write_job`:
an ``.npz`` with the event frames, the register writes that load the weights, the expected
classes and softmax words (and, for malformed frames, the flags the frame must raise), plus the
design point's JSON.

:func:`weight_writes` is the one place that turns a :class:`WeightImage` (the words of each
memory, and the external memory image) into register writes. Real runs take that image from a
``spykehw export`` folder (:mod:`spykehw.export.host`, above this layer); the short tests build it
from random parameters with the blocks' own word builders (:func:`params_image`), and a test
holds the two builders equal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ...golden.arithmetic import int_arithmetic
from ...golden.classifier_int import IntClassifier, forward_int
from ...golden.conv import run_conv
from ...golden.design_point import DesignPoint
from ...golden.files import atomic_write
from ...golden.fixed import signed_range
from ...golden.formats import preset
from ...golden.options import ConvOptions
from ...golden.spikes import SpikeEvents
from ...rtl.accel_regs import REG, WDATA_BASE
from ...rtl.accelerator import w2_stride, weight_targets
from ...rtl.design import classifier_config, conv_core_config
from ...rtl.event_checker import ErrorFlag, token_beat_bits
from ...rtl.layouts import index_bits, token_layout
from ..classifier.packing import load_words, w2_rows
from ..conv.packing import image_tokens, pack_tokens, weight_words

__all__ = ["AcceleratorParams", "small_point", "random_params", "random_events", "WeightImage", "params_image",
           "weight_writes", "expected_results", "frame_of", "malformed_frames", "Job", "make_job", "write_job", "read_job"]


@dataclass(frozen=True)
class AcceleratorParams:
    """The integer parameters of a whole network: Conv1 weights ``(M, C, K, K)`` and the
    quantized classifier."""
    conv_weights: np.ndarray
    classifier: IntClassifier


def small_point(preset_name: str = "fpga-8") -> DesignPoint:
    """A design point small enough for a short co-simulation on both simulators: 2x11x11 inputs,
    4 maps 3x3 (threshold 3), 4 steps, 64 features -> 16 hidden -> 4 classes."""
    conv = ConvOptions(in_channels=2, in_size=11, maps=4, kernel=3, threshold=3.0)
    return DesignPoint(formats=preset(preset_name), conv=conv, hidden=16, classes=4, steps=4,
                       conv_lanes=2, classifier_lanes=8)


def random_params(point: DesignPoint, seed: int = 0) -> AcceleratorParams:
    """Random parameters in the formats' full ranges (weights biased high so maps fire)."""
    rng = np.random.default_rng(seed)
    f, c = point.formats, point.conv
    B = f.conv.weight_bits
    conv_w = rng.integers(1 << (B - 1), 1 << B, size=(c.maps, c.in_channels, c.kernel, c.kernel))

    def draw(shape, bits):
        lo, hi = signed_range(bits)
        return rng.integers(lo, hi + 1, size=shape)
    cf = f.classifier
    q = IntClassifier(draw((point.features, point.hidden), cf.hidden_weight_bits),
                      draw(point.hidden, cf.hidden_bias_bits) // 16,
                      draw((point.hidden, point.classes), cf.output_weight_bits),
                      draw(point.classes, cf.output_bias_bits) // 64, f)
    return AcceleratorParams(conv_w.astype(np.int64), q)


def random_events(point: DesignPoint, images: int, seed: int = 0, density: float = 0.3) -> list[np.ndarray]:
    """Per image ``(k, 4)`` rows ``(t, c, y, x)``: each input spikes at most once, at a random
    step, with probability ``density``; sorted by step, then row-major."""
    rng = np.random.default_rng(seed)
    C, S, T = point.conv.in_channels, point.conv.in_size, point.steps
    out = []
    for _ in range(images):
        lat = np.where(rng.random((C, S, S)) < density, rng.integers(0, T, (C, S, S)), -1)
        c, y, x = np.nonzero(lat >= 0)
        ev = np.stack([lat[c, y, x], c, y, x], axis=1)
        out.append(ev[np.lexsort((x, y, c, ev[:, 0]))].astype(np.int16))
    return out


@dataclass(frozen=True)
class WeightImage:
    """What a host loads: per weight-window target (``conv``, ``W2`` when on chip, ``b2``,
    ``W3``, ``b3``) its words by address, and for an external point the memory the AXI4 master
    reads (from address 0) with ``W2``'s base address in it. A ``spykehw export`` gives one
    (:mod:`spykehw.export.host`); :func:`params_image` builds one from parameters."""
    words: dict[str, list[int]]
    memory: bytes = b""
    w2_base: int = 0


def params_image(point: DesignPoint, params: AcceleratorParams) -> WeightImage:
    """The weight image of ``params`` from the blocks' own word builders (``weight_words``,
    ``load_words``, ``w2_rows``): an implementation independent of the export's, which a test
    holds equal to it. External ``W2``: row ``r`` at ``r * W2_STRIDE`` from address 0."""
    conv_cfg, clf_cfg = conv_core_config(point), classifier_config(point)
    q = params.classifier
    words: dict[str, list[int]] = {"conv": weight_words(conv_cfg, params.conv_weights)}
    names = {"W2": "W2", "B2": "b2", "W3": "W3", "B3": "b3"}
    for target, addr, data in load_words(clf_cfg, q.W2q, q.b2q, q.W3q, q.b3q):
        lst = words.setdefault(names[target.name], [])
        if addr != len(lst):
            raise ValueError(f"{target.name}: load words out of address order ({addr} after {len(lst)})")
        lst.append(int(data))
    if point.weights != "external":
        return WeightImage(words)
    stride, word_bytes = w2_stride(point), clf_cfg.w2_word_bits // 8
    image = bytearray(stride * clf_cfg.features)
    for r, row in enumerate(w2_rows(clf_cfg, q.W2q)):
        for g, w in enumerate(row):
            image[r * stride + g * word_bytes:r * stride + (g + 1) * word_bytes] = int(w).to_bytes(word_bytes, "little")
    return WeightImage(words, bytes(image), 0)


def preload_writes(point: DesignPoint, weights: WeightImage) -> list[tuple[int, int]]:
    """The writes left when the on-chip memories are initialised at generation: ``W2_BASE``."""
    return [(REG["W2_BASE"], weights.w2_base)] if point.weights == "external" else []


def weight_writes(point: DesignPoint, weights: WeightImage) -> list[tuple[int, int]]:
    """``(byte address, 32-bit value)`` AXI4-Lite writes loading every on-chip memory of
    ``point`` through the weight window: per target ``WSEL``, ``WADDR = 0``, then each word's
    chunks (external points: first ``W2_BASE``)."""
    out: list[tuple[int, int]] = [(REG["W2_BASE"], weights.w2_base)] if point.weights == "external" else []
    for t in weight_targets(point):
        lst = weights.words.get(t.name)
        if lst is None or len(lst) != t.depth:
            raise ValueError(f"{t.name}: {0 if lst is None else len(lst)} words for a memory of {t.depth}")
        out += [(REG["WSEL"], t.code), (REG["WADDR"], 0)]
        for w in lst:
            if not 0 <= w < 1 << (32 * t.chunks):
                raise ValueError(f"{t.name}: word {w:#x} is wider than the window's {32 * t.chunks} bits")
            out += [(WDATA_BASE + 4 * k, (w >> (32 * k)) & 0xFFFFFFFF) for k in range(t.chunks)]
    return out


def expected_results(point: DesignPoint, params: AcceleratorParams,
                     events: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(classes (N,), words (N, C))`` of the integer golden model for these images."""
    c = point.conv
    ev = [np.asarray(e, np.int16).reshape(-1, 4) for e in events]
    offsets = np.zeros(len(ev) + 1, np.int64)
    np.cumsum([len(e) for e in ev], out=offsets[1:])
    flat = np.concatenate(ev) if ev else np.zeros((0, 4), np.int16)
    spikes = SpikeEvents(offsets, flat, point.steps, (c.in_channels, c.in_size, c.in_size))
    run = run_conv(spikes, params.conv_weights, c, int_arithmetic(c, point.formats))
    fwd = forward_int(params.classifier, run.features, keep_hidden=False)
    return fwd.classes.astype(np.int64), fwd.words.astype(np.int64)


def frame_of(point: DesignPoint, events: np.ndarray, rng: np.random.Generator | None = None) -> list[int]:
    """The ``s_axis`` beats of one image (spikes shuffled within each step when ``rng``)."""
    toks = image_tokens(events, point.steps, order="shuffled" if rng is not None else "given", rng=rng)
    return pack_tokens(conv_core_config(point), toks)


def malformed_frames(point: DesignPoint, good: np.ndarray) -> list[tuple[str, list[int], int]]:
    """``(name, beats, expected flags)`` of malformed variants of the image ``good``."""
    C, S, T = point.conv.in_channels, point.conv.in_size, point.steps
    toks = image_tokens(good, T)
    marker = {"c": 0, "y": 0, "x": 0, "step_end": 1}
    spike = next(t for t in toks if not t["step_end"])
    out = []
    if S < (1 << index_bits(S)):        # an out-of-range coordinate fits the field
        out.append(("x out of range", [{"c": 0, "y": 0, "x": S, "step_end": 0}] + toks, ErrorFlag.RANGE))
        out.append(("y out of range", toks[:1] + [{"c": 0, "y": S, "x": 1, "step_end": 0}] + toks[1:],
                    ErrorFlag.RANGE))
    if C < (1 << index_bits(C)):
        out.append(("c out of range", [{"c": C, "y": 0, "x": 0, "step_end": 0}] + toks, ErrorFlag.RANGE))
    i = toks.index(spike)
    out.append(("duplicate spike", toks[:i + 1] + [spike] + toks[i + 1:], ErrorFlag.DUPLICATE))
    out.append(("one marker missing", toks[:-1], ErrorFlag.SHORT))
    out.append(("only spikes, no marker", [t for t in toks if not t["step_end"]][:3] or [spike], ErrorFlag.SHORT))
    out.append(("an extra marker", toks + [marker], ErrorFlag.LONG))
    out.append(("spikes after the last marker", toks + [spike, spike, marker], ErrorFlag.LONG))
    cfg = conv_core_config(point)
    frames = [(name, pack_tokens(cfg, beats), int(flags)) for name, beats, flags in out]
    tok_bits, beat_bits = token_layout(C, S).size, token_beat_bits(C, S)
    if beat_bits > tok_bits:        # tdata is whole bytes: a bit above the token is malformed
        beats = pack_tokens(cfg, toks)
        k = next(i for i, t in enumerate(toks) if not t["step_end"])
        frames.append(("a spike with a bit above the token", beats[:k] + [beats[k] | 1 << tok_bits] + beats[k + 1:],
                       int(ErrorFlag.RANGE)))
        frames.append(("a marker with a bit above the token", beats[:-1] + [beats[-1] | 1 << (beat_bits - 1)],
                       int(ErrorFlag.RANGE)))
    return frames


@dataclass(frozen=True)
class Job:
    """A testbench job: frames (beats + per-frame expected flags), weight writes, expectations."""
    point: DesignPoint
    frames: list[list[int]]
    flags: np.ndarray           # (N,) expected error flags per frame (0 = a good frame)
    classes: np.ndarray         # (N,) golden class, -1 for malformed frames
    words: np.ndarray           # (N, C) golden softmax words (0 rows for malformed frames)
    writes: list[tuple[int, int]]
    names: list[str]
    stall: float = 0.25
    seed: int = 1
    memory: bytes = b""         # external memory contents from address 0 (external points)
    poison_from: int = -1       # external memory answers SLVERR from this address on (-1: never)


def make_job(point: DesignPoint, params: AcceleratorParams, events: Sequence[np.ndarray], *,
             weights: WeightImage | None = None, malformed: Sequence[tuple[int, str, list[int], int]] = (),
             stall: float = 0.25, seed: int = 1, shuffle: bool = True, read_errors: bool = False,
             preloaded: bool = False) -> Job:
    """Good images ``events`` (golden expectations of ``params``), loaded as ``weights`` (default:
    :func:`params_image`), with ``malformed`` frames ``(position, name, beats, flags)`` inserted
    before the good image at ``position``. ``preloaded``: the memories hold the weights from
    generation on (``Accelerator(weights=...)``), so no window writes (``W2_BASE`` only). With
    ``read_errors``
    (external points) the memory answers every read with ``SLVERR``: every frame must come back
    flagged ``AXI_READ`` (each image here has active features, so each reads W2)."""
    classes, words = expected_results(point, params, events)
    weights = params_image(point, params) if weights is None else weights
    rng = np.random.default_rng(seed) if shuffle else None
    frames = [frame_of(point, e, rng) for e in events]
    exp_c, exp_w, exp_f, names = list(classes), list(words), [0] * len(frames), [f"image {i}" for i in range(len(frames))]
    for pos, name, beats, flags in sorted(malformed, key=lambda m: -m[0]):
        frames.insert(pos, list(beats))
        exp_c.insert(pos, -1)
        exp_w.insert(pos, np.zeros(point.classes, np.int64))
        exp_f.insert(pos, int(flags))
        names.insert(pos, name)
    flags = np.asarray(exp_f, np.int64)
    if read_errors:
        if point.weights != "external":
            raise ValueError("read_errors: only an external point reads W2 over AXI4")
        flags |= int(ErrorFlag.AXI_READ)
    return Job(point, frames, flags, np.asarray(exp_c, np.int64),
               np.asarray(exp_w, np.int64).reshape(len(frames), point.classes),
               preload_writes(point, weights) if preloaded else weight_writes(point, weights), names, stall, seed,
               weights.memory, 0 if read_errors else -1)


def write_job(path: str | Path, job: Job) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"point": job.point.to_dict(), "id32": job.point.id32, "names": job.names,
            "stall": job.stall, "seed": job.seed, "poison_from": job.poison_from}
    lengths = np.array([len(f) for f in job.frames], np.int64)
    beats = np.concatenate([np.asarray(f, np.int64) for f in job.frames]) if job.frames else np.zeros(0, np.int64)
    writes = np.asarray(job.writes, np.int64).reshape(-1, 2)
    with atomic_write(path, "wb") as f:
        np.savez(f, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), lengths=lengths, beats=beats,
                 flags=job.flags, classes=job.classes, words=job.words, writes=writes,
                 memory=np.frombuffer(job.memory, np.uint8))
    return path


def read_job(path: str | Path) -> Job:
    z = np.load(Path(path))
    meta = json.loads(bytes(z["meta"]).decode())
    ends = np.cumsum(z["lengths"])
    frames = [z["beats"][e - n:e].tolist() for e, n in zip(ends, z["lengths"])]
    point = DesignPoint.from_dict(meta["point"])
    if point.id32 != meta["id32"]:
        raise ValueError(f"{path}: design point does not hash to its recorded id32")
    return Job(point, frames, z["flags"], z["classes"], z["words"],
               [(int(a), int(v)) for a, v in z["writes"]], meta["names"], meta["stall"], meta["seed"],
               z["memory"].tobytes(), meta["poison_from"])
