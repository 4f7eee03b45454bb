"""Address columns: text <-> binary conversion, vectorised.

Two binary forms exist: ``uint32`` IPv4 in host order, and ``(n, 16)``
``uint8`` rows in network order holding IPv6 with IPv4 as IPv4-mapped
(``::ffff:a.b.c.d``). Text parsing and formatting run in the Cython decoder
(:mod:`nkclass._columns`) over Arrow string buffers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from nkclass import _columns
from nkclass.errors import SchemaTypeError, SchemaValueError, describe

MAPPED_PREFIX = np.array([0] * 10 + [0xFF, 0xFF], dtype=np.uint8)


def text_array(values: object) -> pa.LargeStringArray:
    """Any sequence of strings (list, numpy, pandas, Arrow) as one Arrow
    large_string array."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        return values.cast(pa.large_string())
    if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
        values = values.to_numpy()  # pandas Series
    return pa.array(values, type=pa.large_string(), from_pandas=True)


def text_buffers(arr: pa.LargeStringArray) -> tuple[np.ndarray, np.ndarray]:
    """(data uint8, offsets int64) of a large_string array, zero-copy."""
    n = len(arr)
    buffers = arr.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64, count=n + 1 + arr.offset)[arr.offset :]
    data = (
        np.frombuffer(buffers[2], dtype=np.uint8)
        if buffers[2] is not None
        else np.zeros(0, np.uint8)
    )
    return data, np.ascontiguousarray(offsets)


def first_null(arr: pa.Array) -> int | None:
    if arr.null_count == 0:
        return None
    return int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])


def _text_without_nulls(values: object, where: str, expected: str):
    """(array, data, offsets) of a text column; a null row is an error."""
    arr = text_array(values)
    bad = first_null(arr)
    if bad is not None:
        raise SchemaValueError(f"{where}: row {bad} is null; expected {expected}")
    return (arr, *text_buffers(arr))


def parse_addresses(values: object, column: str) -> np.ndarray:
    """Parse address text into ``uint32`` (when every address is IPv4) or
    ``(n, 16)`` ``uint8`` rows. Raises SchemaValueError naming the column,
    row and text of the first invalid or missing address."""
    arr, data, offsets = _text_without_nulls(values, f"column {column!r}", "an IP address")
    n = len(arr)
    v4 = np.empty(n, np.uint32)
    v6 = np.empty((n, 16), np.uint8)
    family = np.empty(n, np.uint8)
    bad = _columns.parse_addresses(data, offsets, v4, v6, family)
    if bad >= 0:
        raise SchemaValueError(
            f"column {column!r}: row {bad} is {describe(arr[bad].as_py())}, "
            "expected an IPv4 or IPv6 address"
        )
    is_v6 = family == 6
    if not is_v6.any():
        return v4
    return to_ipv6_rows(v4, where_v4=~is_v6, v6=v6)


def to_ipv6_rows(
    v4: np.ndarray, where_v4: np.ndarray | None = None, v6: np.ndarray | None = None
) -> np.ndarray:
    """IPv4 ``uint32`` as IPv4-mapped rows, merged into ``v6`` where
    ``where_v4`` is true (all rows when v6 is None)."""
    out = np.zeros((len(v4), 16), np.uint8) if v6 is None else v6
    rows = slice(None) if where_v4 is None else where_v4
    out[rows, :12] = MAPPED_PREFIX
    out[rows, 12:] = v4[rows].astype(">u4").view(np.uint8).reshape(-1, 4)
    return out


