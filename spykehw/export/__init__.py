"""The weight export: every memory the hardware holds, as files a synthesis flow, a host driver
and the tests load (the contract between training and hardware).

:func:`read_source` takes a run folder or state file to the integer model's parameters and a
:class:`~spykehw.golden.design_point.DesignPoint`; :func:`write_export` writes ``NAME.hex``,
``NAME.bin``, ``weights.bin`` and ``memory_map.json`` (rules in :mod:`spykehw.export.writer`);
:func:`load_export` checks and decodes them; :func:`run_golden` runs the integer golden model
from an export. The words are :mod:`spykehw.rtl.packing`'s, what the blocks' buses consume.
"""

from .errors import ExportError
from .loader import Export, golden_features, load_export, run_golden
from .memories import MemorySpec, memory_specs
from .source import ExportSource, read_source
from .writer import ALIGNMENT, FORMAT, IMAGE_FILE, MAP_FILE, VERSION, write_export

__all__ = ["ExportError", "Export", "load_export", "run_golden", "golden_features", "MemorySpec",
           "memory_specs", "ExportSource", "read_source", "write_export", "ALIGNMENT", "FORMAT",
           "IMAGE_FILE", "MAP_FILE", "VERSION"]
