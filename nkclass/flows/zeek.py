"""Zeek conn.log, in Zeek's TSV format (the JSON form reads through
:mod:`nkclass.flows.jsonl` with the same field mapping).

Field mapping: ts -> ts_start, ts + duration -> ts_end, id.orig_h /
id.resp_h -> src_ip / dst_ip, id.orig_p / id.resp_p -> ports, proto
(tcp/udp/icmp) -> protocol, orig_pkts + resp_pkts -> packets,
orig_ip_bytes + resp_ip_bytes -> bytes, history (S h A D F R) -> tcp_flags,
service -> app_hint.

In TSV the ``#fields`` header names the columns (a later header, as in
concatenated logs, takes over from its line on); ``-`` (unset) and
``(empty)`` fields are nulls; ``#`` lines are not records.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nkclass.errors import InputError
from nkclass.flows.convert import (
    address_column,
    canonical_batch,
    checked_sum,
    checked_text,
    counter_column,
    duration_ms,
    end_after,
    field,
    is_text,
    port_column,
    protocol_column,
    timestamp_column,
)
from nkclass.flows.text import UTF8_BOM, Block, TextReader, read_csv_block

# Zeek's conn.log `history`: S/s SYN, H/h SYN-ACK, A/a ACK, D/d data (PSH
# set on data segments in practice), F/f FIN, R/r RST (upper case = originator).
HISTORY_FLAGS = {"s": 0x02, "h": 0x12, "a": 0x10, "d": 0x08, "f": 0x01, "r": 0x04}
FIELDS = ("ts", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "duration",
          "orig_pkts", "resp_pkts", "orig_ip_bytes", "resp_ip_bytes", "history", "service")
REQUIRED_FIELDS = ("ts", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto")
# What pyarrow converts while parsing TSV (the fast path); a block it refuses
# is parsed again as text, which the converters check and name.
TYPED = {"ts": pa.float64(), "duration": pa.float64(), "id.orig_p": pa.uint16(),
         "id.resp_p": pa.uint16(), "orig_pkts": pa.uint64(), "resp_pkts": pa.uint64(),
         "orig_ip_bytes": pa.uint64(), "resp_ip_bytes": pa.uint64()}


def history_flags(history: pa.Array) -> pa.Array:
    text = pc.utf8_lower(pc.fill_null(history.cast(pa.string()), ""))
    out = np.zeros(len(text), np.uint8)
    for letter, bits in HISTORY_FLAGS.items():
        out |= np.where(pc.match_substring(text, letter).to_numpy(zero_copy_only=False), bits, 0
                        ).astype(np.uint8)
    return pa.array(out, pa.uint8())


def zeek_convert(table: pa.Table) -> pa.RecordBatch:
    """A parsed conn.log (TSV or JSON) as a canonical batch."""
    n = table.num_rows
    start = timestamp_column(field(table, "ts"), "ts")
    duration = duration_ms(field(table, "duration", required=False), "duration", n)
    count = lambda name: counter_column(field(table, name, required=False), name, n)  # noqa: E731
    out = {
        "ts_start": start,
        "ts_end": end_after(start, duration, "duration"),
        "src_ip": address_column(field(table, "id.orig_h"), "id.orig_h"),
        "dst_ip": address_column(field(table, "id.resp_h"), "id.resp_h"),
        "src_port": port_column(field(table, "id.orig_p"), "id.orig_p"),
        "dst_port": port_column(field(table, "id.resp_p"), "id.resp_p"),
        "protocol": protocol_column(field(table, "proto"), "proto"),
        "packets": pa.array(checked_sum(count("orig_pkts"), count("resp_pkts"),
                                        "orig_pkts+resp_pkts")),
        "bytes": pa.array(checked_sum(count("orig_ip_bytes"), count("resp_ip_bytes"),
                                      "orig_ip_bytes+resp_ip_bytes")),
    }
    history = field(table, "history", required=False)
    if history is not None:
        out["tcp_flags"] = history_flags(history)
    service = field(table, "service", required=False)
    if service is not None:
        service = service.cast(pa.string())
        out["app_hint"] = checked_text(service, "service") if is_text(service) else service
    return canonical_batch(out)


@dataclass
class Header:
    """The TSV header lines in force (``fields`` None before #fields)."""

    fields: tuple[str, ...] | None = None
    unset: str = "-"
    empty: str = "(empty)"

    def update(self, line: bytes, path: str, number: int) -> Header:
        """The header after one ``#`` line."""
        key, _, value = line.rstrip(b"\r").decode("utf-8", "replace").partition("\t")
        if key == "#fields":
            fields = tuple(value.split("\t"))
            missing = [f for f in REQUIRED_FIELDS if f not in fields]
            if missing:
                raise InputError(f"not a conn.log: #fields has no {', '.join(missing)}", path,
                                 number)
            return Header(fields, self.unset, self.empty)
        if key == "#unset_field":
            return Header(self.fields, value, self.empty)
        if key == "#empty_field":
            return Header(self.fields, self.unset, value)
        return self


def _comment_lines(data: bytes) -> Iterator[int]:
    """Offsets of the lines that start with '#'."""
    if data.startswith(b"#"):
        yield 0
    pos = data.find(b"\n#")
    while pos >= 0:
        yield pos + 1
        pos = data.find(b"\n#", pos + 1)


class ZeekTsvReader(TextReader):
    """Zeek conn.log in TSV."""

    format = "zeek-tsv"

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        return head.removeprefix(UTF8_BOM).lstrip().startswith((b"#separator", b"#fields"))

    def _blocks(self, blocks: Iterator[Block]) -> Iterator[Block]:
        header = Header()
        for block in blocks:
            data, start = block.data, 0
            for pos in _comment_lines(data):
                if pos > start:
                    yield self._records(block, start, pos, header)
                end = data.find(b"\n", pos)
                end = len(data) if end < 0 else end
                header = header.update(data[pos:end], self.path, block.line_at(pos))
                start = end + 1
            if start < len(data):
                yield self._records(block, start, len(data), header)

    def _records(self, block: Block, start: int, end: int, header: Header) -> Block:
        part = Block(block.data[start:end], block.line_at(start), header)
        if header.fields is None and part.data.strip():
            blank = len(part.data) - len(part.data.lstrip(b"\r\n"))
            raise InputError("not a Zeek TSV log: no #fields header before the data", self.path,
                             part.line_at(blank))
        return part

    def _table(self, block: Block, typed: bool) -> pa.Table:
        header = block.context
        assert isinstance(header, Header) and header.fields is not None
        used = [f for f in FIELDS if f in header.fields]
        types = {f: TYPED.get(f, pa.string()) if typed else pa.string() for f in used}
        return read_csv_block(block.data, list(header.fields), used, types, "\t",
                              null_values=[header.unset, header.empty])

    _convert = staticmethod(zeek_convert)
