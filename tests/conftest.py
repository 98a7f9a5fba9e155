"""Shared pytest fixtures: simulator requirements and per-test build folders.

- ``require_simulator("icarus")`` (fixture returning the function from
  :mod:`spykehw.sim.toolchain`): the simulator's :class:`Tool`; skips when it is missing, fails
  instead when ``SPYKEHW_REQUIRE_SIMULATORS=1`` (CI).
- ``simulator``: parametrized over Verilator and Icarus, marked ``sim``, already required.
- ``build_dir``: a fresh folder per test (under pytest's ``tmp_path``, so ``-n 2``-safe).
- ``session_dir``: a per-worker folder for builds shared by several tests of a session.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from spykehw.sim.toolchain import SIMULATORS
from spykehw.sim.toolchain import require_simulator as _require_simulator


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