def format_addresses(addrs: np.ndarray) -> pa.StringArray:
    """Text of uint32 IPv4 or (n, 16) rows (IPv4-mapped rows print as IPv4)."""
    if addrs.dtype == np.uint32:
        return _format_v4(np.ascontiguousarray(addrs))
    rows = np.ascontiguousarray(addrs, dtype=np.uint8).reshape(-1, 16)
    mapped = (rows[:, :12] == MAPPED_PREFIX).all(axis=1)
    if mapped.all():
        return _format_v4(rows[:, 12:].copy().view(">u4").ravel().astype(np.uint32))
    n = len(rows)
    data = np.empty(n * 46, np.uint8)
    offsets = np.empty(n + 1, np.int64)
    used = _columns.format_ipv6_column(rows, data, offsets)
    text6 = _string_array(data[:used], offsets)
    if not mapped.any():
        return text6
    text4 = _format_v4(rows[:, 12:].copy().view(">u4").ravel().astype(np.uint32))
    import pyarrow.compute as pc

    return pc.if_else(pa.array(mapped), text4, text6)


def _format_v4(addrs: np.ndarray) -> pa.StringArray:
    n = len(addrs)
    data = np.empty(n * 15, np.uint8)
    offsets = np.empty(n + 1, np.int64)
    used = _columns.format_ipv4_column(addrs, data, offsets)
    return _string_array(data[:used], offsets)


def _string_array(data: np.ndarray, offsets: np.ndarray) -> pa.StringArray:
    arr = pa.LargeStringArray.from_buffers(
        len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data))
    )
    return arr.cast(pa.string())


@dataclass(frozen=True)
class ParsedPrefixes:
    """Prefix rows split by family, with each row's position in the input."""

    v4_network: np.ndarray  # uint32, host order
    v4_length: np.ndarray  # uint8
    v4_index: np.ndarray  # int64 positions in the input
    v6_network: np.ndarray  # (m, 16) uint8
    v6_length: np.ndarray
    v6_index: np.ndarray


def parse_prefixes(values: Sequence[str] | object, what: str = "prefixes") -> ParsedPrefixes:
    """Parse "address/length" texts (a bare address is a host prefix).
    Raises SchemaValueError naming the row and text of the first bad one;
    host bits are checked later, by the table build."""
    arr, data, offsets = _text_without_nulls(values, what, "a prefix")
    n = len(arr)
    v4 = np.empty(n, np.uint32)
    v6 = np.empty((n, 16), np.uint8)
    length = np.empty(n, np.uint8)
    family = np.empty(n, np.uint8)
    bad = _columns.parse_prefixes(data, offsets, v4, v6, length, family)
    if bad >= 0:
        raise SchemaValueError(
            f"{what}: row {bad} is {describe(arr[bad].as_py())}, "
            "expected an IPv4 or IPv6 prefix such as 175.45.176.0/22"
        )
    is4 = family == 4
    idx4 = np.flatnonzero(is4)
    idx6 = np.flatnonzero(~is4)
    return ParsedPrefixes(
        v4[idx4], length[idx4], idx4, np.ascontiguousarray(v6[idx6]), length[idx6], idx6
    )


def address_rows(arr: np.ndarray, column: str) -> np.ndarray:
    """Validate an IPv6 address column: ``S16``/``V16`` or ``(n, 16)``
    uint8, returned as contiguous ``(n, 16)`` uint8."""
    if arr.dtype.kind in "SV" and arr.dtype.itemsize == 16 and arr.ndim == 1:
        return np.ascontiguousarray(arr).view(np.uint8).reshape(-1, 16)
    if arr.dtype == np.uint8 and arr.ndim == 2 and arr.shape[1] == 16:
        return np.ascontiguousarray(arr)
    raise SchemaTypeError(
        f"column {column!r}: expected uint32 IPv4 addresses or 16-byte IPv6 addresses "
        f"(S16, V16 or (n, 16) uint8); got dtype {arr.dtype} with shape {arr.shape}"
    )


def lookup_native(native: object, arr: np.ndarray, column: str) -> np.ndarray:
    """Labels from a native prefix table for a uint32 IPv4 or a 16-byte
    IPv6 address column (errors name ``column``)."""
    if arr.dtype == np.uint32 and arr.ndim == 1:
        return native.lookup_v4(np.ascontiguousarray(arr))
    return native.lookup_v6(address_rows(arr, column))
