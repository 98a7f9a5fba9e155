"""Run folders: a new folder per run, even for runs started in the same second."""

from __future__ import annotations

import json

from spykehw.output import RunFolder


def test_runs_started_together_get_separate_folders(tmp_path):
    a = RunFolder(tmp_path, "fpga", args={"run": "a"})
    b = RunFolder(tmp_path, "fpga", args={"run": "b"})
    c = RunFolder(tmp_path, "fpga", args={"run": "c"})
    assert len({a.path, b.path, c.path}) == 3
    for f, run in ((a, "a"), (b, "b"), (c, "c")):
        assert json.loads((f.path / "manifest.json").read_text())["args"] == {"run": run}


def test_a_named_folder_is_reused(tmp_path):
    first = RunFolder(tmp_path, "verilog", path=tmp_path / "out")
    again = RunFolder(tmp_path, "verilog", path=tmp_path / "out")
    assert first.path == again.path == tmp_path / "out"


def test_a_reused_folder_keeps_the_earlier_files_and_runs(tmp_path):
    """Reusing --out restarted the manifest: the earlier command's files were no longer listed."""
    first = RunFolder(tmp_path, "vectors", path=tmp_path / "out", args={"n": 1})
    first.write_text("a.txt", "a\n", "first file")
    first.close("finished")
    again = RunFolder(tmp_path, "verilog", path=tmp_path / "out", args={"n": 2})
    again.write_text("b.txt", "b\n", "second file")
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert set(m["files"]) == {"a.txt", "b.txt"}
    assert m["command"] == "verilog" and m["status"] == "running"
    assert [h["command"] for h in m["history"]] == ["vectors"]
    assert m["history"][0]["status"] == "finished" and m["history"][0]["args"] == {"n": 1}


def test_status_failed_and_interrupted(tmp_path):
    from spykehw.output import close_open_folders

    a = RunFolder(tmp_path, "run")
    close_open_folders("failed", "bad.toml: not valid TOML")
    m = json.loads((a.path / "manifest.json").read_text())
    assert m["status"] == "failed" and m["error"] == "bad.toml: not valid TOML"
    b = RunFolder(tmp_path, "run")
    close_open_folders("interrupted", "SIGTERM")
    m = json.loads((b.path / "manifest.json").read_text())
    assert m["status"] == "interrupted" and m["error"] == "SIGTERM" and "finished_utc" in m


def test_names_cannot_leave_the_folder(tmp_path):
    import pytest

    from spykehw.output import OutsideFolder

    f = RunFolder(tmp_path, "vectors", path=tmp_path / "out")
    for bad in ("../pwned.npz", "x/../../pwned", "/etc/passwd"):
        with pytest.raises(OutsideFolder):
            f.file(bad)
    assert f.file("sub/ok.npz") == tmp_path / "out" / "sub" / "ok.npz"


def test_stale_temporary_files_of_dead_writers_are_removed(tmp_path):
    """A SIGKILLed writer left a 0-byte .tmp for ever; a live writer's file must be kept."""
    import os
    import subprocess

    from spykehw.output import clean_stale_temps

    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".report.txt.{dead.pid}.abc123.tmp"
    live = tmp_path / f".report.txt.{os.getpid()}.def456.tmp"
    stale.write_bytes(b"")
    live.write_bytes(b"")
    RunFolder(tmp_path, "run", path=tmp_path)
    assert not stale.exists() and live.exists()
    assert clean_stale_temps(tmp_path) == []


def test_atomic_write_temporary_names_are_unique(tmp_path):
    """Two writers of one file at once (two cold cache runs) must not share a temporary file."""
    from spykehw.output import atomic_write

    with atomic_write(tmp_path / "x.npz") as f1, atomic_write(tmp_path / "x.npz") as f2:
        f1.write(b"1")
        f2.write(b"2")
        assert len(list(tmp_path.glob(".x.npz.*.tmp"))) == 2
    assert (tmp_path / "x.npz").read_bytes() in (b"1", b"2")
    assert not list(tmp_path.glob("*.tmp"))
