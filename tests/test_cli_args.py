"""Command-line flags: every numeric or path flag of every subcommand is validated while parsing,
with one line naming the flag and the value (issue 14, items 5, 6 and 8)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from spykehw import argtypes
from spykehw.cli import build_parser, main
from spykehw.commands import HELP

VALIDATED = {argtypes.count, argtypes.count_list, argtypes.nonneg_int, argtypes.seed,
             argtypes.workers, argtypes.positive_float, argtypes.existing_file, argtypes.output_dir,
             argtypes.output_file, argtypes.verilog_identifier}


def _subparsers(parser: argparse.ArgumentParser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _subparsers(sub, prefix + (name,))
    yield prefix, parser


def test_no_parser_takes_a_bare_int_or_float():
    """The class fix: a new flag with ``type=int`` would accept 0, negatives and seeds numpy
    refuses; this test makes it fail until it uses a validated type."""
    bare = []
    for path, parser in _subparsers(build_parser()):
        for action in parser._actions:
            if action.type in (int, float):
                bare.append(f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
    assert not bare, f"flags with a bare int/float type: {bare}"


@pytest.mark.parametrize("argv, flag", [
    (["run", "--train-limit", "0"], "--train-limit"),
    (["run", "--train-limit", "-5"], "--train-limit"),
    (["run", "--test-limit", "0"], "--test-limit"),
    (["run", "--seed", "-5", "--dataset", "emnist"], "--seed"),
    (["run", "--epochs", "x"], "--epochs"),
    (["cosim", "learn", "--images", "0"], "--images"),
    (["cosim", "conv", "--chunk", "0"], "--chunk"),
    (["quant", "--workers", "0"], "--workers"),
    (["quant", "--train-limit", "-1"], "--train-limit"),
    (["quant", "--hidden", "128,0"], "--hidden"),
    (["quant", "--hidden", "128,,256"], "--hidden"),
    (["fpga", "--freq", "nan"], "--freq"),
    (["fpga", "--workers", "-2"], "--workers"),
    (["bench", "--threads", "0"], "--threads"),
    (["data", "info", "--seed", str(2**40)], "--seed"),
    (["data", "fetch", "mnist", "--attempts", "0"], "--attempts"),
    (["vectors", "conv", "--out", "x", "--source", "adversarial", "--count", "0"], "--count"),
    (["verilog", "classifier", "--out", "x", "--lanes", "0"], "--lanes"),
    (["verilog", "conv", "--out", "x", "--name", "my core"], "--name"),
    (["verilog", "conv", "--out", "x", "--name", "../up"], "--name"),
])
def test_bad_numbers_and_names_are_one_line_errors(argv, flag, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and flag in err and "Traceback" not in err, err


def test_out_that_is_a_file_and_weights_that_are_a_folder(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    for argv, flag in ((["run", "--out", str(f)], "--out"),
                       (["vectors", "conv", "--out", str(f / "sub"), "--source", "adversarial"], "--out"),
                       (["cosim", "conv", "--weights", str(tmp_path)], "--weights"),
                       (["bench", "--out", str(tmp_path)], "--out")):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and flag in err, err


def test_empty_validation_split_is_an_error_not_nan(tmp_path, capsys):
    """`--train-limit 5` left the validation split empty and chose the best epoch on NaN."""
    rc = main(["run", "--train-limit", "5", "--test-limit", "5", "--float-only", "--quiet",
               "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "validation split empty" in err and len(err.strip().splitlines()) == 1
    (folder,) = tmp_path.iterdir()
    m = json.loads((folder / "manifest.json").read_text())
    assert m["status"] == "failed" and "validation split" in m["error"]


def test_limit_rows_refuses_empty_splits():
    from spykehw.data import load_sample
    from spykehw.data.datasets import DatasetError, limit_rows

    ds = load_sample()
    assert len(limit_rows(ds, 100, 10, val_fraction=0.09).train_labels) == 100
    for tl, te in ((0, 10), (-5, 10), (10, 0)):
        with pytest.raises(DatasetError):
            limit_rows(ds, tl, te)
    with pytest.raises(DatasetError, match="validation split"):
        limit_rows(ds, 5, 10, val_fraction=0.09)


def test_data_info_verify_exit_status_follows_its_errors(tmp_path, capsys):
    """A corrupt file was reported but the exit status was 0."""
    from spykehw.data.datasets import SAMPLE_DIR

    d = tmp_path / "mnist"
    d.mkdir()
    for p in SAMPLE_DIR.glob("*.gz"):
        d.joinpath(p.name).write_bytes(p.read_bytes())
    victim = d / "t10k-labels-idx1-ubyte.gz"
    victim.write_bytes(victim.read_bytes()[:30])
    rc = main(["data", "info", "--data-dir", str(tmp_path), "--verify"])
    out = capsys.readouterr()
    assert rc == 1 and "error" in out.out and "error" in out.err


def test_bench_prints_before_saving(tmp_path, monkeypatch, capsys):
    """The JSON goes to stdout before the save that can fail, so a measurement is never lost."""
    import spykehw.commands.bench as command

    monkeypatch.setattr(command, "run_benchmarks", lambda *a, **k: {"ok": True, "results": {}})
    monkeypatch.setattr(command, "resolve_dataset", lambda d, dd: ("mnist-sample", None))

    def refuse(*a, **k):
        raise OSError(28, "No space left on device", str(tmp_path / "b.json"))

    # Only the command's save fails: a module imported while a global was patched would keep the
    # patched function for the rest of the session.
    monkeypatch.setattr(command, "atomic_write", refuse)
    rc = main(["bench", "--quick", "--only", "encode_int", "--out", str(tmp_path / "b.json")])
    out = capsys.readouterr()
    assert rc == 2 and '"ok": true' in out.out and "No space left" in out.err


def test_more_training_images_than_the_data_holds_is_an_error(tmp_path, capsys):
    """`vectors conv --train-images 99999` said 'train rows 0..99998' and trained on fewer."""
    from spykehw.data import load_sample, write_idx

    ds = load_sample()
    d = tmp_path / "mnist"
    for stem, a in (("train-images-idx3-ubyte", ds.train_images[:20]),
                    ("train-labels-idx1-ubyte", ds.train_labels[:20].astype("uint8")),
                    ("t10k-images-idx3-ubyte", ds.test_images[:5]),
                    ("t10k-labels-idx1-ubyte", ds.test_labels[:5].astype("uint8"))):
        write_idx(d / f"{stem}.gz", a)
    rc = main(["vectors", "conv", "--source", "adversarial", "--out", str(tmp_path / "v"),
               "--train-images", "30", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "has 20 training images, not 30" in err and len(err.splitlines()) == 1


def test_the_listing_shows_each_commands_own_help_line():
    """``spykehw --help`` lists the commands from :data:`spykehw.commands.HELP` without importing
    them; each command's module must register the same line."""
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert {a.dest: a.help for a in sub._choices_actions} == HELP


_LOADED = ("import sys\nfrom spykehw.cli import main\n"
           "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
           "print(' '.join(m for m in ('numba', 'amaranth', 'cocotb', 'dask', 'matplotlib') "
           "if m in sys.modules), file=sys.stderr)")


@pytest.mark.parametrize("argv, allowed", [
    (["--help"], set()),                        # the listing imports no command
    (["data", "info", "--help"], set()),
    (["run", "--help"], {"numba"}),             # the golden model, never the hardware
    (["predict", "--help"], {"numba"}),
])
def test_help_and_commands_without_hardware_import_no_amaranth(argv, allowed):
    out = subprocess.run([sys.executable, "-c", _LOADED, *argv], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert set(out.stderr.split()) <= allowed
