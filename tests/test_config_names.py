"""Config names: a config that changes a preset never carries the preset's name, and no name
becomes a path unchecked (issue 14, item 4)."""

from __future__ import annotations

import pytest

from spykehw.cli import main
from spykehw.golden.formats import FormatError, load_formats, preset


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
