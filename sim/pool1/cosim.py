"""Co-simulation of the Pool1 block's generated Verilog (Verilator / Icarus through cocotb): build
it for a vector set's configuration and run the testbench :mod:`spykehw.sim.pool1.tb`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...rtl.pool1 import Pool1, Pool1Config
from ...rtl.verilog import generate
from ..framework.cocotb_support import ENV_STALL
from ..framework.runners import CocotbResult, build_sim, run_tests, tb_env

__all__ = ["TB", "Pool1Cosim", "build_pool1_cosim", "run_pool1_cosim"]

TB = "spykehw.sim.pool1.tb"


@dataclass
class Pool1Cosim:
    config: Pool1Config
    simulator: str
    design: Any     # GeneratedVerilog
    build: Any      # SimBuild


def build_pool1_cosim(cfg: Pool1Config, simulator: str, folder: str | Path, *,
                      waves: bool = True) -> Pool1Cosim:
    """The Verilog of ``Pool1(cfg)`` (``folder/rtl``) built for ``simulator`` (``folder/build``)."""
    folder = Path(folder)
    block = Pool1(cfg)
    design = generate(block, "pool1", folder / "rtl", block.params())
    build = build_sim(simulator, [design.verilog_path], design.name, folder / f"build-{simulator}",
                      waves=waves)
    return Pool1Cosim(cfg, simulator, design, build)


def run_pool1_cosim(cosim: Pool1Cosim, vectors: str | Path, test_dir: str | Path, *,
                    stall: str = "", check: bool = True) -> CocotbResult:
    """Run the testbench on ``vectors`` (``stall``: ``"p[:seed]"``, see the testbench)."""
    env = tb_env(vectors=vectors, ports=cosim.design.json_path, **({ENV_STALL: stall} if stall else {}))
    return run_tests(cosim.build, TB, test_dir, extra_env=env, check=check)
