"""FlowBatch: the one gate between user data and native code.

Every column is checked once here (presence, type, value range, nulls) and
converted to the contiguous fixed-width arrays the native pass reads. Errors
name the column, the row and what was expected; nothing is cast silently
(an int64 port of 70000 is refused, not wrapped).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from nkclass import _columns
from nkclass.addresses import address_rows, parse_addresses
from nkclass.errors import SchemaTypeError, SchemaValueError, describe
from nkclass.flows.convert import one_array

REQUIRED_COLUMNS = ("src_ip", "dst_ip", "src_port", "dst_port", "protocol")
PAYLOAD_COLUMNS = ("src_payload", "dst_payload")
#: Optional measurements: the flow-shape stage needs all five, the pair cache ts_end.
MEASUREMENT_COLUMNS = ("ts_start", "ts_end", "packets", "bytes", "tcp_flags")


@dataclass(frozen=True)
class Bytes:
    """A variable-length bytes column: row i is data[offsets[i]:offsets[i+1]]."""

    data: np.ndarray  # uint8
    offsets: np.ndarray  # int64, n + 1 entries


@dataclass(frozen=True)
class FlowBatch:
    """Validated native-ready columns of one batch, plus the source table."""

    n: int
    src_ip: np.ndarray  # uint32 (IPv4, host order) or (n, 16) uint8
    dst_ip: np.ndarray
    src_port: np.ndarray  # uint16
    dst_port: np.ndarray  # uint16
    protocol: np.ndarray  # uint8
    src_payload: Bytes | None
    dst_payload: Bytes | None
    source: Any  # the caller's object, for output
    ts_start: np.ndarray | None = None  # int64 ms since the epoch, UTC
    ts_end: np.ndarray | None = None
    packets: np.ndarray | None = None  # uint64; 0 where tcp_flags was null
    bytes: np.ndarray | None = None  # uint64
    tcp_flags: np.ndarray | None = None  # uint8, OR over the flow's packets

    @property
    def has_shape_columns(self) -> bool:
        """True when the flow-shape stage can run (all five measurements)."""
        return all(getattr(self, name) is not None for name in MEASUREMENT_COLUMNS)

    def payload_arguments(self) -> dict[str, np.ndarray]:
        """The payload columns as the native passes take them: ``src_payload``
        and ``src_payload_offsets`` (and the same for dst) where present."""
        out = {}
        for name in ("src_payload", "dst_payload"):
            payload = getattr(self, name)
            if payload is not None:
                out[name] = payload.data
                out[f"{name}_offsets"] = payload.offsets
        return out

    @classmethod
    def from_any(cls, batch: object) -> FlowBatch:
        """Validate a mapping of arrays, a pandas DataFrame or a pyarrow
        Table / RecordBatch with the canonical column names."""
        columns = _Columns(batch)
        src = _addresses(columns, "src_ip")
        n = len(src)
        dst = _addresses(columns, "dst_ip")
        _same_length("dst_ip", dst, n)
        src_port = _integers(columns, "src_port", np.uint16, n)
        dst_port = _integers(columns, "dst_port", np.uint16, n)
        protocol = _integers(columns, "protocol", np.uint8, n)
        payloads = [_payload(columns, name, n) for name in PAYLOAD_COLUMNS]
        ts_start = _timestamps(columns, "ts_start", n)
        ts_end = _timestamps(columns, "ts_end", n)
        packets = _optional_integers(columns, "packets", np.uint64, n)
        size = _optional_integers(columns, "bytes", np.uint64, n)
        flags, flag_nulls = _flags(columns, n)
        if flag_nulls is not None and packets is not None:
            # A row without flags cannot be scored: it takes no part in the shape stage.
            packets = np.where(flag_nulls, np.uint64(0), packets)
        return cls(
            n, src, dst, src_port, dst_port, protocol, payloads[0], payloads[1], batch,
            ts_start, ts_end, packets, size, flags,
        )


class _Columns:
    """Uniform column access over the accepted batch types."""

    def __init__(self, batch: object) -> None:
        if isinstance(batch, pa.Table | pa.RecordBatch):
            self.names = set(batch.schema.names)
            self._get = lambda name: batch.column(name)
        elif isinstance(batch, Mapping):
            self.names = set(batch)
            self._get = batch.__getitem__
        elif hasattr(batch, "columns") and hasattr(batch, "__getitem__"):  # pandas
            self.names = {str(c) for c in batch.columns}
            self._get = lambda name: batch[name]
        else:
            raise SchemaTypeError(
                "expected a flow batch: a mapping of column arrays, a pandas DataFrame or a "
                f"pyarrow Table/RecordBatch; got {type(batch).__name__}"
            )

    def has(self, name: str) -> bool:
        return name in self.names

    def get(self, name: str) -> object:
        if name not in self.names:
            missing = [c for c in REQUIRED_COLUMNS if c not in self.names]
            raise SchemaValueError(
                f"missing column {name!r}; a flow batch needs {', '.join(REQUIRED_COLUMNS)} "
                f"(missing: {', '.join(missing)})"
            )
        return one_array(self._get(name))


def _same_length(name: str, arr: np.ndarray, n: int) -> None:
    if len(arr) != n:
        raise SchemaValueError(f"column {name!r} has {len(arr)} rows, but src_ip has {n}")


def _numpy(name: str, value: object) -> np.ndarray:
    """A column as numpy, refusing nulls."""
    if isinstance(value, pa.Array):
        if value.null_count:
            row = int(np.flatnonzero(value.is_null().to_numpy(zero_copy_only=False))[0])
            raise SchemaValueError(f"column {name!r}: row {row} is null")
        if pa.types.is_fixed_size_binary(value.type):
            width = value.type.byte_width
            buf = np.frombuffer(value.buffers()[1], np.uint8)
            return buf[value.offset * width : (value.offset + len(value)) * width].reshape(
                -1, width
            )
        if pa.types.is_string(value.type) or pa.types.is_large_string(value.type):
            return value  # parsed by the caller
        return value.to_numpy(zero_copy_only=False)
    if hasattr(value, "to_numpy") and not isinstance(value, np.ndarray):  # pandas Series
        if value.isna().any():
            row = int(np.flatnonzero(value.isna().to_numpy())[0])
            raise SchemaValueError(f"column {name!r}: row {row} is null")
        value = value.to_numpy()
    return np.asarray(value)


def address_array(raw: object, name: str) -> np.ndarray:
    """An address column (any accepted form) as uint32 or (n, 16) uint8."""
    arr = _numpy(name, raw)
    if isinstance(arr, pa.Array) or arr.dtype.kind in "OUT":
        return parse_addresses(arr, name)
    if arr.dtype.kind in "iu" and arr.ndim == 1:
        if arr.dtype == np.uint32:
            return np.ascontiguousarray(arr)
        _check_range(name, arr, 0, 2**32 - 1, "IPv4 addresses as integers")
        return arr.astype(np.uint32)
    if arr.dtype.kind in "SV" or (arr.dtype == np.uint8 and arr.ndim == 2):
        return narrowed(address_rows(arr, name))
    raise SchemaTypeError(
        f"column {name!r}: expected uint32 IPv4, 16-byte IPv6 (S16/V16/(n,16) uint8) or "
        f"address text; got dtype {arr.dtype}"
    )


def narrowed(rows: np.ndarray) -> np.ndarray:
    """16-byte rows as uint32 IPv4 when every one is IPv4-mapped (readers
    widen IPv4 to that form), so the native pass takes its IPv4 paths;
    else the rows unchanged."""
    if len(rows) == 0:
        return rows
    v4 = np.empty(len(rows), np.uint32)
    return v4 if _columns.narrow_ipv4(rows, v4) else rows


def _addresses(columns: _Columns, name: str) -> np.ndarray:
    return address_array(columns.get(name), name)


def _check_range(name: str, arr: np.ndarray, lo: int, hi: int, what: str) -> None:
    if arr.size == 0:
        return
    bad = (arr < lo) | (arr > hi)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise SchemaValueError(
            f"column {name!r}: row {row} is {describe(arr[row].item())}, outside {lo}..{hi} "
            f"({what})"
        )


def _integers(columns: _Columns, name: str, dtype: type, n: int) -> np.ndarray:
    arr = _numpy(name, columns.get(name))
    if isinstance(arr, pa.Array) or arr.dtype.kind not in "iu" or arr.ndim != 1:
        kind = arr.type if isinstance(arr, pa.Array) else arr.dtype
        raise SchemaTypeError(f"column {name!r}: expected integers, got {kind}")
    _same_length(name, arr, n)
    if arr.dtype != dtype:
        info = np.iinfo(dtype)
        _check_range(name, arr, 0, int(info.max), f"{np.dtype(dtype).name}")
        return arr.astype(dtype)
    return np.ascontiguousarray(arr)


def _timestamps(columns: _Columns, name: str, n: int) -> np.ndarray | None:
    """An optional time column as int64 ms since the epoch: Arrow timestamps
    (any unit), numpy datetime64, or integers already in ms."""
    if not columns.has(name):
        return None
    value = columns.get(name)
    if isinstance(value, pa.Array) and pa.types.is_timestamp(value.type):
        value = value.cast(pa.timestamp("ms", tz=value.type.tz), safe=False).cast(pa.int64())
    arr = _numpy(name, value)
    if isinstance(arr, pa.Array):
        raise SchemaTypeError(f"column {name!r}: expected timestamps, got {arr.type}")
    if arr.dtype.kind == "M":
        if np.isnat(arr).any():
            row = int(np.flatnonzero(np.isnat(arr))[0])
            raise SchemaValueError(f"column {name!r}: row {row} is null")
        arr = arr.astype("datetime64[ms]").view(np.int64)
    elif arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise SchemaTypeError(
            f"column {name!r}: expected timestamps (Arrow timestamp, datetime64 or int64 ms), "
            f"got {arr.dtype}"
        )
    _same_length(name, arr, n)
    if arr.dtype == np.uint64:
        _check_range(name, arr, 0, 2**63 - 1, "ms since the epoch")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _optional_integers(columns: _Columns, name: str, dtype: type, n: int) -> np.ndarray | None:
    if not columns.has(name):
        return None
    return _integers(columns, name, dtype, n)


def _flags(columns: _Columns, n: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """tcp_flags as uint8, and the mask of null rows (None when there are none)."""
    name = "tcp_flags"
    if not columns.has(name):
        return None, None
    value = columns.get(name)
    nulls = None
    if isinstance(value, pa.Array) and value.null_count:
        nulls = value.is_null().to_numpy(zero_copy_only=False)
        value = value.fill_null(0)
    elif hasattr(value, "isna") and not isinstance(value, np.ndarray) and value.isna().any():
        nulls = value.isna().to_numpy()
        value = value.fillna(0).astype("int64")
    arr = _numpy(name, value)
    if isinstance(arr, pa.Array) or arr.dtype.kind not in "iu" or arr.ndim != 1:
        kind = arr.type if isinstance(arr, pa.Array) else arr.dtype
        raise SchemaTypeError(f"column {name!r}: expected integers, got {kind}")
    _same_length(name, arr, n)
    if arr.dtype != np.uint8:
        _check_range(name, arr, 0, 255, "TCP flag bits")
        arr = arr.astype(np.uint8)
    return np.ascontiguousarray(arr), nulls


def _payload(columns: _Columns, name: str, n: int) -> Bytes | None:
    """Payload prefixes as (data, offsets); a null row means no payload."""
    if not columns.has(name):
        return None
    value = columns.get(name)
    if not isinstance(value, pa.Array):
        if hasattr(value, "to_numpy") and not isinstance(value, np.ndarray):
            value = value.to_numpy()
        try:
            value = pa.array(value, type=pa.large_binary(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise SchemaTypeError(f"column {name!r}: expected bytes per row ({exc})") from None
    if not (pa.types.is_binary(value.type) or pa.types.is_large_binary(value.type)):
        raise SchemaTypeError(f"column {name!r}: expected binary, got {value.type}")
    if len(value) != n:
        raise SchemaValueError(f"column {name!r} has {len(value)} rows, but src_ip has {n}")
    value = value.cast(pa.large_binary())
    if value.null_count:
        value = value.fill_null(b"")
    buffers = value.buffers()
    offsets = np.frombuffer(buffers[1], np.int64, count=n + 1 + value.offset)[value.offset :]
    data = np.frombuffer(buffers[2], np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
    return Bytes(data, np.ascontiguousarray(offsets))
