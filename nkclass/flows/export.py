"""Flow export records (NetFlow v5/v9, IPFIX, sFlow v5) as canonical flow
batches: from captures of UDP export traffic (``format="netflow"``) and,
through :mod:`nkclass.collect`, from live sockets.

The decoding runs natively in ``nkclass._core.ExportDecoder`` (templates per
exporter and domain, expiry, withdrawal, sampling); this module owns the
defaults, argument checks and the Arrow batches. Records carry the
canonical columns plus ``tcp_flags``, ``src_as``, ``dst_as``, ``src_payload``
(the sampled packet's payload, sFlow only), ``sampling_rate`` (the rate
packets and bytes were scaled by; 1 when unsampled) and ``exporter`` (the
datagram's source address, 16 bytes).

>>> reader = read_export_capture("tests/data/export/netflow-v5.pcap")
>>> sum(batch.num_rows for batch in reader), reader.counters["decode_errors"]
(47, 0)
"""

from __future__ import annotations

import os
from typing import Literal

import pyarrow as pa

from nkclass import _core
from nkclass.flows.pcap import NativeCaptureReader, _binary, address_array, flow_key_arrays
from nkclass.flows.schema import ADDRESS, ALL_FIELDS, REQUIRED
from nkclass.flows.source import Source

#: The schema of every batch of decoded export records.
EXPORT_SCHEMA = pa.schema([
    *REQUIRED,
    ALL_FIELDS["tcp_flags"],
    ALL_FIELDS["src_as"],
    ALL_FIELDS["dst_as"],
    ALL_FIELDS["src_payload"],
    pa.field("sampling_rate", pa.uint32(), nullable=False),
    pa.field("exporter", ADDRESS, nullable=False),
])


def check_decoder_options(template_timeout: object, max_templates: object,
                          payload_bytes: object, owner: str) -> dict:
    """The ExportDecoder keyword arguments, or a ValueError naming the bad one."""
    def bad(name: str, value: object, expected: str) -> ValueError:
        return ValueError(f"The {name!r} parameter of {owner} must be {expected}. "
                          f"Got {value!r} instead.")

    def is_int(v: object) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if not (isinstance(template_timeout, int | float) and not isinstance(template_timeout, bool)
            and template_timeout > 0):
        raise bad("template_timeout", template_timeout, "a positive number of seconds")
    if not (is_int(max_templates) and max_templates >= 1):
        raise bad("max_templates", max_templates, "an int >= 1")
    if not (is_int(payload_bytes) and 0 <= payload_bytes <= 65535):
        raise bad("payload_bytes", payload_bytes, "an int in [0, 65535]")
    return {
        "template_timeout_ms": max(1, round(template_timeout * 1000)),
        "max_templates": max_templates,
        "payload_bytes": payload_bytes,
    }


def records_to_batch(cols: dict) -> pa.RecordBatch:
    """One Arrow batch of :data:`EXPORT_SCHEMA` from drained native columns."""
    arrays = [
        *flow_key_arrays(cols),
        pa.array(cols["src_as"]),
        pa.array(cols["dst_as"]),
        _binary(*cols["src_payload"]),
        pa.array(cols["sampling_rate"]),
        address_array(cols["exporter"]),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=EXPORT_SCHEMA)


class ExportCaptureReader(NativeCaptureReader):
    """Flow batches from a pcap/pcapng of UDP export traffic; see
    :func:`read_export_capture`. After iteration, ``counters`` holds the
    decoder's and the capture's totals and ``status`` how the input ended."""

    format = "netflow"
    extensions = ()

    def __init__(self, source: Source, batch_size: int = 65536,
                 errors: Literal["raise", "skip"] = "raise", *,
                 template_timeout: float = 1800.0, max_templates: int = 65536,
                 payload_bytes: int = 512) -> None:
        options = check_decoder_options(template_timeout, max_templates, payload_bytes,
                                        "read_export_capture")
        super().__init__(source, batch_size, errors)
        self._native = _core.ExportCapture(**options)

    def _columns_to_batch(self, cols: dict) -> pa.RecordBatch:
        return records_to_batch(cols)


def read_export_capture(
    path: str | os.PathLike[str],
    batch_size: int = 65536,
    template_timeout: float = 1800.0,
    max_templates: int = 65536,
    payload_bytes: int = 512,
    errors: Literal["raise", "skip"] = "raise",
) -> ExportCaptureReader:
    """Decode the NetFlow v5/v9, IPFIX and sFlow datagrams of a capture of
    export traffic into batches of :data:`EXPORT_SCHEMA`.

    Every UDP datagram is decoded with its source address as the exporter
    and its capture time as the receive time (template expiry runs on it).
    Bad datagrams, unknown templates and the like are counted in
    ``reader.counters`` (``decode_errors``, ``template_misses``,
    ``bad_templates``, ``sampling_zero``, ...) and skipped; a truncated or
    corrupt capture file raises :class:`~nkclass.flows.pcap.CaptureError`
    after every record before the damage, or with ``errors="skip"`` is only
    reported in ``reader.status``.
    """
    return ExportCaptureReader(
        Source(os.fspath(path)), batch_size=batch_size, errors=errors,
        template_timeout=template_timeout, max_templates=max_templates,
        payload_bytes=payload_bytes,
    )
