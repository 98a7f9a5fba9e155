"""On-chip memory estimate of the classifier (spykehw.fpga.onchip), against hand-computed cases."""

from __future__ import annotations

import pytest
from spykehw.golden.formats import preset

from spykehw.fpga.devices import DEVICES
from spykehw.fpga.onchip import (
    bram_blocks,
    choose_design_point,
    classifier_bram,
    classifier_memories,
    placement,
)

ECP5 = DEVICES["ecp5-85k"]


def test_bram_blocks_takes_the_best_configuration():
    # 36 x 512 fits one DP16KD in the 512 x 36 configuration, but no other.
    assert bram_blocks(36, 512, ECP5) == 1
    # 128 x 14,520: 512x36 -> 4 * 29 = 116; 1024x18 -> 8 * 15 = 120; 2048x9 -> 15 * 8 = 120;
    # 4096x4 -> 32 * 4 = 128; 8192x2 -> 64 * 2 = 128; 16384x1 -> 128 * 1 = 128
    assert bram_blocks(128, 14520, ECP5) == 116
    assert bram_blocks(4, 128, ECP5) == 1
    # 1 x 20,000: 16384x1 -> 2; 8192x2 -> 3; 4096x4 -> 5 ...
    assert bram_blocks(1, 20000, ECP5) == 2
    # iCE40 SB_RAM40_4K: 16 x 300 -> 256x16: 2, 512x8: 2, 1024x4: 4, 2048x2: 8
    assert bram_blocks(16, 300, DEVICES["ice40-up5k"]) == 2
    with pytest.raises(ValueError):
        bram_blocks(0, 5, ECP5)


def test_placement_follows_yosys_costs():
    # 8 x 512: one block (cost 128) vs 2 x 32 LUT RAM cells (cost 256) -> block RAM
    assert placement(8, 512, ECP5) == ("bram", 1)
    # 4 x 512: one block (128) vs 1 x 32 cells (128): a tie stays in block RAM
    assert placement(4, 512, ECP5) == ("bram", 1)
    assert placement(4, 256, ECP5) == ("lutram", 0)
    # iCE40: no LUT RAM
    assert placement(4, 16, DEVICES["ice40-up5k"]) == ("bram", 1)


def test_classifier_of_the_accelerator_by_hand():
    """fpga-8 with 4-bit classifier weights (8-bit biases), 3630 -> 128 -> 10, 32 lanes."""
    fmt = preset("fpga-8").replace(**{
        "classifier.hidden_weight_bits": 4, "classifier.hidden_weight_frac": 3,
        "classifier.hidden_bias_bits": 8, "classifier.output_weight_bits": 4,
        "classifier.output_weight_frac": 3, "classifier.output_bias_bits": 8}).classifier
    mems = {m.name: m for m in classifier_memories(fmt, 128)}
    # W2: G = 4 words per row, 3630 * 4 = 14,520 words of 32 * 4 = 128 bits = 3630 * 128 * 4 bits
    assert (mems["W2"].width, mems["W2"].depth, mems["W2"].bits) == (128, 14520, 3630 * 128 * 4)
    assert (mems["b2"].width, mems["b2"].depth) == (256, 4)
    assert (mems["W3"].width, mems["W3"].depth, mems["W3"].copies, mems["W3"].bits) == (4, 128, 10, 5120)
    assert (mems["b3"].bits, mems["b3"].in_bram) == (80, False)
    # accumulators: 3630 * [-8, 7] + [-128, 127] = [-29168, 25537] -> 16 bits signed
    assert (mems["hidden_acc"].width, mems["hidden_acc"].weight) == (32 * 16, False)
    need = classifier_bram(fmt, 128, ECP5)
    where = {k: (v["placement"], v["blocks"]) for k, v in need["memories"].items()}
    # As block RAM: b2 256 x 4 -> ceil(256/36) = 8 (cost 8 * 128 = 1024), as LUT RAM 64 x 1
    # cells (cost 256); W3 4 x 128: 1 block (128) or 1 x 8 cells (32); acc 512 x 4: 15 blocks
    # (1920) or 128 cells (512); W2: 116 blocks (14,848) or 32 x 908 cells. Yosys mapped exactly
    # these to LUT RAM (W2 to 113 DP16KD).
    assert where == {"W2": ("bram", 116), "b2": ("lutram", 0), "W3": ("lutram", 0),
                     "b3": ("register", 0), "hidden_acc": ("lutram", 0)}
    assert need["blocks"] == 116
    assert need["weight_bits"] == 3630 * 128 * 4 + 4 * 256 + 5120 + 80
    # one group (H <= lanes): b2 and the accumulators are registers; W2 128 x 3630:
    # 512x36 -> 4 * 8 = 32, 1024x18 -> 8 * 4 = 32, 2048x9 -> 15 * 2 = 30, 4096x4 -> 32 * 1 = 32
    small = {k: v["blocks"] for k, v in classifier_bram(fmt, 32, ECP5)["memories"].items()}
    assert small["b2"] == small["hidden_acc"] == 0 and small["W2"] == 30


def test_choose_design_point():
    pts = [{"name": "a", "acc_pct": 97.9, "blocks_total": 190, "fits": True},
           {"name": "b", "acc_pct": 97.6, "blocks_total": 150, "fits": True},
           {"name": "c", "acc_pct": 97.7, "blocks_total": 150, "fits": True},
           {"name": "d", "acc_pct": 98.2, "blocks_total": 120, "fits": False},
           {"name": "e", "acc_pct": 96.0, "blocks_total": 100, "fits": True}]
    best, why = choose_design_point(pts, 97.5)
    assert best["name"] == "c" and "fewest blocks" in why
    best, why = choose_design_point(pts, 98.0)
    assert best["name"] == "a" and "misses it by 0.10 points" in why
    assert choose_design_point(pts[3:4], 97.5) == (None, "no point fits")


def test_choose_design_point_with_margin_and_post_training_only():
    """The README's rule: post-training points only, 97.5% plus one standard error (0.15)."""
    pts = [{"name": "qat2", "acc_pct": 97.72, "blocks_total": 93, "fits": True, "qat_epochs": 30},
           {"name": "ptq3", "acc_pct": 97.61, "blocks_total": 116, "fits": True, "qat_epochs": 0},
           {"name": "ptq4", "acc_pct": 97.86, "blocks_total": 146, "fits": True, "qat_epochs": 0}]
    assert choose_design_point(pts, 97.5)[0]["name"] == "qat2"
    assert choose_design_point(pts, 97.5, post_training_only=True)[0]["name"] == "ptq3"
    best, why = choose_design_point(pts, 97.5, margin_pct=0.15, post_training_only=True)
    assert best["name"] == "ptq4" and "post-training" in why and "0.15 points of margin" in why


def test_the_shipped_design_point_is_the_chosen_one():
    """configs/mnist-onchip.toml holds the classifier formats of the point the report chose."""
    import json
    from pathlib import Path

    from spykehw.golden.formats import load_formats

    root = Path(__file__).parents[1]
    report = json.loads((root / "reports" / "design_points_mnist.json").read_text())
    fmt = load_formats(root / "configs" / "mnist-onchip.toml")
    chosen = report["chosen"]
    assert chosen["hidden"] == 128 and chosen["qat_epochs"] == 0
    assert {k: getattr(fmt.classifier, k) for k in chosen["formats"]} == chosen["formats"]
    assert choose_design_point(report["points"], report["target_acc_pct"], margin_pct=report["margin_pct"],
                               post_training_only=True)[0] == chosen
