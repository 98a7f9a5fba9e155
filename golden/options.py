"""Algorithm options of the SpykeFlow network: what the model computes, not in which numbers.

These options are shared by the float reference and the integer golden model. Every place where
the authors' code departs from the paper (``../shared/spec/SPYKEFLOW_REFERENCE.md``, marked
[≠paper] there) is a named field here, and the defaults follow the authors' code. The number
formats of the integer model live in :mod:`spykehw.golden.formats`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import SpykehwError

__all__ = [
    "TIME_STEPS",
    "classifier_defaults",
    "EncoderOptions",
    "ConvOptions",
    "PoolOptions",
    "ClassifierOptions",
    "NetworkOptions",
    "CONV1",
    "CONV2",
    "OptionsError",
    "dotted_keys",
]


TIME_STEPS = 12
"""Time steps per image: 10 populated equal-count latency bins and 2 empty (spec 2)."""


class OptionsError(SpykehwError, ValueError):
    """An invalid option value, named by its dotted key."""


def _check(cond: bool, key: str, msg: str) -> None:
    if not cond:
        raise OptionsError(f"{key}: {msg}")


@dataclass(frozen=True)
class EncoderOptions:
    """Latency encoding of a 28x28 u8 image into 2x27x27 first-spike times (spec section 2).

    image_mode:
        ``"viridis"`` (authors' code): the per-image min-max normalised image goes through the
        viridis colour map and back to grey (VIRIDIS_L LUT, range 30..215) before the DoG.
        ``"raw"`` (paper): the raw 0..255 pixels.
    local_contrast:
        authors' code divides each thresholded DoG map by its 17x17 box mean before ranking
        (spec 2.6). ``False`` ranks the thresholded DoG values themselves (paper).
    dog_threshold:
        a DoG response counts if it is ``>= dog_threshold`` (authors' code; paper says ``>``).
    border:
        only rows/cols ``border .. 26-border`` may spike (2 in the authors' code).
    bins:
        number of populated equal-count time bins (10); ``steps`` is the number of time steps
        per image (12: bins 10 and 11 are always empty).
    """

    image_mode: str = "viridis"
    local_contrast: bool = True
    dog_threshold: float = 50.0
    border: int = 2
    bins: int = 10
    steps: int = TIME_STEPS

    def __post_init__(self) -> None:
        _check(self.image_mode in ("viridis", "raw"), "encoder.image_mode",
               f"must be 'viridis' or 'raw', not {self.image_mode!r}")
        _check(self.dog_threshold > 0, "encoder.dog_threshold", "must be > 0")
        _check(0 <= self.border < 13, "encoder.border", "must be in 0..12")
        _check(1 <= self.bins <= self.steps, "encoder.bins", "must be in 1..steps")
        _check(self.steps <= 127, "encoder.steps", "must be <= 127 (stored as int8)")


@dataclass(frozen=True)
class ConvOptions:
    """One STDP-trained convolutional layer with lateral inhibition (spec sections 3, 4 and 6).

    Conv1 and Conv2 are this same layer with other parameters (:data:`CONV1`, :data:`CONV2`).

    competition:
        ``"greedy"`` (authors' code): repeatedly take the first row-major global maximum of the
        per-location best potential; its map wins; a map whose best neuron lies in an earlier
        winner's window may still win elsewhere. ``"per_map"`` (paper): each map's own maximum
        competes, and a map whose maximum lies in an earlier winner's window gets no winner.
    step0_doubling:
        the authors' learning-rate schedule fires at global step 0, so the rate used from step 1
        on is ``2 * a_plus``. ``False`` starts the doubling schedule at its first period.
    rate_cap:
        ``a_plus`` never exceeds this (0.15 in the code; ``None`` = no cap, as in the paper).
    homeostasis:
        the authors' map suppression (spec 4.3): a map with more than
        ``homeostasis_const / homeostasis_factor`` wins in the current window of
        ``homeostasis_const`` images is excluded from competition and its weights decay by
        ``homeostasis_coeff * w * (1 - w)`` at every step with candidates.
    last_snapshot_weights:
        the authors hand ``evol_weights[-1]`` (the last snapshot) to inference, not the final
        weights.
    """

    in_channels: int = 2
    in_size: int = 27
    maps: int = 30
    kernel: int = 5
    threshold: float = 15.0
    inhibition_window: int = 11
    a_plus: float = 0.002
    a_minus_ratio: float = 0.75
    lr_inc_rate: int = 500
    rate_cap: float | None = 0.15
    step0_doubling: bool = True
    homeostasis: bool = True
    homeostasis_const: int = 5
    homeostasis_factor: float = 3.0
    homeostasis_coeff: float = 0.003
    sample_interval: int = 200
    last_snapshot_weights: bool = True
    competition: str = "greedy"
    init_mean: float = 0.8
    init_std: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        _check(self.in_channels >= 1, "conv.in_channels", "must be >= 1")
        _check(self.kernel >= 1, "conv.kernel", "must be >= 1")
        _check(self.in_size >= self.kernel, "conv.in_size", "must be >= kernel")
        _check(1 <= self.maps <= 1024, "conv.maps", "must be in 1..1024")
        _check(self.threshold > 0, "conv.threshold", "must be > 0")
        _check(self.inhibition_window >= 1 and self.inhibition_window % 2 == 1,
               "conv.inhibition_window", "must be a positive odd number")
        _check(0 < self.a_plus < 1, "conv.a_plus", "must be in (0, 1)")
        _check(self.a_minus_ratio == 0.75, "conv.a_minus_ratio",
               "is 0.75 in the reference (hard-coded there) and in the integer model (A- = 3*2^-(s+2))")
        _check(self.lr_inc_rate >= 1, "conv.lr_inc_rate", "must be >= 1")
        _check(self.rate_cap is None or 0 < self.rate_cap < 1, "conv.rate_cap", "must be in (0, 1) or None")
        _check(self.homeostasis_const >= 1, "conv.homeostasis_const", "must be >= 1")
        _check(self.homeostasis_factor > 0, "conv.homeostasis_factor", "must be > 0")
        _check(0 <= self.homeostasis_coeff < 1, "conv.homeostasis_coeff", "must be in [0, 1)")
        _check(self.sample_interval >= 1, "conv.sample_interval", "must be >= 1")
        _check(self.competition in ("greedy", "per_map"), "conv.competition",
               f"must be 'greedy' or 'per_map', not {self.competition!r}")
        _check(0 < self.init_mean < 1, "conv.init_mean", "must be in (0, 1)")

    @property
    def out_size(self) -> int:
        """Output side of the VALID convolution (23 for Conv1, 7 for Conv2)."""
        return self.in_size - self.kernel + 1

    @property
    def pool_size(self) -> int:
        """Side of the 2x2 stride-2 VALID pool (11 for Conv1, 3 for Conv2)."""
        return self.out_size // 2

    @property
    def features(self) -> int:
        """Length of the feature vector, index ``m * pool_size**2 + i * pool_size + j``."""
        return self.maps * self.pool_size ** 2

    @property
    def inhibition_offset(self) -> int:
        return self.inhibition_window // 2

    @property
    def homeostasis_limit(self) -> float:
        """A map is suppressed when its wins in the window are ``> homeostasis_limit``."""
        return self.homeostasis_const / self.homeostasis_factor

    @property
    def snapshot_period(self) -> int:
        """Snapshots are taken at global steps ``t % snapshot_period == 0`` (2399 for Conv1)."""
        return 12 * self.sample_interval - 1

    @property
    def lr_period(self) -> int:
        """The rate doubles at steps ``s % lr_period == 0`` (5999 for Conv1)."""
        return 12 * self.lr_inc_rate - 1


CONV1 = ConvOptions()
"""Conv1 as in the authors' ``main_emnist.py`` (2x27x27 -> 30x23x23, 11x11 competition)."""

CONV2 = ConvOptions(
    in_channels=30, in_size=11, maps=200, kernel=5, inhibition_window=3, a_plus=0.0002,
    lr_inc_rate=1500, homeostasis_const=3, homeostasis_factor=3.0, homeostasis_coeff=0.0003,
)
"""Conv2 as in the authors' ``main_emnist.py`` (30x11x11 -> 200x7x7, 3x3 competition)."""


@dataclass(frozen=True)
class PoolOptions:
    """Pool1 as the authors' code can run it (spec 5): 2x2 stride-2 max pooling of the new conv
    spikes' potentials, a pool neuron spiking when the pooled value is ``>= threshold``.

    lateral_inhibition:
        ``pool_lateral_inh`` (net3, net5): the conv layer's lateral inhibition applied to the
        pool: at each pool location the map with the largest pooled potential (lowest index on
        ties) spikes, at most once per image. ``False`` (net2, net4, the classification
        pipeline): a pool neuron spikes at every step in which one of its 2x2 inputs fires
        (up to 4 spikes per image).
    spike_accumulation:
        ``pool_spike_accum``: the pooled potential accumulates over the image's steps, so a pool
        neuron keeps spiking at every step after its first. With lateral inhibition it changes
        nothing (the location is blocked after its first spike, and at that step the
        accumulated and the instantaneous pooled values are equal).
    """

    lateral_inhibition: bool = False
    spike_accumulation: bool = False


@dataclass(frozen=True)
class ClassifierOptions:
    """The binary-activation classifier and its training (spec section 7).

    gradient:
        ``"sg1"``: surrogate ``1[0 <= z2 <= sg1_window]`` (window 0.125, closed at both ends);
        ``"sg2"``: surrogate ``1[z2 >= 0]``; ``"relu"``: actual gradient of a ReLU hidden layer
        (no binary activation, no floor), as in the authors' ``*_actual_gradient`` notebooks.
    cost:
        ``"softmax_ce"`` (default, on floored logits for sg1/sg2) or ``"quadratic"`` (ReLU output
        and quadratic cost with ``delta3 = a3 - y``, the MNIST actual-gradient notebook).
    dropout:
        probability of dropping a hidden unit during training; a dropped unit gets ``z2 = -1``
        and there is no ``1/(1-p)`` rescaling (authors' code).
    init:
        ``"truncated_normal"`` (std 0.01, redrawn beyond 2 std) or ``"uniform_fan_in"``
        (``U(+-sqrt(4/fan_in))``, EMNIST actual-gradient notebook).
    val_fraction:
        the validation set is the first ``int(val_fraction * N)`` training rows (not shuffled).
    class_weights:
        ``"uniform"`` (authors' code): every training sample counts the same. ``"balanced"``: each
        sample's ``delta3`` (so every gradient it contributes) is scaled by ``N / (C * n_c)``,
        ``n_c`` the training rows of its class ``c`` among the ``N`` trained rows, so every
        class weighs the same in the cost (for unbalanced data such as EMNIST bymerge; not in
        the authors' code or the paper).
    """

    hidden: int = 1000
    eta: float = 0.01
    epochs: int = 40
    batch: int = 5
    dropout: float = 0.5
    gradient: str = "sg1"
    cost: str = "softmax_ce"
    sg1_window: float = 0.125
    init: str = "truncated_normal"
    init_std: float = 0.01
    val_fraction: float = 0.09
    class_weights: str = "uniform"
    seed: int = 0

    def __post_init__(self) -> None:
        _check(self.hidden >= 1, "classifier.hidden", "must be >= 1")
        _check(self.eta > 0, "classifier.eta", "must be > 0")
        _check(self.epochs >= 1, "classifier.epochs", "must be >= 1")
        _check(self.batch >= 1, "classifier.batch", "must be >= 1")
        _check(0 <= self.dropout < 1, "classifier.dropout", "must be in [0, 1)")
        _check(self.gradient in ("sg1", "sg2", "relu"), "classifier.gradient",
               f"must be 'sg1', 'sg2' or 'relu', not {self.gradient!r}")
        _check(self.cost in ("softmax_ce", "quadratic"), "classifier.cost",
               f"must be 'softmax_ce' or 'quadratic', not {self.cost!r}")
        _check(self.cost == "softmax_ce" or self.gradient == "relu", "classifier.cost",
               "'quadratic' goes with gradient='relu' only")
        _check(self.init in ("truncated_normal", "uniform_fan_in"), "classifier.init",
               f"must be 'truncated_normal' or 'uniform_fan_in', not {self.init!r}")
        _check(0 <= self.val_fraction < 1, "classifier.val_fraction", "must be in [0, 1)")
        _check(self.class_weights in ("uniform", "balanced"), "classifier.class_weights",
               f"must be 'uniform' or 'balanced', not {self.class_weights!r}")


def classifier_defaults(dataset: str) -> ClassifierOptions:
    """The authors' classifier settings per task (spec 7): MNIST SG1 notebook (H=1000, eta 0.01,
    40 epochs) or EMNIST SG1 notebook (H=1500, eta 0.02, 35 epochs)."""
    if dataset.startswith("emnist"):
        return ClassifierOptions(hidden=1500, eta=0.02, epochs=35)
    return ClassifierOptions(hidden=1000, eta=0.01, epochs=40)


@dataclass(frozen=True)
class NetworkOptions:
    """Everything the SpykeFlow pipeline computes, one frozen object (recorded in every output)."""

    encoder: EncoderOptions = field(default_factory=EncoderOptions)
    conv: ConvOptions = field(default_factory=ConvOptions)
    classifier: ClassifierOptions = field(default_factory=ClassifierOptions)
    stdp_images: int = 6000
    pool1: PoolOptions = field(default_factory=PoolOptions)
    conv2: ConvOptions = field(default_factory=lambda: CONV2)
    conv2_images: int = 35000
    """Images (first of the training order) for Conv2 STDP: 35,000 as the authors' net4."""
    conv2_epochs: int = 1

    def __post_init__(self) -> None:
        _check(self.stdp_images >= 1, "stdp_images", "must be >= 1")
        _check(self.conv.in_size == 27 and self.conv.in_channels == 2, "conv",
               "the network's first layer takes the encoder's 2x27x27 spikes")
        _check(self.conv2.in_channels == self.conv.maps, "conv2.in_channels",
               f"must equal conv.maps ({self.conv.maps}): Conv2 reads the Pool1 maps")
        _check(self.conv2.in_size == self.conv.pool_size, "conv2.in_size",
               f"must equal the Pool1 side ({self.conv.pool_size})")
        _check(self.conv2.out_size >= 2, "conv2.kernel", "leaves no room for a 2x2 pool")
        _check(self.conv2_images >= 1, "conv2_images", "must be >= 1")
        _check(self.conv2_epochs >= 1, "conv2_epochs", "must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "NetworkOptions":
        d = dict(d)
        parts = {"encoder": EncoderOptions, "conv": ConvOptions, "classifier": ClassifierOptions,
                 "pool1": PoolOptions, "conv2": ConvOptions}
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            if key in parts:
                kwargs[key] = _build(parts[key], value, key)
            elif key in {f.name for f in dataclasses.fields(cls)}:
                kwargs[key] = value
            else:
                raise OptionsError(f"{key}: unknown option")
        return cls(**kwargs)

    def replace(self, **changes: Any) -> "NetworkOptions":
        """Return a copy with dotted keys changed, e.g. ``replace(**{"conv.homeostasis": False})``."""
        d = self.to_dict()
        for dotted, value in changes.items():
            node = d
            *path, last = dotted.split(".")
            for p in path:
                if p not in node or not isinstance(node[p], dict):
                    raise OptionsError(f"{dotted}: unknown option")
                node = node[p]
            if last not in node:
                raise OptionsError(f"{dotted}: unknown option")
            node[last] = value
        return NetworkOptions.from_dict(d)


def dotted_keys(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested settings dict as ``{"section.field": value}``: the keys of ``--set``, of options
    files and of error messages (also for number formats and vector-file headers)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(dotted_keys(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _type_error(key: str, want: str, value: Any) -> OptionsError:
    return OptionsError(f"{key}: expected {want}, found {value!r}")


def typed_value(key: str, kind: str, value: Any) -> Any:
    """``value`` checked against the field's annotation ``kind`` (ints are accepted for floats,
    the string ``"none"`` for ``None``); raises :class:`OptionsError` naming ``key``."""
    if kind == "float | None":
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            return None
        kind = "float"
    if kind == "bool":
        if not isinstance(value, bool):
            raise _type_error(key, "true or false", value)
    elif kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            raise _type_error(key, "an integer", value)
    elif kind == "float":
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value \
                or value in (float("inf"), float("-inf")):
            raise _type_error(key, "a finite number", value)
        return float(value)
    elif kind == "str":
        if not isinstance(value, str):
            raise _type_error(key, "a string", value)
    return value


def _build(klass: type, value: Any, prefix: str) -> Any:
    if isinstance(value, klass):
        return value
    if not isinstance(value, dict):
        raise OptionsError(f"{prefix}: expected a table, found {type(value).__name__}")
    kinds = {f.name: f.type for f in dataclasses.fields(klass)}
    kwargs = {}
    for k, v in value.items():
        if k not in kinds:
            raise OptionsError(f"{prefix}.{k}: unknown option (known: {', '.join(kinds)})")
        kwargs[k] = typed_value(f"{prefix}.{k}", kinds[k], v)
    try:
        return klass(**kwargs)
    except OptionsError as e:  # ConvOptions names its keys "conv.": say which layer's
        head, _, rest = str(e).partition(".")
        if head != prefix and head in ("conv",):
            raise OptionsError(f"{prefix}.{rest}") from None
        raise


