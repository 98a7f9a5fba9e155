"""FPGA implementation studies: synthesis, place and route, resources, Fmax and images/s.

``spykehw fpga --block conv|classifier|softmax|all --target ecp5-85k|ecp5-45k|ecp5-25k|ice40-up5k
--config PRESET [--parallelism L] [--lanes L] [--freq MHZ] [--seed N] [--out DIR]`` runs the open
toolchain of the ``fpga`` extra (YoWASP Yosys and nextpnr, offline) on the generated Verilog and
writes a run folder with ``report.json``, ``report.md`` and the tool logs, all listed in
``manifest.json``. Comma-separated values make a resumable sweep with a trade-off table.

Modules, one job each:

:mod:`~spykehw.fpga.devices`
    the targets: capacities from the vendors' data sheets, package, speed grade, tool options;
:mod:`~spykehw.fpga.blocks`
    how to build each block at a preset and parallelism, and where its cycles-per-image and
    external-memory figures come from;
:mod:`~spykehw.fpga.wrapper`
    the 4-pin study top level (input shift chain, output signature register) and its cost;
:mod:`~spykehw.fpga.tools`
    finding and running Yosys and nextpnr with logs and a heartbeat;
:mod:`~spykehw.fpga.parse`
    reading Yosys statistics, memory mapping, nextpnr utilisation, Fmax and critical paths;
:mod:`~spykehw.fpga.flow`
    the stages: Verilog, synthesis, fit check, place and route, the report dict;
:mod:`~spykehw.fpga.reports`
    the report as Markdown, and the sweep table;
:mod:`~spykehw.fpga.sweep`
    sweep points, keys, accuracy CSVs, running points on the quant store and Dask client;
:mod:`~spykehw.fpga.onchip`
    the classifier's block RAMs with every weight on chip, estimated before synthesis, and the
    choice of a design point from accuracy and blocks.
"""
__all__: list[str] = []
