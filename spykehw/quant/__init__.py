"""Quantization studies: accuracy of the integer pipeline across number formats (``spykehw quant``).

Modules: :mod:`~spykehw.quant.points` (sweep definition -> validated points and their keys),
:mod:`~spykehw.quant.rules` (classifier fraction bits from a bit width),
:mod:`~spykehw.quant.stages` (the per-point work: shared Conv1 and classifier stages, the point),
:mod:`~spykehw.quant.store` (the resumable on-disk store), :mod:`~spykehw.quant.cluster` (the Dask
client), :mod:`~spykehw.quant.sweep` (planning and running on Dask) and
:mod:`~spykehw.quant.report` (CSV, Markdown, smallest formats within 0.5/1.0 points, per dataset or
per dataset and hidden size) with :mod:`~spykehw.quant.plots` (accuracy against bits).
"""

from .points import Point, Sweep, SweepError, build_points
from .store import Store, stable_key
from .sweep import plan_sweep, run_sweep

__all__ = ["Point", "Store", "Sweep", "SweepError", "build_points", "plan_sweep", "run_sweep",
           "stable_key"]
