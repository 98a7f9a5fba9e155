"""The verification ladder: the same images through every level, compared with the integer model.

Levels (:data:`LEVELS`): ``float`` (the float reference: agreement rate, not meant to be equal),
``int`` (the integer golden model: the reference), ``amaranth`` (both RTL blocks in the Amaranth
simulator), ``verilator`` and ``icarus`` (the generated Verilog, co-simulated by cocotb) and
``netlist`` (both cores as their Yosys ``synth_ecp5`` netlists with Yosys's ECP5 cell models, same
testbench, on Verilator: :mod:`spykehw.sim.framework.netlist`). Every level below ``int`` must equal
it bit for bit: classes, softmax words and Pool1 features (and, checked inside each level, every
step's spikes). :func:`verify` runs them; :func:`first_difference` says where the first one differs,
and :func:`locate` where in a simulator's waveform: the cycle, the simulation time and the signal of
the earliest differing value of that image, with the FST file that shows it (the run's own with
``waves``, else that image run again alone with waves).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .api import Network
from .golden.errors import SpykehwError
from .hardware import cosimulate_network, simulate_network_amaranth
from .sim.framework.netlist import netlist_missing_reason
from .sim.framework.toolchain import missing_reason

__all__ = ["LEVELS", "VerifyError", "LevelResult", "available_levels", "verify", "first_difference",
           "locate", "agreement", "corrupted"]

LEVELS = ("float", "int", "amaranth", "verilator", "icarus", "netlist")
NETLIST_SIMULATOR = "verilator"
"""Gate-level netlists run on Verilator: Icarus manages about 16 cycles/s on the conv core's
netlist (a batch of images takes hours)."""


class VerifyError(SpykehwError, ValueError):
    """A level that cannot run as asked (names the level)."""


@dataclass
class LevelResult:
    """What one level produced for the images.

    Attributes
    ----------
    level : str
    classes : (N,) int64
    words : (N, C) int64 or None
        Integer softmax words (None for the float model).
    features : list of (k,) int64
        Active Pool1 feature indices per image, ascending.
    seconds : float
    checked_inside : bool or None
        The level's own check of what it cannot return (every step's spikes of the RTL levels):
        True passed, False failed, None not applicable.
    notes : list of str
        The level's own mismatch messages (first few).
    waveform : Path or None
        The simulator's waveform (RTL levels, with ``waves``).
    records : list of dict
        The testbench's mismatch records (``item`` the image, ``field``, ``expected``, ``found``,
        ``message``, and where known ``signal``, ``cycle``, ``time_ns``).
    """

    level: str
    classes: np.ndarray
    words: np.ndarray | None
    features: list[np.ndarray]
    seconds: float
    checked_inside: bool | None = None
    notes: list[str] = field(default_factory=list)
    waveform: Path | None = None
    records: list[dict[str, Any]] = field(default_factory=list)


def available_levels(net: Network) -> list[str]:
    """The levels this machine and this network can run (all of :data:`LEVELS` that are)."""
    from importlib.util import find_spec

    out = [m for m in ("float", "int") if m in net.models]
    if "int" not in out:
        return out
    if find_spec("amaranth") is not None:
        out.append("amaranth")
        out += [s for s in ("verilator", "icarus") if not missing_reason(s)]
        if NETLIST_SIMULATOR in out and not netlist_missing_reason():
            out.append("netlist")
    return out


def _golden(net: Network, model: str, images: np.ndarray) -> LevelResult:
    t = time.perf_counter()
    x = net.features(images, model)
    p = net.predict(images, model)
    return LevelResult(model, p.classes, p.softmax if model == "int" else None,
                       [np.flatnonzero(r).astype(np.int64) for r in x], time.perf_counter() - t)


def corrupted(weights: np.ndarray, index: Sequence[int], weight_bits: int) -> np.ndarray:
    """A copy of Conv1 weights ``(M, C, K, K)`` with the weight at ``index`` inverted
    (``2**weight_bits - 1 - w``): a fault for the ladder to find."""
    w = np.array(weights, dtype=np.int64, copy=True)
    if len(index) != w.ndim or any(int(i) < 0 for i in index):
        index = tuple(index) + (-1,)        # refused below, like any index out of range
    try:
        w[tuple(int(i) for i in index)] = (1 << weight_bits) - 1 - w[tuple(int(i) for i in index)]
    except (IndexError, TypeError, ValueError):
        raise VerifyError(f"--corrupt-weight: {','.join(map(str, index))} is not an index of the "
                          f"Conv1 weights {tuple(w.shape)} (map, channel, row, column)") from None
    return w


def _hardware(net: Network, level: str, images: np.ndarray, folder: Path | None,
              corrupt: Sequence[int] | None, waves: bool, progress=None) -> LevelResult:
    w, q = net.integer_model(level)
    fault = None if corrupt is None else corrupted(w, corrupt, net.formats.conv.weight_bits)
    t = time.perf_counter()
    if level == "amaranth":
        r = simulate_network_amaranth(net.options, net.formats, w, q, images, fault_weights=fault)
    else:
        if level == "netlist":
            reason = netlist_missing_reason() or missing_reason(NETLIST_SIMULATOR)
            if reason:
                raise VerifyError(f"--levels: netlist unavailable: {reason}")
        r = cosimulate_network(net.options, net.formats, w, q, images,
                               simulator=NETLIST_SIMULATOR if level == "netlist" else level,
                               folder=None if folder is None else folder / level, waves=waves,
                               netlist=level == "netlist", fault_weights=fault,
                               progress=None if progress is None else (lambda m: progress(f"{level}: {m}")))
    notes = [str(m.get("message", m)) for m in r.mismatches[:5]]
    return LevelResult(level, r.classes, r.words, [np.sort(f) for f in r.features],
                       time.perf_counter() - t, r.passed, notes, r.waveform, list(r.mismatches))


def verify(net: Network, images: np.ndarray, levels: Sequence[str], *, folder: str | Path | None = None,
           progress=None, corrupt: Sequence[int] | None = None, waves: bool = False
           ) -> dict[str, LevelResult]:
    """Run ``images`` through each level.

    Parameters
    ----------
    net : Network
    images : (N, 28, 28) uint8
    levels : sequence of str
        Any of :data:`LEVELS`; ``int`` is always run (the reference).
    folder : str or Path, optional
        Where the simulators' vectors, builds and logs go (default: temporary folders).
    progress : callable, optional
        Called with each level's name before it runs (and with ``"netlist: synthesising ..."``
        when a synthesis runs).
    corrupt : (m, c, row, col), optional
        Load Conv1 weights with this one weight inverted (:func:`corrupted`) into the hardware
        levels, while they are still checked against the trained golden model: a fault for the
        ladder to find (their own testbench check then fails where it shows).
    waves : bool
        Record the simulator runs' waveforms (FST; needs ``folder``, where they are kept).

    Returns
    -------
    dict
        ``{level: LevelResult}`` in ladder order.
    """
    unknown = [lv for lv in levels if lv not in LEVELS]
    if unknown:
        raise VerifyError(f"--levels: unknown level {unknown[0]!r}; choose from {', '.join(LEVELS)}")
    if waves and folder is None:
        raise VerifyError("--waves: needs --out DIR (the waveforms are kept there)")
    wanted = [lv for lv in LEVELS if lv in set(levels) | {"int"}]
    out: dict[str, LevelResult] = {}
    for level in wanted:
        if progress is not None:
            progress(level)
        if level in ("float", "int"):
            if level not in net.models:
                raise VerifyError(f"--levels: {net.source} holds no {level} model")
            out[level] = _golden(net, level, images)
        else:
            out[level] = _hardware(net, level, images, None if folder is None else Path(folder), corrupt,
                                   waves, progress)
    return out


def _earliest(records: list[dict[str, Any]], image: int) -> dict[str, Any] | None:
    """The image's record that showed first in simulation time (else the first listed)."""
    mine = [r for r in records if int(r.get("item", -1)) == image]
    timed = [r for r in mine if r.get("time_ns") is not None]
    return min(timed, key=lambda r: r["time_ns"]) if timed else (mine[0] if mine else None)


