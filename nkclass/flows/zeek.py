"""Zeek conn.log in Zeek's TSV format (the JSON form is in jsonl.py).

The ``#fields`` header names the columns; ``-`` (unset) and ``(empty)``
fields become nulls; ``#`` lines (header and ``#close`` trailer) are skipped.
Zeek's ``service`` is kept as ``app_hint``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.csv as pacsv

from nkclass.errors import InputError, SchemaValueError
from nkclass.flows.jsonl import zeek_convert
from nkclass.flows.stats import ReadStats
from nkclass.flows.text import Block, Problems, line_blocks


class ZeekTsvReader:
    """Streams canonical batches from one Zeek TSV conn.log."""

    format = "zeek-tsv"

    def __init__(self, path: str, batch_size: int = 65536, errors: str = "raise") -> None:
        self.path = str(path)
        self.batch_size = batch_size
        self.stats = ReadStats(files=[self.path])
        self.problems = Problems(self.path, errors, self.stats)
        self.fields: list[str] | None = None
        self.unset = "-"
        self.empty = "(empty)"

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for block in line_blocks(self.path):
            data_lines = self._header_and_data(block)
            if not data_lines:
                continue
            if self.fields is None:
                raise InputError(
                    "not a Zeek TSV log: no #fields header before the data",
                    self.path,
                    data_lines[0][0],
                )
            batch = self._parse(data_lines)
            if batch is None or not batch.num_rows:
                continue
            self.stats.records += batch.num_rows
            for start in range(0, batch.num_rows, self.batch_size):
                yield batch.slice(start, self.batch_size)

    def _header_and_data(self, block: Block) -> list[tuple[int, bytes]]:
        data = []
        for line, text in block.lines():
            if text.startswith(b"#"):
                key, _, value = text.decode("utf-8", "replace").partition("\t")
                if key == "#fields":
                    self.fields = value.rstrip("\r").split("\t")
                elif key == "#unset_field":
                    self.unset = value
                elif key == "#empty_field":
                    self.empty = value
                continue
            data.append((line, text))
        return data

    def _table(self, data: bytes) -> pa.Table:
        assert self.fields is not None
        return pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=self.fields, block_size=1 << 22),
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
            convert_options=pacsv.ConvertOptions(
                column_types={f: pa.string() for f in self.fields},
                null_values=[self.unset, self.empty],
                strings_can_be_null=True,
            ),
        )

    def _parse(self, lines: list[tuple[int, bytes]]) -> pa.RecordBatch | None:
        try:
            return zeek_convert(_typed(self._table(b"\n".join(t for _, t in lines) + b"\n")))
        except (pa.ArrowInvalid, SchemaValueError):
            pass
        good = []
        for line, text in lines:  # slow path: name or drop the bad lines
            try:
                good.append(zeek_convert(_typed(self._table(text + b"\n"))))
            except (pa.ArrowInvalid, SchemaValueError) as exc:
                self.problems.bad(line, f"invalid conn.log record: {exc}")
        if not good:
            return None
        merged = pa.concat_tables(
            [pa.Table.from_batches([b]) for b in good], promote_options="permissive"
        )
        return merged.combine_chunks().to_batches()[0]


def _typed(table: pa.Table) -> pa.Table:
    """TSV values arrive as text: make the time and duration numbers."""
    cols = {}
    for name in table.column_names:
        col = table.column(name)
        if name in ("ts", "duration"):
            col = col.cast(pa.float64())
        cols[name] = col
    return pa.table(cols)
