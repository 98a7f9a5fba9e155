"""IDX reader/writer: round trips, and every kind of bad file gives an IdxError that names the
file, what was expected and what was found. The files are built by hand with ``struct`` (an
independent encoder), not with the writer under test."""

import gzip
import os
import struct

import numpy as np
import pytest
from spykehw.golden.errors import SpykehwError

from spykehw.data.idx import (
    IMAGES_MAGIC,
    LABELS_MAGIC,
    IdxError,
    read_idx,
    read_idx_data,
    read_idx_header,
    write_idx,
)


def idx_bytes(type_code: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    return struct.pack(">BBBB", 0, 0, type_code, len(dims)) + struct.pack(
        f">{len(dims)}I", *dims) + payload


def put(tmp_path, name: str, data: bytes, *, gz: bool = True):
    p = tmp_path / name
    p.write_bytes(gzip.compress(data) if gz else data)
    return p


def test_idx_error_is_a_spykehw_error():
    assert issubclass(IdxError, SpykehwError)


@pytest.mark.parametrize("gz", [True, False])
def test_read_hand_made_images_file(tmp_path, gz):
    payload = bytes(range(2 * 3 * 4))
    p = put(tmp_path, "x", idx_bytes(0x08, (2, 3, 4), payload), gz=gz)
    a = read_idx(p, expect_magic=IMAGES_MAGIC, expect_shape=(None, 3, 4))
    np.testing.assert_array_equal(a, np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    assert a.dtype == np.uint8 and a.flags.writeable and a.flags.c_contiguous


def test_read_big_endian_types(tmp_path):
    p = put(tmp_path, "h.gz", idx_bytes(0x0B, (3,), struct.pack(">3h", -2, 300, 7)))
    a = read_idx(p)
    assert a.dtype == np.int16
    np.testing.assert_array_equal(a, [-2, 300, 7])
    p = put(tmp_path, "f.gz", idx_bytes(0x0D, (2,), struct.pack(">2f", 1.5, -0.25)))
    np.testing.assert_array_equal(read_idx(p), np.array([1.5, -0.25], np.float32))


def test_gzip_is_detected_by_content_not_name(tmp_path):
    data = idx_bytes(0x08, (3,), b"\x01\x02\x03")
    raw_named_gz = put(tmp_path, "labels.gz", data, gz=False)
    gz_named_raw = put(tmp_path, "labels-idx1-ubyte", data, gz=True)
    np.testing.assert_array_equal(read_idx(raw_named_gz), [1, 2, 3])
    np.testing.assert_array_equal(read_idx(gz_named_raw), [1, 2, 3])


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32,
                                   np.float64])
@pytest.mark.parametrize("gz", [True, False])
def test_write_read_round_trip(tmp_path, dtype, gz):
    rng = np.random.default_rng(1)
    a = (rng.integers(-100, 100, size=(5, 7, 3)) if np.dtype(dtype).kind != "u"
         else rng.integers(0, 256, size=(5, 7, 3))).astype(dtype)
    p = write_idx(tmp_path / "a.idx", a, gzip=gz)
    b = read_idx(p)
    assert b.dtype == a.dtype
    np.testing.assert_array_equal(a, b)
    assert (p.read_bytes()[:2] == b"\x1f\x8b") == gz


def test_writer_output_parsed_by_hand(tmp_path):
    a = np.array([[1, 2, 3], [4, 5, 250]], np.uint8)
    data = gzip.decompress((write_idx(tmp_path / "w.gz", a)).read_bytes())
    assert data[:4] == bytes([0, 0, 0x08, 2])
    assert struct.unpack(">2I", data[4:12]) == (2, 3)
    assert data[12:] == bytes([1, 2, 3, 4, 5, 250])


def test_write_is_deterministic_and_leaves_no_temp_files(tmp_path):
    a = np.arange(100, dtype=np.uint8).reshape(10, 10)
    one = write_idx(tmp_path / "a.gz", a).read_bytes()
    two = write_idx(tmp_path / "b.gz", a).read_bytes()
    assert one == two
    assert sorted(os.listdir(tmp_path)) == ["a.gz", "b.gz"]


def test_write_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match="int64"):
        write_idx(tmp_path / "x", np.zeros(3, np.int64))


def test_labels_round_trip_magic(tmp_path):
    p = write_idx(tmp_path / "l.gz", np.array([3, 1, 4], np.uint8))
    assert read_idx_header(p).magic == LABELS_MAGIC
    assert read_idx_data(p).magic == LABELS_MAGIC


