"""One set of flags across the command line, checked by walking every argument parser.

- ``--version`` prints the package version;
- every subcommand has ``--quiet``, ``--json`` and ``--debug`` (spykehw.cli_flags adds the generic
  ones where a command has none of its own);
- every subcommand that writes files takes ``--out`` for where they go;
- no synonyms of the common names (``--folder``, ``--dest``, ``--output``, ``--formats`` ...);
- a flag used by several subcommands has the same kind of value everywhere (a path is a path,
  a count an int), except the listed, reasoned exceptions.
"""

from __future__ import annotations

import argparse
import json

import pytest

import spykehw
from spykehw.cli import build_parser, main
from spykehw.cli_flags import leaf_parsers

# Synonyms of --out, --config, --quiet, --json that must not come back.
FORBIDDEN = {"--folder", "--dest", "--output", "--outdir", "--out-dir", "--output-dir", "--formats",
             "--preset", "--silent", "--no-progress", "--verbose-json", "--dir"}
ALLOWED_FORBIDDEN = {
    ("quant", "--dir"): "names one sweep folder to create or resume (--out is the root of new ones); "
                        "quant's flags are being reworked under issue 14",
}
# Subcommands that write no files (so no --out).
NO_FILES = {"data info": "prints what datasets are found"}
# Flags whose value kind may differ between subcommands, with the reason.
KIND_EXCEPTIONS = {
    ("fpga", "--lanes"): "a comma-separated sweep list",
    ("fpga", "--parallelism"): "a comma-separated sweep list",
    ("quant", "--hidden"): "a comma-separated sweep list (each size a count)",
    ("bench", "--out"): "one JSON file, not a folder",
    ("predict", "--out"): "one CSV/JSON file, not a folder",
}


def leaves():
    return [(" ".join(path), p) for path, p in leaf_parsers(build_parser())]


def options(p: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {o: a for a in p._actions for o in a.option_strings if o not in ("-h", "--help")}


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"spykehw {spykehw.__version__}"


def test_the_walk_sees_every_subcommand():
    names = {n for n, _ in leaves()}
    assert {"run", "predict", "data info", "data fetch", "verilog conv", "verilog classifier",
            "cosim conv", "cosim classifier", "cosim learn", "export", "fpga", "quant"} <= names


def test_every_subcommand_has_quiet_json_debug():
    missing = [f"{n} {flag}" for n, p in leaves() for flag in ("--quiet", "--json", "--debug")
               if flag not in options(p)]
    assert missing == []


def test_every_subcommand_that_writes_takes_out():
    without = {n for n, p in leaves() if "--out" not in options(p)}
    assert without == set(NO_FILES)


def test_no_synonyms():
    bad = [f"{n} {o}" for n, p in leaves() for o in options(p)
           if o in FORBIDDEN and (n, o) not in ALLOWED_FORBIDDEN]
    assert bad == []


def _kind(a: argparse.Action) -> tuple:
    return type(a).__name__, getattr(a.type, "__name__", a.type)


def test_a_flag_means_the_same_kind_of_value_everywhere():
    kinds: dict[str, dict[tuple, list[str]]] = {}
    for n, p in leaves():
        for o, a in options(p).items():
            if (n, o) not in KIND_EXCEPTIONS:
                kinds.setdefault(o, {}).setdefault(_kind(a), []).append(n)
    mixed = {o: k for o, k in kinds.items() if len(k) > 1}
    assert mixed == {}


def test_the_test_catches_a_synonym():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    sub.add_parser("x").add_argument("--folder")
    found = [o for _, p in leaf_parsers(parser) for o in options(p) if o in FORBIDDEN]
    assert found == ["--folder"]


def test_generic_json_and_quiet(tmp_path, capsys):
    pytest.importorskip("amaranth")
    args = ["verilog", "classifier", "--features", "8", "--hidden", "4", "--classes", "3", "--lanes", "2",
            "--no-lint"]
    assert main(args + ["--out", str(tmp_path / "a"), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert (tmp_path / "a" / "classifier.v").is_file()
    assert main(args + ["--out", str(tmp_path / "b"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["command"] == "verilog classifier" and doc["status"] == 0
    assert doc["manifest"] == str(tmp_path / "b" / "manifest.json")
    assert any("classifier 8 -> 4 -> 3" in line for line in doc["output"])


def test_vectors_classifier_rebuilds_a_committed_set(tmp_path, capsys):
    pytest.importorskip("amaranth")
    import numpy as np
    from spykehw.sim.classifier.vector_gen import committed_path

    assert main(["vectors", "classifier", "--only", "adversarial-fpga-8", "--out", str(tmp_path)]) == 0
    assert "48->40->10" in capsys.readouterr().out
    with np.load(tmp_path / "adversarial-fpga-8.npz") as got, \
            np.load(committed_path("adversarial-fpga-8")) as want:
        assert sorted(got.files) == sorted(want.files)
        for k in want.files:
            assert np.array_equal(got[k], want[k]), k
