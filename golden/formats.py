"""The one number-format config of the integer golden model, the RTL and the vector files.

Every integer format, rounding and overflow rule of spykehw is defined here, once (DESIGN.md,
contract 1). The README's "Number formats" section is written from this docstring.

Formats
-------
Image
    u8 pixels, 0..255 (after the optional viridis LUT, still u8). The 28->27 area resize is exact
    integer arithmetic: ``(sum K_r K_c g + 392) // 784`` (round half up).
DoG
    kernel coefficients ``round_half_up(k * 2**dog_frac_bits)``, signed, with the centre
    coefficient corrected so the kernel sums to 0 like the float one; the filtered value ``R``
    is an exact integer sum; a pixel counts if ``R >= dog_threshold * 2**dog_frac_bits``.
    Ranking with local contrast uses the exact comparison ``R1 * S2`` vs ``R2 * S1`` (``S`` the
    17x17 box sum of the thresholded map, products compared exactly in 128 bits) and ties go to
    the lower flat index.
Conv weights
    unsigned ``UQ0.weight_bits``: integer ``w`` in ``0 .. 2**weight_bits - 1`` means
    ``w / 2**weight_bits``. Initial weights are ``round_half_up(w_float * 2**weight_bits)``
    saturated to that range.
Potentials
    unsigned integers in the weight's units; the threshold is
    ``round_half_up(threshold * 2**weight_bits)`` and a neuron fires when ``V >= threshold``.
    The width is derived, never configured: ``V <= inputs * max_spikes * (2**weight_bits - 1)``
    (see :meth:`NumberFormats.potential_bits`), so a potential can never overflow.
STDP
    ``p = w * (2**weight_bits - w)`` (exact, ``w(1-w)`` with ``2*weight_bits`` fraction bits).
    LTP adds ``rnd(p >> (weight_bits + s))``, LTD subtracts ``rnd(3p >> (weight_bits + s + 2))``
    (A- = 0.75 A+), where ``A+ = 2**-s``; ``s`` starts at ``stdp_shift``, drops by one at each
    doubling of the schedule and never goes below ``stdp_shift_min`` (the cap). The homeostasis
    decay subtracts ``rnd(homeostasis_mult * p >> (weight_bits + homeostasis_shift))``. ``rnd``
    is ``stdp_rounding``: ``truncate`` (floor), ``half_up`` (add half an LSB, then floor) or
    ``stochastic`` (add the low bits of the LFSR, then floor; see :mod:`spykehw.golden.fixed`).
    The result saturates to ``0 .. 2**weight_bits - 1``.
Conv2
    the same weight and potential formats as Conv1 (``conv.weight_bits``; the potential width
    derived with inputs spiking up to 4 times without Pool1 inhibition, 12 with accumulation,
    once with inhibition); its STDP rule is the one above with its own constants
    ``conv2_stdp`` (A+ = 2**-12 ~ 0.0002 and homeostasis 5 * 2**-14 ~ 0.0003 by default, the
    authors' Conv2 values); :meth:`NumberFormats.conv2_formats` gives the formats a Conv2
    kernel uses (``stdp`` replaced by ``conv2_stdp``).
Classifier
    signed two's complement ``Q(bits-frac).frac`` weights and biases, quantized with
    round-half-up and the ``quantize_overflow`` policy. The hidden and output accumulators are
    derived from the worst case (all inputs active, every weight at its extreme) and never
    overflow. Hidden bit: ``z2 >= 0``. Output: ``floor(z3) = z3 >> output_frac`` (arithmetic).
Softmax
    ``d = max(logits) - logit >= 0``; ``e = EXP_LUT[d]`` for ``d < exp_lut_entries`` else 0, where
    ``EXP_LUT[d] = round_half_up((2**exp_lut_bits - 1) * exp(-d))``; the softmax word is
    ``min(2**softmax_bits - 1, (e << softmax_bits) // sum(e))`` (unsigned ``UQ0.softmax_bits``,
    division truncates). :func:`spykehw.golden.exp_lut` holds the table.
Ties
    Every argmax takes the lowest index; every scan is row-major.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SpykehwError
from .exp_lut import exp_lut
from .fixed import round_half_up
from .names import UnsafeName, check_safe_name
from .options import dotted_keys

__all__ = [
    "EncoderFormat",
    "ConvFormat",
    "StdpFormat",
    "ClassifierFormat",
    "SoftmaxFormat",
    "NumberFormats",
    "FormatError",
    "PRESETS",
    "DEFAULT_PRESET",
    "preset",
    "load_formats",
    "ROUNDING_MODES",
    "OVERFLOW_POLICIES",
]

ROUNDING_MODES = ("truncate", "half_up", "stochastic")
OVERFLOW_POLICIES = ("saturate", "error")


class FormatError(SpykehwError, ValueError):
    """An invalid or impossible number-format setting, named by its dotted key."""


def _check(cond: bool, key: str, msg: str) -> None:
    if not cond:
        raise FormatError(f"{key}: {msg}")


def _int(value: Any, key: str, lo: int, hi: int) -> None:
    _check(isinstance(value, int) and not isinstance(value, bool), key,
           f"must be an integer, not {value!r}")
    _check(lo <= value <= hi, key, f"must be in {lo}..{hi}, not {value}")


@dataclass(frozen=True)
class EncoderFormat:
    dog_frac_bits: int = 14

    def __post_init__(self) -> None:
        # 24 is also what keeps the ranking exact: |R| * 289 (the 17x17 box sum) stays below
        # 2^62 for every u8 image (tests/test_encoding_ranking.py checks the bound).
        _int(self.dog_frac_bits, "encoder.dog_frac_bits", 0, 24)


@dataclass(frozen=True)
class ConvFormat:
    weight_bits: int = 16

    def __post_init__(self) -> None:
        _int(self.weight_bits, "conv.weight_bits", 2, 24)


@dataclass(frozen=True)
class StdpFormat:
    stdp_shift: int = 9
    stdp_shift_min: int = 3
    rounding: str = "half_up"
    lfsr_seed: int = 0xACE1
    homeostasis_mult: int = 3
    homeostasis_shift: int = 10

    def __post_init__(self) -> None:
        _int(self.stdp_shift, "stdp.stdp_shift", 1, 30)
        _int(self.stdp_shift_min, "stdp.stdp_shift_min", 1, 30)
        _check(self.stdp_shift_min <= self.stdp_shift, "stdp.stdp_shift_min",
               f"the cap shift ({self.stdp_shift_min}) must be <= stdp.stdp_shift ({self.stdp_shift})")
        _check(self.rounding in ROUNDING_MODES, "stdp.rounding",
               f"must be one of {', '.join(ROUNDING_MODES)}, not {self.rounding!r}")
        _int(self.lfsr_seed, "stdp.lfsr_seed", 1, 2**32 - 1)
        _int(self.homeostasis_mult, "stdp.homeostasis_mult", 0, 255)
        _int(self.homeostasis_shift, "stdp.homeostasis_shift", 0, 30)


@dataclass(frozen=True)
class ClassifierFormat:
    hidden_weight_bits: int = 16
    hidden_weight_frac: int = 14
    hidden_bias_bits: int = 16
    output_weight_bits: int = 16
    output_weight_frac: int = 10
    output_bias_bits: int = 16
    quantize_overflow: str = "saturate"

    def __post_init__(self) -> None:
        p = "classifier."
        _int(self.hidden_weight_bits, p + "hidden_weight_bits", 2, 32)
        _int(self.hidden_weight_frac, p + "hidden_weight_frac", 0, 40)
        _int(self.hidden_bias_bits, p + "hidden_bias_bits", 2, 40)
        _int(self.output_weight_bits, p + "output_weight_bits", 2, 32)
        _int(self.output_weight_frac, p + "output_weight_frac", 0, 40)
        _int(self.output_bias_bits, p + "output_bias_bits", 2, 40)
        _check(self.quantize_overflow in OVERFLOW_POLICIES, p + "quantize_overflow",
               f"must be one of {', '.join(OVERFLOW_POLICIES)}, not {self.quantize_overflow!r}")


@dataclass(frozen=True)
class SoftmaxFormat:
    exp_lut_entries: int = 32
    exp_lut_bits: int = 16
    softmax_bits: int = 16

    def __post_init__(self) -> None:
        _int(self.exp_lut_entries, "softmax.exp_lut_entries", 2, 4096)
        _int(self.exp_lut_bits, "softmax.exp_lut_bits", 2, 32)
        _int(self.softmax_bits, "softmax.softmax_bits", 1, 32)
        _check(self.exp_lut_bits + self.softmax_bits <= 62, "softmax.softmax_bits",
               "exp_lut_bits + softmax_bits must be <= 62 (the dividend e << softmax_bits)")


_PARTS = {
    "encoder": EncoderFormat,
    "conv": ConvFormat,
    "stdp": StdpFormat,
    "classifier": ClassifierFormat,
    "softmax": SoftmaxFormat,
    "conv2_stdp": StdpFormat,
}


def _conv2_stdp() -> StdpFormat:
    # The authors' Conv2: A+ = 0.0002 (2^-12 = 0.000244), homeostasis 0.0003 (5 * 2^-14).
    return StdpFormat(stdp_shift=12, stdp_shift_min=3, homeostasis_mult=5, homeostasis_shift=14)


@dataclass(frozen=True)
class NumberFormats:
    """The number-format config: one frozen, validated object (see the module docstring).

    Cross-field checks (impossible combinations) run on construction, so an invalid config
    never reaches the model, the RTL generator or a vector file.
    """

    name: str = "custom"
    encoder: EncoderFormat = field(default_factory=EncoderFormat)
    conv: ConvFormat = field(default_factory=ConvFormat)
    stdp: StdpFormat = field(default_factory=StdpFormat)
    classifier: ClassifierFormat = field(default_factory=ClassifierFormat)
    softmax: SoftmaxFormat = field(default_factory=SoftmaxFormat)
    conv2_stdp: StdpFormat = field(default_factory=_conv2_stdp)

    def __post_init__(self) -> None:
        # The STDP product w*(2^B - w) * 3 and the decay product must fit an int64.
        b = self.conv.weight_bits
        mult = max(self.stdp.homeostasis_mult, self.conv2_stdp.homeostasis_mult)
        _check(2 * b + 2 + max(8, mult.bit_length()) <= 62, "conv.weight_bits",
               f"{b} bits make the STDP product overflow 64-bit integers")
        _check(self.classifier.hidden_weight_frac <= self.classifier.hidden_weight_bits + 16,
               "classifier.hidden_weight_frac", "is implausibly large for the weight width")
        # argmax(softmax words) must equal argmax(logits): the winning word must exceed every
        # other by at least one LSB for up to MAX_CLASSES classes.
        lut = exp_lut(self.softmax)
        gap = lut[0] - lut[1]
        _check(gap > 0, "softmax.exp_lut_bits", "too few bits: EXP_LUT[0] == EXP_LUT[1]")
        _check(gap << self.softmax.softmax_bits >= self.MAX_CLASSES * lut[0], "softmax.softmax_bits",
               f"{self.softmax.softmax_bits} bits cannot keep the argmax of {self.MAX_CLASSES} "
               f"classes (need (EXP_LUT[0]-EXP_LUT[1]) << softmax_bits >= {self.MAX_CLASSES}*EXP_LUT[0])")

    MAX_CLASSES = 47
    """Largest class count whose softmax argmax is guaranteed (EMNIST balanced/bymerge)."""

    # --- derived values -------------------------------------------------------------------

    def weight_max(self) -> int:
        return (1 << self.conv.weight_bits) - 1

    def threshold_int(self, threshold: float) -> int:
        """Firing threshold in potential units: ``round_half_up(threshold * 2**weight_bits)``."""
        return int(round_half_up(threshold * (1 << self.conv.weight_bits)))

    def potential_bound(self, in_channels: int, kernel: int, max_spikes_per_input: int = 1) -> int:
        """Largest potential a neuron can reach in one image: every input of its receptive
        field spiking ``max_spikes_per_input`` times with the largest weight. Conv1 inputs spike
        at most once; Pool1 neurons (the Conv2 input) at most 4 times (spec 5.2)."""
        return in_channels * kernel * kernel * max_spikes_per_input * self.weight_max()

    def potential_bits(self, in_channels: int, kernel: int, max_spikes_per_input: int = 1) -> int:
        """Unsigned width that holds :meth:`potential_bound` (weights are non-negative)."""
        return self.potential_bound(in_channels, kernel, max_spikes_per_input).bit_length()

    def conv2_formats(self) -> "NumberFormats":
        """The formats a Conv2 kernel runs with: these, with ``stdp`` = ``conv2_stdp``."""
        return dataclasses.replace(self, stdp=self.conv2_stdp)

    # --- serialisation --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        """SHA-256 of the formats' content (every field but ``name``, canonical JSON): two
        configs with equal digests drive the model, the RTL and the vectors identically."""
        d = self.to_dict()
        d.pop("name")
        text = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def same_content(self, other: "NumberFormats") -> bool:
        return self.digest() == other.digest()

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, base: "NumberFormats | None" = None) -> "NumberFormats":
        """Build from a (possibly partial) nested dict; missing keys come from ``base``.

        A key ``preset`` names the base preset. Unknown keys raise :class:`FormatError` naming
        the key.
        """
        d = dict(d)
        if "preset" in d:
            base = preset(d.pop("preset"))
        base = base or NumberFormats()
        kwargs: dict[str, Any] = {"name": d.pop("name", base.name if base.name else "custom")}
        for key, value in d.items():
            if key not in _PARTS:
                raise FormatError(f"{key}: unknown key (known: name, preset, {', '.join(_PARTS)})")
            if not isinstance(value, dict):
                raise FormatError(f"{key}: expected a table, found {type(value).__name__}")
        for key, klass in _PARTS.items():
            current = dataclasses.asdict(getattr(base, key))
            for k, v in d.get(key, {}).items():
                if k not in current:
                    raise FormatError(f"{key}.{k}: unknown key (known: {', '.join(current)})")
                current[k] = v
            kwargs[key] = klass(**current)
        return cls(**kwargs)

    def replace(self, **dotted: Any) -> "NumberFormats":
        """Copy with dotted keys changed: ``fmt.replace(**{"conv.weight_bits": 8})``."""
        nested: dict[str, Any] = {}
        for key, value in dotted.items():
            if key == "name":
                nested["name"] = value
                continue
            part, _, leaf = key.partition(".")
            if not leaf:
                raise FormatError(f"{key}: expected a dotted key such as conv.weight_bits")
            nested.setdefault(part, {})[leaf] = value
        nested.setdefault("name", f"{self.name}+" + ",".join(f"{k}={v}" for k, v in dotted.items()))
        return NumberFormats.from_dict(nested, base=self)

    def to_toml(self) -> str:
        lines = [f'name = "{self.name}"']
        for key in _PARTS:
            lines.append(f"\n[{key}]")
            for k, v in dataclasses.asdict(getattr(self, key)).items():
                lines.append(f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}")
        return "\n".join(lines) + "\n"


def _preset(name: str, **dotted: Any) -> NumberFormats:
    nested: dict[str, Any] = {"name": name}
    for key, value in dotted.items():
        part, leaf = key.split("__")
        nested.setdefault(part, {})[leaf] = value
    return NumberFormats.from_dict(nested, base=NumberFormats(name=name))


def _build_presets() -> dict[str, NumberFormats]:
    return {
        # As close to the float reference as the integer model gets; the baseline of the studies.
        "paper-float-equivalent": _preset(
            "paper-float-equivalent",
            encoder__dog_frac_bits=24, conv__weight_bits=24, stdp__rounding="half_up",
            classifier__hidden_weight_bits=24, classifier__hidden_weight_frac=20,
            classifier__hidden_bias_bits=28, classifier__output_weight_bits=24,
            classifier__output_weight_frac=16, classifier__output_bias_bits=28,
            softmax__exp_lut_entries=64, softmax__exp_lut_bits=24, softmax__softmax_bits=24),
        # The default: 16-bit words everywhere, what an FPGA block RAM holds comfortably.
        "fpga-16": _preset("fpga-16"),
        "fpga-8": _preset(
            "fpga-8",
            encoder__dog_frac_bits=6, conv__weight_bits=8, stdp__rounding="stochastic",
            classifier__hidden_weight_bits=8, classifier__hidden_weight_frac=7,
            classifier__hidden_bias_bits=12, classifier__output_weight_bits=8,
            classifier__output_weight_frac=5, classifier__output_bias_bits=12,
            softmax__exp_lut_entries=16, softmax__exp_lut_bits=10, softmax__softmax_bits=8),
        "edge-4": _preset(
            "edge-4",
            encoder__dog_frac_bits=4, conv__weight_bits=4, stdp__rounding="stochastic",
            stdp__stdp_shift_min=2,
            # Fractions from the trained weights' range (spykehw quant, frac rule "range": 7/4
            # on MNIST, 6/4 on EMNIST); with 4 fraction bits most hidden weights round to 0
            # and the classifier is at chance.
            classifier__hidden_weight_bits=4, classifier__hidden_weight_frac=6,
            classifier__hidden_bias_bits=8, classifier__output_weight_bits=4,
            classifier__output_weight_frac=4, classifier__output_bias_bits=8,
            softmax__exp_lut_entries=8, softmax__exp_lut_bits=8, softmax__softmax_bits=8),
    }


DEFAULT_PRESET = "fpga-16"
PRESETS: dict[str, NumberFormats] = {}


def preset(name: str) -> NumberFormats:
    """The named preset (``paper-float-equivalent``, ``fpga-16``, ``fpga-8``, ``edge-4``)."""
    if not PRESETS:
        PRESETS.update(_build_presets())
    try:
        return PRESETS[name]
    except KeyError:
        raise FormatError(f"preset: unknown preset {name!r} (known: {', '.join(PRESETS)})") from None


def load_formats(spec: str | Path) -> NumberFormats:
    """A preset name, or the path of a TOML file (optionally with ``preset = "..."`` as base)."""
    path = Path(spec)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise FormatError(f"{path}: no such config file")
        try:
            data = tomllib.loads(path.read_bytes().decode("utf-8"))
        except UnicodeDecodeError as e:
            raise FormatError(f"{path}: not UTF-8 text (byte {e.start}); a config is a TOML "
                              "file") from None
        except tomllib.TOMLDecodeError as e:
            raise FormatError(f"{path}: not valid TOML ({e})") from None
        except OSError as e:
            raise FormatError(f"{path}: cannot read ({e.strerror})") from None
        try:
            return _named(NumberFormats.from_dict(data, base=preset(DEFAULT_PRESET)),
                          data.get("name"), data.get("preset", DEFAULT_PRESET))
        except (FormatError, UnsafeName) as e:
            raise FormatError(f"{path}: {e}") from None
        except TypeError as e:  # a table whose keys do not fit the dataclass
            raise FormatError(f"{path}: {e}") from None
    return preset(str(spec))


def _named(fmt: NumberFormats, name: Any, base: Any) -> NumberFormats:
    """The loaded config with a name that tells the truth about its content.

    A config's name labels vector files, reports and file names, so it must never claim to be a
    preset it is not: without ``name``, a config equal to its base preset keeps the preset's
    name and one that changes it is called ``<preset>-custom-<first 8 hex of its digest>``; a
    ``name`` equal to a preset's name with other content is refused; every name must be safe
    as part of a file name.
    """
    if not PRESETS:
        PRESETS.update(_build_presets())
    digest = fmt.digest()
    if name is None:
        base_fmt = PRESETS.get(str(base))
        if base_fmt is not None and base_fmt.digest() == digest:
            return fmt
        return dataclasses.replace(fmt, name=f"{base}-custom-{digest[:8]}")
    check_safe_name(name, "name")
    known = PRESETS.get(name)
    if known is not None and known.digest() != digest:
        changed = [k for k, v in dotted_keys(fmt.to_dict()).items()
                   if k != "name" and dotted_keys(known.to_dict()).get(k) != v]
        raise FormatError(f"name: {name!r} is a preset's name but the config differs from it "
                          f"({', '.join(changed)}); remove 'name' (the config is then called "
                          f"{name}-custom-{digest[:8]}) or choose another")
    return fmt
