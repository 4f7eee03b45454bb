"""``nkclass.read``: flows from any input format, one call.

Formats (``format=`` names, see :data:`~nkclass.flows.formats.FORMATS`):
``pcap`` (pcap and pcapng, through the native flow meter), ``netflow``
(a pcap of NetFlow v5/v9, IPFIX or sFlow export datagrams, decoded
natively; never guessed, always named), ``parquet``,
``arrow`` (Arrow IPC file or stream), ``zeek-tsv``, ``zeek-json``,
``pmacct-json``, ``goflow2-json``, ``nfdump-csv``, and ``jsonl`` / ``csv``
(the canonical column names, as nkclass writes them). Without ``format``
each input's format is told from its first bytes, then its name; gzip,
bz2 and zstd compression is undone first, whatever the name says.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import pyarrow as pa

from nkclass.errors import InputError
from nkclass.flows.export import ExportCaptureReader
from nkclass.flows.formats import FORMATS, detect_format, reader_class
from nkclass.flows.pcap import PcapReader
from nkclass.flows.readahead import ReadAhead
from nkclass.flows.reader import Reader, check_errors_mode
from nkclass.flows.source import Source, expand_inputs
from nkclass.flows.stats import ReadStats


class FlowReader:
    """Iterator of canonical RecordBatches over one or more inputs;
    ``stats`` (a :class:`~nkclass.flows.stats.ReadStats`) totals all of
    them; ``sources`` are the inputs after expanding folders and patterns."""

    def __init__(
        self,
        paths: Iterable[str | os.PathLike[str]],
        format: str | None = None,
        batch_size: int = 65536,
        errors: str = "raise",
        pcap_options: dict | None = None,
        format_option: str = "format=",
        readahead: int = 1,
    ) -> None:
        check_errors_mode(errors)
        if format is not None:
            reader_class(format)  # refuses unknown names now
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int of at least 1, got {batch_size!r}")
        if isinstance(readahead, bool) or not isinstance(readahead, int) or readahead < 0:
            raise ValueError(f"readahead must be an int of at least 0, got {readahead!r}")
        self.sources: list[Source] = expand_inputs(paths)
        self.format = format
        self.batch_size = batch_size
        self.errors = errors
        self.pcap_options = pcap_options or {}
        self.format_option = format_option
        self.stats = ReadStats()
        self.readahead = readahead
        self._batches: Iterator[pa.RecordBatch] | None = None  # from the first next()

    def __iter__(self) -> FlowReader:
        return self

    def __next__(self) -> pa.RecordBatch:
        if self._batches is None:
            batches = self._run()
            self._batches = (ReadAhead(batches, self.readahead)
                             if self.readahead and self._first_reads_ahead() else batches)
        return next(self._batches)

    def _first_reads_ahead(self) -> bool:
        """Whether the first input's format reads ahead (see
        Reader.reads_ahead); an unknown format is left to the reading to
        refuse."""
        for source in self.sources:
            if self.format is None and not source.head:
                continue
            try:
                fmt = self.format or detect_format(source, self.format_option)
            except (InputError, OSError):
                return False
            return reader_class(fmt).reads_ahead
        return False

    def close(self) -> None:
        """Stop reading and release the inputs (also part-way, and those
        only sniffed so far)."""
        if self._batches is not None:
            self._batches.close()
        for source in self.sources:
            source.close()

    def __enter__(self) -> FlowReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _open(self, source: Source) -> Reader | None:
        if self.format is None and not source.head:
            return None  # an empty input holds no flows, whatever its format
        fmt = self.format or detect_format(source, self.format_option)
        cls = reader_class(fmt)
        if cls in (PcapReader, ExportCaptureReader):
            return cls(source, self.batch_size, self.errors, **self.pcap_options)
        return cls(source, self.batch_size, self.errors)

    def _run(self) -> Iterator[pa.RecordBatch]:
        for source in self.sources:
            try:
                reader = self._open(source)
            except BaseException:
                source.close()
                raise
            if reader is None:
                self.stats.files.append(source.name)
                source.close()
                continue
            try:
                yield from reader
            finally:
                self.stats.merge(reader.stats)
                source.close()  # read or failed: released now, not when collected


def read(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    format: str | None = None,
    batch_size: int = 65536,
    errors: str = "raise",
    readahead: int = 1,
    **pcap_options,
) -> FlowReader:
    """Stream flow batches (pyarrow RecordBatches in the canonical schema)
    from one input or several: a file, ``"-"`` (standard input), a folder
    (its files, recursively, in sorted order; names starting with ``.`` or
    ``_`` are skipped) or a pattern such as ``"flows/*.parquet"``.

    ``errors="skip"`` drops malformed records and counts them in
    ``reader.stats`` instead of raising :class:`nkclass.InputError` with
    file and line (or row). ``pcap_options`` go to the pcap flow meter
    (payload_bytes, idle_timeout, active_timeout, max_flows, max_memory,
    decapsulate: see :func:`nkclass.flows.pcap.read_pcap`) or, with
    ``format="netflow"``, to the export decoder (template_timeout,
    max_templates, payload_bytes). ``readahead`` batches are read ahead
    on a background thread (0: none), so that decoding overlaps the
    caller's work on the current batch.

    >>> reader = read("tests/data/flows/zeek-conn.log")
    >>> sum(batch.num_rows for batch in reader), reader.stats.records
    (5, 5)
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    return FlowReader(paths, format, batch_size, errors, pcap_options, readahead=readahead)


__all__ = ["FORMATS", "FlowReader", "read"]
