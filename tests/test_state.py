"""The trained-state file: exact round trips, and every kind of damage is a clear StateError."""

import io
import json
import zipfile
from types import SimpleNamespace

import numpy as np
import pytest
from spykehw.golden.classifier_params import ClassifierParams
from spykehw.golden.errors import SpykehwError
from spykehw.golden.formats import preset
from spykehw.golden.options import NetworkOptions
from spykehw.golden.state import (
    FORMAT_NAME,
    StateError,
    TrainedState,
    load_state,
    make_state,
    save_state,
)

M, C, K, S = 30, 2, 5, 4


def _float_state() -> TrainedState:
    rng = np.random.default_rng(1)
    snaps = rng.random((S, M, C, K, K), dtype=np.float32)
    cls = ClassifierParams(rng.standard_normal((3630, 16), dtype=np.float32),
                           rng.standard_normal(16, dtype=np.float32),
                           rng.standard_normal((16, 10), dtype=np.float32),
                           np.array([0.1, -0.0, 1e-30, np.inf] + [0.0] * 6, np.float32))
    return TrainedState(
        model="float", options=NetworkOptions().to_dict(), formats=None,
        conv1_weights=snaps[-1].copy(), conv1_final_weights=snaps[-1] * np.float32(0.5),
        snapshots=snaps, snapshot_steps=np.arange(S, dtype=np.int64) * 2399, classifier=cls,
        provenance={"dataset": "mnist-sample", "files": {"a": {"sha256": "00" * 32, "shape": [5, 28, 28]}}},
        results={"test_acc": 0.1 + 0.2, "epochs": 3, "history": [{"val": 0.5}, {"val": None}],
                 "name": "ünïcode"})


def _int_state() -> TrainedState:
    rng = np.random.default_rng(2)
    fmt = preset("fpga-8")
    snaps = rng.integers(0, 256, (S, M, C, K, K), dtype=np.int64)
    cls = ClassifierParams(np.zeros((3630, 8), np.float32), np.ones(8, np.float32),
                           np.full((8, 47), -2.5, np.float32), np.arange(47, dtype=np.float32))
    qint = {"W2": rng.integers(-128, 128, (3630, 8), dtype=np.int64).astype(np.int8),
            "b2": rng.integers(-2048, 2048, 8, dtype=np.int64).astype(np.int16),
            "W3": rng.integers(-128, 128, (8, 47), dtype=np.int64),
            "b3": rng.integers(-2048, 2048, 47, dtype=np.int64).astype(np.int32)}
    return TrainedState(
        model="int", options=NetworkOptions().replace(**{"conv.homeostasis": False}).to_dict(),
        formats=fmt.to_dict(), conv1_weights=snaps[-1].copy(), conv1_final_weights=snaps[0].copy(),
        snapshots=snaps, snapshot_steps=np.array([0, 2399, 4798, 7197], np.int64),
        classifier=cls, classifier_int=qint, provenance={"dataset": "emnist", "seed": 0},
        results={"balanced_accuracy": 0.851234567890123})


def _assert_same(a: TrainedState, b: TrainedState) -> None:
    assert (a.model, a.options, a.formats, a.provenance, a.results) == \
        (b.model, b.options, b.formats, b.provenance, b.results)
    xa, xb = a.arrays(), b.arrays()
    assert sorted(xa) == sorted(xb)
    for name in xa:
        assert xa[name].dtype == xb[name].dtype, name
        np.testing.assert_array_equal(xa[name], xb[name], err_msg=name)
        assert xa[name].tobytes() == xb[name].tobytes(), name  # bit-identical (-0.0, inf)


@pytest.mark.parametrize("make", [_float_state, _int_state])
def test_round_trip_is_exact(make, tmp_path):
    state = make()
    path = save_state(tmp_path / "state.npz", state)
    back = load_state(path)
    _assert_same(state, back)
    assert back.network_options() == NetworkOptions.from_dict(state.options)
    if state.model == "int":
        assert back.number_formats() == preset("fpga-8")
        assert sorted(back.classifier_int) == ["W2", "W3", "b2", "b3"]
    else:
        assert back.number_formats() is None and back.classifier_int is None
    assert [p.name for p in tmp_path.iterdir()] == ["state.npz"]  # no temporary left behind


def test_numpy_reads_the_file_as_an_npz(tmp_path):
    # An independent reader: the arrays are plain .npy entries of a zip.
    state = _float_state()
    save_state(tmp_path / "s.npz", state)
    with np.load(tmp_path / "s.npz") as z:
        np.testing.assert_array_equal(z["snapshots"], state.snapshots)
        np.testing.assert_array_equal(z["classifier.W2"], state.classifier.W2)
    with zipfile.ZipFile(tmp_path / "s.npz") as zf:
        meta = json.loads(zf.read("meta.json"))
    assert (meta["format"], meta["version"]) == (FORMAT_NAME, 1)
    assert len(meta["sha256"]) == 64


