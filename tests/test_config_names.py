"""Config names: a config that changes a preset never carries the preset's name, and no name
becomes a path unchecked (issue 14, item 4)."""

from __future__ import annotations

import pytest
from spykehw.golden.formats import FormatError, load_formats, preset

from spykehw.cli import main


def _toml(tmp_path, text: str, name: str = "c.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_a_changed_preset_gets_a_name_from_its_content(tmp_path):
    fmt = load_formats(_toml(tmp_path, 'preset = "fpga-8"\n[conv]\nweight_bits = 6\n'))
    assert fmt.name != "fpga-8" and fmt.name == f"fpga-8-custom-{fmt.digest()[:8]}"
    assert fmt.conv.weight_bits == 6
    same = load_formats(_toml(tmp_path, 'preset = "fpga-8"\n', "same.toml"))
    assert same.name == "fpga-8" and same.digest() == preset("fpga-8").digest()


def test_a_preset_name_on_other_content_is_refused(tmp_path):
    with pytest.raises(FormatError, match="conv.weight_bits"):
        load_formats(_toml(tmp_path, 'preset = "fpga-8"\nname = "fpga-8"\n[conv]\nweight_bits = 6\n'))


@pytest.mark.parametrize("name", ["x/../../../pwned", "../up", "a/b", ".hidden", "", "a" * 65,
                                  "with space", "-dash"])
def test_unsafe_names_are_refused(tmp_path, name):
    with pytest.raises(FormatError, match="name"):
        load_formats(_toml(tmp_path, f'name = "{name}"\n'))


def test_a_toml_that_is_not_utf8_is_a_format_error(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_bytes(b'name = "\xff\xfe"\n')
    with pytest.raises(FormatError, match="UTF-8"):
        load_formats(p)


def test_vectors_never_write_outside_out(tmp_path, capsys):
    """name = "x/../../../pwned" made `vectors conv --out out/sub` write out/pwned.npz."""
    cfg = _toml(tmp_path, 'name = "x/../../../pwned"\n')
    out = tmp_path / "out" / "sub"
    rc = main(["vectors", "conv", "--config", str(cfg), "--out", str(out), "--source", "adversarial"])
    err = capsys.readouterr().err
    assert rc == 2 and "not a safe name" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.rglob("*.npz"))


def test_changed_preset_does_not_overwrite_the_preset_vectors(tmp_path):
    """A TOML based on fpga-8 with other weight bits overwrote conv-adversarial-fpga-8.npz."""
    cfg = _toml(tmp_path, 'preset = "fpga-8"\n[conv]\nweight_bits = 6\n')
    out = tmp_path / "out"
    assert main(["vectors", "conv", "--config", str(cfg), "--out", str(out),
                 "--source", "adversarial", "--count", "2", "--train-images", "10"]) == 0
    names = sorted(p.name for p in out.glob("*.npz"))
    assert names == [f"conv-adversarial-{load_formats(cfg).name}.npz"] and "fpga-8.npz" not in names[0]


def test_a_state_whose_formats_only_share_the_name_is_refused_clearly(tmp_path):
    """The message read `formats 'fpga-8', not 'fpga-8'`: now it shows the content hashes."""
    import dataclasses

    import numpy as np
    from spykehw.golden.options import NetworkOptions
    from spykehw.golden.state import TrainedState, save_state
    from spykehw.sim.conv.vector_gen import ConvVectorError, conv1_weights

    fake = dataclasses.replace(preset("fpga-8").replace(**{"conv.weight_bits": 6}), name="fpga-8")
    w = np.zeros((2, 30, 2, 5, 5), np.int64)
    st = TrainedState(model="int", options=NetworkOptions().to_dict(), formats=fake.to_dict(),
                      conv1_weights=w[0], conv1_final_weights=w[0], snapshots=w,
                      snapshot_steps=np.array([0, 1], np.int64), provenance={}, results={})
    path = save_state(tmp_path / "old.npz", st)
    with pytest.raises(ConvVectorError) as e:
        conv1_weights(preset("fpga-8"), state=path)
    msg = str(e.value)
    assert fake.digest()[:8] in msg and preset("fpga-8").digest()[:8] in msg
