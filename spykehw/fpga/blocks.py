"""How to build each RTL block for an FPGA study, and where its cycle and traffic figures come from.

A :class:`BlockSettings` (number formats, conv parallelism, classifier lanes, class and hidden
counts, benchmark outputs) turns into one :class:`Block` per requested block: a factory for the
Amaranth component, its Verilog module name, and two figures that the report turns into
images/s and external-memory bandwidth, each a :class:`Figure` that says where it comes from:

``cycles``
    clock cycles per image. Softmax: exact, its own ``cycles_per_image``. Conv core: measured
    by :mod:`spykehw.sim.conv.bench` when its output is given (``--bench``, read by
    :mod:`spykehw.fpga.bench`), else an upper bound from the core's documented schedule.
    Classifier: measured by :mod:`spykehw.sim.classifier.bench` when given, else its own timing
    model (``ClassifierConfig.cycles_hidden``) at a measured or assumed number of active
    features.
``external_bytes``
    bytes fetched from external memory per image (0 for blocks whose parameters live on chip;
    the classifier streams ``W2`` rows: active features x ``ClassifierConfig.bytes_per_row``).

Without the ``hw`` extra (Amaranth) a block raises :class:`BlockUnavailable` naming the
missing module; ``all`` builds every block it can and lists the others in :attr:`BlockSet.missing`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

from ..export.host import window_words
from ..golden.classifier_int import IntClassifier
from ..golden.design_point import DesignPoint
from ..golden.errors import SpykehwError
from ..golden.formats import NumberFormats, preset
from ..golden.options import CONV1

__all__ = [
    "BLOCKS",
    "BLOCK_CHOICES",
    "VARIANTS",
    "BlockError",
    "BlockUnavailable",
    "BlockSettings",
    "Figure",
    "Block",
    "BlockSet",
    "build_blocks",
    "conv_cycles_bound",
    "softmax_logit_bits",
    "classifier_cycles_model",
    "DEFAULT_ACTIVE_FEATURES",
    "images_per_second",
]

BLOCKS = ("conv", "classifier", "softmax", "accelerator")
VARIANTS = ("on-chip", "external")
BLOCK_CHOICES = BLOCKS + ("all",)
# Active features per image assumed by the classifier's cycle and traffic model when no
# benchmark supplies a measured figure: the upper end of the 90..170 that rtl/classifier.py
# states for Conv1 on MNIST.
DEFAULT_ACTIVE_FEATURES = 170


class BlockError(SpykehwError, ValueError):
    """A block setting that cannot be built (names the option)."""


class BlockUnavailable(BlockError):
    """The block's RTL module does not exist yet."""


