"""Installable like a library: a wheel (not an editable install) works from an unrelated folder.

The wheel is built from this tree and installed with ``--no-deps`` into a fresh virtual
environment whose dependencies come from the test's own environment (a ``.pth`` line naming its
site-packages: a path added that way is not a site directory, so the editable install's finder
there is not run and ``spykehw`` can only come from the wheel). Then, from an empty folder:
``spykehw --version``-style smoke checks, a small ``spykehw run``, and the committed vectors and
the embedded sample read as package data.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    # Build from a copy: setuptools writes build/ and *.egg-info into the source tree.
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "runs", "out", "sim_build", "__pycache__", "*.egg-info",
        ".pytest_cache", ".hypothesis", "*.nbi", "*.nbc"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp / "dist"), str(src)], check=True, capture_output=True, timeout=600)
    wheel, = (tmp / "dist").glob("spykehw-*.whl")
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    (site / "_deps_from_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                    "--no-index", "-q", str(wheel)], check=True, capture_output=True, timeout=600)
    return env_dir


def _run(env_dir: Path, cwd: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(env_dir / "bin" / args[0]), *args[1:]], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def test_package_comes_from_the_wheel_with_its_data(installed, tmp_path):
    code = ("import spykehw, json; from spykehw.sim.framework.vectors import VECTORS_DIR; "
            "from spykehw.sim.framework.vectors import read_vectors; "
            "from spykehw.sim.conv.committed import committed_path; "
            "from spykehw.sim.conv.vector_gen import KIND; "
            "vs = read_vectors(committed_path('fpga-16'), kind=KIND); "
            "from spykehw.data import load_dataset; ds = load_dataset('mnist-sample'); "
            "print(json.dumps([spykehw.__file__, str(VECTORS_DIR), len(vs['weight_set']), len(ds.test_images)]))")
    out = _run(installed, tmp_path, "python", "-c", code)
    assert out.returncode == 0, out.stderr
    module, vectors, n_vectors, n_test = json.loads(out.stdout)
    assert str(installed) in module and str(ROOT) not in module
    assert str(installed) in vectors and n_vectors > 0
    assert n_test == 1000


def test_a_small_run_from_an_unrelated_folder(installed, tmp_path):
    out = _run(installed, tmp_path, "spykehw", "run", "--train-limit", "300", "--test-limit", "100",
               "--stdp-images", "100", "--epochs", "1", "--hidden", "20", "--no-hardware", "--quiet",
               "--out", str(tmp_path / "runs"))
    assert out.returncode == 0, out.stderr[-3000:]
    reports = list((tmp_path / "runs").glob("*/report.txt"))
    assert len(reports) == 1
