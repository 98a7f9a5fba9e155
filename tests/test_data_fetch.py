"""The downloader against a local HTTP server (127.0.0.1) serving files made here.

The server supports Range, can drop the connection after N bytes, and can ignore Range. The
registry is replaced by one describing the served files, so no real hash is involved.
"""

import gzip
import hashlib
import io
import re
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from spykehw.cli import main
from spykehw.data import registry
from spykehw.data.fetch import FetchError, fetch
from spykehw.data.idx import encode_idx
from spykehw.data.registry import DatasetSource, RemoteFile


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        srv = self.server
        rng = self.headers.get("Range")
        srv.requests.append((self.path, rng))
        data = srv.files.get(self.path.lstrip("/"))
        if data is None:
            self.send_error(404)
            return
        start = 0
        if rng and not srv.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if srv.drops_left > 0:
            srv.drops_left -= 1
            self.wfile.write(body[:srv.drop_after])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.files, srv.requests = {}, []
    srv.ignore_range, srv.drops_left, srv.drop_after = False, 0, 0
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}/"
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


def gz_idx(n: int, seed: int) -> tuple[bytes, bytes]:
    """(gzip bytes, content) of a random images file; level 0 keeps it large and incompressible."""
    content = encode_idx(np.random.default_rng(seed).integers(0, 256, (n, 28, 28), np.uint8))
    return gzip.compress(content, compresslevel=0, mtime=0), content


def pinned(name: str, data: bytes, content: bytes | None = None, **over) -> RemoteFile:
    fields = dict(size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                  content_sha256=hashlib.sha256(content).hexdigest() if content else None)
    fields.update(over)
    return RemoteFile(name, **fields)


def one_file_source(server, name="a-images-idx3-ubyte.gz", n=300, seed=0, **over):
    data, content = gz_idx(n, seed)
    server.files[name] = data
    src = DatasetSource("toy", server.url, "toy", (pinned(name, data, content, **over),))
    return {"toy": src}, name, data


def run(sources, dest, **kw):
    logs = []
    kw.setdefault("retry_delay", 0)
    paths = fetch("toy", dest, sources=sources, progress=False, log=logs.append, **kw)
    return paths, "\n".join(logs)


def test_success_and_second_run_needs_no_download(server, tmp_path):
    data2, content2 = gz_idx(10, 1)
    sources, name, data = one_file_source(server)
    server.files["b-labels.gz"] = data2
    src = sources["toy"]
    sources["toy"] = DatasetSource("toy", src.base_url, "toy",
                                   src.files + (pinned("b-labels.gz", data2, content2),))
    paths, log = run(sources, tmp_path)
    assert [p.name for p in paths] == [name, "b-labels.gz"]
    assert paths[0].read_bytes() == data and paths[1].read_bytes() == data2
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == sorted([name, "b-labels.gz"])
    assert "verified (size, sha256, content sha256)" in log
    n = len(server.requests)
    _, log = run(sources, tmp_path)
    assert len(server.requests) == n and "already present, verified" in log


def test_resume_after_dropped_connection(server, tmp_path):
    sources, name, data = one_file_source(server)
    server.drops_left, server.drop_after = 1, 100_000
    paths, log = run(sources, tmp_path)
    assert paths[0].read_bytes() == data
    assert server.requests == [("/" + name, None), ("/" + name, "bytes=100000-")]
    assert "resuming at byte 100000" in log


def test_resume_in_a_later_run(server, tmp_path):
    sources, name, data = one_file_source(server)
    server.drops_left, server.drop_after = 1, 70_000
    with pytest.raises(FetchError, match=r"interrupted.*70000 bytes kept in .*\.part, run the "
                                         r"command again to resume"):
        run(sources, tmp_path, attempts=1)
    final = tmp_path / "toy" / name
    assert not final.exists()
    assert (tmp_path / "toy" / (name + ".part")).stat().st_size == 70_000
    paths, _ = run(sources, tmp_path)
    assert paths[0].read_bytes() == data
    assert server.requests[-1] == ("/" + name, "bytes=70000-")
    assert not (tmp_path / "toy" / (name + ".part")).exists()


