"""The paper's Section VII figures for the second layer (Conv2), from arrays of a run.

- :func:`conv2_spikes_per_image_plot`: STDP winners per image during Conv2 training, with a
  zoomed inset of the first images (the paper's Figure 22);
- :func:`two_layer_convergence_plot`: ``C_l`` and ``TD`` of Conv1 and Conv2 on one figure
  (Figures 23-24 and 27-28);
- :func:`conv2_features_plot` / :func:`conv2_features_gif`: the 5x5x30 Conv2 kernels, each
  minus its mean weight, projected through the Conv1 kernels it connects to the 14x14 input
  patch it sees, drawn as ON minus OFF (red: ON-centre input, blue: OFF), each tile scaled to
  its own largest magnitude (a uniform kernel, as at initialisation, projects to nothing; the
  tiles show what a map learned).

The STDP-updates-per-map bar chart is :func:`spykehw.plots.updates_per_map_plot`. Same rules as
:mod:`spykehw.plots`: plain arrays in, one atomically written file out, no pyplot.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np

from .plots import PAPER_CONVERGENCE_BAND, _figure, _mosaic, _rgb, _save, _save_gif

__all__ = ["project_conv2", "conv2_spikes_per_image_plot", "two_layer_convergence_plot",
           "conv2_features_plot", "conv2_features_gif"]


def project_conv2(w2: np.ndarray, w1: np.ndarray) -> np.ndarray:
    """Conv2 kernels (M2, M1, K2, K2) through the 2x2 pool and the Conv1 kernels (M1, C, K1, K1)
    onto the input: (M2, C, 2*K2 + K1 - 1, same) = (200, 2, 14, 14) for the authors' layers.

    ``out[n, c, Y, X] = sum w2[n, m, i, j] * w1[m, c, kr, kc]`` over ``2i + a + kr = Y``,
    ``2j + b + kc = X``, ``a, b`` in {0, 1} (the pool window)."""
    w2 = np.asarray(w2, dtype=np.float64)
    w1 = np.asarray(w1, dtype=np.float64)
    up = np.repeat(np.repeat(w2, 2, axis=2), 2, axis=3)  # the conv1 positions each pool weight covers
    M2, _, H, _ = up.shape
    K1 = w1.shape[2]
    out = np.zeros((M2, w1.shape[1], H + K1 - 1, H + K1 - 1))
    for kr in range(K1):
        for kc in range(K1):
            out[:, :, kr:kr + H, kc:kc + H] += np.einsum("nmyx,mc->ncyx", up, w1[:, :, kr, kc])
    return out


def _tiles(w2: np.ndarray, w1: np.ndarray, cols: int) -> list[list[np.ndarray | None]]:
    w2 = np.asarray(w2, dtype=np.float64)
    # deviation from the kernel's mean weight: a uniform kernel projects to nothing
    p = project_conv2(w2 - w2.mean(axis=(1, 2, 3), keepdims=True), w1)
    diff = p[:, 0] - p[:, 1]
    scale = np.abs(diff).max(axis=(1, 2), keepdims=True)
    diff = diff / np.where(scale > 0, scale, 1.0)
    M = len(diff)
    return [[diff[m] if m < M else None for m in range(r * cols, (r + 1) * cols)]
            for r in range(math.ceil(M / cols))]


def _draw(ax, tiles) -> None:
    img, _, _ = _mosaic(tiles, 1)
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#b0b0b0")
    ax.imshow(img, cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def conv2_features_plot(w2: np.ndarray, w1: np.ndarray, path: str | Path, *, cols: int = 20,
                        title: str = "") -> Path:
    """All Conv2 kernels projected to the input (module docstring), ``cols`` per row."""
    tiles = _tiles(w2, w1, cols)
    fig = _figure(1.0 + 0.55 * cols, 1.0 + 0.55 * len(tiles))
    ax = fig.subplots()
    _draw(ax, tiles)
    ax.set_title(title or f"Conv2 features ({len(w2)} maps, row-major): kernel minus its mean, projected "
                 "through Conv1, ON minus OFF, each tile scaled to its largest magnitude", fontsize=9)
    return _save(fig, path)


def conv2_features_gif(snapshots: np.ndarray, steps: np.ndarray, w1: np.ndarray, path: str | Path, *,
                       cols: int = 20, fps: float = 4.0, steps_per_image: int = 12) -> Path:
    """Animated GIF of the projected Conv2 kernels, one frame per snapshot."""
    from PIL import Image

    snapshots = np.asarray(snapshots)
    if len(snapshots) == 0:
        raise ValueError("snapshots: no snapshot to animate")
    rows = math.ceil(snapshots.shape[1] / cols)
    fig = _figure(1.0 + 0.4 * cols, 1.0 + 0.4 * rows)
    ax = fig.subplots()
    frames = []
    for s in range(len(snapshots)):
        ax.clear()
        _draw(ax, _tiles(snapshots[s], w1, cols))
        ax.set_title(f"Conv2 features projected through Conv1 (ON minus OFF)\nsnapshot {s + 1}/"
                     f"{len(snapshots)}, step {int(steps[s])} (image {int(steps[s]) // steps_per_image})",
                     fontsize=9)
        frames.append(Image.fromarray(_rgb(fig)).convert("P", palette=Image.Palette.ADAPTIVE))
    return _save_gif(frames, path, fps)


def conv2_spikes_per_image_plot(winners_per_image: np.ndarray, path: str | Path, *,
                                zoom: int = 300, window: int = 100) -> Path:
    """STDP winners (update spikes) per training image of Conv2, its running mean, and an inset
    zoomed on the first ``zoom`` images (the paper's Figure 22)."""
    k = np.asarray(winners_per_image, dtype=np.float64)
    if k.ndim != 1 or len(k) == 0:
        raise ValueError(f"winners_per_image: expected a non-empty (N,) array, got {k.shape}")
    fig = _figure(9, 4.5)
    ax = fig.subplots()
    x = np.arange(len(k))
    ax.plot(x, k, color="tab:blue", lw=0.4, alpha=0.6, label="per image")
    w = max(1, min(window, len(k)))
    ax.plot(np.arange(w - 1, len(k)), np.convolve(k, np.ones(w) / w, mode="valid"), color="k",
            lw=1.2, label=f"running mean ({w} images)")
    ax.set_xlabel("training image (epochs concatenated)")
    ax.set_ylabel("Conv2 STDP winners in the image")
    ax.set_ylim(0, 1.9 * max(k.max(), 1))  # the upper part holds the inset
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    z = min(zoom, len(k))
    ins = ax.inset_axes([0.06, 0.58, 0.5, 0.36])
    ins.plot(x[:z], k[:z], color="tab:blue", lw=0.8, marker=".", ms=2)
    ins.set_title(f"first {z} images", fontsize=8)
    ins.tick_params(labelsize=7)
    ins.grid(alpha=0.3)
    ax.set_title(f"Conv2 STDP spikes per image: {len(k)} images, mean {k.mean():.2f}, "
                 f"last {w} images {k[-w:].mean():.2f}", fontsize=10)
    return _save(fig, path)


def two_layer_convergence_plot(layers: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
                               path: str | Path, *, steps_per_image: int = 12) -> Path:
    """``C_l`` (top) and ``TD`` (bottom) per snapshot for each layer on one figure; ``layers``
    maps a name to ``(conv, td, steps)`` of snapshots 1.. (:meth:`TrainTrace.convergence` and
    ``snapshot_steps[1:]``); x is the images seen by that layer's training."""
    fig = _figure(8, 6)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    colours = ["tab:blue", "tab:orange", "tab:green"]
    for (name, (conv, td, steps)), col in zip(layers.items(), colours):
        x = np.asarray(steps, dtype=np.float64) / steps_per_image
        last = f" (last {conv[-1]:.4f})" if len(conv) else ""
        ax1.plot(x, conv, "o-", ms=2, color=col, label=f"{name}{last}")
        ax2.plot(x, td, "o-", ms=2, color=col, label=name)
    lo, hi = PAPER_CONVERGENCE_BAND
    ax1.axhspan(lo, hi, color="tab:green", alpha=0.15, label=f"paper's stop band {lo} < $C_l$ < {hi}")
    ax1.set_ylabel("convergence $C_l$ = mean w(1-w)")
    ax1.set_ylim(bottom=0)
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    if all(len(td) and np.all(np.asarray(td) > 0) for _, td, _ in layers.values()):
        ax2.set_yscale("log")
    ax2.set_ylabel("TD = mean $(w_{s-1} - w_s)^2$")
    ax2.set_xlabel("training images seen by the layer")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    fig.suptitle("Weight convergence of both layers per snapshot", fontsize=10)
    return _save(fig, path)
