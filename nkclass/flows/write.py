"""``nkclass.write``: flows and classified results to Parquet, Arrow IPC,
CSV or JSON Lines, atomically.

A file output is written to a temporary file in the same folder, flushed to
disk and renamed into place only when complete: on an error, Ctrl-C or a
full disk the file that was there before is untouched and no partial file
is left. ``-`` writes to standard output (JSON Lines unless a format is
given).

Addresses are written as text in every format ("175.45.176.9",
"2001:db8::5"; IPv4-mapped addresses as plain IPv4), which pandas, DuckDB
and spreadsheets show as they are; :func:`nkclass.read` turns them back into
the same 16-byte addresses. Label columns stay dictionary-encoded in
Parquet and Arrow; text formats leave binary payload columns out.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import tempfile
from collections.abc import Iterable
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from nkclass.addresses import format_addresses
from nkclass.errors import OutputError, SchemaValueError
from nkclass.flows.batch import address_array

WRITE_FORMATS = ("parquet", "csv", "jsonl", "arrow")
STDOUT = "-"
SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".arrow": "arrow",
    ".feather": "arrow",
}
ADDRESS_COLUMNS = ("src_ip", "dst_ip")


def output_format(path: str | os.PathLike[str], format: str | None = None,
                  format_option: str = "format=") -> str:
    """The format to write ``path`` in: ``format`` if given, else from the
    file name; JSON Lines for standard output. ValueError when unknown
    (``format_option`` is how the message names the way to give one)."""
    if format is not None:
        if format not in WRITE_FORMATS:
            raise ValueError(
                f"unknown output format {format!r}; one of {', '.join(WRITE_FORMATS)}")
        return format
    text = os.fspath(path)
    if text == STDOUT:
        return "jsonl"
    suffix = os.path.splitext(text)[1].lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"cannot tell the output format of {text!r}: name it .parquet, .csv, .jsonl or "
            f".arrow, or pass {format_option} {'|'.join(WRITE_FORMATS)}")
    return SUFFIXES[suffix]


def _reason(exc: OSError) -> str:
    return exc.strerror.lower() if exc.strerror else str(exc)


class AtomicFile:
    """A file that appears at ``path`` only on :meth:`commit`: written to a
    temporary file beside it, flushed to disk, then renamed over it."""

    def __init__(self, path: str) -> None:
        self.path = path
        folder = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(path):
            raise OutputError("is a folder", path)
        if not os.path.isdir(folder):
            raise OutputError(f"the folder {folder} does not exist", path)
        try:
            fd, self.temporary = tempfile.mkstemp(
                prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
        except OSError as exc:
            raise OutputError(f"cannot write in {folder}: {_reason(exc)}", path) from None
        os.fchmod(fd, _mode_for(path))
        self.file: BinaryIO = os.fdopen(fd, "wb")

    def commit(self) -> None:
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.replace(self.temporary, self.path)
        except OSError as exc:
            self.abort()
            raise OutputError(f"cannot write: {_reason(exc)}", self.path) from None
        try:  # make the rename itself durable
            folder = os.open(os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(folder)
        except OSError:
            pass
        finally:
            os.close(folder)

    def abort(self) -> None:
        try:
            self.file.close()
        except OSError:
            pass
        try:
            os.unlink(self.temporary)
        except FileNotFoundError:
            pass


def _is_device(path: str) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _mode_for(path: str) -> int:
    """The permissions a plainly created file would get (or the old file's)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def output_table(table: pa.Table, text: bool) -> pa.Table:
    """A table as written: addresses as text; for text formats, labels
    as plain strings and no binary (payload) columns."""
    cols, names = [], []
    for name in table.column_names:
        col = table.column(name)
        if name in ADDRESS_COLUMNS and not pa.types.is_string(col.type):
            col = format_addresses(address_array(col.combine_chunks(), name))
        elif text and pa.types.is_dictionary(col.type):
            col = col.cast(pa.string())
        elif text and (pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type)):
            continue
        cols.append(col)
        names.append(name)
    return pa.table(cols, names=names)


