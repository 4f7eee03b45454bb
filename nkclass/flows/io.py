"""``nkclass.read`` and ``nkclass.write``: every format, one call.

Formats (``format=`` names): ``pcap`` (pcap and pcapng, through the native
flow meter), ``parquet``, ``arrow`` (Arrow IPC file or stream),
``nfdump-csv``, ``zeek-tsv``, ``zeek-json``, ``pmacct-json``,
``goflow2-json``. Without ``format`` it is detected from the file's first
bytes, then its name.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from nkclass.errors import InputError
from nkclass.flows.jsonl import DIALECTS, JsonLinesReader, sniff_dialect
from nkclass.flows.nfdump import NfdumpCsvReader
from nkclass.flows.pcap import read_pcap
from nkclass.flows.stats import ReadStats
from nkclass.flows.text import check_errors_mode
from nkclass.flows.zeek import ZeekTsvReader

FORMATS = ("pcap", "parquet", "arrow", "nfdump-csv", "zeek-tsv", *DIALECTS)
PCAP_MAGICS = (
    b"\xd4\xc3\xb2\xa1",
    b"\xa1\xb2\xc3\xd4",
    b"\x4d\x3c\xb2\xa1",
    b"\xa1\xb2\x3c\x4d",
    b"\x0a\x0d\x0d\x0a",
)
EXTENSIONS = {
    ".pcap": "pcap",
    ".pcapng": "pcap",
    ".cap": "pcap",
    ".parquet": "parquet",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
}


def detect_format(path: str | os.PathLike[str]) -> str:
    """The format of ``path`` from its first bytes, else its extension."""
    p = Path(path)
    try:
        with pa.input_stream(str(p), compression="detect") as stream:
            head = stream.read(4096)
    except FileNotFoundError:
        raise InputError("no such file", str(p)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc}", str(p)) from None
    if head[:4] in PCAP_MAGICS:
        return "pcap"
    if head[:4] == b"PAR1":
        return "parquet"
    if head[:6] == b"ARROW1" or head[:4] == b"\xff\xff\xff\xff":
        return "arrow"
    text = head.lstrip()
    if text.startswith((b"#separator", b"#fields")):
        return "zeek-tsv"
    if text.startswith(b"{"):
        dialect = sniff_dialect(text.split(b"\n", 1)[0])
        if dialect:
            return dialect
    if text.startswith(b"ts,te,td,sa,da") or _looks_like_nfdump_row(text):
        return "nfdump-csv"
    for suffix in reversed([s.lower() for s in p.suffixes]):
        if suffix in EXTENSIONS:
            return EXTENSIONS[suffix]
    raise InputError(
        f"cannot tell the format (first bytes {head[:16]!r}); pass format= one of "
        f"{', '.join(FORMATS)}",
        str(p),
    )


def _looks_like_nfdump_row(text: bytes) -> bool:
    first = text.split(b"\n", 1)[0].split(b",")
    return len(first) >= 40 and first[0][:2] in (b"19", b"20") and b":" in first[0]


class FlowReader:
    """Iterator of canonical RecordBatches over one or more inputs; ``stats``
    (a :class:`~nkclass.flows.stats.ReadStats`) totals all of them."""

    def __init__(
        self,
        paths: Iterable[str | os.PathLike[str]],
        format: str | None,
        batch_size: int,
        errors: str,
        pcap_options: dict,
    ) -> None:
        check_errors_mode(errors)
        if format is not None and format not in FORMATS:
            raise ValueError(f"unknown format {format!r}; formats: {', '.join(FORMATS)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.paths = [str(p) for p in paths]
        self.format = format
        self.batch_size = batch_size
        self.errors = errors
        self.pcap_options = pcap_options
        self.stats = ReadStats()
        self._batches = self._run()

    def __iter__(self) -> FlowReader:
        return self

    def __next__(self) -> pa.RecordBatch:
        return next(self._batches)

    def _open(self, path: str):
        fmt = self.format or detect_format(path)
        if fmt == "pcap":
            return read_pcap(
                path, batch_size=self.batch_size, errors=self.errors, **self.pcap_options
            )
        if fmt in ("parquet", "arrow"):
            return _ColumnarReader(path, fmt, self.batch_size)
        if fmt == "nfdump-csv":
            return NfdumpCsvReader(path, self.batch_size, self.errors)
        if fmt == "zeek-tsv":
            return ZeekTsvReader(path, self.batch_size, self.errors)
        return JsonLinesReader(path, fmt, self.batch_size, self.errors)

    def _run(self) -> Iterator[pa.RecordBatch]:
        for path in self.paths:
            reader = self._open(path)
            try:
                yield from reader
            finally:
                self.stats.merge(reader.stats)


class _ColumnarReader:
    """Parquet or Arrow IPC files, already in (or close to) the canonical schema."""

    def __init__(self, path: str, kind: str, batch_size: int) -> None:
        self.path = path
        self.format = kind
        self.batch_size = batch_size
        self.stats = ReadStats(files=[path])

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            if self.format == "parquet":
                batches = pq.ParquetFile(self.path).iter_batches(batch_size=self.batch_size)
            else:
                batches = _ipc_batches(self.path)
            for batch in batches:
                self.stats.records += batch.num_rows
                for start in range(0, batch.num_rows, self.batch_size):
                    yield batch.slice(start, self.batch_size)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"invalid {self.format} file: {exc}", self.path) from None


def _ipc_batches(path: str) -> Iterator[pa.RecordBatch]:
    with pa.memory_map(path) as source:
        try:
            reader = ipc.open_file(source)
        except pa.ArrowInvalid:
            source.seek(0)
            yield from ipc.open_stream(source)
            return
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)


def read(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    format: str | None = None,
    batch_size: int = 65536,
    errors: str = "raise",
    **pcap_options,
) -> FlowReader:
    """Stream flow batches (pyarrow RecordBatches in the canonical schema)
    from one path or several. ``errors="skip"`` drops malformed records and
    counts them in ``reader.stats`` instead of raising
    :class:`nkclass.InputError` with file and line. ``pcap_options`` go to
    the pcap flow meter (payload_bytes, idle_timeout, active_timeout,
    max_flows).
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    return FlowReader(paths, format, batch_size, errors, pcap_options)