def test_restart_when_server_ignores_range(server, tmp_path):
    sources, name, data = one_file_source(server)
    server.ignore_range = True
    part = tmp_path / "toy" / (name + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\xee" * 5000)  # junk: appending to it would fail verification
    paths, log = run(sources, tmp_path)
    assert paths[0].read_bytes() == data
    assert server.requests == [("/" + name, "bytes=5000-")]
    assert "server ignored the resume request" in log


def test_corrupt_content_is_detected_and_part_deleted(server, tmp_path):
    sources, name, data = one_file_source(server)
    bad = bytearray(data)
    bad[len(bad) // 2] ^= 0x01
    server.files[name] = bytes(bad)
    with pytest.raises(FetchError) as e:
        run(sources, tmp_path)
    msg = str(e.value)
    assert f"{name}: sha256: expected {hashlib.sha256(data).hexdigest()}, found " \
           f"{hashlib.sha256(bad).hexdigest()}" in msg
    assert "deleted" in msg and ".part" in msg
    assert list((tmp_path / "toy").iterdir()) == []


def test_wrong_decompressed_content_is_detected(server, tmp_path):
    # Only the content hash pinned (as for the EMNIST members): a valid gzip of other data.
    name = "c-images.gz"
    _, content = gz_idx(50, 0)
    other, other_content = gz_idx(50, 1)
    server.files[name] = other
    sources = {"toy": DatasetSource("toy", server.url, "toy", (RemoteFile(
        name, content_sha256=hashlib.sha256(content).hexdigest()),))}
    with pytest.raises(FetchError, match=r"c-images\.gz: SHA-256 of the decompressed content: "
                                         rf"expected {hashlib.sha256(content).hexdigest()}, "
                                         rf"found {hashlib.sha256(other_content).hexdigest()}"):
        run(sources, tmp_path)
    assert list((tmp_path / "toy").iterdir()) == []


def test_wrong_size_is_detected(server, tmp_path):
    sources, name, data = one_file_source(server)
    server.files[name] = data + b"extra"
    with pytest.raises(FetchError, match=rf"{name}: size: expected {len(data)} bytes, server "
                                         rf"reports {len(data) + 5}"):
        run(sources, tmp_path)
    assert list((tmp_path / "toy").iterdir()) == []


def test_wrong_size_of_a_complete_part_is_detected(server, tmp_path):
    # A .part already as long as expected is verified without a request; wrong bytes -> deleted.
    sources, name, data = one_file_source(server)
    part = tmp_path / "toy" / (name + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\0" * len(data))
    with pytest.raises(FetchError, match=r"sha256: expected .*deleted .*\.part"):
        run(sources, tmp_path)
    assert not part.exists() and not (tmp_path / "toy" / name).exists()


def test_unpinned_values_are_printed_not_checked(server, tmp_path):
    name = "free.gz"
    data, content = gz_idx(5, 2)
    server.files[name] = data
    sources = {"toy": DatasetSource("toy", server.url, "toy", (RemoteFile(name),))}
    paths, log = run(sources, tmp_path)
    assert paths[0].read_bytes() == data
    assert "not pinned" in log and hashlib.sha256(data).hexdigest() in log
    assert hashlib.sha256(content).hexdigest() in log
    assert "verified (nothing pinned)" in log


def test_http_error_is_reported(server, tmp_path):
    sources = {"toy": DatasetSource("toy", server.url, "toy", (RemoteFile("missing.gz"),))}
    with pytest.raises(FetchError, match=r"missing\.gz: HTTP 404"):
        run(sources, tmp_path)


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr("gzip/" + name, data)
    return buf.getvalue()


def mapping_text(swap=False) -> bytes:
    chars = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabdefghnqrt"
    if swap:
        chars = chars[:-2] + chars[-1] + chars[-2]
    return "".join(f"{i} {ord(c)}\n" for i, c in enumerate(chars)).encode()


def zip_source(server, mapping: bytes):
    img, content = gz_idx(20, 3)
    archive = make_zip({"x-images-idx3-ubyte.gz": img, "x-mapping.txt": mapping,
                        "unrelated.gz": b"ignored"})
    server.files["gzip.zip"] = archive
    return {"toy": DatasetSource(
        "toy", server.url, "toy", (pinned("gzip.zip", archive),),
        members=(pinned("x-images-idx3-ubyte.gz", img, content), RemoteFile("x-mapping.txt")))}, img


def test_zip_members_extracted_and_verified(server, tmp_path):
    sources, img = zip_source(server, mapping_text())
    paths, log = run(sources, tmp_path)
    assert [p.name for p in paths] == ["x-images-idx3-ubyte.gz", "x-mapping.txt"]
    assert paths[0].read_bytes() == img
    assert sorted(p.name for p in (tmp_path / "toy").iterdir()) == [
        "x-images-idx3-ubyte.gz", "x-mapping.txt"]  # archive deleted, no .part left
    assert "47-class table" in log
    n = len(server.requests)
    _, log = run(sources, tmp_path)
    assert len(server.requests) == n and "already present and verified" in log


def test_zip_with_wrong_mapping_is_rejected(server, tmp_path):
    sources, _ = zip_source(server, mapping_text(swap=True))
    with pytest.raises(FetchError, match=r"x-mapping\.txt\.part: label 45: expected 'r'.*found "
                                         r"'t'.*deleted"):
        run(sources, tmp_path, keep_archive=True)
    assert not (tmp_path / "toy" / "x-mapping.txt").exists()
    assert not (tmp_path / "toy" / "x-mapping.txt.part").exists()


def test_cli_fetch_with_base_url(server, tmp_path, monkeypatch, capsys):
    sources, name, data = one_file_source(server)
    # The real registry's mnist entry replaced by the toy one, served from --base-url.
    toy = sources["toy"]
    monkeypatch.setitem(registry.DATASET_SOURCES, "mnist", DatasetSource(
        "mnist", "http://unused.invalid/", "mnist", toy.files))
    assert main(["data", "fetch", "mnist", "--out", str(tmp_path), "--base-url", server.url,
                 "--quiet"]) == 0
    out = capsys.readouterr()
    assert (tmp_path / "mnist" / name).read_bytes() == data
    assert str(tmp_path / "mnist" / name) in out.out
    server.files[name] = data[:-1]
    (tmp_path / "mnist" / name).unlink()
    assert main(["data", "fetch", "mnist", "--out", str(tmp_path), "--base-url", server.url,
                 "--quiet"]) == 2
    assert "size: expected" in capsys.readouterr().err


def test_the_resuming_downloader_is_a_pooch_downloader(server, tmp_path):
    """pooch.retrieve with the pinned hash and our downloader: pooch checks the hash and names
    the file; a dropped transfer is resumed inside the one call."""
    import pooch

    from spykehw.data.fetch import ResumingDownloader

    sources, name, data = one_file_source(server)
    server.drops_left, server.drop_after = 1, 50_000
    logs = []
    spec = sources["toy"].files[0]
    got = pooch.retrieve(server.url + name, known_hash=f"sha256:{spec.sha256}", fname=name, path=tmp_path,
                         downloader=ResumingDownloader(tmp_path / (name + ".part"), spec, attempts=2,
                                                       log=logs.append, progress=False, timeout=10,
                                                       retry_delay=0))
    assert open(got, "rb").read() == data and "resuming at byte 50000" in "\n".join(logs)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_a_refused_connection_is_one_clear_line(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()       # nothing listens there now
    sources = {"toy": DatasetSource("toy", f"http://127.0.0.1:{port}/", "toy", (RemoteFile("a.gz"),))}
    with pytest.raises(FetchError) as e:
        run(sources, tmp_path, attempts=1)
    assert re.search(r"a\.gz: download interrupted \(cannot connect: \[Errno \d+\] Connection refused\); "
                     r"0 bytes kept in .*a\.gz\.part, run the command again to resume$", str(e.value))
    assert "\n" not in str(e.value) and "HTTPConnectionPool" not in str(e.value)
