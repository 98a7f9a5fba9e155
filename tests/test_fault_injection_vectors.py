"""Fault injection, vector files: headers and arrays edited against each other, by hand and by
hypothesis; the header against the design it drives; co-simulation counting the images it
compared (issue 14, item 3). The byte-level damage of vector files is in test_fault_injection.py.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fault_injection import _FAST, ROOT, SAMPLE_VECTORS

# ----- vector files: the header and values against each other ---------------------------------

def _rewrite(src: Path, dst: Path, header_fn=None, arrays_fn=None, *, rehash: bool = True) -> Path:
    """Copy a vector file changing its header or arrays, with valid zip CRCs (an *edited* file);
    ``rehash`` also recomputes the header's content hash, as a careful forger (or a generator
    bug) would, so that the content checks behind the hash are what is tested."""
    from spykehw.golden.stored import arrays_digest

    with zipfile.ZipFile(src) as z:
        raw = {n[:-4]: np.lib.format.read_array(io.BytesIO(z.read(n))) for n in z.namelist()}
    header = json.loads(raw.pop("_header").tobytes())
    arrays = {k: np.array(v) for k, v in raw.items()}
    if arrays_fn:
        arrays_fn(arrays)
        if rehash:
            header["arrays_sha256"] = arrays_digest(arrays)
    if header_fn:
        header_fn(header)
    entries = {"_header": np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays}
    with zipfile.ZipFile(dst, "w") as z:
        for name, a in entries.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, a, allow_pickle=False)
            z.writestr(f"{name}.npy", buf.getvalue())
    return dst


def _set_path(d: dict, path: str, value) -> None:
    *parents, leaf = path.split(".")
    for p in parents:
        d = d[p]
    d[leaf] = value


def _drop_last_case(h):
    h["options"]["cases"] = h["options"]["cases"][:-1]


def _bad_spike_offsets(a):
    a["spike_offsets"][2] = a["spike_offsets"][1] - 1


def _event_out_of_range(a):
    a["events"][0, 2] = 99


def _weight_out_of_range(a):
    a["weights"][0, 0, 0, 0, 0] = 1 << 12


def _bits_up(h):
    h["formats"]["conv"]["weight_bits"] += 2


def _bits_down(h):
    h["formats"]["conv"]["weight_bits"] = 4


def _threshold(h):
    h["options"]["threshold"] += 1


VECTOR_EDITS = {
    "cases-one-short": (_drop_last_case, None, "options.cases"),
    "weight-bits-up": (_bits_up, None, "threshold"),
    "weight-bits-down": (_bits_down, None, "weight bits"),
    "threshold": (_threshold, None, "threshold"),
    "spike-offsets": (None, _bad_spike_offsets, "spike_offsets"),
    "event-out-of-range": (None, _event_out_of_range, "events"),
    "weight-out-of-range": (None, _weight_out_of_range, "weights"),
    "options-not-a-table": (lambda h: h.update(options=[1, 2]), None, "options"),
    "arrays-not-a-table": (lambda h: h.update(arrays="x"), None, "arrays"),
    "conv-options-bad": (lambda h: _set_path(h, "options.conv", {"maps": "x"}), None, ""),
}


@pytest.mark.parametrize("edit", list(VECTOR_EDITS))
def test_an_edited_conv_vector_file_is_refused(edit, tmp_path):
    """Issue 14, item 3: a file whose ``options.cases`` is one short made cosim report 8 images
    for 9; changed weight bits or threshold, bad offsets or values failed later or as 'RTL
    mismatches'. Now the reader refuses them, naming the file and the key."""
    from spykehw.sim.framework.vectors import VectorError, read_vectors

    header_fn, arrays_fn, word = VECTOR_EDITS[edit]
    path = _rewrite(SAMPLE_VECTORS["conv"], tmp_path / "edited.npz", header_fn, arrays_fn)
    with pytest.raises(VectorError) as e:
        read_vectors(path)
    assert "edited.npz" in str(e.value) and word in str(e.value)


