"""Fault injection, kill points: writers SIGKILLed between writing and renaming, runs killed,
interrupted (SIGINT, SIGTERM) or failing; what each leaves behind and what the next run makes of
it (issue 14, item 7). The corrupt-file cases are in test_fault_injection.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_fault_injection import SAMPLE_VECTORS

# ----- kill points ---------------------------------------------------------------------------

_KILL = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    point, what, folder = sys.argv[1], sys.argv[2], sys.argv[3]
    def die(*a, **k):
        os.kill(os.getpid(), signal.SIGKILL)
    def arm():
        if point == "before-rename":
            os.replace = die
        elif point == "at-fsync":
            os.fsync = die
        else:
            die()
    from pathlib import Path
    folder = Path(folder)
    if what == "run-folder":
        from spykehw.output import RunFolder
        f = RunFolder(folder, "run", path=folder)
        arm()
        f.write_json("results.json", {"acc": 0.9}, "results")
    elif what == "store-point":
        from spykehw.quant.store import Store
        arm()
        Store(folder / "store").save_point("k1", {"key": "k1", "acc": 0.5})
    elif what == "cache":
        from spykehw.golden.stored import write_checked_npz
        arm()
        write_checked_npz(folder / "c.npz", {"a": np.arange(5)}, kind="k", key="k")
    elif what == "state":
        sys.path.insert(0, sys.argv[4])
        from test_fault_injection import _make_state
        arm()
        _make_state(folder)
    elif what == "vectors":
        from spykehw.sim.framework.vectors import read_vectors, write_vectors
        vs = read_vectors(sys.argv[5])
        arm()
        write_vectors(folder / "v.npz", vs.kind, vs.arrays, formats=vs.formats, options=vs.options)
""")


@pytest.mark.parametrize("what", ["run-folder", "store-point", "cache", "state", "vectors"])
@pytest.mark.parametrize("point", ["at-fsync", "before-rename"])
def test_sigkill_while_writing(point, what, tmp_path):
    """A writer killed between writing and renaming: no file under its final name (or the old
    one intact), and the temporary file is removed by the next run in that folder."""
    from spykehw.output import RunFolder, clean_stale_temps

    r = subprocess.run([sys.executable, "-c", _KILL, point, what, str(tmp_path),
                        str(Path(__file__).parent), str(SAMPLE_VECTORS["softmax"])],
                       capture_output=True, timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr.decode()[-2000:]
    finals = [p for p in tmp_path.rglob("*") if p.is_file() and not p.name.endswith(".tmp")]
    temps = list(tmp_path.rglob("*.tmp"))
    assert temps, "the kill point was not reached"
    for p in finals:        # only the manifest of the run folder may exist, and it is whole
        assert p.name == "manifest.json", p
        json.loads(p.read_text())
    removed = clean_stale_temps(tmp_path, recursive=True)
    assert sorted(removed) == sorted(temps) and not list(tmp_path.rglob("*.tmp"))
    if what == "run-folder":
        RunFolder(tmp_path, "run", path=tmp_path).close("finished")
        m = json.loads((tmp_path / "manifest.json").read_text())
        assert m["history"][0]["status"] == "killed" and m["status"] == "finished"


def test_sigkill_after_start_is_recorded_as_killed(tmp_path):
    from spykehw.output import RunFolder

    r = subprocess.run([sys.executable, "-c", _KILL, "now", "run-folder", str(tmp_path)],
                       capture_output=True, timeout=120)
    assert r.returncode == -signal.SIGKILL
    assert json.loads((tmp_path / "manifest.json").read_text())["status"] == "running"
    RunFolder(tmp_path, "run", path=tmp_path).close("finished")
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert [h["status"] for h in m["history"]] == ["killed"]


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_and_sigterm_mark_the_run_interrupted(sig, code, tmp_path, monkeypatch, capsys):
    import spykehw.commands.verilog as verilog
    from spykehw.cli import main
    from spykehw.output import RunFolder

    def fake(args):
        RunFolder(args.out, "verilog", path=args.out)
        os.kill(os.getpid(), sig)
        raise AssertionError("the signal did not stop the command")

    monkeypatch.setattr(verilog, "_conv", fake)
    assert main(["verilog", "conv", "--out", str(tmp_path / "v")]) == code
    m = json.loads((tmp_path / "v" / "manifest.json").read_text())
    assert m["status"] == "interrupted" and m["error"] == sig.name
    assert "interrupted" in capsys.readouterr().err


def test_a_bad_config_is_one_line(tmp_path, capsys):
    from spykehw.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"[conv\n")
    rc = main(["run", "--config", str(bad), "--out", str(tmp_path / "runs"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "bad.toml" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_real_run_stopped_by_a_signal(sig, code, tmp_path):
    """`spykehw run` in its own process, stopped once its run folder exists: the exit status
    says how, and the manifest says interrupted (it said 'running' for ever)."""
    import time

    proc = subprocess.Popen([sys.executable, "-m", "spykehw", "run", "--train-limit", "200",
                             "--test-limit", "50", "--stdp-images", "200", "--epochs", "1",
                             "--hidden", "20", "--no-hardware", "--quiet", "--out", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("*/manifest.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err.decode()[-2000:]
    (manifest,) = tmp_path.glob("*/manifest.json")
    m = json.loads(manifest.read_text())
    assert m["status"] == "interrupted" and m["error"] == sig.name
    assert not list(tmp_path.rglob("*.tmp"))
