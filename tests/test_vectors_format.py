"""The vector file format: round trip, refusal of everything it does not understand, readmemh,
and the committed softmax sets being exactly what the generator makes today."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from spykehw.golden.errors import SpykehwError
from spykehw.golden.formats import preset
from spykehw.sim.framework.vectors import (
    FORMAT,
    HEADER,
    VERSION,
    VectorError,
    read_vectors,
    to_readmemh,
    write_vectors,
)
from spykehw.sim.softmax.vector_gen import (
    COMMITTED_SEED,
    PRESET_NAMES,
    committed_path,
    make_softmax_vectors,
    write_committed,
)

FMT = preset("fpga-8")
OPTIONS = {"classes": 3, "logit_bits": 8, "random_images": 2, "cases": []}


def arrays():
    return {
        "logits": np.array([[1, 2, 3], [-4, 0, 4]], dtype=np.int64),
        "classes": np.array([2, 2], dtype=np.int64),
        "words": np.array([[10, 20, 200], [0, 1, 254]], dtype=np.int64),
    }


def write_raw(path, header, entries):
    """An npz written by hand (not by write_vectors), to build files the writer would refuse."""
    with zipfile.ZipFile(path, "w") as z:
        if header is not None:
            entries = {HEADER: np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **entries}
        for name, arr in entries.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arr))
            z.writestr(f"{name}.npy", buf.getvalue())
    return path


def good_header(**changes):
    a = arrays()
    header = {"format": FORMAT, "version": VERSION, "kind": "softmax", "formats": FMT.to_dict(),
              "options": OPTIONS, "seed": 1, "created_by": "test", "description": "",
              "arrays": {n: {"dtype": v.dtype.name, "shape": list(v.shape)} for n, v in a.items()}}
    header.update(changes)
    return header


def test_round_trip(tmp_path):
    path = write_vectors(tmp_path / "v.npz", "softmax", arrays(), formats=FMT, options=OPTIONS,
                         seed=42, description="three classes")
    vs = read_vectors(path, kind="softmax")
    for name, arr in arrays().items():
        np.testing.assert_array_equal(vs[name], arr)
        assert vs[name].dtype == arr.dtype
        assert not vs[name].flags.writeable
    assert vs.formats == FMT and vs.options == OPTIONS and vs.seed == 42
    assert vs.description == "three classes" and vs.kind == "softmax" and vs.version == 1
    assert vs.created_by.startswith("spykehw")
    assert vs.name == "v.npz"


def test_writer_casts_losslessly_and_is_deterministic(tmp_path):
    a = {k: v.astype(np.int16) for k, v in arrays().items()}
    p1 = write_vectors(tmp_path / "a.npz", "softmax", a, formats=FMT, options=OPTIONS, seed=1)
    p2 = write_vectors(tmp_path / "b.npz", "softmax", arrays(), formats=FMT, options=OPTIONS, seed=1)
    assert read_vectors(p1)["words"].dtype == np.int64
    assert p1.read_bytes() == p2.read_bytes()


def test_file_is_a_plain_npz(tmp_path):
    """Any numpy can open it; the header is readable JSON."""
    path = write_vectors(tmp_path / "v.npz", "softmax", arrays(), formats=FMT, options=OPTIONS)
    with np.load(path) as z:
        header = json.loads(z[HEADER].tobytes())
        assert header["format"] == "spykehw-vectors" and header["version"] == 1
        assert header["arrays"]["logits"] == {"dtype": "int64", "shape": [2, 3]}
        np.testing.assert_array_equal(z["logits"], arrays()["logits"])


def test_errors_are_spykehw_errors_naming_the_file(tmp_path):
    path = write_raw(tmp_path / "v2.npz", good_header(version=2), arrays())
    with pytest.raises(SpykehwError, match=r"v2\.npz: vector format version 2 is not supported"):
        read_vectors(path)


@pytest.mark.parametrize("header, entries, match", [
    (good_header(version=2), None, r"version 2 is not supported \(this reader understands version 1\)"),
    (good_header(format="something-else"), None, r"format is 'something-else', expected 'spykehw-vectors'"),
    (good_header(kind="mystery"), None, r"unknown kind 'mystery' \(known: .*softmax"),
    (good_header(formats={**FMT.to_dict(), "bogus": {}}), None, r"header formats: bogus: unknown key"),
    (good_header(formats={**FMT.to_dict(), "softmax": {"softmax_bits": 0}}), None,
     r"header formats: softmax.softmax_bits: must be in 1..32"),
    (None, None, r"not a spykehw vector file \(no _header entry\)"),
    ({k: v for k, v in good_header().items() if k != "seed"}, None, r"header has no 'seed' entry"),
    (good_header(), {k: v for k, v in arrays().items() if k != "words"},
     r"arrays do not match the header: missing \['words'\]"),
    (good_header(), {**arrays(), "extra": np.zeros(2, dtype=np.int64)},
     r"unexpected \['extra'\]"),
    (good_header(), {**arrays(), "words": arrays()["words"].astype(np.int32)},
     r"array 'words' is int32\[2, 3\], the header says int64\[2, 3\]"),
    (good_header(), {**arrays(), "words": arrays()["words"][:, :2]},
     r"array 'words' is int64\[2, 2\], the header says int64\[2, 3\]"),
    (good_header(options={"classes": 3}), None, r"needs options .* missing \['logit_bits'"),
])
def test_reader_rejects(tmp_path, header, entries, match):
    path = write_raw(tmp_path / "bad.npz", header, arrays() if entries is None else entries)
    with pytest.raises(VectorError, match=match):
        read_vectors(path)


def test_reader_checks_the_kind_even_when_header_and_arrays_agree(tmp_path):
    def described(a):
        return good_header(arrays={n: {"dtype": v.dtype.name, "shape": list(v.shape)} for n, v in a.items()})

    a = {**arrays(), "words": arrays()["words"].astype(np.int32)}
    path = write_raw(tmp_path / "k1.npz", described(a), a)
    with pytest.raises(VectorError, match=r"array 'words' must be int64, found int32"):
        read_vectors(path)
    a = {**arrays(), "classes": np.array([2, 2, 2], dtype=np.int64)}    # N = 3 against N = 2
    path = write_raw(tmp_path / "k2.npz", described(a), a)
    with pytest.raises(VectorError, match=r"dimension N is 2 in 'logits' but 3 in 'classes'"):
        read_vectors(path)
    a = {**arrays(), "classes": np.array([[2, 2]], dtype=np.int64)}
    path = write_raw(tmp_path / "k3.npz", described(a), a)
    with pytest.raises(VectorError, match=r"array 'classes' must have dims \('N',\), found shape \(1, 2\)"):
        read_vectors(path)


def test_reader_rejects_wrong_kind_request(tmp_path):
    path = write_vectors(tmp_path / "v.npz", "softmax", arrays(), formats=FMT, options=OPTIONS)
    with pytest.raises(VectorError, match=r"holds 'softmax' vectors, expected 'conv-infer'"):
        read_vectors(path, kind="conv-infer")


@pytest.mark.parametrize("content", [b"", b"hello, not a zip", b"PK\x03\x04garbage"])
def test_reader_rejects_non_npz(tmp_path, content):
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    with pytest.raises(VectorError, match=r"x\.npz: not a vector file"):
        read_vectors(path)


def test_reader_rejects_truncated_file(tmp_path):
    good = write_vectors(tmp_path / "v.npz", "softmax", arrays(), formats=FMT, options=OPTIONS)
    data = good.read_bytes()
    for cut in (len(data) // 3, len(data) - 10):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(VectorError, match="not a vector file"):
            read_vectors(bad)


def test_reader_rejects_missing_file(tmp_path):
    with pytest.raises(VectorError, match="no such vector file"):
        read_vectors(tmp_path / "nope.npz")


def test_plain_numpy_npz_is_not_a_vector_file(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, **arrays())
    with pytest.raises(VectorError, match=r"no _header entry"):
        read_vectors(path)


@pytest.mark.parametrize("change, match", [
    ({"words": np.zeros((2, 3))}, r"array 'words' must hold integers, found float64"),
    ({"extra": np.zeros(2, dtype=np.int64)}, r"unexpected \['extra'\]"),
])
def test_writer_rejects(tmp_path, change, match):
    a = {**arrays(), **change}
    with pytest.raises(VectorError, match=match):
        write_vectors(tmp_path / "w.npz", "softmax", a, formats=FMT, options=OPTIONS)
    assert not (tmp_path / "w.npz").exists()


def test_writer_rejects_lossy_cast(tmp_path):
    a = {**arrays(), "words": np.array([[1, 2, 1 << 63], [0, 0, 0]], dtype=np.uint64)}
    with pytest.raises(VectorError, match=r"array 'words' does not fit int64 without loss"):
        write_vectors(tmp_path / "w.npz", "softmax", a, formats=FMT, options=OPTIONS)


def test_to_readmemh():
    assert to_readmemh(np.array([-1, 0, 5, 7]), 4) == "f\n0\n5\n7\n"
    assert to_readmemh(np.array([[-2048, 2047], [4095, 0]]), 12) == "800\n7ff\nfff\n000\n"
    assert to_readmemh(np.array([1]), 1) == "1\n"
    assert to_readmemh(np.zeros(0, dtype=np.int64), 8) == ""
    with pytest.raises(VectorError, match=r"value 16 at flat index 1 does not fit 4 bits"):
        to_readmemh(np.array([0, 16]), 4)
    with pytest.raises(VectorError, match=r"value -9 at flat index 0 does not fit 4 bits"):
        to_readmemh(np.array([-9]), 4)


# --- the committed softmax vectors --------------------------------------------------------------

@pytest.mark.parametrize("name", PRESET_NAMES)
def test_committed_softmax_vectors_are_current(tmp_path, name):
    """Regenerating from the golden model gives exactly the committed file (content and bytes),
    so the committed set cannot go stale silently. Fix: python -m spykehw.sim.softmax.vector_gen"""
    committed = read_vectors(committed_path(name), kind="softmax")
    fresh = make_softmax_vectors(preset(name), COMMITTED_SEED)
    assert committed.differences(fresh) == [], (
        f"{committed_path(name)} is stale; rewrite with: python -m spykehw.sim.softmax.vector_gen")
    assert committed.formats == preset(name)
    rewritten = write_committed(name, folder=tmp_path)
    assert rewritten.read_bytes() == committed_path(name).read_bytes()


def test_committed_softmax_vectors_shape():
    vs = read_vectors(committed_path("fpga-16"), kind="softmax")
    n_cases = len(vs.options["cases"])
    assert vs["logits"].shape == (64 + n_cases, 47)
    assert n_cases >= 10 and vs.options["logit_bits"] == 16
    assert vs["logits"].min() >= -(1 << 15) and vs["logits"].max() < (1 << 15)
