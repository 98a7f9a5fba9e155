"""A sweep over presets and parallelism: one flow run per point, resumable, and the trade-off table.

It reuses the generic parts of the quantization studies' sweep machinery (:mod:`spykehw.quant`):
the resumable store (:class:`spykehw.quant.store.Store`: ``store/points/<key>.json`` written
atomically the moment a point is done; a point whose file exists is never run again, and an
``events.jsonl`` log), its content keys (:func:`spykehw.quant.store.stable_key`) and its Dask
client (:func:`spykehw.quant.cluster.dask_client`: a LocalCluster of one single-threaded worker
process per core, or ``--scheduler ADDRESS``). The quant stages themselves (STDP, classifier
training) have nothing to do with place and route, so the points here are plain tasks:
:func:`run_point` builds the design and runs the flow into the point's own run folder
``points/<key>/`` (tool logs included) and returns the report.

``--workers 1`` (the default) runs the points one after the other in this process, with the
stage lines and tool heartbeats on stderr; more workers run that many points at once (nextpnr is
single-threaded here, so one point per core). Keys hash everything a result depends on: the
point, the number formats, the flow options and the code (the RTL generators, the number-format
module and this package), so a changed setting or RTL never picks up a stale result.

Accuracy (``--accuracy FILE``): either the ``results.csv`` of ``spykehw quant`` (read-only:
rows with ``model == int`` whose twelve format columns equal the preset's; accuracy
``acc_pct``, averaged over repeats, first dataset in the file), or a plain CSV whose header has a
preset column (``config``, ``preset``, ``formats`` or ``name``) and an accuracy column
(``accuracy``, ``test_accuracy``, ``int_accuracy`` or ``acc``; a fraction, or a percentage if
above 1), several rows per preset averaged. Without it the column is blank.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .. import fpga, golden, rtl
from ..golden.errors import SpykehwError
from ..golden.formats import NumberFormats, load_formats
from ..golden.stored import code_digest
from ..inputs import read_text
from ..output import RunFolder
from ..quant.cluster import dask_client
from ..quant.store import stable_key
from .bench import read_bench
from .blocks import BlockSettings
from .devices import device
from .tools import Stages

__all__ = ["SweepPoint", "sweep_points", "point_key", "code_version", "Accuracy", "read_accuracy",
           "AccuracyError", "run_points", "run_point", "KEY_COLUMNS", "ACC_COLUMNS"]

KEY_COLUMNS = ("config", "preset", "formats", "name")
ACC_COLUMNS = ("accuracy", "test_accuracy", "int_accuracy", "acc")
# The format columns of spykehw quant's results.csv, as (column, formats section, field).
QUANT_FORMAT_COLUMNS = (
    ("conv_bits", "conv", "weight_bits"), ("stdp_rounding", "stdp", "rounding"),
    ("dog_frac_bits", "encoder", "dog_frac_bits"),
    ("hidden_weight_bits", "classifier", "hidden_weight_bits"),
    ("hidden_weight_frac", "classifier", "hidden_weight_frac"),
    ("hidden_bias_bits", "classifier", "hidden_bias_bits"),
    ("output_weight_bits", "classifier", "output_weight_bits"),
    ("output_weight_frac", "classifier", "output_weight_frac"),
    ("output_bias_bits", "classifier", "output_bias_bits"),
    ("exp_lut_entries", "softmax", "exp_lut_entries"), ("exp_lut_bits", "softmax", "exp_lut_bits"),
    ("softmax_bits", "softmax", "softmax_bits"),
)


class AccuracyError(SpykehwError, ValueError):
    """An accuracy CSV without the expected columns or with a bad value."""


@dataclass(frozen=True)
class SweepPoint:
    block: str
    target: str
    config: str
    parallelism: int
    lanes: int

    def to_dict(self) -> dict[str, Any]:
        return {"block": self.block, "target": self.target, "config": self.config,
                "parallelism": self.parallelism, "lanes": self.lanes}


def sweep_points(block: str, target: str, configs: list[str], parallelisms: list[int],
                 lanes: list[int]) -> list[SweepPoint]:
    """Every combination, without the axes that do not change the block (the conv core has no
    lanes, the classifier no conv parallelism, the softmax neither)."""
    if block not in ("conv", "all", "accelerator"):
        parallelisms = parallelisms[:1]
    if block not in ("classifier", "all", "accelerator"):
        lanes = lanes[:1]
    return [SweepPoint(block, target, c, p, ln)
            for c, p, ln in itertools.product(configs, parallelisms, lanes)]


# The modules of this package that change what a point computes (the sweep, Markdown and tool
# runner modules do not).
_RESULT_MODULES = ("blocks.py", "devices.py", "flow.py", "memories.py", "parse.py", "wrapper.py")


def code_version() -> str:
    """SHA-256 (16 hex, :func:`~spykehw.golden.stored.code_digest`: syntax trees without
    comments and docstrings, as the quantization store keys its results) of the sources an FPGA
    result depends on: the RTL generators, the number-format config, exp LUT and layer options,
    and the modules of this package that build, synthesise and measure (:data:`_RESULT_MODULES`)."""
    paths = sorted(Path(rtl.__file__).parent.glob("*.py"))
    paths += [Path(fpga.__file__).parent / f for f in _RESULT_MODULES]
    paths += [Path(golden.__file__).parent / f for f in ("formats.py", "exp_lut.py", "options.py")]
    return code_digest([(f"{p.parent.name}/{p.name}", p) for p in paths])


def point_key(p: SweepPoint, settings: dict[str, Any], code: str) -> str:
    """A readable folder name (the settings that matter for the block) plus a hash of
    everything the result depends on."""

    cfg = Path(p.config).stem if p.config.endswith(".toml") else p.config
    name = f"{p.block}_{p.target}_{cfg}"
    if p.block in ("conv", "all"):
        name += f"_L{p.parallelism}"
    if p.block in ("classifier", "all"):
        name += f"_lanes{p.lanes}"
    readable = re.sub(r"[^A-Za-z0-9_.+-]", "-", name)
    return f"{readable}_{stable_key({'point': p.to_dict(), 'settings': settings, 'code': code}, 10)}"


# --- accuracy ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Accuracy:
    """Accuracy per preset, looked up by name (plain CSV) or by format fields (quant CSV)."""

    source: str
    by_name: dict[str, float]
    by_formats: dict[tuple, float]
    note: str = ""

    def lookup(self, config: str, formats: NumberFormats) -> float | None:
        if self.by_formats:
            d = formats.to_dict()
            return self.by_formats.get(tuple(str(d[s][f]) for _, s, f in QUANT_FORMAT_COLUMNS))
        return self.by_name.get(config)


def read_accuracy(path: str | Path) -> Accuracy:
    """Read a results CSV (see the module docstring)."""
    path = Path(path)
    reader = csv.DictReader(io.StringIO(read_text(path, "accuracy CSV", AccuracyError), newline=""))
    try:
        header = [c.strip() for c in (reader.fieldnames or [])]
        rows = list(reader)
    except csv.Error as e:
        raise AccuracyError(f"{path}: not a CSV file ({e})") from None
    lower = {c.lower(): c for c in header}
    if "acc_pct" in lower and all(c in lower for c, _, _ in QUANT_FORMAT_COLUMNS):
        return _quant_accuracy(path, rows)
    key = next((lower[c] for c in KEY_COLUMNS if c in lower), None)
    acc = next((lower[c] for c in ACC_COLUMNS if c in lower), None)
    if key is None or acc is None:
        raise AccuracyError(f"{path}: expected spykehw quant's results.csv, or a preset column "
                            f"({', '.join(KEY_COLUMNS)}) and an accuracy column ({', '.join(ACC_COLUMNS)}); "
                            f"found {', '.join(header) or 'no header'}")
    sums: dict[str, list[float]] = {}
    for i, row in enumerate(rows, start=2):
        raw = (row.get(acc) or "").strip()
        if not raw:
            continue
        value = _number(raw.rstrip("%"), path, i, acc)
        if value > 1.0 or raw.endswith("%"):
            value /= 100.0
        sums.setdefault(row[key].strip(), []).append(value)
    return Accuracy(str(path), {k: sum(v) / len(v) for k, v in sums.items()}, {})


def _number(raw: str, path: Path, line: int, column: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise AccuracyError(f"{path}:{line}: column {column}: expected a number, found {raw!r}") from None


def _quant_accuracy(path: Path, rows: list[dict[str, str]]) -> Accuracy:
    ints = [r for r in rows if r.get("model") == "int" and (r.get("acc_pct") or "").strip()]
    datasets = list(dict.fromkeys(r.get("dataset", "") for r in ints))
    chosen = datasets[0] if datasets else ""
    sums: dict[tuple, list[float]] = {}
    for i, r in enumerate(ints):
        if r.get("dataset", "") != chosen:
            continue
        k = tuple(r[c].strip() for c, _, _ in QUANT_FORMAT_COLUMNS)
        sums.setdefault(k, []).append(_number(r["acc_pct"], path, i + 2, "acc_pct") / 100.0)
    note = f"spykehw quant results.csv, dataset {chosen or '?'}" + \
        (f" (also in the file: {', '.join(datasets[1:])})" if len(datasets) > 1 else "")
    return Accuracy(str(path), {}, {k: sum(v) / len(v) for k, v in sums.items()}, note)


# --- running ----------------------------------------------------------------------------------

def run_point(spec: dict[str, Any]) -> dict[str, Any]:
    """One point from plain data (picklable, for Dask workers): build, run, report.

    ``spec``: ``point`` (SweepPoint dict), ``folder``, ``freq_mhz``, ``seeds``, ``placed_svg``,
    ``ram_styles``, ``route``, ``pnr_timeout_s``, ``router``, ``classes``, ``hidden``, ``active_features``,
    ``bench`` (benchmark JSON paths), ``command``, ``args``, ``quiet``; optionally
    ``potential_memory`` (``--potentials``).
    """
    # hw extra (Amaranth, cocotb): loaded only when this runs
    from .flow import FlowOptions, implement

    p = spec["point"]
    bench = read_bench(spec["bench"]) if spec.get("bench") else None
    settings = BlockSettings(formats=load_formats(p["config"]), parallelism=p["parallelism"],
                             lanes=p["lanes"], classes=spec["classes"], hidden=spec["hidden"],
                             active_features=spec["active_features"], bench=bench,
                             potential_memory=spec.get("potential_memory", "block"))
    opts = FlowOptions(device=device(p["target"]), freq_mhz=spec["freq_mhz"], seeds=tuple(spec["seeds"]),
                       placed_svg=spec["placed_svg"],
                       ram_styles=tuple(tuple(x) for x in spec["ram_styles"]), route=spec["route"],
                       pnr_timeout_s=spec["pnr_timeout_s"], router=spec.get("router", "router1"))
    folder = RunFolder(Path(spec["folder"]).parent, "fpga", args={**spec["args"], **p},
                       path=spec["folder"])
    return implement(p["block"], settings, opts, folder, Stages(enabled=not spec["quiet"]),
                     spec["command"])


def run_points(points: list[SweepPoint], store: Any, keys: dict[SweepPoint, str],
               spec_for: Callable[[SweepPoint], dict[str, Any]],
               on_done: Callable[[SweepPoint, dict[str, Any], bool], None], *,
               workers: int = 1, scheduler: str | None = None,
               runner: Callable[[dict[str, Any]], dict[str, Any]] = run_point) -> list[dict[str, Any]]:
    """Run every point whose key is not in ``store`` (a :class:`spykehw.quant.store.Store`);
    save each report there as soon as it is done; return the reports in point order.

    ``on_done(point, report, stored)`` is called once per point (``stored``: it came from the
    store). With ``workers > 1`` or a ``scheduler`` the missing points run as Dask tasks.
    """
    reports: dict[SweepPoint, dict[str, Any]] = {}
    todo = []
    for p in points:
        stored = store.load_point(keys[p])
        if stored is not None:
            reports[p] = stored
            on_done(p, stored, True)
        else:
            todo.append(p)
    store.log({"event": "run", "points": len(points), "todo": len(todo)})

    def finish(p: SweepPoint, report: dict[str, Any]) -> None:
        store.save_point(keys[p], report)
        store.log({"event": "point", "key": keys[p], "status": report.get("status")})
        reports[p] = report
        on_done(p, report, False)

    if todo and (workers > 1 or scheduler):
        from distributed import as_completed


        with dask_client(scheduler, workers) as client:
            futures = {client.submit(runner, spec_for(p), key=f"fpga-{keys[p]}", pure=False): p
                       for p in todo}
            for fut in as_completed(futures):
                finish(futures[fut], fut.result())
    else:
        for p in todo:
            finish(p, runner(spec_for(p)))
    return [reports[p] for p in points]
