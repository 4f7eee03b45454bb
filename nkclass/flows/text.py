"""What the text readers (CSV, TSV, JSON Lines) share.

Input is cut into blocks of whole lines (bounded memory), each parsed by
pyarrow in one call. Lines longer than :data:`MAX_LINE_BYTES` never reach a
parser: they are bad lines, reported or skipped and counted like any other.
A failing block is bisected (:func:`~nkclass.flows.reader.parse_bisecting`)
so only a few lines around a bad one are parsed on their own.
"""

from __future__ import annotations

import io
import re
from abc import abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from nkclass import _columns
from nkclass.errors import SchemaValueError
from nkclass.flows.reader import BAD_DATA, Problems, Reader, merge_batches, parse_bisecting

BLOCK_BYTES = 16 << 20  # whole lines per parse call; pyarrow splits it across threads
#: Longest line a text reader accepts (flow records are a few hundred bytes).
MAX_LINE_BYTES = 1 << 20
UTF8_BOM = b"\xef\xbb\xbf"
_CSV_BLOCK = 1 << 22  # pyarrow's own parse block: above MAX_LINE_BYTES
_THREADS_ABOVE = 1 << 20  # smaller inputs parse faster on one thread


class FieldCountError(SchemaValueError):
    """A CSV/TSV line with the wrong number of fields."""


