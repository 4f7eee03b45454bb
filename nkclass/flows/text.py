"""Shared machinery of the text readers (CSV, TSV, JSON Lines).

Files are read in blocks of whole lines (bounded memory, transparent
gzip/bz2/zstd by extension), each block parsed by pyarrow in one go. Only
when a block fails does a slow path look at its lines one by one, to name
the bad line (``errors="raise"``) or drop and count it (``errors="skip"``).
Converters turn parsed columns into the canonical schema, vectorised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nkclass.addresses import parse_addresses, to_ipv6_rows
from nkclass.errors import InputError, SchemaValueError
from nkclass.flows.schema import ADDRESS, ALL_FIELDS, REQUIRED, TIMESTAMP
from nkclass.flows.stats import ReadStats

BLOCK_BYTES = 16 << 20  # whole lines per parse call; pyarrow splits it across threads
ERRORS = ("raise", "skip")

PROTOCOL_NUMBERS = {
    "icmp": 1,
    "igmp": 2,
    "tcp": 6,
    "udp": 17,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "icmp6": 58,
    "ipv6-icmp": 58,
    "icmpv6": 58,
    "sctp": 132,
}


def check_errors_mode(errors: str) -> None:
    if errors not in ERRORS:
        raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")


@dataclass
class Block:
    """Whole lines of a file: ``data`` starts at 1-based line ``first_line``."""

    data: bytes
    first_line: int

    def lines(self) -> list[tuple[int, bytes]]:
        """(line number, text) of every line, the slow path's view."""
        return [
            (self.first_line + i, text)
            for i, text in enumerate(self.data.split(b"\n"))
            if text.strip()
        ]


def line_blocks(path: str, block_bytes: int = BLOCK_BYTES) -> Iterator[Block]:
    """Blocks of whole lines of ``path`` (compressed files by extension)."""
    line = 1
    rest = b""
    with pa.input_stream(path, compression="detect") as stream:
        while True:
            chunk = stream.read(block_bytes)
            data = rest + chunk
            if not chunk:
                if data:
                    yield Block(data, line)
                return
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            block, rest = data[: cut + 1], data[cut + 1 :]
            yield Block(block, line)
            line += block.count(b"\n")


def split_first_line(block: Block) -> tuple[bytes, Block]:
    """The first line of a block and the block after it."""
    nl = block.data.find(b"\n")
    if nl < 0:
        return block.data, Block(b"", block.first_line + 1)
    return block.data[:nl], Block(block.data[nl + 1 :], block.first_line + 1)


class Problems:
    """Raises or counts a bad line, as the caller asked."""

    def __init__(self, path: str, errors: str, stats: ReadStats) -> None:
        check_errors_mode(errors)
        self.path = path
        self.errors = errors
        self.stats = stats

    def bad(self, line: int | None, reason: str) -> None:
        if self.errors == "raise":
            raise InputError(reason, self.path, line)
        self.stats.skip(reason.split(":")[0])


# ------------------------------------------------------------------ converters


def _texts(arr: pa.Array) -> pa.Array:
    return (
        arr
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
        else (arr.cast(pa.string()))
    )


def address_column(arr: pa.Array, column: str) -> pa.Array:
    """Address text as canonical 16-byte binary (IPv4 mapped)."""
    rows = parse_addresses(_texts(arr), column)
    if rows.dtype == np.uint32:
        rows = to_ipv6_rows(rows)
    return pa.FixedSizeBinaryArray.from_buffers(ADDRESS, len(rows), [None, pa.py_buffer(rows)])


def unsigned_column(arr: pa.Array, column: str, dtype: pa.DataType) -> pa.Array:
    """Integers (or integer text) checked against dtype's range, never wrapped."""
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        try:  # fast path: Arrow's checked cast refuses bad text and overflow
            return arr.cast(dtype)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # find and name the bad row below
        arr = pc.utf8_trim_whitespace(arr)
        ok = pc.match_substring_regex(arr, r"^\d{1,20}$")
        bad = pc.invert(ok)
        if pc.any(bad).as_py():
            row = int(np.flatnonzero(bad.to_numpy(zero_copy_only=False))[0])
            raise SchemaValueError(
                f"column {column!r}: row {row} is {arr[row].as_py()!r}, "
                "expected a non-negative integer"
            )
        arr = arr.cast(pa.uint64())
    elif pa.types.is_floating(arr.type):
        values = arr.to_numpy(zero_copy_only=False)
        frac = values != np.floor(values)
        if frac.any():
            row = int(np.flatnonzero(frac)[0])
            raise SchemaValueError(
                f"column {column!r}: row {row} is {values[row]}, expected an integer"
            )
        arr = pa.array(values.astype(np.int64))
    elif not pa.types.is_integer(arr.type):
        raise SchemaValueError(f"column {column!r}: expected integers, got {arr.type}")
    values = arr.to_numpy(zero_copy_only=False)
    limit = np.iinfo(dtype.to_pandas_dtype()).max
    bad = (values < 0) | (values > limit)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise SchemaValueError(f"column {column!r}: row {row} is {values[row]}, outside 0..{limit}")
    return pa.array(values.astype(dtype.to_pandas_dtype()), dtype)


