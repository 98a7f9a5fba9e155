"""Pooling and the output registers of the conv core: the pool windows' feature flags and the
``o_spikes`` / ``o_features`` registers (see :mod:`spykehw.rtl.conv_core`, "Firing").
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .conv_blocks import FlagGrid, decode, select_bit, table
from .conv_config import ConvCoreConfig
from .conv_ports import capture_signature, lookahead_signature
from .layouts import feature_layout, index_bits, spike_layout

__all__ = ["FeatureOutput"]


class FeatureOutput(wiring.Component):
    """The output registers and the pool feature flags.

    A captured spike ``(m, u, v)`` enters the ``o_spikes`` register; its pool window's flag
    word (a memory of ``P*P`` words of ``M`` bits, with per-window touched flags) says whether
    feature ``m*P*P + win`` is new, and a new one enters the ``o_features`` register (the index
    is ``m*P*P`` from a table plus the window). The flag word and the window's touched flag are
    read as the item enters the stage before Z (``ahead.rd_en``) and the word is registered as
    it enters Z (``ahead.load``); a capture in either cycle with the same window is forwarded
    (the memory needs no transparency), so Z starts from a register and no block RAM output or
    flag multiplexer lies on a path back into ``flags``. At ``step_end`` the end-of-step marker enters ``o_spikes`` (with ``last_step`` also
    the end-of-image marker ``o_features``, and the window flags are cleared).

    Members
    -------
    capture : In(capture_signature(cfg, value=False)); ahead : In(lookahead_signature(cfg))
    t : In(index_bits(T)); step_end : In(1); last_step : In(1)
    o_spikes : Out(stream.Signature(spike_layout(M, H, T)))
    o_features : Out(stream.Signature(feature_layout(M*P*P)))
    stall : Out(1)
        An output register is full and not being taken.
    spk_free, feat_free : Out(1)
        The register can take a transfer in this cycle.
    """

    def __init__(self, cfg: ConvCoreConfig) -> None:
        self._cfg = cfg
        super().__init__({
            "capture": In(capture_signature(cfg, value=False)),
            "ahead": In(lookahead_signature(cfg)),
            "t": In(index_bits(cfg.steps)), "step_end": In(1), "last_step": In(1),
            "o_spikes": Out(stream.Signature(spike_layout(cfg.maps, cfg.out_size, cfg.steps))),
            "o_features": Out(stream.Signature(feature_layout(cfg.features))),
            "stall": Out(1), "spk_free": Out(1), "feat_free": Out(1),
        })

    def _feature_flags(self, m: Module, new_feature: Signal, feature_index: Signal) -> None:
        cfg = self._cfg
        M, NWIN = cfg.maps, cfg.pool_size ** 2
        cap, ahead = self.capture, self.ahead
        m.submodules.feature_flags = fmem = memory.Memory(shape=M, depth=NWIN, init=[])
        f_wr = fmem.write_port()
        f_rd = fmem.read_port()
        # feature flag words written in this image
        m.submodules.wtouched = wtouched = FlagGrid(rows=1, cols=NWIN, bit_reads=1)
        flags = Signal(M)       # the window's flag word as the item in Z sees it
        # A capture in Z leaves its window's word at ``flags | bit`` whether the feature is new
        # or not (an old one's bit is set already): forwarding that needs no ``new_feature``.
        z_word = Signal(M)
        m.d.comb += z_word.eq(flags | decode(m, cap.m, M, "feature_bit"))

        def z_writes(win) -> Signal:
            hit = Signal(name=f"z_writes_{win.name}")
            m.d.comb += hit.eq(cap.en & cap.win_ok & (cap.win == win))
            return hit

        # Read (the item enters the stage before Z): the memory word, the window's touched flag
        # and the word of a capture in this very cycle, which the read misses.
        rd_touched = Signal()
        rd_fwd = Signal()
        rd_fwd_word = Signal(M)
        rd_hit = z_writes(ahead.rd_win)
        with m.If(ahead.rd_en):
            m.d.sync += [rd_touched.eq(wtouched.bit0 | rd_hit), rd_fwd.eq(rd_hit),
                         rd_fwd_word.eq(z_word)]
        read_word = Signal(M)
        m.d.comb += read_word.eq(Mux(rd_fwd, rd_fwd_word, Mux(rd_touched, f_rd.data, 0)))
        # Load (the item enters Z): a capture in this cycle is forwarded too.
        with m.If(ahead.load):
            m.d.sync += flags.eq(Mux(z_writes(ahead.load_win), z_word, read_word))
        # The first feature index of each map (a table, no multiplier).
        map_base = Signal(index_bits(cfg.features), name="map_base")
        m.d.comb += map_base.eq(table([mm * NWIN for mm in range(M)], cap.m, len(map_base)))
        m.d.comb += [
            wtouched.bit0_col.eq(ahead.rd_win),
            f_rd.addr.eq(ahead.rd_win),
            f_rd.en.eq(ahead.rd_en),
            new_feature.eq(cap.win_ok & ~select_bit(m, flags, cap.m, "feature_seen")),
            feature_index.eq(map_base + cap.win),
            f_wr.addr.eq(cap.win),
            f_wr.data.eq(z_word),
            f_wr.en.eq(cap.en & new_feature),
            wtouched.set_en.eq(cap.en & new_feature), wtouched.set_col.eq(cap.win),
            wtouched.clear.eq(self.step_end & self.last_step),
        ]

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        osp, oft, cap = self.o_spikes, self.o_features, self.capture
        m.d.comb += [
            self.stall.eq((osp.valid & ~osp.ready) | (oft.valid & ~oft.ready)),
            self.spk_free.eq(~osp.valid | osp.ready),
            self.feat_free.eq(~oft.valid | oft.ready),
        ]
        new_feature = Signal()
        feature_index = Signal(index_bits(cfg.features), name="feature_index")
        if cfg.pool_size:
            self._feature_flags(m, new_feature, feature_index)

        with m.If(osp.valid & osp.ready):
            m.d.sync += osp.valid.eq(0)
        with m.If(oft.valid & oft.ready):
            m.d.sync += oft.valid.eq(0)
        with m.If(cap.en):
            m.d.sync += [
                osp.valid.eq(1),
                osp.payload.m.eq(cap.m), osp.payload.u.eq(cap.u), osp.payload.v.eq(cap.v),
                osp.payload.t.eq(self.t), osp.payload.step_end.eq(0), osp.payload.last.eq(0),
            ]
            with m.If(new_feature):
                m.d.sync += [oft.valid.eq(1), oft.payload.index.eq(feature_index),
                             oft.payload.last.eq(0)]
        with m.If(self.step_end):
            m.d.sync += [
                osp.valid.eq(1),
                osp.payload.m.eq(0), osp.payload.u.eq(0), osp.payload.v.eq(0),
                osp.payload.t.eq(self.t), osp.payload.step_end.eq(1),
                osp.payload.last.eq(self.last_step),
            ]
            with m.If(self.last_step):
                m.d.sync += [oft.valid.eq(1), oft.payload.index.eq(0), oft.payload.last.eq(1)]
        return m
