"""nfdump CSV (``nfdump -r FILE -o csv``, with or without ``-q``).

nfdump prints times in the local time zone of the machine running it; run it
with ``TZ=UTC`` so the times read here are UTC. The trailing ``Summary``
block is ignored. Packets and bytes are the input plus output counters.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nkclass.errors import InputError
from nkclass.flows.convert import (
    address_column,
    canonical_batch,
    checked_sum,
    counter_column,
    port_column,
    protocol_column,
    timestamp_column,
    unsigned_column,
)
from nkclass.flows.text import UTF8_BOM, Block, TextReader, read_csv_block

# nfdump 1.7's CSV header; `-q` drops the header line, so this is the default.
DEFAULT_HEADER = (
    "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt,in,out,sas,das,smk,dmk,dtos,dir,"
    "nh,nhb,svln,dvln,ismc,odmc,idmc,osmc,mpls1,mpls2,mpls3,mpls4,mpls5,mpls6,mpls7,mpls8,mpls9,"
    "mpls10,cl,sl,al,ra,eng,exid,tr"
).split(",")
NEEDED = ("ts", "te", "sa", "da", "sp", "dp", "pr", "ipkt", "ibyt")
OPTIONAL = ("opkt", "obyt", "flg", "sas", "das")
# Types pyarrow can convert while parsing (the fast path); a block it
# refuses is parsed again as text, which the converters check and name.
TYPED = {"ts": pa.timestamp("ms"), "te": pa.timestamp("ms"), "ipkt": pa.uint64(),
         "ibyt": pa.uint64(), "opkt": pa.uint64(), "obyt": pa.uint64(), "sas": pa.uint32(),
         "das": pa.uint32()}
SUMMARY = b"Summary"

def tcp_flags(text: pa.Array) -> pa.Array:
    """nfdump flag strings ("...AP.SF", flags in CEUAPRSF order, '.' when
    unset) as the TCP flags byte."""
    if len(text) == 0:  # numpy's rjust refuses an empty array
        return pa.array([], pa.uint8())
    if (pa.types.is_string(text.type) and not text.null_count
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
    n = table.num_rows
    packets = counter_column(col["ipkt"], "ipkt", n)
    nbytes = counter_column(col["ibyt"], "ibyt", n)
    if "opkt" in col:
        packets = checked_sum(packets, counter_column(col["opkt"], "opkt", n), "ipkt+opkt")
    if "obyt" in col:
        nbytes = checked_sum(nbytes, counter_column(col["obyt"], "obyt", n), "ibyt+obyt")
    protocol = protocol_column(col["pr"], "pr")
    out = {
        "ts_start": timestamp_column(col["ts"], "ts"),
        "ts_end": timestamp_column(col["te"], "te"),
        "src_ip": address_column(col["sa"], "sa"),
        "dst_ip": address_column(col["da"], "da"),
        # ICMP flows print the port as "0" or as type.code ("8.0"): port 0 then
        "src_port": port_column(col["sp"], "sp", protocol),
        "dst_port": port_column(col["dp"], "dp", protocol),
        "protocol": protocol,
        "packets": pa.array(packets, pa.uint64()),
        "bytes": pa.array(nbytes, pa.uint64()),
    }
    if "flg" in col:
        out["tcp_flags"] = tcp_flags(col["flg"])
    if "sas" in col:
        out["src_as"] = unsigned_column(col["sas"], "sas", pa.uint32())
    if "das" in col:
        out["dst_as"] = unsigned_column(col["das"], "das", pa.uint32())
    return canonical_batch(out)


class NfdumpCsvReader(TextReader):
    """nfdump CSV (``nfdump -o csv``, with or without ``-q``)."""

    format = "nfdump-csv"

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        text = head.removeprefix(UTF8_BOM).lstrip()
        if text.startswith(b"ts,te,td,sa,da"):
            return True
        first = text.split(b"\n", 1)[0].split(b",")
        return len(first) >= 40 and first[0][:2] in (b"19", b"20") and b":" in first[0]

    def _blocks(self, blocks: Iterator[Block]) -> Iterator[Block]:
        header: list[str] | None = None
        for block in blocks:
            if header is None:
                first, rest = block.split_first_line()
                if first.startswith(b"ts,"):
                    header = [h.strip() for h in first.decode("utf-8", "replace").split(",")]
                    block = rest
                else:
                    header = DEFAULT_HEADER
                missing = [c for c in NEEDED if c not in header]
                if missing:
                    raise InputError(
                        f"not nfdump CSV: no column(s) {', '.join(missing)} in the header",
                        self.path, 1)
            block, done = _cut_summary(block)
            block.context = header
            yield block
            if done:
                return

    def _table(self, block: Block, typed: bool) -> pa.Table:
        header = block.context
        assert isinstance(header, list)
        used = [c for c in (*NEEDED, *OPTIONAL) if c in header]
        types = {c: TYPED.get(c, pa.string()) if typed else pa.string() for c in used}
        return read_csv_block(block.data, header, used, types)

    _convert = staticmethod(_convert)


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