@dataclass(frozen=True)
class BlockSettings:
    """What the command line fixes for every block.

    ``parallelism`` is the conv core's ``L`` (maps per cycle, a divisor of 30 for Conv1);
    ``lanes`` the classifier's parallel lanes; ``classes`` and ``hidden`` size the classifier and
    the softmax (MNIST: 10 classes, 1000 hidden units, the defaults of ``ClassifierOptions``);
    ``active_features`` the active Conv1 features per image that the classifier's cycle and
    traffic model assumes (default 170, the upper end of the 90..170 stated in
    ``rtl/classifier.py``) when no benchmark measures it; ``bench`` the benchmark outputs read
    with ``--bench`` (:mod:`spykehw.fpga.bench`), whose measured figures take precedence.
    """

    formats: NumberFormats
    parallelism: int = 1
    lanes: int = 1
    classes: int = 10
    hidden: int = 1000
    steps: int = 12
    conv_options: Any = None        # ConvOptions of the conv layer; None = Conv1
    max_spikes_per_input: int = 1   # conv: how often an input spikes per image (Conv2: 4, Pool1 inputs)
    active_features: int = DEFAULT_ACTIVE_FEATURES  # classifier model: active features per image (see below)
    bench: Any = None               # spykehw.fpga.bench.BenchData: measured figures (--bench)
    variant: str = "on-chip"        # accelerator: where W2 lives (DesignPoint.weights)
    export: Any = None              # accelerator: a spykehw.export.Export (design point, initial weights)
    learning: bool = False          # conv: the learning core (STDP unit and snapshot copy)
    potential_memory: str = "block"  # conv: ConvCoreConfig.potential_memory ("spram": the UP5K core)

    def design_point(self) -> DesignPoint:
        """The accelerator's design point: the export's, or Conv1 with these settings."""
        if self.export is not None:
            return self.export.point
        return DesignPoint(formats=self.formats, hidden=self.hidden, classes=self.classes, steps=self.steps,
                           conv_lanes=self.parallelism, classifier_lanes=self.lanes, weights=self.variant)

    def to_dict(self) -> dict[str, Any]:
        import dataclasses
        conv = None if self.conv_options is None else dataclasses.asdict(self.conv_options)
        return {"formats": self.formats.name, "parallelism": self.parallelism,
                "lanes": self.lanes, "classes": self.classes, "hidden": self.hidden,
                "steps": self.steps, "conv_layer": "conv1" if conv is None else conv,
                "max_spikes_per_input": self.max_spikes_per_input,
                "active_features": self.active_features,
                "bench_files": list(self.bench.files) if self.bench is not None else [],
                "variant": self.variant,
                "export": None if self.export is None else str(self.export.path),
                "learning": self.learning, "potential_memory": self.potential_memory}


@dataclass(frozen=True)
class Figure:
    """A number with its provenance: ``kind`` is ``exact``, ``measured``, ``model`` (a timing
    model with a stated assumption), ``bound`` or ``unavailable`` (then ``value`` is None);
    ``source`` names the model, benchmark or formula."""

    value: float | None
    kind: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "kind": self.kind, "source": self.source}


@dataclass
class Block:
    """One block of a study: ``make()`` builds the Amaranth component (only when the flow
    needs it, so that checking settings or reading figures builds no hardware)."""

    kind: str                   # "conv" | "classifier" | "softmax"
    module: str                 # Verilog module name
    make: Callable[[], Any]     # -> wiring.Component with a params() method
    cycles: Figure
    external_bytes: Figure
    bursts_per_image: float = 0.0   # external-memory bursts (one per W2 row fetched)


@dataclass
class BlockSet:
    blocks: list[Block]
    missing: dict[str, str] = field(default_factory=dict)   # kind -> why it is not built


# --- softmax ---------------------------------------------------------------------------------

def softmax_logit_bits(formats: NumberFormats, hidden: int) -> int:
    """Width of the classifier's floored logits, as the integer model defines it
    (:attr:`spykehw.golden.classifier_int.IntClassifier.logit_bits`: worst case of all ``hidden``
    units active with extreme output weights and bias, shifted by ``output_weight_frac``)."""
    import numpy as np


    # The logit width depends only on H and the formats; one feature row is enough.
    zeros = IntClassifier(np.zeros((1, hidden), np.int64), np.zeros(hidden, np.int64),
                          np.zeros((hidden, 2), np.int64), np.zeros(2, np.int64), formats)
    return zeros.logit_bits


def _softmax(s: BlockSettings) -> Block:
    from amaranth.hdl import Fragment

    # hw extra (Amaranth, cocotb): loaded only when this runs
    from ..rtl.softmax import SoftmaxUnit

    unit = SoftmaxUnit(classes=s.classes, logit_bits=softmax_logit_bits(s.formats, s.hidden),
                       softmax_format=s.formats.softmax)
    # The cycle figure is the unit's own property; elaborating the (small) unit here marks it
    # used, so a unit that only supplied its figure raises no UnusedElaboratable warning.
    Fragment.get(unit, None)
    cycles = Figure(unit.cycles_per_image, "exact",
                    "SoftmaxUnit.cycles_per_image = C*(softmax_bits+3)+2 (rtl/softmax.py; "
                    "data-independent, partners never stalling)")
    return Block("softmax", "softmax", lambda: unit, cycles,
                 Figure(0, "exact", "logits arrive on a stream; nothing is fetched"))


