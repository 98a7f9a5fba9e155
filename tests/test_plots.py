"""Plots: every function writes a valid image from small synthetic inputs; the manifest lists them."""

import json

import numpy as np
import pytest
from PIL import Image
from spykehw.golden.conv import ConvRun
from spykehw.golden.conv_training import TrainTrace

from spykehw import plots
from spykehw.data import EMNIST_47_CLASSES
from spykehw.output import RunFolder, sha256_file

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CLASSES = tuple("0123456789")


def _png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as im:
        assert im.format == "PNG"
        w, h = im.size
        im.verify()
    assert w > 50 and h > 50
    return w, h


def _snapshots(S=3, M=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((S, M, 2, 5, 5)), np.arange(S) * 2399


@pytest.mark.parametrize("mode", plots.FEATURE_MODES)
def test_feature_grid(tmp_path, mode):
    snaps, steps = _snapshots()
    p = plots.conv1_features_plot(snaps, steps, tmp_path / "f.png", mode=mode)
    assert p == tmp_path / "f.png"
    _png(p)


def test_feature_grid_rejects_bad_input(tmp_path):
    snaps, steps = _snapshots()
    with pytest.raises(ValueError, match="mode"):
        plots.conv1_features_plot(snaps, steps, tmp_path / "f.png", mode="bogus")
    with pytest.raises(ValueError, match=r"\(S, M, 2, K, K\)"):
        plots.conv1_features_plot(snaps[0], steps, tmp_path / "f.png")
    assert not (tmp_path / "f.png").exists()


@pytest.mark.parametrize("mode", plots.FEATURE_MODES)
def test_gif_has_one_frame_per_snapshot(tmp_path, mode):
    snaps, steps = _snapshots(S=5)
    snaps[1] = snaps[2] = snaps[0]  # identical weights must still give distinct frames
    p = plots.conv1_features_gif(snaps, steps, tmp_path / "f.gif", mode=mode)
    with Image.open(p) as im:
        assert im.format == "GIF"
        assert im.n_frames == 5
        assert im.size[0] > 50 and im.size[1] > 50


def test_statistics_plots(tmp_path):
    rng = np.random.default_rng(3)
    conv = np.linspace(0.18, 0.001, 10)
    td = rng.random(10) * 1e-2
    _png(plots.convergence_plot(conv, td, np.arange(1, 11) * 2399, tmp_path / "c.png"))
    _png(plots.convergence_plot(conv, np.zeros(10), np.arange(1, 11) * 2399, tmp_path / "c0.png"))
    _png(plots.stdp_winners_plot(rng.integers(0, 9, 300), tmp_path / "w.png", window=50))
    _png(plots.stdp_winners_plot(np.array([3]), tmp_path / "w1.png"))
    _png(plots.updates_per_map_plot(rng.integers(0, 300, 30), tmp_path / "u.png"))
    with pytest.raises(ValueError, match="three"):
        plots.convergence_plot(conv, td[:-1], np.arange(10), tmp_path / "x.png")


def test_spikes_per_label_by_hand():
    pool = np.array([[1, 2], [3, 4], [5, 6]])
    labels = np.array([1, 0, 1])
    np.testing.assert_array_equal(plots.spikes_per_label(pool, labels, 3),
                                  [[3, 6, 0], [4, 8, 0]])
    with pytest.raises(ValueError, match="0..1"):
        plots.spikes_per_label(pool, labels, 2 - 1)


@pytest.mark.parametrize("classes", [CLASSES, EMNIST_47_CLASSES])
def test_class_plots(tmp_path, classes):
    n = len(classes)
    rng = np.random.default_rng(n)
    labels = rng.integers(0, n, 200)
    pool = rng.integers(0, 20, (200, 30))
    maps = None if n > 10 else [0, 7, 29, 3]
    _png(plots.spikes_per_map_per_label_plot(pool, labels, classes, tmp_path / "s.png", maps=maps))
    cm = np.diag(rng.integers(50, 100, n)) + rng.integers(0, 5, (n, n))
    cm[1] = 0  # a class without test images must not break the normalisation
    w, h = _png(plots.confusion_plot(cm, classes, tmp_path / "cm.png"))
    assert w >= 20 * n and h >= 20 * n  # every class keeps a readable cell
    per = np.diag(cm) / np.maximum(cm.sum(axis=1), 1)
    per[1] = np.nan  # no test sample of class 1 (metrics.per_class_accuracy gives NaN)
    _png(plots.per_class_accuracy_plot(per, classes, tmp_path / "pc.png"))
    _png(plots.per_class_accuracy_plot(np.full(n, np.nan), classes, tmp_path / "pc0.png"))
    with pytest.raises(ValueError, match="confusion"):
        plots.confusion_plot(cm[:-1], classes, tmp_path / "bad.png")


def _history(epochs=6):
    va = [0.1, 0.8, 0.9, 0.93, 0.93, 0.92][:epochs]
    return [dict(epoch=e, train_acc=min(1.0, v + 0.02), val_acc=v, train_cost=1.0, val_cost=1.0,
                 seconds=1.0) for e, v in enumerate(va)]


def test_history_plot(tmp_path):
    _png(plots.classifier_history_plot(_history(), tmp_path / "h.png"))
    _png(plots.classifier_history_plot(_history(1), tmp_path / "h1.png", best_epoch=0))
    with pytest.raises(ValueError, match="no epochs"):
        plots.classifier_history_plot([], tmp_path / "h0.png")


def _trace(S=4, M=30, images=40, int_model=False):
    snaps, steps = _snapshots(S, M)
    scale = 256.0 if int_model else 1.0
    if int_model:
        snaps = np.floor(snaps * scale).astype(np.int64)
    rng = np.random.default_rng(5)
    return TrainTrace(weights=snaps[-1], final_weights=snaps[-1], snapshots=snaps,
                      snapshot_steps=steps, winners=np.zeros((0, 4), np.int64),
                      winners_per_step=rng.integers(0, 3, images * 12),
                      updates_per_map=rng.integers(0, 50, M), weights_per_image=None, level=0,
                      lfsr_state=0, to_unit=lambda w: np.asarray(w, np.float64) / scale)


def test_write_all_plots_records_every_file(tmp_path):
    folder = RunFolder(tmp_path, "test", path=tmp_path / "run")
    rng = np.random.default_rng(7)
    run = ConvRun(np.zeros((50, 3630), np.uint8), rng.integers(0, 9, (50, 30)).astype(np.int32),
                  np.zeros(50, np.int64))
    labels = rng.integers(0, 10, 50)
    cm = np.eye(10, dtype=np.int64) * 5 + 1
    out = plots.write_all_plots(folder, trace=_trace(int_model=True), run=run, labels=labels,
                                classes=CLASSES, confusion=cm, per_class=np.full(10, 0.9),
                                history=_history(), prefix="float-")
    assert sorted(out) == sorted(["conv1_features", "conv1_features_gif", "convergence",
                                  "stdp_winners", "updates_per_map", "spikes_per_label",
                                  "confusion", "per_class", "history"])
    manifest = json.loads((folder.path / "manifest.json").read_text())
    assert len(manifest["files"]) == len(out)
    for path in out.values():
        assert path.parent == folder.path and path.name.startswith("float-")
        assert manifest["files"][path.name]["sha256"] == sha256_file(path)
        if path.suffix == ".png":
            _png(path)
    with Image.open(out["conv1_features_gif"]) as im:
        assert im.n_frames == 4


def test_write_all_plots_skips_what_is_not_given(tmp_path):
    folder = RunFolder(tmp_path, "test", path=tmp_path / "run")
    assert plots.write_all_plots(folder) == {}
    out = plots.write_all_plots(folder, history=_history(), prefix="x-")
    assert [p.name for p in out.values()] == ["x-classifier-training.png"]
    with pytest.raises(ValueError, match="classes: needed for confusion"):
        plots.write_all_plots(folder, confusion=np.eye(3))
