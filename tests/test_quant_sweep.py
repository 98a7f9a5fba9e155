"""``spykehw quant`` end to end on a Dask LocalCluster: stage reuse, resumability, failures,
report files; and the stored numbers against the pipeline run directly, outside the sweep."""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import replace

import pytest

from spykehw.cli import main
from spykehw.quant.store import Store

distributed = pytest.importorskip("distributed")

ARGS = ["quant", "--dataset", "mnist-sample", "--train-limit", "300", "--test-limit", "100",
        "--epochs", "2", "--conv-bits", "8", "--rounding", "truncate", "--classifier-bits", "8",
        "--lut", "8:8", "--quiet"]
LABELS = {"float", "base fpga-16", "conv 8 truncate", "classifier 8", "lut 8:8"}


@pytest.fixture(scope="module")
def scheduler():
    from spykehw.quant.cluster import worker_env

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=":0",
                                       silence_logs=logging.CRITICAL, env=worker_env(1))
    yield cluster.scheduler_address
    cluster.close()


@pytest.fixture(scope="module")
def sweep(scheduler, tmp_path_factory):
    """The folder after a first complete run (5 points, 3 distinct Conv1 settings)."""
    folder = tmp_path_factory.mktemp("quant") / "sweep"
    assert main(ARGS + ["--scheduler", scheduler, "--dir", str(folder)]) == 0
    first = json.loads((folder / "manifest.json").read_text())["results"]["stages"]
    (folder.parent / "first-run-stages.json").write_text(json.dumps(first))
    return folder


def _run(folder, scheduler, *extra) -> tuple[int, dict]:
    rc = main(ARGS + ["--scheduler", scheduler, "--dir", str(folder), *extra])
    return rc, json.loads((folder / "manifest.json").read_text())["results"]["stages"]


def _points(folder) -> dict[str, dict]:
    out = {}
    for p in (folder / "store" / "points").glob("*.json"):
        r = json.loads(p.read_text())
        out[r["label"]] = {**r, "_path": p, "_mtime": p.stat().st_mtime_ns}
    return out


