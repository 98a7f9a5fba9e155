"""Sweep definition -> the list of points to run, each validated before any work starts.

A :class:`Sweep` names the datasets, the base formats (a preset, default ``fpga-16``, or a TOML
formats file), the axes and the stage options. :func:`build_points` turns it into
:class:`Point` records, one per (dataset, repeat, hidden size, number formats); every hidden
size (``--hidden 128,256``) gets the whole grid below, its own float baseline included:

``float``
    the float pipeline (``fmt=None``): the baseline every point is compared with;
``base``
    the base formats unchanged (the acceptance number: fpga-16 vs float);
``conv``
    ``conv.weight_bits`` x ``stdp.rounding`` (every bits value with every rounding mode), the
    classifier and softmax formats of the base;
``classifier``
    hidden and output weight bits together (fractions by :mod:`spykehw.quant.rules`), Conv1 and
    softmax of the base;
``lut``
    ``softmax.exp_lut_entries`` / ``exp_lut_bits`` (optionally ``softmax_bits``), the rest of
    the base;
``custom``
    any dotted overrides of the base (``conv.weight_bits=6,stdp.rounding=stochastic``).

Points with equal settings are merged (the ``conv`` point at the base's own bits and rounding is
the ``base`` point) and keep every axis they belong to. Repeat ``r`` seeds the Conv1 initial
weights (``conv.seed = r``) and the classifier (initial params and dropout,
``classifier.seed = r``); the dataset split and the formats' LFSR seed stay fixed.

Each point has three keys (:func:`point_keys`): its Conv1 stage (trained weights and features,
shared by every point with the same encoder/conv/STDP formats, whatever its hidden size), its
classifier stage (the float classifier trained on those features; its options, the hidden size
among them, are in the key: shared by every point that differs only in classifier or LUT
formats), and its own. Each key hashes everything the result depends on, including the code
version.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..golden.errors import SpykehwError
from ..golden.formats import ROUNDING_MODES, FormatError, NumberFormats, load_formats
from ..golden.option_sets import apply_settings, load_options
from ..golden.options import NetworkOptions
from ..inputs import read_toml
from .rules import FRAC_RULES, provisional_classifier_formats
from .store import stable_key

__all__ = ["SweepError", "Sweep", "Point", "Keys", "AXES", "DATASETS", "SCHEMA",
           "parse_int_list", "parse_str_list", "parse_lut", "parse_overrides", "sweep_from_toml",
           "sweep_from_dict",
           "network_options", "build_points", "point_keys", "formats_key_dict"]

SCHEMA = 1
"""Version of the key layout and the stored records; part of every key."""

AXES = ("float", "base", "conv", "classifier", "lut", "custom")
DATASETS = ("mnist-sample", "mnist", "emnist", "emnist-balanced")


class SweepError(SpykehwError, ValueError):
    """A bad sweep definition (flag or sweep-file key), named by its key."""


@dataclass(frozen=True)
class Sweep:
    """What to run. ``lut`` items are ``(entries, bits, softmax_bits or None)``; ``custom``
    items are tuples of ``(dotted key, value)``; ``epochs``/``hidden`` ``None`` = the authors'
    values per dataset (MNIST 40 epochs H=1000, EMNIST 35 epochs H=1500); several ``hidden``
    sizes make an axis crossed with every other (each size has its own float baseline and
    classifier trainings; Conv1 stages are shared). ``rounding_bits``:
    the conv bits at which every ``rounding`` mode runs; the other conv bits run with the base's
    rounding only (``None``: every conv bits value with every mode)."""

    datasets: tuple[str, ...] = ("mnist-sample",)
    base: str = "fpga-16"
    conv_bits: tuple[int, ...] = (4, 6, 8, 12, 16)
    rounding: tuple[str, ...] = ROUNDING_MODES
    rounding_bits: tuple[int, ...] | None = None
    classifier_bits: tuple[int, ...] = (4, 6, 8, 12, 16)
    frac_rule: str = "range"
    bias_extra: int = 4
    lut: tuple[tuple[int, int, int | None], ...] = ((8, 8, None), (16, 10, None), (32, 16, None))
    custom: tuple[tuple[tuple[str, Any], ...], ...] = ()
    repeats: int = 1
    epochs: int | None = None
    hidden: tuple[int, ...] | None = None
    qat: int = 0
    stdp_images: int = 6000
    train_limit: int | None = None
    test_limit: int | None = None
    options: str = "authors-code"
    """Algorithm options: a preset (``authors-code``, ``paper``) or a TOML options file."""
    settings: tuple[tuple[str, Any], ...] = ()
    """``--set`` changes (dotted key, value), applied after ``options`` and the shortcuts."""

    def __post_init__(self) -> None:
        if not self.datasets:
            raise SweepError("dataset: at least one dataset is needed")
        for d in self.datasets:
            if d not in DATASETS:
                raise SweepError(f"dataset: expected one of {', '.join(DATASETS)}, not {d!r}")
        for r in self.rounding:
            if r not in ROUNDING_MODES:
                raise SweepError(f"rounding: expected one of {', '.join(ROUNDING_MODES)}, not {r!r}")
        if self.conv_bits and not self.rounding:
            raise SweepError("rounding: the conv-bits axis needs at least one rounding mode")
        if self.frac_rule not in FRAC_RULES:
            raise SweepError(f"frac_rule: expected one of {', '.join(FRAC_RULES)}, not {self.frac_rule!r}")
        for key, lo in (("repeats", 1), ("bias_extra", 0), ("qat", 0), ("stdp_images", 1)):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise SweepError(f"{key}: expected an integer >= {lo}, found {v!r}")
        for key in ("epochs", "train_limit", "test_limit"):
            v = getattr(self, key)
            if v is not None and not _is_count(v):
                raise SweepError(f"{key}: expected an integer >= 1, found {v!r}")
        if self.hidden is not None:
            # One size (the API's and old sweep records' ``hidden=1000``) is a list of one.
            sizes = (self.hidden,) if _is_count(self.hidden) else self.hidden
            if not isinstance(sizes, (tuple, list)) or not sizes or not all(_is_count(h) for h in sizes):
                raise SweepError(f"hidden: expected one or more integers >= 1, found {self.hidden!r}")
            object.__setattr__(self, "hidden", tuple(dict.fromkeys(sizes)))
            if any(k == "classifier.hidden" for k, _ in self.settings):
                raise SweepError("hidden: set either the hidden sizes (--hidden, hidden = [...]) or "
                                 "--set classifier.hidden, not both")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


@dataclass(frozen=True)
class Point:
    """One (dataset, repeat, hidden size, formats). ``formats`` is ``None`` for the float
    pipeline; ``hidden`` ``None`` = the options' hidden size (no hidden axis);
    ``classifier_bits`` set means the classifier formats are derived at run time from the
    trained weights (``formats`` then holds provisional classifier fields, see
    :func:`~spykehw.quant.rules.provisional_classifier_formats`)."""

    dataset: str
    repeat: int
    formats: NumberFormats | None
    classifier_bits: int | None = None
    axes: tuple[str, ...] = ()
    label: str = ""
    hidden: int | None = None


@dataclass(frozen=True)
class Keys:
    conv1: str
    classifier: str
    point: str


# --- parsing (flags and sweep files share these) ---------------------------------------------

def _none(text: str) -> bool:
    return text.strip().lower() in ("", "none", "-")


def parse_int_list(text: str, key: str) -> tuple[int, ...]:
    """``"4,6,8"`` -> ``(4, 6, 8)``; ``"none"`` or ``""`` -> ``()`` (axis off)."""
    if _none(text):
        return ()
    out = []
    for item in text.split(","):
        try:
            out.append(int(item))
        except ValueError:
            raise SweepError(f"{key}: expected comma-separated integers, found {item.strip()!r}") from None
    return tuple(dict.fromkeys(out))


def parse_str_list(text: str, key: str) -> tuple[str, ...]:
    if _none(text):
        return ()
    return tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))


def _lut_item(item: str, key: str) -> tuple[int, int, int | None]:
    parts = item.strip().split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        nums = [int(p) for p in parts]
    except ValueError:
        raise SweepError(f"{key}: expected ENTRIES:BITS or ENTRIES:BITS:SOFTMAX_BITS, "
                         f"found {item.strip()!r}") from None
    return nums[0], nums[1], nums[2] if len(nums) == 3 else None


def parse_lut(text: str, key: str = "lut") -> tuple[tuple[int, int, int | None], ...]:
    """``"8:8,16:10,32:16:12"`` -> ``((8, 8, None), (16, 10, None), (32, 16, 12))``."""
    if _none(text):
        return ()
    return tuple(dict.fromkeys(_lut_item(i, key) for i in text.split(",")))


def _value(text: str) -> Any:
    t = text.strip()
    try:
        return int(t, 0)
    except ValueError:
        return t


def parse_overrides(text: str, key: str = "point") -> tuple[tuple[str, Any], ...]:
    """``"conv.weight_bits=6,stdp.rounding=stochastic"`` -> dotted ``(key, value)`` pairs."""
    out = []
    for item in text.split(","):
        k, eq, v = item.partition("=")
        if not eq or "." not in k.strip():
            raise SweepError(f"{key}: expected SECTION.FIELD=VALUE items such as "
                             f"conv.weight_bits=6, found {item.strip()!r}")
        out.append((k.strip(), _value(v)))
    return tuple(out)


def _flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out += _flatten(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", v))
    return out


_TOML_KEYS = {f.name for f in dataclasses.fields(Sweep)} | {"dataset", "point", "points"}


def sweep_from_toml(path: str | Path) -> dict[str, Any]:
    """The :class:`Sweep` fields a sweep file sets (lists may be TOML arrays or the flags'
    comma strings; ``[[point]]`` tables hold custom points as nested or dotted keys)."""
    path = Path(path)
    data = read_toml(path, "sweep file", SweepError)
    out: dict[str, Any] = {}
    for k, v in data.items():
        if k not in _TOML_KEYS:
            raise SweepError(f"{path}: {k}: unknown key (known: {', '.join(sorted(_TOML_KEYS))})")
        try:
            out.update(_toml_value(k, v))
        except SweepError as e:
            raise SweepError(f"{path}: {e}") from None
    return out


def _as_text(v: Any) -> str:
    if isinstance(v, list):
        return ",".join(str(x) for x in v)
    return str(v)


def _toml_value(k: str, v: Any) -> dict[str, Any]:
    if k in ("dataset", "datasets"):
        return {"datasets": parse_str_list(_as_text(v), k)}
    if k in ("conv_bits", "classifier_bits", "rounding_bits", "hidden"):
        return {k: parse_int_list(_as_text(v), k)}
    if k == "rounding":
        return {k: parse_str_list(_as_text(v), k)}
    if k == "lut":
        return {k: parse_lut(_as_text(v), k)}
    if k in ("point", "points", "custom"):
        if not isinstance(v, list) or not all(isinstance(t, dict) for t in v):
            raise SweepError(f"{k}: expected an array of tables ([[point]])")
        pts = []
        for t in v:
            items = tuple(_flatten(t))
            for dk, _ in items:
                if "." not in dk:
                    raise SweepError(f"{k}: {dk}: expected SECTION.FIELD keys (e.g. conv.weight_bits)")
            pts.append(items)
        return {"custom": tuple(pts)}
    if k in ("base", "frac_rule"):
        return {k: str(v)}
    return {k: v}


def sweep_from_dict(d: dict[str, Any]) -> Sweep:
    """Inverse of :meth:`Sweep.to_dict` (JSON lists back to tuples)."""
    d = dict(d)
    for k in ("datasets", "conv_bits", "rounding", "classifier_bits", "rounding_bits", "hidden"):
        if isinstance(d.get(k), list):
            d[k] = tuple(d[k])
    d["lut"] = tuple(tuple(x) for x in d["lut"])
    d["custom"] = tuple(tuple(tuple(kv) for kv in items) for items in d["custom"])
    d["settings"] = tuple(tuple(kv) for kv in d.get("settings", ()))
    return Sweep(**d)


# --- points ----------------------------------------------------------------------------------

def network_options(sweep: Sweep, dataset: str, repeat: int, hidden: int | None = None) -> NetworkOptions:
    """The stage options of one dataset, repeat and hidden size: ``sweep.options`` for the
    dataset (the authors' classifier per task by default), the sweep's epochs, STDP images and
    ``hidden`` (default: the sweep's first hidden size, else the options'), the ``--set``
    changes, and the repeat as the Conv1 and classifier seed."""

    if hidden is None and sweep.hidden:
        hidden = sweep.hidden[0]
    opts = load_options(sweep.options, dataset)
    short = [("classifier.epochs", sweep.epochs), ("classifier.hidden", hidden),
             ("stdp_images", sweep.stdp_images)]
    opts = apply_settings(opts, [(k, v) for k, v in short if v is not None] + list(sweep.settings))
    return opts.replace(**{"conv.seed": repeat, "classifier.seed": repeat})


def _formats(base: NumberFormats, axis: str, what: str, **dotted: Any) -> NumberFormats:
    try:
        return base.replace(**dotted)
    except FormatError as e:
        raise FormatError(f"{axis} {what}: {e}") from None


def _int_value(v: Any, key: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise SweepError(f"{key}: expected integers, found {v!r}")
    return v


def _grid(sweep: Sweep, base: NumberFormats) -> list[tuple[str, NumberFormats | None, int | None, str]]:
    """``(axis, formats, classifier_bits, label)`` for one dataset and repeat."""
    out: list[tuple[str, NumberFormats | None, int | None, str]] = [
        ("float", None, None, "float"), ("base", base, None, f"base {base.name}")]
    for b in sweep.conv_bits:
        crossed = sweep.rounding_bits is None or b in sweep.rounding_bits
        for r in (sweep.rounding if crossed else (base.stdp.rounding,)):
            f = _formats(base, "conv-bits", f"{_int_value(b, 'conv_bits')} with rounding {r}",
                         **{"conv.weight_bits": b, "stdp.rounding": r})
            out.append(("conv", f, None, f"conv {b} {r}"))
    for b in sweep.classifier_bits:
        try:
            f = provisional_classifier_formats(base, _int_value(b, "classifier_bits"),
                                               sweep.frac_rule, sweep.bias_extra)
        except FormatError as e:
            raise FormatError(f"classifier-bits {b}: {e}") from None
        # The preset rule's formats are final now; the range rule's wait for the trained weights.
        out.append(("classifier", f, b if sweep.frac_rule == "range" else None, f"classifier {b}"))
    for entries, bits, sm in sweep.lut:
        dotted = {"softmax.exp_lut_entries": entries, "softmax.exp_lut_bits": bits}
        if sm is not None:
            dotted["softmax.softmax_bits"] = sm
        name = f"{entries}:{bits}" + (f":{sm}" if sm is not None else "")
        f = _formats(base, "lut", name, **dotted)
        out.append(("lut", f, None, f"lut {name}"))
    for items in sweep.custom:
        text = ",".join(f"{k}={v}" for k, v in items)
        f = _formats(base, "point", text, **dict(items))
        out.append(("custom", f, None, f"custom {text}"))
    return out


def build_points(sweep: Sweep) -> list[Point]:
    """Every point of the sweep, merged where equal; raises :class:`FormatError` (naming the
    axis value and the config key) or :class:`SweepError` for an impossible combination."""
    try:
        base = load_formats(sweep.base)
    except FormatError as e:
        raise FormatError(f"base: {e}") from None
    grid = _grid(sweep, base)
    sizes = sweep.hidden or (None,)
    points: list[Point] = []
    for ds in sweep.datasets:
        for r in range(sweep.repeats):
            for h in sizes:
                # Labels name the hidden size only when it is an axis (several sizes).
                prefix = f"H{h} " if len(sizes) > 1 else ""
                merged: dict[str, Point] = {}
                for axis, fmt, cbits, label in grid:
                    ident = stable_key({"f": formats_key_dict(fmt), "c": cbits})
                    if ident in merged:
                        p = merged[ident]
                        if axis not in p.axes:
                            merged[ident] = replace(p, axes=p.axes + (axis,))
                        continue
                    merged[ident] = Point(ds, r, fmt, cbits, (axis,), prefix + label, h)
                points.extend(merged.values())
    return points


def formats_key_dict(fmt: NumberFormats | None, parts: tuple[str, ...] | None = None):
    """The formats as they enter a key: the name is a label, not a setting, so it is left out;
    ``parts`` selects sections (e.g. the Conv1 stage depends on encoder, conv and stdp only)."""
    if fmt is None:
        return None
    d = fmt.to_dict()
    d.pop("name", None)
    return d if parts is None else {k: d[k] for k in parts}


def point_keys(point: Point, opts: NetworkOptions, dataset_id: dict[str, Any], code: str,
               sweep: Sweep) -> Keys:
    """The Conv1-stage, classifier-stage and point keys (see the module docstring)."""
    o = opts.to_dict()
    conv1 = stable_key({
        "schema": SCHEMA, "stage": "conv1", "code": code, "dataset": dataset_id,
        "formats": formats_key_dict(point.formats, ("encoder", "conv", "stdp")),
        "encoder": o["encoder"], "conv": o["conv"], "stdp_images": o["stdp_images"]})
    classifier = stable_key({"schema": SCHEMA, "stage": "classifier", "conv1": conv1,
                             "classifier": o["classifier"]})
    derive = None
    if point.classifier_bits is not None:
        derive = {"bits": point.classifier_bits, "rule": sweep.frac_rule,
                  "bias_extra": sweep.bias_extra}
    key = stable_key({"schema": SCHEMA, "stage": "point", "classifier": classifier,
                      "formats": formats_key_dict(point.formats), "derive": derive,
                      "qat": sweep.qat if point.formats is not None else 0})
    return Keys(conv1, classifier, key)
