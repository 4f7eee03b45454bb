"""CSV with the canonical column names: what ``nkclass.write`` and
``nkclass classify`` write (times as "2019-05-01 08:40:00.000Z", addresses
as text, labels as words), read back to the same flows. Other columns (the
labels) are kept as text; an empty field is a null.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

import pyarrow as pa

from nkclass.errors import InputError
from nkclass.flows.convert import CLASSIFIED_INTEGERS, conform, missing_columns
from nkclass.flows.schema import TIMESTAMP
from nkclass.flows.text import UTF8_BOM, Block, TextReader, read_csv_block

# What pyarrow converts while parsing (the fast path); a block it refuses is
# parsed again as text, which the converters check and name.
TYPED = {"ts_start": TIMESTAMP, "ts_end": TIMESTAMP, "src_port": pa.uint16(),
         "dst_port": pa.uint16(), "protocol": pa.uint8(), "packets": pa.uint64(),
         "bytes": pa.uint64(), "tcp_flags": pa.uint8(), "src_as": pa.uint32(),
         "dst_as": pa.uint32(), **CLASSIFIED_INTEGERS}


def header_names(line: bytes) -> list[str]:
    return next(csv.reader([line.decode("utf-8", "replace").rstrip("\r")]), [])


class FlowCsvReader(TextReader):
    """CSV whose header names canonical columns."""

    format = "csv"
    extensions = (".csv",)

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        first = head.removeprefix(UTF8_BOM).split(b"\n", 1)[0]
        return b"src_ip" in first and not missing_columns(header_names(first))

    def _blocks(self, blocks: Iterator[Block]) -> Iterator[Block]:
        names: list[str] | None = None
        for block in blocks:
            if names is None:
                first, block = block.split_first_line()
                names = header_names(first)
                missing = missing_columns(names)
                if missing:
                    raise InputError(f"not a flow CSV: no column(s) {', '.join(missing)} in "
                                     "the header", self.path, 1)
            block.context = names
            yield block

    def _table(self, block: Block, typed: bool) -> pa.Table:
        names = block.context
        assert isinstance(names, list)
        types = {n: TYPED.get(n, pa.string()) if typed else pa.string() for n in names}
        return read_csv_block(block.data, names, names, types, quote='"', null_values=[""])

    _convert = staticmethod(conform)
