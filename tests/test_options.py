"""Every option settable (issue 15, item 1): ``--options authors-code|paper|FILE`` and
``--set KEY=VALUE`` for run, quant and bench; bad keys and values are one line naming the key
(exit status 2); the options in force are recorded in the run folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from spykehw.golden.option_sets import (
    PAPER_CHANGES,
    apply_settings,
    changed_keys,
    load_options,
    option_keys,
    options_preset,
    options_to_toml,
    paper_classifier_changes,
    parse_setting,
)
from spykehw.golden.options import NetworkOptions, OptionsError, classifier_defaults

from spykehw.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def _one_line_error(capsys, argv, *names):
    try:
        status = main(argv)
    except SystemExit as e:  # argparse (--set is checked while parsing)
        status = e.code
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for n in names:
        assert n in err, err
    return err


@pytest.mark.parametrize("command", [["run"], ["quant", "--dry-run"], ["bench", "--quick"]])
@pytest.mark.parametrize("setting, names", [
    ("conv.no_such_key=1", ["conv.no_such_key", "unknown option"]),
    ("nokey=1", ["nokey", "unknown option"]),
    ("classifier.dropout=2", ["classifier.dropout", "found 2"]),
    ("classifier.hidden=abc", ["classifier.hidden", "integer", "'abc'"]),
    ("conv.homeostasis=1", ["conv.homeostasis", "true or false"]),
    ("conv.competition=best", ["conv.competition", "'best'"]),
    ("classifier.epochs=none", ["classifier.epochs", "none"]),
    ("conv.rate_cap", ["KEY=VALUE"]),
])
def test_bad_set_is_one_line_naming_the_key(capsys, command, setting, names):
    _one_line_error(capsys, command + ["--set", setting], "--set", *names)


@pytest.mark.parametrize("command", [["run"], ["quant", "--dry-run"], ["bench", "--quick"]])
@pytest.mark.parametrize("text, names", [
    ("[conv]\nrate_cap = 2.0\n", ["conv.rate_cap", "found 2.0"]),
    ("[conv]\nno_such = 1\n", ["conv.no_such", "unknown option"]),
    ("[classifier]\ngradient = \"sg3\"\n", ["classifier.gradient", "'sg3'"]),
    ("stdp_images = 0\n", ["stdp_images"]),
    ("[encoder]\nimage_mode = 3\n", ["encoder.image_mode", "string"]),
    ("preset = \"mine\"\n", ["preset", "'mine'"]),
    ("[conv\n", ["not valid TOML"]),
])
def test_bad_options_file_is_one_line_naming_file_and_key(tmp_path, capsys, command, text, names):
    f = tmp_path / "opts.toml"
    f.write_text(text)
    _one_line_error(capsys, command + ["--options", str(f), "--dataset", "mnist-sample"]
                    if command[0] != "bench" else command + ["--options", str(f)], str(f), *names)


def test_unknown_preset_is_one_line(capsys):
    _one_line_error(capsys, ["run", "--options", "papers"], "unknown preset 'papers'", "authors-code")


def test_paper_preset_differs_exactly_in_the_documented_keys():
    readme = README.read_text()
    for dataset in ("mnist", "emnist"):
        authors = options_preset("authors-code", dataset)
        paper = options_preset("paper", dataset)
        expected = {**PAPER_CHANGES, **paper_classifier_changes(dataset)}
        assert changed_keys(paper, authors) == expected
        assert authors == NetworkOptions(classifier=classifier_defaults(dataset))
    for key in {**PAPER_CHANGES, **paper_classifier_changes("mnist")}:
        assert f"`{key}`" in readme, f"{key} is not in the README's options table"


def test_settings_parse_as_toml_scalars_and_apply_in_order():
    assert parse_setting("conv.rate_cap=none") == ("conv.rate_cap", None)
    assert parse_setting("conv.rate_cap=0.2") == ("conv.rate_cap", 0.2)
    assert parse_setting("conv.competition=per_map") == ("conv.competition", "per_map")
    assert parse_setting('encoder.image_mode="raw"') == ("encoder.image_mode", "raw")
    assert parse_setting("conv.homeostasis=false") == ("conv.homeostasis", False)
    assert parse_setting("classifier.eta=1") == ("classifier.eta", 1)
    o = apply_settings(NetworkOptions(), [("classifier.dropout", 0.3), ("classifier.dropout", 0.1),
                                          ("classifier.eta", 1)])
    assert o.classifier.dropout == 0.1 and o.classifier.eta == 1.0
    assert isinstance(o.classifier.eta, float)
    with pytest.raises(OptionsError, match=r"^conv\.maps: must be in 1\.\.1024, found 0$"):
        apply_settings(NetworkOptions(), [("conv.maps", 0)])
    assert len(option_keys()) == 66  # 41 for Conv1 + classifier, 25 for Pool1 and Conv2


@pytest.mark.parametrize("dataset", ["mnist", "emnist"])
def test_authors_data_preset_changes_only_the_image_mode(dataset):
    got = changed_keys(options_preset("authors-data", dataset), options_preset("authors-code", dataset))
    assert got == {"encoder.image_mode": "raw"}


@pytest.mark.parametrize("name", ["authors-code", "authors-data", "paper"])
@pytest.mark.parametrize("dataset", ["mnist", "emnist"])
def test_options_file_round_trip(tmp_path, name, dataset):
    opts = apply_settings(options_preset(name, dataset), [("classifier.dropout", 0.25)])
    f = tmp_path / "o.toml"
    f.write_text(options_to_toml(opts))
    assert load_options(f, dataset) == opts


def test_options_file_with_a_preset_base(tmp_path):
    f = tmp_path / "o.toml"
    f.write_text('preset = "paper"\nstdp_images = 500\n[conv]\nrate_cap = 0.15\n')
    o = load_options(f, "mnist")
    assert o.stdp_images == 500 and o.conv.rate_cap == 0.15
    assert o.conv.homeostasis is False and o.classifier.hidden == 900


def test_quant_sweep_applies_options_and_settings():
    from spykehw.quant.points import Sweep, network_options, sweep_from_dict

    sw = Sweep(options="paper", settings=(("conv.rate_cap", 0.15), ("classifier.dropout", 0.3)),
               epochs=3)
    assert sweep_from_dict(json.loads(json.dumps(sw.to_dict()))) == sw
    o = network_options(sw, "emnist", 2)
    assert (o.conv.rate_cap, o.classifier.dropout, o.classifier.epochs) == (0.15, 0.3, 3)
    assert (o.conv.seed, o.classifier.seed, o.conv.homeostasis) == (2, 2, False)


def test_run_with_set_records_the_options(tmp_path, capsys):
    """The issue's acceptance line at tiny sizes: the run works and its manifest, report and
    options.toml show the change."""
    out = tmp_path / "runs"
    main(["run", "--set", "conv.rate_cap=none", "--set", "classifier.dropout=0.3",
          "--train-limit", "120", "--test-limit", "30", "--stdp-images", "20", "--epochs", "1",
          "--hidden", "8", "--float-only", "--quiet", "--out", str(out)])
    (folder,) = list(out.iterdir())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "finished"
    opts = manifest["args"]["options"]
    assert opts["conv"]["rate_cap"] is None and opts["classifier"]["dropout"] == 0.3
    assert manifest["args"]["options_source"] == "authors-code + conv.rate_cap=None + classifier.dropout=0.3"
    report = (folder / "report.txt").read_text()
    assert re.search(r"differs from authors-code in .*conv\.rate_cap=None", report)
    assert load_options(folder / "options.toml", "mnist").to_dict() == opts


def test_run_seeds_reports_the_spread_and_seeds_every_choice(tmp_path, capsys):
    """Issue 15 item 2 at tiny sizes: one run per seed, each with its own Conv1 and classifier
    seed and split seed, and the mean/std/min/max of their results."""
    import statistics

    out = tmp_path / "runs"
    main(["run", "--seeds", "2", "--seed", "5", "--set", "conv.rate_cap=none",
          "--train-limit", "120", "--test-limit", "30", "--stdp-images", "20", "--epochs", "1",
          "--hidden", "8", "--float-only", "--quiet", "--out", str(out)])
    (folder,) = list(out.iterdir())
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["seeds"] == [5, 6]
    for run in summary["runs"]:
        m = json.loads((folder / run["folder"] / "manifest.json").read_text())
        assert m["args"]["seed"] == run["seed"]
        assert m["args"]["options"]["conv"]["seed"] == run["seed"]
        assert m["args"]["options"]["classifier"]["seed"] == run["seed"]
        assert m["args"]["options"]["conv"]["rate_cap"] is None
    accs = [r["results"]["float"]["test_acc"] for r in summary["runs"]]
    s = summary["summary"]["float"]["test_acc"]
    assert s["mean"] == pytest.approx(statistics.fmean(accs))
    assert s["std"] == pytest.approx(statistics.stdev(accs))
    assert (s["min"], s["max"]) == (min(accs), max(accs))
    assert "mean" in capsys.readouterr().out
