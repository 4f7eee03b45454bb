"""Column converters from parsed input to the canonical schema, vectorised
and range-checked: a value that does not fit is a
:class:`~nkclass.errors.SchemaValueError` naming the column, row and value,
never a wrapped, cast or truncated number.

* counters are unsigned 64-bit, also after summing (``checked_sum``) and
  after scaling by a sampling rate (``checked_scale``);
* ports, protocols, AS numbers and flags fit their types; a port written
  ``443.7`` is refused;
* times lie between 1970-01-01 and 2262-04-11 (what nanosecond timestamps,
  as pandas and numpy use, can hold), durations are finite and not
  negative, and a flow never ends before it starts;
* address text is strict (see :mod:`nkclass.addresses`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nkclass.addresses import parse_addresses, to_ipv6_rows
from nkclass.errors import SchemaTypeError, SchemaValueError, describe
from nkclass.flows.schema import ADDRESS, ALL_FIELDS, TIMESTAMP

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
ICMP_PROTOCOLS = (1, 58)
_PROTOCOL_NAMES = pa.array([*PROTOCOL_NUMBERS, *(n.upper() for n in PROTOCOL_NUMBERS)])
_PROTOCOL_CODES = pa.array([*PROTOCOL_NUMBERS.values()] * 2, pa.uint8())
#: Latest time a flow may carry, in ms since the epoch (int64 nanoseconds' end).
MAX_TIME_MS = (2**63 - 1) // 1_000_000
UINT64_MAX = 2**64 - 1
#: Floating-point numbers hold integers exactly only below this.
EXACT_FLOAT_LIMIT = 2**53
_SCALE_TO_MS = {"s": 1000, "ms": 1, "us": 1e-3, "ns": 1e-6}


def is_text(arr: pa.Array) -> bool:
    return pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)


def value_at(arr: pa.Array, row: int) -> str:
    """A short, printable form of one value, also for invalid UTF-8."""
    if is_text(arr) or pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
        raw = arr.cast(pa.large_binary())[row].as_py()
        if raw is None:
            return "null"
        return describe(raw.decode("utf-8", "backslashreplace"))
    return describe(arr[row].as_py())


def bad_value(column: str, arr: pa.Array, row: int, expected: str) -> SchemaValueError:
    return SchemaValueError(
        f"column {column!r}: row {row} is {value_at(arr, row)}, expected {expected}"
    )


def first_bad_row(arr: pa.Array, check: Callable[[pa.Array], object]) -> int:
    """The first row on which ``check`` (a vectorised conversion that fails
    when any row is bad) fails, by halving: O(n) work in all."""
    lo, hi = 0, len(arr)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            check(arr.slice(lo, mid - lo))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, SchemaValueError):
            hi = mid
        else:
            lo = mid
    return lo


def _first(mask: np.ndarray) -> int | None:
    rows = np.flatnonzero(mask)
    return int(rows[0]) if len(rows) else None


def _no_nulls(arr: pa.Array, column: str) -> None:
    if arr.null_count:
        row = _first(arr.is_null().to_numpy(zero_copy_only=False))
        raise SchemaValueError(f"column {column!r}: row {row} is missing")


def field(table: pa.Table, *names: str, required: bool = True) -> pa.Array | None:
    """The first of ``names`` a parsed table has, as one array; None when
    it has none of them (an error when ``required``)."""
    for name in names:
        if name in table.column_names:
            return table.column(name).combine_chunks()
    if required:
        raise SchemaValueError(f"field {' or '.join(repr(n) for n in names)} is missing")
    return None


def _texts(arr: pa.Array) -> pa.Array:
    return arr if is_text(arr) else arr.cast(pa.string())


# ------------------------------------------------------------------ addresses


def address_column(arr: pa.Array, column: str) -> pa.Array:
    """Address text as canonical 16-byte binary (IPv4 mapped)."""
    if not is_text(arr):
        raise SchemaValueError(f"column {column!r}: expected address text, got {arr.type}")
    rows = parse_addresses(arr, column)
    if rows.dtype == np.uint32:
        rows = to_ipv6_rows(rows)
    return pa.FixedSizeBinaryArray.from_buffers(ADDRESS, len(rows), [None, pa.py_buffer(rows)])


# ------------------------------------------------------------------- integers


def _out_of_range(column: str, arr: pa.Array, row: int, limit: int) -> SchemaValueError:
    return SchemaValueError(
        f"column {column!r}: row {row} is {value_at(arr, row)}, outside 0..{limit}")


def unsigned_column(arr: pa.Array, column: str, dtype: pa.DataType) -> pa.Array:
    """Integers, integer text or whole floating-point numbers as ``dtype``,
    checked against its range."""
    _no_nulls(arr, column)
    limit = np.iinfo(dtype.to_pandas_dtype()).max
    if is_text(arr):
        try:  # Arrow's checked cast refuses bad text and overflow
            return arr.cast(dtype)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        arr = pc.utf8_trim_whitespace(arr)
        try:
            return arr.cast(dtype)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            row = first_bad_row(arr, lambda a: a.cast(dtype))
        if pc.match_substring_regex(arr.slice(row, 1), r"^\d+$")[0].as_py():
            raise _out_of_range(column, arr, row, limit)
        raise bad_value(column, arr, row, "a non-negative integer")
    if pa.types.is_floating(arr.type):
        values = arr.to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            not_whole = ~np.isfinite(values) | (values != np.floor(values))
            too_big = values >= min(EXACT_FLOAT_LIMIT, limit + 1)
        row = _first(not_whole | (values < 0) | too_big)
        if row is not None:
            if not_whole[row]:
                raise bad_value(column, arr, row, "a non-negative integer")
            if values[row] >= EXACT_FLOAT_LIMIT:
                raise bad_value(column, arr, row, "an integer below 2**53 (larger "
                                "floating-point numbers are not exact)")
            raise _out_of_range(column, arr, row, limit)
        return pa.array(values.astype(dtype.to_pandas_dtype()), dtype)
    if not pa.types.is_integer(arr.type):
        raise SchemaValueError(f"column {column!r}: expected integers, got {arr.type}")
    if arr.type == dtype:
        return arr
    values = arr.to_numpy(zero_copy_only=False)
    bad = (values < 0) | (values > limit) if values.dtype.kind == "i" else values > limit
    row = _first(bad)
    if row is not None:
        raise _out_of_range(column, arr, row, limit)
    return pa.array(values.astype(dtype.to_pandas_dtype()), dtype)


def zero_filled(arr: pa.Array) -> pa.Array:
    """Missing values as zero (in whatever type the field came as)."""
    if not arr.null_count:
        return arr
    return pc.fill_null(arr, "0" if is_text(arr) else 0)


def counter_column(arr: pa.Array | None, column: str, n: int) -> np.ndarray:
    """A uint64 counter as numpy; absent or missing values count as zero."""
    if arr is None:
        return np.zeros(n, np.uint64)
    return unsigned_column(zero_filled(arr), column, pa.uint64()).to_numpy()


def checked_sum(a: np.ndarray, b: np.ndarray, column: str) -> np.ndarray:
    """a + b for uint64 counters; a sum past 2**64 - 1 is an error."""
    total = a + b
    row = _first(total < a)
    if row is not None:
        raise SchemaValueError(
            f"column {column!r}: row {row} sums to {int(a[row]) + int(b[row])}, "
            f"past the counter limit {UINT64_MAX}"
        )
    return total


def checked_scale(values: np.ndarray, rate: np.ndarray, column: str) -> np.ndarray:
    """Sampled counts times the sampling rate (0 means unsampled, x1); a
    product past 2**64 - 1 is an error."""
    rate = np.where(rate == 0, np.uint64(1), rate)
    row = _first(values > np.uint64(UINT64_MAX) // rate)
    if row is not None:
        raise SchemaValueError(
            f"column {column!r}: row {row} is {int(values[row])} sampled at 1:{int(rate[row])}, "
            f"past the counter limit {UINT64_MAX} when scaled"
        )
    return values * rate


def port_column(arr: pa.Array, column: str, protocol: pa.Array | None = None) -> pa.Array:
    """Ports; ICMP type.code text ("8.0", as nfdump prints it) is port 0 on
    ICMP rows when ``protocol`` is given, an error anywhere else."""
    if protocol is not None and is_text(arr) and pc.any(pc.match_substring(arr, ".")).as_py():
        dotted = pc.fill_null(pc.match_substring_regex(arr, r"^\s*\d{1,3}\.\d{1,3}\s*$"), False)
        if pc.any(dotted).as_py():
            icmp = pc.is_in(protocol, value_set=pa.array(ICMP_PROTOCOLS, protocol.type))
            arr = pc.if_else(pc.and_(dotted, icmp), "0", arr)
    return unsigned_column(arr, column, pa.uint16())


def protocol_column(arr: pa.Array, column: str) -> pa.Array:
    """Protocol numbers, or names (tcp, UDP, icmp, ...) mapped to numbers."""
    _no_nulls(arr, column)
    if not is_text(arr) and not pa.types.is_dictionary(arr.type):
        return unsigned_column(arr, column, pa.uint8())
    named = pc.take(_PROTOCOL_CODES, pc.index_in(_texts(arr), value_set=_PROTOCOL_NAMES))
    if not named.null_count:  # the usual spellings, as they come
        return named
    text = pc.utf8_lower(pc.utf8_trim_whitespace(_texts(arr)))
    named = pc.take(_PROTOCOL_CODES, pc.index_in(text, value_set=_PROTOCOL_NAMES))
    if not named.null_count:
        return named
    numeric = pc.match_substring_regex(text, r"^\d{1,3}$")
    unknown = pc.and_(pc.is_null(named), pc.invert(numeric))
    row = _first(unknown.to_numpy(zero_copy_only=False))
    if row is not None:
        raise bad_value(column, arr, row,
                        f"a protocol number or one of {', '.join(PROTOCOL_NUMBERS)}")
    as_number = unsigned_column(pc.if_else(numeric, text, "0"), column, pa.uint8())
    return pc.if_else(numeric, as_number, named)


# ---------------------------------------------------------------------- times


def _time_text_ns(text: pa.Array) -> pa.Array:
    """ISO-like text ("2019-05-01 10:00:00[.fff]", "T" and a zone allowed;
    UTC without one) as int64 ns; raises ArrowInvalid when a row is not."""
    try:
        return text.cast(pa.timestamp("ns")).cast(pa.int64())
    except pa.ArrowInvalid:
        pass
    try:
        return text.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
    except pa.ArrowInvalid:
        pass
    zoned = pc.match_substring_regex(text, r"(Z|[+-]\d\d:?\d\d)$")
    if not pc.any(zoned).as_py() or pc.all(zoned).as_py():
        raise pa.ArrowInvalid("unparsable time")
    naive = pc.if_else(zoned, "1970-01-01 00:00:00", text).cast(pa.timestamp("ns"))
    aware = pc.if_else(zoned, text, "1970-01-01T00:00:00Z").cast(pa.timestamp("ns", tz="UTC"))
    return pc.if_else(zoned, aware.cast(pa.int64()), naive.cast(pa.int64()))


def _checked_ms(values: np.ndarray, arr: pa.Array, column: str) -> pa.Array:
    row = _first((values < 0) | (values > MAX_TIME_MS))
    if row is not None:
        raise bad_value(column, arr, row, "a time between 1970 and 2262")
    return pa.array(values, pa.int64()).cast(TIMESTAMP)


def timestamp_column(arr: pa.Array, column: str, unit: str = "s") -> pa.Array:
    """Times as timestamp[ms, UTC]. Numbers are epoch values in ``unit``
    (s, ms, us, ns; fractions allowed); text is ISO-like
    "YYYY-MM-DD HH:MM:SS[.fff]", UTC unless it carries a zone."""
    _no_nulls(arr, column)
    if pa.types.is_timestamp(arr.type) and arr.type.unit == "ms":  # check the range only
        low, high = pc.min_max(arr.cast(pa.int64())).values()
        if low.as_py() is None or (low.as_py() >= 0 and high.as_py() <= MAX_TIME_MS):
            return arr if arr.type == TIMESTAMP else arr.cast(pa.int64()).cast(TIMESTAMP)
    if pa.types.is_timestamp(arr.type):
        raw = arr.cast(pa.int64()).to_numpy(zero_copy_only=False)
        if arr.type.unit == "s":
            row = _first((raw < 0) | (raw > MAX_TIME_MS // 1000))
            if row is not None:
                raise bad_value(column, arr, row, "a time between 1970 and 2262")
            return _checked_ms(raw * 1000, arr, column)
        per_ms = {"ms": 1, "us": 1000, "ns": 1_000_000}[arr.type.unit]
        return _checked_ms(raw // per_ms if per_ms > 1 else raw, arr, column)
    if is_text(arr):
        text = pc.utf8_trim_whitespace(arr)
        try:
            ns = _time_text_ns(text)
        except pa.ArrowInvalid:
            numeric = pc.match_substring_regex(text, r"^\d+(\.\d*)?$")
            if pc.all(numeric).as_py():
                return timestamp_column(text.cast(pa.float64()), column, unit)
            row = first_bad_row(text, _time_text_ns)
            raise bad_value(column, arr, row, "a time such as 2019-05-01 10:00:00") from None
        return _checked_ms(np.floor_divide(ns.to_numpy(), 1_000_000), arr, column)
    scale = _SCALE_TO_MS[unit]
    if pa.types.is_floating(arr.type):
        raw = arr.to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(raw) | (raw < 0) | (raw * scale > MAX_TIME_MS)
        row = _first(bad)
        if row is not None:
            raise bad_value(column, arr, row, f"a time in {unit} since 1970, up to 2262")
        return _checked_ms(np.round(raw * scale).astype(np.int64), arr, column)
    if pa.types.is_integer(arr.type):
        raw = arr.to_numpy(zero_copy_only=False)
        limit = MAX_TIME_MS // scale if scale >= 1 else MAX_TIME_MS * round(1 / scale)
        row = _first((raw < 0) | (raw > limit)) if raw.dtype.kind == "i" else _first(raw > limit)
        if row is not None:
            raise bad_value(column, arr, row, f"a time in {unit} since 1970, up to 2262")
        raw = raw.astype(np.int64)
        values = raw * int(scale) if scale >= 1 else raw // round(1 / scale)
        return _checked_ms(values, arr, column)
    raise SchemaValueError(f"column {column!r}: expected times, got {arr.type}")


def duration_ms(arr: pa.Array | None, column: str, n: int) -> np.ndarray:
    """Durations in seconds (numbers or text) as int64 ms; a missing value
    is 0, NaN, infinite, negative or absurdly long ones are errors."""
    if arr is None:
        return np.zeros(n, np.int64)
    arr = zero_filled(arr)
    seconds = arr
    if is_text(arr):
        try:
            seconds = pc.utf8_trim_whitespace(arr).cast(pa.float64())
        except pa.ArrowInvalid:
            row = first_bad_row(arr, lambda a: pc.utf8_trim_whitespace(a).cast(pa.float64()))
            raise bad_value(column, arr, row, "a duration in seconds") from None
    elif not (pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)):
        raise SchemaValueError(f"column {column!r}: expected durations, got {arr.type}")
    values = seconds.cast(pa.float64()).to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | (values < 0) | (values * 1000 > MAX_TIME_MS)
    row = _first(bad)
    if row is not None:
        raise bad_value(column, arr, row, "a finite, non-negative duration in seconds")
    return np.round(values * 1000).astype(np.int64)


def end_after(start: pa.Array, duration: np.ndarray, column: str) -> pa.Array:
    """ts_start + a duration in ms, range-checked."""
    end = start.cast(pa.int64()).to_numpy() + duration
    row = _first(end > MAX_TIME_MS)
    if row is not None:
        raise SchemaValueError(f"column {column!r}: row {row} ends after 2262")
    return pa.array(end, pa.int64()).cast(TIMESTAMP)


def check_time_order(start: pa.Array, end: pa.Array) -> None:
    """A flow may not end before it starts."""
    early = pc.less(end.cast(pa.int64()), start.cast(pa.int64()))
    if pc.any(early).as_py():
        row = _first(early.to_numpy(zero_copy_only=False))
        raise SchemaValueError(
            f"column 'ts_end': row {row} is {end[row]}, before ts_start {start[row]}"
        )


def checked_text(arr: pa.Array, column: str) -> pa.Array:
    """A text column whose bytes must be valid UTF-8 (JSON parsers pass
    invalid bytes through)."""
    try:
        arr.validate(full=True)
    except pa.ArrowInvalid:
        row = first_bad_row(arr, lambda a: a.validate(full=True))
        raise bad_value(column, arr, row, "UTF-8 text") from None
    return arr


# ---------------------------------------------------------------------- batch


def canonical_batch(columns: dict[str, pa.Array], extra: dict[str, pa.Array] | None = None
                    ) -> pa.RecordBatch:
    """A RecordBatch of the canonical fields present in ``columns``, in
    canonical order (readers of flow records give every required one),
    then ``extra`` columns (the labels of classified input, ...) as they
    are. Checks that no flow ends before it starts."""
    if "ts_start" in columns and "ts_end" in columns:
        check_time_order(columns["ts_start"], columns["ts_end"])
    fields = [f for f in ALL_FIELDS.values() if f.name in columns]
    arrays = [columns[f.name].cast(f.type) for f in fields]
    for name, arr in (extra or {}).items():
        fields.append(pa.field(name, arr.type))
        arrays.append(arr)
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


#: Columns a table in nkclass's own layout needs (what classify needs).
CONFORM_NEEDS = ("src_ip", "dst_ip", "src_port", "dst_port", "protocol")
#: Number columns of classified output besides the canonical ones (the
#: classifier's peer AS), typed again when text formats are read back.
CLASSIFIED_INTEGERS = {"peer_as": pa.uint32()}


def missing_columns(names: list[str]) -> list[str]:
    return [c for c in CONFORM_NEEDS if c not in names]


def conform(table: pa.Table | pa.RecordBatch) -> pa.RecordBatch:
    """A table whose columns already carry canonical names (nkclass's own
    outputs; Parquet and Arrow in or near the canonical schema) as a
    canonical batch: addresses as text or 16-byte binary, times as
    timestamps or integer ms, every value range-checked. Other columns
    (labels of classified output, ...) follow as they are."""
    cols = {name: one_array(table.column(name)) for name in table.column_names}
    out: dict[str, pa.Array] = {}
    for name in ("ts_start", "ts_end"):
        if name in cols:
            out[name] = timestamp_column(cols.pop(name), name, "ms")
    for name in ("src_ip", "dst_ip"):
        arr = cols.pop(name)
        if arr.type == ADDRESS:
            _no_nulls(arr, name)
            out[name] = arr
        else:
            out[name] = address_column(arr, name)
    out["protocol"] = protocol_column(cols.pop("protocol"), "protocol")
    for name in ("src_port", "dst_port"):
        out[name] = unsigned_column(cols.pop(name), name, pa.uint16())
    for name in ("packets", "bytes"):
        if name in cols:
            out[name] = unsigned_column(cols.pop(name), name, pa.uint64())
    for name, dtype in (("tcp_flags", pa.uint8()), ("src_as", pa.uint32()),
                        ("dst_as", pa.uint32())):
        if name in cols:
            out[name] = optional_unsigned(cols.pop(name), name, dtype)
    for name in ("src_payload", "dst_payload"):
        if name in cols:
            out[name] = cols.pop(name)
    if "stratum_submits" in cols:
        out["stratum_submits"] = optional_unsigned(
            cols.pop("stratum_submits"), "stratum_submits", pa.uint64()
        )
    if "stratum_difficulty" in cols:
        out["stratum_difficulty"] = difficulty_column(cols.pop("stratum_difficulty"))
    for name in ("app_hint", "tunnel", "stratum_algo"):
        if name in cols:
            arr = cols.pop(name)
            # All null in a text format (no tunnelled flow): nothing to infer a type from.
            if pa.types.is_null(arr.type):
                arr = arr.cast(pa.string())
            out[name] = checked_text(arr, name) if is_text(arr) else arr
    for name, dtype in CLASSIFIED_INTEGERS.items():
        if name in cols:
            cols[name] = optional_unsigned(cols[name], name, dtype)
    return canonical_batch(out, cols)


def difficulty_column(arr: pa.Array) -> pa.Array:
    """``stratum_difficulty`` as float64: positive and finite, or null."""
    column = "stratum_difficulty"
    if pa.types.is_null(arr.type):
        return arr.cast(pa.float64())
    if is_text(arr):
        # text formats: an empty field is a missing difficulty
        text = pc.utf8_trim_whitespace(arr.cast(pa.string()))
        arr = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)

        def parse(part: pa.Array) -> pa.Array:
            return part.cast(pa.float64())

        try:
            arr = parse(arr)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            row = first_bad_row(arr, parse)
            raise bad_value(column, arr, row, "a number") from None
    if not (pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)):
        raise SchemaTypeError(f"column {column!r}: expected numbers, got {arr.type}")
    values = arr.cast(pa.float64())
    bad = pc.invert(pc.fill_null(pc.and_(pc.is_finite(values), pc.greater(values, 0.0)), True))
    if pc.any(bad).as_py():
        row = pc.index(bad, True).as_py()
        raise bad_value(column, values, row, "a positive finite share difficulty or null")
    return values


def optional_unsigned(arr: pa.Array, column: str, dtype: pa.DataType) -> pa.Array:
    """Like :func:`unsigned_column`, keeping nulls (unknown values)."""
    if arr.type == dtype:
        return arr
    if not arr.null_count:
        return unsigned_column(arr, column, dtype)
    valid = pc.is_valid(arr)
    filled = unsigned_column(zero_filled(arr), column, dtype)
    return pc.if_else(valid, filled, pa.scalar(None, dtype))


def one_array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column as one array: a chunked column of one chunk without a
    copy (pyarrow's combine_chunks copies even then)."""
    if isinstance(col, pa.ChunkedArray):
        return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col
