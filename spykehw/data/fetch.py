"""Downloading the official MNIST/EMNIST files, with resume and verification.

Downloads go through pooch (its registry: the pinned SHA-256 of :mod:`spykehw.data.registry`;
its temporary file and move to the final name) with :class:`ResumingDownloader`, which adds what
pooch's own HTTP downloader lacks. The rules, for every file:

* it is written to ``<name>.part`` and renamed to its final name only after it has been
  verified, so a final name never holds a partial or unverified file;
* an interrupted transfer is resumed with an HTTP ``Range`` request (also across runs: a
  ``.part`` left behind is continued); if the server answers 200 instead of 206 (it ignores
  ``Range``), the ``.part`` is truncated and the download restarts cleanly;
* the size and every checksum pinned in :mod:`spykehw.data.registry` are checked; a ``.part``
  that fails is deleted, and the error says so; a checksum that is not pinned is computed and
  printed (never silently "checked" against nothing);
* progress is shown in bytes with :class:`spykehw.golden.progress.Progress`.

EMNIST is one zip (``gzip.zip``); the bymerge and balanced files are extracted from it (again via
``.part`` files, verified), the mapping files are checked against the built-in 47-class table,
and the zip is deleted afterwards unless ``keep_archive`` is set.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import sys
import time
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Callable

from .. import __version__
from ..golden.errors import SpykehwError
from ..golden.progress import Progress
from .emnist import check_mapping
from .locate import ENV_VAR, DatasetError, user_data_dir
from .registry import DATASET_SOURCES, DatasetSource, RemoteFile

__all__ = ["FetchError", "ResumingDownloader", "default_dest", "download", "fetch", "verify_file"]

Log = Callable[[str], None]
_CHUNK = 1 << 16


class FetchError(SpykehwError):
    """A download failed, or a downloaded/extracted file does not match its pinned size/hash."""


class _Interrupted(Exception):
    """The transfer stopped early; the .part is kept and can be resumed."""


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def default_dest() -> Path:
    """``$SPYKEHW_DATA_DIR`` if set, else the per-user data folder (both searched by loaders)."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else user_data_dir()


