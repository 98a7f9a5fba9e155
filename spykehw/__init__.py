"""spykehw: the SpykeFlow spiking network (STDP conv features + binary classifier) in hardware.

Subpackages: :mod:`spykehw.golden` (float reference and integer golden model), :mod:`spykehw.rtl`
(Amaranth components), :mod:`spykehw.sim` (vectors and co-simulation), :mod:`spykehw.data`
(datasets), :mod:`spykehw.commands` (the command line).

The Python API (:mod:`spykehw.api`): ``spykehw.load(path)`` -> :class:`~spykehw.api.Network`
(``predict``, ``features``, ``export``, ``verilog``, ``cosimulate``) and ``spykehw.train(...)``.
"""

__version__ = "0.1.0"

_API = ("load", "train", "Network", "Prediction", "ApiError")

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    # The API (and with it the golden model: numpy, numba) is imported on first use, so
    # `import spykehw` and `spykehw --help` stay fast; hardware parts load when called.
    if name in _API:
        from . import api  # on first use: `import spykehw` stays light (see above)
        return getattr(api, name)
    raise AttributeError(f"module 'spykehw' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_API))
