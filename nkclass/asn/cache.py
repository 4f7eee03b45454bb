"""The compiled AS table on disk: a compact, versioned, checksummed file.

Layout (little-endian)::

    magic    8 bytes   b"NKASTAB\\0"
    version  uint32    CACHE_VERSION
    hlen     uint32    length of the header
    header   hlen bytes UTF-8 JSON: source path, size, mtime, SHA-256 and format,
                       row and entry counts, the byte length of every array
    arrays   v4 networks (uint32), v4 lengths (uint8), v4 labels (uint32),
             v6 networks (16 bytes each), v6 lengths, v6 labels,
             entry AS numbers (uint32), organisation-name offsets (int64, entries + 1),
             organisation names (UTF-8)
    digest   16 bytes  BLAKE2b-128 of everything before it

A file that is shorter or longer than its header says, carries another magic
or version, or fails its digest is rejected (and rebuilt by the loader),
never trusted. Files are written to a temporary name and renamed into place.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nkclass.asn.formats import AsDataError

MAGIC = b"NKASTAB\0"
CACHE_VERSION = 1
DIGEST_BYTES = 16
_FIXED = struct.Struct("<8sII")


@dataclass(frozen=True)
class CompiledAs:
    """The arrays a native AS table is built from, plus its entries: entry
    id ``i`` (the table label; 0 = none) is AS ``asns[i]`` (0 when the
    source names no number) run by ``orgs[i]``."""

    v4_network: np.ndarray
    v4_length: np.ndarray
    v4_label: np.ndarray
    v6_network: np.ndarray
    v6_length: np.ndarray
    v6_label: np.ndarray
    asns: np.ndarray  # uint32, entry 0 is 0
    orgs: tuple[str, ...]  # entry 0 is ""
    source: dict  # path, size, mtime_ns, sha256, format


def cache_dir() -> Path:
    """Where compiled tables live: ``$NKCLASS_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/nkclass``, else ``~/.cache/nkclass``."""
    if os.environ.get("NKCLASS_CACHE_DIR"):
        return Path(os.environ["NKCLASS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nkclass"


def _arrays(table: CompiledAs) -> list[tuple[str, bytes]]:
    names = [o.encode("utf-8") for o in table.orgs]
    offsets = np.zeros(len(names) + 1, np.int64)
    np.cumsum([len(n) for n in names], out=offsets[1:])
    return [
        ("v4_network", np.ascontiguousarray(table.v4_network, "<u4").tobytes()),
        ("v4_length", np.ascontiguousarray(table.v4_length, np.uint8).tobytes()),
        ("v4_label", np.ascontiguousarray(table.v4_label, "<u4").tobytes()),
        ("v6_network", np.ascontiguousarray(table.v6_network, np.uint8).tobytes()),
        ("v6_length", np.ascontiguousarray(table.v6_length, np.uint8).tobytes()),
        ("v6_label", np.ascontiguousarray(table.v6_label, "<u4").tobytes()),
        ("asns", np.ascontiguousarray(table.asns, "<u4").tobytes()),
        ("org_offsets", offsets.astype("<i8").tobytes()),
        ("org_names", b"".join(names)),
    ]


def encode(table: CompiledAs) -> bytes:
    """The file bytes of a compiled table."""
    arrays = _arrays(table)
    header = json.dumps(
        {
            "source": table.source,
            "v4_rows": len(table.v4_network),
            "v6_rows": len(table.v6_network),
            "entries": len(table.asns),
            "arrays": [[name, len(blob)] for name, blob in arrays],
        },
        sort_keys=True,
    ).encode("utf-8")
    body = _FIXED.pack(MAGIC, CACHE_VERSION, len(header)) + header + b"".join(b for _, b in arrays)
    return body + hashlib.blake2b(body, digest_size=DIGEST_BYTES).digest()


def decode(data: bytes, path: str = "<cache>") -> CompiledAs:
    """Parse and validate a compiled table; AsDataError names the file and
    the byte offset of the first problem."""
    if len(data) < _FIXED.size + DIGEST_BYTES:
        raise AsDataError(f"truncated: {len(data)} bytes", path, offset=len(data))
    magic, version, hlen = _FIXED.unpack_from(data)
    if magic != MAGIC:
        raise AsDataError("not a compiled nkclass AS table (bad magic)", path, offset=0)
    if version != CACHE_VERSION:
        raise AsDataError(f"format version {version}, expected {CACHE_VERSION}", path, offset=8)
    body_end = len(data) - DIGEST_BYTES
    digest = hashlib.blake2b(data[:body_end], digest_size=DIGEST_BYTES).digest()
    if digest != data[body_end:]:
        raise AsDataError("checksum mismatch (truncated or damaged)", path, offset=body_end)
    at = _FIXED.size + hlen
    if at > body_end:
        raise AsDataError(f"header of {hlen} bytes runs past the end", path, offset=_FIXED.size)
    try:
        header = json.loads(data[_FIXED.size:at].decode("utf-8"))
        n4, n6, ne = header["v4_rows"], header["v6_rows"], header["entries"]
        sizes = {name: int(size) for name, size in header["arrays"]}
        source = dict(header["source"])
    except (ValueError, KeyError, TypeError) as exc:
        raise AsDataError(f"unreadable header ({exc})", path, offset=_FIXED.size) from None
    expected = {
        "v4_network": 4 * n4, "v4_length": n4, "v4_label": 4 * n4,
        "v6_network": 16 * n6, "v6_length": n6, "v6_label": 4 * n6,
        "asns": 4 * ne, "org_offsets": 8 * (ne + 1),
    }
    out: dict[str, np.ndarray | bytes] = {}
    for name in (*expected, "org_names"):
        size = sizes.get(name, -1)
        if size < 0 or (name in expected and size != expected[name]) or at + size > body_end:
            raise AsDataError(f"array {name!r} has a bad length ({size})", path, offset=at)
        out[name] = data[at:at + size]
        at += size
    if at != body_end:
        raise AsDataError(f"{body_end - at} unexpected bytes after the arrays", path, offset=at)
    offsets = np.frombuffer(out["org_offsets"], "<i8")
    names = out["org_names"]
    if ne < 1 or offsets[0] != 0 or offsets[-1] != len(names) or (np.diff(offsets) < 0).any():
        raise AsDataError("organisation-name offsets are inconsistent", path)
    try:
        orgs = tuple(names[a:b].decode("utf-8") for a, b in itertools.pairwise(offsets))
    except UnicodeDecodeError as exc:
        raise AsDataError(f"organisation names are not UTF-8 ({exc.reason})", path) from None
    labels = [np.frombuffer(out["v4_label"], "<u4"), np.frombuffer(out["v6_label"], "<u4")]
    if any(len(lab) and (lab.min() < 1 or lab.max() >= ne) for lab in labels):
        raise AsDataError("a prefix names an entry outside the entry list", path)
    return CompiledAs(
        np.frombuffer(out["v4_network"], "<u4").astype(np.uint32),
        np.frombuffer(out["v4_length"], np.uint8),
        labels[0].astype(np.uint32),
        np.frombuffer(out["v6_network"], np.uint8).reshape(-1, 16),
        np.frombuffer(out["v6_length"], np.uint8),
        labels[1].astype(np.uint32),
        np.frombuffer(out["asns"], "<u4").astype(np.uint32),
        orgs,
        source,
    )


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename, so
    readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the table from other users' reads
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