# --- conv core -------------------------------------------------------------------------------

def conv_cycles_bound(cfg: Any) -> int:
    """Cycles per image of the conv core, upper bound from the schedule in ``rtl/conv_core.py``.

    Every input spikes ``max_spikes_per_input`` times and no output position fires before the
    end of the image (firing only removes work): input ``(c, y, x)`` with ``n`` output
    positions in its window costs ``max(n*G, 2)`` cycles (``G`` per position, and at least the
    two cycles an input spike spends in the token register while its window is registered);
    ``n*G`` for the ``n`` positions fired (at most ``H*H`` over the image); and per step at
    most ``13 + ceil(log2 L)`` (+1 with several groups): 5 for the end of the step, 4 for
    draining the integration pipeline (stages I, R, X, W), ``3 + ceil(log2 L)`` (+1) for the
    firing pipeline (the comparator tree has one register level per tree level) and 1 for the
    step's first token.

    The UP5K core (``cfg.spram``) picks an item every other cycle (``2G`` per position, plus
    one per input spike waiting for its slot: ``max(2*n*G + 1, 2)``) and sweeps its flag
    memories after every step (``H + 1`` cycles).
    """
    G, C, H, K, T, S = cfg.groups, cfg.channels, cfg.out_size, cfg.kernel, cfg.steps, cfg.in_size

    def inside(i: int) -> int:      # window offsets of input row (or column) i inside the output
        return sum(0 <= i - k < H for k in range(K))

    def cost(n: int) -> int:        # an input spike with n positions in its window
        return max(2 * n * G + 1, 2) if cfg.spram else max(n * G, 2)

    per_input = sum(cost(inside(y) * inside(x)) for y in range(S) for x in range(S))
    per_step = 13 + (cfg.parallelism - 1).bit_length() + (1 if G > 1 else 0)
    sweep = H + 1 if cfg.spram else 0
    return C * cfg.max_spikes_per_input * per_input + G * H * H + T * (per_step + sweep)


def _conv(s: BlockSettings) -> Block:
    try:
        # hw extra (Amaranth, cocotb): loaded only when this runs
        from ..rtl.conv_config import ConvCoreConfig
        from ..rtl.conv_core import ConvCore
    except ModuleNotFoundError as e:   # the hw extra (Amaranth) is optional
        raise BlockUnavailable(f"conv: {e} (install spykehw[hw])") from None

    try:
        cfg = ConvCoreConfig(options=s.conv_options or CONV1, formats=s.formats, steps=s.steps,
                             parallelism=s.parallelism, max_spikes_per_input=s.max_spikes_per_input,
                             learning=s.learning, potential_memory=s.potential_memory)
    except SpykehwError as e:
        raise BlockError(f"--parallelism/--potentials: {e}") from None
    # The flow synthesises for an FPGA: SB_SPRAM256KA itself, not its simulation model.
    make = lambda: ConvCore(cfg, spram_primitive=cfg.spram)  # noqa: E731
    if s.learning:
        # (the inference bound and benchmark do not cover the LEARN phase)
        return Block("conv", "conv_core", make,
                     Figure(None, "unavailable", "training: spykehw cosim learn reports cycles per image"),
                     Figure(0, "exact", "weights and potentials are on chip"))
    measured = None
    if s.bench is not None and (s.conv_options is None or s.conv_options == CONV1):
        measured = s.bench.conv_cycles(s.parallelism, s.formats.name, spram=cfg.spram)
    if measured is not None:
        cycles = Figure(measured[0], "measured", measured[1])
    else:
        cycles = Figure(conv_cycles_bound(cfg), "bound",
                        "upper bound from the ConvCore schedule (rtl/conv_core.py docstring): every "
                        "input spikes, nothing fires early (no --bench measurement for this L)")
    return Block("conv", "conv_core", make, cycles,
                 Figure(0, "exact", "weights and potentials are on chip"))


