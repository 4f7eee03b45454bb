"""The input formats: the one place that maps a format name to its reader,
its sniffing rule and its file name endings (each reader class carries
those; :data:`READERS` lists them in the order sniffing tries them).
"""

from __future__ import annotations

from nkclass.errors import InputError
from nkclass.flows.columnar import ArrowReader, ParquetReader
from nkclass.flows.export import ExportCaptureReader
from nkclass.flows.flowcsv import FlowCsvReader
from nkclass.flows.jsonl import (
    Goflow2JsonReader,
    NkclassJsonReader,
    PmacctJsonReader,
    ZeekJsonReader,
)
from nkclass.flows.nfdump import NfdumpCsvReader
from nkclass.flows.pcap import PcapReader
from nkclass.flows.reader import Reader
from nkclass.flows.source import Source
from nkclass.flows.zeek import ZeekTsvReader

#: Reader classes in sniffing order: binary magics first, then text layouts
#: by their headers or keys.
READERS: tuple[type[Reader], ...] = (
    PcapReader,
    ParquetReader,
    ArrowReader,
    ZeekTsvReader,
    ZeekJsonReader,
    PmacctJsonReader,
    Goflow2JsonReader,
    NkclassJsonReader,
    NfdumpCsvReader,
    FlowCsvReader,
    ExportCaptureReader,  # a pcap too: only by name (format="netflow")
)
BY_NAME = {r.format: r for r in READERS}
#: Format names, as ``format=`` and ``--input-format`` take them.
FORMATS = tuple(BY_NAME)
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".zst", ".zstd")


def reader_class(name: str) -> type[Reader]:
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; formats: {', '.join(FORMATS)}") from None


def detect_format(source: Source, format_option: str = "format=") -> str:
    """The format of an input from its first bytes, else its name.
    ``format_option`` is how the error message names the way to say it."""
    head = source.head
    for reader in READERS:
        if reader.sniff(head):
            return reader.format
    if source.path is not None:
        name = source.path.lower()
        for suffix in COMPRESSED_SUFFIXES:
            name = name.removesuffix(suffix)
        for reader in READERS:
            if name.endswith(reader.extensions):
                return reader.format
    raise InputError(
        f"cannot tell the format (first bytes {head[:16]!r}); pass {format_option} one of "
        f"{', '.join(FORMATS)}",
        source.name,
    )
