"""cocotb testbench: the generated Pool1 Verilog against a ``pool1`` vector file.

Environment (set by :func:`spykehw.sim.framework.runners.run_tests`): ``SPYKEHW_VECTORS``,
``SPYKEHW_PORTS``, ``SPYKEHW_WAVEFORM``, ``SPYKEHW_REPORT`` and optionally ``SPYKEHW_STALL``
(``"p[:seed]"``: random idle cycles on the input and ``ready`` low on the output with
probability ``p``).

Every image's conv spikes are streamed in step by step, each step closed by its marker
(:func:`spykehw.sim.pool1.packing.spike_payloads`); every output transfer must be the next
expected pool event ``(c, y, x)`` of its step, in the golden order, or the step's marker.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import with_timeout

from ..framework.cocotb_support import (
    ENV_REPORT,
    ENV_VECTORS,
    ENV_WAVEFORM,
    Checker,
    StreamDriver,
    StreamMonitor,
    env_path,
    load_design,
    random_stall,
    reset,
    stall_from_env,
    start_clock,
)
from ..framework.vectors import read_vectors
from .packing import spike_payloads
from .vector_gen import KIND, image_pool_events, image_spikes, pool1_config

__all__ = ["pool1_matches_vectors", "expected_stream"]


def expected_stream(cfg, events) -> list[tuple[int, int, int, int]]:
    """An image's expected output transfers ``(step_end, c, y, x)``: each step's events, then
    its marker (whose coordinates are 0)."""
    out = []
    for t in range(cfg.steps):
        out += [(0, int(c), int(y), int(x)) for tt, c, y, x in events if tt == t]
        out.append((1, 0, 0, 0))
    return out


@cocotb.test()
async def pool1_matches_vectors(dut):
    vs = read_vectors(env_path(ENV_VECTORS), kind=KIND)
    design = load_design()
    cfg = pool1_config(vs)
    got = {k: design.params.get(k) for k in ("maps", "conv_size", "steps", "potential_bits", "mode")}
    want = {k: getattr(cfg, k) for k in got}
    assert got == want, f"design {design.name} was built with {got}, vector {vs.name} needs {want}"
    n = len(vs["spike_offsets"]) - 1
    cases = list(vs.options["cases"])
    expected = [expected_stream(cfg, image_pool_events(vs, i)) for i in range(n)]
    owner = [(i, k) for i in range(n) for k in range(len(expected[i]))]

    prob, seed = stall_from_env()
    start_clock(dut)
    driver = StreamDriver(dut, "i_spikes", design, stall=random_stall(prob, seed))
    monitor = StreamMonitor(dut, "o_events", design, stall=random_stall(prob, seed + 1))
    await reset(dut)
    checker = Checker(vector=vs.name, waveform=env_path(ENV_WAVEFORM, required=False),
                      report_path=env_path(ENV_REPORT, required=False),
                      item_label=lambda i: cases[i] if i < len(cases) else "")

    def on_item(j: int, payload: dict) -> None:
        i, k = owner[j]
        want_end, c, y, x = expected[i][k]
        step = sum(e[0] for e in expected[i][:k])
        found = (payload["step_end"], payload["c"], payload["y"], payload["x"])
        checker.check(i, f"step {step} output {k} (step_end, c, y, x)", (want_end, c, y, x), found)

    words = [w for i in range(n) for w in spike_payloads(cfg, image_spikes(vs, i))]
    cocotb.start_soon(driver.send(words))
    # Generous bound: every input and output word and every store word of every step.
    bound = (len(words) * 2 + len(owner) + n * cfg.steps * (cfg.maps * cfg.pool_size + 20)) * (4 if prob else 1)
    await with_timeout(monitor.receive(len(owner), on_item=on_item), bound * 10 + 10000, "ns")
    checker.finish()
