"""The sweep's report: CSV, Markdown tables, plots and the "smallest formats" summary.

Files (recorded in the run folder's manifest):

``results.csv``
    one row per point and repeat (:data:`CSV_COLUMNS`); accuracies in percent.
``results.md``
    per section (a dataset; a dataset and hidden size when the sweep has several hidden sizes,
    :func:`report_sections`): the float baseline, the base formats (the acceptance gap), one table per axis
    (mean over repeats, ``± std`` with several repeats, difference to float in points), the
    smallest formats, and what was run (sizes, epochs, QAT, timing).
``summary.json``
    the same numbers, machine-readable (:func:`summarize`).
``acc-vs-conv-bits-<section>.png``, ``acc-vs-classifier-bits-<section>.png``,
``softmax-error-vs-lut-<section>.png``
    accuracy against bits (one line per STDP rounding mode) with the float baseline drawn as a
    line and the 0.5 / 1.0 point tolerances dashed; softmax error against LUT size
    (:mod:`spykehw.quant.plots`).

"Smallest within T points of float" is, per axis, the smallest tested value ``v`` such that
``v`` and every larger tested value reach ``mean accuracy >= float mean accuracy - T`` (so a
lucky dip in a noisy curve is not reported as safe). Axes are studied one at a time, each with
the other formats at the base; a combination of the smallest values is not implied and should be
run as its own point (``--point``).
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from ..golden.option_sets import changed_keys, options_preset
from ..golden.progress import format_duration
from ..output import RunFolder
from .cluster import usable_cpus
from .plots import write_plots
from .points import network_options

__all__ = ["CSV_COLUMNS", "TOLERANCES", "Section", "report_sections", "csv_rows", "summarize",
           "markdown", "run_lines", "report_meta", "write_report"]

TOLERANCES = (0.5, 1.0)


@dataclass(frozen=True)
class Section:
    """One part of the report: the results of ``dataset`` (with ``hidden``, only those of that
    hidden size), compared with their own float baseline; ``name`` names its tables and plots."""

    name: str
    dataset: str
    hidden: int | None = None

    def holds(self, r: dict) -> bool:
        return r["dataset"] == self.dataset and (self.hidden is None or r["classifier"]["hidden"] == self.hidden)


def report_sections(sweep) -> list[Section]:
    """One section per dataset, or per dataset and hidden size (``mnist-h128``) when the sweep
    has several hidden sizes."""
    sizes = sweep.hidden or ()
    if len(sizes) <= 1:
        return [Section(ds, ds) for ds in sweep.datasets]
    return [Section(f"{ds}-h{h}", ds, h) for ds in sweep.datasets for h in sizes]

CSV_COLUMNS = (
    "dataset", "repeat", "label", "axes", "model",
    "conv_bits", "stdp_rounding", "dog_frac_bits",
    "hidden_weight_bits", "hidden_weight_frac", "hidden_bias_bits",
    "output_weight_bits", "output_weight_frac", "output_bias_bits",
    "exp_lut_entries", "exp_lut_bits", "softmax_bits",
    "acc_pct", "balanced_acc_pct", "delta_vs_float_points", "acc_ptq_pct", "acc_qat_pct",
    "float_classifier_acc_pct", "same_class_as_float_classifier_pct",
    "softmax_max_abs_err", "softmax_mean_abs_err", "softmax_argmax_agreement_pct",
    "saturated_W2", "saturated_b2", "saturated_W3", "saturated_b3",
    "stdp_winners_per_image", "features_per_image", "stdp_images",
    "classifier_epochs", "classifier_hidden", "classifier_best_epoch", "classifier_best_val_pct",
    "qat_epochs", "frac_rule", "bias_extra", "train_images", "test_images",
    "seconds_stdp", "seconds_features", "seconds_classifier", "seconds_point",
    "key", "conv1_key", "classifier_key",
)


def _pct(x) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else 100.0 * x


def _fmt_fields(f: dict | None) -> dict[str, Any]:
    if f is None:
        return {}
    c, s = f["classifier"], f["softmax"]
    return {"conv_bits": f["conv"]["weight_bits"], "stdp_rounding": f["stdp"]["rounding"],
            "dog_frac_bits": f["encoder"]["dog_frac_bits"],
            "hidden_weight_bits": c["hidden_weight_bits"], "hidden_weight_frac": c["hidden_weight_frac"],
            "hidden_bias_bits": c["hidden_bias_bits"], "output_weight_bits": c["output_weight_bits"],
            "output_weight_frac": c["output_weight_frac"], "output_bias_bits": c["output_bias_bits"],
            "exp_lut_entries": s["exp_lut_entries"], "exp_lut_bits": s["exp_lut_bits"],
            "softmax_bits": s["softmax_bits"]}


def _baseline(r: dict) -> tuple[str, int]:
    """Which float baseline a result is compared with: same dataset, same hidden size."""
    return r["dataset"], r["classifier"]["hidden"]


def _float_means(results: Iterable[dict]) -> dict[tuple[str, int], float]:
    acc = defaultdict(list)
    for r in results:
        if r["model"] == "float":
            acc[_baseline(r)].append(r["acc"])
    return {k: float(np.mean(v)) for k, v in acc.items()}


def csv_rows(results: list[dict]) -> list[dict[str, Any]]:
    """One flat dict per result, keys :data:`CSV_COLUMNS` (missing values None)."""
    fm = _float_means(results)
    rows = []
    for r in results:
        sm, sat = r.get("softmax") or {}, r.get("saturated") or {}
        cv, cl = r["conv1"], r["classifier"]
        row = {
            "dataset": r["dataset"], "repeat": r["repeat"], "label": r["label"],
            "axes": "+".join(r["axes"]), "model": r["model"], **_fmt_fields(r["formats"]),
            "acc_pct": _pct(r["acc"]), "balanced_acc_pct": _pct(r["balanced_acc"]),
            "delta_vs_float_points": (100 * (r["acc"] - fm[_baseline(r)])) if _baseline(r) in fm else None,
            "acc_ptq_pct": _pct(r.get("acc_ptq")), "acc_qat_pct": _pct(r.get("acc_qat")),
            "float_classifier_acc_pct": _pct(r["float_classifier_acc"]),
            "same_class_as_float_classifier_pct": _pct(r["same_class_as_float_classifier"]),
            "softmax_max_abs_err": sm.get("max_abs_err"), "softmax_mean_abs_err": sm.get("mean_abs_err"),
            "softmax_argmax_agreement_pct": _pct(sm.get("argmax_agreement")),
            **{f"saturated_{k}": sat.get(k) for k in ("W2", "b2", "W3", "b3")},
            "stdp_winners_per_image": cv["winners_per_image"], "features_per_image": cv["features_per_image"],
            "stdp_images": cv["stdp_images"], "classifier_epochs": cl["epochs"],
            "classifier_hidden": cl["hidden"], "classifier_best_epoch": cl["best_epoch"],
            "classifier_best_val_pct": _pct(cl["best_val_acc"]), "qat_epochs": r["qat_epochs"],
            "frac_rule": r["frac_rule"] if r.get("classifier_bits") is not None or "classifier" in r["axes"] else None,
            "bias_extra": r["bias_extra"] if "classifier" in r["axes"] else None,
            "train_images": r["train_images"], "test_images": r["test_images"],
            "seconds_stdp": cv["seconds"].get("stdp"), "seconds_features": cv["seconds"].get("features"),
            "seconds_classifier": cl["seconds"].get("train"), "seconds_point": r["seconds_point"],
            "key": r["key"], "conv1_key": cv["key"], "classifier_key": cl["key"],
        }
        rows.append({k: row.get(k) for k in CSV_COLUMNS})
    return rows


def _csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: ("" if v is None else (f"{v:.6g}" if isinstance(v, float) else v))
                    for k, v in row.items()})
    return buf.getvalue()


# --- summary ---------------------------------------------------------------------------------

def _stats(values: list[float]) -> dict[str, Any]:
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0, "n": len(a)}


def _group(results: list[dict], axis: str, value) -> list[dict[str, Any]]:
    """Rows ``{value..., acc: stats, ...}`` of one axis, grouped over repeats, sorted by value."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in results:
        if axis in r["axes"]:
            groups[value(r)].append(r)
    out = []
    for v in sorted(groups):
        rs = groups[v]
        row = {"value": list(v), "acc": _stats([r["acc"] for r in rs]),
               "balanced_acc": _stats([r["balanced_acc"] for r in rs]),
               "float_classifier_acc": _stats([r["float_classifier_acc"] for r in rs]),
               "labels": sorted({r["label"] for r in rs})}
        if rs[0].get("acc_qat") is not None:
            row["acc_ptq"] = _stats([r["acc_ptq"] for r in rs])
        sms = [r["softmax"] for r in rs if r.get("softmax")]
        if sms:
            row["softmax"] = {"max_abs_err": max(s["max_abs_err"] for s in sms),
                              "mean_abs_err": float(np.mean([s["mean_abs_err"] for s in sms])),
                              "argmax_agreement": min(s["argmax_agreement"] for s in sms)}
        f = [r["formats"] for r in rs if r["formats"]]
        if f:
            c = f[0]["classifier"]
            row["frac"] = sorted({(x["classifier"]["hidden_weight_frac"], x["classifier"]["output_weight_frac"])
                                  for x in f})
            row["bias_bits"] = [c["hidden_bias_bits"], c["output_bias_bits"]]
            row["saturated"] = {k: int(sum((r.get("saturated") or {}).get(k, 0) for r in rs))
                                for k in ("W2", "b2", "W3", "b3")}
        out.append(row)
    return out


