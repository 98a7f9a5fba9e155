"""cocotb testbench: the generated SoftmaxUnit Verilog against a ``softmax`` vector file.

Environment (set by :func:`spykehw.sim.framework.runners.run_tests`): ``SPYKEHW_VECTORS`` (the vector
file), ``SPYKEHW_PORTS`` (the JSON written beside the Verilog), ``SPYKEHW_WAVEFORM`` (named in
mismatch reports), ``SPYKEHW_REPORT`` (JSON mismatch report), optional ``SPYKEHW_STALL``
(``"p[:seed]"``: random idle cycles on both streams with probability ``p``).

Every image's ``C`` logits are streamed in; each of the ``C`` output transfers must carry the
expected word, the expected class in ``argmax``, and ``last`` exactly on the final one.
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

__all__ = ["softmax_matches_vectors"]


def _check_design_matches(design, vs) -> None:
    """Refuse to compare a design built for other parameters than the vectors' own."""
    p, fmt = design.params, vs.formats.softmax
    want = {"classes": vs.options["classes"], "logit_bits": vs.options["logit_bits"],
            "softmax_format": {"exp_lut_entries": fmt.exp_lut_entries,
                               "exp_lut_bits": fmt.exp_lut_bits, "softmax_bits": fmt.softmax_bits}}
    got = {k: p.get(k) for k in want}
    assert got == want, f"design {design.name} was built with {got}, vector {vs.name} needs {want}"


@cocotb.test()
async def softmax_matches_vectors(dut):
    vs = read_vectors(env_path(ENV_VECTORS), kind="softmax")
    design = load_design()
    _check_design_matches(design, vs)
    logits, classes, words = vs["logits"], vs["classes"], vs["words"]
    n, c = logits.shape
    n_random = int(vs.options["random_images"])
    cases = list(vs.options["cases"])

    prob, seed = stall_from_env()
    start_clock(dut)
    driver = StreamDriver(dut, "i_stream", design, stall=random_stall(prob, seed))
    monitor = StreamMonitor(dut, "o_stream", design, stall=random_stall(prob, seed + 1))
    await reset(dut)

    checker = Checker(
        vector=vs.name, waveform=env_path(ENV_WAVEFORM, required=False),
        report_path=env_path(ENV_REPORT, required=False),
        item_label=lambda i: "random" if i < n_random else cases[i - n_random])

    def on_item(k: int, payload: dict) -> None:
        i, j = divmod(k, c)
        checker.check(i, f"words[{j}]", int(words[i, j]), payload["word"])
        checker.check(i, "classes", int(classes[i]), payload["argmax"])
        checker.check(i, f"last[{j}]", int(j == c - 1), payload["last"])

    cocotb.start_soon(driver.send(int(v) for v in logits.reshape(-1)))
    # Generous bound: the ideal schedule, tripled for stalls, plus slack.
    cycles = int(design.params["cycles_per_image"]) * n * (3 if prob else 1) + 1000
    await with_timeout(monitor.receive(n * c, on_item=on_item), cycles * 10, "ns")
    checker.finish()
