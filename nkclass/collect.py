"""A live flow export collector: NetFlow v5/v9, IPFIX and sFlow v5 over UDP,
decoded natively, classified on the way, written as hive-style Parquet.

The receiving (``recvmmsg`` batches, ``SO_RXQ_OVFL`` kernel drop counts) and
the decoding run in ``nkclass._core`` with the GIL released; this module
owns the loop, the classification and the files.

Output layout (``output=DIR``)::

    DIR/date=2026-11-30/hour=18/flows-20261130T181500-<pid>-<n>.parquet

Records go to the partition of the hour their flow started (UTC). Every
``rotate`` seconds of wall-clock time, and on :meth:`Collector.close`,
the open files are closed: each is written under a hidden temporary name
(``.flows-...parquet.tmp``, which nkclass and most Parquet readers skip)
and renamed when complete, so nothing reads a half-written file.

>>> import nkclass
>>> with nkclass.Collector("udp://127.0.0.1:0", classifier=None) as c:
...     c.poll(timeout=0.01), c.counters["datagrams"]
(0, 0)
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from nkclass import _core
from nkclass.flows.export import check_decoder_options, records_to_batch

_MS_PER_HOUR = 3_600_000
#: Datagrams received per poll before records are handed on.
_POLL_DATAGRAMS = 4096


def parse_listen(spec: str) -> tuple[str, int]:
    """``udp://HOST:PORT`` (IPv6 hosts in brackets) as (host, port)."""
    if not isinstance(spec, str):
        raise TypeError(f"a listen address must be a str like 'udp://0.0.0.0:2055', got {spec!r}")
    parts = urlsplit(spec)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "udp" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ValueError(f"listen address {spec!r} must look like udp://HOST:PORT "
                         "(udp://0.0.0.0:2055, udp://[::]:4739)")
    return parts.hostname, port


