"""spykehw: the SpykeFlow spiking network (STDP conv features + binary classifier) in hardware.

Subpackages: :mod:`spykehw.golden` (float reference and integer golden model), :mod:`spykehw.rtl`
(Amaranth components), :mod:`spykehw.sim` (vectors and co-simulation), :mod:`spykehw.data`
(datasets), :mod:`spykehw.commands` (the command line).
"""

__version__ = "0.1.0"
