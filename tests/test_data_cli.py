"""``spykehw data``: help texts, ``info`` output, errors as one line."""

import numpy as np
import pytest

from spykehw.cli import main
from spykehw.data import write_idx
from spykehw.data.locate import shared_datasets_dir


@pytest.mark.parametrize("argv", [["data"], ["data", "info"], ["data", "fetch"],
                                  ["data", "make-sample"]])
def test_every_data_command_has_help(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv + ["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: spykehw " + " ".join(argv))
    assert len(out.splitlines()) > 4


def test_info_lists_the_sample_and_a_given_folder(tmp_path, capsys):
    d = tmp_path / "mnist"
    write_idx(d / "train-images-idx3-ubyte.gz", np.zeros((3, 28, 28), np.uint8))
    write_idx(d / "train-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    write_idx(d / "t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28), np.uint8))
    write_idx(d / "t10k-labels-idx1-ubyte.gz", np.zeros(2, np.uint8))
    assert main(["data", "info", "--data-dir", str(tmp_path), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "mnist-sample     train 5000, test 1000" in out
    assert f"--data-dir: {tmp_path}" in out
    assert "mnist            train 3, test 2" in out
    assert "DIFFERS from the official content" in out
    assert "emnist           not found" in out


@pytest.mark.skipif(shared_datasets_dir() is None,
                    reason="shared datasets folder (../shared/datasets beside the repo) not present")
def test_info_default_folders_show_the_shared_datasets(capsys, monkeypatch):
    monkeypatch.delenv("SPYKEHW_DATA_DIR", raising=False)
    assert main(["data", "info"]) == 0
    out = capsys.readouterr().out
    assert f"shared folder: {shared_datasets_dir()}" in out
    assert "mnist            train 60000, test 10000" in out
    assert "116323 images (bymerge test), 47 classes present" in out


def test_bad_input_is_one_line_error(tmp_path, capsys):
    assert main(["data", "info", "--data-dir", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"spykehw data: error: {tmp_path / 'nope'}: expected a data folder, found nothing"
    assert main(["data", "make-sample", "--data-dir", str(tmp_path), "--out",
                 str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spykehw data: error: ") and "missing in" in err
    assert len(err.splitlines()) == 1