class PartitionedWriter:
    """Parquet files under ``date=YYYY-MM-DD/hour=HH`` folders of ``root``,
    one open file per partition until :meth:`close` renames them all into
    place. ``files`` lists the completed files."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.files: list[Path] = []
        self.rows = 0
        self._open: dict[tuple[str, str], tuple[pq.ParquetWriter, Path, Path]] = {}
        self._seq = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        starts = table.column("ts_start").cast(pa.int64()).to_numpy()
        hours = starts // _MS_PER_HOUR
        for hour in np.unique(hours):
            part = table.filter(pa.array(hours == hour)) if len(np.unique(hours)) > 1 else table
            writer = self._writer(int(hour), part.schema)
            writer.write_table(part)
            self.rows += part.num_rows

    def _writer(self, hour: int, schema: pa.Schema) -> pq.ParquetWriter:
        stamp = time.gmtime(hour * 3600)
        key = (time.strftime("%Y-%m-%d", stamp), time.strftime("%H", stamp))
        if key not in self._open:
            folder = self.root / f"date={key[0]}" / f"hour={key[1]}"
            folder.mkdir(parents=True, exist_ok=True)
            self._seq += 1
            name = (f"flows-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}-"
                    f"{self._seq}.parquet")
            temp = folder / f".{name}.tmp"
            self._open[key] = (pq.ParquetWriter(temp, schema), temp, folder / name)
        return self._open[key][0]

    def close(self) -> None:
        """Completes every open file (rename from its temporary name)."""
        opened, self._open = self._open, {}
        for writer, temp, final in opened.values():
            writer.close()
            os.replace(temp, final)
            self.files.append(final)


class Collector:
    """Receive flow export datagrams on UDP, decode, classify and write them.

    ``listen``: one ``udp://HOST:PORT`` or several (port 0 picks a free
    port; see :attr:`ports`). ``output``: a folder for hive-style Parquet
    partitions, or None to keep the records for :meth:`take`.
    ``classifier``: an :class:`nkclass.Classifier` (default: a new one with
    the built-in rules), or None to write the decoded records unlabelled.
    ``rotate``: seconds between file rotations. ``rcvbuf``: the socket
    receive buffer asked for, in bytes (the kernel caps it at
    ``net.core.rmem_max``; :attr:`rcvbuf_granted` says what it gave).
    Template and payload options are those of the export decoder.

    :attr:`counters` totals datagrams, records, template misses, decode
    errors, kernel drops, ``recvmmsg`` batches and records written.
    Use it as a context manager, or call :meth:`close`: nothing decoded is
    lost on a clean stop.
    """

    def __init__(
        self,
        listen: str | Iterable[str],
        output: str | os.PathLike[str] | None = None,
        *,
        classifier: object = "default",
        rotate: float = 300.0,
        rcvbuf: int = 32 << 20,
        template_timeout: float = 1800.0,
        max_templates: int = 65536,
        payload_bytes: int = 512,
        batch_records: int = 65536,
    ) -> None:
        specs = [listen] if isinstance(listen, str) else list(listen)
        if not specs:
            raise ValueError("Collector needs at least one listen address")
        addresses = [parse_listen(s) for s in specs]
        if isinstance(rotate, bool) or not isinstance(rotate, int | float) or rotate <= 0:
            raise ValueError(f"The 'rotate' parameter of Collector must be a positive number "
                             f"of seconds. Got {rotate!r} instead.")
        if isinstance(rcvbuf, bool) or not isinstance(rcvbuf, int) or not 0 <= rcvbuf < 2**31:
            raise ValueError(f"The 'rcvbuf' parameter of Collector must be an int in "
                             f"[0, 2**31). Got {rcvbuf!r} instead.")
        if isinstance(batch_records, bool) or not isinstance(batch_records, int) \
                or batch_records < 1:
            raise ValueError(f"The 'batch_records' parameter of Collector must be an int >= 1. "
                             f"Got {batch_records!r} instead.")
        options = check_decoder_options(template_timeout, max_templates, payload_bytes,
                                        "Collector")
        if isinstance(classifier, str) and classifier == "default":
            from nkclass.classify import Classifier
            classifier = Classifier()
        self.classifier = classifier
        self.rotate = float(rotate)
        self.batch_records = batch_records
        self._decoder = _core.ExportDecoder(**options)
        try:
            self._listener = _core.UdpListener(addresses, rcvbuf)
        except ValueError as exc:
            raise OSError(f"cannot listen on {exc}") from None
        self._writer = PartitionedWriter(output) if output is not None else None
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._kept: list[pa.Table] = []
        self._window = self._window_of(time.time())
        self._closed = False

    # -- receiving -------------------------------------------------------

    @property
    def ports(self) -> list[int]:
        """The bound UDP ports, in the order of ``listen``."""
        return list(self._listener.ports())

    @property
    def rcvbuf_granted(self) -> list[int]:
        return list(self._listener.rcvbuf_granted())

    def poll(self, timeout: float = 0.1) -> int:
        """Wait up to ``timeout`` seconds for datagrams; receive, decode and
        hand on what came. Returns the number of datagrams received."""
        got = self._listener.poll(self._decoder, max(0, round(timeout * 1000)), _POLL_DATAGRAMS)
        self._collect()
        now = time.time()
        if self._window_of(now) != self._window:
            self._window = self._window_of(now)
            self.flush()
        elif self._pending_rows >= self.batch_records:
            self._write_pending()
        return got

    def run(self, stop: threading.Event | None = None, duration: float | None = None,
            progress: TextIO | None = None, progress_interval: float = 5.0) -> dict[str, int]:
        """Poll until ``stop`` is set or ``duration`` seconds have passed,
        printing the counters to ``progress`` every ``progress_interval``
        seconds; then drain what the sockets still hold and flush. Returns
        the counters."""
        stop = stop or threading.Event()
        start = last = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            if duration is not None and now - start >= duration:
                break
            self.poll(0.1)
            if progress is not None and now - last >= progress_interval:
                last = now
                print(self.progress_line(), file=progress, flush=True)
        while self.poll(0) > 0:  # what arrived before the stop
            pass
        self.flush()
        if progress is not None:
            print(self.progress_line(), file=progress, flush=True)
        return self.counters

    # -- output ------------------------------------------------------------

    def take(self) -> pa.Table | None:
        """Without ``output``: the records handed on since the last call
        (classified when there is a classifier), or None."""
        self._write_pending()
        kept, self._kept = self._kept, []
        return pa.concat_tables(kept) if kept else None

    def flush(self) -> None:
        """Write every record decoded so far and complete the open files."""
        self._collect()
        self._write_pending()
        if self._writer is not None:
            self._writer.close()

    def close(self) -> None:
        """Flush and stop listening (the sockets close with the object)."""
        if not self._closed:
            self._closed = True
            self.flush()

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def files(self) -> list[Path]:
        """Completed Parquet files, oldest first."""
        return list(self._writer.files) if self._writer is not None else []

    @property
    def counters(self) -> dict[str, int]:
        out = dict(self._decoder.counters())
        listener = self._listener.counters()
        out["datagrams"] = listener["datagrams"]
        out["received_bytes"] = listener["bytes"]
        out["recvmmsg_batches"] = listener["batches"]
        out["oversized"] = listener["truncated"]
        out["kernel_drops"] = listener["kernel_drops"]
        out["records_written"] = self._writer.rows if self._writer is not None else 0
        out["files"] = len(self._writer.files) if self._writer is not None else 0
        return out

    def progress_line(self) -> str:
        c = self.counters
        return (f"nkclass collect: {c['datagrams']:,} datagrams, {c['records']:,} records, "
                f"{c['records_written']:,} written, {c['template_misses']:,} template misses, "
                f"{c['decode_errors']:,} decode errors, {c['kernel_drops']:,} kernel drops, "
                f"{c['recvmmsg_batches']:,} recvmmsg batches")

    # -- internals ---------------------------------------------------------

    def _window_of(self, t: float) -> int:
        return int(t // self.rotate)

    def _collect(self) -> None:
        while self._decoder.ready():
            batch = records_to_batch(self._decoder.drain(self.batch_records))
            self._pending.append(batch)
            self._pending_rows += batch.num_rows

    def _write_pending(self) -> None:
        if not self._pending:
            return
        table = pa.Table.from_batches(self._pending)
        self._pending, self._pending_rows = [], 0
        if self.classifier is not None:
            table = self.classifier.classify(table).to_arrow()
        if self._writer is not None:
            self._writer.write(table)
        else:
            self._kept.append(table)