def _smallest(rows: list[dict], float_acc: float, tol: float, size=lambda v: v[0],
              ok=lambda row: True) -> dict | None:
    """The smallest row (by ``size``) from which every larger row is within ``tol`` points."""
    rows = sorted(rows, key=lambda r: size(r["value"]))
    best = None
    for row in reversed(rows):
        if row["acc"]["mean"] >= float_acc - tol / 100 - 1e-12 and ok(row):
            best = row
        else:
            break
    return None if best is None else {"value": best["value"], "acc": best["acc"]["mean"],
                                      "delta_points": 100 * (best["acc"]["mean"] - float_acc)}


def summarize(results: list[dict], sections: Iterable[Section | str]) -> dict[str, Any]:
    """Per section (a dataset name is a section of the whole dataset): float baseline, base
    point, the axis tables and the smallest formats."""
    out: dict[str, Any] = {}
    for sec in sections:
        sec = Section(sec, sec) if isinstance(sec, str) else sec
        rs = [r for r in results if sec.holds(r)]
        flt = [r["acc"] for r in rs if r["model"] == "float"]
        d: dict[str, Any] = {"float": _stats(flt) if flt else None}
        base = [r for r in rs if "base" in r["axes"]]
        d["base"] = None
        if base:
            d["base"] = {"label": base[0]["label"], "acc": _stats([r["acc"] for r in base]),
                         "balanced_acc": _stats([r["balanced_acc"] for r in base])}
            if flt:
                d["base"]["gap_points"] = 100 * (d["base"]["acc"]["mean"] - d["float"]["mean"])
        conv = _group(rs, "conv", lambda r: (r["formats"]["conv"]["weight_bits"], r["formats"]["stdp"]["rounding"]))
        cls = _group(rs, "classifier", lambda r: (r["formats"]["classifier"]["hidden_weight_bits"],))
        lut = _group(rs, "lut", lambda r: (r["formats"]["softmax"]["exp_lut_entries"],
                                           r["formats"]["softmax"]["exp_lut_bits"],
                                           r["formats"]["softmax"]["softmax_bits"]))
        custom = _group(rs, "custom", lambda r: (r["label"],))
        d.update(conv=conv, classifier=cls, lut=lut, custom=custom, smallest={})
        if flt:
            fa = d["float"]["mean"]
            for tol in TOLERANCES:
                t = str(tol)
                per_mode = {}
                for mode in sorted({row["value"][1] for row in conv}):
                    per_mode[mode] = _smallest([row for row in conv if row["value"][1] == mode], fa, tol)
                found = [v for v in per_mode.values() if v is not None]
                overall = min(found, key=lambda v: (v["value"][0], -v["acc"])) if found else None
                d["smallest"][t] = {
                    "conv": overall, "conv_per_rounding": per_mode,
                    "classifier": _smallest(cls, fa, tol),
                    # Every LUT gives the same classes; the smallest table (entries x bits)
                    # whose softmax argmax always agrees with the logits'.
                    "lut": _smallest(lut, fa, tol, size=lambda v: v[0] * v[1],
                                     ok=lambda row: row.get("softmax", {}).get("argmax_agreement", 0) == 1.0),
                }
        out[sec.name] = d
    return out


