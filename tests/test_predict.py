"""``spykehw predict`` and the image reader (spykehw.images): PNG folders, .npy/.npz and IDX
inputs give the integer golden model's classes and softmax words (computed here directly with
extract_features + forward_int), the float model's probabilities; unsuitable inputs are refused
with one line naming the file.

The network is made, not trained (tests/netfactory.py).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from netfactory import make_run
from PIL import Image
from spykehw.golden.classifier import predict as float_predict
from spykehw.golden.classifier_int import forward_int
from spykehw.golden.formats import preset
from spykehw.golden.pipeline import extract_features

from spykehw.cli import main
from spykehw.data import load_sample, write_idx
from spykehw.images import ImageError, as_images, read_images


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    net = make_run(tmp_path_factory.mktemp("run"))
    images = load_sample().test_images[:12]
    golden = forward_int(net.q, extract_features(images, net.int_weights, net.opts, net.fmt).features)
    xf = extract_features(images, net.float_weights, net.opts, None).features
    _, float_classes = float_predict(net.params, xf, net.opts.classifier)
    assert len(set(golden.classes.tolist())) > 2, "the test network should not answer one class"
    return SimpleNamespace(folder=net.folder, images=images, golden=golden, float_classes=float_classes)


def write_pngs(folder: Path, images: np.ndarray) -> list[str]:
    folder.mkdir()
    names = []
    for i, img in enumerate(images):
        name = f"digit_{i:02d}.png"
        im = Image.fromarray(img, "L")
        if i % 3 == 1:      # grey stored as RGB: Pillow's L conversion gives the grey back exactly
            im = Image.fromarray(np.stack([img] * 3, axis=-1), "RGB")
        im.save(folder / name)
        names.append(name)
    (folder / "notes.txt").write_text("not an image, ignored")
    return names


def run_cli(argv, capsys) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    out = capsys.readouterr()
    return status, out.out, out.err


def parse_csv(text: str):
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["image", "class"] + [f"softmax_{k}" for k in range(10)]
    return rows[1:]


def test_png_folder_gives_the_golden_classes_and_words(run, tmp_path, capsys):
    names = write_pngs(tmp_path / "pngs", run.images)
    status, out, err = run_cli(["predict", run.folder, tmp_path / "pngs"], capsys)
    assert status == 0, err
    rows = parse_csv(out)
    assert [r[0] for r in rows] == names
    assert [int(r[1]) for r in rows] == run.golden.classes.tolist()
    assert np.array_equal(np.array([[int(v) for v in r[2:]] for r in rows]), run.golden.words)
    assert "12 image(s), model int[fpga-16]" in err


def test_npz_json_to_a_file_and_the_float_model(run, tmp_path, capsys):
    np.savez(tmp_path / "x.npz", images=run.images, labels=np.arange(12))
    out_file = tmp_path / "pred.json"
    status, out, _ = run_cli(["predict", run.folder / "int_state.npz", tmp_path / "x.npz", "--json",
                              "--out", out_file, "--quiet"], capsys)
    assert status == 0 and out == ""
    doc = json.loads(out_file.read_text())
    assert doc["model"] == "int[fpga-16]" and doc["softmax_bits"] == preset("fpga-16").softmax.softmax_bits
    assert [p["image"] for p in doc["predictions"]] == [f"x.npz[{i}]" for i in range(12)]
    assert [p["class"] for p in doc["predictions"]] == run.golden.classes.tolist()
    assert [p["softmax"] for p in doc["predictions"]] == run.golden.words.tolist()

    status, out, _ = run_cli(["predict", run.folder, tmp_path / "x.npz", "--model", "float",
                              "--format", "json", "--quiet"], capsys)
    doc = json.loads(out)
    assert doc["model"] == "float" and doc["softmax_bits"] is None
    assert [p["class"] for p in doc["predictions"]] == run.float_classes.tolist()
    for p in doc["predictions"]:
        assert abs(sum(p["softmax"]) - 1) < 1e-9 and int(np.argmax(p["softmax"])) == p["class"]


def test_idx_and_npy_inputs(run, tmp_path, capsys):
    write_idx(tmp_path / "images-idx3-ubyte.gz", run.images)
    np.save(tmp_path / "x.npy", run.images.reshape(12, 784))
    for path in (tmp_path / "images-idx3-ubyte.gz", tmp_path / "x.npy"):
        status, out, err = run_cli(["predict", run.folder, path, "--quiet"], capsys)
        assert status == 0, err
        assert [int(r[1]) for r in parse_csv(out)] == run.golden.classes.tolist()


@pytest.mark.parametrize("make, message", [
    (lambda p: Image.new("L", (32, 32)).save(p / "big.png"), "big.png: 32x32 pixels"),
    (lambda p: Image.new("I;16", (28, 28)).save(p / "deep.png"), "deep.png: I;16 image"),
    (lambda p: (p / "fake.png").write_text("hello"), "fake.png: not a readable PNG/JPEG image"),
    (lambda p: (p / "words.txt").write_text("hello"), "words.txt: not an image input"),
    (lambda p: np.save(p / "f.npy", np.zeros((2, 28, 28))), "f.npy: expected integer pixels 0..255, found dtype float64"),
    (lambda p: np.save(p / "s.npy", np.zeros((2, 27, 27), np.uint8)), r"s.npy: expected shape .* found \(2, 27, 27\)"),
    (lambda p: np.save(p / "v.npy", np.full((28, 28), 300)), r"v.npy: pixel values 300..300 outside 0..255"),
    (lambda p: np.savez(p / "two.npz", a=np.zeros(1), b=np.zeros(1)), "two.npz: no array named 'images' and 2 arrays"),
    (lambda p: write_idx(p / "labels-idx1", np.zeros(3, np.uint8), gzip=False), "labels-idx1"),
])
def test_unsuitable_inputs_are_refused_naming_the_file(run, tmp_path, capsys, make, message):
    make(tmp_path)
    path = next(p for p in tmp_path.iterdir())
    with pytest.raises(ImageError, match=message):
        read_images(path)
    status, out, err = run_cli(["predict", run.folder, path], capsys)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("spykehw predict: error: ") and path.name in err


def test_colour_is_converted_by_luma(tmp_path):
    # Pillow's L: (299 R + 587 G + 114 B) / 1000, rounded; pure red 200 -> 59.8 -> 60
    rgb = np.zeros((28, 28, 3), np.uint8)
    rgb[..., 0] = 200
    rgb[0, 0] = (10, 20, 30)        # 2.99 + 11.74 + 3.42 = 18.15 -> 18
    Image.fromarray(rgb, "RGB").save(tmp_path / "c.png")
    names, images = read_images(tmp_path / "c.png")
    assert names == ["c.png"] and images.shape == (1, 28, 28) and images.dtype == np.uint8
    assert images[0, 1, 1] == 60 and images[0, 0, 0] == 18


def test_as_images_shapes():
    assert as_images(np.zeros((28, 28), np.int32)).shape == (1, 28, 28)
    assert as_images(np.zeros((3, 784), np.uint16)).shape == (3, 28, 28)
    with pytest.raises(ImageError, match="dtype bool"):
        as_images(np.zeros((28, 28), bool))


def test_missing_run_is_one_line(tmp_path, capsys):
    status, _, err = run_cli(["predict", tmp_path / "nothing", tmp_path], capsys)
    assert status == 2 and "nothing" in err and err.count("\n") == 1
