"""``spykehw bench``: runs end to end on the embedded sample and reports valid JSON.

Speeds are never asserted here (they live in the JSON); only the structure is checked.
"""

import json

import pytest

from spykehw.bench import BENCHMARKS, TARGETS, BenchConfig, BenchError, resolve_dataset
from spykehw.cli import main


def test_quick_bench_prints_the_report(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--dataset", "mnist-sample", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert json.loads(out.read_text()) == report
    for key in ("command", "quick", "dataset", "sizes", "formats", "numba_threads", "machine",
                "versions", "notes", "benchmarks", "targets", "ok"):
        assert key in report, key
    assert report["ok"] is True and report["quick"] is True
    assert report["dataset"] == {"requested": "mnist-sample", "used": "mnist-sample",
                                 "fallback": False, "note": None}
    assert report["machine"]["cpu_count"] >= 1
    assert len(report["machine"]["load_average_before"]) == 3
    assert {"numpy", "numba", "python"} <= set(report["versions"])
    assert "compilation excluded" in report["notes"]["timing"]
    assert list(report["benchmarks"]) == list(BENCHMARKS)
    for name, r in report["benchmarks"].items():
        assert "error" not in r, (name, r.get("traceback"))
        assert r["images"] == 300, name
        assert r["seconds"] > 0 and r["images_per_s"] > 0, name
        assert r["peak_rss_mb"] > 10 and r["process_peak_rss_mb"] >= r["peak_rss_mb"], name
        assert r["threads"] >= 1, name
    assert report["benchmarks"]["extract_int"]["conv1_weights"].startswith("trained by stdp_int")
    assert report["benchmarks"]["classifier_epoch"]["hidden"] == 1000
    assert report["benchmarks"]["conv2_extract_int"]["conv2_weights"].startswith("trained by the conv2_stdp")
    for key, t in TARGETS.items():
        entry = report["targets"][key]
        assert entry["target_images_per_s"] == t["target_images_per_s"]
        for name in t["benchmarks"]:
            assert isinstance(entry[name]["met"], bool)
    # one progress line per benchmark on stderr
    assert [line.split(":")[0] for line in captured.err.splitlines() if line.startswith("bench ")] \
        == [f"bench {n}" for n in BENCHMARKS]


def test_missing_mnist_falls_back_to_the_sample(tmp_path):
    used, note = resolve_dataset("mnist", tmp_path)
    assert used == "mnist-sample"
    assert "MNIST not found" in note and "embedded sample" in note and str(tmp_path) in note
    assert resolve_dataset("mnist-sample", None) == ("mnist-sample", None)


def test_bad_requests_are_one_line_errors(capsys):
    assert main(["bench", "--only", "encode_float,warp_drive"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spykehw bench: error: --only: unknown benchmark warp_drive (known: ")
    assert len(err.splitlines()) == 1
    assert main(["bench", "--config", "fpga-3"]) == 2
    assert "unknown preset 'fpga-3'" in capsys.readouterr().err
    with pytest.raises(BenchError, match="stdp_images: must be >= 1"):
        BenchConfig(stdp_images=0)
