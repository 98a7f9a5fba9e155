"""The FPGA targets of ``spykehw fpga``: capacities, package, speed grade and tool options.

Sources (each figure below names its source):

[ECP5-DS]  Lattice, *ECP5 and ECP5-5G Family Data Sheet*, FPGA-DS-02012 (v2.x), Table 1.1
           "ECP5 and ECP5-5G Family Selection Guide": LUTs (in K), sysMEM blocks (18 Kb),
           embedded memory (Kb), distributed RAM (Kb), 18x18 multipliers, and user I/O per
           package (caBGA381). Section 2.2 "PFU Blocks": a slice holds two LUT4s and two
           registers, so the register count equals the LUT count. Section 2.10 "sysMEM Memory":
           each block is 18,432 bits (16 Kb + parity), the DP16KD primitive, configured as
           16,384 x 1, 8,192 x 2, 4,096 x 4, 2,048 x 9, 1,024 x 18, or 512 x 36 (pseudo dual
           port: one write and one read port, how Yosys maps a memory with one of each,
           ``$__PDPW16KD_``). Section 2.11
           "sysDSP Slice": the MULT18X18D primitive counted as "18 x 18 Multipliers".
[ECP5-DB]  Exact LUT/FF counts (the data sheet rounds to thousands): slices x 2 from Project
           Trellis' chip database, as nextpnr-ecp5 0.11 reports them under ``utilization``
           (``TRELLIS_COMB`` / ``TRELLIS_FF`` "available"); the tests check these against
           nextpnr's own report.
[UP-DS]    Lattice, *iCE40 UltraPlus Family Data Sheet*, FPGA-DS-02008 (v2.x), Table 1.1
           "iCE40 UltraPlus Family Selection Guide", column iCE40UP5K: 5,280 logic cells (one
           LUT4 and one flip-flop each), 30 sysMEM EBR blocks (4 Kb, SB_RAM40_4K) = 120 Kb,
           4 SPRAM blocks (256 Kb, SB_SPRAM256KA) = 1,024 Kb, 8 DSP blocks (SB_MAC16), and
           39 programmable I/O in the SG48 package. An EBR (SB_RAM40_4K) is 256 x 16,
           512 x 8, 1,024 x 4 or 2,048 x 2 (iCE40 sysMEM technical note, TN1250).

Parts chosen: ECP5 as on the ULX3S board (LFE5U-xxF-6BG381C: the non-SERDES "U" device,
caBGA381, speed grade 6, the slowest and most common grade, so Fmax is conservative); iCE40
UP5K in the SG48 QFN (iCEBreaker, UPduino), which has one speed grade.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..golden.errors import SpykehwError

__all__ = ["Device", "DEVICES", "TARGETS", "device", "DeviceError"]


class DeviceError(SpykehwError, ValueError):
    """An unknown ``--target``."""


@dataclass(frozen=True)
class Device:
    """One FPGA part and how the open toolchain is told about it.

    ``luts`` and ``ffs`` are LUT4s and flip-flops; ``bram_blocks`` the hard block RAMs of
    ``bram_block_bits`` bits each; ``spram_blocks`` (iCE40 UltraPlus only) the single-port RAMs
    of ``spram_block_bits``; ``dsps`` the hard multipliers; ``io`` the package's user I/O;
    ``bram_shapes`` the ``(width, depth)`` configurations of one block RAM.
    """

    name: str                   # the --target value
    family: str                 # "ecp5" | "ice40"
    part: str                   # full ordering code
    package: str                # nextpnr --package
    speed: str                  # speed grade ("" when the family has one)
    luts: int
    ffs: int
    bram_blocks: int
    bram_block_bits: int
    bram_primitive: str
    dsps: int
    dsp_primitive: str
    io: int
    spram_blocks: int = 0
    spram_block_bits: int = 0
    bram_shapes: tuple[tuple[int, int], ...] = ()
    sources: str = ""

    @property
    def bram_bits(self) -> int:
        return self.bram_blocks * self.bram_block_bits

    @property
    def spram_bits(self) -> int:
        return self.spram_blocks * self.spram_block_bits

    @property
    def nextpnr(self) -> str:
        """The YoWASP nextpnr entry point for this family."""
        return f"nextpnr-{self.family}"

    def nextpnr_args(self) -> list[str]:
        """Device selection arguments of nextpnr (``--85k --package CABGA381 --speed 6``)."""
        if self.family == "ecp5":
            size = self.part.split("-")[1].rstrip("F").lower()     # "85"
            return [f"--{size}k", "--package", self.package, "--speed", self.speed,
                    "--lpf-allow-unconstrained"]
        return ["--up5k", "--package", self.package.lower(), "--pcf-allow-unconstrained"]

    def synth_command(self, top: str) -> str:
        """The Yosys synthesis command (``-json`` added by the flow).

        ECP5: ``synth_ecp5`` infers DP16KD block RAM, TRELLIS_DPR16X4 LUT RAM and MULT18X18D.
        iCE40 UltraPlus: ``-device u`` for the UltraPlus timing of ABC, ``-dsp`` to infer
        SB_MAC16 and ``-spram`` to allow SB_SPRAM256KA for single-port memories (both off by
        default in ``synth_ice40``).
        """
        if self.family == "ecp5":
            return f"synth_ecp5 -top {top}"
        return f"synth_ice40 -device u -dsp -spram -top {top}"

    def capacities(self) -> dict[str, int]:
        """Capacity per report resource key (see :mod:`spykehw.fpga.reports`)."""
        out = {"lut4": self.luts, "ff": self.ffs, "bram": self.bram_blocks, "dsp": self.dsps,
               "io": self.io}
        if self.spram_blocks:
            out["spram"] = self.spram_blocks
        if self.family == "ice40":
            out["lc"] = self.luts       # a logic cell is one LUT4 + one flip-flop
        return out


# [ECP5-DS] Section 2.10: DP16KD configurations (width, depth).
ECP5_BRAM_SHAPES = ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512))


def _ecp5(size: int, luts: int, brams: int, dsps: int, io: int) -> Device:
    return Device(
        name=f"ecp5-{size}k", family="ecp5", part=f"LFE5U-{size}F-6BG381C", package="CABGA381",
        speed="6", luts=luts, ffs=luts, bram_blocks=brams, bram_block_bits=18 * 1024,
        bram_primitive="DP16KD", dsps=dsps, dsp_primitive="MULT18X18D", io=io,
        bram_shapes=ECP5_BRAM_SHAPES, sources="luts/ffs [ECP5-DB] (data sheet: %dK LUTs); bram, dsp, io [ECP5-DS] Table 1.1"
                % round(luts / 1000))


DEVICES: dict[str, Device] = {
    # [ECP5-DS] Table 1.1: LFE5U-25: 24K LUTs, 56 sysMEM blocks (1,008 Kb), 28 18x18
    # multipliers, 197 I/O in caBGA381; [ECP5-DB]: 24,288 LUT4 (12,144 slices).
    "ecp5-25k": _ecp5(25, 24288, 56, 28, 197),
    # LFE5U-45: 44K LUTs, 108 blocks (1,944 Kb), 72 multipliers, 203 I/O; [ECP5-DB] 43,848.
    "ecp5-45k": _ecp5(45, 43848, 108, 72, 203),
    # LFE5U-85: 84K LUTs, 208 blocks (3,744 Kb), 156 multipliers, 205 I/O; [ECP5-DB] 83,640.
    "ecp5-85k": _ecp5(85, 83640, 208, 156, 205),
    # [UP-DS] Table 1.1, iCE40UP5K.
    "ice40-up5k": Device(
        name="ice40-up5k", family="ice40", part="iCE40UP5K-SG48I", package="SG48", speed="",
        luts=5280, ffs=5280, bram_blocks=30, bram_block_bits=4096, bram_primitive="SB_RAM40_4K",
        dsps=8, dsp_primitive="SB_MAC16", io=39, spram_blocks=4, spram_block_bits=256 * 1024,
        bram_shapes=((2, 2048), (4, 1024), (8, 512), (16, 256)),
        sources="[UP-DS] Table 1.1 (iCE40UP5K, SG48)"),
}

TARGETS = tuple(DEVICES)


def device(name: str) -> Device:
    try:
        return DEVICES[name]
    except KeyError:
        raise DeviceError(f"--target: unknown device {name!r} (known: {', '.join(TARGETS)})") from None
