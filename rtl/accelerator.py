"""The accelerator top: spike events in over AXI4-Stream, class + softmax out, AXI4-Lite control.

Why one top: a board needs one design with standard buses; the blocks' own streams and load
buses are internal. Everything is fixed by one :class:`~spykehw.golden.design_point.DesignPoint`
(its :attr:`~DesignPoint.id32` is the ``POINT_ID`` register, so a host can check that the weights
it loads belong to the bitstream).

::

    s_axis --> EventChecker --> ConvCore --> FIFO --> Classifier --> ResultFormatter --> m_axis
                    |  flags per image ---------> FIFO ------------------^
    s_axil <-> RegisterFile: control, status, counters, sticky errors, ID, weight window
                    \\--> conv weight bus, classifier load bus
    m_axi  <-- W2AxiReader <-- classifier W2 row port        (external variant only)

Two variants from the point's ``weights``: ``on-chip`` (every memory in block RAM, written over
the weight window) and ``external`` (``W2`` read over an AXI4 master, one INCR burst per active
feature row, several bursts outstanding: :mod:`spykehw.rtl.w2_axi`; everything else on chip).

The conv core and the classifier work on consecutive images at once (the classifier's three
stages too), so the rate is the slower block's.

Ports (lower case, one underscore: ``AxiStreamBus.from_prefix(dut, "s_axis")`` finds them)
------------------------------------------------------------------------------------------------
``clk``, ``rst``
    The clock and an active-high synchronous reset (``CONTROL.SOFT_RESET`` resets the datapath
    without touching the bus logic or the weights).
``s_axis_tdata/tvalid/tready/tlast`` (events)
    ``tdata`` is :func:`~spykehw.rtl.event_checker.token_beat_bits` wide (16 for Conv1) and holds
    one conv-core token in its low bits (:func:`~spykehw.rtl.layouts.token_layout`, first field
    least significant: ``c``, ``y``, ``x``, ``step_end``; for Conv1 ``c`` bit 0, ``y`` bits 1-5,
    ``x`` bits 6-10, ``step_end`` bit 11). A frame is one image: per step its input spikes in
    any order, then an end-of-step marker; ``tlast`` on the ``T``-th marker. Malformed frames
    are repaired and flagged (:mod:`spykehw.rtl.event_checker`).
``m_axis_tdata/tvalid/tready/tlast`` (results)
    32-bit beats, one frame of ``C + 1`` beats per image (:mod:`spykehw.rtl.result_stream`).
``s_axil_*`` (control)
    32-bit AXI4-Lite, 12-bit byte addresses; the map is :data:`spykehw.rtl.accel_regs.REGISTERS`.
``m_axi_ar*``, ``m_axi_r*`` (external variant)
    AXI4 read master, 32-bit addresses, data one ``W2`` row word wide, ID 0; ``W2`` row ``r`` at
    ``W2_BASE + r * W2_STRIDE``. A read error response sets ``AXI_READ``, and every result from
    then on carries it (class ``0xFFFF``) until ``ERRORS`` is cleared.

Weight window targets (``WSEL``): 0 conv weights (the core's weight-bus words: ``L`` lanes of
``B`` bits), 1 ``W2`` (on-chip variant only), 2 ``b2``, 3 ``W3``, 4 ``b3`` (the classifier's
load words).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from amaranth import Module, Mux, Signal
from amaranth.hdl import ResetInserter
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from ..golden.design_point import DesignPoint
from ..golden.errors import SpykehwError
from .accel_regs import RegisterFile, WeightTarget, register_map
from .axi import (
    AxiLiteSignature,
    AxiReadMasterSignature,
    AxiStreamSignature,
    connect_flat,
    flat_members,
)
from .classifier import Classifier, LoadTarget
from .conv_core import ConvCore
from .design import classifier_config, conv_core_config
from .event_checker import ERROR_BITS, ErrorFlag, EventChecker, token_beat_bits
from .layouts import feature_layout, layout_fields, token_layout
from .packing import w2_row_stride
from .result_stream import RESULT_BEAT_BITS, ResultFormatter
from .verilog import generate
from .w2_axi import ADDR_BITS as AXI_ADDR_BITS
from .w2_axi import W2AxiReader, check_row_layout

__all__ = ["AcceleratorError", "Accelerator", "TARGET_CODES", "weight_targets", "id_constants",
           "generate_accelerator"]


class AcceleratorError(SpykehwError, ValueError):
    """A design point the accelerator cannot be built for (names the field)."""


TARGET_CODES = {"conv": 0, "W2": 1, "b2": 2, "W3": 3, "b3": 4}
_LOAD_TARGETS = {"W2": LoadTarget.W2, "b2": LoadTarget.B2, "W3": LoadTarget.W3, "b3": LoadTarget.B3}


def weight_targets(point: DesignPoint) -> tuple[WeightTarget, ...]:
    """The memories behind the weight window (``W2`` only when it is on chip)."""
    conv, clf = conv_core_config(point), classifier_config(point)
    out = [WeightTarget("conv", TARGET_CODES["conv"], conv.weight_words, conv.parallelism * conv.weight_bits)]
    for name, target in _LOAD_TARGETS.items():
        if target in clf.load_targets():
            out.append(WeightTarget(name, TARGET_CODES[name], clf.load_depth(target), clf.load_word_bits(target)))
    return tuple(out)


def id_constants(point: DesignPoint) -> dict[str, int]:
    """The read-only identification registers of ``point``."""
    conv, f = point.conv, point.formats
    return {
        "POINT_ID": point.id32,
        "SHAPE0": conv.in_channels | conv.in_size << 8 | conv.kernel << 16 | point.steps << 24,
        "SHAPE1": conv.maps | point.hidden << 16,
        "SHAPE2": point.classes | point.features << 16,
        "FORMATS": (f.conv.weight_bits | f.classifier.hidden_weight_bits << 8
                    | f.classifier.output_weight_bits << 16 | f.softmax.softmax_bits << 24),
        "HW": point.conv_lanes | point.classifier_lanes << 12 | (point.weights == "external") << 31,
        "W2_STRIDE": w2_stride(point),
    }


def w2_stride(point: DesignPoint) -> int:
    """Bytes between W2 rows in the external memory (0 when W2 is on chip)."""
    if point.weights != "external":
        return 0
    clf = classifier_config(point)
    return w2_row_stride(clf.groups, clf.w2_word_bits)


def _check(point: DesignPoint) -> None:
    conv = point.conv
    limits = (("conv.in_channels", conv.in_channels, 255), ("conv.in_size", conv.in_size, 255),
              ("conv.kernel", conv.kernel, 255), ("steps", point.steps, 255), ("conv.maps", conv.maps, 65535),
              ("hidden", point.hidden, 65535), ("classes", point.classes, 65534),
              ("conv_lanes", point.conv_lanes, 4095), ("classifier_lanes", point.classifier_lanes, 65535),
              ("formats.softmax.softmax_bits", point.formats.softmax.softmax_bits, 16))
    for name, value, hi in limits:
        if value > hi:
            raise AcceleratorError(f"{name}: the accelerator's registers and beats hold at most {hi}, not {value}")
    if point.weights == "external":
        clf = classifier_config(point)
        try:
            check_row_layout(clf.groups, clf.w2_word_bits)
        except ValueError as e:
            raise AcceleratorError(f"weights: external W2 cannot be read over AXI4 at this point: {e}") from None


class Accelerator(wiring.Component):
    """The whole accelerator for one design point (see the module docstring).

    Parameters
    ----------
    point : DesignPoint
    weights : mapping of str to sequence of int, optional
        Initial contents of on-chip memories, per weight-window target (``conv``, ``W2`` on
        chip, ``b2``, ``W3``, ``b3``) the words by address, as a host would write them (an
        export's files: :func:`spykehw.export.host.window_words`). The bitstream then classifies
        from configuration on; the window still overwrites them.
    feature_fifo_depth : int
        Feature indices buffered between the conv core and the classifier.
    image_fifo_depth : int
        Images whose error flags wait for their result (the checker stalls when it is full).
    """

    def __init__(self, point: DesignPoint, *, weights: Mapping[str, Sequence[int]] | None = None,
                 feature_fifo_depth: int = 16, image_fifo_depth: int = 8) -> None:
        if not isinstance(point, DesignPoint):
            raise TypeError(f"point must be a DesignPoint, not {point!r}")
        _check(point)
        self._point = point
        self._init = dict(weights or {})
        unknown = set(self._init) - {t.name for t in weight_targets(point)}
        if unknown:
            raise AcceleratorError(f"weights: no on-chip memory {sorted(unknown)[0]!r} at this design point "
                                   f"(targets: {', '.join(t.name for t in weight_targets(point))})")
        self._depths = (feature_fifo_depth, image_fifo_depth)
        self._conv = conv_core_config(point)
        self._clf = classifier_config(point)
        self._targets = weight_targets(point)
        self._tok_bits = token_beat_bits(point.conv.in_channels, point.conv.in_size)
        self._buses = {
            "s_axis": In(AxiStreamSignature(self._tok_bits)),
            "m_axis": Out(AxiStreamSignature(RESULT_BEAT_BITS)),
            "s_axil": In(AxiLiteSignature(12, 32)),
        }
        if point.weights == "external":
            self._buses["m_axi"] = Out(AxiReadMasterSignature(AXI_ADDR_BITS, self._clf.w2_word_bits, 1))
        members: dict[str, Any] = {}
        for prefix, member in self._buses.items():
            members.update(flat_members(prefix, member))
        super().__init__(members)

    @property
    def point(self) -> DesignPoint:
        return self._point

    def params(self) -> dict[str, Any]:
        p = self._point
        C, S = p.conv.in_channels, p.conv.in_size
        return {
            "design_point": p.to_dict(), "point_id": p.id32, "digest": p.digest(),
            "conv_core": self._conv.to_dict(), "classifier": self._clf.to_dict(),
            "fifo_depths": {"features": self._depths[0], "images": self._depths[1]},
            "initial_weights": sorted(self._init),
            "register_map": register_map(self._targets, id_constants(p)),
            "event_beat": {"tdata_bits": self._tok_bits, "fields": layout_fields(token_layout(C, S))},
            "result_beat": {"tdata_bits": RESULT_BEAT_BITS, "beats_per_image": p.classes + 1,
                            "header": {"class": [0, 16], "flags": [16, 8], "sequence": [24, 8]},
                            "word": {"softmax_word": [0, 16], "class_index": [16, 16]}},
        }

    def elaborate(self, platform):
        m = Module()
        s_axis = connect_flat(m, self, "s_axis", self._buses["s_axis"])
        m_axis = connect_flat(m, self, "m_axis", self._buses["m_axis"])
        s_axil = connect_flat(m, self, "s_axil", self._buses["s_axil"])

        m.submodules.regs = regs = RegisterFile(self._targets, id_constants(self._point))
        wiring.connect(m, wiring.flipped(s_axil), regs.bus)
        soft = ResetInserter({"sync": regs.soft_reset})

        C, S = self._point.conv.in_channels, self._point.conv.in_size
        checker = EventChecker(C, S, self._point.steps, check_duplicates=self._conv.max_spikes_per_input == 1)
        conv = ConvCore(self._conv, weight_init=self._init.get("conv", ()), read_back=False)
        clf = Classifier(self._clf, init={_LOAD_TARGETS[name]: words for name, words in self._init.items()
                                          if name in _LOAD_TARGETS})
        fmt = ResultFormatter(self._clf.classes, self._clf.formats.softmax.softmax_bits)
        ffifo = fifo.SyncFIFOBuffered(width=feature_layout(self._clf.features).size, depth=self._depths[0])
        ififo = fifo.SyncFIFOBuffered(width=ERROR_BITS, depth=self._depths[1])
        for name, block in (("checker", checker), ("conv_core", conv), ("feature_fifo", ffifo),
                            ("classifier", clf), ("flags_fifo", ififo), ("formatter", fmt)):
            m.submodules[name] = soft(block)

        # ----- datapath ----------------------------------------------------------------------
        wiring.connect(m, wiring.flipped(s_axis), checker.s_axis)
        wiring.connect(m, checker.o_events, conv.i_events)
        m.d.comb += [
            conv.o_spikes.ready.eq(1),                     # the spike stream is a tap here
            ffifo.w_data.eq(conv.o_features.payload), ffifo.w_en.eq(conv.o_features.valid),
            conv.o_features.ready.eq(ffifo.w_rdy),
            clf.i_features.payload.eq(ffifo.r_data), clf.i_features.valid.eq(ffifo.r_rdy),
            ffifo.r_en.eq(clf.i_features.ready),
            ififo.w_data.eq(checker.o_image.payload), ififo.w_en.eq(checker.o_image.valid),
            checker.o_image.ready.eq(ififo.w_rdy),
            fmt.i_flags.payload.eq(ififo.r_data), fmt.i_flags.valid.eq(ififo.r_rdy),
            ififo.r_en.eq(fmt.i_flags.ready),
        ]
        errors = Signal(ERROR_BITS)
        m.d.comb += errors.eq(checker.errors)
        if self._point.weights == "external":
            # W2 over AXI4: after a read error every result is flagged until ERRORS is cleared
            # (which image read the bad beat is not tracked through the classifier's stages).
            m_axi = connect_flat(m, self, "m_axi", self._buses["m_axi"])
            m.submodules.w2_reader = reader = soft(W2AxiReader(self._clf.features, self._clf.groups,
                                                               self._clf.w2_word_bits))
            wiring.connect(m, clf.w2, reader.port)
            wiring.connect(m, reader.m_axi, wiring.flipped(m_axi))
            m.d.comb += [reader.base.eq(regs.w2_base), errors.eq(checker.errors | Mux(reader.error, ErrorFlag.AXI_READ, 0))]
            m.d.comb += fmt.i_flags.payload.eq(ififo.r_data | Mux(regs.axi_read_sticky, ErrorFlag.AXI_READ, 0))
        wiring.connect(m, clf.o_stream, fmt.i_result)
        wiring.connect(m, fmt.m_axis, wiring.flipped(m_axis))

        # ----- weights: the window's words onto the blocks' load buses ---------------------------
        wb = regs.weights
        L, B = self._conv.parallelism, self._conv.weight_bits
        conv_sel = wb.sel == TARGET_CODES["conv"]
        m.d.comb += [
            conv.weights.addr.eq(wb.addr), conv.weights.w_data.eq(wb.data[:L * B]),
            conv.weights.w_en.eq((wb.en & conv_sel).replicate(L)),
            clf.load.addr.eq(wb.addr), clf.load.data.eq(wb.data[:self._clf.load_data_bits]),
        ]
        for name, target in _LOAD_TARGETS.items():
            if target in self._clf.load_targets():
                with m.If(wb.sel == TARGET_CODES[name]):
                    m.d.comb += [clf.load.sel.eq(target), clf.load.en.eq(wb.en)]

        # ----- status and counters -------------------------------------------------------------
        inflight = Signal(range(self._depths[1] + 2))      # images past the checker, not yet out
        image_in = Signal()
        m.d.comb += image_in.eq(checker.o_image.valid & checker.o_image.ready)
        with m.If(regs.soft_reset):
            m.d.sync += inflight.eq(0)
        with m.Elif(image_in & ~fmt.done):
            m.d.sync += inflight.eq(inflight + 1)
        with m.Elif(fmt.done & ~image_in):
            m.d.sync += inflight.eq(inflight - 1)
        busy = Signal()
        m.d.comb += [
            busy.eq(checker.in_image | (inflight != 0)),
            checker.enable.eq(regs.enable),
            regs.busy.eq(busy),
            regs.idle.eq(~busy & conv.idle & clf.idle),
            regs.image_in.eq(image_in),
            regs.image_out.eq(fmt.done),
            regs.stall_in.eq(checker.in_image & ~s_axis.tvalid),
            regs.stall_out.eq(m_axis.tvalid & ~m_axis.tready),
            regs.errors.eq(errors),
        ]
        return m


def generate_accelerator(point: DesignPoint, out_dir, *, name: str = "accelerator",
                         weights: Mapping[str, Sequence[int]] | None = None):
    """Write ``<name>.v``, ``.il`` and ``.json`` (with the register map and beat formats);
    with ``weights`` (words per weight-window target) the memories hold them after
    configuration."""
    dut = Accelerator(point, weights=weights)
    return generate(dut, name, out_dir, dut.params(), formats=point.formats)