def _hash_file(path: Path) -> tuple[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while b := f.read(1 << 20):
            sha.update(b)
            md5.update(b)
    return sha.hexdigest(), md5.hexdigest()


def _content_sha256(path: Path, label: str) -> str:
    h = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as f:
            while b := f.read(1 << 20):
                h.update(b)
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise FetchError(f"{label}: expected a gzip stream, found a corrupt one ({e})") from None
    return h.hexdigest()


def verify_file(path: str | Path, spec: RemoteFile, *, label: str | None = None,
                log: Log = _stderr) -> list[str]:
    """Check ``path`` against what ``spec`` pins; return the names of the checks that passed.

    Values that are not pinned are computed and logged instead.

    Raises
    ------
    FetchError
        Size or a pinned checksum differs (message: expected, found).
    """
    path = Path(path)
    label = label or spec.name
    size = path.stat().st_size
    if spec.size is not None and size != spec.size:
        raise FetchError(f"{label}: size: expected {spec.size} bytes, found {size}")
    passed = ["size"] if spec.size is not None else []
    sha, md5 = _hash_file(path)
    for kind, want, got in (("sha256", spec.sha256, sha), ("md5", spec.md5, md5)):
        if want is not None:
            if got != want:
                raise FetchError(f"{label}: {kind}: expected {want}, found {got}")
            passed.append(kind)
    if spec.content_sha256 is not None:
        got = _content_sha256(path, label)
        if got != spec.content_sha256:
            raise FetchError(f"{label}: SHA-256 of the decompressed content: expected "
                             f"{spec.content_sha256}, found {got}")
        passed.append("content sha256")
    unpinned = []
    if spec.size is None:
        unpinned.append(f"size {size}")
    if spec.sha256 is None:
        unpinned.append(f"sha256 {sha}")
    if spec.content_sha256 is None and spec.name.endswith(".gz"):
        unpinned.append(f"content sha256 {_content_sha256(path, label)}")
    if unpinned:
        log(f"{label}: not pinned, computed only (nothing to check against): {'; '.join(unpinned)}")
    return passed


def _verify_part(part: Path, spec: RemoteFile, label: str, log: Log) -> list[str]:
    try:
        return verify_file(part, spec, label=label, log=log)
    except FetchError as e:
        part.unlink(missing_ok=True)
        raise FetchError(f"{e}; deleted {part}") from None


def _publish(part: Path, final: Path) -> None:
    with open(part, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(part, final)


class ResumingDownloader:
    """A pooch downloader (``downloader(url, output_file, pooch)``) that keeps what arrived in
    ``part`` across interruptions and runs, continues it with an HTTP ``Range`` request, and
    hands pooch the file only once it is complete and :func:`verify_file` passed (so pooch's own
    SHA-256 check and move to the final name only ever see a verified file).

    Raises :class:`FetchError`: the server refuses, every attempt was interrupted (``part`` kept
    for the next run), or verification failed (``part`` deleted)."""

    def __init__(self, part: Path, spec: RemoteFile, *, attempts: int, log: Log, progress: bool,
                 timeout: float, retry_delay: float) -> None:
        self.part, self.spec, self.attempts, self.log = part, spec, attempts, log
        self.progress, self.timeout, self.retry_delay = progress, timeout, retry_delay

    def __call__(self, url: str, output_file: str, _pooch=None) -> None:
        label = self.spec.name
        for attempt in range(1, self.attempts + 1):
            try:
                self._transfer(url)
                break
            except _Interrupted as e:
                have = self.part.stat().st_size if self.part.exists() else 0
                if attempt == self.attempts:
                    raise FetchError(f"{url}: download interrupted ({e}); {have} bytes kept in "
                                     f"{self.part}, run the command again to resume") from None
                self.log(f"{label}: interrupted ({e}); retrying from byte {have} "
                         f"(attempt {attempt + 1}/{self.attempts})")
                time.sleep(self.retry_delay)
        self.checks = _verify_part(self.part, self.spec, label, self.log)
        os.replace(self.part, output_file)

    def _transfer(self, url: str) -> None:
        """Download (the rest of) ``url`` into ``part``; raise _Interrupted if it stops early."""
        import requests  # pooch's HTTP client (and urllib3 under it); loaded only for a download
        import urllib3

        part, expected, label = self.part, self.spec.size, self.spec.name
        offset = part.stat().st_size if part.exists() else 0
        if expected is not None and offset > expected:
            self.log(f"{label}: {part} is larger than the expected {expected} bytes; restarting")
            offset = 0
        if expected is not None and offset == expected:
            return
        headers = {"User-Agent": f"spykehw/{__version__}"} | ({"Range": f"bytes={offset}-"} if offset else {})
        try:
            resp = requests.get(url, headers=headers, stream=True, timeout=self.timeout)
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema) as e:
            raise FetchError(f"{url}: bad URL ({e})") from None
        except requests.exceptions.RequestException as e:
            raise _Interrupted(f"cannot connect: {_reason(e)}") from None
        with resp:
            if resp.status_code == 416 and offset:
                return  # nothing left to send: the .part is complete (verification decides)
            if resp.status_code == 206 and offset:
                m = re.match(r"bytes (\d+)-\d+/(\d+|\*)", resp.headers.get("Content-Range", ""))
                if not m or int(m.group(1)) != offset:
                    part.unlink(missing_ok=True)  # so that the next run starts afresh
                    raise FetchError(f"{url}: asked for bytes from {offset}, server sent Content-Range "
                                     f"{resp.headers.get('Content-Range')!r}; deleted {part}")
                mode = "ab"
                self.log(f"{label}: resuming at byte {offset}")
            elif resp.status_code == 200:
                if offset:
                    self.log(f"{label}: server ignored the resume request (HTTP 200, not 206); "
                             f"restarting from byte 0")
                offset, mode = 0, "wb"
            else:
                raise FetchError(f"{url}: HTTP {resp.status_code} {resp.reason}")
            length = resp.headers.get("Content-Length")
            length = int(length) if length is not None else None
            if expected is not None and length is not None and offset + length != expected:
                part.unlink(missing_ok=True)
                raise FetchError(f"{label}: size: expected {expected} bytes, server reports "
                                 f"{offset + length} ({url}); deleted {part}")
            total = length if length is not None else (expected - offset if expected else 0)
            got = 0
            with open(part, mode) as f, Progress(label, total=total, unit="B", enabled=self.progress) as p:
                # read1: whatever has arrived, so that a dropped connection loses nothing already
                # received (iter_content drops a partial chunk when the read fails)
                while True:
                    try:
                        chunk = resp.raw.read1(_CHUNK)
                    except (urllib3.exceptions.HTTPError, OSError) as e:    # ProtocolError: dropped
                        raise _Interrupted(f"connection lost after {got} bytes ({e})") from None
                    if not chunk:
                        break
                    f.write(chunk)
                    got += len(chunk)
                    p.advance(len(chunk))
        if length is not None and got < length:
            raise _Interrupted(f"connection closed after {got} of {length} bytes")


def _reason(e: Exception) -> str:
    """The operating system's words (``[Errno 111] Connection refused``) out of requests' nested
    retry and pool messages, else the message itself."""
    m = re.search(r"\[Errno -?\d+\] [^'\")\]]+", str(e))
    return m.group(0) if m else str(e)


def _pooch_hash(spec: RemoteFile) -> str | None:
    return None if spec.sha256 is None else f"sha256:{spec.sha256}"


def download(url: str, final: str | Path, spec: RemoteFile, *, attempts: int = 3,
             log: Log = _stderr, progress: bool = True, timeout: float = 60.0,
             retry_delay: float = 2.0) -> Path:
    """Download ``url`` to ``final`` with pooch (its registry holds the pinned SHA-256), through
    :class:`ResumingDownloader` (``final.part``, resumed; size and every pinned checksum verified
    before the file takes its final name).

    A ``final`` that already exists and verifies is kept (no download); one that does not is
    replaced. ``attempts`` transfers are tried in a row (``retry_delay`` seconds apart), each
    resuming where the previous one stopped.

    Raises
    ------
    FetchError
        The server refuses, every attempt was interrupted (the ``.part`` is kept for the next
        run), or verification failed (the ``.part`` is deleted).
    """
    import pooch  # only for a download

    final = Path(final)
    label = final.name
    if final.exists():
        try:
            checks = verify_file(final, spec, log=log)
            log(f"{label}: already present, verified ({', '.join(checks) or 'nothing pinned'})")
            return final
        except FetchError as e:
            log(f"{final}: existing file fails verification ({e}); downloading again")
            final.unlink()
    final.parent.mkdir(parents=True, exist_ok=True)
    pooch.get_logger().setLevel("WARNING")      # our own lines say what happens
    store = pooch.create(path=final.parent, base_url="", registry={label: _pooch_hash(spec)},
                         urls={label: url})
    downloader = ResumingDownloader(final.with_name(final.name + ".part"), spec, attempts=attempts,
                                    log=log, progress=progress, timeout=timeout, retry_delay=retry_delay)
    try:
        store.fetch(label, downloader=downloader)
    except ValueError as e:     # pooch's hash check (ours ran first: only if the registry disagrees)
        raise FetchError(f"{label}: {e}") from None
    log(f"{label}: downloaded, verified ({', '.join(downloader.checks) or 'nothing pinned'})")
    return final


def _extract(archive: Path, members: tuple[RemoteFile, ...], outdir: Path,
             log: Log) -> list[Path]:
    out = []
    try:
        with zipfile.ZipFile(archive) as z:
            by_name = {PurePosixPath(i.filename).name: i for i in z.infolist() if not i.is_dir()}
            for spec in members:
                info = by_name.get(spec.name)
                if info is None:
                    raise FetchError(f"{archive}: expected a member named {spec.name}, "
                                     f"found none")
                final = outdir / spec.name
                part = final.with_name(final.name + ".part")
                with z.open(info) as src, open(part, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                checks = _verify_part(part, spec, spec.name, log)
                if spec.name.endswith("-mapping.txt"):
                    try:
                        check_mapping(part)
                    except DatasetError as e:
                        part.unlink(missing_ok=True)
                        raise FetchError(f"{e}; deleted {part}") from None
                    checks.append("47-class table")
                _publish(part, final)
                log(f"{spec.name}: extracted, verified ({', '.join(checks) or 'nothing pinned'})")
                out.append(final)
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise FetchError(f"{archive}: expected a zip archive, found a corrupt one ({e})") from None
    return out


def _all_present(paths: list[Path], specs: tuple[RemoteFile, ...], log: Log) -> bool:
    for path, spec in zip(paths, specs):
        if not path.exists():
            return False
        try:
            verify_file(path, spec, log=lambda _m: None)
        except FetchError as e:
            log(f"{path}: existing file fails verification ({e}); fetching again")
            return False
    return True


def fetch(name: str, dest: str | Path | None = None, *, base_url: str | None = None,
          sources: dict[str, DatasetSource] | None = None, keep_archive: bool = False,
          attempts: int = 3, log: Log = _stderr, progress: bool = True,
          timeout: float = 60.0, retry_delay: float = 2.0) -> list[Path]:
    """Fetch dataset ``name`` into ``dest/<subdir>/`` and return the final file paths.

    Parameters
    ----------
    dest
        Data folder; default :func:`default_dest`.
    base_url
        Replaces the registry's base URL (a mirror); file names are appended to it.
    sources
        Replaces the registry (tests use this to serve their own files).
    """
    sources = DATASET_SOURCES if sources is None else sources
    if name not in sources:
        raise FetchError(f"unknown dataset {name!r}: expected one of {', '.join(sources)}")
    source = sources[name]
    outdir = (Path(dest) if dest is not None else default_dest()) / source.subdir
    base = base_url or source.base_url
    if not base.endswith("/"):
        base += "/"
    kwargs = dict(attempts=attempts, log=log, progress=progress, timeout=timeout,
                  retry_delay=retry_delay)
    if not source.members:
        return [download(base + f.name, outdir / f.name, f, **kwargs) for f in source.files]

    targets = [outdir / m.name for m in source.members]
    if _all_present(targets, source.members, log):
        log(f"{name}: all {len(targets)} files already present and verified in {outdir}")
        return targets
    (archive_spec,) = source.files
    archive = download(base + archive_spec.name, outdir / archive_spec.name, archive_spec,
                       **kwargs)
    out = _extract(archive, source.members, outdir, log)
    if not keep_archive:
        archive.unlink()
        log(f"{archive.name}: deleted after extraction (use --keep-archive to keep it)")
    return out
