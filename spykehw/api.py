"""The Python API: load or train a network, classify images, export it, build and simulate its hardware.

>>> import spykehw
>>> net = spykehw.load("runs/run-20261207-120000")        # a run folder, state file or export
>>> p = net.predict(images)                                # integer model: classes + softmax words
>>> p.classes, p.softmax
>>> net.predict(images, model="float").probabilities

Everything here wires existing parts together (DESIGN.md: the API holds no logic of its own):
:mod:`spykehw.golden` computes, :func:`spykehw.flow.run_flow` trains, :mod:`spykehw.export`
writes the weights, :mod:`spykehw.hardware` generates and co-simulates the RTL. Importing this
module imports the golden model (numpy, numba) only; Amaranth and cocotb are imported when a
hardware method is called (by :mod:`spykehw.hardware`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .export.loader import load_export
from .export.source import STATE_IN_RUN, read_source
from .export.writer import MAP_FILE, write_export
from .flow import RunConfig, run_flow
from .golden.classifier import predict as float_predict
from .golden.classifier_int import IntClassifier, forward_int
from .golden.classifier_params import ClassifierParams
from .golden.errors import SpykehwError
from .golden.formats import DEFAULT_PRESET, NumberFormats, preset
from .golden.options import NetworkOptions, classifier_defaults
from .golden.pipeline import extract_features
from .golden.state import load_state
from .hardware import cosimulate_network, generate_network
from .images import as_images, read_images

__all__ = ["ApiError", "Prediction", "Network", "load", "train", "FLOAT_STATE", "INT_STATE"]

FLOAT_STATE = "float_state.npz"
INT_STATE = STATE_IN_RUN
MODELS = ("float", "int")


class ApiError(SpykehwError, ValueError):
    """A request the loaded network cannot serve (names the argument or file)."""


@dataclass(frozen=True)
class Prediction:
    """Classes and softmax of a batch of images.

    Attributes
    ----------
    model : ``"float"`` or ``"int"``
    classes : (N,) int64
        Argmax of the logits, lowest index on ties.
    logits : (N, C)
        Floored logits: float64 (float model) or int64 (integer model).
    softmax : (N, C)
        Float model: probabilities (float64, ``softmax(logits)``). Integer model: the softmax
        words of the exp-LUT unit (int64, unsigned ``softmax_bits``-bit fractions), exactly what
        the hardware outputs.
    softmax_bits : int or None
        Fraction bits of the integer softmax words (None for the float model).
    """

    model: str
    classes: np.ndarray
    logits: np.ndarray
    softmax: np.ndarray
    softmax_bits: int | None = None

    @property
    def probabilities(self) -> np.ndarray:
        """Softmax as float64 probabilities (integer words divided by ``2**softmax_bits``)."""
        if self.softmax_bits is None:
            return self.softmax
        return self.softmax / float(1 << self.softmax_bits)

    def __len__(self) -> int:
        return len(self.classes)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _images(images: Any) -> np.ndarray:
    if isinstance(images, (str, Path)):
        return read_images(images)[1]
    return as_images(images)


class Network:
    """A trained SpykeFlow network: the float reference and/or the integer model.

    Make one with :func:`load` (a run folder, a state file or an export folder) or :func:`train`.

    Attributes
    ----------
    source : Path
        What it was loaded from.
    options : NetworkOptions
        The network's algorithm options.
    formats : NumberFormats or None
        The integer model's number formats (None when only the float model is loaded).
    models : tuple of str
        The models available: ``"float"`` and/or ``"int"``.
    """

    def __init__(self, source: Path, options: NetworkOptions, *, float_weights: np.ndarray | None = None,
                 float_classifier: ClassifierParams | None = None, int_weights: np.ndarray | None = None,
                 int_classifier: IntClassifier | None = None, int_state: Path | None = None) -> None:
        self.source = Path(source)
        self.options = options
        self._float = None if float_weights is None else (float_weights, float_classifier)
        self._int = None if int_weights is None else (int_weights, int_classifier)
        self._int_state = int_state
        self.formats: NumberFormats | None = None if int_classifier is None else int_classifier.formats

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(m for m, part in (("float", self._float), ("int", self._int)) if part is not None)

    @property
    def classes(self) -> int:
        """Number of classes (10 for MNIST, 47 for EMNIST)."""
        if self._int is not None:
            return self._int[1].classes
        return self._float[1].W3.shape[1]

    def __repr__(self) -> str:
        fmt = f", formats '{self.formats.name}'" if self.formats is not None else ""
        hidden = self._int[1].hidden if self._int else self._float[1].W2.shape[1]
        return (f"Network({str(self.source)!r}: models {', '.join(self.models)}{fmt}, "
                f"{self.options.conv.features} -> {hidden} -> {self.classes})")

    def _model(self, model: str | None) -> str:
        if model is None:
            return "int" if self._int is not None else "float"
        if model not in MODELS:
            raise ApiError(f"model: expected 'float' or 'int', found {model!r}")
        if model not in self.models:
            raise ApiError(f"model: {self.source} holds no {model} model (it has: {', '.join(self.models)})")
        return model

    def features(self, images: Any, model: str | None = None) -> np.ndarray:
        """Pool1 features of images: encoder -> Conv1 -> Pool1.

        Parameters
        ----------
        images : array_like or path
            ``uint8`` ``(N, 28, 28)``, ``(28, 28)`` or ``(N, 784)``, or a path that
            :func:`spykehw.images.read_images` reads (PNG/JPEG folder, .npy, .npz, IDX).
        model : ``"int"`` (default when present) or ``"float"``

        Returns
        -------
        numpy.ndarray
            ``uint8 (N, 3630)`` bits, index ``m*121 + i*11 + j``.
        """
        model = self._model(model)
        weights = (self._int if model == "int" else self._float)[0]
        fmt = self.formats if model == "int" else None
        return extract_features(_images(images), weights, self.options, fmt).features

    def predict(self, images: Any, model: str | None = None) -> Prediction:
        """Classify images with the integer model (bit-exact with the hardware) or the float one.

        Parameters
        ----------
        images : array_like or path
            As for :meth:`features`.
        model : ``"int"`` (default when present) or ``"float"``

        Returns
        -------
        Prediction
            ``classes``, ``logits`` and ``softmax`` (integer words or float probabilities).
        """
        model = self._model(model)
        x = self.features(images, model)
        if model == "int":
            q = self._int[1]
            fw = forward_int(q, x, keep_hidden=False)
            return Prediction("int", fw.classes, fw.logits, fw.words, q.formats.softmax.softmax_bits)
        logits, classes = float_predict(self._float[1], x, self.options.classifier)
        return Prediction("float", classes.astype(np.int64), logits, _softmax(logits))

    # ----- hardware ------------------------------------------------------------------------------

    def integer_model(self, what: str = "this") -> tuple[np.ndarray, IntClassifier]:
        """The integer model's parameters: Conv1 weights ``(M, C, K, K)`` int64 and the quantized
        classifier; :class:`ApiError` (naming ``what`` needed it) when only the float one is loaded."""
        if self._int is None:
            raise ApiError(f"{self.source}: {what} needs the integer model, this network has only "
                           f"the float one")
        return self._int

    def export(self, out_dir: str | Path, *, formats: NumberFormats | None = None,
               conv_lanes: int | None = None, classifier_lanes: int | None = None,
               weights: str = "on-chip") -> dict[str, Any]:
        """Write every memory of the hardware (``spykehw export``; README "Weight export").

        Parameters
        ----------
        out_dir : str or Path
            The export folder (created).
        formats : NumberFormats, optional
            Other classifier/softmax formats (default: the state's).
        conv_lanes, classifier_lanes : int, optional
            Word layouts (default all 30 maps; ``min(64, hidden)``).
        weights : ``"on-chip"`` or ``"external"``
            Where ``W2`` lives.

        Returns
        -------
        dict
            The memory map written to ``memory_map.json``.
        """
        self.integer_model("export")
        if self._int_state is None:
            raise ApiError(f"{self.source}: already an export; export from its run folder or state file")
        src = read_source(self._int_state, formats=formats, conv_lanes=conv_lanes,
                          classifier_lanes=classifier_lanes, weights=weights)
        return write_export(src, out_dir)

    def verilog(self, out_dir: str | Path, *, conv_lanes: int = 30, classifier_lanes: int | None = None,
                w2_on_chip: bool = False) -> dict[str, Any]:
        """Generate the Verilog (+ JSON ports, RTLIL) of this network's conv core and classifier.

        Parameters
        ----------
        out_dir : str or Path
            Created if missing.
        conv_lanes : int
            Conv core maps per cycle (a divisor of 30).
        classifier_lanes : int, optional
            Classifier hidden accumulators per cycle (default ``min(64, hidden)``).
        w2_on_chip : bool
            ``W2`` in on-chip memory instead of the row memory port.

        Returns
        -------
        dict
            ``{"conv_core": GeneratedVerilog, "classifier": GeneratedVerilog}``.
        """
        _, q = self.integer_model("verilog")
        return generate_network(self.options, self.formats, q, out_dir, conv_lanes=conv_lanes,
                                classifier_lanes=classifier_lanes, w2_on_chip=w2_on_chip)

    def cosimulate(self, images: Any, *, simulator: str = "verilator", folder: str | Path | None = None,
                   conv_lanes: int = 30, classifier_lanes: int | None = None, waves: bool = False):
        """Run images through the RTL (golden encoder -> conv core -> classifier) on a simulator.

        Parameters
        ----------
        images : array_like or path
            As for :meth:`features`.
        simulator : ``"verilator"`` or ``"icarus"``
        folder : str or Path, optional
            Keep vectors, builds and logs here (default: a temporary folder).
        conv_lanes, classifier_lanes : int
            Parallelism of the two blocks.
        waves : bool
            Record the run's waveform (FST, ``result.waveform``; needs ``folder``, where it is kept).

        Returns
        -------
        spykehw.hardware.CosimResult
            The RTL's classes, softmax words and features, and ``passed`` (every output equal to
            the integer golden model's).
        """
        if waves and folder is None:
            raise SpykehwError("waves: needs a folder to keep the waveform in")
        w, q = self.integer_model("cosimulate")
        return cosimulate_network(self.options, self.formats, w, q, _images(images), simulator=simulator,
                                  folder=folder, conv_lanes=conv_lanes, classifier_lanes=classifier_lanes,
                                  waves=waves)


# ----- loading ---------------------------------------------------------------------------------

def _float_part(path: Path) -> tuple[np.ndarray, ClassifierParams, NetworkOptions]:
    state = load_state(path)
    if state.model != "float":
        raise ApiError(f"{path}: expected the float model's state, found the {state.model} model's")
    if state.classifier is None:
        raise ApiError(f"{path}: no classifier stored")
    return state.conv1_weights, state.classifier, state.network_options()


def _from_export(folder: Path) -> Network:
    ex = load_export(folder)
    return Network(folder, ex.options, int_weights=ex.conv_weights, int_classifier=ex.classifier)


def _from_state(path: Path) -> Network:
    model = load_state(path).model
    if model == "float":
        w, cls, opts = _float_part(path)
        return Network(path, opts, float_weights=w, float_classifier=cls)
    src = read_source(path)
    return Network(path, src.options, int_weights=src.conv_weights, int_classifier=src.classifier,
                   int_state=path)


def load(path: str | Path) -> Network:
    """Load a trained network.

    Parameters
    ----------
    path : str or Path
        A run folder of ``spykehw run`` (its ``float_state.npz`` and ``int_state.npz``), one
        state file, or an export folder (``memory_map.json``: the integer model only).

    Returns
    -------
    Network

    Raises
    ------
    SpykehwError
        The path holds no model, or a file is damaged (the message names it).
    """
    path = Path(path)
    if path.is_dir():
        if (path / MAP_FILE).is_file():
            return _from_export(path)
        f, i = path / FLOAT_STATE, path / INT_STATE
        if not f.is_file() and not i.is_file():
            raise ApiError(f"{path}: neither {FLOAT_STATE}, {INT_STATE} nor {MAP_FILE} in this folder "
                           f"(a run folder of 'spykehw run' or an export folder)")
        net = _from_state(i) if i.is_file() else _from_state(f)
        if i.is_file() and f.is_file():
            net._float = _float_part(f)[:2]
        net.source = path
        return net
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such run folder, state file or export folder")
    return _from_state(path)


# ----- training --------------------------------------------------------------------------------

def train(dataset: str = "mnist-sample", *, options: NetworkOptions | None = None,
          formats: NumberFormats | None = None, out: str | Path = "runs", data_dir: str | Path | None = None,
          seed: int = 0, integer: bool = True, hardware: bool = False, train_limit: int | None = None,
          test_limit: int | None = None, progress: bool = True) -> Network:
    """Train a network: the same flow as ``spykehw run`` (:func:`spykehw.flow.run_flow`).

    Parameters
    ----------
    dataset : str
        ``"mnist-sample"`` (embedded), ``"mnist"``, ``"emnist"`` or ``"emnist-balanced"``.
    options : NetworkOptions, optional
        Default: the authors' settings for the dataset (MNIST H=1000, 40 epochs; EMNIST H=1500,
        35 epochs).
    formats : NumberFormats, optional
        The integer model's formats (default the ``fpga-16`` preset).
    out : str or Path
        Where the run folder is created (``<out>/run-<time>/``).
    data_dir : str or Path, optional
        Folder of the real IDX files.
    seed : int
        EMNIST split seed.
    integer, hardware : bool
        Also train the integer model; also generate and co-simulate the RTL (as ``spykehw run``).
    train_limit, test_limit : int, optional
        Use only the first images of each split.
    progress : bool
        Progress lines on stderr.

    Returns
    -------
    Network
        The trained network, loaded from its run folder (``net.source``).
    """
    if options is None:
        options = NetworkOptions(classifier=classifier_defaults(dataset))
    cfg = RunConfig(dataset=dataset, data_dir=None if data_dir is None else Path(data_dir), seed=seed,
                    options=options, formats=formats or preset(DEFAULT_PRESET), integer=integer,
                    hardware=integer and hardware, train_limit=train_limit, test_limit=test_limit,
                    out_root=Path(out).resolve(), progress=progress)
    return load(run_flow(cfg).path)
