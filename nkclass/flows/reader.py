"""What every format reader shares: the :class:`Reader` base class, the
handling of bad records (raise, or skip and count), and the bisecting slow
path that finds bad records without re-reading everything around them.

A reader parses its input in large chunks (blocks of lines, record batches)
in one vectorised call each. When a chunk fails, it is split in
:data:`FANOUT` parts and each part parsed again, down to a small window
whose records are parsed one by one: a bad record costs a little over two
chunk parses in all, and every good record around it is kept.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import ClassVar, Protocol

import pyarrow as pa

from nkclass.errors import InputError, SchemaTypeError, SchemaValueError
from nkclass.flows.source import Source, read_failure
from nkclass.flows.stats import ReadStats

ERRORS = ("raise", "skip")
#: Exceptions that mean "this data is malformed" (as opposed to a bug or an
#: I/O failure): a chunk that raises one is searched for its bad records.
BAD_DATA = (
    SchemaValueError,
    SchemaTypeError,
    pa.ArrowInvalid,
    pa.ArrowTypeError,
    pa.ArrowNotImplementedError,
    UnicodeDecodeError,  # pyarrow decoding a field name that is not UTF-8
)
#: Parts a failing chunk is split into.
FANOUT = 8
#: At most this many records are parsed one by one around a bad one.
WINDOW = 16
#: Longest reason kept in a message (a bad line may be long).
REASON_CHARS = 300


def check_errors_mode(errors: str) -> None:
    if errors not in ERRORS:
        raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")


def merge_batches(batches: Sequence[pa.RecordBatch]) -> pa.RecordBatch | None:
    """One batch from several canonical ones (optional columns missing from
    some become null there)."""
    batches = [b for b in batches if b.num_rows]
    if not batches:
        return None
    if len(batches) == 1:
        return batches[0]
    tables = [pa.Table.from_batches([b]) for b in batches]
    merged = pa.concat_tables(tables, promote_options="permissive").combine_chunks()
    return merged.to_batches()[0]


class Problems:
    """Raises or counts a bad record, as the caller asked. ``unit`` says
    how positions read: ``"line"`` (1-based line of a text file) or
    ``"row"`` (0-based row of a columnar file)."""

    def __init__(self, path: str, errors: str, stats: ReadStats, unit: str = "line") -> None:
        check_errors_mode(errors)
        self.path = path
        self.errors = errors
        self.stats = stats
        self.unit = unit

    def bad(self, position: int | None, reason: str, count: int = 1) -> None:
        if len(reason) > REASON_CHARS:
            reason = reason[: REASON_CHARS - 3] + "..."
        if self.errors == "raise":
            if self.unit == "line":
                raise InputError(reason, self.path, position)
            where = "" if position is None else f"row {position}: "
            raise InputError(where + reason, self.path)
        self.stats.skip(reason.split(":")[0], count)


class Chunk(Protocol):
    """A piece of input the bisecting parser can split."""

    @property
    def size(self) -> int: ...  # records (or lines) it holds, at least

    @property
    def position(self) -> int: ...  # where its first record is, for messages

    def parts(self, n: int) -> list[Chunk]: ...  # about n pieces of about equal size

    def units(self) -> list[Chunk]: ...  # one chunk per record


def parse_bisecting(
    chunk: Chunk,
    parse: Callable[[Chunk], pa.RecordBatch | None],
    problems: Problems,
    reason: Callable[[Exception], str],
    fast: Callable[[Chunk], pa.RecordBatch | None] | None = None,
) -> list[pa.RecordBatch]:
    """``parse(chunk)``, or when it raises one of :data:`BAD_DATA`, the
    results of its good records with each bad record raised or counted
    (first bad record first). ``fast``, when given, is tried on the whole
    chunk instead of ``parse``: a quicker parse that may refuse good input
    (which ``parse``, run on the parts, then accepts)."""
    try:
        batch = (fast or parse)(chunk)
        return [] if batch is None else [batch]
    except BAD_DATA as exc:
        if chunk.size <= 1:
            if fast is None:
                problems.bad(chunk.position, reason(exc))
                return []
            return parse_bisecting(chunk, parse, problems, reason)
    parts = chunk.parts(FANOUT) if chunk.size > WINDOW else []
    if len(parts) < 2:  # small, or all in one piece (lines bunched at one end)
        parts = chunk.units()
    out: list[pa.RecordBatch] = []
    for part in parts:
        out.extend(parse_bisecting(part, parse, problems, reason))
    return out


class Reader(ABC):
    """Iterator of canonical RecordBatches (at most ``batch_size`` rows)
    from one :class:`~nkclass.flows.source.Source`.

    Subclasses set ``format`` (the name users pass as ``format=``),
    ``extensions`` (file name endings that mean the format when sniffing
    cannot tell) and :meth:`sniff`, and implement :meth:`_batches`.
    ``stats`` counts the rows yielded and the records skipped.
    """

    format: ClassVar[str]
    extensions: ClassVar[tuple[str, ...]] = ()
    #: How a bad record's position is given: "line" or "row".
    unit: ClassVar[str] = "line"
    #: Whether nkclass.read reads this format's next batch on a background
    #: thread while the caller works on the current one (see readahead).
    reads_ahead: ClassVar[bool] = True

    def __init__(self, source: Source, batch_size: int = 65536, errors: str = "raise") -> None:
        check_errors_mode(errors)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int of at least 1, got {batch_size!r}")
        self.source = source
        self.path = source.name
        self.batch_size = batch_size
        self.errors = errors
        self._stats = ReadStats(files=[source.name])
        self.problems = Problems(source.name, errors, self._stats, self.unit)
        self._iterator: Iterator[pa.RecordBatch] | None = None

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        """Whether an input starting with ``head`` is in this format."""
        return False

    @property
    def stats(self) -> ReadStats:
        return self._stats

    def __iter__(self) -> Reader:
        return self

    def __next__(self) -> pa.RecordBatch:
        if self._iterator is None:
            self._iterator = self._run()
        return next(self._iterator)

    def close(self) -> None:
        """Stop reading and release the input (also when part-way)."""
        if self._iterator is not None:
            self._iterator.close()
        self.source.close()

    def _run(self) -> Iterator[pa.RecordBatch]:
        try:
            for batch in self._batches():
                if not batch.num_rows:
                    continue
                self._stats.records += batch.num_rows
                for start in range(0, batch.num_rows, self.batch_size):
                    yield batch.slice(start, self.batch_size)
        except OSError as exc:  # a disk error, corrupt compressed data
            raise InputError(read_failure(exc, self.source.compression), self.path) from None
        finally:
            self.source.close()

    @abstractmethod
    def _batches(self) -> Iterator[pa.RecordBatch]:
        """The input's batches in the canonical schema, any size."""
