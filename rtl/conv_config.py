"""What fixes a conv core (:class:`ConvCoreConfig`: layer shape, formats, steps, lanes, learning)
and its weight bus signature; shared by the core, its blocks, the learning unit and the harnesses.
"""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass
from typing import Any

from amaranth import unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..golden.errors import SpykehwError
from ..golden.formats import NumberFormats
from ..golden.options import TIME_STEPS, ConvOptions
from .layouts import (
    feature_layout,
    index_bits,
    layout_fields,
    spike_layout,
    token_layout,
)

__all__ = [
    "ConvCoreError",
    "ConvCoreConfig",
    "WeightBusSignature",
]


MAX_STEPS = 1 << 10
POTENTIAL_MEMORIES = ("block", "spram")
SPRAM_WORDS = 16384     # words of one SB_SPRAM256KA (16K x 16 bits)


class ConvCoreError(SpykehwError, ValueError):
    """A conv core configuration that cannot be built (names the parameter)."""


@dataclass(frozen=True)
class ConvCoreConfig:
    """Everything that fixes a conv core: layer shape and threshold, number formats, ``T``, ``L``.

    Parameters
    ----------
    options : ConvOptions
        ``in_channels`` C, ``in_size`` S, ``maps`` M, ``kernel`` K, ``threshold``.
    formats : NumberFormats
        ``conv.weight_bits`` B; the threshold and the potential width derive from it.
    steps : int
        ``T``, time steps per image (1 .. 1024).
    parallelism : int
        ``L``, maps updated per cycle; must divide ``M``.
    max_spikes_per_input : int
        How often one input can spike in an image (1 for Conv1; up to 4 for Conv2, whose inputs
        are Pool1 neurons); sizes the potentials.
    learning : bool
        Also elaborate the STDP learning unit (:mod:`spykehw.rtl.conv_learning`): competition,
        homeostasis, integer STDP with ``formats.stdp`` and the options' schedule, and the
        ``o_winners`` stream. Only ``options.competition == "greedy"`` (the authors' code) is
        built. ``False`` (default): the inference core, unchanged.
    potential_memory : str
        ``"block"`` (default): the potentials in simple dual-port block RAM, one
        read-modify-write per cycle, the per-position flags in flip-flops (the ECP5 core).
        ``"spram"``: the iCE40 UltraPlus (UP5K) configuration: the potentials in single-port
        RAM (``SB_SPRAM256KA``, :class:`~spykehw.rtl.conv_memories.SinglePortRam`), so a
        read-modify-write takes two cycles (reads and writes in alternate cycles), and the
        fired, touched and pending flags in block RAM
        (:class:`~spykehw.rtl.conv_memories.FlagMemory`), cleared by a sweep of ``H`` cycles
        after each step. Inference only; the words of a lane (``H*H*G``) must fit one SPRAM's
        16K.
    spike_potentials : bool
        Add each spike's potential (the winning ``V``, 0 on markers) to ``o_spikes`` as field
        ``p`` (:meth:`spike_layout`): what Pool1's lateral inhibition compares
        (:mod:`spykehw.rtl.pool1`). ``False`` (default): the layout and the Verilog unchanged.
    """

    options: ConvOptions
    formats: NumberFormats
    steps: int = TIME_STEPS
    parallelism: int = 1
    max_spikes_per_input: int = 1
    learning: bool = False
    potential_memory: str = "block"
    spike_potentials: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.options, ConvOptions):
            raise TypeError(f"options must be a ConvOptions, not {self.options!r}")
        if not isinstance(self.formats, NumberFormats):
            raise TypeError(f"formats must be a NumberFormats, not {self.formats!r}")
        for name in ("steps", "parallelism", "max_spikes_per_input"):
            value = getattr(self, name)
            if isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
            object.__setattr__(self, name, operator.index(value))
        if not 1 <= self.steps <= MAX_STEPS:
            raise ConvCoreError(f"steps: must be in 1..{MAX_STEPS}, not {self.steps}")
        if self.parallelism < 1 or self.options.maps % self.parallelism:
            divisors = [d for d in range(1, self.options.maps + 1) if self.options.maps % d == 0]
            raise ConvCoreError(f"parallelism: must divide the {self.options.maps} maps "
                                f"(one of {divisors}), not {self.parallelism}")
        if self.max_spikes_per_input < 1:
            raise ConvCoreError(f"max_spikes_per_input: must be >= 1, not {self.max_spikes_per_input}")
        for name in ("learning", "spike_potentials"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, not {getattr(self, name)!r}")
        if self.learning and self.options.competition != "greedy":
            raise ConvCoreError(f"options.competition: the learning core builds only 'greedy' "
                                f"(the authors' STDP competition), not {self.options.competition!r}")

        if self.potential_memory not in POTENTIAL_MEMORIES:
            raise ConvCoreError(f"potential_memory: one of {', '.join(POTENTIAL_MEMORIES)}, "
                                f"not {self.potential_memory!r}")
        if self.spram:
            if self.learning:
                raise ConvCoreError("potential_memory: 'spram' builds the inference core only, "
                                    "not learning=True")
            words = self.out_size ** 2 * self.groups
            if words > SPRAM_WORDS:
                raise ConvCoreError(f"potential_memory: 'spram' holds {SPRAM_WORDS} words per lane, "
                                    f"this layer needs H*H*G = {words} (raise parallelism)")

    @property
    def captures_value(self) -> bool:
        """The firing pipeline hands each capture's potential on (learning or spike potentials)."""
        return self.learning or self.spike_potentials

    def spike_layout(self):
        """The ``o_spikes`` payload (with ``p`` when ``spike_potentials``)."""
        return spike_layout(self.maps, self.out_size, self.steps,
                            self.potential_bits if self.spike_potentials else 0)

    @property
    def spram(self) -> bool:
        """The UP5K configuration (``potential_memory == "spram"``)."""
        return self.potential_memory == "spram"

    # --- shape -----------------------------------------------------------------------------

    @property
    def channels(self) -> int:
        return self.options.in_channels

    @property
    def in_size(self) -> int:
        return self.options.in_size

    @property
    def maps(self) -> int:
        return self.options.maps

    @property
    def kernel(self) -> int:
        return self.options.kernel

    @property
    def out_size(self) -> int:
        return self.options.out_size

    @property
    def pool_size(self) -> int:
        return self.options.pool_size

    @property
    def features(self) -> int:
        return self.options.features

    @property
    def kernel_weights(self) -> int:
        """``C*K*K``: weights per map, and words per group of the weight memory."""
        return self.channels * self.kernel ** 2

    @property
    def groups(self) -> int:
        return self.maps // self.parallelism

    @property
    def weight_words(self) -> int:
        """Words of the weight bus: ``index*G + group`` for ``index < C*K*K``, ``group < G``."""
        return self.kernel_weights * self.groups

    @property
    def snapshot_base(self) -> int:
        """Learning core: bus address of the snapshot copy's word 0 (the power of two above the
        weight words, so the copy's address is the bus address's low bits)."""
        return 1 << index_bits(self.weight_words)

    @property
    def weight_bus_words(self) -> int:
        """Addresses of the weight bus: the weight words, and with ``learning`` also the
        read-only snapshot copy at ``snapshot_base + word`` (:mod:`spykehw.rtl.conv_snapshot`)."""
        return self.snapshot_base + self.weight_words if self.learning else self.weight_words

    # --- numbers ---------------------------------------------------------------------------

    @property
    def weight_bits(self) -> int:
        return self.formats.conv.weight_bits

    @property
    def potential_bits(self) -> int:
        return self.formats.potential_bits(self.channels, self.kernel, self.max_spikes_per_input)

    @property
    def threshold(self) -> int:
        return self.formats.threshold_int(self.options.threshold)

    # --- storage ----------------------------------------------------------------------------

    def pending_layout(self) -> data.StructLayout:
        """An entry of the pending list: a position that crossed the threshold in this step,
        with what the firing stage needs precomputed (no multiplier or divider there)."""
        H, P, G = self.out_size, self.pool_size, self.groups
        return data.StructLayout({
            "pg": unsigned(index_bits(H * H * G)),      # (u*H + v) * G: the word of group 0
            "u": unsigned(index_bits(H)),
            "v": unsigned(index_bits(H)),
            "win": unsigned(index_bits(P * P)),         # (u//2)*P + v//2
            "win_ok": unsigned(1),                      # u < 2P and v < 2P
        })

    def memory_bits(self) -> dict[str, int]:
        """Bits of each memory (the flip-flop flags are not counted here; with ``spram`` the
        fired, touched and pending flags are memories, the fired one with ``K`` read ports,
        which synthesis turns into ``K`` copies)."""
        H, P, L, G = self.out_size, self.pool_size, self.parallelism, self.groups
        bits = {
            "potentials": H * H * G * L * self.potential_bits,
            "weights": self.kernel_weights * G * L * self.weight_bits,
            "pending": H * H * self.pending_layout().size,
            "feature_flags": P * P * self.maps,
        }
        if self.spram:
            bits |= {"fired_flags": H * H, "touched_flags": H * H,
                     "pending_flags": H * H}
        return bits

    def flag_bits(self) -> int:
        """Flip-flops of the per-position flags: fired, touched, pending, and the pool
        windows' touched flags (with ``spram`` only the latter: the others are in block RAM)."""
        H, P = self.out_size, self.pool_size
        return (0 if self.spram else 3 * H * H) + P * P

    def to_dict(self) -> dict[str, Any]:
        """Parameters for the JSON beside the Verilog (and for checks against vector files)."""
        return {
            "options": dataclasses.asdict(self.options),
            "formats": self.formats.name,
            "steps": self.steps,
            "parallelism": self.parallelism,
            "max_spikes_per_input": self.max_spikes_per_input,
            **({"potential_memory": self.potential_memory} if self.spram else {}),
            **({"spike_potentials": True} if self.spike_potentials else {}),
            **({"learning": True, "stdp": dataclasses.asdict(self.formats.stdp),
                "snapshot_base": self.snapshot_base} if self.learning else {}),
            "channels": self.channels, "in_size": self.in_size, "maps": self.maps,
            "kernel": self.kernel, "out_size": self.out_size, "pool_size": self.pool_size,
            "features": self.features, "groups": self.groups,
            "weight_bits": self.weight_bits, "potential_bits": self.potential_bits,
            "threshold": self.threshold,
            "memory_bits": self.memory_bits(),
            "layouts": {
                "token": layout_fields(token_layout(self.channels, self.in_size)),
                "spike": layout_fields(self.spike_layout()),
                "feature": layout_fields(feature_layout(self.features)),
            },
        }


class WeightBusSignature(wiring.Signature):
    """The weight bus seen from the host (``In(WeightBusSignature(...))`` on the core).

    Members: ``addr`` (the word ``index*G + group``), ``w_en`` (``L`` lane write enables),
    ``w_data`` (``L`` weights, lane ``l`` in bits ``l*B .. l*B+B-1``), ``r_en``; back from the
    core: ``r_ready``, ``r_valid``, ``r_data`` (``L`` weights, same order). Without
    ``read_back`` only the write members (a host that never reads the weights back). Plain vectors rather
    than ``ArrayLayout`` views, so the Verilog has no per-lane alias wires.
    """

    def __init__(self, words: int, lanes: int, weight_bits: int, *, read_back: bool = True) -> None:
        word = unsigned(weight_bits * lanes)
        members = {"addr": Out(range(words)), "w_en": Out(lanes), "w_data": Out(word)}
        if read_back:
            members |= {"r_en": Out(1), "r_ready": In(1), "r_valid": In(1), "r_data": In(word)}
        super().__init__(members)
