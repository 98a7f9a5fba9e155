"""TODO docstring"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ...rtl.classifier import ClassifierConfig, LoadTarget
from ...rtl.packing import classifier_load_words, pack_lanes, unpack_lanes, w2_row_words

__all__ = [
    "write_bus",
    "pack_lanes",
    "unpack_lanes",
    "load_words",
    "w2_rows",
    "feature_tokens",
    "ClassifierOutputs",
    "split_outputs",
    "ClassifierMismatch",
    "compare_outputs",
]


# ----- packing ------------------------------------------------------------------------------

async def write_bus(ctx, bus, writes, *, before_each=None) -> None:
    """Drive a write bus (``WriteBusSignature``: ``addr``, ``data``, ``en``, and ``sel`` when
    ``writes`` yields ``(sel, addr, data)`` triples instead of ``(addr, data)`` pairs) in the
    Amaranth simulator, one write per cycle; ``before_each(ctx)`` runs before every write."""
    for w in writes:
        if before_each is not None:
            before_each(ctx)
        if len(w) == 3:
            ctx.set(bus.sel, w[0])
        ctx.set(bus.addr, w[-2])
        ctx.set(bus.data, w[-1])
        ctx.set(bus.en, 1)
        await ctx.tick()
    ctx.set(bus.en, 0)


def w2_rows(cfg: ClassifierConfig, W2q: np.ndarray) -> list[list[int]]:
    """``rows[r]``: the ``G`` memory words of row ``r`` of ``W2`` (padding lanes 0)."""
    W2q = np.asarray(W2q)
    if W2q.shape != (cfg.features, cfg.hidden):
        raise ValueError(f"W2q has shape {W2q.shape}, the classifier needs {(cfg.features, cfg.hidden)}")
    return w2_row_words(W2q, cfg.lanes, cfg.hidden_weight_bits)


def load_words(cfg: ClassifierConfig, W2q: np.ndarray, b2q: np.ndarray, W3q: np.ndarray,
               b3q: np.ndarray) -> list[tuple[LoadTarget, int, int]]:
    """``(target, addr, data)`` writes of the ``load`` bus that hold the classifier's
    parameters (``W2`` only when it is on chip; otherwise see :func:`w2_rows`); built by
    :func:`spykehw.rtl.packing.classifier_load_words`, shared with the weight export."""
    if cfg.w2_on_chip:
        w2_rows(cfg, W2q)       # shape check
    bits = {"W2": cfg.hidden_weight_bits, "b2": cfg.hidden_bias_bits, "W3": cfg.output_weight_bits,
            "b3": cfg.output_bias_bits}
    return [(LoadTarget[name], addr, word) for name, addr, word in
            classifier_load_words(W2q, b2q, W3q, b3q, lanes=cfg.lanes, bits=bits,
                                  w2_on_chip=cfg.w2_on_chip)]


def feature_tokens(images: Sequence[Sequence[int]]) -> list[dict[str, int]]:
    """The ``i_features`` transfers of a batch: each image's indices, then its marker."""
    out: list[dict[str, int]] = []
    for idx in images:
        out += [{"index": int(i), "last": 0} for i in idx]
        out.append({"index": 0, "last": 1})
    return out


# ----- decoding and checking ------------------------------------------------------------------

@dataclass
class ClassifierOutputs:
    """What the classifier produced for a batch of ``N`` images."""

    hidden: np.ndarray          # (N, H) uint8
    logits: np.ndarray          # (N, C) int64
    classes: np.ndarray         # (N,) int64
    words: np.ndarray           # (N, C) int64
    problems: list[tuple[int, str]] = field(default_factory=list)    # (image, message)


