"""The words of the blocks' weight memories, built from integer arrays and decoded back.

Why a module of its own, with numpy only (no Amaranth): these words are the contract of the
blocks' buses, and three users build them: the co-simulation harnesses (:mod:`spykehw.sim`), the
weight export (:mod:`spykehw.export`, which must work where no simulator or Amaranth is
installed), and the accelerator top that loads the export. One implementation keeps them equal.

The packing rule (every memory)
-------------------------------
A word holds ``lanes`` values of ``bits`` bits each: lane ``k`` in bits ``k*bits ..
k*bits+bits-1`` (lane 0 in the least significant bits); signed values in two's complement.
Unused (padding) lanes are 0. Arrays of words are ``(words, lanes)`` integer arrays ("lane
rows"); :func:`pack_rows` turns them into little-endian bytes, ``word_bytes(lanes*bits)`` bytes
per word, and :func:`unpack_rows` back.

The memories
------------
Conv core weight bus (:mod:`spykehw.rtl.conv_core`, "Weight bus"), ``L`` lanes, ``G = M/L``
groups: word ``index*G + g`` holds ``W[g*L + l, c, kr, kc]`` in lane ``l``, ``index = c*K*K +
kr*K + kc`` (:func:`conv_weight_rows`).

Classifier (:mod:`spykehw.rtl.classifier`, "Weights"), ``L`` lanes, ``G = ceil(H/L)``:
``W2`` word ``r*G + g`` holds ``W2[r, g*L + l]`` in lane ``l`` (what the memory port returns for
row ``r``, and the ``W2`` load target's words); ``b2`` word ``g`` holds ``b2[g*L + l]``; ``W3``
word ``h`` holds ``W3[h, 0..C-1]``; ``b3`` is one word of ``b3[0..C-1]``. The load bus selects
them by :data:`LOAD_TARGETS` (index = ``sel`` code; :class:`spykehw.rtl.classifier.LoadTarget`
is the hardware's definition, and a test keeps the two equal).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from ..golden.errors import SpykehwError

__all__ = [
    "PackingError",
    "LOAD_TARGETS",
    "word_bytes",
    "pack_rows",
    "unpack_rows",
    "rows_to_ints",
    "pack_lanes",
    "unpack_lanes",
    "conv_weight_rows",
    "conv_weights_from_rows",
    "conv_weight_words",
    "hidden_rows",
    "from_hidden_rows",
    "w2_row_words",
    "w2_row_stride",
    "classifier_load_words",
]

LOAD_TARGETS = ("W2", "B2", "W3", "B3")
"""The classifier load bus's ``sel`` codes: ``LOAD_TARGETS[code]`` is the target's name."""


class PackingError(SpykehwError, ValueError):
    """A value that does not fit its lane, or an array of the wrong shape (names which)."""


def word_bytes(width: int) -> int:
    """Bytes of one word of ``width`` bits in a binary image: ``ceil(width / 8)``."""
    return -(-width // 8)


def _chunk(lanes: int) -> int:
    """Words per step of the bit-level packing: about 16 MB of bit arrays, whatever the size."""
    return max(1, (1 << 24) // (64 * lanes))


def _check_bits(bits: int) -> None:
    if not 1 <= bits <= 64:
        raise PackingError(f"bits: lanes of 1..64 bits are supported, not {bits}")


def pack_rows(values: np.ndarray | Sequence[Sequence[int]], bits: int, *,
              signed: bool | None = None) -> np.ndarray:
    """``(N, lanes)`` integers -> ``(N, word_bytes(lanes*bits))`` uint8, little-endian words.

    ``signed``: True accepts ``-2**(bits-1) .. 2**(bits-1)-1``, False ``0 .. 2**bits-1``, None
    either (the union: a lane is just ``bits`` bits). A value out of range names its word and
    lane.
    """
    _check_bits(bits)
    v = np.asarray(values, dtype=np.int64)
    if v.ndim != 2:
        raise PackingError(f"values: expected (words, lanes), found shape {v.shape}")
    n, lanes = v.shape
    lo = -(1 << (bits - 1)) if signed in (True, None) else 0
    hi = (1 << bits) - 1 if signed in (False, None) else (1 << (bits - 1)) - 1
    bad = np.argwhere((v < lo) | (v > hi)) if v.size and bits < 64 else np.zeros((0, 2), np.int64)
    if len(bad):
        i, k = (int(x) for x in bad[0])
        raise PackingError(f"word {i}, lane {k}: {int(v[i, k])} does not fit {bits} bits"
                           f"{'' if signed is None else (' signed' if signed else ' unsigned')}")
    nbytes = word_bytes(lanes * bits)
    out = np.empty((n, nbytes), np.uint8)
    step = _chunk(lanes)
    for a in range(0, n, step):
        chunk = v[a:a + step]
        # Each lane's low `bits` bits, least significant first, laid end to end: the word's bits.
        lane_bits = np.unpackbits(chunk.astype(np.uint64).view(np.uint8).reshape(len(chunk), lanes, 8),
                                  axis=2, bitorder="little")[:, :, :bits].reshape(len(chunk), lanes * bits)
        padded = np.zeros((len(chunk), nbytes * 8), np.uint8)
        padded[:, :lanes * bits] = lane_bits
        out[a:a + step] = np.packbits(padded, axis=1, bitorder="little")
    return out


def unpack_rows(data: np.ndarray, lanes: int, bits: int, *, signed: bool) -> np.ndarray:
    """The inverse of :func:`pack_rows`: ``(N, nbytes)`` uint8 -> ``(N, lanes)`` int64.

    Bits above ``lanes*bits`` in the last byte must be 0 (a stray bit is refused)."""
    _check_bits(bits)
    data = np.asarray(data, dtype=np.uint8)
    n = data.shape[0]
    if data.ndim != 2 or data.shape[1] != word_bytes(lanes * bits):
        raise PackingError(f"data: expected ({n}, {word_bytes(lanes * bits)}) bytes, found {data.shape}")
    out = np.empty((n, lanes), np.int64)
    step = _chunk(lanes)
    for a in range(0, n, step):
        allbits = np.unpackbits(data[a:a + step], axis=1, bitorder="little")
        m = len(allbits)
        if allbits[:, lanes * bits:].any():
            i = a + int(np.argwhere(allbits[:, lanes * bits:].any(axis=1))[0, 0])
            raise PackingError(f"word {i}: bits above the {lanes * bits}-bit word are set")
        lane_bits = np.zeros((m, lanes, 64), np.uint8)
        lane_bits[:, :, :bits] = allbits[:, :lanes * bits].reshape(m, lanes, bits)
        if signed and bits < 64:
            lane_bits[:, :, bits:] = lane_bits[:, :, bits - 1:bits]     # sign extension
        words = np.packbits(lane_bits, axis=2, bitorder="little").reshape(m, lanes * 8)
        out[a:a + step] = words.view(np.int64 if signed else np.uint64).reshape(m, lanes).astype(np.int64)
    return out


def rows_to_ints(data: np.ndarray) -> list[int]:
    """Packed words (:func:`pack_rows`) as Python ints (what a bus write carries)."""
    return [int.from_bytes(row.tobytes(), "little") for row in np.asarray(data, np.uint8)]


def pack_lanes(values: Iterable[int], bits: int) -> int:
    """One word: lane ``k`` holds ``values[k]`` in ``bits`` bits (two's complement if negative)."""
    vals = [int(x) for x in values]
    if not vals:
        return 0
    return rows_to_ints(pack_rows([vals], bits))[0]


def unpack_lanes(word: int, lanes: int, bits: int, *, signed: bool = True) -> list[int]:
    """The ``lanes`` values of one word."""
    data = np.frombuffer(int(word).to_bytes(word_bytes(lanes * bits), "little"), np.uint8)
    return [int(x) for x in unpack_rows(data[None, :], lanes, bits, signed=signed)[0]]


# ----- the conv core's weight bus ----------------------------------------------------------------

def conv_weight_rows(weights: np.ndarray, lanes: int) -> np.ndarray:
    """``(M, C, K, K)`` -> ``(C*K*K*G, L)`` lane rows of the weight bus (word ``index*G + g``,
    lane ``l`` = map ``g*L + l``)."""
    w = np.asarray(weights)
    if w.ndim != 4:
        raise PackingError(f"conv weights: expected (M, C, K, K), found shape {w.shape}")
    M = w.shape[0]
    if lanes < 1 or M % lanes:
        raise PackingError(f"conv lanes: must divide the {M} maps, not {lanes}")
    G = M // lanes
    flat = w.reshape(G, lanes, -1).astype(np.int64)    # [g, l, index]
    return np.ascontiguousarray(flat.transpose(2, 0, 1).reshape(-1, lanes))


def conv_weights_from_rows(rows: np.ndarray, shape: tuple[int, int, int, int]) -> np.ndarray:
    """The inverse of :func:`conv_weight_rows`: lane rows -> ``(M, C, K, K)`` int64."""
    M, C, K, _ = shape
    rows = np.asarray(rows, np.int64)
    lanes = rows.shape[1]
    G = M // lanes
    if rows.shape != (C * K * K * G, lanes) or M % lanes:
        raise PackingError(f"conv weights: {rows.shape} lane rows do not make {shape} with {lanes} lanes")
    return np.ascontiguousarray(rows.reshape(C * K * K, G, lanes).transpose(1, 2, 0).reshape(shape))


def conv_weight_words(weights: np.ndarray, lanes: int, bits: int) -> list[int]:
    """The weight bus words (Python ints) by address, from ``(M, C, K, K)`` unsigned weights."""
    return rows_to_ints(pack_rows(conv_weight_rows(weights, lanes), bits, signed=False))


# ----- the classifier --------------------------------------------------------------------------

def hidden_rows(a: np.ndarray, lanes: int) -> np.ndarray:
    """``(..., H)`` -> lane rows ``(prod(...) * G, L)``: ``H`` padded with zeros to ``G*L`` and
    cut into words of ``L`` (``W2``: word ``r*G + g``; ``b2``: word ``g``)."""
    a = np.asarray(a, np.int64)
    H = a.shape[-1]
    if not 1 <= lanes <= H:
        raise PackingError(f"classifier lanes: must be in 1..{H} (the hidden units), not {lanes}")
    G = -(-H // lanes)
    flat = a.reshape(-1, H)
    out = np.zeros((flat.shape[0], G * lanes), np.int64)
    out[:, :H] = flat
    return out.reshape(-1, lanes)


def from_hidden_rows(rows: np.ndarray, hidden: int, what: str) -> np.ndarray:
    """The inverse of :func:`hidden_rows`: ``(R*G, L)`` -> ``(R, H)``; padding lanes must be 0."""
    rows = np.asarray(rows, np.int64)
    lanes = rows.shape[1]
    G = -(-hidden // lanes)
    if rows.shape[0] % G:
        raise PackingError(f"{what}: {rows.shape[0]} words are not whole rows of {G} words")
    full = rows.reshape(-1, G * lanes)
    if full[:, hidden:].any():
        r = int(np.argwhere(full[:, hidden:].any(axis=1))[0, 0])
        raise PackingError(f"{what}: row {r} has a nonzero padding lane (lanes >= {hidden} must be 0)")
    return np.ascontiguousarray(full[:, :hidden])


def w2_row_words(W2q: np.ndarray, lanes: int, bits: int) -> list[list[int]]:
    """``rows[r]``: the ``G`` memory words of row ``r`` of ``W2`` (padding lanes 0)."""
    W2q = np.asarray(W2q)
    G = -(-W2q.shape[1] // lanes)
    words = rows_to_ints(pack_rows(hidden_rows(W2q, lanes), bits, signed=True))
    return [words[r * G:(r + 1) * G] for r in range(W2q.shape[0])]


def w2_row_stride(words_per_row: int, word_bits: int) -> int:
    """Bytes between ``W2`` rows in an external memory: a row's bytes rounded up to a power of
    two, so that a row is one aligned AXI4 burst (:mod:`spykehw.rtl.w2_axi` reads rows there, the
    export lays ``weights.bin`` out the same way)."""
    row = words_per_row * word_bytes(word_bits)
    return 1 << max(0, (row - 1).bit_length())


def classifier_load_words(W2q: np.ndarray, b2q: np.ndarray, W3q: np.ndarray, b3q: np.ndarray, *,
                          lanes: int, bits: dict[str, int], w2_on_chip: bool) -> list[tuple[str, int, int]]:
    """``(target name, addr, word)`` load-bus writes of ``b2``, ``W3``, ``b3`` and, on chip,
    ``W2``, in that order; ``bits`` maps ``W2``, ``b2``, ``W3``, ``b3`` to their lane widths."""
    out: list[tuple[str, int, int]] = []
    out += [("B2", g, w) for g, w in enumerate(rows_to_ints(
        pack_rows(hidden_rows(b2q, lanes), bits["b2"], signed=True)))]
    out += [("W3", h, w) for h, w in enumerate(rows_to_ints(
        pack_rows(np.asarray(W3q, np.int64), bits["W3"], signed=True)))]
    out.append(("B3", 0, rows_to_ints(pack_rows(np.asarray(b3q, np.int64)[None, :], bits["b3"],
                                                signed=True))[0]))
    if w2_on_chip:
        flat = [w for row in w2_row_words(W2q, lanes, bits["W2"]) for w in row]
        out += [("W2", a, w) for a, w in enumerate(flat)]
    return out
