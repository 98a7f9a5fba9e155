"""Fault injection: every kind of file spykehw reads, corrupted every way we can think of (and
ways hypothesis thinks of), and runs killed at every point that writes (issue 14).

The rule each reader must keep, per kind of file:

- *inputs* the user gives (IDX data, TOML configs, trained states, vector files): a damaged file
  is a :class:`SpykehwError` whose message names the file -- or, when the damage does not touch
  the content (a gzip timestamp), the same content as before. Never another exception, never a
  silently different result (the containers' CRCs and checksums see to that).
- *text* the user writes (number-format and sweep TOML, benchmark JSON, accuracy CSV) carries
  no checksum: a :class:`SpykehwError` naming the file, or a valid result (a changed digit is a
  changed setting). Never another exception.
- files spykehw *stores for itself* (quantization points and stages, the classifier cache,
  manifests): a damaged file is discarded with a line naming it and recomputed (the reader says
  "missing") -- or read as exactly what was written. Never an exception.

Kill points are in ``test_fault_injection_kill.py``, edited vector headers and arrays in
``test_fault_injection_vectors.py``.

Size: ``len(KINDS) x len(CORRUPTIONS)`` = 15 x 13 parametrised cases, plus files swapped in from
another key, hypothesis-generated damage (cuts, byte flips, insertions) over every kind, and the
same corruptions through the command line. Everything is tiny: the three modules run in about
25 s.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spykehw.errors import SpykehwError

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_VECTORS = {"conv": ROOT / "vectors" / "conv" / "fpga-8.npz",
                  "softmax": ROOT / "vectors" / "softmax" / "fpga-8.npz",
                  "classifier": ROOT / "vectors" / "classifier" / "adversarial-fpga-8.npz",
                  "learn": ROOT / "vectors" / "conv-learn" / "conv1-fpga-8-lr.npz"}


# ----- the kinds of file ---------------------------------------------------------------------

@dataclass
class Kind:
    """One kind of file: how to make a valid one, how spykehw reads it, and the rule it keeps.

    ``make(folder) -> path``; ``read(path) -> a digest of what was read`` (or None: "missing",
    for stores); ``mode`` is ``input`` or ``store`` (see the module docstring); ``other`` makes a
    valid file of the same kind with other content (a file swapped in from another key)."""

    name: str
    make: Callable[[Path], Path]
    read: Callable[[Path], Any]
    mode: str
    other: Callable[[Path], Path] | None = None


def _digest_arrays(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}{a.dtype.str}{a.shape}".encode() + a.tobytes())
    return h.hexdigest()


def _mnist_dir(folder: Path, offset: int = 0) -> Path:
    from spykehw.data import load_sample, write_idx

    ds = load_sample()
    d = folder / "mnist"
    write_idx(d / "train-images-idx3-ubyte.gz", ds.train_images[offset:offset + 30])
    write_idx(d / "train-labels-idx1-ubyte.gz", ds.train_labels[offset:offset + 30].astype(np.uint8))
    write_idx(d / "t10k-images-idx3-ubyte.gz", ds.test_images[:10])
    write_idx(d / "t10k-labels-idx1-ubyte.gz", ds.test_labels[:10].astype(np.uint8))
    return d


def _read_mnist(path: Path) -> str:
    from spykehw.data import load_dataset

    ds = load_dataset("mnist", path.parent.parent)
    return _digest_arrays({"a": ds.train_images, "b": ds.train_labels, "c": ds.test_images,
                           "d": ds.test_labels})


def _idx(stem: str):
    def make(folder: Path) -> Path:
        return _mnist_dir(folder) / f"{stem}.gz"
    return make


def _make_toml(folder: Path) -> Path:
    p = folder / "cfg.toml"
    p.write_text('preset = "fpga-8"\n\n[conv]\nweight_bits = 6\n\n[stdp]\nrounding = "half_up"\n')
    return p


def _read_toml(path: Path) -> str:
    from spykehw.golden.formats import load_formats

    fmt = load_formats(path)
    return fmt.name  # any valid config is acceptable: TOML carries no checksum


def _make_state(folder: Path) -> Path:
    from spykehw.golden.formats import preset
    from spykehw.golden.options import NetworkOptions
    from spykehw.golden.state import TrainedState, save_state

    rng = np.random.default_rng(3)
    snaps = rng.integers(0, 256, (2, 30, 2, 5, 5), dtype=np.int64)
    st_ = TrainedState(model="int", options=NetworkOptions().to_dict(), formats=preset("fpga-8").to_dict(),
                       conv1_weights=snaps[-1].copy(), conv1_final_weights=snaps[0].copy(), snapshots=snaps,
                       snapshot_steps=np.array([0, 10], np.int64), provenance={"dataset": "x"}, results={})
    return save_state(folder / "state.npz", st_)


def _read_state(path: Path) -> str:
    from spykehw.golden.state import load_state

    return _digest_arrays(load_state(path).arrays())


def _vectors(which: str):
    def make(folder: Path) -> Path:
        p = folder / f"{which}.npz"
        p.write_bytes(SAMPLE_VECTORS[which].read_bytes())
        return p
    return make


def _read_vectors(path: Path) -> str:
    from spykehw.sim.framework.vectors import read_vectors

    vs = read_vectors(path)
    return _digest_arrays(dict(vs.arrays)) + json.dumps(vs.options, sort_keys=True)


def _store_point(key: str, acc: float):
    def make(folder: Path) -> Path:
        from spykehw.quant.store import Store
        return Store(folder / "store").save_point(key, {"key": key, "acc": acc, "label": "float"})
    return make


WARNINGS: list[str] = []


def _read_point(path: Path):
    from spykehw.quant.store import Store

    got = Store(path.parent.parent, warn=WARNINGS.append).load_point("k1")
    return None if got is None else json.dumps(got, sort_keys=True)


def _store_stage(seed: int, key: str = "c1"):
    def make(folder: Path) -> Path:
        from spykehw.quant.store import Store
        rng = np.random.default_rng(seed)
        arrays = {"weights": rng.integers(0, 255, (4, 2, 5, 5)),
                  "train_x": np.packbits(rng.integers(0, 2, (20, 30), dtype=np.uint8), axis=1)}
        return Store(folder / "store").save_artifact("conv1", key, arrays, {"features": 30})
    return make


def _other_stage(folder: Path) -> Path:
    # The stage file of another key, copied over this key's file name.
    src = _store_stage(9, key="c2")(folder / "other")
    dst = folder / "swap.npz"
    dst.write_bytes(src.read_bytes())
    return dst


def _read_stage(path: Path):
    from spykehw.quant.store import Store

    got = Store(path.parent.parent, warn=WARNINGS.append).load_artifact("conv1", "c1")
    return None if got is None else _digest_arrays(got[0]) + json.dumps(got[1], sort_keys=True)


def _cache(seed: int, key: str = "cache-key"):
    def make(folder: Path) -> Path:
        from spykehw.golden.stored import write_checked_npz
        rng = np.random.default_rng(seed)
        return write_checked_npz(folder / "cache" / "real-mnist-x.npz",
                                 {"W2q": rng.integers(-8, 8, (30, 4)), "test_y": np.arange(10)},
                                 kind="real-classifier", key=key, compressed=True,
                                 meta={"float_acc": 0.5})
    return make


def _read_cache(path: Path):
    from spykehw.golden.stored import read_checked_npz

    got = read_checked_npz(path, kind="real-classifier", key="cache-key", warn=WARNINGS.append)
    return None if got is None else _digest_arrays(got[0]) + json.dumps(got[1], sort_keys=True)


def _make_manifest(folder: Path) -> Path:
    from spykehw.output import RunFolder

    f = RunFolder(folder, "vectors", path=folder / "out", args={"n": 1})
    f.write_text("a.txt", "a\n", "a file")
    f.close("finished")
    return f.path / "manifest.json"


def _read_manifest(path: Path):
    from spykehw.output import RunFolder

    f = RunFolder(path.parent, "verilog", path=path.parent)
    f.close("finished")
    m = json.loads(path.read_text())
    assert m["command"] == "verilog" and m["status"] == "finished"
    if "history" not in m:
        return None      # the damaged manifest was set aside (and said so); a new one began
    return json.dumps([m["history"][0], sorted(m["files"])])


def _make_sweep_toml(folder: Path) -> Path:
    p = folder / "sweep.toml"
    p.write_text('dataset = ["mnist-sample"]\nconv_bits = [4, 6]\nrounding = ["truncate"]\n'
                 'epochs = 2\n\n[[point]]\nconv.weight_bits = 6\n')
    return p


def _read_sweep_toml(path: Path):
    from spykehw.quant.points import Sweep, sweep_from_toml

    return repr(Sweep(**sweep_from_toml(path)))


def _make_bench_json(folder: Path) -> Path:
    p = folder / "bench.json"
    p.write_text(json.dumps({"benchmark": "classifier", "results": [{"lanes": 64, "cycles": 900}]}))
    return p


def _read_bench_json(path: Path):
    from spykehw.fpga.bench import read_bench

    return repr(read_bench([path]))


def _make_accuracy_csv(folder: Path) -> Path:
    p = folder / "acc.csv"
    p.write_text("preset,accuracy\nfpga-16,0.97\nfpga-8,96.5%\n")
    return p


def _read_accuracy_csv(path: Path):
    from spykehw.fpga.sweep import read_accuracy

    return repr(read_accuracy(path))


KINDS = {
    "sweep-toml": Kind("sweep-toml", _make_sweep_toml, _read_sweep_toml, "config"),
    "bench-json": Kind("bench-json", _make_bench_json, _read_bench_json, "config"),
    "accuracy-csv": Kind("accuracy-csv", _make_accuracy_csv, _read_accuracy_csv, "config"),
    "idx-train-images": Kind("idx-train-images", _idx("train-images-idx3-ubyte"), _read_mnist, "input"),
    "idx-test-labels": Kind("idx-test-labels", _idx("t10k-labels-idx1-ubyte"), _read_mnist, "input"),
    "toml-config": Kind("toml-config", _make_toml, _read_toml, "config"),
    "state": Kind("state", _make_state, _read_state, "input"),
    "vectors-conv": Kind("vectors-conv", _vectors("conv"), _read_vectors, "input"),
    "vectors-softmax": Kind("vectors-softmax", _vectors("softmax"), _read_vectors, "input"),
    "vectors-classifier": Kind("vectors-classifier", _vectors("classifier"), _read_vectors, "input"),
    "vectors-learn": Kind("vectors-learn", _vectors("learn"), _read_vectors, "input"),
    "store-point": Kind("store-point", _store_point("k1", 0.25), _read_point, "store",
                        other=_store_point("k2", 0.75)),
    "store-stage": Kind("store-stage", _store_stage(1), _read_stage, "store", other=_other_stage),
    "classifier-cache": Kind("classifier-cache", _cache(1), _read_cache, "store",
                             other=lambda f: _cache(1, key="other-key")(f / "o")),
    "manifest": Kind("manifest", _make_manifest, _read_manifest, "store"),
}


# ----- the corruptions -----------------------------------------------------------------------

def _flip(at: Callable[[int], int]):
    def f(b: bytes) -> bytes:
        if not b:
            return b
        i = at(len(b)) % len(b)
        return b[:i] + bytes([b[i] ^ 0xFF]) + b[i + 1:]
    return f


CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda b: b"",
    "truncated-3": lambda b: b[:3],
    "truncated-40": lambda b: b[:40],          # the reproduction
    "truncated-half": lambda b: b[: len(b) // 2],
    "truncated-last-byte": lambda b: b[:-1],
    "flip-first-byte": _flip(lambda n: 0),
    "flip-byte-10": _flip(lambda n: 10),
    "flip-middle-byte": _flip(lambda n: n // 2),
    "flip-last-byte": _flip(lambda n: n - 1),
    "zeroed-middle": lambda b: b[: len(b) // 3] + bytes(min(64, len(b) // 3)) + b[len(b) // 3 + 64:],
    "random-bytes": lambda b: np.random.default_rng(0).integers(0, 256, len(b), dtype=np.uint8).tobytes(),
    "appended-garbage": lambda b: b + b"\x00garbage\xff" * 4,
    "not-utf8": lambda b: b"\xff\xfe" + b[2:],
}


def _check(kind: Kind, path: Path, original: Any) -> None:
    """The rule of ``kind`` (module docstring) for the file at ``path``."""
    WARNINGS.clear()
    if kind.mode == "store":
        got = kind.read(path)               # must not raise
        if got is None:
            if kind.name != "manifest":
                assert any(str(path) in w for w in WARNINGS), WARNINGS
        else:
            assert got == original, "a damaged stored file was read as something else"
        return
    try:
        got = kind.read(path)
    except SpykehwError as e:
        assert path.name in str(e), f"the message does not name the file: {e}"
        assert "\n" not in str(e).strip(), f"not one line: {e}"
        return
    if kind.mode == "input":
        assert got == original, "a damaged input was read as other content"


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
@pytest.mark.parametrize("kind", list(KINDS))
def test_corrupt_file(kind, corruption, tmp_path):
    k = KINDS[kind]
    path = k.make(tmp_path)
    original = k.read(path)
    path.write_bytes(CORRUPTIONS[corruption](path.read_bytes()))
    _check(k, path, original)


@pytest.mark.parametrize("kind", [k for k, v in KINDS.items() if v.other is not None])
def test_a_file_swapped_in_from_another_key_is_not_used(kind, tmp_path):
    k = KINDS[kind]
    path = k.make(tmp_path)
    original = k.read(path)
    path.write_bytes(k.other(tmp_path).read_bytes())
    WARNINGS.clear()
    got = k.read(path)
    assert got is None or got == original
    if got is None:
        assert any(str(path) in w for w in WARNINGS), WARNINGS


_FAST = settings(max_examples=40, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@_FAST
@given(kind=st.sampled_from(sorted(KINDS)), data=st.data())
def test_random_damage(kind, data, tmp_path_factory):
    """Hypothesis: a cut at any length, bytes changed at any places, bytes inserted anywhere."""
    k = KINDS[kind]
    folder = tmp_path_factory.mktemp("fi")
    path = k.make(folder)
    original = k.read(path)
    b = bytearray(path.read_bytes())
    how = data.draw(st.sampled_from(["cut", "flips", "insert"]))
    if how == "cut":
        b = b[: data.draw(st.integers(0, len(b) - 1))]
    elif how == "flips":
        for i in data.draw(st.lists(st.integers(0, len(b) - 1), min_size=1, max_size=8)):
            b[i] ^= data.draw(st.integers(1, 255))
    else:
        i = data.draw(st.integers(0, len(b)))
        b[i:i] = data.draw(st.binary(min_size=1, max_size=16))
    path.write_bytes(bytes(b))
    _check(k, path, original)


# ----- the same files through the command line: one line, non-zero exit ----------------------

def _cli_cases(tmp: Path):
    return {
        "idx-train-images": ["run", "--dataset", "mnist", "--data-dir", "{root}", "--quiet",
                             "--out", str(tmp / "runs")],
        "idx-test-labels": ["data", "info", "--data-dir", "{root}", "--verify"],
        "toml-config": ["run", "--config", "{path}", "--out", str(tmp / "runs"), "--quiet"],
        "state": ["vectors", "conv", "--state", "{path}", "--source", "adversarial",
                  "--out", str(tmp / "v")],
        "vectors-conv": ["cosim", "conv", "--vectors", "{path}", "--out", str(tmp / "runs"), "--quiet"],
    }


@pytest.mark.parametrize("corruption", ["truncated-40", "flip-middle-byte", "not-utf8"])
@pytest.mark.parametrize("kind", list(_cli_cases(Path("."))))
def test_corrupt_input_through_the_cli(kind, corruption, tmp_path, capsys):
    from spykehw.cli import main

    k = KINDS[kind]
    path = k.make(tmp_path)
    path.write_bytes(CORRUPTIONS[corruption](path.read_bytes()))
    argv = [a.format(root=path.parent.parent, path=path) for a in _cli_cases(tmp_path)[kind]]
    try:
        k.read(path)
    except SpykehwError:
        pass
    else:
        pytest.skip("this damage leaves a valid file (the library-level tests check which)")
    rc = main(argv)
    out = capsys.readouterr()
    errors = [line for line in out.err.splitlines() if "error" in line]
    assert rc != 0 and errors and "Traceback" not in out.err, out.err
    assert path.name in out.err + out.out
