"""Running a sweep on Dask: plan, submit the shared stages once, store points as they finish.

:func:`plan_sweep` turns a :class:`~spykehw.quant.points.Sweep` into :class:`PointTask` records
with their keys (loading each dataset once, on the client, for its identity). :func:`run_sweep`
skips every point already in the store, submits each missing Conv1 stage and classifier stage
once (keyed, so points that share them wait on the same task), then one task per missing point;
tasks that raise or whose worker dies are retried (``retries``), and a point that still fails is
reported while every other point goes on. One line per finished stage or point goes to
``stream``, with the points done/total, the elapsed time and an ETA from the work done (tasks
weighted by their rough cost, :func:`_weight`).
"""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..data.datasets import check_split_sizes
from ..golden.progress import format_duration
from ..inputs import read_json
from .cluster import dask_client
from .points import (
    Point,
    Sweep,
    SweepError,
    build_points,
    network_options,
    point_keys,
    sweep_from_dict,
)
from .stages import (
    PROGRESS_TOPIC,
    PointTask,
    classifier_stage,
    code_version,
    conv1_stage,
    dataset_identity,
    load_limited,
    point_stage,
)
from .store import Store

__all__ = ["Plan", "SweepOutcome", "Saved", "plan_sweep", "run_sweep", "parse_injection",
           "save_plan", "load_saved"]


@dataclass
class Plan:
    sweep: Sweep
    tasks: list[PointTask]
    code: str
    dataset_ids: dict[str, dict[str, Any]]
    store: Store


@dataclass
class SweepOutcome:
    plan: Plan
    results: list[dict[str, Any]]
    failed: list[dict[str, Any]] = field(default_factory=list)
    computed: dict[str, int] = field(default_factory=dict)
    cached: dict[str, int] = field(default_factory=dict)
    already_done: int = 0
    seconds: float = 0.0


def parse_injection(spec: str | None) -> tuple[str, str] | None:
    """``"LABEL"`` or ``"LABEL:once"`` / ``"LABEL:always"`` -> ``(label, mode)``."""
    if not spec:
        return None
    label, _, mode = spec.rpartition(":")
    if mode in ("once", "always") and label:
        return label, mode
    return spec, "once"


def plan_sweep(sweep: Sweep, store_root: str | Path, *, data_dir: str | Path | None = None,
               inject: tuple[str, str] | None = None, points: list[Point] | None = None) -> Plan:
    points = build_points(sweep) if points is None else points
    code = code_version()
    dd = None if data_dir is None else str(Path(data_dir).resolve())
    ids = {}
    for ds in sweep.datasets:
        ids[ds] = dataset_identity(load_limited(ds, dd, sweep.train_limit, sweep.test_limit),
                                   sweep.train_limit, sweep.test_limit)
    store = Store(Path(store_root).resolve())
    store.clean()
    tasks = []
    for p in points:
        opts = network_options(sweep, p.dataset, p.repeat, p.hidden)
        check_split_sizes(ids[p.dataset]["train"], ids[p.dataset]["test"],
                          opts.classifier.val_fraction, p.dataset)
        keys = point_keys(p, opts, ids[p.dataset], code, sweep)
        fail = inject[1] if inject is not None and inject[0] == p.label else None
        tasks.append(PointTask(
            store=str(store.root), dataset=p.dataset, data_dir=dd, dataset_id=ids[p.dataset],
            train_limit=sweep.train_limit, test_limit=sweep.test_limit, options=opts,
            formats=p.formats, classifier_bits=p.classifier_bits, frac_rule=sweep.frac_rule,
            bias_extra=sweep.bias_extra, qat=sweep.qat if p.formats is not None else 0, keys=keys,
            repeat=p.repeat, label=p.label, axes=p.axes, fail=fail))
    return Plan(sweep, tasks, code, ids, store)


def _name(t: PointTask) -> str:
    return f"{t.dataset} r{t.repeat} {t.label}"


def _point_line(r: dict[str, Any]) -> str:
    s = f"acc {100 * r['acc']:.2f}% (balanced {100 * r['balanced_acc']:.2f}%)"
    if r.get("acc_qat") is not None:
        s += f", PTQ {100 * r['acc_ptq']:.2f}%"
    if r.get("model") == "int":
        s += f"; float classifier on these features {100 * r['float_classifier_acc']:.2f}%"
    return s