# --- markdown --------------------------------------------------------------------------------

def _acc(st: dict | None, float_acc: float | None = None) -> str:
    if st is None:
        return "n/a"
    s = f"{100 * st['mean']:.2f}"
    if st["n"] > 1:
        s += f" ± {100 * st['std']:.2f}"
    if float_acc is not None:
        s += f" ({100 * (st['mean'] - float_acc):+.2f})"
    return s


def _small(v: dict | None, fmt) -> str:
    return "none tested" if v is None else f"{fmt(v['value'])} ({100 * v['acc']:.2f}%, {v['delta_points']:+.2f})"


def markdown(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    """``results.md``: the tables of :func:`summarize` with what was run."""
    L = [f"# Quantization sweep ({meta['folder']})", ""]
    L.append(f"Base formats: `{meta['base']}`; classifier-bits fraction rule: `{meta['frac_rule']}` "
             f"(biases {meta['bias_extra']} bits wider); repeats: {meta['repeats']}; QAT epochs: "
             f"{meta['qat'] or 'none (post-training quantization only)'}; code version {meta['code']}.")
    if meta["qat"]:
        L.append(f"QAT fine-tunes each integer point for {meta['qat']} more epochs after the float "
                 "training: part of a gain over post-training quantization (PTQ) can be the extra "
                 "training rather than the quantization awareness.")
    L.append("Accuracies are test accuracies in percent, mean over repeats (± sample std with several "
             "repeats); in parentheses the difference to the float pipeline in points. Every integer "
             "point runs the whole integer pipeline (encoder, STDP, features, integer classifier) at its "
             "formats; the float pipeline is the reference.")
    L.append("")
    for ds, d in summary.items():
        info = meta["datasets"].get(ds, {})
        L.append(f"## {ds}")
        L.append("")
        if info.get("options"):
            L.append(f"Options: {info['options']}.")
            L.append("")
        L.append(f"{info.get('train', '?')} train / {info.get('test', '?')} test images, "
                 f"{info.get('classes', '?')} classes; Conv1 STDP on the first {info.get('stdp_images', '?')} "
                 f"training images; classifier H={info.get('hidden', '?')}, {info.get('epochs', '?')} epochs "
                 f"(best validation epoch kept; validation = first 9% of the training rows).")
        L.append("")
        fa = d["float"]["mean"] if d["float"] else None
        L.append(f"- float pipeline: **{_acc(d['float'])}%**")
        if d["base"]:
            gap = d["base"].get("gap_points")
            L.append(f"- {d['base']['label']}: **{_acc(d['base']['acc'])}%** (balanced "
                     f"{_acc(d['base']['balanced_acc'])}%)" + (f", gap to float **{gap:+.2f}** points" if gap is not None else ""))
        L.append("")
        if d["conv"]:
            modes = sorted({row["value"][1] for row in d["conv"]})
            bits = sorted({row["value"][0] for row in d["conv"]})
            cell = {tuple(row["value"]): row for row in d["conv"]}
            L.append("### Conv1 weight bits x STDP rounding (classifier and softmax at the base)")
            L.append("")
            L.append("| conv bits | " + " | ".join(modes) + " | float classifier on these features (" + ", ".join(modes) + ") |")
            L.append("|---:|" + "---:|" * len(modes) + "---|")
            for b in bits:
                accs = [_acc(cell[(b, m)]["acc"], fa) if (b, m) in cell else "" for m in modes]
                fcs = [f"{100 * cell[(b, m)]['float_classifier_acc']['mean']:.2f}" if (b, m) in cell else "-" for m in modes]
                L.append(f"| {b} | " + " | ".join(accs) + " | " + " / ".join(fcs) + " |")
            L.append("")
        if d["classifier"]:
            qat = any("acc_ptq" in row for row in d["classifier"])
            L.append("### Classifier weight bits (hidden and output; Conv1 and softmax at the base)")
            L.append("")
            head = "| bits | frac (hidden, output) | bias bits | accuracy" + (" (QAT) | PTQ" if qat else "") + \
                   " | saturated values (W2, b2, W3, b3) |"
            L.append(head)
            L.append("|---:|---|---|---:|" + ("---:|" if qat else "") + "---|")
            for row in d["classifier"]:
                frac = ", ".join(f"({h}, {o})" for h, o in row["frac"])
                sat = row["saturated"]
                L.append(f"| {row['value'][0]} | {frac} | {row['bias_bits'][0]}, {row['bias_bits'][1]} | "
                         f"{_acc(row['acc'], fa)} | " + (f"{_acc(row['acc_ptq'], fa)} | " if qat else "") +
                         f"{sat['W2']}, {sat['b2']}, {sat['W3']}, {sat['b3']} |")
            L.append("")
        if d["lut"]:
            L.append("### Exp LUT (entries : bits, softmax word bits)")
            L.append("")
            L.append("The class is the argmax of the integer logits, so the LUT does not change the accuracy; "
                     "what it changes is the softmax words' error against the float softmax of the same logits.")
            L.append("")
            L.append("| LUT | softmax bits | table bits | accuracy | max abs error | mean abs error | argmax agreement |")
            L.append("|---|---:|---:|---:|---:|---:|---:|")
            for row in d["lut"]:
                e, b, s = row["value"]
                sm = row.get("softmax", {})
                L.append(f"| {e}:{b} | {s} | {e * b} | {_acc(row['acc'], fa)} | {sm.get('max_abs_err', float('nan')):.2e} | "
                         f"{sm.get('mean_abs_err', float('nan')):.2e} | {100 * sm.get('argmax_agreement', float('nan')):.2f}% |")
            L.append("")
        if d["custom"]:
            L.append("### Custom points")
            L.append("")
            L.append("| point | accuracy | balanced |")
            L.append("|---|---:|---:|")
            for row in d["custom"]:
                L.append(f"| {row['value'][0]} | {_acc(row['acc'], fa)} | {_acc(row['balanced_acc'])} |")
            L.append("")
        if d["smallest"]:
            L.append("### Smallest formats within 0.5 and 1.0 points of float")
            L.append("")
            L.append("Smallest tested value from which every larger tested value stays within the tolerance; "
                     "one axis at a time, the others at the base.")
            L.append("")
            L.append("| axis | within 0.5 points | within 1.0 points |")
            L.append("|---|---|---|")
            s5, s10 = d["smallest"]["0.5"], d["smallest"]["1.0"]
            L.append(f"| conv weight bits (any rounding) | {_small(s5['conv'], lambda v: f'{v[0]} bits, {v[1]}')} | "
                     f"{_small(s10['conv'], lambda v: f'{v[0]} bits, {v[1]}')} |")
            for mode in s5["conv_per_rounding"]:
                L.append(f"| conv weight bits, {mode} | {_small(s5['conv_per_rounding'][mode], lambda v: f'{v[0]} bits')} | "
                         f"{_small(s10['conv_per_rounding'][mode], lambda v: f'{v[0]} bits')} |")
            L.append(f"| classifier weight bits | {_small(s5['classifier'], lambda v: f'{v[0]} bits')} | "
                     f"{_small(s10['classifier'], lambda v: f'{v[0]} bits')} |")
            L.append(f"| exp LUT | {_small(s5['lut'], lambda v: f'{v[0]}:{v[1]}')} | "
                     f"{_small(s10['lut'], lambda v: f'{v[0]}:{v[1]}')} |")
            L.append("")
    if meta.get("failed"):
        L.append("## Failed points")
        L.append("")
        for f in meta["failed"]:
            L.append(f"- {f['label']}: {f['error']}")
        L.append("")
    L.append("## Run")
    L.append("")
    for line in meta.get("run_lines", []):
        L.append(f"- {line}")
    L.append("")
    return "\n".join(L)


def run_lines(outcome, scheduler: str | None, workers: int | None) -> list[str]:
    """What a run computed, where, and how long its stages took (for ``results.md``)."""

    res = outcome.results

    def mean(key: str, sub: str) -> str:
        v = [r[sub]["seconds"].get(key) for r in res if r[sub]["seconds"].get(key) is not None]
        return format_duration(float(np.mean(v))) if v else "n/a"

    where = f"scheduler {scheduler}" if scheduler else \
        f"LocalCluster, {workers or usable_cpus()} worker processes x 1 thread"
    c, k = outcome.computed, outcome.cached
    return [
        f"{len(outcome.plan.tasks)} points; {outcome.already_done} were already stored; this run computed "
        f"{c['conv1']} Conv1 stages, {c['classifier']} classifier trainings and {c['point']} points "
        f"(cache hits: {k['conv1']} Conv1, {k['classifier']} classifier)",
        f"this run: {format_duration(outcome.seconds)} wall time on {where}",
        f"mean stage times (as first computed, 1 thread each, on a shared machine): Conv1 STDP "
        f"{mean('stdp', 'conv1')}, features {mean('features', 'conv1')}, classifier training "
        f"{mean('train', 'classifier')}",
    ]


def report_meta(sweep, code: str, dataset_ids: dict, folder: RunFolder, lines: list[str],
                failed: list[dict]) -> dict[str, Any]:
    """The ``meta`` of :func:`write_report`: what was run, per section (``datasets``, keyed by
    the section name, :func:`report_sections`) and overall."""
    datasets = {}
    for sec in report_sections(sweep):
        ident = dataset_ids[sec.dataset]
        opts = network_options(sweep, sec.dataset, 0, sec.hidden)
        c = opts.classifier
        diff = changed_keys(opts, options_preset("authors-code", sec.dataset))
        diff = {k: v for k, v in diff.items() if k not in ("conv.seed", "classifier.seed")}
        datasets[sec.name] = {"train": ident["train"], "test": ident["test"], "classes": ident["classes"],
                        "options": " + ".join([sweep.options] + [f"{k}={v}" for k, v in sweep.settings])
                                   + "; differs from authors-code in "
                                   + (", ".join(f"{k}={v}" for k, v in diff.items()) or "nothing"),
                        "network_options": opts.to_dict(),
                        "epochs": c.epochs, "hidden": c.hidden,
                        "stdp_images": min(sweep.stdp_images, ident["train"])}
    return {"folder": str(folder.path), "base": sweep.base, "frac_rule": sweep.frac_rule,
            "bias_extra": sweep.bias_extra, "repeats": sweep.repeats, "qat": sweep.qat, "code": code,
            "datasets": datasets, "failed": failed, "run_lines": lines, "sweep": sweep.to_dict()}


def write_report(folder: RunFolder, results: list[dict], sections: Iterable[Section | str],
                 meta: dict[str, Any]) -> dict[str, Any]:
    """Write every report file into ``folder`` (``sections``: :func:`report_sections`, or
    dataset names); returns the summary."""
    summary = summarize(results, list(sections))
    folder.write_text("results.csv", _csv_text(csv_rows(results)),
                      "one row per point and repeat (accuracies in percent)")
    folder.write_json("summary.json", {"summary": summary, "meta": meta},
                      "per dataset: float baseline, base gap, axis tables, smallest formats within 0.5/1.0 points")
    folder.write_text("results.md", markdown(summary, meta), "the tables and the smallest formats, as Markdown")
    write_plots(folder, summary)
    return summary