@pytest.mark.parametrize("which", sorted(SAMPLE_VECTORS))
def test_an_edited_array_fails_the_content_hash(which, tmp_path):
    """Any change of any value, even one still in range, is refused by the header's hash."""
    from spykehw.sim.framework.vectors import VectorError, read_vectors

    def bump(a):
        name = max(a, key=lambda k: a[k].size)
        flat = a[name].reshape(-1)
        flat[flat.size // 2] ^= 1

    path = _rewrite(SAMPLE_VECTORS[which], tmp_path / "e.npz", None, bump, rehash=False)
    with pytest.raises(VectorError, match="arrays_sha256"):
        read_vectors(path)


def test_every_committed_vector_file_carries_its_content_hash():
    from spykehw.sim.framework.vectors import read_vectors

    for p in sorted((ROOT / "vectors").glob("*/*.npz")):
        with zipfile.ZipFile(p) as z:
            header = json.loads(np.lib.format.read_array(io.BytesIO(z.read("_header.npy"))).tobytes())
        assert "arrays_sha256" in header, p
        read_vectors(p)


def test_cosim_conv_refuses_a_short_case_list_in_one_line(tmp_path, capsys):
    from spykehw.cli import main

    path = _rewrite(SAMPLE_VECTORS["conv"], tmp_path / "short.npz", _drop_last_case)
    rc = main(["cosim", "conv", "--vectors", str(path), "--out", str(tmp_path / "runs"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "options.cases" in err and len(err.splitlines()) == 1, err


def test_vectors_for_another_design_are_refused(tmp_path):
    """The header against the design it drives: fpga-8 vectors on an fpga-16 conv core."""
    from spykehw.sim.conv.vector_gen import ConvVectorError, check_drives, core_config
    from spykehw.sim.framework.vectors import read_vectors

    from spykehw.commands.verilog import conv_config

    vs = read_vectors(SAMPLE_VECTORS["conv"])
    check_drives(vs, core_config(vs))
    with pytest.raises(ConvVectorError, match="formats"):
        check_drives(vs, conv_config("fpga-16", "conv1", None, 12))


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=5),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
                     max_leaves=6)


def _header_paths(h: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in h.items():
        out.append(prefix + k)
        if isinstance(v, dict) and k != "arrays":
            out += _header_paths(v, prefix + k + ".")
    return out


_HEADER_PATHS: dict[str, list[str]] = {}


def _paths_of(which: str) -> list[str]:
    if which not in _HEADER_PATHS:
        with zipfile.ZipFile(SAMPLE_VECTORS[which]) as z:
            _HEADER_PATHS[which] = sorted(_header_paths(json.loads(
                np.lib.format.read_array(io.BytesIO(z.read("_header.npy"))).tobytes())))
    return _HEADER_PATHS[which]


@_FAST
@given(which=st.sampled_from(sorted(SAMPLE_VECTORS)), data=st.data())
def test_random_header_values(which, data, tmp_path_factory):
    """Hypothesis: any header entry of any kind of vector file replaced by any JSON value is a
    VectorError naming the file or a file that still passes every check; never another
    exception."""
    from spykehw.sim.framework.vectors import VectorError, read_vectors

    key = data.draw(st.sampled_from(_paths_of(which)))
    value = data.draw(_JSON)
    path = _rewrite(SAMPLE_VECTORS[which], tmp_path_factory.mktemp("h") / "h.npz",
                    lambda h: _set_path(h, key, value))
    try:
        read_vectors(path)
    except VectorError as e:
        assert "h.npz" in str(e)


_LIMITS = {  # array -> what every accepted file must satisfy
    "conv": lambda vs: vs["weights"].max() <= vs.formats.weight_max() and vs["features"].max() <= 1,
    "learn": lambda vs: vs["weights"].max() <= vs.formats.weight_max() and vs["weights0"].min() >= 0,
    "classifier": lambda vs: vs["indices"].max() < vs["w2"].shape[0] and vs["hidden"].max() <= 1,
    "softmax": lambda vs: vs["words"].min() >= 0,
}


@_FAST
@given(which=st.sampled_from(sorted(SAMPLE_VECTORS)), data=st.data())
def test_random_array_values(which, data, tmp_path_factory):
    """Hypothesis: any value of any array set to any value of its dtype: a VectorError or a file
    whose values are all in range (the check passed)."""
    from spykehw.sim.framework.vectors import VectorError, read_vectors

    with zipfile.ZipFile(SAMPLE_VECTORS[which]) as z:
        names = sorted(n[:-4] for n in z.namelist() if n != "_header.npy")
    name = data.draw(st.sampled_from(names))

    def edit(a):
        arr = a[name]
        if arr.size == 0:
            return
        info = np.iinfo(arr.dtype)
        flat = arr.reshape(-1)
        flat[data.draw(st.integers(0, flat.size - 1))] = data.draw(st.integers(int(info.min), int(info.max)))

    path = _rewrite(SAMPLE_VECTORS[which], tmp_path_factory.mktemp("a") / "a.npz", None, edit)
    try:
        vs = read_vectors(path)
    except VectorError as e:
        assert "a.npz" in str(e)
        return
    assert _LIMITS[which](vs)


def test_cosim_conv_fails_unless_every_image_in_the_file_was_compared(tmp_path, monkeypatch, capsys):
    """Issue 14, item 3: 'N images ... 0 mismatches', exit 0, when fewer were compared."""
    import spykehw.sim.conv.cosim as harness

    from spykehw.cli import main

    monkeypatch.setattr(harness, "build_conv_cosim", lambda *a, **k: None)

    def short_run(cosim, vectors, folder, **kw):
        return {"vector": "fpga-8.npz", "images_in_file": 9, "images": 8, "mismatches": 0,
                "mismatch_lines": [], "mismatching_images": [], "cycles": 8, "tb_wall_s": 1.0,
                "wall_s": 1.0, "waveform": None, "waveforms": [], "cycles_per_image": 1.0,
                "images_per_s": 8.0}

    monkeypatch.setattr(harness, "cosim_vector_file", short_run)
    rc = main(["cosim", "conv", "--vectors", str(SAMPLE_VECTORS["conv"]), "--out", str(tmp_path),
               "--quiet"])
    out = capsys.readouterr()
    assert rc == 1 and "8 of 9 images compared" in out.out and "8 images compared" in out.err
    (folder,) = tmp_path.iterdir()
    assert json.loads((folder / "manifest.json").read_text())["status"] == "failed"


def test_cosim_classifier_fails_unless_every_image_was_compared(tmp_path, monkeypatch, capsys):
    import spykehw.sim.classifier.long_run as harness

    from spykehw.cli import main

    def short_run(dataset, images, **kw):
        return {"images": images, "images_compared": images - 1, "passed": False, "checked": 10,
                "mismatches": 0, "first_mismatches": [], "rtl_accuracy": 0.5, "golden_accuracy": 0.5,
                "rtl_classes_equal_golden": images, "cycles_per_image": 1.0,
                "bytes_fetched_per_image": 1.0, "waveforms": []}

    monkeypatch.setattr(harness, "long_run_classifier", short_run)
    rc = main(["cosim", "classifier", "--images", "5", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 1 and "4 images compared, 5 expected" in err
