"""Conv core words and payloads: input tokens of an image, weight-bus words, the captured outputs
split back into per-step spike sets and feature lists, and their comparison with the golden model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ...rtl.conv_config import ConvCoreConfig
from ...rtl.layouts import feature_layout, pack, spike_layout, token_layout, unpack
from ...rtl.packing import conv_weight_words

__all__ = [
    "pack_words",
    "unpack_words",
    "image_tokens",
    "pack_tokens",
    "ImageOutput",
    "split_outputs",
    "ConvMismatch",
    "compare_image",
    "weight_words",
    "max_outputs_per_image",
]


def pack_words(values: Sequence[int], bits: int, k: int) -> list[int]:
    """Payloads -> memory words of ``k`` payloads (payload ``j`` in slot ``j % k``)."""
    out = []
    for a in range(0, len(values), k):
        w = 0
        for j, v in enumerate(values[a:a + k]):
            w |= int(v) << (j * bits)
        out.append(w)
    return out


def unpack_words(words: Sequence[int], bits: int, k: int, n: int) -> list[int]:
    """The first ``n`` payloads of memory words of ``k`` payloads."""
    mask = (1 << bits) - 1
    return [(int(words[j // k]) >> ((j % k) * bits)) & mask for j in range(n)]


# ----- tokens ------------------------------------------------------------------------------------

def image_tokens(events: np.ndarray, steps: int, *, order: str = "given",
                 rng: np.random.Generator | None = None) -> list[dict[str, int]]:
    """The token sequence of one image: per step its input spikes, then an end-of-step marker.

    ``events`` is the image's ``(k, 4)`` rows ``(t, c, y, x)``. ``order`` is the order of the
    spikes within a step: ``"given"`` (as in ``events``), ``"reversed"`` or ``"shuffled"``
    (needs ``rng``); the core must not care.
    """
    events = np.asarray(events)
    out: list[dict[str, int]] = []
    for t in range(steps):
        block = events[events[:, 0] == t]
        if order == "reversed":
            block = block[::-1]
        elif order == "shuffled":
            block = block[rng.permutation(len(block))]
        elif order != "given":
            raise ValueError(f"order must be 'given', 'reversed' or 'shuffled', not {order!r}")
        out += [{"c": int(c), "y": int(y), "x": int(x), "step_end": 0} for _t, c, y, x in block]
        out.append({"c": 0, "y": 0, "x": 0, "step_end": 1})
    if len(events) and (events[:, 0].min() < 0 or events[:, 0].max() >= steps):
        raise ValueError(f"event steps must be in 0..{steps - 1}")
    return out


def pack_tokens(cfg: ConvCoreConfig | Mapping[str, Any], tokens: Iterable[Mapping[str, int]]) -> list[int]:
    """Flat bit patterns of tokens (``cfg`` a config or the design's ``params``)."""
    layout = _layouts(cfg)["token"]
    return [pack(layout, tok) for tok in tokens]


def _layouts(cfg: ConvCoreConfig | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(cfg, ConvCoreConfig):
        return {"token": token_layout(cfg.channels, cfg.in_size),
                "spike": spike_layout(cfg.maps, cfg.out_size, cfg.steps),
                "feature": feature_layout(cfg.features)}
    return cfg["layouts"]


def max_outputs_per_image(cfg: ConvCoreConfig | Mapping[str, Any]) -> tuple[int, int]:
    """Upper bounds of (spike-stream words, feature-stream words) of one image: every position
    fires at most once, plus the markers; a spike sets at most one feature."""
    if isinstance(cfg, ConvCoreConfig):
        H, T, F = cfg.out_size, cfg.steps, cfg.features
    else:
        H, T, F = cfg["out_size"], cfg["steps"], cfg["features"]
    return H * H + T, min(H * H, F) + 1


def weight_words(cfg: ConvCoreConfig | Mapping[str, Any], weights: np.ndarray) -> list[int]:
    """The weight bus words for ``weights`` (M, C, K, K), by address ``index*G + g``
    (``index = c*K*K + kr*K + kc``): lane ``l`` (map ``g*L + l``) in bits ``l*B .. l*B+B-1``
    (built by :func:`spykehw.rtl.packing.conv_weight_words`, shared with the weight export)."""
    if isinstance(cfg, ConvCoreConfig):
        L, G, B = cfg.parallelism, cfg.groups, cfg.weight_bits
    else:
        L, G, B = cfg["parallelism"], cfg["groups"], cfg["weight_bits"]
    M = np.asarray(weights).shape[0]
    if M != L * G:
        raise ValueError(f"weights have {M} maps, the core {L * G}")
    return conv_weight_words(weights, L, B)


# ----- outputs -----------------------------------------------------------------------------------

@dataclass
class ImageOutput:
    """What the core produced for one image.

    ``steps[t]``: the spikes ``(m, u, v)`` of step ``t`` in output order; ``features``: the
    feature indices in output order; ``problems``: protocol errors (missing or misplaced step
    markers, a marker with the wrong step, spikes after the image's last marker).
    ``step_end_words[t]`` and ``feature_end_word``: the index in the batch's spike (feature)
    stream of step ``t``'s end marker (the image's last feature marker), so that a testbench
    that knows when each word was captured can say when a step's output was complete.
    """

    steps: list[list[tuple[int, int, int]]]
    features: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    step_end_words: list[int] = field(default_factory=list)
    feature_end_word: int | None = None


def _fields(layout) -> dict[str, tuple[int, int]]:
    if isinstance(layout, list):
        return {str(f["name"]): (int(f["offset"]), (1 << int(f["width"])) - 1) for f in layout}
    return {name: (f.offset, (1 << f.width) - 1) for name, f in layout}


def split_outputs(cfg: ConvCoreConfig | Mapping[str, Any], spike_words: Sequence[int],
                  feature_words: Sequence[int], n_images: int) -> list[ImageOutput]:
    """Captured payloads -> one :class:`ImageOutput` per image (markers checked here)."""
    lay = _layouts(cfg)
    T = cfg.steps if isinstance(cfg, ConvCoreConfig) else cfg["steps"]
    out = [ImageOutput([[] for _ in range(T)]) for _ in range(n_images)]
    f = _fields(lay["spike"])
    (om, mm), (ou, mu), (ov, mv), (ot, mt), (oe, me), (ol, ml) = (
        f[k] for k in ("m", "u", "v", "t", "step_end", "last"))
    img, t = 0, 0
    for k, raw in enumerate(spike_words):
        raw = int(raw)
        m, u, v, pt = (raw >> om) & mm, (raw >> ou) & mu, (raw >> ov) & mv, (raw >> ot) & mt
        if img >= n_images:
            out[-1].problems.append(f"spike-stream word {k} after the last image: {unpack(lay['spike'], raw)}")
            continue
        o = out[img]
        if (raw >> oe) & me:
            if pt != t:
                o.problems.append(f"end-of-step marker says step {pt}, expected {t}")
            last = (raw >> ol) & ml
            if last != int(t == T - 1):
                o.problems.append(f"end-of-step marker of step {t} has last={last}")
            o.step_end_words.append(k)
            t += 1
            if t == T:
                img, t = img + 1, 0
        else:
            if pt != t:
                o.problems.append(f"spike {m, u, v} says step {pt}, sent in step {t}")
            o.steps[t].append((m, u, v))
    if img < n_images:
        out[img].problems.append(f"the spike stream stopped in step {t} (image {img} of {n_images})")
    f = _fields(lay["feature"])
    (oi, mi), (ol, ml) = f["index"], f["last"]
    fimg = 0
    for k, raw in enumerate(feature_words):
        raw = int(raw)
        if fimg >= n_images:
            out[-1].problems.append(f"feature-stream word {k} after the last image: {unpack(lay['feature'], raw)}")
            continue
        if (raw >> ol) & ml:
            out[fimg].feature_end_word = k
            fimg += 1
        else:
            out[fimg].features.append((raw >> oi) & mi)
    if fimg < n_images:
        out[fimg].problems.append(f"the feature stream stopped before the end of image {fimg}")
    return out


@dataclass(frozen=True)
class ConvMismatch:
    """One difference: ``what`` is ``spike``, ``feature`` or ``protocol``."""

    image: int
    what: str
    step: int | None = None
    map: int | None = None
    position: tuple[int, int] | None = None
    feature: int | None = None
    expected: str = ""
    found: str = ""

    def field(self) -> str:
        if self.what == "spike":
            return f"step {self.step} map {self.map} position {self.position}"
        if self.what == "feature":
            return f"feature {self.feature}"
        return "protocol"

    def message(self, vector: str, label: str = "") -> str:
        item = f"image {self.image}" + (f" ({label})" if label else "")
        return f"vector {vector} {item} {self.field()}: expected {self.expected}, found {self.found}"


def compare_image(image: int, got: ImageOutput, spikes: np.ndarray, features: np.ndarray
                  ) -> list[ConvMismatch]:
    """Every difference between one image's output and its expectation.

    ``spikes``: expected ``(k, 4)`` rows ``(t, m, u, v)``; ``features``: expected 0/1 vector.
    Spikes are compared as a set per step (a spike sent twice is also reported), features as
    a set per image (a feature sent twice is reported).
    """
    out: list[ConvMismatch] = [ConvMismatch(image, "protocol", expected="well-formed streams",
                                            found=p) for p in got.problems]
    T = len(got.steps)
    for t in range(T):
        exp = {(int(m), int(u), int(v)) for _t, m, u, v in spikes[spikes[:, 0] == t]}
        seen: set[tuple[int, int, int]] = set()
        for s in got.steps[t]:
            if s in seen:
                out.append(ConvMismatch(image, "spike", t, s[0], (s[1], s[2]),
                                        expected="one spike", found="a repeated spike"))
            seen.add(s)
        for m, u, v in sorted(exp - seen, key=lambda s: (s[1], s[2], s[0])):
            out.append(ConvMismatch(image, "spike", t, m, (u, v), expected="spike", found="no spike"))
        for m, u, v in sorted(seen - exp, key=lambda s: (s[1], s[2], s[0])):
            out.append(ConvMismatch(image, "spike", t, m, (u, v), expected="no spike", found="spike"))
    exp_f = set(np.flatnonzero(np.asarray(features)).tolist())
    got_f: set[int] = set()
    for f in got.features:
        if f in got_f:
            out.append(ConvMismatch(image, "feature", feature=f, expected="sent once",
                                    found="sent again"))
        got_f.add(f)
    for f in sorted(exp_f - got_f):
        out.append(ConvMismatch(image, "feature", feature=f, expected="1", found="not sent"))
    for f in sorted(got_f - exp_f):
        out.append(ConvMismatch(image, "feature", feature=f, expected="0", found="sent"))
    return out
