"""Files the project stores for itself and reads back (quantization store, co-simulation caches):
each carries the kind and key of what produced it and a content hash, and is checked on reading.

Why: a store or cache that trusts its files turns a truncated file, a file copied under another
key or a cache built on other data into a silent wrong result. The one rule here: a reader
accepts a file only if it parses, says it is of this ``kind`` and this ``key`` (the hash of
every input: settings, data files' hashes, code version), and its content matches its SHA-256;
anything else is *discarded* (renamed to ``<name>.corrupt``, so the evidence stays) with one
line naming the file and the reason, and the caller recomputes it.

Also here: :func:`canonical_json` and :func:`stable_key` (keys from settings) and
:func:`code_digest` (the content of the code that produces a result, comments and docstrings
ignored), so every key is made the same way.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .files import atomic_write, json_default

__all__ = ["canonical_json", "stable_key", "arrays_digest", "code_digest", "discard",
           "write_checked_npz", "read_checked_npz", "write_checked_json", "read_checked_json",
           "Warn"]

Warn = Callable[[str], None]
_STORED = "__stored__"
_CODE_LOCK = threading.Lock()
_CODE_DIGESTS: dict[tuple, str] = {}


def _stderr(line: str) -> None:
    print(f"spykehw: {line}", file=sys.stderr, flush=True)


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: equal inputs give equal text on any machine."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False,
                      default=json_default)


def stable_key(obj: Any, length: int = 20) -> str:
    """SHA-256 of :func:`canonical_json`, first ``length`` hex digits."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:length]


def arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over each array's name, dtype, shape and bytes (sorted by name)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _normalized(source: str) -> str:
    """The syntax tree without comments, docstrings or layout: only code changes count."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        for attr in ("body", "orelse", "finalbody"):
            body = getattr(node, attr, None)
            if isinstance(body, list):
                kept = [n for n in body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
                                                and isinstance(n.value.value, str))]
                setattr(node, attr, kept or ([ast.Pass()] if body else []))
    return ast.dump(tree, include_attributes=False)


def code_digest(files: Iterable[tuple[str, Path]]) -> str:
    """SHA-256 (16 hex) of ``(label, path)`` source files as syntax trees without comments and
    docstrings: a code change gives new keys, so no stale result is reused; an edit of a
    comment does not throw a cache away."""
    files = [(label, Path(p)) for label, p in files]
    stamp = tuple((label, str(p), p.stat().st_mtime_ns, p.stat().st_size) for label, p in files)
    # One at a time: CPython 3.11's AST constructor is not safe in concurrent threads
    # ("AST constructor recursion depth mismatch"), and the answer is the same for every caller.
    with _CODE_LOCK:
        if stamp not in _CODE_DIGESTS:
            h = hashlib.sha256()
            for label, p in files:
                h.update(f"{label}\0".encode())
                h.update(_normalized(p.read_text(encoding="utf-8")).encode())
            _CODE_DIGESTS[stamp] = h.hexdigest()[:16]
        return _CODE_DIGESTS[stamp]


def discard(path: Path, why: str, warn: Warn | None = None) -> None:
    """Set a bad stored file aside as ``<name>.corrupt`` and say so (once per file)."""
    try:
        os.replace(path, path.with_name(path.name + ".corrupt"))
    except FileNotFoundError:
        return  # another reader discarded it first
    (warn or _stderr)(f"{path}: {why}; discarded (kept as {path.name}.corrupt), it will be recomputed")


def write_checked_npz(path: str | Path, arrays: dict[str, np.ndarray], *, kind: str, key: str,
                      meta: dict[str, Any] | None = None, compressed: bool = False) -> Path:
    """Arrays plus ``__stored__`` = {kind, key, arrays_sha256, meta}, written atomically."""
    path = Path(path)
    stored = {"kind": kind, "key": key, "arrays_sha256": arrays_digest(arrays), "meta": meta or {}}
    blob = np.frombuffer(canonical_json(stored).encode(), np.uint8)
    with atomic_write(path, "wb") as f:
        (np.savez_compressed if compressed else np.savez)(f, **{_STORED: blob}, **arrays)
    return path


def read_checked_npz(path: str | Path, *, kind: str, key: str, warn: Warn | None = None
                     ) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """``(arrays, meta)`` of a sound file of this kind and key; ``None`` when missing; a bad
    file is discarded (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if _STORED not in arrays:
            discard(path, "has no key and content hash (written by an older spykehw)", warn)
            return None
        stored = json.loads(arrays.pop(_STORED).tobytes().decode())
        if not isinstance(stored, dict):
            raise ValueError("no stored record")
    except Exception as e:  # truncated (BadZipFile, EOFError), not ours, not ours at all
        discard(path, f"unreadable {kind} file ({type(e).__name__}: {str(e)[:80]})", warn)
        return None
    if stored.get("kind") != kind or stored.get("key") != key:
        discard(path, f"holds {stored.get('kind')!r} of key {stored.get('key')!r}, not {kind!r} of "
                      f"key {key!r}", warn)
        return None
    if stored.get("arrays_sha256") != arrays_digest(arrays):
        discard(path, "arrays do not match their SHA-256", warn)
        return None
    meta = stored.get("meta")
    return arrays, meta if isinstance(meta, dict) else {}


def write_checked_json(path: str | Path, obj: dict[str, Any], *, kind: str, key: str) -> Path:
    """A JSON object plus ``stored`` = {kind, key, sha256 of the object's canonical JSON}."""
    path = Path(path)
    body = json.loads(canonical_json({k: v for k, v in obj.items() if k != "stored"}))
    stored = {"kind": kind, "key": key, "sha256": hashlib.sha256(canonical_json(body).encode()).hexdigest()}
    with atomic_write(path, "w") as f:
        f.write(json.dumps({**body, "stored": stored}, indent=1, sort_keys=True) + "\n")
    return path


def read_checked_json(path: str | Path, *, kind: str, key: str, warn: Warn | None = None
                      ) -> dict[str, Any] | None:
    """The object of a sound file of this kind and key (without ``stored``); ``None`` when
    missing; a bad file is discarded."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        discard(path, f"unreadable ({e})", warn)
        return None
    try:
        obj = json.loads(text)
        if isinstance(obj, dict) and "stored" not in obj:
            discard(path, "has no key and content hash (written by an older spykehw)", warn)
            return None
        stored = obj.pop("stored")
        body = canonical_json(obj)
        if not isinstance(stored, dict):
            raise ValueError("no stored record")
    except (ValueError, TypeError, AttributeError, KeyError):
        discard(path, f"not a stored {kind} (truncated or not JSON)", warn)
        return None
    if stored.get("kind") != kind or stored.get("key") != key:
        discard(path, f"holds {stored.get('kind')!r} of key {stored.get('key')!r}, not {kind!r} of "
                      f"key {key!r}", warn)
        return None
    if hashlib.sha256(body.encode()).hexdigest() != stored.get("sha256"):
        discard(path, "content does not match its SHA-256", warn)
        return None
    return obj
