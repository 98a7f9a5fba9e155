"""External memories of real ECP5 boards, and the images/s their bandwidth allows.

Why a model with bursts and not the peak rate: the accelerator's AXI4 master fetches one ``W2``
row per active feature, one INCR burst each, at scattered addresses (the active features of an
image), so almost every burst opens a new DRAM row: precharge, activate, CAS latency before the
first word. The bytes and bursts per image are measured in co-simulation
(``spykehw cosim accelerator``: counted at the AXI4 memory model), so only the memory's own
timing is modelled here:

    time per burst = row_miss_ns + burst_bytes / peak_bytes_per_s
    effective bandwidth = burst_bytes / time per burst
    memory-bound images/s = effective bandwidth / bytes per image

The latency of a burst is hidden (several bursts are outstanding), its row-miss cost is not:
the data bus idles while the next row opens. Refresh (about 2-4 % of the time) and the memory
controller's own gaps are not modelled, so the figures are upper bounds for the memory.
The row-miss costs are ``tRP + tRCD + CL`` from the parts' datasheets at the named clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ExternalMemory", "MEMORIES", "memory_bound_table"]


@dataclass(frozen=True)
class ExternalMemory:
    name: str
    board: str
    width_bits: int
    clock_mhz: float
    transfers_per_clock: int        # 1 SDR, 2 DDR
    row_miss_ns: float              # tRP + tRCD + CL
    source: str

    @property
    def peak_bytes_per_s(self) -> float:
        return self.width_bits / 8 * self.clock_mhz * 1e6 * self.transfers_per_clock

    def effective_bytes_per_s(self, burst_bytes: float) -> float:
        """Sustained bandwidth of back-to-back bursts of ``burst_bytes``, each a row miss."""
        return burst_bytes / (self.row_miss_ns * 1e-9 + burst_bytes / self.peak_bytes_per_s)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "board": self.board, "width_bits": self.width_bits,
                "clock_mhz": self.clock_mhz, "transfers_per_clock": self.transfers_per_clock,
                "peak_bytes_per_s": self.peak_bytes_per_s, "row_miss_ns": self.row_miss_ns,
                "source": self.source}


def _sdram(mhz: float) -> ExternalMemory:
    clk = 1e3 / mhz
    return ExternalMemory(
        f"sdram16-{mhz:g}", "ULX3S: 16-bit SDR SDRAM (IS42S16160 / AS4C32M16)", 16, mhz, 1,
        18.0 + 18.0 + 3 * clk,
        "tRP = tRCD = 18 ns, CL = 3 clocks (IS42S16160J-6 datasheet)")


MEMORIES: tuple[ExternalMemory, ...] = (
    _sdram(100), _sdram(133), _sdram(166),
    ExternalMemory("ddr3-16-800", "ECP5 Versa / OrangeCrab: 16-bit DDR3 at 400 MHz (DDR3-800)", 16, 400, 2,
                   15.0 + 15.0 + 15.0,
                   "DDR3-800E: tRP = tRCD = CL = 6 clocks of 2.5 ns (MT41K128M16 datasheet); the "
                   "ECP5 Versa's and OrangeCrab's DDR3 controllers run the bus at 400 MHz or below"),
)


def memory_bound_table(bytes_per_image: float, bursts_per_image: float,
                       compute_images_per_s: float | None) -> list[dict[str, Any]]:
    """Per named memory: the effective bandwidth at the measured burst size, the memory-bound
    images/s and ``min(compute, memory)``."""
    if not bytes_per_image or not bursts_per_image:
        return []
    burst = bytes_per_image / bursts_per_image
    out = []
    for mem in MEMORIES:
        eff = mem.effective_bytes_per_s(burst)
        bound = eff / bytes_per_image
        both = bound if compute_images_per_s is None else min(bound, compute_images_per_s)
        out.append({**mem.to_dict(), "burst_bytes": burst, "effective_bytes_per_s": eff,
                    "memory_images_per_second": bound, "images_per_second": both,
                    "limited_by": "memory" if compute_images_per_s is None or bound < compute_images_per_s
                    else "compute"})
    return out
