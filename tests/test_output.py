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
