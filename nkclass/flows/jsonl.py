"""JSON Lines flow logs: Zeek conn.log (JSON), pmacct and GoFlow2.

Field mapping, source key -> canonical column:

* Zeek conn.log: ts -> ts_start (epoch seconds or ISO text), ts + duration ->
  ts_end, id.orig_h / id.resp_h -> src_ip / dst_ip, id.orig_p / id.resp_p ->
  ports, proto (tcp/udp/icmp) -> protocol, orig_pkts + resp_pkts -> packets,
  orig_ip_bytes + resp_ip_bytes -> bytes, history (S h A D F R) -> tcp_flags,
  service -> app_hint.
* pmacct (print plugin): timestamp_start / timestamp_end (or stamp_inserted /
  stamp_updated), ip_src / ip_dst, port_src / port_dst, ip_proto (name or
  number), packets and bytes times sampling_rate, tcp_flags, as_src / as_dst.
* GoFlow2 v2: time_flow_start_ns / time_flow_end_ns, src_addr / dst_addr,
  src_port / dst_port, proto (name or number), packets and bytes times
  sampling_rate, tcp_flags, src_as / dst_as. GoFlow2 v1's CamelCase keys
  (TimeFlowStart in seconds, SrcAddr, SamplingRate, TCPFlags, SrcAS...) too.

A sampling rate of 0 or absent means unsampled (x1).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from nkclass.errors import SchemaValueError
from nkclass.flows.stats import ReadStats
from nkclass.flows.text import (
    Block,
    Problems,
    address_column,
    canonical_batch,
    line_blocks,
    protocol_column,
    timestamp_column,
    unsigned_column,
)

Converter = Callable[[pa.Table], pa.RecordBatch]

# Zeek's conn.log `history`: S/s SYN, H/h SYN-ACK, A/a ACK, D/d data (PSH
# set on data segments in practice), F/f FIN, R/r RST (upper case = originator).
HISTORY_FLAGS = {"s": 0x02, "h": 0x12, "a": 0x10, "d": 0x08, "f": 0x01, "r": 0x04}


def history_flags(history: pa.Array) -> pa.Array:
    text = pc.utf8_lower(pc.fill_null(history.cast(pa.string()), ""))
    out = np.zeros(len(text), np.uint8)
    for letter, bits in HISTORY_FLAGS.items():
        out |= np.where(pc.match_substring(text, letter).to_numpy(zero_copy_only=False), bits, 0
                        ).astype(np.uint8)
    return pa.array(out, pa.uint8())


def _get(table: pa.Table, *names: str, required: bool = True) -> pa.Array | None:
    for name in names:
        if name in table.column_names:
            col = table.column(name).combine_chunks()
            if col.null_count:
                if not required:
                    return col
                row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
                raise SchemaValueError(f"field {name!r}: row {row} is missing")
            return col
    if required:
        raise SchemaValueError(f"field {' or '.join(repr(n) for n in names)} is missing")
    return None


def _zero_filled(col: pa.Array) -> pa.Array:
    """Missing counters count as zero (in whatever type the field came as)."""
    if not col.null_count:
        return col
    return pc.fill_null(col, "0" if pa.types.is_string(col.type) else 0)


def _count(table: pa.Table, *names: str) -> np.ndarray:
    col = _get(table, *names, required=False)
    if col is None:
        return np.zeros(table.num_rows, np.uint64)
    return unsigned_column(_zero_filled(col), names[0], pa.uint64()).to_numpy()


def _sampled(table: pa.Table, values: np.ndarray, *rate_names: str) -> pa.Array:
    rate = _count(table, *rate_names)
    return pa.array(values * np.where(rate == 0, 1, rate), pa.uint64())


def zeek_convert(table: pa.Table) -> pa.RecordBatch:
    ts = _get(table, "ts")
    start = timestamp_column(ts, "ts")
    duration = _get(table, "duration", required=False)
    dur_ms = (np.zeros(table.num_rows) if duration is None else
              np.nan_to_num(pc.cast(duration, pa.float64()).to_numpy(zero_copy_only=False)) * 1000)
    end = pa.array(start.cast(pa.int64()).to_numpy() + np.round(dur_ms).astype(np.int64)
                   ).cast(start.type)
    out = {
        "ts_start": start,
        "ts_end": end,
        "src_ip": address_column(_get(table, "id.orig_h"), "id.orig_h"),
        "dst_ip": address_column(_get(table, "id.resp_h"), "id.resp_h"),
        "src_port": unsigned_column(_get(table, "id.orig_p"), "id.orig_p", pa.uint16()),
        "dst_port": unsigned_column(_get(table, "id.resp_p"), "id.resp_p", pa.uint16()),
        "protocol": protocol_column(_get(table, "proto"), "proto"),
        "packets": pa.array(_count(table, "orig_pkts") + _count(table, "resp_pkts")),
        "bytes": pa.array(_count(table, "orig_ip_bytes") + _count(table, "resp_ip_bytes")),
    }
    history = _get(table, "history", required=False)
    if history is not None:
        out["tcp_flags"] = history_flags(history)
    service = _get(table, "service", required=False)
    if service is not None:
        out["app_hint"] = service.cast(pa.string())
    return canonical_batch(out)


def pmacct_convert(table: pa.Table) -> pa.RecordBatch:
    start = _get(table, "timestamp_start", "stamp_inserted")
    end = _get(table, "timestamp_end", "stamp_updated", required=False)
    if end is None:
        end = start
    elif pa.types.is_string(end.type) and pa.types.is_string(start.type):
        # pmacct prints an unknown end as "0000-00-00 00:00:00.000000".
        end = pc.if_else(pc.starts_with(end, "0000-00-00"), start, end)
    out = {
        "ts_start": timestamp_column(start, "timestamp_start"),
        "ts_end": timestamp_column(end, "timestamp_end"),
        "src_ip": address_column(_get(table, "ip_src"), "ip_src"),
        "dst_ip": address_column(_get(table, "ip_dst"), "ip_dst"),
        "src_port": unsigned_column(_get(table, "port_src"), "port_src", pa.uint16()),
        "dst_port": unsigned_column(_get(table, "port_dst"), "port_dst", pa.uint16()),
        "protocol": protocol_column(_get(table, "ip_proto"), "ip_proto"),
        "packets": _sampled(table, _count(table, "packets"), "sampling_rate"),
        "bytes": _sampled(table, _count(table, "bytes"), "sampling_rate"),
    }
    _optional(table, out, "tcp_flags", pa.uint8(), "tcp_flags")
    _optional(table, out, "src_as", pa.uint32(), "as_src")
    _optional(table, out, "dst_as", pa.uint32(), "as_dst")
    return canonical_batch(out)


def goflow2_convert(table: pa.Table) -> pa.RecordBatch:
    if "time_flow_start_ns" in table.column_names:
        start = timestamp_column(_get(table, "time_flow_start_ns"), "time_flow_start_ns", "ns")
        end = timestamp_column(_get(table, "time_flow_end_ns"), "time_flow_end_ns", "ns")
    else:  # GoFlow2 v1: seconds
        start = timestamp_column(_get(table, "TimeFlowStart"), "TimeFlowStart", "s")
        end = timestamp_column(_get(table, "TimeFlowEnd"), "TimeFlowEnd", "s")
    out = {
        "ts_start": start,
        "ts_end": end,
        "src_ip": address_column(_get(table, "src_addr", "SrcAddr"), "src_addr"),
        "dst_ip": address_column(_get(table, "dst_addr", "DstAddr"), "dst_addr"),
        "src_port": unsigned_column(_get(table, "src_port", "SrcPort"), "src_port", pa.uint16()),
        "dst_port": unsigned_column(_get(table, "dst_port", "DstPort"), "dst_port", pa.uint16()),
        "protocol": protocol_column(_get(table, "proto", "Proto"), "proto"),
        "packets": _sampled(table, _count(table, "packets", "Packets"), "sampling_rate",
                            "SamplingRate"),
        "bytes": _sampled(table, _count(table, "bytes", "Bytes"), "sampling_rate", "SamplingRate"),
    }
    _optional(table, out, "tcp_flags", pa.uint8(), "tcp_flags", "TCPFlags")
    _optional(table, out, "src_as", pa.uint32(), "src_as", "SrcAS")
    _optional(table, out, "dst_as", pa.uint32(), "dst_as", "DstAS")
    return canonical_batch(out)


def _optional(table: pa.Table, out: dict, column: str, dtype: pa.DataType, *names: str) -> None:
    col = _get(table, *names, required=False)
    if col is not None:
        out[column] = unsigned_column(_zero_filled(col), names[0], dtype)


@dataclass(frozen=True)
class Dialect:
    name: str
    convert: Converter
    marker_keys: tuple[str, ...]  # keys whose presence identifies the dialect


DIALECTS = {
    "zeek-json": Dialect("zeek-json", zeek_convert, ("id.orig_h",)),
    "pmacct-json": Dialect("pmacct-json", pmacct_convert, ("ip_src",)),
    "goflow2-json": Dialect("goflow2-json", goflow2_convert,
                            ("src_addr", "SrcAddr", "time_flow_start_ns")),
}


def sniff_dialect(first_line: bytes) -> str | None:
    """The dialect a JSON object line belongs to, by its keys."""
    try:
        obj = json.loads(first_line)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    for dialect in DIALECTS.values():
        if any(k in obj for k in dialect.marker_keys):
            return dialect.name
    return None


class JsonLinesReader:
    """Streams canonical batches from one JSON Lines flow log."""

    def __init__(self, path: str, dialect: str, batch_size: int = 65536,
                 errors: str = "raise") -> None:
        self.path = str(path)
        self.format = dialect
        self.dialect = DIALECTS[dialect]
        self.batch_size = batch_size
        self.stats = ReadStats(files=[self.path])
        self.problems = Problems(self.path, errors, self.stats)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for block in line_blocks(self.path):
            if not block.data.strip():
                continue
            batch = self._parse(block)
            if batch is None or not batch.num_rows:
                continue
            self.stats.records += batch.num_rows
            for start in range(0, batch.num_rows, self.batch_size):
                yield batch.slice(start, self.batch_size)

    def _parse(self, block: Block) -> pa.RecordBatch | None:
        try:
            table = pajson.read_json(io.BytesIO(block.data),
                                     read_options=pajson.ReadOptions(block_size=1 << 26))
            return self.dialect.convert(table)
        except (pa.ArrowInvalid, pa.ArrowTypeError, SchemaValueError):
            return self._parse_lines(block)

    def _parse_lines(self, block: Block) -> pa.RecordBatch | None:
        """Slow path: decode line by line to name (or drop) the bad lines."""
        rows = []
        for line, text in block.lines():
            try:
                obj = json.loads(text)
                if not isinstance(obj, dict):
                    raise ValueError("not a JSON object")
                self.dialect.convert(pa.Table.from_pylist([obj]))
            except (ValueError, pa.ArrowInvalid, pa.ArrowTypeError, SchemaValueError) as exc:
                self.problems.bad(line, f"invalid {self.format} record: {exc}")
                continue
            rows.append(obj)
        if not rows:
            return None
        try:
            return self.dialect.convert(pa.Table.from_pylist(rows))
        except (pa.ArrowInvalid, pa.ArrowTypeError, SchemaValueError):
            # Values differ in JSON type between lines (a port as 80 and "80"):
            # convert each line and concatenate the canonical results.
            tables = [pa.Table.from_batches([self.dialect.convert(pa.Table.from_pylist([r]))])
                      for r in rows]
            merged = pa.concat_tables(tables, promote_options="permissive")
            return merged.combine_chunks().to_batches()[0]