def json_lines(table: pa.Table) -> bytes:
    """JSON Lines for a flat table, built with vectorised string kernels
    (timestamps as ISO text in UTC, non-finite floats as null)."""
    parts = []
    for i, name in enumerate(table.column_names):
        value = _json_values(table.column(name).combine_chunks())
        key = ("{" if i == 0 else ",") + json.dumps(name) + ":"
        parts.append(pc.binary_join_element_wise(key, pc.fill_null(value, "null"), ""))
    if not parts:
        return b""
    rows = pc.binary_join_element_wise(*parts, "}\n", "")
    return b"".join(s.encode() for s in rows.to_pylist())


def _json_values(col: pa.Array) -> pa.Array:
    """Each value's JSON text (null where the value is null)."""
    if pa.types.is_dictionary(col.type):
        col = col.cast(pa.string())
    if pa.types.is_timestamp(col.type):
        # %S carries the fraction for sub-second units: 10:00:00.250
        text = pc.strftime(col, format="%Y-%m-%dT%H:%M:%SZ")
        return pc.binary_join_element_wise('"', text, '"', "")
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        if pc.any(pc.match_substring_regex(col, r"[\x00-\x1f]")).as_py():
            return pa.array([None if v is None else json.dumps(v) for v in col.to_pylist()],
                            pa.string())
        escaped = pc.replace_substring(pc.replace_substring(col, "\\", "\\\\"), '"', '\\"')
        return pc.binary_join_element_wise('"', escaped, '"', "")
    if pa.types.is_boolean(col.type):
        return pc.if_else(col, "true", "false")
    if pa.types.is_floating(col.type):
        finite = pc.is_finite(col)
        return pc.if_else(finite, col.cast(pa.string()), pa.scalar(None, pa.string()))
    if pa.types.is_integer(col.type) or pa.types.is_decimal(col.type):
        return col.cast(pa.string())
    return pa.array([None if v is None else json.dumps(v, default=str) for v in col.to_pylist()],
                    pa.string())


class _Dictionaries:
    """Keeps each dictionary column's values across batches, growing by
    appending, so Arrow IPC files get dictionary deltas rather than the
    replacements the file format cannot hold."""

    def __init__(self) -> None:
        self.values: dict[str, pa.Array] = {}

    def unify(self, table: pa.Table) -> pa.Table:
        for i, name in enumerate(table.column_names):
            col = table.column(i)
            if not pa.types.is_dictionary(col.type):
                continue
            col = col.unify_dictionaries().combine_chunks()
            known = self.values.get(name)
            if known is None or col.dictionary.equals(known):
                self.values[name] = col.dictionary if known is None else known
                table = table.set_column(i, name, col)
                continue
            new = col.dictionary.filter(pc.invert(pc.is_in(col.dictionary, value_set=known)))
            merged = pa.concat_arrays([known, new.cast(known.type)])
            mapping = pc.index_in(col.dictionary, value_set=merged).cast(col.indices.type)
            indices = pc.take(mapping, col.indices)
            table = table.set_column(i, name, pa.DictionaryArray.from_arrays(indices, merged))
            self.values[name] = merged
        return table


