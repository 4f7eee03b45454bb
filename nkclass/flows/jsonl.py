"""JSON Lines flow logs: Zeek conn.log (JSON), pmacct and GoFlow2, and
nkclass's own JSON Lines output.

Field mapping, source key -> canonical column:

* Zeek conn.log: as in :mod:`nkclass.flows.zeek` (``ts`` as epoch seconds
  or ISO text).
* pmacct (print plugin): timestamp_start / timestamp_end (or stamp_inserted /
  stamp_updated), ip_src / ip_dst, port_src / port_dst, ip_proto (name or
  number), packets and bytes times sampling_rate, tcp_flags, as_src / as_dst.
  pmacct prints an unknown end as ``0000-00-00 00:00:00``: the start then.
* GoFlow2 v2: time_flow_start_ns / time_flow_end_ns, src_addr / dst_addr,
  src_port / dst_port, proto (name or number), packets and bytes times
  sampling_rate, tcp_flags, src_as / dst_as. GoFlow2 v1's CamelCase keys
  (TimeFlowStart in seconds, SrcAddr, SamplingRate, TCPFlags, SrcAS...) too.
* nkclass (what ``nkclass.write`` and ``nkclass classify`` write): the
  canonical column names; other keys (the labels) are kept.

A sampling rate of 0 or absent means unsampled (x1). Lines nesting deeper
than :data:`MAX_DEPTH`, or leaving a bracket or string open, are bad lines
before any parser sees them (a parser carries nesting across lines); integers
arrive exactly up to 2**63 - 1 (above that JSON parsers give floating-point
numbers, which counters refuse).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from nkclass import _columns
from nkclass.errors import SchemaValueError
from nkclass.flows.convert import (
    address_column,
    canonical_batch,
    checked_scale,
    checked_text,
    conform,
    counter_column,
    field,
    is_text,
    missing_columns,
    port_column,
    protocol_column,
    timestamp_column,
    unsigned_column,
    zero_filled,
)
from nkclass.flows.schema import TIMESTAMP
from nkclass.flows.text import UTF8_BOM, Block, TextReader
from nkclass.flows.zeek import zeek_convert

#: Deepest JSON nesting accepted (flow logs are flat objects).
MAX_DEPTH = 64
UNSAFE_REASONS = {
    1: f"nested deeper than {MAX_DEPTH} levels",
    2: "not one JSON value: brackets or quotes left open or closed too often",
    3: "more than one JSON value on the line",
}
_JSON_BLOCK = 1 << 26  # one pyarrow block per line block: types inferred once


def _count(table: pa.Table, *names: str) -> np.ndarray:
    return counter_column(field(table, *names, required=False), names[0], table.num_rows)


def _sampled(table: pa.Table, names: tuple[str, ...], rate_names: tuple[str, ...]) -> pa.Array:
    values = _count(table, *names)
    return pa.array(checked_scale(values, _count(table, *rate_names), names[0]), pa.uint64())


def _optional(table: pa.Table, out: dict, column: str, dtype: pa.DataType, *names: str) -> None:
    col = field(table, *names, required=False)
    if col is not None:  # an absent value counts as zero
        out[column] = unsigned_column(zero_filled(col), names[0], dtype)


def pmacct_convert(table: pa.Table) -> pa.RecordBatch:
    start = field(table, "timestamp_start", "stamp_inserted")
    end = field(table, "timestamp_end", "stamp_updated", required=False)
    if end is None:
        end = start
    elif is_text(end) and is_text(start):
        end = pc.if_else(pc.starts_with(end, "0000-00-00"), start, end)
    out = {
        "ts_start": timestamp_column(start, "timestamp_start"),
        "ts_end": timestamp_column(end, "timestamp_end"),
        "src_ip": address_column(field(table, "ip_src"), "ip_src"),
        "dst_ip": address_column(field(table, "ip_dst"), "ip_dst"),
        "src_port": port_column(field(table, "port_src"), "port_src"),
        "dst_port": port_column(field(table, "port_dst"), "port_dst"),
        "protocol": protocol_column(field(table, "ip_proto"), "ip_proto"),
        "packets": _sampled(table, ("packets",), ("sampling_rate",)),
        "bytes": _sampled(table, ("bytes",), ("sampling_rate",)),
    }
    _optional(table, out, "tcp_flags", pa.uint8(), "tcp_flags")
    _optional(table, out, "src_as", pa.uint32(), "as_src")
    _optional(table, out, "dst_as", pa.uint32(), "as_dst")
    return canonical_batch(out)


def goflow2_convert(table: pa.Table) -> pa.RecordBatch:
    if "time_flow_start_ns" in table.column_names:
        start = timestamp_column(field(table, "time_flow_start_ns"), "time_flow_start_ns", "ns")
        end = timestamp_column(field(table, "time_flow_end_ns"), "time_flow_end_ns", "ns")
    else:  # GoFlow2 v1: seconds
        start = timestamp_column(field(table, "TimeFlowStart"), "TimeFlowStart", "s")
        end = timestamp_column(field(table, "TimeFlowEnd"), "TimeFlowEnd", "s")
    rate = ("sampling_rate", "SamplingRate")
    out = {
        "ts_start": start,
        "ts_end": end,
        "src_ip": address_column(field(table, "src_addr", "SrcAddr"), "src_addr"),
        "dst_ip": address_column(field(table, "dst_addr", "DstAddr"), "dst_addr"),
        "src_port": port_column(field(table, "src_port", "SrcPort"), "src_port"),
        "dst_port": port_column(field(table, "dst_port", "DstPort"), "dst_port"),
        "protocol": protocol_column(field(table, "proto", "Proto"), "proto"),
        "packets": _sampled(table, ("packets", "Packets"), rate),
        "bytes": _sampled(table, ("bytes", "Bytes"), rate),
    }
    _optional(table, out, "tcp_flags", pa.uint8(), "tcp_flags", "TCPFlags")
    _optional(table, out, "src_as", pa.uint32(), "src_as", "SrcAS")
    _optional(table, out, "dst_as", pa.uint32(), "dst_as", "DstAS")
    return canonical_batch(out)


def nkclass_convert(table: pa.Table) -> pa.RecordBatch:
    missing = missing_columns(table.column_names)
    if missing:
        raise SchemaValueError(f"field(s) {', '.join(missing)} missing")
    # A typed field absent from every line comes out of the parser as nulls.
    absent = [f.name for f in NkclassJsonReader.explicit
              if table.column(f.name).null_count == table.num_rows]
    return conform(table.drop_columns(absent) if absent else table)


def _markers(*keys: str) -> re.Pattern[bytes]:
    names = b"|".join(re.escape(k.encode()) for k in keys)
    return re.compile(rb'"(?:' + names + rb')"\s*:')


class JsonLinesReader(TextReader):
    """One JSON object per line, in one of the dialects below: each
    subclass names its converter and the keys that identify it."""

    markers: ClassVar[re.Pattern[bytes]]
    #: Types given to the parser first, for fields whose JSON type is known.
    explicit: ClassVar[pa.Schema | None] = None
    typed_first = False

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        first = head.removeprefix(UTF8_BOM).lstrip().split(b"\n", 1)[0]
        return first.startswith(b"{") and cls.markers.search(first) is not None

    def _blocks(self, blocks: Iterator[Block]) -> Iterator[Block]:
        for block in blocks:
            unsafe = _columns.unsafe_json_lines(np.frombuffer(block.data, np.uint8), MAX_DEPTH)
            if not unsafe:
                yield block
                continue
            if self.errors == "raise":  # the lines before it may hold an earlier bad one
                yield Block(block.data[: unsafe[0][0]], block.first_line)
            for start, why in unsafe:
                self.problems.bad(block.line_at(start),
                                  f"invalid {self.format} record: {UNSAFE_REASONS[why]}")
            yield block.blank(start for start, _ in unsafe)

    def _table(self, block: Block, typed: bool) -> pa.Table:
        table = pajson.read_json(
            io.BytesIO(block.data),
            read_options=pajson.ReadOptions(block_size=_JSON_BLOCK),
            parse_options=pajson.ParseOptions(explicit_schema=self.explicit if typed else None))
        for name in table.column_names:  # JSON parsers pass invalid UTF-8 through
            col = table.column(name)
            if is_text(col) and col.num_chunks:
                checked_text(col.combine_chunks(), name)
        return table


class ZeekJsonReader(JsonLinesReader):
    format = "zeek-json"
    _convert = staticmethod(zeek_convert)
    markers = _markers("id.orig_h")


class PmacctJsonReader(JsonLinesReader):
    format = "pmacct-json"
    _convert = staticmethod(pmacct_convert)
    markers = _markers("ip_src")


class Goflow2JsonReader(JsonLinesReader):
    format = "goflow2-json"
    _convert = staticmethod(goflow2_convert)
    markers = _markers("src_addr", "SrcAddr", "time_flow_start_ns")


class NkclassJsonReader(JsonLinesReader):
    """JSON Lines with the canonical column names, as nkclass writes them
    (times as ISO text, addresses as text)."""

    format = "jsonl"
    extensions = (".jsonl", ".ndjson", ".json")
    _convert = staticmethod(nkclass_convert)
    markers = _markers("src_ip")
    typed_first = True
    # Counters exactly up to 2**64 - 1 (inferred JSON integers stop at 2**63 - 1).
    explicit = pa.schema([("ts_start", TIMESTAMP), ("ts_end", TIMESTAMP),
                          ("packets", pa.uint64()), ("bytes", pa.uint64())])
