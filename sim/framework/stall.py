"""The pseudo-random stall source of the simulation harnesses (inserted gaps and held ``ready``).

One 16-bit Galois LFSR (x^16 + x^14 + x^13 + x^11 + 1, maximal length) per harness, stepped every
cycle; harnesses compare slices of it with a stall level. The seed only has to be non-zero; the
harnesses keep the seeds they always used, so recorded cycle counts stay comparable.
"""

from __future__ import annotations

from amaranth import Module, Signal

__all__ = ["LFSR_TAPS", "stall_lfsr"]

LFSR_TAPS = 0xB400


def stall_lfsr(m: Module, *, seed: int = 1, name: str = "lfsr") -> Signal:
    """A free-running 16-bit LFSR added to ``m``'s sync domain."""
    if not 0 < seed < 1 << 16:
        raise ValueError(f"seed: must be in 1..65535, not {seed}")
    lfsr = Signal(16, init=seed, name=name)
    m.d.sync += lfsr.eq((lfsr >> 1) ^ (lfsr[0].replicate(16) & LFSR_TAPS))
    return lfsr