def test_make_state_from_a_trace(tmp_path):
    w = np.full((M, C, K, K), 0.8, np.float32)
    trace = SimpleNamespace(weights=w, final_weights=w + np.float32(0.01), snapshots=w[None],
                            snapshot_steps=np.array([0]))
    state = make_state(trace, NetworkOptions(), None, results={"x": np.float64(0.5),
                                                                "n": np.int32(3)})
    back = load_state(save_state(tmp_path / "s.npz", state))
    assert back.model == "float" and back.classifier is None
    assert back.results == {"x": 0.5, "n": 3}
    assert back.snapshot_steps.dtype == np.int64
    with pytest.raises(StateError, match="formats: expected a dict"):
        TrainedState("int", {}, None, w, w, w[None], np.array([0]))
    with pytest.raises(StateError, match="conv1_weights: expected int64 for the int model"):
        make_state(trace, NetworkOptions(), preset("fpga-16"))


# ----- damage --------------------------------------------------------------------------------

def _entries(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _rezip(path, entries: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for n, b in entries.items():
            zf.writestr(n, b)


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


@pytest.fixture
def saved(tmp_path):
    state = _float_state()
    return save_state(tmp_path / "state.npz", state), state


def _fails(path, *fragments):
    with pytest.raises(StateError) as e:
        load_state(path)
    msg = str(e.value)
    assert isinstance(e.value, SpykehwError)
    assert msg.startswith(f"{path}: "), msg
    for f in fragments:
        assert f in msg, msg
    return msg


def test_truncated_file(saved):
    path, _ = saved
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _fails(path, "damaged or truncated")


def test_not_a_zip(tmp_path):
    path = tmp_path / "x.npz"
    path.write_text("weights = [0.8, 0.8]\n")
    _fails(path, "not a spykehw-state file (not a zip archive)")


def test_flipped_byte_in_array_data(saved):
    path, state = saved
    data = bytearray(path.read_bytes())
    pos = bytes(data).find(state.snapshots.tobytes())
    assert pos > 0
    data[pos + 1234] ^= 0x10
    path.write_bytes(bytes(data))
    _fails(path, "'snapshots.npy'", "damaged")  # the zip's CRC-32 catches it first


def test_valid_zip_with_a_modified_array_fails_the_checksum(saved):
    # The entry is a perfectly valid .npy with the right dtype and shape, so no CRC or header
    # check can see it: only the checksum over the content does.
    path, state = saved
    entries = _entries(path)
    w = state.conv1_weights.copy()
    w[3, 1, 2, 4] = np.nextafter(w[3, 1, 2, 4], np.float32(2))  # one ulp
    entries["conv1_weights.npy"] = _npy(w)
    _rezip(path, entries)
    _fails(path, "checksum mismatch")


def test_edited_metadata_fails_the_checksum(saved):
    path, _ = saved
    entries = _entries(path)
    meta = json.loads(entries["meta.json"])
    meta["results"]["test_acc"] = 0.99
    entries["meta.json"] = json.dumps(meta).encode()
    _rezip(path, entries)
    _fails(path, "checksum mismatch")


def test_array_of_another_dtype_is_named(saved):
    path, state = saved
    entries = _entries(path)
    entries["snapshot_steps.npy"] = _npy(state.snapshot_steps.astype(np.int32))
    _rezip(path, entries)
    _fails(path, "array 'snapshot_steps': expected int64 (4,), found int32 (4,)")


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_unknown_version_is_rejected(saved, version):
    path, _ = saved
    entries = _entries(path)
    meta = json.loads(entries["meta.json"])
    meta["version"] = version
    entries["meta.json"] = json.dumps(meta).encode()
    _rezip(path, entries)
    _fails(path, f"unsupported spykehw-state version {version!r}", "reads version 1")


def test_other_format_name_is_rejected(saved):
    path, _ = saved
    entries = _entries(path)
    meta = json.loads(entries["meta.json"])
    meta["format"] = "something-else"
    entries["meta.json"] = json.dumps(meta).encode()
    _rezip(path, entries)
    _fails(path, "expected format 'spykehw-state', found 'something-else'")


def test_missing_entry(saved):
    path, _ = saved
    entries = _entries(path)
    del entries["classifier.W3.npy"]
    _rezip(path, entries)
    _fails(path, "missing entry 'classifier.W3.npy'")
    del entries["meta.json"]
    _rezip(path, entries)
    _fails(path, "missing entry 'meta.json'")


def test_unexpected_entry(saved):
    path, _ = saved
    entries = _entries(path)
    entries["evil.npy"] = _npy(np.zeros(3))
    _rezip(path, entries)
    _fails(path, "unexpected entries evil.npy")


def test_meta_not_json(saved):
    path, _ = saved
    entries = _entries(path)
    entries["meta.json"] = b"{not json"
    _rezip(path, entries)
    _fails(path, "meta.json is not valid JSON")