@dataclass
class Block:
    """Whole lines of a file: ``data`` starts at 1-based line
    ``first_line``; ``context`` is what the reader needs to parse it (the
    header in force)."""

    data: bytes
    first_line: int
    context: object = None

    @property
    def position(self) -> int:
        return self.first_line

    @property
    def size(self) -> int:
        """Lines in the block (blank ones included)."""
        return self.data.count(b"\n") + (not self.data.endswith(b"\n") and bool(self.data))

    def line_at(self, offset: int) -> int:
        return self.first_line + self.data.count(b"\n", 0, offset)

    def parts(self, n: int) -> list[Block]:
        """About ``n`` blocks of about equal bytes, cut after newlines."""
        data, out, start, line = self.data, [], 0, self.first_line
        for i in range(1, n + 1):
            cut = len(data) if i == n else data.find(b"\n", len(data) * i // n) + 1
            if cut <= start:
                continue
            out.append(Block(data[start:cut], line, self.context))
            line += data.count(b"\n", start, cut)
            start = cut
            if cut >= len(data):
                break
        return out

    def units(self) -> list[Block]:
        """One block per line that holds more than white space."""
        return [Block(text + b"\n", self.first_line + i, self.context)
                for i, text in enumerate(self.data.split(b"\n")) if text.strip()]

    def split_first_line(self) -> tuple[bytes, Block]:
        """The first line (without its newline) and the block after it."""
        nl = self.data.find(b"\n")
        if nl < 0:
            return self.data, Block(b"", self.first_line + 1, self.context)
        return self.data[:nl], Block(self.data[nl + 1:], self.first_line + 1, self.context)

    def blank(self, starts: Iterable[int]) -> Block:
        """The block with the lines starting at these offsets emptied (line
        numbers stay right; parsers skip empty lines)."""
        parts, pos = [], 0
        for start in starts:
            end = self.data.find(b"\n", start)
            parts.append(self.data[pos:start])
            pos = len(self.data) if end < 0 else end
        parts.append(self.data[pos:])
        return Block(b"".join(parts), self.first_line, self.context)


def line_blocks(stream, problems: Problems, block_bytes: int = BLOCK_BYTES,
                max_line: int = MAX_LINE_BYTES) -> Iterator[Block]:
    """Blocks of whole lines from a byte stream. A UTF-8 byte order mark at
    the start is dropped; a line longer than ``max_line`` is reported to
    ``problems`` (and left out, its line number kept)."""
    line = 1
    rest = b""
    skipping = False  # inside an over-long line, up to its newline
    first = True
    while True:
        chunk = stream.read(block_bytes)
        if first and chunk:
            while len(chunk) < len(UTF8_BOM) and (more := stream.read(block_bytes)):
                chunk += more
            first = False
            chunk = chunk.removeprefix(UTF8_BOM)
            if not chunk:
                continue
        if not chunk:
            if rest and not skipping:
                yield _checked(Block(rest, line), problems, max_line)
            return
        if skipping:
            nl = chunk.find(b"\n")
            if nl < 0:
                continue
            chunk, skipping = chunk[nl + 1:], False
            line += 1
        data = rest + chunk if rest else chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            rest = data
        else:
            block, rest = Block(data[: cut + 1], line), data[cut + 1:]
            line += block.data.count(b"\n")
            yield _checked(block, problems, max_line)
        if len(rest) > max_line:
            problems.bad(line, f"line longer than {max_line} bytes")
            rest, skipping = b"", True


def _checked(block: Block, problems: Problems, max_line: int) -> Block:
    long = _columns.long_lines(np.frombuffer(block.data, np.uint8), max_line)
    for start in long:
        problems.bad(block.line_at(start), f"line longer than {max_line} bytes")
    return block.blank(long) if long else block


class TextReader(Reader):
    """A line-oriented format. Subclasses parse a :class:`Block` into a
    table (:meth:`_table`) and convert that to a canonical batch
    (:meth:`_convert`), both raising on bad data, and may rework the
    stream of blocks first (:meth:`_blocks`: headers, trailers).

    With ``typed_first``, whole blocks are first parsed with types given to
    the parser (fast, strict); a block that fails is parsed as text, which
    the converters accept more widely and check value by value.
    """

    typed_first: ClassVar[bool] = True

    def _batches(self) -> Iterator[pa.RecordBatch]:
        blocks = line_blocks(self.source.stream(), self.problems)
        fast = self._parse_typed if self.typed_first else None
        for block in self._blocks(blocks):
            if not block.data or block.data.isspace():
                continue
            batch = merge_batches(
                parse_bisecting(block, self._parse, self.problems, self._reason, fast))
            if batch is not None:
                yield batch

    def _blocks(self, blocks: Iterator[Block]) -> Iterator[Block]:
        return blocks

    @abstractmethod
    def _table(self, block: Block, typed: bool) -> pa.Table:
        """One block's records as a table (with the format's types when
        ``typed``, else as text)."""

    @abstractmethod
    def _convert(self, table: pa.Table) -> pa.RecordBatch:
        """A block's table in the canonical schema."""

    def _parse_typed(self, block: Block) -> pa.RecordBatch:
        return self._convert(self._table(block, True))

    def _parse(self, block: Block) -> pa.RecordBatch:
        if self.typed_first:
            try:
                return self._parse_typed(block)
            except FieldCountError:
                raise  # no better as text
            except BAD_DATA:
                pass
        return self._convert(self._table(block, False))

    def _reason(self, exc: Exception) -> str:
        """What a bad line's message says."""
        text = str(exc)
        if isinstance(exc, SchemaValueError):
            return text.replace("row 0 is", "value")
        for prefix in ("CSV parse error: ", "JSON parse error: "):
            text = text.replace(prefix, "")
        text = re.sub(r"\.? in row \d+$", "", text)  # the parser's count, not the line
        return f"invalid {self.format} record: {text}"


def read_csv_block(
    data: bytes,
    names: list[str],
    columns: list[str],
    types: dict[str, pa.DataType],
    delimiter: str = ",",
    quote: str | bool = False,
    null_values: list[str] | None = None,
) -> pa.Table:
    """Parse CSV/TSV text with pyarrow; a line with the wrong number of
    fields is a :class:`FieldCountError` saying so."""
    # A quoted "" is an empty string, an empty field a null: as pyarrow writes them.
    convert = pacsv.ConvertOptions(include_columns=columns, column_types=types,
                                   strings_can_be_null=null_values is not None,
                                   quoted_strings_can_be_null=False)
    if null_values is not None:
        convert.null_values = null_values
    try:
        return pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=names, block_size=_CSV_BLOCK,
                                           use_threads=len(data) > _THREADS_ABOVE),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char=quote),
            convert_options=convert,
        )
    except pa.ArrowInvalid as exc:
        # (an invalid_row_handler would see the row decoded, which fails on bad UTF-8)
        count = _FIELD_COUNT.search(str(exc))
        if count:
            raise FieldCountError(f"expected {count[1]} columns, got {count[2]}") from None
        raise


_FIELD_COUNT = re.compile(r"Expected (\d+) columns, got (\d+)")
