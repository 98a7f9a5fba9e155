"""The ``spykehw`` subcommands: one module each, with ``register(subparsers)``.

:data:`HELP` is each subcommand's line in ``spykehw --help``, in the order listed there. It lives
here, apart from the modules, because :func:`spykehw.cli.main` imports only the module of the
command being run (a command module imports what its command needs: the golden model, Dask,
Amaranth); the listing needs none of them.
"""

__all__ = ["HELP"]

HELP = {
    "run": "the whole flow on a dataset (default: the embedded MNIST sample)",
    "predict": "classify your images with a trained network (classes + softmax, CSV/JSON)",
    "verify": "the same images through float, int, Amaranth, Verilator, Icarus: where do they differ?",
    "data": "datasets: list what is where, download, rebuild the embedded sample",
    "bench": "images/s and peak memory of the golden models, as JSON",
    "quant": "sweep number formats of the integer model (accuracy vs bits), on Dask",
    "vectors": "make golden test vectors for an RTL block",
    "verilog": "generate the Verilog of an RTL block (+ JSON, lint)",
    "cosim": "co-simulate the RTL against the golden model",
    "fpga": "synthesis, place and route: resources, Fmax and images/s on an FPGA",
    "export": "write a trained network's memories as $readmemh/binary files + memory_map.json",
}
