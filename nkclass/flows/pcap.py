"""Read pcap / pcapng captures into canonical flow batches.

The metering (container parsing, decoding, the flow table, payload
assembly) runs natively in ``nkclass._core.FlowMeter``; this module owns the
defaults, argument checks, error wording and the Arrow batches.

Example::

    >>> from nkclass.flows.pcap import read_pcap
    >>> reader = read_pcap("tests/data/pcap/http-get.pcap")
    >>> [batch.num_rows for batch in reader]
    [1]
    >>> reader.counters["packets"]
    14
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Literal

import numpy as np
import pyarrow as pa

from nkclass import _core
from nkclass.errors import InputError
from nkclass.flows.reader import Reader
from nkclass.flows.schema import ADDRESS, ALL_FIELDS, REQUIRED, TIMESTAMP
from nkclass.flows.source import Source, read_chunks
from nkclass.flows.stats import ReadStats

#: The schema of every batch read_pcap yields.
PCAP_SCHEMA = pa.schema(
    [
        *REQUIRED,
        ALL_FIELDS["tcp_flags"],
        ALL_FIELDS["src_payload"],
        ALL_FIELDS["dst_payload"],
        ALL_FIELDS["tunnel"],
        ALL_FIELDS["stratum_submits"],
        ALL_FIELDS["stratum_difficulty"],
        ALL_FIELDS["stratum_algo"],
    ]
)
_TUNNEL_NAMES = pa.array(_core.TUNNEL_NAMES)
_STRATUM_ALGO_NAMES = pa.array(_core.STRATUM_ALGO_NAMES)

#: Bytes fed to the native parser at a time, read into one reused buffer
#: (a fresh bytes object per chunk is fresh pages to fault in).
_CHUNK_BYTES = 1 << 20
PCAP_MAGICS = (
    b"\xd4\xc3\xb2\xa1",
    b"\xa1\xb2\xc3\xd4",
    b"\x4d\x3c\xb2\xa1",
    b"\xa1\xb2\x3c\x4d",
    b"\x0a\x0d\x0d\x0a",
)


class CaptureError(InputError):
    """A capture file is truncated or corrupt.

    ``path``, ``offset`` (byte offset of the bad or incomplete record) and
    ``reason`` are attributes as well as parts of the message.
    """

    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(reason, path, offset=offset)


def _check(name: str, value: object, ok: bool, expected: str) -> None:
    if not ok:
        raise ValueError(
            f"The {name!r} parameter of read_pcap must be {expected}. Got {value!r} instead."
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_seconds(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


class NativeCaptureReader(Reader):
    """A reader fed by a native capture parser (``self._native``: the flow
    meter, or the export decoder): file bytes in, drained columns out, its
    counters and how the input ended kept for ``stats``."""

    # The meter hands on most flows in whole batches when the capture ends,
    # so a reader thread has little to overlap; and the batches it builds
    # come from fresh memory each time (the thread's allocator arena gives
    # freed pages back): pcap to report measured 2.3M against 2.9M packets/s.
    reads_ahead = False

    def __init__(self, source: Source, batch_size: int, errors: str) -> None:
        super().__init__(source, batch_size, errors)
        self.counters: dict[str, int] = {}
        self.status: dict[str, object] = {}
        self._native: object = None

    # Subclasses set ``_native`` and define ``_columns_to_batch(cols)``, the
    # Arrow batch of one drain's columns.

    @property
    def stats(self) -> ReadStats:
        """The counters as :class:`ReadStats` (records = flows yielded)."""
        stats = ReadStats(records=self._stats.records, files=[self.path])
        stats.native.update(self.counters)
        if self.status and self.status["status"] != "ok":
            stats.truncated.append(
                f"{self.path}: {self.status['status']} at byte {self.status['offset']}: "
                f"{self.status['reason']}"
            )
        return stats

    def _batches(self) -> Iterator[pa.RecordBatch]:
        native = self._native
        for chunk in read_chunks(self.source.stream(), _CHUNK_BYTES):
            native.feed(chunk)
            # Whole batches only until the input ends: one per chunk would
            # classify and aggregate many small batches.
            while native.ready() >= self.batch_size:
                yield self._columns_to_batch(native.drain(self.batch_size))
        self.status = native.finish()
        while native.ready():
            yield self._columns_to_batch(native.drain(self.batch_size))
        self.counters = native.counters()
        if self.status["status"] != "ok" and self.errors == "raise":
            raise CaptureError(self.path, self.status["offset"], self.status["reason"])


class PcapReader(NativeCaptureReader):
    """Iterator of flow batches from one capture; see :func:`read_pcap`.

    After iteration ends, ``counters`` holds the meter's totals (packets,
    bytes, non_ip, malformed, ip_fragments, flows_emitted, flows_evicted,
    memory_evictions, wire_len_fixed, peak_memory_bytes, truncated) and
    ``status`` how the input ended
    (``{"status": "ok" | "truncated" | "corrupt", "offset": int, "reason": str}``).
    """

    format = "pcap"
    extensions = (".pcap", ".pcapng", ".cap")

    def __init__(
        self,
        source: Source,
        batch_size: int = 65536,
        errors: Literal["raise", "skip"] = "raise",
        *,
        payload_bytes: int = 512,
        idle_timeout: float = 120.0,
        active_timeout: float = 1800.0,
        max_flows: int = 1_000_000,
        max_memory: int = 2**31,
        decapsulate: bool = True,
    ) -> None:
        _check("batch_size", batch_size, _is_int(batch_size) and batch_size >= 1,
               "an int >= 1")
        _check("decapsulate", decapsulate, isinstance(decapsulate, bool), "a bool")
        _check("payload_bytes", payload_bytes,
               _is_int(payload_bytes) and 0 <= payload_bytes <= 65535, "an int in [0, 65535]")
        _check("idle_timeout", idle_timeout, _is_seconds(idle_timeout),
               "a positive number of seconds")
        _check("active_timeout", active_timeout, _is_seconds(active_timeout),
               "a positive number of seconds")
        _check("max_flows", max_flows, _is_int(max_flows) and 1 <= max_flows <= 1 << 30,
               "an int in [1, 2**30]")
        if _is_int(payload_bytes) and 0 <= payload_bytes <= 65535:
            one_flow = _core.meter_peak_flow_bytes(payload_bytes)
            _check("max_memory", max_memory,
                   _is_int(max_memory) and one_flow <= max_memory < 2**63,
                   f"an int of at least {one_flow} bytes (one flow at payload_bytes="
                   f"{payload_bytes})")
        _check("errors", errors, errors in ("raise", "skip"), "'raise' or 'skip'")
        super().__init__(source, batch_size, errors)
        # Whole milliseconds, at least 1, so tiny timeouts stay valid.
        self._native = _core.FlowMeter(
            payload_bytes=payload_bytes,
            idle_timeout_ms=max(1, round(idle_timeout * 1000)),
            active_timeout_ms=max(1, round(active_timeout * 1000)),
            max_flows=max_flows,
            max_memory_bytes=max_memory,
            decapsulate=decapsulate,
        )

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        return head[:4] in PCAP_MAGICS

    def _columns_to_batch(self, cols: dict) -> pa.RecordBatch:
        return _to_batch(cols)


def _binary(data: np.ndarray, offsets: np.ndarray) -> pa.Array:
    # One batch holds at most batch_size * 2 * 65535 payload bytes; int32
    # offsets (pa.binary) suffice unless batch_size is huge.
    if offsets[-1] >= 2**31:
        return pa.LargeBinaryArray.from_buffers(
            pa.large_binary(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
        ).cast(pa.binary())
    return pa.BinaryArray.from_buffers(
        pa.binary(),
        len(offsets) - 1,
        [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)],
    )


def address_array(a: np.ndarray) -> pa.Array:
    """16-byte address rows drained from the core as fixed_size_binary(16)."""
    return pa.FixedSizeBinaryArray.from_buffers(ADDRESS, len(a), [None, pa.py_buffer(a)])


def flow_key_arrays(cols: dict) -> list[pa.Array]:
    """The columns every drained native flow starts with: times, endpoints,
    protocol, counters and TCP flags."""
    return [
        pa.array(cols["ts_start"], type=pa.int64()).view(TIMESTAMP),
        pa.array(cols["ts_end"], type=pa.int64()).view(TIMESTAMP),
        address_array(cols["src_ip"]),
        address_array(cols["dst_ip"]),
        pa.array(cols["src_port"]),
        pa.array(cols["dst_port"]),
        pa.array(cols["protocol"]),
        pa.array(cols["packets"]),
        pa.array(cols["bytes"]),
        pa.array(cols["tcp_flags"]),
    ]


def _to_batch(cols: dict) -> pa.RecordBatch:
    arrays = [
        *flow_key_arrays(cols),
        _binary(*cols["src_payload"]),
        _binary(*cols["dst_payload"]),
        pa.DictionaryArray.from_arrays(
            pa.array(cols["tunnel"], mask=cols["tunnel"] == 0), _TUNNEL_NAMES
        ).cast(pa.string()),
        pa.array(cols["stratum_submits"]),
        pa.array(cols["stratum_difficulty"], from_pandas=True),  # NaN: no difficulty seen
        pa.DictionaryArray.from_arrays(
            pa.array(cols["stratum_algo"], mask=cols["stratum_algo"] == 0), _STRATUM_ALGO_NAMES
        ).cast(pa.string()),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=PCAP_SCHEMA)


def read_pcap(
    path: str | os.PathLike[str],
    batch_size: int = 65536,
    payload_bytes: int = 512,
    idle_timeout: float = 120.0,
    active_timeout: float = 1800.0,
    max_flows: int = 1_000_000,
    max_memory: int = 2**31,
    errors: Literal["raise", "skip"] = "raise",
    decapsulate: bool = True,
) -> PcapReader:
    """Meter a pcap or pcapng file into flow batches of the canonical schema.

    Yields ``pyarrow.RecordBatch`` objects of at most ``batch_size`` flows with
    the columns of :data:`PCAP_SCHEMA` (the required flow columns plus
    ``tcp_flags``, ``src_payload`` and ``dst_payload``). Flows are
    bidirectional; ``src`` is the sender of the first packet; ``bytes`` sums
    the frame lengths on the wire; payloads are the first ``payload_bytes``
    each side sent (TCP in sequence order up to the first hole). Timeouts are
    in seconds of capture time.

    Memory: the flow table holds at most ``max_flows`` flows and at most
    ``max_memory`` bytes (default 2 GiB). A flow takes 320 bytes plus, for
    each side that sent payload, a buffer of ``payload_bytes * 9 / 8``
    bytes, plus 256 bytes when its stratum shares are counted: at most
    1,728 bytes at the default 512 and 148,030 bytes at 65535
    (``nkclass._core.meter_peak_flow_bytes(payload_bytes)``). When
    either bound is reached, closed flows and then the least recently seen
    are emitted early, never lost: ``reader.counters`` counts them in
    ``flows_evicted`` (``memory_evictions`` for the memory bound) and
    records the high-water mark in ``peak_memory_bytes``. Add one 8 MB read
    buffer and the flows of the batch being built.

    Record lengths: a record's original (wire) length below its captured
    length, above 262,144 bytes, above the snap length of a frame the snap
    length did not cut, or past a complete, uncut packet by more than a
    frame check sequence cannot be right; ``bytes`` then counts the captured
    length and ``reader.counters["wire_len_fixed"]`` counts the records.

    With ``decapsulate`` (the default) packets of GRE (PPTP's enhanced GRE
    included), VXLAN, Geneve, L2TPv2 (UDP 1701), L2TPv3 (IP protocol 115 or
    UDP 1701), IP-in-IP and 6in4 tunnels that carry IP are metered as their
    inner packets, so the inner flows are classified; the ``tunnel`` column
    names the tunnel (``gre``, ``pptp``, ``vxlan``, ``geneve``, ``l2tp``,
    ``l2tpv3``, ``ipip``, ``6in4``; null for untunnelled flows). L2TPv3's
    cookie and sublayer lengths are session configuration, not on the wire:
    its Ethernet pseudowires are decoded when the frame after a 0, 4 or
    8-byte cookie carries IPv4 or IPv6, other pseudowires stay outer flows.
    A tunnel packet whose payload is not IP (PPP control, encrypted PPP)
    stays an outer flow; ``decapsulate=False`` keeps every tunnel packet on
    its outer flow.

    Stratum mining: a TCP flow whose first payload segments start a JSON
    object has every in-order segment (not only the payload prefix) read for
    stratum JSON-RPC lines: ``stratum_submits`` counts share submissions
    (``mining.submit``, CryptoNote ``submit``), ``stratum_difficulty`` is the
    pool's latest share difficulty (``mining.set_difficulty``, or a
    CryptoNote job ``target``; null when none was seen) and
    ``stratum_algo`` its dialect (``stratum_v1`` or ``cryptonote``; null for
    other flows). See :mod:`nkclass.report.hashrate`.

    A truncated or corrupt capture raises :class:`CaptureError` (a
    ``ValueError`` naming the file, byte offset and reason) after every
    complete flow has been yielded, or with ``errors="skip"`` is only
    reported in ``reader.counters`` and ``reader.status``.

    >>> reader = read_pcap("tests/data/pcap/dns53.pcap", payload_bytes=4)
    >>> batch = next(reader)
    >>> batch.column("dst_port")[0].as_py(), batch.column("src_payload")[0].as_py()
    (53, b'de\\x84\\x80')
    """
    return PcapReader(
        Source(os.fspath(path)),
        batch_size=batch_size,
        payload_bytes=payload_bytes,
        idle_timeout=idle_timeout,
        active_timeout=active_timeout,
        max_flows=max_flows,
        max_memory=max_memory,
        errors=errors,
        decapsulate=decapsulate,
    )
