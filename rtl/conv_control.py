"""Control of the conv core: the phase FSM and the step counter (see :mod:`spykehw.rtl.conv_core`).
"""

from __future__ import annotations

from amaranth import Const, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .conv_config import ConvCoreConfig
from .layouts import index_bits

__all__ = ["Control"]


class Control(wiring.Component):
    """The phases of a step: INTEGRATE (tokens in) until the end-of-step marker is taken, DRAIN
    until the last read-modify-write has left stages I and X, FIRE until every pending position
    is captured, LEARN (learning core only) until the learning unit is done, STEP_END until the
    markers can enter the output registers (one cycle: ``step_end``); then the next step, with the
UP5K configuration (``cfg.spram``) after CLEAR, while the flag memories are swept.

    Members
    -------
    accept, marker, draining : In(1)
        From the integration: a token is accepted; the end-of-step marker is taken; stage I or X
        holds an item.
    fire_done : In(1)
        Every pending position was captured.
    spk_free, feat_free : In(1)
        The output registers can take a marker.
    clearing : In(1) (``spram`` only)
        The flag memories are being swept.
    learn_done, win_free : In(1) (learning core only)
        The learning unit is done with the step; its winners register can take a marker.
    integrate, fire : Out(1); learn : Out(1) (learning core only)
        The phase.
    step_end : Out(1)
        The step ends in this cycle (its markers enter the output registers).
    t : Out(index_bits(T)); last_step : Out(1)
        The step; it is the image's last.
    started : Out(1)
        A token of the current image was accepted.
    """

    def __init__(self, cfg: ConvCoreConfig) -> None:
        self._cfg = cfg
        members = {"accept": In(1), "marker": In(1), "draining": In(1), "fire_done": In(1),
                   "spk_free": In(1), "feat_free": In(1),
                   "integrate": Out(1), "fire": Out(1), "step_end": Out(1),
                   "t": Out(index_bits(cfg.steps)), "last_step": Out(1), "started": Out(1)}
        if cfg.spram:
            members["clearing"] = In(1)
        if cfg.learning:
            members.update({"learn_done": In(1), "win_free": In(1), "learn": Out(1)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        T, learning = cfg.steps, cfg.learning
        t = self.t if T > 1 else Const(0, 1)
        last_step = self.last_step
        m.d.comb += last_step.eq(t == T - 1)
        end_ok = self.spk_free & (self.feat_free | ~last_step)
        if learning:
            end_ok = end_ok & self.win_free
        with m.FSM(init="INTEGRATE"):
            with m.State("INTEGRATE"):
                m.d.comb += self.integrate.eq(1)
                with m.If(self.accept):
                    m.d.sync += self.started.eq(1)
                with m.If(self.marker):
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                # The last read-modify-writes finish: FIRE starts once nothing is left in I, R,
                # X or W (Q's last append, if any, happens in this cycle).
                with m.If(~self.draining):
                    m.next = "FIRE"
            with m.State("FIRE"):
                m.d.comb += self.fire.eq(1)
                with m.If(self.fire_done):
                    m.next = "LEARN" if learning else "STEP_END"
            if learning:
                with m.State("LEARN"):
                    m.d.comb += self.learn.eq(1)
                    with m.If(self.learn_done):
                        m.next = "STEP_END"
            with m.State("STEP_END"):
                with m.If(end_ok):
                    m.d.comb += self.step_end.eq(1)
                    with m.If(last_step):
                        m.d.sync += self.started.eq(0)
                        if T > 1:
                            m.d.sync += t.eq(0)
                    if T > 1:
                        with m.Else():
                            m.d.sync += t.eq(t + 1)
                    m.next = "CLEAR" if cfg.spram else "INTEGRATE"
            if cfg.spram:
                with m.State("CLEAR"):
                    with m.If(~self.clearing):
                        m.next = "INTEGRATE"
        return m
