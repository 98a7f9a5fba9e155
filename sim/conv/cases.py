"""What a conv-core vector set drives the core with: cases (an event list and the weight set it
runs with: the integer encoding of a real image, a hand-made adversarial list, or Pool1 spikes as
the next layer's input) and weight sets (STDP-trained, adversarial, patterned).

Adversarial cases (:func:`adversarial_cases`, :func:`adversarial_weight_sets`): no input at
all; every input at the first step, or at the last; only the border rings (corner clipping);
dense random input; one input per step; and with special weight sets: maps in identical triples
(ties: the lowest map must win), every weight ``2**B - 1`` (the worst-case potential; every map
ties), every weight ``2**B - 2`` but the last map's ``2**B - 1`` (the worst case must not wrap),
and a map that crosses the threshold first during a step but is overtaken by the end of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ...golden.formats import NumberFormats
from ...golden.options import ConvOptions, EncoderOptions, NetworkOptions
from ...golden.pipeline import encode_events, train_conv1

__all__ = [
    "STDP_TRAIN_IMAGES",
    "ConvCase",
    "canonical_events",
    "adversarial_cases",
    "pool_events",
    "pool_repeat_case",
    "row_labels",
    "encode_cases",
    "adversarial_weight_sets",
    "pattern_weights",
    "stdp_weights",
]

STDP_TRAIN_IMAGES = 300
"""MNIST training images the STDP weights of the vector sets are trained on (by default)."""


@dataclass(frozen=True)
class ConvCase:
    """One image of a vector set: its label, events ``(k, 4)`` and weight set (and source image)."""

    name: str
    events: np.ndarray
    weight_set: int = 0
    image: np.ndarray | None = None



# ----- events ------------------------------------------------------------------------------------

def canonical_events(rows: Any) -> np.ndarray:
    """``(k, 4)`` int64 rows ``(t, c, y, x)`` sorted by step, then row-major (the golden order)."""
    ev = np.asarray(rows, dtype=np.int64).reshape(-1, 4)
    order = np.lexsort((ev[:, 3], ev[:, 2], ev[:, 1], ev[:, 0]))
    return ev[order]


def _grid(C: int, S: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(C), np.arange(S), np.arange(S), indexing="ij")


def _from_latencies(lat: np.ndarray) -> np.ndarray:
    c, y, x = np.nonzero(lat >= 0)
    return canonical_events(np.stack([lat[c, y, x], c, y, x], axis=1))


def adversarial_cases(opts: ConvOptions, steps: int, seed: int) -> dict[str, np.ndarray]:
    """Named hand-made event lists (each input spikes at most once).

    ``empty`` (no input spike), ``all_first_step`` / ``all_last_step`` (every input at step 0
    / ``T-1``), ``borders`` (only the three outer rings, ring ``r`` at step ``r``: output
    positions at the corners and edges, where the receptive fields are clipped),
    ``dense_random`` (70 % of the inputs at random steps of the first ten: many positions cross
    in several maps within one step), ``one_per_step`` (a single input per step, at the corners
    and then one pixel further in).
    """
    C, S = opts.in_channels, opts.in_size
    rng = np.random.default_rng(seed)
    c, y, x = _grid(C, S)
    cases: dict[str, np.ndarray] = {"empty": canonical_events([])}
    cases["all_first_step"] = _from_latencies(np.zeros((C, S, S), dtype=np.int64))
    cases["all_last_step"] = _from_latencies(np.full((C, S, S), steps - 1, dtype=np.int64))
    ring = np.minimum(np.minimum(y, x), np.minimum(S - 1 - y, S - 1 - x))
    cases["borders"] = _from_latencies(np.where(ring < min(3, steps), ring, -1))
    lat = rng.integers(0, min(10, steps), size=(C, S, S))
    cases["dense_random"] = _from_latencies(np.where(rng.random((C, S, S)) < 0.7, lat, -1))
    def corner(t: int) -> tuple[int, int]:
        k = (t // 4) % S            # the corners first, then one step further in each round
        return [(k, k), (k, S - 1 - k), (S - 1 - k, k), (S - 1 - k, S - 1 - k)][t % 4]
    cases["one_per_step"] = canonical_events([(t, t % C, *corner(t)) for t in range(steps)])
    return cases


def pool_events(spike_lists: Sequence[np.ndarray], conv: ConvOptions, steps: int) -> list[np.ndarray]:
    """The Pool1 spikes of each image as the next layer's input events.

    Pool neuron ``(m, i, j)`` spikes at step ``t`` if a conv neuron of map ``m`` in rows
    ``2i, 2i+1`` and columns ``2j, 2j+1`` fired at ``t`` (spec section 5.1; not accumulated), so
    an input of the next layer spikes at most 4 times per image.
    """
    P = conv.pool_size
    out = []
    for sl in spike_lists:
        sl = np.asarray(sl, dtype=np.int64).reshape(-1, 4)
        keep = (sl[:, 2] < 2 * P) & (sl[:, 3] < 2 * P)
        rows = {(int(t), int(m), int(u) // 2, int(v) // 2) for t, m, u, v in sl[keep]}
        out.append(canonical_events(sorted(rows)))
    return out



def pool_repeat_case(opts: ConvOptions) -> np.ndarray:
    """Next-layer (Conv2) input: the receptive field of the centre output, every input spiking 4
    times (steps 0, 3, 6, 9), the most a Pool1 input can; the worst-case potential, reached at
    the end of step 9."""
    h = opts.out_size // 2
    c, y, x = (a.reshape(-1) for a in _grid(opts.in_channels, opts.kernel))
    return canonical_events(
        [(t, ci, h + yi, h + xi) for t in (0, 3, 6, 9) for ci, yi, xi in zip(c, y, x)])


def row_labels(source: str, rows: Sequence[int]) -> list[str]:
    """Case labels of dataset rows: ``mnist-test[17]``."""
    return [f"{source}[{r}]" for r in rows]


def encode_cases(images: np.ndarray, labels: Sequence[str], formats: NumberFormats,
                 encoder: EncoderOptions | None = None, weight_set: int = 0) -> list[ConvCase]:
    """Real cases: the integer encoding of ``images`` (golden ``encode_events``)."""

    encoder = encoder or EncoderOptions()
    images = np.asarray(images, dtype=np.uint8).reshape(-1, 28, 28)
    ev = encode_events(images, encoder, formats)
    return [ConvCase(label, canonical_events(ev.image(i)), weight_set, images[i])
            for i, label in enumerate(labels)]



# ----- weights -----------------------------------------------------------------------------------

def adversarial_weight_sets(base: np.ndarray, weight_bits: int) -> dict[str, np.ndarray]:
    """Weight sets derived from ``base`` (M, C, K, K) or made by hand (see the module docstring).

    ``ties``: map ``m`` gets the weights of map ``3*(m//3)``; ``max``: every weight
    ``2**B - 1``; ``max_last``: ``2**B - 2`` everywhere but ``2**B - 1`` in the last map;
    ``overtake``: map 0 has ``2**B - 1`` on channel 0 and 0 on the others, map 1 has
    ``0.8 * (2**B - 1)`` on every channel, the rest 0.
    """
    base = np.asarray(base, dtype=np.int64)
    top = (1 << weight_bits) - 1
    M = base.shape[0]
    ties = base[(np.arange(M) // 3) * 3]
    maxed = np.full_like(base, top)
    max_last = np.full_like(base, top - 1)
    max_last[-1] = top
    overtake = np.zeros_like(base)
    overtake[0, 0] = top
    if M > 1:
        overtake[1] = (top * 4) // 5
    return {"ties": ties, "max": maxed, "max_last": max_last, "overtake": overtake}


def pattern_weights(opts: ConvOptions, weight_bits: int) -> np.ndarray:
    """Deterministic weights in ``[0.75, 0.95)`` of full scale, different per map:
    ``top*3//4 + ((37m + 11c + 5kr + 3kc) mod 17) * (top // 80)``. Unlike trained or random
    weights they compress well, which keeps a committed Conv2 file (150,000 weights) small."""
    top = (1 << weight_bits) - 1
    m, c, kr, kc = np.meshgrid(*(np.arange(n) for n in (opts.maps, opts.in_channels, opts.kernel,
                                                        opts.kernel)), indexing="ij")
    return (top * 3 // 4 + ((37 * m + 11 * c + 5 * kr + 3 * kc) % 17) * (top // 80)).astype(np.int64)


def stdp_weights(images: np.ndarray, formats: NumberFormats) -> np.ndarray:
    """Integer Conv1 weights after STDP on ``images`` (golden ``train_conv1``, default options)."""

    return np.asarray(train_conv1(images, NetworkOptions(), formats).weights, dtype=np.int64)