def protocol_column(arr: pa.Array, column: str) -> pa.Array:
    """Protocol numbers, or names (tcp, UDP, icmp, ...) mapped to numbers."""
    if pa.types.is_integer(arr.type):
        return unsigned_column(arr, column, pa.uint8())
    text = pc.utf8_lower(pc.utf8_trim_whitespace(_texts(arr)))
    names = pa.array(list(PROTOCOL_NUMBERS))
    numbers = pa.array(list(PROTOCOL_NUMBERS.values()), pa.uint8())
    idx = pc.index_in(text, value_set=names)
    named = pc.take(numbers, idx)
    numeric = pc.match_substring_regex(text, r"^\d{1,3}$")
    if pc.any(pc.and_(pc.is_null(idx), pc.invert(numeric))).as_py():
        mask = pc.and_(pc.is_null(idx), pc.invert(numeric)).to_numpy(zero_copy_only=False)
        row = int(np.flatnonzero(mask)[0])
        raise SchemaValueError(
            f"column {column!r}: row {row} is {arr[row].as_py()!r}, expected a "
            f"protocol number or one of {', '.join(PROTOCOL_NUMBERS)}"
        )
    as_number = unsigned_column(pc.if_else(numeric, text, "0"), column, pa.uint8())
    return pc.if_else(numeric, as_number, named)


def timestamp_column(arr: pa.Array, column: str, unit: str = "s") -> pa.Array:
    """Times as timestamp[ms, UTC]. Numbers are epoch values in ``unit``
    (s, ms, us, ns; fractions allowed for s); text is ISO-like
    "YYYY-MM-DD HH:MM:SS[.fff]" in UTC."""
    if pa.types.is_timestamp(arr.type):
        return arr.cast(pa.timestamp("ms", tz=arr.type.tz or "UTC")).cast(TIMESTAMP)
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        text = pc.utf8_trim_whitespace(arr)
        try:
            parsed = text.cast(pa.timestamp("ns"))
        except pa.ArrowInvalid:
            numeric = pc.match_substring_regex(text, r"^\d+(\.\d*)?$")
            if pc.all(numeric).as_py():
                return timestamp_column(text.cast(pa.float64()), column, unit)
            row = _first_unparsable_time(text)
            raise SchemaValueError(
                f"column {column!r}: row {row} is {arr[row].as_py()!r}, "
                "expected a time such as 2019-05-01 10:00:00"
            ) from None
        ms = pc.divide(parsed.cast(pa.int64()), 1_000_000)
        return ms.cast(pa.timestamp("ms")).cast(TIMESTAMP)
    scale = {"s": 1000.0, "ms": 1.0, "us": 1e-3, "ns": 1e-6}[unit]
    if pa.types.is_floating(arr.type):
        values = np.round(arr.to_numpy(zero_copy_only=False) * scale).astype(np.int64)
    elif pa.types.is_integer(arr.type):
        raw = arr.to_numpy(zero_copy_only=False).astype(np.int64)
        values = raw * int(scale) if scale >= 1 else raw // round(1 / scale)
    else:
        raise SchemaValueError(f"column {column!r}: expected times, got {arr.type}")
    return pa.array(values, pa.int64()).cast(TIMESTAMP)


def _first_unparsable_time(text: pa.Array) -> int:
    for i in range(len(text)):
        try:
            pa.array([text[i].as_py()]).cast(pa.timestamp("ns"))
        except pa.ArrowInvalid:
            return i
    return 0


def canonical_batch(columns: dict[str, pa.Array]) -> pa.RecordBatch:
    """A RecordBatch in canonical field order: the required fields, then
    whichever optional ones are present."""
    fields = [f for f in REQUIRED]
    fields += [
        ALL_FIELDS[name]
        for name in ALL_FIELDS
        if name in columns and ALL_FIELDS[name] not in REQUIRED
    ]
    arrays = [columns[f.name].cast(f.type) for f in fields]
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def convert_rows(
    table: pa.Table,
    convert: Callable[[pa.Table], pa.RecordBatch],
    block: Block,
    problems: Problems,
    parse_line: Callable[[bytes], pa.Table],
) -> pa.RecordBatch | None:
    """Convert a parsed block; on a conversion error find the bad line(s):
    raise naming it, or drop them and convert the rest."""
    try:
        return convert(table)
    except SchemaValueError:
        pass
    good = []
    for line, text in block.lines():
        try:
            one = parse_line(text)
            convert(one)
        except (SchemaValueError, pa.ArrowInvalid, ValueError) as exc:
            problems.bad(line, str(exc))
            continue
        good.append(one)
    if not good:
        return None
    return convert(pa.concat_tables(good, promote_options="permissive"))