# --- bad files -----------------------------------------------------------------------------

def test_truncated_payload(tmp_path):
    p = put(tmp_path, "t10k-images-idx3-ubyte.gz", idx_bytes(0x08, (10, 28, 28), bytes(7839)))
    with pytest.raises(IdxError) as e:
        read_idx(p)
    msg = str(e.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and "truncated" in msg
    assert "10x28x28 = 7840 bytes" in msg and "found 7839" in msg


def test_trailing_bytes(tmp_path):
    p = put(tmp_path, "labels.gz", idx_bytes(0x08, (4,), bytes(5)))
    with pytest.raises(IdxError, match=r"labels\.gz: trailing bytes: header says 4 = 4 bytes "
                                       r"of data, found 5"):
        read_idx(p)


def test_truncated_header(tmp_path):
    p = put(tmp_path, "short.gz", idx_bytes(0x08, (2, 3, 4), b"")[:9])
    with pytest.raises(IdxError, match=r"short\.gz: truncated header: 3 dims need 16 header "
                                       r"bytes, found 9"):
        read_idx(p)
    p = put(tmp_path, "tiny", b"\x00\x00", gz=False)
    with pytest.raises(IdxError, match=r"tiny: truncated header: expected at least 4 bytes, "
                                       r"found 2"):
        read_idx(p)


@pytest.mark.parametrize("head", [b"\x01\x00\x08\x01", b"\x00\x00\x07\x01", b"\x00\x00\x08\x00",
                                  b"PK\x03\x04"])
def test_bad_magic(tmp_path, head):
    p = put(tmp_path, "bad.gz", head + bytes(8))
    with pytest.raises(IdxError) as e:
        read_idx(p)
    msg = str(e.value)
    assert "bad.gz" in msg and "expected magic 0x00 0x00" in msg
    assert "found " + " ".join(f"0x{b:02x}" for b in head) in msg


def test_wrong_dims(tmp_path):
    p = put(tmp_path, "img.gz", idx_bytes(0x08, (2, 27, 28), bytes(2 * 27 * 28)))
    with pytest.raises(IdxError, match=r"img\.gz: expected shape \(\*, 28, 28\), found "
                                       r"\(2, 27, 28\)"):
        read_idx(p, expect_shape=(None, 28, 28))
    with pytest.raises(IdxError, match=r"expected shape \(\*, \*\), found \(2, 27, 28\)"):
        read_idx(p, expect_shape=(None, None))


def test_mislabelled_labels_given_for_images(tmp_path):
    p = put(tmp_path, "train-images-idx3-ubyte.gz", idx_bytes(0x08, (6,), bytes(6)))
    with pytest.raises(IdxError) as e:
        read_idx(p, expect_magic=IMAGES_MAGIC)
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg
    assert "expected IDX magic 2051 (images, 3 dims)" in msg
    assert "found magic 2049 (labels, 1 dim)" in msg


def test_mislabelled_images_given_for_labels(tmp_path):
    p = put(tmp_path, "labels.gz", idx_bytes(0x08, (1, 28, 28), bytes(784)))
    with pytest.raises(IdxError, match=r"expected IDX magic 2049 \(labels, 1 dim\), "
                                       r"found magic 2051 \(images, 3 dims\)"):
        read_idx(p, expect_magic=LABELS_MAGIC)


def test_corrupt_gzip_stream(tmp_path):
    good = gzip.compress(idx_bytes(0x08, (1000,), bytes(range(256)) * 3 + bytes(232)))
    # Damage the deflate data in the middle (the CRC or the stream itself must catch it).
    bad = bytearray(good)
    for i in range(len(bad) // 2, len(bad) // 2 + 8):
        bad[i] ^= 0xFF
    p = tmp_path / "corrupt.gz"
    p.write_bytes(bytes(bad))
    with pytest.raises(IdxError, match=r"corrupt\.gz: corrupt gzip stream"):
        read_idx(p)


def test_cut_off_gzip_stream(tmp_path):
    good = gzip.compress(idx_bytes(0x08, (1000,), bytes(1000)))
    p = tmp_path / "cut.gz"
    p.write_bytes(good[: len(good) - 6])
    with pytest.raises(IdxError, match=r"cut\.gz: corrupt gzip stream"):
        read_idx(p)