def locate(net: Network, res: LevelResult, difference: dict[str, Any], images: np.ndarray, *,
           folder: str | Path | None = None, corrupt: Sequence[int] | None = None) -> dict[str, Any]:
    """``difference`` (from :func:`first_difference`) with where to look in a simulator level's
    waveform: ``signal``, ``cycle`` (the conv harness's cycle counter), ``time_ns`` and
    ``waveform`` (FST), plus ``at`` (what differs there: field, expected, found). With the run's own waveform (``waves``)
    its records are used; otherwise, when ``folder`` is given, the image is simulated again alone
    with waves into ``folder/<level>/image-<i>`` (cycles and times then refer to that file).
    Levels without a simulator (``amaranth``) and differences without an image are returned as
    they are."""
    i = difference.get("image")
    out = dict(difference, signal=None, cycle=None, time_ns=None, at=None,
               waveform=None if res.waveform is None else str(res.waveform))
    if i is None or res.level not in ("verilator", "icarus", "netlist"):
        return out
    records = res.records
    if res.waveform is None and folder is not None:
        w, q = net.integer_model(res.level)
        fault = None if corrupt is None else corrupted(w, corrupt, net.formats.conv.weight_bits)
        again = cosimulate_network(net.options, net.formats, w, q, images[i:i + 1],
                                   simulator=NETLIST_SIMULATOR if res.level == "netlist" else res.level,
                                   folder=Path(folder) / res.level / f"image-{i}", waves=True,
                                   netlist=res.level == "netlist", fault_weights=fault)
        records = [dict(r, item=i) for r in again.mismatches]
        out["waveform"] = None if again.waveform is None else str(again.waveform)
    first = _earliest(records, i)
    if first is not None:
        out.update(signal=first.get("signal") or None, cycle=first.get("cycle"), time_ns=first.get("time_ns"),
                   at=f"{first.get('field')}: expected {first.get('expected')}, found {first.get('found')}")
    return out


