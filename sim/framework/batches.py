"""Batch planning for the free-running harnesses: consecutive images, as many as surely fit.

A harness holds a batch of images in its memories (input tokens, captured outputs); the
testbench fills them, starts the batch, and reads back. Each image needs some words of each
memory (the worst case for outputs, so a wrong design cannot overflow them unnoticed); a batch
takes images in order while every memory has room, never mixes groups (for example weight sets,
which are loaded between batches) and never holds more than :data:`MAX_BATCH_IMAGES` (the
harnesses count a batch's images in 16 bits).
"""

from __future__ import annotations

from typing import Hashable, Sequence

__all__ = ["MAX_BATCH_IMAGES", "BatchError", "plan_batches"]

MAX_BATCH_IMAGES = 0xFFFF


class BatchError(ValueError):
    """An image that does not fit an empty harness."""


def plan_batches(needs: Sequence[Sequence[int]], capacities: Sequence[int], *,
                 groups: Sequence[Hashable] | None = None, names: Sequence[str] | None = None,
                 max_images: int = MAX_BATCH_IMAGES) -> list[list[int]]:
    """Split images ``0 .. len(needs)-1`` into consecutive batches.

    ``needs[i][k]`` words of memory ``k`` (capacity ``capacities[k]``) for image ``i``;
    ``groups[i]``: images of different groups never share a batch. Raises :class:`BatchError`
    naming the image and the memory when an image alone does not fit.
    """
    names = names or [f"memory {k}" for k in range(len(capacities))]
    batches: list[list[int]] = []
    cur: list[int] = []
    used = [0] * len(capacities)
    for i, need in enumerate(needs):
        for k, (n, cap) in enumerate(zip(need, capacities)):
            if n > cap:
                raise BatchError(f"image {i} needs {n} words of {names[k]}, the harness holds {cap}")
        if cur and (len(cur) >= max_images or (groups is not None and groups[i] != groups[cur[0]])
                    or any(u + n > c for u, n, c in zip(used, need, capacities))):
            batches.append(cur)
            cur, used = [], [0] * len(capacities)
        cur.append(i)
        used = [u + n for u, n in zip(used, need)]
    if cur:
        batches.append(cur)
    return batches
