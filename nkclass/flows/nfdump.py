"""nfdump CSV (``nfdump -r FILE -o csv``, with or without ``-q``).

nfdump prints times in the local time zone of the machine running it; run it
with ``TZ=UTC`` so the times read here are UTC. The trailing ``Summary``
block is ignored. Packets and bytes are the input plus output counters.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from nkclass.errors import InputError, SchemaValueError
from nkclass.flows.stats import ReadStats
from nkclass.flows.text import (
    Block,
    Problems,
    address_column,
    canonical_batch,
    line_blocks,
    protocol_column,
    split_first_line,
    timestamp_column,
    unsigned_column,
)

# nfdump 1.7's CSV header; `-q` drops the header line, so this is the default.
DEFAULT_HEADER = (
    "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt,in,out,sas,das,smk,dmk,dtos,dir,"
    "nh,nhb,svln,dvln,ismc,odmc,idmc,osmc,mpls1,mpls2,mpls3,mpls4,mpls5,mpls6,mpls7,mpls8,mpls9,"
    "mpls10,cl,sl,al,ra,eng,exid,tr"
).split(",")
NEEDED = ("ts", "te", "sa", "da", "sp", "dp", "pr", "ipkt", "ibyt")
OPTIONAL = ("opkt", "obyt", "flg", "sas", "das")
# Types pyarrow can convert while parsing (the fast path); anything it
# refuses sends the block to the all-text path, which names the bad line.
TYPED = {"ts": pa.timestamp("ms"), "te": pa.timestamp("ms"), "ipkt": pa.uint64(),
         "ibyt": pa.uint64(), "opkt": pa.uint64(), "obyt": pa.uint64(), "sas": pa.uint32(),
         "das": pa.uint32()}
SUMMARY = b"Summary"


def tcp_flags(text: pa.Array) -> pa.Array:
    """nfdump flag strings ("...AP.SF", flags in CEUAPRSF order, '.' when
    unset) as the TCP flags byte."""
    if (pa.types.is_string(text.type) and len(text) and not text.null_count
            and pc.all(pc.equal(pc.utf8_length(text), 8)).as_py()):
        # nfdump 1.7 always writes 8 characters: read them off the buffer
        data = np.frombuffer(text.buffers()[2], np.uint8)
        start = np.frombuffer(text.buffers()[1], np.int32)[text.offset]
        chars = data[start : start + 8 * len(text)].reshape(-1, 8)
        bits = (chars != ord(".")) & (chars != ord("0"))
        weights = np.array([128, 64, 32, 16, 8, 4, 2, 1], np.uint8)
        return pa.array((bits * weights).sum(axis=1).astype(np.uint8), pa.uint8())
    raw = text.to_numpy(zero_copy_only=False).astype("U8")
    padded = np.char.rjust(np.char.strip(raw), 8, ".")
    chars = padded.view("U1").reshape(-1, 8) if len(padded) else np.zeros((0, 8), "U1")
    bits = (chars != ".") & (chars != "") & (chars != "0")
    weights = np.array([128, 64, 32, 16, 8, 4, 2, 1], np.uint8)
    return pa.array((bits * weights).sum(axis=1).astype(np.uint8), pa.uint8())


def _convert(table: pa.Table) -> pa.RecordBatch:
    col = {name: table.column(name).combine_chunks() for name in table.column_names}
    packets = unsigned_column(col["ipkt"], "ipkt", pa.uint64())
    nbytes = unsigned_column(col["ibyt"], "ibyt", pa.uint64())
    if "opkt" in col:
        packets = pa.array(
            packets.to_numpy() + unsigned_column(col["opkt"], "opkt", pa.uint64()).to_numpy()
        )
    if "obyt" in col:
        nbytes = pa.array(
            nbytes.to_numpy() + unsigned_column(col["obyt"], "obyt", pa.uint64()).to_numpy()
        )
    out = {
        "ts_start": timestamp_column(col["ts"], "ts"),
        "ts_end": timestamp_column(col["te"], "te"),
        "src_ip": address_column(col["sa"], "sa"),
        "dst_ip": address_column(col["da"], "da"),
        "src_port": unsigned_column(_port_text(col["sp"]), "sp", pa.uint16()),
        "dst_port": unsigned_column(_port_text(col["dp"]), "dp", pa.uint16()),
        "protocol": protocol_column(col["pr"], "pr"),
        "packets": packets,
        "bytes": nbytes,
    }
    if "flg" in col:
        out["tcp_flags"] = tcp_flags(col["flg"])
    if "sas" in col:
        out["src_as"] = unsigned_column(col["sas"], "sas", pa.uint32())
    if "das" in col:
        out["dst_as"] = unsigned_column(col["das"], "das", pa.uint32())
    return canonical_batch(out)


def _port_text(arr: pa.Array) -> pa.Array:
    # ICMP flows print the port as "0" or as type.code ("8.0"); ports are 0 then.
    if not pc.any(pc.match_substring(arr, ".")).as_py():
        return arr
    return pc.if_else(pc.match_substring(arr, "."), "0", arr)


class NfdumpCsvReader:
    """Streams canonical batches from one nfdump CSV file."""

    format = "nfdump-csv"

    def __init__(self, path: str, batch_size: int = 65536, errors: str = "raise") -> None:
        self.path = str(path)
        self.batch_size = batch_size
        self.stats = ReadStats(files=[self.path])
        self.problems = Problems(self.path, errors, self.stats)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        header: list[str] | None = None
        for block in line_blocks(self.path):
            if header is None:
                first, rest = split_first_line(block)
                if first.startswith(b"ts,"):
                    header = [h.strip() for h in first.decode("utf-8", "replace").split(",")]
                    block = rest
                else:
                    header = DEFAULT_HEADER
                missing = [c for c in NEEDED if c not in header]
                if missing:
                    raise InputError(
                        f"not nfdump CSV: no column(s) {', '.join(missing)} in the header",
                        self.path,
                        1,
                    )
            block, done = _cut_summary(block)
            if block.data and not block.data.isspace():
                batch = self._parse(block, header)
                if batch is not None and batch.num_rows:
                    self.stats.records += batch.num_rows
                    for start in range(0, batch.num_rows, self.batch_size):
                        yield batch.slice(start, self.batch_size)
            if done:
                return

    def _parse(self, block: Block, header: list[str]) -> pa.RecordBatch | None:
        used = [c for c in (*NEEDED, *OPTIONAL) if c in header]
        bad_lines: list[tuple[int, str]] = []

        def on_invalid(row) -> str:
            line = block.first_line + (row.number - 1 if row.number is not None else 0)
            bad_lines.append(
                (line, f"expected {row.expected_columns} columns, got {row.actual_columns}")
            )
            return "skip"

        def parse(data: bytes, numbered: bool = False, typed: bool = False) -> pa.Table:
            types = {c: TYPED.get(c, pa.string()) if typed else pa.string() for c in used}
            return pacsv.read_csv(
                io.BytesIO(data),
                read_options=pacsv.ReadOptions(
                    column_names=header, block_size=1 << 22, use_threads=numbered is False
                ),
                parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
                convert_options=pacsv.ConvertOptions(
                    include_columns=used, column_types=types, strings_can_be_null=False
                ),
            )

        try:
            table = parse(block.data, typed=True)
            if not bad_lines:
                return _convert(table)
        except (pa.ArrowInvalid, SchemaValueError):
            pass
        bad_lines.clear()
        table = parse(block.data)
        if bad_lines:  # parse again on one thread: only then does pyarrow number rows
            bad_lines.clear()
            table = parse(block.data, numbered=True)
        for line, reason in bad_lines:
            self.problems.bad(line, reason)
        if bad_lines:  # rows shifted: re-parse the surviving lines one by one below
            return _convert_lines(block, parse, self.problems, skip={ln for ln, _ in bad_lines})
        try:
            return _convert(table)
        except SchemaValueError:
            return _convert_lines(block, parse, self.problems)


def _convert_lines(block: Block, parse, problems: Problems, skip=frozenset()):
    """Slow path: convert line by line to name (or drop) the bad ones."""
    good = []
    for line, text in block.lines():
        if line in skip:
            continue
        try:
            batch = _convert(parse(text + b"\n"))
        except (SchemaValueError, pa.ArrowInvalid) as exc:
            problems.bad(line, str(exc).replace("row 0 is", "value"))
            continue
        good.append(batch)
    if not good:
        return None
    return pa.Table.from_batches(good).combine_chunks().to_batches()[0]


def _cut_summary(block: Block) -> tuple[Block, bool]:
    """The block up to nfdump's trailing Summary section, and whether it was
    found. The section is the last few lines of nfdump's output, so only a
    block's tail is searched."""
    data = block.data
    if data.startswith(SUMMARY):
        return Block(b"", block.first_line), True
    at = data.find(b"\n" + SUMMARY, max(0, len(data) - 4096))
    if at < 0:
        return block, False
    return Block(data[: at + 1], block.first_line), True