def _feature_diff(want: np.ndarray, got: np.ndarray) -> str:
    missing, extra = np.setdiff1d(want, got), np.setdiff1d(got, want)
    return (f"features: {len(got)} active, golden {len(want)}; missing {missing[:8].tolist()}, "
            f"extra {extra[:8].tolist()}")


def first_difference(ref: LevelResult, res: LevelResult) -> dict[str, Any] | None:
    """The first image where ``res`` differs from ``ref``: features first (the conv core's
    output), then class, then softmax words; None when equal everywhere."""
    for i in range(len(ref.classes)):
        if not np.array_equal(ref.features[i], res.features[i]):
            return {"image": i, "what": "features", "detail": _feature_diff(ref.features[i], res.features[i])}
        if ref.classes[i] != res.classes[i]:
            return {"image": i, "what": "class", "detail": f"class {int(res.classes[i])}, golden {int(ref.classes[i])}"}
        if res.words is not None and not np.array_equal(ref.words[i], res.words[i]):
            k = int(np.flatnonzero(ref.words[i] != res.words[i])[0])
            return {"image": i, "what": "softmax", "detail": f"softmax word {k}: {int(res.words[i][k])}, "
                                                             f"golden {int(ref.words[i][k])}"}
    if res.checked_inside is False:
        return {"image": None, "what": "inside", "detail": "; ".join(res.notes) or "the level's own check failed"}
    return None


def agreement(ref: LevelResult, res: LevelResult) -> dict[str, Any]:
    """Counts of images whose classes, words and features equal the reference's."""
    n = len(ref.classes)
    row: dict[str, Any] = {"level": res.level, "images": n,
                           "classes": int(np.sum(ref.classes == res.classes)),
                           "features": sum(np.array_equal(a, b) for a, b in zip(ref.features, res.features)),
                           "softmax": None if res.words is None else
                           int(np.sum(np.all(ref.words == res.words, axis=1))),
                           "inside": res.checked_inside, "seconds": round(res.seconds, 2)}
    row["equal"] = (row["classes"] == n and row["features"] == n and row["softmax"] in (None, n)
                    and res.checked_inside is not False)
    return row
