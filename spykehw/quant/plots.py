"""The sweep's plots (written by :func:`spykehw.quant.report.write_report`), one set per report
section (a dataset, or a dataset and hidden size):

``acc-vs-conv-bits-<section>.png``, ``acc-vs-classifier-bits-<section>.png``
    accuracy against bits (one line per STDP rounding mode) with the float baseline drawn as a
    line and the report's point tolerances dashed;
``softmax-error-vs-lut-<section>.png``
    the integer softmax words' error against the float softmax of the same logits, per LUT.

Each takes a section's summary (:func:`spykehw.quant.report.summarize`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..output import RunFolder, atomic_write

__all__ = ["write_plots"]


def _figure(w: float, h: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, folder: RunFolder, name: str, description: str) -> None:
    with atomic_write(folder.file(name), "wb") as f:
        fig.savefig(f, format="png")
    folder.add(name, description)


def _float_lines(ax, d: dict) -> None:
    if not d["float"]:
        return
    fa = 100 * d["float"]["mean"]
    ax.axhline(fa, color="k", lw=1.5, label=f"float pipeline {fa:.2f}%")
    for tol, ls in zip((float(t) for t in d["smallest"]), ("--", ":")):
        ax.axhline(fa - tol, color="0.4", lw=1, ls=ls, label=f"float - {tol} points")


def _curves_plot(folder: RunFolder, name: str, description: str, title: str, xlabel: str,
                 curves: list[tuple[str, str, list, list, list]], d: dict) -> None:
    """Accuracy curves ``(label, style, x, y %, std %)`` with the float baseline: the whole
    range on the left, and on the right a zoom on the band within 2.5 points of float (where
    the 0.5 and 1.0 point tolerances can be read)."""
    fig = _figure(11, 4.5)
    axes = fig.subplots(1, 2) if d["float"] else [fig.subplots()]
    xs = sorted({x for c in curves for x in c[2]})
    for k, ax in enumerate(axes):
        for label, style, x, y, e in curves:
            ax.errorbar(x, y, yerr=e if any(e) else None, fmt=style, capsize=3, label=label)
        _float_lines(ax, d)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy %")
        ax.set_xticks(xs)
        ax.grid(alpha=0.3)
        if k == 1:
            fa = 100 * d["float"]["mean"]
            ax.set_ylim(fa - 2.5, fa + 0.75)
            ax.set_title("zoom: within 2.5 points of float", fontsize=9)
        else:
            ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(title, fontsize=10)
    _save(fig, folder, name, description)


def _plot_conv(folder: RunFolder, ds: str, d: dict) -> None:
    curves = []
    for mode in sorted({row["value"][1] for row in d["conv"]}):
        rows = [row for row in d["conv"] if row["value"][1] == mode]
        curves.append((f"STDP rounding {mode}", "o-", [row["value"][0] for row in rows],
                       [100 * row["acc"]["mean"] for row in rows], [100 * row["acc"]["std"] for row in rows]))
    _curves_plot(folder, f"acc-vs-conv-bits-{ds}.png",
                 f"{ds}: test accuracy vs Conv1 weight bits per STDP rounding mode, float baseline line",
                 f"{ds}: accuracy vs Conv1 weight bits (classifier and softmax at the base)",
                 "Conv1 weight bits", curves, d)


def _plot_classifier(folder: RunFolder, ds: str, d: dict) -> None:
    rows = d["classifier"]
    x = [row["value"][0] for row in rows]
    qat = all("acc_ptq" in row for row in rows)
    curves = [("integer classifier" + (" (QAT)" if qat else " (post-training quantization)"), "o-", x,
               [100 * row["acc"]["mean"] for row in rows], [100 * row["acc"]["std"] for row in rows])]
    if qat:
        curves.append(("post-training quantization", "s--", x, [100 * row["acc_ptq"]["mean"] for row in rows],
                       [100 * row["acc_ptq"]["std"] for row in rows]))
    _curves_plot(folder, f"acc-vs-classifier-bits-{ds}.png",
                 f"{ds}: test accuracy vs classifier weight bits, float baseline line",
                 f"{ds}: accuracy vs classifier weight bits, hidden and output "
                 f"(Conv1 and softmax at the base)", "classifier weight bits", curves, d)


def _plot_lut(folder: RunFolder, ds: str, d: dict) -> None:
    rows = [row for row in d["lut"] if "softmax" in row]
    if not rows:
        return
    fig = _figure(7, 4.2)
    ax = fig.subplots()
    names = [f"{e}:{b}\n({s}-bit words)" for e, b, s in (row["value"] for row in rows)]
    xs = np.arange(len(rows))
    mx = [max(row["softmax"]["max_abs_err"], 1e-12) for row in rows]
    mn = [max(row["softmax"]["mean_abs_err"], 1e-12) for row in rows]
    ax.bar(xs - 0.2, mx, 0.4, label="max |word - float softmax|")
    ax.bar(xs + 0.2, mn, 0.4, label="mean |word - float softmax|")
    ax.set_yscale("log")
    ax.set_xticks(xs, names, fontsize=8)
    ax.set_xlabel("exp LUT entries : bits")
    ax.set_ylabel("absolute error (probability units)")
    agree = min(row["softmax"]["argmax_agreement"] for row in rows)
    ax.set_title(f"{ds}: integer softmax words vs float softmax of the same logits\n"
                 f"(argmax agreement {100 * agree:.2f}%: the LUT does not change the class)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, folder, f"softmax-error-vs-lut-{ds}.png",
          f"{ds}: integer softmax error against the float softmax of the same logits, per LUT")


def write_plots(folder: RunFolder, summary: dict[str, Any]) -> None:
    """Every plot of every section of ``summary`` that has the data for it."""
    for name, d in summary.items():
        if d["conv"]:
            _plot_conv(folder, name, d)
        if d["classifier"]:
            _plot_classifier(folder, name, d)
        if d["lut"]:
            _plot_lut(folder, name, d)