def split_outputs(cfg: ClassifierConfig, n_images: int, hidden: Sequence[Mapping[str, int]],
                  logits: Sequence[Mapping[str, int]], outputs: Sequence[Mapping[str, int]]
                  ) -> ClassifierOutputs:
    """Per-image arrays from the decoded transfers of the three output streams.

    ``hidden``: ``{bits, last}`` (``G`` per image); ``logits``: ``{logit, last}`` (``C`` per
    image); ``outputs``: ``{word, argmax, last}`` (``C`` per image). Missing transfers leave
    ``-1`` and are reported as problems, like misplaced ``last`` flags.
    """
    G, H, C, L = cfg.groups, cfg.hidden, cfg.classes, cfg.lanes
    res = ClassifierOutputs(np.full((n_images, H), 255, np.uint8), np.full((n_images, C), -1, np.int64),
                            np.full(n_images, -1, np.int64), np.full((n_images, C), -1, np.int64))

    def per_image(stream: str, items: Sequence[Mapping[str, int]], per: int):
        if len(items) != n_images * per:
            res.problems.append((min(len(items) // per, n_images - 1) if n_images else 0,
                                 f"{stream}: {len(items)} transfers, expected {n_images} x {per}"))
        for k, item in enumerate(items[:n_images * per]):
            i, j = divmod(k, per)
            if int(item["last"]) != int(j == per - 1):
                res.problems.append((i, f"{stream}[{j}]: last = {item['last']}"))
            yield i, j, item

    for i, g, item in per_image("hidden", hidden, G):
        bits = [(int(item["bits"]) >> lane) & 1 for lane in range(L)]
        lo = g * L
        n = min(L, H - lo)
        res.hidden[i, lo:lo + n] = bits[:n]
        if any(bits[n:]):
            res.problems.append((i, f"hidden[{g}]: padding lanes {n}..{L - 1} are not 0"))
    for i, c, item in per_image("logits", logits, C):
        res.logits[i, c] = int(item["logit"])
    for i, c, item in per_image("output", outputs, C):
        res.words[i, c] = int(item["word"])
        if c == 0:
            res.classes[i] = int(item["argmax"])
        elif int(item["argmax"]) != res.classes[i]:
            res.problems.append((i, f"output[{c}]: argmax {item['argmax']} differs from "
                                    f"output[0]'s {res.classes[i]}"))
    return res


@dataclass(frozen=True)
class ClassifierMismatch:
    """One difference: ``field`` is hidden, logits, classes, words or protocol."""

    image: int
    field: str
    index: int | None
    expected: Any
    found: Any

    def message(self, vector: str, label: str = "") -> str:
        item = f"image {self.image}" + (f" ({label})" if label else "")
        where = f"{self.field}[{self.index}]" if self.index is not None else self.field
        return f"vector {vector} {item} field {where}: expected {self.expected}, found {self.found}"


def compare_outputs(got: ClassifierOutputs, *, hidden: np.ndarray | None, logits: np.ndarray,
                    classes: np.ndarray, words: np.ndarray) -> list[ClassifierMismatch]:
    """Every difference from the expectation, image by image (hidden bits, logits, class,
    words, in that order); ``hidden=None`` skips the hidden bits."""
    out: list[ClassifierMismatch] = []
    probs: dict[int, list[str]] = {}
    for i, msg in got.problems:
        probs.setdefault(i, []).append(msg)
    for i in range(len(classes)):
        out += [ClassifierMismatch(i, "protocol", None, "well-formed streams", m) for m in probs.get(i, [])]
        if hidden is not None:
            for h in np.flatnonzero(got.hidden[i] != hidden[i]):
                out.append(ClassifierMismatch(i, "hidden", int(h), int(hidden[i, h]), int(got.hidden[i, h])))
        for name, want, have in (("logits", logits, got.logits), ("words", words, got.words)):
            for c in np.flatnonzero(have[i] != want[i]):
                out.append(ClassifierMismatch(i, name, int(c), int(want[i, c]), int(have[i, c])))
        if got.classes[i] != classes[i]:
            out.append(ClassifierMismatch(i, "classes", None, int(classes[i]), int(got.classes[i])))
    order = {"protocol": 0, "hidden": 1, "logits": 2, "classes": 3, "words": 4}
    out.sort(key=lambda m: (m.image, order[m.field], -1 if m.index is None else m.index))
    return out
