"""From a run folder or a state file to the integer model's parameters and a design point.

What the export writes is what the integer golden model computes with, taken the way the main
job (:mod:`spykehw.flow`) made it:

- Conv1: the state's ``conv1_weights``, the weights inference uses (the last snapshot when the
  run's ``conv.last_snapshot_weights`` is on, the final weights otherwise; checked against the
  state's snapshots, so a state that says one thing and holds another is refused).
- Classifier: the state's quantized arrays (``classifier_int``) when the formats' classifier
  part is the state's; with other classifier formats (``--config``) the stored float classifier
  is quantized again exactly as the main job does (:func:`quantize_classifier`).

Only the ``classifier`` and ``softmax`` formats may differ from the state's: the encoder, conv
and STDP formats made the Conv1 weights and the features, so changing them would describe a
different network than the one trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..golden.classifier_int import IntClassifier, quantize_classifier
from ..golden.design_point import DesignPoint
from ..golden.formats import NumberFormats
from ..golden.options import NetworkOptions
from ..golden.state import TrainedState, load_state
from ..output import sha256_file
from .errors import ExportError

__all__ = ["STATE_IN_RUN", "FIXED_PARTS", "ExportSource", "state_path", "read_source"]

STATE_IN_RUN = "int_state.npz"
"""The integer model's state in a run folder (``spykehw run``)."""

FIXED_PARTS = ("encoder", "conv", "stdp")
"""Format parts that must equal the state's (they made the weights and the features)."""

DEFAULT_CLASSIFIER_LANES = 64


@dataclass(frozen=True, eq=False)
class ExportSource:
    """What an export holds: the design point, the network options and the integer parameters."""

    point: DesignPoint
    options: NetworkOptions
    conv_weights: np.ndarray        # (M, C, K, K) int64
    classifier: IntClassifier
    provenance: dict[str, Any]


def state_path(path: str | Path) -> Path:
    """A state file, or a run folder's integer state (:data:`STATE_IN_RUN`)."""
    path = Path(path)
    if path.is_dir():
        state = path / STATE_IN_RUN
        if not state.is_file():
            raise ExportError(f"{path}: no {STATE_IN_RUN} in this folder (a run of the integer model "
                              f"writes it; 'spykehw run --float-only' does not)")
        return state
    if not path.exists():
        raise ExportError(f"{path}: no such run folder or state file")
    return path


def _check_formats(fmt: NumberFormats, state_fmt: NumberFormats, state: Path) -> None:
    new, old = fmt.to_dict(), state_fmt.to_dict()
    for part in FIXED_PARTS:
        for key, value in new[part].items():
            if old[part].get(key) != value:
                raise ExportError(f"--config: {part}.{key} = {value!r} differs from {old[part].get(key)!r} "
                                  f"in {state} (only the classifier and softmax formats may change: the "
                                  f"state's Conv1 weights and features were made with its formats)")


def _conv_weights(state: TrainedState, options: NetworkOptions, path: Path) -> tuple[np.ndarray, str]:
    use_snapshot = options.conv.last_snapshot_weights and len(state.snapshots) > 0
    want = state.snapshots[-1] if use_snapshot else state.conv1_final_weights
    if not np.array_equal(state.conv1_weights, want):
        which = "last snapshot" if use_snapshot else "final weights"
        raise ExportError(f"{path}: conv1_weights are not the {which} that conv.last_snapshot_weights = "
                          f"{options.conv.last_snapshot_weights} selects")
    what = (f"last snapshot (global step {int(state.snapshot_steps[-1])}), conv.last_snapshot_weights"
            if use_snapshot else "final weights after STDP")
    return np.asarray(state.conv1_weights, np.int64), what


def _classifier(state: TrainedState, fmt: NumberFormats, state_fmt: NumberFormats,
                options: NetworkOptions, path: Path) -> tuple[IntClassifier, str]:
    stored = state.classifier_int or {}
    if fmt.classifier == state_fmt.classifier and all(f"{k}q" in stored for k in ("W2", "b2", "W3", "b3")):
        arrays = [np.asarray(stored[f"{k}q"], np.int64) for k in ("W2", "b2", "W3", "b3")]
        return IntClassifier(*arrays, fmt), "the state's quantized classifier (classifier_int)"
    if state.classifier is None:
        raise ExportError(f"{path}: no classifier stored (neither quantized nor float)")
    q = quantize_classifier(state.classifier, fmt, opts=options.classifier)
    return q, f"the state's float classifier quantized with the '{fmt.name}' classifier formats"


def read_source(path: str | Path, *, formats: NumberFormats | None = None, conv_lanes: int | None = None,
                classifier_lanes: int | None = None, weights: str = "on-chip") -> ExportSource:
    """The parameters and design point of a run folder or state file (see the module docstring).

    ``conv_lanes`` defaults to the design point's (all maps), ``classifier_lanes`` to
    ``min(64, hidden)``.
    """
    spath = state_path(path)
    state = load_state(spath)
    if state.model != "int":
        raise ExportError(f"{spath}: a {state.model}-model state; the hardware runs the integer model "
                          f"(export {STATE_IN_RUN} of a run)")
    state_fmt = state.number_formats()
    fmt = state_fmt if formats is None else formats
    _check_formats(fmt, state_fmt, spath)
    options = state.network_options()
    conv_weights, conv_what = _conv_weights(state, options, spath)
    q, cls_what = _classifier(state, fmt, state_fmt, options, spath)
    if q.features != options.conv.features:
        raise ExportError(f"{spath}: the classifier has {q.features} inputs, Conv1/Pool1 gives "
                          f"{options.conv.features} features")
    if classifier_lanes is None:
        classifier_lanes = min(DEFAULT_CLASSIFIER_LANES, q.hidden)
    kwargs: dict[str, Any] = {"formats": fmt, "conv": options.conv, "hidden": q.hidden,
                              "classes": q.classes, "steps": options.encoder.steps, "weights": weights,
                              "classifier_lanes": classifier_lanes}
    if conv_lanes is not None:
        kwargs["conv_lanes"] = conv_lanes
    point = DesignPoint(**kwargs)
    provenance = {"state": str(spath), "state_sha256": sha256_file(spath), "conv1_weights": conv_what,
                  "classifier": cls_what, "training_data": state.provenance}
    return ExportSource(point, options, conv_weights, q, provenance)
