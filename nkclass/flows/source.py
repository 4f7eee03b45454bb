"""Inputs as byte streams: files, folders, globs, pipes and standard input.

Each input is read once, front to back, so pipes, ``/dev/stdin`` and ``-``
work like files; gzip, bz2 and zstd are decompressed transparently,
recognised by their magic bytes rather than by name. Formats that need
random access (Parquet, the Arrow IPC file format) read a regular file in
place and spool anything else to an unnamed temporary file first.
"""

from __future__ import annotations

import glob
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import pyarrow as pa

from nkclass.errors import InputError

STDIN = "-"
#: What messages call standard input.
STDIN_NAME = "<stdin>"
#: Bytes of (decompressed) input the format sniffers see.
HEAD_BYTES = 4096
COMPRESSION_MAGICS = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
#: Folder entries starting with these are not inputs (hidden files, and the
#: _SUCCESS / _metadata markers of Spark and Arrow datasets).
SKIPPED_PREFIXES = (".", "_")


def read_exactly(stream, n: int) -> bytes:
    """Up to ``n`` bytes, fewer only at the end of the stream (pipes may
    return short reads)."""
    parts = []
    while n > 0:
        chunk = stream.read(n)
        if not chunk:
            break
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def read_chunks(stream, size: int) -> Iterator[memoryview]:
    """The rest of ``stream`` in pieces of at most ``size`` bytes, each a view
    of one reused buffer that holds it until the next piece is taken (no
    fresh allocation, so no fresh pages to fault in, per piece)."""
    view = memoryview(bytearray(size))
    while n := stream.readinto(view):
        yield view[:n]


def read_failure(exc: OSError, compression: str | None) -> str:
    """What a failed read says (corrupt compressed data shows up as OSError)."""
    if compression is not None:
        return f"corrupt or truncated {compression} data: {exc}"
    return f"cannot read: {exc.strerror or exc}"


class _Replay:
    """A stream that returns ``prefix`` first, then the rest of ``stream``:
    bytes already read to sniff a pipe are not lost."""

    def __init__(self, prefix: bytes, stream) -> None:
        self._prefix = prefix
        self._stream = stream
        self.closed = False

    def read(self, n: int = -1) -> bytes:
        if not self._prefix:
            return self._stream.read(n)
        if 0 <= n < len(self._prefix):
            out, self._prefix = self._prefix[:n], self._prefix[n:]
            return out
        out, self._prefix = self._prefix, b""
        rest = self._stream.read(-1 if n < 0 else n - len(out))
        return out + rest if rest else out

    def readinto(self, buffer) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        readinto = getattr(self._stream, "readinto", None)
        if readinto is not None:
            return readinto(buffer)
        data = self._stream.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


class Source:
    """One input: a path on disk or standard input (``path=None``)."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.name = STDIN_NAME if path is None else path
        self.compression: str | None = None
        self._raw: BinaryIO | None = None
        self._decompressed: pa.NativeFile | None = None
        self._stream = None
        self._head: bytes | None = None
        self._regular = False
        self._spool: BinaryIO | None = None

    def __repr__(self) -> str:
        return f"Source({self.name!r})"

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def head(self) -> bytes:
        """The first :data:`HEAD_BYTES` bytes after decompression."""
        if self._head is None:
            self._open()
        assert self._head is not None
        return self._head

    def stream(self):
        """The decompressed bytes from the start, as a stream with
        ``read(n)``; one reader consumes it."""
        if self._head is None:
            self._open()
        stream, self._stream = self._stream, None
        if stream is None:
            raise InputError("input already read (given twice?)", self.name)
        return stream

    def random_access(self) -> str | BinaryIO:
        """A path (a regular, uncompressed file) or a seekable file holding
        the decompressed input, for formats that read out of order."""
        if self._head is None:
            self._open()
        if self._regular and self.compression is None:
            return self.path  # type: ignore[return-value]
        spool = tempfile.TemporaryFile(prefix="nkclass-")
        try:
            shutil.copyfileobj(self.stream(), spool, 1 << 20)
        except OSError as exc:
            spool.close()
            raise InputError(f"cannot spool the input to a temporary file: {exc}", self.name
                             ) from None
        spool.seek(0)
        self._spool = spool
        return spool

    def close(self) -> None:
        for f in (self._spool, self._decompressed, self._raw):
            if f is not None and f is not getattr(sys.stdin, "buffer", None):
                f.close()
        self._spool = self._decompressed = self._raw = None

    def _open(self) -> None:
        if self.path is None:
            raw = sys.stdin.buffer
        else:
            try:
                self._regular = stat.S_ISREG(os.stat(self.path).st_mode)
                raw = open(self.path, "rb")
            except FileNotFoundError:
                raise InputError("no such file", self.path) from None
            except IsADirectoryError:
                raise InputError("is a folder", self.path) from None
            except OSError as exc:
                raise InputError(f"cannot read: {exc.strerror or exc}", self.path) from None
        self._raw = raw
        try:
            magic = read_exactly(raw, 4)
            self.compression = next(
                (codec for sig, codec in COMPRESSION_MAGICS if magic.startswith(sig)), None
            )
            if self._regular:
                raw.seek(0)
                stream = raw
                if self.compression is not None:
                    stream = pa.input_stream(self.path, compression=self.compression)
            else:
                stream = _Replay(magic, raw)
                if self.compression is not None:
                    stream = pa.CompressedInputStream(pa.PythonFile(stream, mode="r"),
                                                      self.compression)
            if stream is not raw:
                self._decompressed = stream
            head = read_exactly(stream, HEAD_BYTES)
        except BaseException as exc:
            self.close()  # a failed open holds no file: asking again opens afresh
            if isinstance(exc, OSError):
                raise InputError(read_failure(exc, self.compression), self.name) from None
            raise
        self._head = head
        self._stream = _Replay(head, stream)


def expand_inputs(paths: Iterable[str | os.PathLike[str]]) -> list[Source]:
    """Sources for input arguments: ``-`` is standard input, a folder its
    files (recursively, in sorted order, skipping names that start with
    ``.`` or ``_``), a pattern with ``*``, ``?`` or ``[`` the files it
    matches (``**`` spans folders), anything else one file."""
    sources = []
    for item in paths:
        text = os.fspath(item)
        if text == STDIN:
            sources.append(Source(None))
        elif os.path.isdir(text):
            files = _folder_files(text)
            if not files:
                raise InputError("the folder holds no input files", text)
            sources.extend(Source(f) for f in files)
        elif not os.path.lexists(text) and any(c in text for c in "*?["):
            matches = sorted(glob.glob(text, recursive=True))
            files = []
            for match in matches:
                files.extend(_folder_files(match) if os.path.isdir(match) else [match])
            if not files:
                raise InputError("no files match this pattern", text)
            sources.extend(Source(f) for f in files)
        else:
            sources.append(Source(text))
    return sources


def _folder_files(folder: str) -> list[str]:
    out = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(SKIPPED_PREFIXES)]
        out.extend(os.path.join(root, f) for f in files if not f.startswith(SKIPPED_PREFIXES))
    return sorted(out, key=lambda p: os.path.relpath(p, folder).split(os.sep))
