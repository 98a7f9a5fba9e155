"""The paper's figures as PNG files (and one GIF): Conv1 features, STDP statistics, accuracy.

Every plot function takes plain arrays and an output path, writes the file atomically and
returns the path. Figures are drawn on matplotlib ``Figure`` objects with the Agg canvas, never
through ``pyplot``, so no global backend or figure state is touched (safe in tests, threads and
headless runs). :func:`write_all_plots` writes the whole set into a
:class:`~spykehw.output.RunFolder` and records each file in its manifest.

Conv1 kernels are drawn as **ON minus OFF** weight (``mode="on_minus_off"``, the default): red
where the map wants an ON-centre spike, blue where it wants an OFF one, white where both weights
are equal (at initialisation everything is 0.8 - 0.8 = 0). ``mode="on_off"`` draws the ON
(top) and OFF (bottom) kernels of each map in grey, 0 = black, 1 = white, split by an orange
line. Weights must be
fractions of 1 (:meth:`~spykehw.golden.conv_training.TrainTrace.to_unit` converts integer weights).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .golden.classifier import best_epoch_index
from .output import RunFolder, atomic_write

__all__ = [
    "FEATURE_MODES",
    "PAPER_CONVERGENCE_BAND",
    "PAPER_WINNERS_PER_IMAGE",
    "spikes_per_label",
    "conv1_features_plot",
    "conv1_features_gif",
    "convergence_plot",
    "stdp_winners_plot",
    "updates_per_map_plot",
    "spikes_per_map_per_label_plot",
    "confusion_plot",
    "per_class_accuracy_plot",
    "classifier_history_plot",
    "write_all_plots",
]

FEATURE_MODES = ("on_minus_off", "on_off")
PAPER_CONVERGENCE_BAND = (0.01, 0.02)
"""The paper's stopping rule ``0.01 < C_l < 0.02`` (spec 8: plotted, never applied)."""
PAPER_WINNERS_PER_IMAGE = 5.8
"""STDP winners per image the paper reports for EMNIST Conv1 (spec 9)."""

_HIGHLIGHT = "tab:orange"
_PLAIN = "tab:blue"


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png")
    return path


def _rgb(fig: Figure) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


# ----- Conv1 features --------------------------------------------------------------------------

