"""Opening dated-list inputs: files, folders, patterns and archives, with
their compression undone, as ``(name, text)`` documents in order; and the
time forms the lists use.

An input is a file, a folder (its files in sorted order, recursively), a
pattern such as ``consensuses/*/*-consensus``, or a tar archive (the way
the Tor Project's CollecTor publishes them: ``consensuses-2019-05.tar.xz``;
its regular files in name order). gzip, bzip2, xz and zstd are undone
first, recognised by their magic bytes. Documents from an archive are named
``archive/member`` in errors.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

import pyarrow as pa

from nkclass.errors import InputError
from nkclass.flows.source import _Replay, expand_inputs, read_exactly

#: Largest document read (a month of hourly consensuses is one archive of
#: about 720 documents of 2-3 MB each; a single document never nears this).
MAX_DOCUMENT_BYTES = 1 << 30
_XZ = b"\xfd7zXZ\x00"
_GZIP = b"\x1f\x8b"
_BZIP2 = b"BZh"
_ZSTD = b"\x28\xb5\x2f\xfd"


class DatedListError(InputError):
    """A dated list is malformed: a bad record, records out of order, or an
    empty validity interval. Names the file (``archive/member`` inside an
    archive) and the line."""


def _decompressed(stream, name: str):
    """``stream`` with gzip, bzip2, xz or zstd undone (told by magic bytes)."""
    magic = read_exactly(stream, 6)
    stream = _Replay(magic, stream)
    if magic.startswith(_GZIP):
        return gzip.GzipFile(fileobj=stream)
    if magic.startswith(_BZIP2):
        return bz2.BZ2File(stream)
    if magic.startswith(_XZ):
        return lzma.LZMAFile(stream)
    if magic.startswith(_ZSTD):
        return pa.CompressedInputStream(pa.PythonFile(stream, mode="r"), "zstd")
    return stream


def _read(stream, n: int, name: str) -> bytes:
    try:
        return read_exactly(stream, n)
    except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
        raise DatedListError(f"corrupt or truncated compressed data: {exc}", name) from None


def _whole(stream, name: str, head: bytes = b"") -> bytes:
    data = head + _read(stream, MAX_DOCUMENT_BYTES + 1 - len(head), name)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DatedListError(f"larger than {MAX_DOCUMENT_BYTES >> 20} MiB", name)
    return data


def _is_tar(head: bytes) -> bool:
    return len(head) >= 262 and head[257:262] == b"ustar"


def documents(paths: str | os.PathLike | Iterable[str | os.PathLike]
              ) -> Iterator[tuple[str, bytes]]:
    """``(name, bytes)`` of every document the inputs hold, in order (an
    archive's members in the order it stores them, read as a stream)."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    for source in expand_inputs(paths):
        name = source.name
        if source.path is None:
            raise DatedListError("dated lists are read from files, not standard input", name)
        try:
            raw = open(source.path, "rb")
        except FileNotFoundError:
            raise DatedListError("no such file", name) from None
        except IsADirectoryError:
            raise DatedListError("is a folder", name) from None
        except OSError as exc:
            raise DatedListError(f"cannot read: {exc.strerror or exc}", name) from None
        with raw:
            stream = _decompressed(raw, name)
            head = _read(stream, 512, name)
            if _is_tar(head):
                yield from _members(_Replay(head, stream), name)
            else:
                yield name, _whole(stream, name, head)


def _members(stream, name: str) -> Iterator[tuple[str, bytes]]:
    try:
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                handle = archive.extractfile(member)
                assert handle is not None
                inner = f"{name}/{member.name}"
                yield inner, _whole(_decompressed(handle, inner), inner)
    except tarfile.TarError as exc:
        raise DatedListError(f"damaged tar archive: {exc}", name) from None


def text_lines(name: str, data: bytes) -> list[str]:
    """The document's lines as text (UTF-8; a stray byte is an error with
    its line)."""
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DatedListError("not UTF-8 text", name, line) from None


def utc_ms(text: str) -> int:
    """Milliseconds since the epoch of ``YYYY-MM-DD[ HH:MM:SS]`` (or ISO 8601
    with ``T`` and an offset), UTC unless an offset is given; ValueError
    otherwise."""
    stamp = datetime.fromisoformat(text.strip())
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp() * 1000) if stamp.microsecond else int(stamp.timestamp()) * 1000


def ms_text(ms: int) -> str:
    """``YYYY-MM-DD HH:MM:SS`` (UTC) of milliseconds since the epoch."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