def run_sweep(plan: Plan, *, scheduler: str | None = None, workers: int | None = None,
              retries: int = 2, progress: bool = True, stream: TextIO = sys.stdout) -> SweepOutcome:
    """Run every point of ``plan`` not yet in the store (see the module docstring)."""

    t_start = time.perf_counter()
    store = plan.store
    run_id = uuid.uuid4().hex[:12]
    todo = [t for t in plan.tasks if not store.has_point(t.keys.point)]
    new_conv1 = {t.keys.conv1 for t in todo if not store.has_artifact("conv1", t.keys.conv1)}
    new_cls = {t.keys.classifier for t in todo if not store.has_artifact("classifier", t.keys.classifier)}
    done_before = len(plan.tasks) - len(todo)

    def say(line: str) -> None:
        print(line, file=stream, flush=True)

    say(f"spykehw quant: {len(plan.tasks)} points, {done_before} already in the store, "
        f"{len(todo)} to run; stages to compute: {len(new_conv1)} Conv1 (STDP + features), "
        f"{len(new_cls)} classifier trainings")
    store.log({"event": "run_start", "run": run_id, "points": len(plan.tasks), "todo": len(todo),
               "code": plan.code, "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    outcome = SweepOutcome(plan, [], already_done=done_before,
                           computed={"conv1": 0, "classifier": 0, "point": 0},
                           cached={"conv1": 0, "classifier": 0})
    if todo:
        with dask_client(scheduler, workers) as client:
            _execute(client, todo, store, run_id, retries, outcome, progress, say)
    outcome.results = _as_planned(store, [(t.keys.point, t.label, t.axes) for t in plan.tasks])
    outcome.seconds = time.perf_counter() - t_start
    store.log({"event": "run_end", "run": run_id, "computed": outcome.computed,
               "cached": outcome.cached, "failed": [f["key"] for f in outcome.failed],
               "seconds": round(outcome.seconds, 1)})
    return outcome


def _as_planned(store: Store, planned: list[tuple[str, str, Any]]) -> list[dict[str, Any]]:
    """The stored results of ``(key, label, axes)``, labelled as this sweep plans them: a point
    computed by another sweep sharing the store (e.g. with one hidden size, so no ``H128``
    prefix, or on fewer axes) has the same key but was stored with that sweep's label."""
    out = []
    for key, label, axes in planned:
        r = store.load_point(key)
        if r is not None:
            out.append({**r, "label": label, "axes": list(axes)})
    return out


def _weight(kind: str, t: PointTask) -> float:
    """Rough cost of a task in units of one Conv1 stage (STDP + features of the whole dataset):
    a classifier epoch costs about as much as the Conv1 stage, per 1000 hidden units; a point
    is a forward pass (plus its QAT epochs)."""
    c = t.options.classifier
    if kind == "conv1":
        return 1.0
    if kind == "classifier":
        return c.epochs * c.hidden / 1000
    return 0.15 + 1.5 * t.qat * c.hidden / 1000


class _Eta:
    """Elapsed time and ETA from the weighted work done (tasks differ in cost by 100x)."""

    def __init__(self, weights: dict) -> None:
        self.weights = weights
        self.total = sum(weights.values())
        self.done = 0.0
        self.t0 = time.perf_counter()

    def finish(self, fut) -> None:
        self.done += self.weights.get(fut, 0.0)

    def text(self, enabled: bool = True) -> str:
        if not enabled:
            return ""
        el = time.perf_counter() - self.t0
        s = f", {format_duration(el)} elapsed"
        if 0 < self.done < self.total:
            s += f", ETA {format_duration(el * (self.total - self.done) / self.done)}"
        return s


def _execute(client, todo: list[PointTask], store: Store, run_id: str, retries: int,
             outcome: SweepOutcome, progress: bool, say) -> None:
    from distributed import as_completed

    stage_futs: dict[str, Any] = {}
    what: dict[Any, tuple[str, PointTask]] = {}
    point_futs = []
    for t in todo:
        # A ready point (seconds) goes before a classifier training (minutes), which goes before
        # the next Conv1 stage: results come early, and within a priority submission order
        # (the sweep's point order) decides.
        k1 = f"conv1-{t.keys.conv1}"
        if k1 not in stage_futs:
            stage_futs[k1] = client.submit(conv1_stage, t, key=k1, retries=retries, pure=False,
                                           priority=0)
            what[stage_futs[k1]] = ("conv1", t)
        k2 = f"classifier-{t.keys.classifier}"
        if k2 not in stage_futs:
            stage_futs[k2] = client.submit(classifier_stage, t, stage_futs[k1], key=k2,
                                           retries=retries, pure=False, priority=1)
            what[stage_futs[k2]] = ("classifier", t)
        f = client.submit(point_stage, t, stage_futs[k2], key=f"point-{t.keys.point}",
                          retries=retries, pure=False, priority=2)
        what[f] = ("point", t)
        point_futs.append(f)
    if progress:
        # Per-epoch lines of classifier trainings (minutes each) as the workers send them.
        def show(event) -> None:
            msg = event[1] if isinstance(event, tuple) else event
            say(f"  {msg['tag']}: {msg['line']}")
        client.subscribe_topic(PROGRESS_TOPIC, show)
    cached = {f for f, (kind, t) in what.items()
              if kind != "point" and store.has_artifact(kind, getattr(t.keys, kind))}
    eta = _Eta({f: 0.0 if f in cached else _weight(kind, t) for f, (kind, t) in what.items()})
    n_done = 0
    for fut in as_completed(list(what)):
        kind, t = what[fut]
        eta.finish(fut)
        if fut.status != "finished":
            try:
                err = fut.exception()
            except BaseException as e:  # cancelled (e.g. the scheduler went away)
                err = e
            msg = f"{type(err).__name__}: {err}"
            if kind == "point":
                n_done += 1
                outcome.failed.append({"key": t.keys.point, "label": _name(t), "error": msg})
                store.log({"event": "failed", "run": run_id, "key": t.keys.point,
                           "label": _name(t), "error": msg})
                say(f"[{n_done}/{len(point_futs)} points{eta.text(progress)}] FAILED {_name(t)}: {msg}")
            else:
                say(f"stage {kind} for {_name(t)} FAILED: {msg}")
            continue
        info = fut.result()
        if kind == "point":
            n_done += 1
            outcome.computed["point"] += 1
            store.log({"event": "point", "run": run_id, "key": t.keys.point, "label": _name(t),
                       "seconds": info.get("seconds_point")})
            say(f"[{n_done}/{len(point_futs)} points{eta.text(progress)}] {_name(t)}: {_point_line(info)}")
        else:
            bucket = outcome.computed if info["computed"] else outcome.cached
            bucket[kind] += 1
            store.log({"event": "stage", "run": run_id, **info})
            if info["computed"]:
                say(f"stage {kind} done ({_name(t)}): {format_duration(info['seconds'])} on "
                    f"{info['host']}:{info['pid']}")


# --- the sweep's own record (for --report-only) ----------------------------------------------

@dataclass
class Saved:
    sweep: Sweep
    code: str
    dataset_ids: dict[str, dict[str, Any]]
    results: list[dict[str, Any]]
    lines: list[str]
    failed: list[dict[str, Any]]


def save_plan(folder, plan: Plan) -> None:
    """``points.json`` (every point with its keys, formats, options) and ``sweep.json`` (the
    sweep, code version, dataset identities and store), so the report can be rebuilt later."""
    folder.write_json("points.json", [
        {"label": t.label, "dataset": t.dataset, "repeat": t.repeat, "axes": list(t.axes),
         "keys": vars(t.keys), "formats": None if t.formats is None else t.formats.to_dict(),
         "classifier_bits": t.classifier_bits, "hidden": t.options.classifier.hidden,
         "options": t.options.to_dict()} for t in plan.tasks],
        "every point of the sweep with its keys, formats and stage options")
    folder.write_json("sweep.json", {"sweep": plan.sweep.to_dict(), "code": plan.code,
                                     "dataset_ids": plan.dataset_ids, "store": str(plan.store.root)},
                      "the sweep definition, code version, dataset identities and store")


def load_saved(folder: str | Path, store: str | Path | None = None) -> Saved:
    """What :func:`save_plan` (and the run's ``run.json``) recorded, with the stored results of
    the sweep's points (by key: nothing is planned or computed)."""
    folder = Path(folder)
    for name in ("sweep.json", "points.json"):
        if not (folder / name).is_file():
            raise SweepError(f"{folder}: not a sweep folder ({name} missing)")
    spec = read_json(folder / "sweep.json", "saved sweep definition", SweepError)
    points = read_json(folder / "points.json", "saved list of points", SweepError, table=False)
    run = {}
    if (folder / "run.json").is_file():
        run = read_json(folder / "run.json", "saved run record", SweepError)
    try:
        st = Store(store or spec["store"])
        planned = [(p["keys"]["point"], p["label"], p["axes"]) for p in points]
        sweep = sweep_from_dict(spec["sweep"])
        saved = (spec["code"], spec["dataset_ids"])
    except (KeyError, TypeError) as e:
        raise SweepError(f"{folder}: sweep.json/points.json lack {e} (written by another "
                         "version, or edited)") from None
    results = _as_planned(st, planned)
    return Saved(sweep, saved[0], saved[1], results, run.get("lines", []), run.get("failed", []))
