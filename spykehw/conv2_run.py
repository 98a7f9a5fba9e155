"""What the Conv2 hardware needs of a ``spykehw run --layers 2`` folder: the integer model's
options, number formats and Conv1 weights (``int_state.npz``) and its trained Conv2 weights
(``int_conv2_state.npz``, the ``last_snapshot_weights`` inference uses).

A user's run folder is input, not a cache: a Conv2 state that does not belong to the folder's
integer state (another key), is damaged or is of another kind is refused with one line naming
the file; it is never set aside or rewritten.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import SpykehwError
from .flow_layer2 import CONV2_STATE_KIND
from .golden.formats import NumberFormats
from .golden.options import NetworkOptions
from .golden.state import StateError, load_state
from .golden.stored import arrays_digest, stable_key

__all__ = ["Conv2Run", "load_conv2_run"]

_STORED = "__stored__"      # the record write_checked_npz adds (golden.stored)


@dataclass(frozen=True, eq=False)
class Conv2Run:
    """The integer model of a two-layer run: ``conv1_weights`` (30, 2, 5, 5) and
    ``conv2_weights`` (maps, 30, 5, 5), unsigned ``UQ0.B`` int64."""

    path: Path
    options: NetworkOptions
    formats: NumberFormats
    conv1_weights: np.ndarray
    conv2_weights: np.ndarray
    dataset: str

    def describe(self) -> str:
        pool = ("Pool1 lateral inhibition" if self.options.pool1.lateral_inhibition
                else "Pool1 spike accumulation" if self.options.pool1.spike_accumulation
                else "no Pool1 inhibition")
        return (f"{self.path}: {self.dataset}, formats {self.formats.name}, Conv2 "
                f"{self.options.conv2.maps} maps trained on {self.options.conv2_images} images x "
                f"{self.options.conv2_epochs} epoch(s), {pool}")


def _conv2_weights(path: Path, key: str) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        stored = json.loads(arrays.pop(_STORED).tobytes().decode())
    except FileNotFoundError:
        raise SpykehwError(f"{path}: missing; a `spykehw run --layers 2` folder holds the trained "
                           "Conv2 of its integer model there") from None
    except Exception as e:  # not a zip, truncated, no record: not a Conv2 state
        raise SpykehwError(f"{path}: not a readable Conv2 state ({type(e).__name__}: {str(e)[:80]})") from None
    if not isinstance(stored, dict) or stored.get("kind") != CONV2_STATE_KIND:
        raise SpykehwError(f"{path}: holds {stored.get('kind') if isinstance(stored, dict) else None!r}, "
                           f"not {CONV2_STATE_KIND!r}")
    if stored.get("key") != key:
        raise SpykehwError(f"{path}: was trained with other options or formats than int_state.npz "
                           "beside it (key differs)")
    if stored.get("arrays_sha256") != arrays_digest(arrays):
        raise SpykehwError(f"{path}: damaged (arrays do not match their SHA-256)")
    if "conv2_weights" not in arrays:
        raise SpykehwError(f"{path}: has no conv2_weights")
    return np.asarray(arrays["conv2_weights"])


def load_conv2_run(folder: str | Path) -> Conv2Run:
    """Read and check the integer model of a ``spykehw run --layers 2`` folder."""
    folder = Path(folder)
    state_path = folder / "int_state.npz"
    if not state_path.is_file():
        raise SpykehwError(f"{folder}: no int_state.npz (a run folder of `spykehw run --layers 2` "
                           "with the integer model, not --float-only)")
    try:
        st = load_state(state_path)
    except StateError as e:
        raise SpykehwError(str(e)) from None
    fmt = st.number_formats()
    if st.model != "int" or fmt is None:
        raise SpykehwError(f"{state_path}: holds the {st.model} model, not the integer one")
    opts = NetworkOptions.from_dict(st.options)
    key = stable_key({"options": opts.to_dict(), "formats": fmt.to_dict()})
    w2 = _conv2_weights(folder / "int_conv2_state.npz", key)
    c2 = opts.conv2
    want = (c2.maps, c2.in_channels, c2.kernel, c2.kernel)
    top = (1 << fmt.conv.weight_bits) - 1
    if w2.shape != want or not np.issubdtype(w2.dtype, np.integer) or w2.min() < 0 or w2.max() > top:
        raise SpykehwError(f"{folder / 'int_conv2_state.npz'}: conv2_weights must be integers "
                           f"0..{top} shaped {want}, found {w2.dtype} {w2.shape}")
    return Conv2Run(folder, opts, fmt, np.asarray(st.conv1_weights, np.int64), w2.astype(np.int64),
                    str(st.provenance.get("dataset", st.provenance.get("name", "?"))))