def test_first_run_shares_stages_and_writes_the_report(sweep):
    stages = json.loads((sweep.parent / "first-run-stages.json").read_text())
    # 5 points but only 3 Conv1 settings (float, fpga-16, conv 8 truncate): the classifier-bits
    # and LUT points reuse fpga-16's Conv1 weights, features and float classifier.
    assert stages["computed"] == {"conv1": 3, "classifier": 3, "point": 5}
    assert stages["failed"] == [] and stages["points_total"] == 5
    pts = _points(sweep)
    assert set(pts) == LABELS
    shared = [pts[k] for k in ("base fpga-16", "classifier 8", "lut 8:8")]
    assert len({p["conv1"]["key"] for p in shared}) == 1
    assert len({p["classifier"]["key"] for p in shared}) == 1
    assert pts["conv 8 truncate"]["conv1"]["key"] != shared[0]["conv1"]["key"]
    # only the LUT changes between base and lut 8:8: same classes, other softmax words
    assert pts["lut 8:8"]["acc"] == pts["base fpga-16"]["acc"]
    assert pts["lut 8:8"]["softmax"]["argmax_agreement"] == 1.0
    assert pts["lut 8:8"]["softmax"]["max_abs_err"] > pts["base fpga-16"]["softmax"]["max_abs_err"]

    for name in ("results.csv", "results.md", "summary.json", "points.json",
                 "acc-vs-conv-bits-mnist-sample.png", "acc-vs-classifier-bits-mnist-sample.png",
                 "softmax-error-vs-lut-mnist-sample.png"):
        assert (sweep / name).stat().st_size > 0, name
    manifest = json.loads((sweep / "manifest.json").read_text())
    assert "results.csv" in manifest["files"] and "acc-vs-conv-bits-mnist-sample.png" in manifest["files"]
    with open(sweep / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5
    for col in ("dataset", "repeat", "label", "conv_bits", "stdp_rounding", "hidden_weight_bits",
                "hidden_weight_frac", "exp_lut_entries", "exp_lut_bits", "acc_pct", "balanced_acc_pct",
                "delta_vs_float_points", "float_classifier_acc_pct", "softmax_max_abs_err",
                "softmax_argmax_agreement_pct", "classifier_epochs", "key"):
        assert col in rows[0], col
    flt = next(r for r in rows if r["label"] == "float")
    assert float(flt["delta_vs_float_points"]) == 0.0 and flt["classifier_epochs"] == "2"
    summary = json.loads((sweep / "summary.json").read_text())["summary"]["mnist-sample"]
    assert set(summary["smallest"]) == {"0.5", "1.0"}
    assert "Smallest formats within 0.5 and 1.0 points" in (sweep / "results.md").read_text()


def test_stored_numbers_match_the_pipeline_run_directly(sweep):
    """Independent path: the same stages called by hand, as spykehw run does them."""
    import numpy as np
    from spykehw.golden.classifier import train_classifier
    from spykehw.golden.classifier_int import forward_int, quantize_classifier
    from spykehw.golden.formats import preset
    from spykehw.golden.options import NetworkOptions, classifier_defaults
    from spykehw.golden.pipeline import extract_features, train_conv1

    from spykehw.data import load_dataset

    ds = load_dataset("mnist-sample")
    xtr, ytr, xte, yte = ds.train_images[:300], ds.train_labels[:300], ds.test_images[:100], ds.test_labels[:100]
    opts = NetworkOptions(classifier=replace(classifier_defaults("mnist"), epochs=2))
    pts = _points(sweep)
    for fmt, label in ((None, "float"), (preset("fpga-16"), "base fpga-16")):
        trace = train_conv1(xtr, opts, fmt)
        ftr = extract_features(xtr, trace.weights, opts, fmt).features
        fte = extract_features(xte, trace.weights, opts, fmt).features
        n = int(0.09 * 300)
        res = train_classifier(ftr[n:], ytr[n:], ftr[:n], ytr[:n], 10, opts.classifier,
                               test_x=fte, test_y=yte, progress=False)
        assert pts[label]["float_classifier_acc"] == res.test_acc_best
        if fmt is None:
            assert pts[label]["acc"] == res.test_acc_best
        else:
            out = forward_int(quantize_classifier(res.best_params, fmt), fte)
            assert pts[label]["acc"] == float(np.mean(out.classes == yte))


def test_rerun_recomputes_nothing_then_only_a_deleted_point(sweep, scheduler):
    before = _points(sweep)
    rc, stages = _run(sweep, scheduler)
    assert rc == 0
    assert stages["computed"] == {"conv1": 0, "classifier": 0, "point": 0}
    assert stages["points_already_stored"] == 5
    assert {k: v["_mtime"] for k, v in _points(sweep).items()} == {k: v["_mtime"] for k, v in before.items()}

    before["classifier 8"]["_path"].unlink()
    rc, stages = _run(sweep, scheduler)
    assert rc == 0
    assert stages["computed"] == {"conv1": 0, "classifier": 0, "point": 1}
    assert stages["cached"] == {"conv1": 1, "classifier": 1}
    after = _points(sweep)
    for label in LABELS - {"classifier 8"}:
        assert after[label]["_mtime"] == before[label]["_mtime"], label
    assert after["classifier 8"]["acc"] == before["classifier 8"]["acc"]   # deterministic


def test_a_truncated_point_file_is_recomputed_and_named(sweep, scheduler, capsys):
    """Issue 14, item 1: a point file cut to 40 bytes counted as stored for ever (exit 0, report
    'n/a'). Now it is discarded, named, and computed again to the same number."""
    before = _points(sweep)
    victim = before["float"]["_path"]
    victim.write_bytes(victim.read_bytes()[:40])
    capsys.readouterr()
    rc, stages = _run(sweep, scheduler)
    err = capsys.readouterr().err
    assert rc == 0 and stages["computed"]["point"] == 1, stages
    assert str(victim) in err and "recomputed" in err
    assert _points(sweep)["float"]["acc"] == before["float"]["acc"]


def test_a_stage_file_of_another_key_is_not_used(sweep, scheduler, capsys):
    """Issue 14, item 1: a Conv1 stage file swapped for another key's was used as it was
    (10.20% reported instead of 24.00%)."""
    pts = _points(sweep)
    conv1 = sweep / "store" / "conv1"
    a, b = pts["base fpga-16"]["conv1"]["key"], pts["conv 8 truncate"]["conv1"]["key"]
    assert a != b
    (conv1 / f"{a}.npz").write_bytes((conv1 / f"{b}.npz").read_bytes())
    pts["base fpga-16"]["_path"].unlink()
    capsys.readouterr()
    rc, stages = _run(sweep, scheduler)
    err = capsys.readouterr().err
    assert rc == 0 and stages["computed"]["conv1"] == 1 and stages["computed"]["point"] == 1, stages
    assert f"{a}.npz" in err and "not 'quant-conv1' of key" in err
    assert _points(sweep)["base fpga-16"]["acc"] == pts["base fpga-16"]["acc"]


def test_a_point_that_fails_once_is_retried_and_one_that_always_fails_is_reported(sweep, scheduler):
    pts = _points(sweep)
    pts["lut 8:8"]["_path"].unlink()
    rc, stages = _run(sweep, scheduler, "--inject-failure", "lut 8:8:once")
    assert rc == 0 and stages["failed"] == [] and stages["computed"]["point"] == 1
    assert Store(sweep / "store").has_point(pts["lut 8:8"]["key"])

    pts["conv 8 truncate"]["_path"].unlink()
    rc, stages = _run(sweep, scheduler, "--inject-failure", "conv 8 truncate:always", "--retries", "1")
    assert rc == 1
    assert [f["label"] for f in stages["failed"]] == ["mnist-sample r0 conv 8 truncate"]
    assert "InjectedFailure" in stages["failed"][0]["error"]
    kept = _points(sweep)
    assert set(kept) == LABELS - {"conv 8 truncate"}
    assert all(kept[k]["_mtime"] == pts[k]["_mtime"] for k in LABELS - {"conv 8 truncate", "lut 8:8"})
    assert "## Failed points" in (sweep / "results.md").read_text()

    rc, stages = _run(sweep, scheduler)   # the next run picks up just the failed point
    assert rc == 0 and stages["computed"] == {"conv1": 0, "classifier": 0, "point": 1}
    assert set(_points(sweep)) == LABELS


def test_report_only_rebuilds_the_report_from_the_store(sweep):
    (sweep / "results.md").unlink()
    (sweep / "results.csv").unlink()
    points_before = {k: v["_mtime"] for k, v in _points(sweep).items()}
    assert main(["quant", "--dir", str(sweep), "--report-only"]) == 0
    assert "report rewritten from the store" in (sweep / "results.md").read_text()
    with open(sweep / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == 5
    assert {k: v["_mtime"] for k, v in _points(sweep).items()} == points_before


def test_hidden_sizes_axis_end_to_end_and_resume(scheduler, tmp_path):
    """Two hidden sizes: each with its own float baseline and classifier trainings, the Conv1
    stages shared; one report section per size; a rerun recomputes nothing."""
    folder = tmp_path / "hidden"
    argv = ["quant", "--dataset", "mnist-sample", "--train-limit", "300", "--test-limit", "100",
            "--epochs", "2", "--conv-bits", "none", "--lut", "none", "--classifier-bits", "8",
            "--hidden", "8,16", "--quiet", "--scheduler", scheduler, "--dir", str(folder)]
    assert main(argv) == 0
    stages = json.loads((folder / "manifest.json").read_text())["results"]["stages"]
    assert stages["computed"] == {"conv1": 2, "classifier": 4, "point": 6}
    pts = _points(folder)
    assert set(pts) == {f"H{h} {n}" for h in (8, 16) for n in ("float", "base fpga-16", "classifier 8")}
    for name in ("float", "base fpga-16", "classifier 8"):
        a, b = pts[f"H8 {name}"], pts[f"H16 {name}"]
        assert (a["classifier"]["hidden"], b["classifier"]["hidden"]) == (8, 16)
        assert a["conv1"]["key"] == b["conv1"]["key"] and a["classifier"]["key"] != b["classifier"]["key"]
    summary = json.loads((folder / "summary.json").read_text())["summary"]
    assert set(summary) == {"mnist-sample-h8", "mnist-sample-h16"}
    for h in (8, 16):
        assert summary[f"mnist-sample-h{h}"]["float"]["mean"] == pts[f"H{h} float"]["acc"]
        assert (folder / f"acc-vs-classifier-bits-mnist-sample-h{h}.png").stat().st_size > 0
    with open(folder / "results.csv") as f:
        rows = {r["label"]: r for r in csv.DictReader(f)}
    for h in (8, 16):   # each size against its own float baseline
        delta = 100 * (pts[f"H{h} classifier 8"]["acc"] - pts[f"H{h} float"]["acc"])
        assert float(rows[f"H{h} classifier 8"]["delta_vs_float_points"]) == pytest.approx(delta)
    assert "## mnist-sample-h16" in (folder / "results.md").read_text()

    assert main(argv) == 0
    stages = json.loads((folder / "manifest.json").read_text())["results"]["stages"]
    assert stages["computed"] == {"conv1": 0, "classifier": 0, "point": 0}
    assert stages["points_already_stored"] == 6
