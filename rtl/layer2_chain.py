"""The second layer on chip: the Conv1 core, Pool1 and the Conv2 core as one component.

``i_events`` takes Conv1's input tokens (the encoder's spikes, :func:`~spykehw.rtl.layouts.token_layout`
of Conv1); Conv1's ``o_spikes`` (with each spike's potential ``p`` when Pool1 inhibits) go to
:class:`~spykehw.rtl.pool1.Pool1`, whose events are the Conv2 core's ``i_events``; ``o_spikes``
and ``o_features`` are the Conv2 core's (Conv2 spikes, Pool2 features). Conv1's own pool
features are not used (its ``o_features`` is always ready). The weights are the memories'
initial contents (``conv1_weights``, ``conv2_weights``: the weight bus words of each core); the
cores' weight buses are not brought out.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .conv_config import ConvCoreConfig, ConvCoreError
from .conv_core import ConvCore
from .layouts import feature_layout, token_layout
from .pool1 import Pool1, Pool1Config

__all__ = ["Layer2Chain", "words_digest"]


def words_digest(words: Sequence[int]) -> str:
    """SHA-256 of weight words (what the chain's params record of its initial weights)."""
    return hashlib.sha256(",".join(str(int(w)) for w in words).encode()).hexdigest()


class Layer2Chain(wiring.Component):
    """Conv1 core -> Pool1 -> Conv2 core (see the module docstring).

    Members
    -------
    i_events : In(stream.Signature(token_layout(C1, S1)))
    o_spikes : Out(stream.Signature(conv2.spike_layout()))
    o_features : Out(stream.Signature(feature_layout(conv2.features)))
    idle : Out(1)
        All three blocks idle.
    """

    def __init__(self, conv1: ConvCoreConfig, pool1: Pool1Config, conv2: ConvCoreConfig, *,
                 conv1_weights: Sequence[int], conv2_weights: Sequence[int]) -> None:
        checks = [
            (conv1.spike_potentials == pool1.inhibit, "conv1.spike_potentials must equal Pool1's inhibition"),
            ((pool1.maps, pool1.conv_size, pool1.steps) == (conv1.maps, conv1.out_size, conv1.steps),
             "Pool1 maps, conv_size and steps must be Conv1's"),
            (pool1.inhibit is False or pool1.potential_bits == conv1.potential_bits,
             "Pool1 potential_bits must be Conv1's"),
            ((conv2.channels, conv2.in_size, conv2.steps) == (pool1.maps, pool1.pool_size, pool1.steps),
             "Conv2 channels, in_size and steps must be Pool1's maps, pool size and steps"),
            (not conv1.learning and not conv2.learning, "inference cores only"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConvCoreError(f"Layer2Chain: {message}")
        self.conv1_cfg, self.pool1_cfg, self.conv2_cfg = conv1, pool1, conv2
        self._w1, self._w2 = tuple(conv1_weights), tuple(conv2_weights)
        super().__init__({
            "i_events": In(stream.Signature(token_layout(conv1.channels, conv1.in_size))),
            "o_spikes": Out(stream.Signature(conv2.spike_layout())),
            "o_features": Out(stream.Signature(feature_layout(conv2.features))),
            "idle": Out(1),
        })

    def params(self) -> dict[str, Any]:
        return {"conv1": self.conv1_cfg.to_dict(), "pool1": self.pool1_cfg.to_dict(),
                "conv2": self.conv2_cfg.to_dict(),
                "conv1_weights_sha256": words_digest(self._w1),
                "conv2_weights_sha256": words_digest(self._w2)}

    def elaborate(self, platform):
        m = Module()
        m.submodules.conv1 = c1 = ConvCore(self.conv1_cfg, weight_init=self._w1, read_back=False)
        m.submodules.pool1 = pool = Pool1(self.pool1_cfg)
        m.submodules.conv2 = c2 = ConvCore(self.conv2_cfg, weight_init=self._w2, read_back=False)
        wiring.connect(m, wiring.flipped(self.i_events), c1.i_events)
        wiring.connect(m, c1.o_spikes, pool.i_spikes)
        wiring.connect(m, pool.o_events, c2.i_events)
        wiring.connect(m, c2.o_spikes, wiring.flipped(self.o_spikes))
        wiring.connect(m, c2.o_features, wiring.flipped(self.o_features))
        m.d.comb += [c1.o_features.ready.eq(1), self.idle.eq(c1.idle & pool.idle & c2.idle)]
        return m