def _check_snapshots(snapshots: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = np.asarray(snapshots, dtype=np.float64)
    steps = np.asarray(steps)
    if w.ndim != 5 or w.shape[2] != 2:
        raise ValueError(f"snapshots: expected (S, M, 2, K, K) weights, got shape {w.shape}")
    if steps.shape != (len(w),):
        raise ValueError(f"steps: expected shape ({len(w)},), got {steps.shape}")
    return w, steps


_DIVIDER = 2.0
"""Value of the line between the ON and OFF halves of a tile: above ``vmax``, so drawn in the
colour map's ``over`` colour, distinct from the gaps between tiles (NaN, ``bad``)."""


def _kernel_image(w: np.ndarray, mode: str) -> np.ndarray:
    """One map's (2, K, K) weights as the 2-d tile that is drawn (ON above OFF for
    ``on_off``)."""
    if mode == "on_minus_off":
        return w[0] - w[1]
    if mode == "on_off":
        K = w.shape[2]
        return np.concatenate([w[0], np.full((1, K), _DIVIDER), w[1]], axis=0)
    raise ValueError(f"mode: expected one of {', '.join(FEATURE_MODES)}, not {mode!r}")


def _mosaic(tiles: list[list[np.ndarray | None]], gap: int) -> tuple[np.ndarray, int, int]:
    """Tiles (rows x cols of equal 2-d arrays, None = empty) in one array with ``gap`` NaN
    lines between tiles; returns the array and the tile pitch (height, width). One image instead
    of one axes per kernel keeps a 30-map figure fast to draw."""
    th, tw = next(t for row in tiles for t in row if t is not None).shape
    ph, pw = th + gap, tw + gap
    out = np.full((len(tiles) * ph - gap, max(len(r) for r in tiles) * pw - gap), np.nan)
    for i, row in enumerate(tiles):
        for j, t in enumerate(row):
            if t is not None:
                out[i * ph:i * ph + th, j * pw:j * pw + tw] = t
    return out, ph, pw


def _draw_kernels(ax, tiles, mode: str, gap: int = 1):
    """imshow of the mosaic of ``tiles``; returns the image and the tile pitch."""
    img, ph, pw = _mosaic(tiles, gap)
    name, lo, hi = ("RdBu_r", -1.0, 1.0) if mode == "on_minus_off" else ("gray", 0.0, 1.0)
    # Gaps in a colour no weight has, so that equal tiles (white, or all 1) stay apart.
    gap_colour = "#b0b0b0" if mode == "on_minus_off" else "#bcd4ea"
    cmap = matplotlib.colormaps[name].with_extremes(bad=gap_colour, over="tab:orange")
    im = ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
    for side in ax.spines.values():
        side.set_visible(False)
    return im, ph, pw


def _mode_label(mode: str) -> str:
    return "ON minus OFF weight" if mode == "on_minus_off" else "ON (top) / OFF (bottom) weights"


def _step_label(step: int, steps_per_image: int) -> str:
    return f"step {int(step)}\n(image {int(step) // steps_per_image})"


def _default_rows(n: int, rows: int = 5) -> list[int]:
    return sorted(set(np.linspace(0, n - 1, min(n, rows)).round().astype(int).tolist()))


def conv1_features_plot(snapshots: np.ndarray, steps: np.ndarray, path: str | Path, *,
                        show: Sequence[int] | None = None, mode: str = "on_minus_off",
                        steps_per_image: int = 12) -> Path:
    """Grid of every map's kernel (columns) for a few snapshots (rows), like the paper's figure
    of the features' evolution.

    ``snapshots`` (S, M, 2, K, K) weights in [0, 1]; ``steps`` (S,) global step of each;
    ``show`` the snapshot indices to draw (default: up to 5 evenly spaced, first and last
    included).
    """
    w, steps = _check_snapshots(snapshots, steps)
    rows = list(show) if show is not None else _default_rows(len(w))
    if not rows:
        raise ValueError("snapshots: nothing to draw")
    M = w.shape[1]
    tiles = [[_kernel_image(w[s, m], mode) for m in range(M)] for s in rows]
    th, tw = tiles[0][0].shape
    fig = _figure(1.8 + 0.36 * M, 1.2 + 0.36 * len(rows) * (th + 1) / (tw + 1))
    ax = fig.subplots()
    im, ph, pw = _draw_kernels(ax, tiles, mode)
    ax.set_xticks(np.arange(M) * pw + (pw - 2) / 2, [str(m) for m in range(M)], fontsize=7)
    ax.set_yticks(np.arange(len(rows)) * ph + (ph - 2) / 2,
                  [_step_label(steps[s], steps_per_image) for s in rows], fontsize=7)
    ax.tick_params(length=0)
    ax.xaxis.tick_top()
    ax.set_xlabel("map", fontsize=8)
    ax.set_title(f"Conv1 features during STDP training: {_mode_label(mode)} "
                 f"(columns: maps, rows: snapshots)", fontsize=10)
    if mode == "on_minus_off":
        fig.colorbar(im, ax=ax, shrink=0.7, fraction=0.02, pad=0.01)
    return _save(fig, path)


def conv1_features_gif(snapshots: np.ndarray, steps: np.ndarray, path: str | Path, *,
                       mode: str = "on_minus_off", fps: float = 4.0,
                       steps_per_image: int = 12) -> Path:
    """Animated GIF of all maps' kernels, one frame per snapshot (Pillow)."""
    from PIL import Image

    w, steps = _check_snapshots(snapshots, steps)
    S, M = w.shape[:2]
    if S == 0:
        raise ValueError("snapshots: no snapshot to animate")
    cols = max(1, math.ceil(math.sqrt(M * 1.2)))  # 6 x 5 for 30 maps
    rows = math.ceil(M / cols)
    tall = 2.1 if mode == "on_off" else 1.0
    fig = _figure(0.3 + 0.85 * cols, 0.75 + 0.9 * tall * rows)
    ax = fig.subplots()
    ax.set_xticks([])
    ax.set_yticks([])
    frames = []
    for s in range(S):
        tiles = [[_kernel_image(w[s, m], mode) if m < M else None
                  for m in range(r * cols, (r + 1) * cols)] for r in range(rows)]
        ax.clear()
        # Tiles 2 lines apart; each map's number sits in the gap above its tile.
        _, ph, pw = _draw_kernels(ax, tiles, mode, gap=2)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylim(rows * ph - 1.5, -2.5)
        for m in range(M):
            ax.text((m % cols) * pw + (pw - 3) / 2, (m // cols) * ph - 1.5, str(m),
                    ha="center", va="center", fontsize=7)
        # The title changes every frame, so Pillow never merges two frames into one.
        ax.set_title(f"Conv1 {_mode_label(mode)}\nsnapshot {s + 1}/{S}, step {int(steps[s])} "
                     f"(image {int(steps[s]) // steps_per_image})", fontsize=9, pad=12)
        frames.append(Image.fromarray(_rgb(fig)).convert("P", palette=Image.Palette.ADAPTIVE))
    return _save_gif(frames, path, fps)


# ----- STDP statistics -------------------------------------------------------------------------

def convergence_plot(conv: np.ndarray, td: np.ndarray, steps: np.ndarray, path: str | Path, *,
                     steps_per_image: int = 12,
                     band: tuple[float, float] | None = PAPER_CONVERGENCE_BAND) -> Path:
    """``C_l`` and ``TD`` per snapshot (spec 8, from :meth:`TrainTrace.convergence`) against
    the images seen; ``steps`` are the global steps of snapshots 1.. (``snapshot_steps[1:]``).
    The paper's stop band ``0.01 < C_l < 0.02`` is shaded for reference."""
    conv, td, steps = (np.asarray(a, dtype=np.float64) for a in (conv, td, steps))
    if not conv.shape == td.shape == steps.shape or conv.ndim != 1:
        raise ValueError(f"conv, td, steps: expected three (S,) arrays, got {conv.shape}, "
                         f"{td.shape}, {steps.shape}")
    x = steps / steps_per_image
    fig = _figure(7.5, 5.5)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    ax1.plot(x, conv, "o-", color=_PLAIN, ms=3, label="$C_l$ = mean w(1-w)")
    if band is not None:
        ax1.axhspan(band[0], band[1], color="tab:green", alpha=0.2,
                    label=f"paper's stop band {band[0]} < $C_l$ < {band[1]}")
    ax1.set_ylabel("convergence $C_l$")
    ax1.set_ylim(bottom=0)
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    ax2.plot(x, td, "o-", color="tab:red", ms=3, label="TD = mean $(w_{s-1} - w_s)^2$")
    if len(td) and np.all(td > 0):
        ax2.set_yscale("log")
    ax2.set_ylabel("temporal difference TD")
    ax2.set_xlabel("training images seen")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    last = f": last $C_l$ = {conv[-1]:.4f}, TD = {td[-1]:.2e}" if len(conv) else ""
    fig.suptitle(f"Conv1 weight convergence per snapshot{last}", fontsize=10)
    return _save(fig, path)


def stdp_winners_plot(winners_per_image: np.ndarray, path: str | Path, *, window: int = 100,
                      reference: float | None = PAPER_WINNERS_PER_IMAGE) -> Path:
    """Histogram of STDP winners per image and its running mean over ``window`` images
    (:meth:`TrainTrace.winners_per_image`); the paper's EMNIST figure (5.8) for reference."""
    k = np.asarray(winners_per_image, dtype=np.int64)
    if k.ndim != 1:
        raise ValueError(f"winners_per_image: expected (N,), got {k.shape}")
    fig = _figure(10, 3.8)
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1, 1.6])
    top = int(k.max()) if len(k) else 0
    ax1.hist(k, bins=np.arange(top + 2) - 0.5, color=_PLAIN, edgecolor="white")
    ax1.set_xlabel("STDP winners in the image")
    ax1.set_ylabel("images")
    mean = float(k.mean()) if len(k) else float("nan")
    ax1.axvline(mean, color="k", ls="--", label=f"mean {mean:.2f}")
    ax1.legend(fontsize=8)
    if len(k):
        w = max(1, min(window, len(k)))
        run = np.convolve(k, np.ones(w) / w, mode="valid")
        ax2.plot(np.arange(w - 1, len(k)), run, color=_PLAIN, label=f"running mean ({w} images)")
    if reference is not None:
        ax2.axhline(reference, color="tab:green", ls=":", label=f"paper (EMNIST): {reference}")
    ax2.set_xlabel("training image")
    ax2.set_ylabel("winners per image")
    ax2.set_ylim(bottom=0)
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    fig.suptitle(f"STDP winners per image: {len(k)} images, mean {mean:.2f}", fontsize=10)
    return _save(fig, path)


