"""Softmax test vectors from the golden ``softmax_int``: random images plus adversarial cases.

The committed sets ``vectors/softmax/<preset>.npz`` are made by :func:`write_committed` with
:data:`COMMITTED_SEED`; a test regenerates them and checks they still equal the files, so a change
to the golden model or to this generator cannot leave them silently stale. Regenerate with::

    .venv/bin/python -m spykehw.sim.softmax.vector_gen
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...golden.formats import NumberFormats, preset
from ...golden.softmax_int import softmax_int
from ..framework.vectors import VECTORS_DIR, VectorSet, read_vectors, write_vectors

__all__ = [
    "COMMITTED_SEED",
    "COMMITTED_CLASSES",
    "COMMITTED_LOGIT_BITS",
    "COMMITTED_RANDOM_IMAGES",
    "PRESET_NAMES",
    "committed_path",
    "adversarial_cases",
    "random_logits",
    "make_softmax_vectors",
    "write_vector_set",
    "write_committed",
]

COMMITTED_SEED = 20240601
COMMITTED_CLASSES = 47          # EMNIST balanced/bymerge: the largest class count
COMMITTED_LOGIT_BITS = 16
COMMITTED_RANDOM_IMAGES = 64
PRESET_NAMES = ("paper-float-equivalent", "fpga-16", "fpga-8", "edge-4")



def committed_path(preset_name: str) -> Path:
    return VECTORS_DIR / "softmax" / f"{preset_name}.npz"


def adversarial_cases(classes: int, logit_bits: int, lut_entries: int) -> list[tuple[str, np.ndarray]]:
    """Named hand-made logit rows that stress the edges of the definition.

    Ties (lowest index must win), the saturated word (one class holds all the mass), distances
    exactly at and around the end of the exp table, and the extremes of the logit range.
    """
    C, E = classes, lut_entries
    lo, hi = -(1 << (logit_bits - 1)), (1 << (logit_bits - 1)) - 1

    def row(fill: int) -> np.ndarray:
        return np.full(C, fill, dtype=np.int64)

    cases: list[tuple[str, np.ndarray]] = []
    cases.append(("all_equal_zero", row(0)))
    cases.append(("all_equal_min", row(lo)))
    cases.append(("all_equal_max", row(hi)))
    z = row(lo); z[C // 2] = hi
    cases.append(("one_huge_middle", z))                  # d = 2**L - 1 for every other class
    z = row(lo); z[C - 1] = hi
    cases.append(("one_huge_last", z))
    z = row(0); z[0] = 1
    cases.append(("one_above_rest", z))
    z = np.clip(hi - np.arange(C, dtype=np.int64) * E, lo, hi)
    cases.append(("far_apart_descending", z))             # every gap is a whole table length
    z = np.clip(lo + np.arange(C, dtype=np.int64) * (E + 1), lo, hi)
    cases.append(("far_apart_ascending", z))
    z = row(lo); z[1] = 0
    for k, dd in enumerate((E - 2, E - 1, E, E + 1)):
        if 2 + k < C:
            z[2 + k] = max(lo, -dd)
    cases.append(("lut_edge", z))                         # d = E-2, E-1 (last entry), E, E+1 (zero)
    z = row(-5); z[0] = z[C - 1] = 7
    cases.append(("tie_first_last", z))
    z = row(-5); z[3 % C] = z[C // 2] = z[C - 2] = 9
    cases.append(("tie_three", z))
    z = row(lo); z[1] = z[C - 1] = hi
    cases.append(("tie_two_extreme", z))                  # two equal halves: 2**(P-1) each
    z = np.arange(C, dtype=np.int64)
    cases.append(("ramp_ascending", np.clip(z, lo, hi)))
    cases.append(("ramp_descending", np.clip(-z, lo, hi)))
    z = np.where(np.arange(C) % 2 == 0, hi, lo).astype(np.int64)
    cases.append(("alternate_extremes", z))
    z = row(hi); z[0] = hi - 1
    cases.append(("max_minus_one_first", z))
    return cases


def random_logits(rng: np.random.Generator, n: int, classes: int, logit_bits: int) -> np.ndarray:
    """``(n, classes)`` logits whose spread varies per image (2 .. 2**logit_bits wide), so that
    the distances to the maximum fall inside, across and beyond the exp table."""
    lo, hi = -(1 << (logit_bits - 1)), (1 << (logit_bits - 1)) - 1
    out = np.empty((n, classes), dtype=np.int64)
    for i in range(n):
        spread = 1 << int(rng.integers(1, logit_bits + 1))
        centre = int(rng.integers(lo, hi + 1))
        out[i] = np.clip(centre + rng.integers(-spread // 2, spread // 2 + 1, size=classes), lo, hi)
    return out


def make_softmax_vectors(formats: NumberFormats, seed: int, *, classes: int = COMMITTED_CLASSES,
                         logit_bits: int = COMMITTED_LOGIT_BITS,
                         random_images: int = COMMITTED_RANDOM_IMAGES) -> VectorSet:
    """Random images first, then :func:`adversarial_cases`; expectations from ``softmax_int``."""
    rng = np.random.default_rng(seed)
    cases = adversarial_cases(classes, logit_bits, formats.softmax.exp_lut_entries)
    logits = np.concatenate([random_logits(rng, random_images, classes, logit_bits),
                             np.stack([z for _, z in cases])])
    cls, words = softmax_int(logits, formats.softmax)
    return VectorSet(
        kind="softmax",
        formats=formats,
        options={"classes": classes, "logit_bits": logit_bits, "random_images": random_images,
                 "cases": [name for name, _ in cases]},
        seed=seed,
        description=(f"{random_images} random images then {len(cases)} adversarial cases "
                     f"(options.cases, in order) of {classes} classes, {logit_bits}-bit logits, "
                     f"preset {formats.name}; expected values from golden softmax_int"),
        arrays={"logits": logits, "classes": np.asarray(cls, dtype=np.int64),
                "words": np.asarray(words, dtype=np.int64)},
    )


def write_vector_set(path: str | Path, vs: VectorSet) -> Path:
    return write_vectors(path, vs.kind, vs.arrays, formats=vs.formats, options=vs.options,
                         seed=vs.seed, description=vs.description,
                         created_by="spykehw.sim.softmax.vector_gen")


def write_committed(preset_name: str, folder: Path | None = None) -> Path:
    """(Re)write the committed set of one preset (into ``folder`` instead, for tests)."""
    vs = make_softmax_vectors(preset(preset_name), COMMITTED_SEED)
    path = committed_path(preset_name) if folder is None else Path(folder) / f"{preset_name}.npz"
    return write_vector_set(path, vs)


def _main() -> None:
    for name in PRESET_NAMES:
        path = write_committed(name)
        vs = read_vectors(path, kind="softmax")
        print(f"{path}: {vs['logits'].shape[0]} images x {vs['logits'].shape[1]} classes")


if __name__ == "__main__":
    _main()