# --- classifier ------------------------------------------------------------------------------

def classifier_cycles_model(cfg: Any, active: int) -> tuple[int, str]:
    """Cycles per image of the classifier pipeline, from its own timing model.

    The three stages work on different images, so the rate is set by the slowest:
    A = ``ClassifierConfig.cycles_hidden(active)`` (the hidden layer); B at most
    ``H + G + C + 4`` (one cycle per set hidden bit, at least one per word, then the ``C``
    logits, plus the start and the fill of ``OutputLayer``'s four-register pipeline; bounded
    with every hidden bit set); C = ``softmax_cycles``.
    """
    a = cfg.cycles_hidden(active)
    b = cfg.hidden + cfg.groups + cfg.classes + 4
    c = cfg.softmax_cycles
    stage = max((a, "A (hidden layer)"), (b, "B bound (output layer, all hidden bits set)"),
                (c, "C (softmax)"))
    return stage[0], (f"model: max(A={a}, B<={b}, C={c}) = {stage[1]}; A = "
                      f"ClassifierConfig.cycles_hidden({active}), rtl/classifier.py")


def _classifier(s: BlockSettings) -> Block:
    try:
        # hw extra (Amaranth, cocotb): loaded only when this runs
        from ..rtl.classifier import Classifier, ClassifierConfig
    except ModuleNotFoundError as e:   # the hw extra (Amaranth) is optional
        raise BlockUnavailable(f"classifier: {e} (install spykehw[hw])") from None


    # Its input is the conv layer's pooled features (Conv1: 30 maps x 11 x 11 = 3630).
    features = (s.conv_options or CONV1).features
    try:
        cfg = ClassifierConfig(features, s.hidden, s.classes, s.formats, lanes=s.lanes)
    except SpykehwError as e:
        raise BlockError(f"classifier: {e}") from None
    exact, same, path = (None, None, "")
    if s.bench is not None:
        exact, same, path = s.bench.classifier_entry(features, s.hidden, s.classes, s.lanes)
    if exact is not None:
        other = "" if s.formats.name == "fpga-16" else f"; this study is {s.formats.name}"
        where = (f"measured: {path} (spykehw.sim.classifier.bench, {exact['images']} test images, "
                 f"memory latency {exact['memory_latency']} cycles, at the benchmark's preset "
                 f"fpga-16{other})")
        cycles = Figure(float(exact["cycles_per_image"]), "measured", where + ", steady state")
        # The rows fetched per image do not depend on the formats, their width does: scale the
        # benchmark's bytes by this study's row size over the benchmark preset's.
        bench_row = ClassifierConfig(features, s.hidden, s.classes, preset("fpga-16"), lanes=s.lanes).bytes_per_row
        scale = "" if cfg.bytes_per_row == bench_row else f", scaled by {cfg.bytes_per_row:g}/{bench_row:g} bytes per row"
        ext = Figure(float(exact["bytes_per_image"]) * cfg.bytes_per_row / bench_row, "measured",
                     where + f"; {exact['active_features_mean']:.1f} active features on average{scale}")
    else:
        if same is not None:
            active = round(same["active_features_mean"])
            why = f"{active} active features = the mean measured in {path}"
        else:
            active = s.active_features
            why = f"{active} active features (assumed: --active-features)"
        value, source = classifier_cycles_model(cfg, active)
        cycles = Figure(value, "model", f"{source}; {why}")
        ext = Figure(active * cfg.bytes_per_row, "model",
                     f"{why} x {cfg.bytes_per_row:g} bytes per W2 row (ClassifierConfig.bytes_per_row: "
                     f"G={cfg.groups} words of {cfg.lanes} x {cfg.hidden_weight_bits} bits)")
    rows = float(exact["active_features_mean"]) if exact is not None else float(active)
    return Block("classifier", "classifier", lambda: Classifier(cfg), cycles, ext, bursts_per_image=rows)