def updates_per_map_plot(updates: np.ndarray, path: str | Path, *, layer: str = "Conv1") -> Path:
    """Bar chart of STDP updates per map (the true counts; the authors' bars start at 1)."""
    u = np.asarray(updates, dtype=np.int64)
    if u.ndim != 1:
        raise ValueError(f"updates: expected (M,), got {u.shape}")
    fig = _figure(min(16.0, max(6.0, 0.28 * len(u) + 1.5)), 3.8)
    ax = fig.subplots()
    ax.bar(np.arange(len(u)), u, color=_PLAIN)
    ax.set_xticks(np.arange(0, len(u), 1 if len(u) <= 40 else 10))
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel(f"{layer} map")
    ax.set_ylabel("STDP updates")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"STDP updates per map: total {int(u.sum())}, "
                 f"min {int(u.min()) if len(u) else 0}, max {int(u.max()) if len(u) else 0}",
                 fontsize=10)
    return _save(fig, path)


# ----- spikes per class ------------------------------------------------------------------------

def spikes_per_label(pool_counts: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(M, n_classes) int64: pool spikes of each map summed over the images of each label."""
    pc = np.asarray(pool_counts, dtype=np.int64)
    y = np.asarray(labels, dtype=np.int64)
    if pc.ndim != 2 or y.shape != (pc.shape[0],):
        raise ValueError(f"pool_counts (N, M) and labels (N,) expected, got {pc.shape} and {y.shape}")
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels: expected 0..{n_classes - 1}, found {y.min()}..{y.max()}")
    out = np.zeros((pc.shape[1], n_classes), dtype=np.int64)
    np.add.at(out.T, y, pc)
    return out


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values, ties to the lower index."""
    return np.argsort(-values, kind="stable")[:k]


def spikes_per_map_per_label_plot(pool_counts: np.ndarray, labels: np.ndarray,
                                  classes: Sequence[str], path: str | Path, *,
                                  maps: Sequence[int] | None = None, top: int = 5) -> Path:
    """For each chosen map (default the first 6), the total pool spikes credited to each label,
    the ``top`` classes highlighted (spec 8, ``spikes_per_map_per_class``)."""
    classes = list(classes)
    table = spikes_per_label(pool_counts, labels, len(classes))
    maps = list(range(min(6, table.shape[0]))) if maps is None else list(maps)
    n = len(classes)
    cols = min(3 if n <= 20 else 2, max(1, len(maps)))
    rows = max(1, math.ceil(len(maps) / cols))
    fig = _figure(max(9.0, cols * (1.0 + (0.13 if n <= 20 else 0.17) * n)), 0.8 + 2.6 * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    x = np.arange(n)
    for i, ax in enumerate(axes.flat):
        if i >= len(maps):
            ax.axis("off")
            continue
        m = maps[i]
        v = table[m]
        best = _top(v, top)
        colors = [_PLAIN] * n
        for b in best:
            colors[b] = _HIGHLIGHT
        ax.bar(x, v, color=colors)
        ax.set_xticks(x)
        ax.set_xticklabels(classes, fontsize=8 if n <= 20 else 7)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_title(f"map {m}: top {', '.join(classes[b] for b in best)}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    total = int(table.sum())
    per = total / len(labels) if len(labels) else float("nan")
    fig.suptitle(f"Pool1 spikes per map credited to each label (top {top} highlighted); "
                 f"all maps: {total} spikes, {per:.1f} per image", fontsize=10)
    fig.supxlabel("label", fontsize=9)
    fig.supylabel("pool spikes", fontsize=9)
    return _save(fig, path)


# ----- classifier results ----------------------------------------------------------------------

def confusion_plot(confusion: np.ndarray, classes: Sequence[str], path: str | Path) -> Path:
    """Row-normalised confusion matrix (rows: true class, columns: predicted), in percent.

    With up to 20 classes every cell is annotated; with more (47 EMNIST classes) only the
    off-diagonal cells of at least 5 % are, so the strong confusions stand out.
    """
    cm = np.asarray(confusion, dtype=np.float64)
    classes = list(classes)
    n = len(classes)
    if cm.shape != (n, n):
        raise ValueError(f"confusion: expected ({n}, {n}) for {n} classes, got {cm.shape}")
    rows = cm.sum(axis=1, keepdims=True)
    pct = np.divide(100 * cm, rows, out=np.zeros_like(cm), where=rows > 0)
    side = 5.5 if n <= 12 else 0.22 * n + 1.5
    fig = _figure(side + 1.0, side)
    ax = fig.subplots()
    im = ax.imshow(pct, cmap="Blues", vmin=0, vmax=100, interpolation="nearest")
    fs = 9 if n <= 30 else 8
    ax.set_xticks(np.arange(n))
    ax.set_yticks(np.arange(n))
    ax.set_xticklabels(classes, fontsize=fs)
    ax.set_yticklabels(classes, fontsize=fs)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            if n <= 20 or (i != j and pct[i, j] >= 5):
                if n <= 20 and cm[i, j] == 0:
                    continue
                ax.text(j, i, f"{pct[i, j]:.0f}" if n > 12 or pct[i, j] >= 1 else f"{pct[i, j]:.1f}",
                        ha="center", va="center", fontsize=fs - 1 if n <= 12 else 6,
                        color="white" if pct[i, j] > 60 else "black")
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02, shrink=0.6, label="% of the true class")
    total = cm.sum()
    acc = 100 * np.trace(cm) / total if total else float("nan")
    ax.set_title(f"Confusion matrix ({int(total)} images, accuracy {acc:.2f}%)", fontsize=10)
    return _save(fig, path)


def per_class_accuracy_plot(per_class: np.ndarray, classes: Sequence[str], path: str | Path, *,
                            worst: int = 5) -> Path:
    """Accuracy (recall) per class as bars, in percent, the ``worst`` classes highlighted and
    the mean (balanced accuracy) drawn. ``per_class`` are fractions in [0, 1]; NaN (a class
    without test samples, as :func:`spykehw.golden.metrics.per_class_accuracy` gives) draws no
    bar and is left out of the mean."""
    a = 100 * np.asarray(per_class, dtype=np.float64)
    classes = list(classes)
    n = len(classes)
    if a.shape != (n,):
        raise ValueError(f"per_class: expected ({n},) for {n} classes, got {a.shape}")
    fig = _figure(max(6.0, 0.22 * n + 2), 3.8)
    ax = fig.subplots()
    colors = [_PLAIN] * n
    bad = _top(-np.nan_to_num(a, nan=np.inf), worst)
    for b in bad:
        colors[b] = "tab:red"
    ax.bar(np.arange(n), a, color=colors)
    mean = float(np.nanmean(a)) if np.isfinite(a).any() else float("nan")
    ax.axhline(mean, color="k", ls="--", lw=1, label=f"mean (balanced accuracy) {mean:.2f}%")
    ax.set_xticks(np.arange(n))
    ax.set_xticklabels(classes, fontsize=9)
    ax.set_xlim(-0.7, n - 0.3)
    ax.set_xlabel("class")
    ax.set_ylabel("accuracy %")
    lo = float(np.nanmin(a)) if np.isfinite(a).any() else 0.0
    ax.set_ylim(max(0.0, min(lo - 5, 90.0)), 100.5)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"Accuracy per class (worst {worst} in red: "
                 f"{', '.join(classes[b] for b in bad)})", fontsize=10)
    return _save(fig, path)


def classifier_history_plot(history: Sequence[dict], path: str | Path, *,
                            best_epoch: int | None = None) -> Path:
    """Train and validation accuracy per epoch (``TrainResult.history``: entry ``e`` is
    evaluated after ``e`` training epochs), the best-validation epoch marked (default: the
    first strictly best validation accuracy, as training picks it)."""
    if not history:
        raise ValueError("history: no epochs")
    ep = np.array([h["epoch"] for h in history])
    tr = 100 * np.array([h["train_acc"] for h in history], dtype=np.float64)
    va = 100 * np.array([h["val_acc"] for h in history], dtype=np.float64)
    if best_epoch is None:
        best_epoch = best_epoch_index(va)
    fig = _figure(7.5, 4.2)
    ax = fig.subplots()
    ax.plot(ep, tr, "o-", ms=3, color=_PLAIN, label="train")
    ax.plot(ep, va, "s-", ms=3, color=_HIGHLIGHT, label="validation")
    title = "Classifier training"
    hit = np.flatnonzero(ep == best_epoch)
    if len(hit):
        i = int(hit[0])
        ax.axvline(ep[i], color="tab:green", ls=":", lw=1)
        ax.plot(ep[i], va[i], "*", ms=14, color="tab:green",
                label=f"best validation {va[i]:.2f}% after {int(ep[i])} epochs")
        title += f": best validation {va[i]:.2f}% after {int(ep[i])} epochs"
    # The untrained entry (epoch 0, near chance) would squash the curves: scale the axis to the
    # trained epochs and say in words where the untrained point is.
    later = np.concatenate([tr[ep >= 1], va[ep >= 1]])
    later = later[np.isfinite(later)]
    if len(later):
        lo, hi = max(0.0, later.min() - 2), min(100.5, later.max() + 2)
        ax.set_ylim(lo, hi)
        first = np.flatnonzero(ep == 0)
        if len(first) and min(tr[first[0]], va[first[0]]) < lo:
            ax.text(0.01, 0.02, f"after 0 epochs: train {tr[first[0]]:.1f}%, validation "
                    f"{va[first[0]]:.1f}% (below the axis)", transform=ax.transAxes, fontsize=7)
    ax.set_xlabel("epochs trained")
    ax.set_ylabel("accuracy %")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


# ----- all of them -----------------------------------------------------------------------------

def write_all_plots(folder: RunFolder, *, trace=None, run=None, labels=None,
                    classes: Sequence[str] | None = None, confusion=None, per_class=None,
                    history=None, prefix: str = "", best_epoch: int | None = None,
                    maps: Sequence[int] | None = None, mode: str = "on_minus_off") -> dict[str, Path]:
    """Write every plot whose inputs are given into ``folder`` and record each in its manifest.

    Parameters
    ----------
    trace : TrainTrace, optional
        Conv1 training: feature grid + GIF, convergence (with >= 2 snapshots), STDP winners,
        updates per map.
    run, labels : ConvRun and (N,) labels, optional
        Spikes per map per label (``run.pool_counts``); needs ``classes``.
    confusion, per_class : optional
        Confusion matrix (C, C) counts and per-class accuracy (C,) fractions
        (:func:`~spykehw.golden.metrics.confusion_matrix`,
        :func:`~spykehw.golden.metrics.per_class_accuracy`); need ``classes``.
    history : TrainResult or its ``history`` list, optional
        Classifier training curves; the best epoch comes from the TrainResult or
        ``best_epoch``.
    prefix : str
        Prepended to every file name (e.g. ``"float-"``).

    Returns
    -------
    dict
        Plot name -> path of the written file.
    """
    out: dict[str, Path] = {}

    def emit(key: str, name: str, description: str, fn, *args, **kwargs) -> None:
        fn(*args, folder.file(prefix + name), **kwargs)
        out[key] = folder.add(prefix + name, description)

    if trace is not None:
        unit = trace.to_unit(trace.snapshots) if trace.to_unit is not None else trace.snapshots
        if len(unit):
            emit("conv1_features", "conv1-features.png",
                 f"Conv1 kernels ({_mode_label(mode)}) at a few snapshots", conv1_features_plot,
                 unit, trace.snapshot_steps, mode=mode)
            emit("conv1_features_gif", "conv1-features.gif",
                 f"Conv1 kernels ({_mode_label(mode)}), one frame per snapshot",
                 conv1_features_gif, unit, trace.snapshot_steps, mode=mode)
        if len(unit) >= 2:
            conv, td = trace.convergence()
            emit("convergence", "conv1-convergence.png",
                 "Conv1 convergence C_l and temporal difference TD per snapshot",
                 convergence_plot, conv, td, trace.snapshot_steps[1:])
        emit("stdp_winners", "stdp-winners.png", "STDP winners per image (histogram, running mean)",
             stdp_winners_plot, trace.winners_per_image())
        emit("updates_per_map", "stdp-updates-per-map.png", "STDP updates per Conv1 map",
             updates_per_map_plot, trace.updates_per_map)
    needs_classes = [k for k, v in (("run", run), ("confusion", confusion), ("per_class", per_class))
                     if v is not None]
    if needs_classes and classes is None:
        raise ValueError(f"classes: needed for {', '.join(needs_classes)}")
    if run is not None:
        if labels is None:
            raise ValueError("labels: needed with run")
        emit("spikes_per_label", "spikes-per-map-per-label.png",
             "Pool1 spikes per map credited to each label, top 5 highlighted",
             spikes_per_map_per_label_plot, run.pool_counts, labels, classes, maps=maps)
    if confusion is not None:
        emit("confusion", "confusion.png", "Confusion matrix (row-normalised, %)",
             confusion_plot, confusion, classes)
    if per_class is not None:
        emit("per_class", "accuracy-per-class.png", "Accuracy per class",
             per_class_accuracy_plot, per_class, classes)
    if history is not None:
        hist = getattr(history, "history", history)
        best = best_epoch if best_epoch is not None else getattr(history, "best_epoch", None)
        if hist:
            emit("history", "classifier-training.png",
                 "Classifier train/validation accuracy per epoch, best epoch marked",
                 classifier_history_plot, hist, best_epoch=best)
    return out


def _save_gif(frames: list, path: str | Path, fps: float) -> Path:
    """Write Pillow frames as a looping GIF at ``fps`` frames per second (atomically)."""
    path = Path(path)
    with atomic_write(path, "wb") as f:
        frames[0].save(f, format="GIF", save_all=True, append_images=frames[1:],
                       duration=max(20, int(round(1000 / fps))), loop=0)
    return path