# ---------------------------------------------------------------- writing

WRITE_FORMATS = ("parquet", "csv", "jsonl", "arrow")


def output_format(path: str | os.PathLike[str], format: str | None = None) -> str:
    if format is not None:
        if format not in WRITE_FORMATS:
            raise ValueError(f"unknown output format {format!r}; one of {', '.join(WRITE_FORMATS)}")
        return format
    suffix = Path(path).suffix.lower()
    by_suffix = {
        ".parquet": "parquet",
        ".csv": "csv",
        ".jsonl": "jsonl",
        ".json": "jsonl",
        ".ndjson": "jsonl",
        ".arrow": "arrow",
        ".feather": "arrow",
    }
    if suffix not in by_suffix:
        raise ValueError(
            f"cannot tell the output format of {str(path)!r}; use .parquet, .csv, "
            ".jsonl or .arrow, or pass format="
        )
    return by_suffix[suffix]


def text_table(table: pa.Table) -> pa.Table:
    """A table for text outputs: addresses as text, dictionary labels as
    plain strings, binary payload columns left out."""
    from nkclass.addresses import format_addresses
    from nkclass.flows.batch import address_array

    cols, names = [], []
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        if name in ("src_ip", "dst_ip") and not pa.types.is_string(col.type):
            col = format_addresses(address_array(col, name))
        elif pa.types.is_dictionary(col.type):
            col = col.cast(pa.string())
        elif pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
            continue
        cols.append(col)
        names.append(name)
    return pa.table(cols, names=names)


def _json_lines(table: pa.Table) -> bytes:
    """JSON Lines for a flat table of numbers, strings, booleans and
    timestamps, built with vectorised string kernels."""
    import json

    import pyarrow.compute as pc

    parts = []
    for i, name in enumerate(table.column_names):
        col = table.column(name).combine_chunks()
        if pa.types.is_timestamp(col.type):
            # %S carries the fraction for sub-second units: 10:00:00.250
            text = pc.strftime(col, format="%Y-%m-%dT%H:%M:%SZ")
            value = pc.binary_join_element_wise('"', text, '"', "")
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            escaped = pc.replace_substring(pc.replace_substring(col, "\\", "\\\\"), '"', '\\"')
            value = pc.binary_join_element_wise('"', escaped, '"', "")
        elif pa.types.is_boolean(col.type):
            value = pc.if_else(col, "true", "false")
        else:
            value = col.cast(pa.string())
        value = pc.fill_null(value, "null")
        key = ("{" if i == 0 else ",") + json.dumps(name) + ":"
        parts.append(pc.binary_join_element_wise(key, value, ""))
    if not parts:
        return b""
    rows = pc.binary_join_element_wise(*parts, "}\n", "")
    return b"".join(s.encode() if isinstance(s, str) else s for s in rows.to_pylist())


class FlowWriter:
    """Writes tables (or classified results) to one Parquet, CSV, JSON Lines
    or Arrow IPC file, batch by batch."""

    def __init__(self, path: str | os.PathLike[str], format: str | None = None) -> None:
        self.path = str(path)
        self.format = output_format(path, format)
        self._writer = None
        self._file = None
        self._schema: pa.Schema | None = None
        self.rows = 0

    def write(self, data) -> None:
        table = data.to_arrow() if hasattr(data, "to_arrow") else data
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        if self.format in ("csv", "jsonl"):
            table = text_table(table)
        if self._schema is None:
            self._schema = table.schema
        elif table.schema != self._schema:
            # Later batches may differ in dictionary or optional columns.
            table = table.select(self._schema.names).cast(self._schema)
        if self.format == "parquet":
            if self._writer is None:
                self._writer = pq.ParquetWriter(self.path, self._schema)
            self._writer.write_table(table)
        elif self.format == "arrow":
            if self._writer is None:
                self._writer = ipc.new_file(self.path, self._schema)
            self._writer.write_table(table)
        elif self.format == "csv":
            if self._writer is None:
                self._writer = pacsv.CSVWriter(self.path, table.schema)
            self._writer.write_table(table)
        else:
            if self._file is None:
                self._file = open(self.path, "wb")
            self._file.write(_json_lines(table))
        self.rows += table.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._file is not None:
            self._file.close()
        if self._writer is None and self._file is None:
            Path(self.path).write_bytes(b"")  # an empty input still leaves a file

    def __enter__(self) -> FlowWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write(data, path: str | os.PathLike[str], format: str | None = None) -> int:
    """Write a table, a classified result or an iterable of either to
    ``path`` (format from ``format`` or the extension: .parquet, .csv, .jsonl,
    .arrow). Returns the rows written. Text outputs carry addresses as text
    and leave binary payload columns out."""
    items = (
        [data] if hasattr(data, "to_arrow") or isinstance(data, pa.Table | pa.RecordBatch) else data
    )
    with FlowWriter(path, format) as writer:
        for item in items:
            writer.write(item)
    return writer.rows