# --- the whole accelerator ----------------------------------------------------------------------

def _accelerator(s: BlockSettings) -> Block:
    try:
        # hw extra (Amaranth, cocotb): loaded only when this runs
        from ..rtl.accelerator import Accelerator
        from ..rtl.design import classifier_config, conv_core_config
    except ModuleNotFoundError as e:   # the hw extra (Amaranth) is optional
        raise BlockUnavailable(f"accelerator: {e} (install spykehw[hw])") from None
    try:
        point = s.design_point()
        conv_core_config(point)             # refuses a conv part the core cannot build
        clf_cfg = classifier_config(point)
    except SpykehwError as e:
        raise BlockError(f"accelerator: {e}") from None
    init = None if s.export is None else window_words(s.export)
    external = point.weights == "external"
    on_chip = Figure(0, "exact", "every weight is in block RAM")
    measured = None if s.bench is None else s.bench.accelerator_entry(point.id32)
    if measured is not None:
        doc, path = measured
        where = (f"measured: {path} (spykehw cosim accelerator, {doc.get('images')} {doc.get('dataset')} test "
                 f"images on {doc.get('simulator')}, random stalls on every bus")
        cycles = Figure(float(doc["busy_cycles_per_image"]), "measured", where + "; busy cycles per image)")
        ext = (Figure(float(doc["w2_bytes_per_image"]), "measured",
                      where + f"; W2 beats counted at the AXI4 memory model, {doc['w2_bursts_per_image']:.1f} "
                              "bursts per image)") if external else on_chip)
        bursts = float(doc.get("w2_bursts_per_image") or 0) if external else 0.0
    else:
        conv = _conv(replace(s, parallelism=point.conv_lanes, formats=point.formats)).cycles
        clf, clf_src = classifier_cycles_model(clf_cfg, s.active_features)
        value = max(conv.value or 0, clf)
        cycles = Figure(value, "model", f"max(conv core {conv.kind} {conv.value:.0f}, classifier model {clf}): "
                                        "the blocks work on consecutive images")
        ext = (Figure(s.active_features * clf_cfg.bytes_per_row, "model",
                      f"{s.active_features} active features (assumed) x {clf_cfg.bytes_per_row:g} bytes per W2 row")
               if external else on_chip)
        bursts = float(s.active_features) if external else 0.0
    return Block("accelerator", "accelerator", lambda: Accelerator(point, weights=init), cycles, ext,
                 bursts_per_image=bursts)


_BUILDERS: dict[str, Callable[[BlockSettings], Block]] = {
    "conv": _conv, "classifier": _classifier, "softmax": _softmax, "accelerator": _accelerator,
}


def build_blocks(which: str, settings: BlockSettings) -> BlockSet:
    """The blocks for ``--block which``.

    ``all``: the inference pipeline as it would share one FPGA, every block that exists, in
    pipeline order: the conv core and the classifier (which contains its own softmax unit);
    the stand-alone softmax only when there is no classifier yet.
    """
    if which not in BLOCK_CHOICES:
        raise BlockError(f"--block: unknown block {which!r} (known: {', '.join(BLOCK_CHOICES)})")
    if which != "all":
        return BlockSet([_BUILDERS[which](settings)])
    out = BlockSet([])
    for kind in ("conv", "classifier"):
        try:
            out.blocks.append(_BUILDERS[kind](settings))
        except BlockUnavailable as e:
            out.missing[kind] = str(e)
    if "classifier" in out.missing:
        out.blocks.append(_softmax(settings))
    if not out.blocks:
        raise BlockUnavailable("--block all: no block is available: " + "; ".join(out.missing.values()))
    return out


def images_per_second(fmax_mhz: float | None, cycles: float | None) -> float | None:
    """Images per second at ``fmax_mhz`` for ``cycles`` per image (None if either is unknown)."""
    if not fmax_mhz or not cycles:
        return None
    return fmax_mhz * 1e6 / cycles
