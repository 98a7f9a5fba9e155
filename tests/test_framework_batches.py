"""The shared batch planner (hand-made cases)."""

import pytest
from spykehw.sim.framework.batches import BatchError, plan_batches


def test_batches_fill_every_memory_in_order():
    needs = [(3, 1), (3, 1), (3, 1), (1, 5), (1, 1)]
    # capacities 7 and 6: [0, 1] (6 + 3 > 7), [2, 3] (1 + 5 = 6), [4]
    assert plan_batches(needs, (7, 6)) == [[0, 1], [2, 3], [4]]


def test_groups_and_the_image_limit_start_new_batches():
    assert plan_batches([(1,)] * 5, (100,), groups=[0, 0, 1, 1, 1]) == [[0, 1], [2, 3, 4]]
    assert plan_batches([(1,)] * 5, (100,), max_images=2) == [[0, 1], [2, 3], [4]]


def test_an_image_too_big_is_named():
    with pytest.raises(BatchError, match="image 1 needs 9 words of spikes, the harness holds 8"):
        plan_batches([(1, 1), (1, 9)], (8, 8), names=("events", "spikes"))
