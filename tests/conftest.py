"""Shared pytest fixtures: simulator requirements and per-test build folders.

- ``require_simulator("icarus")`` (fixture returning the function from
  :mod:`spykehw.sim.framework.toolchain`): the simulator's :class:`Tool`; skips when it is missing, fails
  instead when ``SPYKEHW_REQUIRE_SIMULATORS=1`` (CI).
- ``simulator``: parametrized over Verilator and Icarus, marked ``sim``, already required.
- ``build_dir``: a fresh folder per test (under pytest's ``tmp_path``, so ``-n 2``-safe).
- ``session_dir``: a per-worker folder for builds shared by several tests of a session.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import pytest
from spykehw.sim.framework.toolchain import SIMULATORS
from spykehw.sim.framework.toolchain import require_simulator as _require_simulator


@pytest.fixture
def require_simulator():
    return _require_simulator


@pytest.fixture(params=[pytest.param(s, marks=pytest.mark.sim) for s in SIMULATORS])
def simulator(request) -> str:
    _require_simulator(request.param)
    return request.param


@pytest.fixture
def build_dir(tmp_path: Path) -> Path:
    path = tmp_path / "build"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("session")


# ----- skips must be on the allow-list (CI) ---------------------------------------------------

ALLOWED_SKIPS = Path(__file__).with_name("allowed_skips.txt")
STRICT_SKIPS_ENV = "SPYKEHW_NO_UNLISTED_SKIPS"


def allowed_skip_patterns(path: Path = ALLOWED_SKIPS) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        pattern = line.split("#", 1)[0].strip()
        if pattern:
            out.append(pattern)
    return out


def unlisted(skipped: list[str], patterns: list[str]) -> list[str]:
    return [t for t in skipped if not any(fnmatch.fnmatchcase(t, p) for p in patterns)]


_skipped: list[str] = []


def pytest_runtest_logreport(report) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus) -> None:
    if os.environ.get(STRICT_SKIPS_ENV) != "1" or hasattr(session.config, "workerinput"):
        return
    bad = unlisted(_skipped, allowed_skip_patterns())
    if bad:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = [f"{len(bad)} test(s) skipped that tests/allowed_skips.txt does not allow:"] + bad
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