class FlowWriter:
    """Writes tables (or classified results) to one Parquet, CSV, JSON Lines
    or Arrow IPC output, batch by batch. As a context manager it commits on
    success and leaves the old file in place on an exception.

    The first table fixes the columns: a later table missing one gets nulls
    there; columns only later tables have are left out and named in
    ``dropped_columns``.
    """

    def __init__(self, path: str | os.PathLike[str], format: str | None = None) -> None:
        self.path = os.fspath(path)
        self.format = output_format(self.path, format)
        self.rows = 0
        self.dropped_columns: set[str] = set()
        self._text = self.format in ("csv", "jsonl")
        self._file: AtomicFile | None = None
        self._device: BinaryIO | None = None
        if self.path == STDOUT:
            self._sink: BinaryIO = sys.stdout.buffer
        elif _is_device(self.path):  # /dev/stdout, a named pipe: nothing to rename
            try:
                self._device = self._sink = open(self.path, "wb")
            except OSError as exc:
                raise OutputError(f"cannot write: {_reason(exc)}", self.path) from None
        else:
            self._file = AtomicFile(self.path)
            self._sink = self._file.file
        self._writer = None
        self._schema: pa.Schema | None = None
        self._dictionaries = _Dictionaries()
        self._closed = False

    def write(self, data) -> None:
        table = data.to_arrow() if hasattr(data, "to_arrow") else data
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        table = output_table(table, self._text)
        if self._schema is None:  # nullable: a later table may lack a column
            self._schema = pa.schema([f.with_nullable(True) for f in table.schema])
            table = table.cast(self._schema)
        elif table.schema != self._schema:
            table = self._conform(table)
        try:
            self._write(table)
        except OSError as exc:
            self.abort()
            raise OutputError(f"cannot write: {_reason(exc)}", self.path) from None
        self.rows += table.num_rows

    def _conform(self, table: pa.Table) -> pa.Table:
        assert self._schema is not None
        self.dropped_columns.update(set(table.column_names) - set(self._schema.names))
        cols = []
        for field in self._schema:
            if field.name not in table.column_names:
                cols.append(pa.nulls(table.num_rows, field.type))
                continue
            col = table.column(field.name)
            if col.type != field.type and not (pa.types.is_dictionary(col.type)
                                               and pa.types.is_dictionary(field.type)):
                try:
                    col = col.cast(field.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    raise SchemaValueError(
                        f"column {field.name!r} is {col.type} in a later table but "
                        f"{field.type} in the first; write them to separate outputs") from None
            cols.append(col)
        return pa.Table.from_arrays(cols, schema=self._schema)

    def _write(self, table: pa.Table) -> None:
        if self.format == "parquet":
            if self._writer is None:
                self._writer = pq.ParquetWriter(self._sink, table.schema)
            self._writer.write_table(table)
        elif self.format == "arrow":
            table = self._dictionaries.unify(table)
            if self._writer is None:
                options = ipc.IpcWriteOptions(emit_dictionary_deltas=True)
                self._writer = ipc.new_file(self._sink, table.schema, options=options)
            self._writer.write_table(table)
        elif self.format == "csv":
            if self._writer is None:
                self._writer = pacsv.CSVWriter(self._sink, table.schema)
            self._writer.write_table(table)
        else:
            self._sink.write(json_lines(table))

    def close(self) -> None:
        """Finish the output and put it in place."""
        if self._closed:
            return
        try:
            if self._writer is not None:
                self._writer.close()
            self._sink.flush()
        except OSError as exc:
            self.abort()
            raise OutputError(f"cannot write: {_reason(exc)}", self.path) from None
        self._closed = True
        if self._device is not None:
            self._device.close()
        if self._file is not None:
            self._file.commit()

    def abort(self) -> None:
        """Drop the output: the file that was there before stays as it was."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            try:  # its footer goes to the file about to be removed
                self._writer.close()
            except Exception:  # the output is dropped either way
                pass
            self._writer = None
        if self._device is not None:
            self._device.close()
        if self._file is not None:
            self._file.abort()

    def __enter__(self) -> FlowWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write(data, path: str | os.PathLike[str], format: str | None = None) -> int:
    """Write a table, a classified result or an iterable of either to
    ``path`` (format from ``format`` or the extension: .parquet, .csv,
    .jsonl, .arrow; ``"-"`` is standard output), atomically. Returns the rows
    written.

    >>> import nkclass, tempfile, os
    >>> flows = nkclass.read("tests/data/flows/zeek-conn.log")
    >>> out = os.path.join(tempfile.mkdtemp(), "flows.parquet")
    >>> nkclass.write(flows, out)
    5
    """
    items: Iterable = (
        [data] if hasattr(data, "to_arrow") or isinstance(data, pa.Table | pa.RecordBatch)
        else data
    )
    with FlowWriter(path, format) as writer:
        for item in items:
            writer.write(item)
    return writer.rows


__all__ = ["WRITE_FORMATS", "FlowWriter", "output_format", "write"]
