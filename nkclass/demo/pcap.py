"""Write flow batches as a libpcap capture (Ethernet + IPv4 + TCP/UDP), vectorised.

Each flow becomes real packets: TCP gets a SYN / SYN-ACK / ACK handshake,
the initiator's payload (``src_payload``), the responder's
(``dst_payload``), filler data segments up to the flow's packet count
(at most ``max_packets``), then FIN / FIN / ACK, with consistent sequence and
acknowledgement numbers. UDP gets one datagram per packet, the payloads
first. A flow's packets span at most ``span_s`` seconds from its start, so
the pcap flow meter's idle and active timeouts never split it; metering the
file (``nkclass.read``) gives back one flow per input flow with the same
5-tuple. IPv4 header checksums are computed; TCP/UDP checksums are left 0
(as captured on a host with checksum offload). IPv4 flows only.
"""

from __future__ import annotations

import os
import struct

import numpy as np
import pyarrow as pa

_ETH = 14
_IP = 20
_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)

_REC = [("ts_sec", "<u4"), ("ts_usec", "<u4"), ("incl", "<u4"), ("orig", "<u4"),
        ("eth_dst", "V6"), ("eth_src", "V6"), ("eth_type", ">u2"),
        ("vihl", "u1"), ("tos", "u1"), ("total", ">u2"), ("ident", ">u2"), ("frag", ">u2"),
        ("ttl", "u1"), ("proto", "u1"), ("csum", ">u2"), ("src", ">u4"), ("dst", ">u4"),
        ("sport", ">u2"), ("dport", ">u2")]  # fmt: skip
TCP_DTYPE = np.dtype(
    [*_REC, ("seq", ">u4"), ("ack", ">u4"), ("off", "u1"), ("flags", "u1"), ("win", ">u2"),
     ("tcsum", ">u2"), ("urg", ">u2")]
)  # fmt: skip
UDP_DTYPE = np.dtype([*_REC, ("ulen", ">u2"), ("ucsum", ">u2")])
_MAC = (np.array([2, 0, 0, 0, 0, 1], np.uint8), np.array([2, 0, 0, 0, 0, 2], np.uint8))


def _v4(column: pa.Array) -> np.ndarray:
    raw = np.frombuffer(column.buffers()[1], np.uint8)[column.offset * 16 :]
    return raw.reshape(-1, 16)[: len(column), 12:].copy().view(">u4").ravel().astype(np.uint32)


def _payload(column: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    column = column.cast(pa.large_binary())
    n = len(column)
    bufs = column.buffers()
    offsets = np.frombuffer(bufs[1], np.int64, n + 1, column.offset * 8)
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    return offsets[:-1], np.where(valid, np.diff(offsets), 0), data


def _segments(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    total = int(lengths.sum())
    ends = np.cumsum(lengths)
    return np.repeat(starts - (ends - lengths), lengths) + np.arange(total)


def _excl_cumsum(x: np.ndarray, first: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Per-flow exclusive running sum of ``x`` (packets flow-contiguous)."""
    c = np.cumsum(x)
    return c - x - np.repeat(c[first] - x[first], k)


def _packets(batch: pa.RecordBatch, rng: np.random.Generator, max_packets: int, span_s: float):
    """Serialised records of one batch, in time order: (times_us, lengths, bytes)."""
    n = batch.num_rows
    proto = batch.column("protocol").to_numpy()
    keep = (proto == 6) | (proto == 17)
    if not keep.all():
        batch = batch.filter(pa.array(keep))
        n, proto = batch.num_rows, proto[keep]
    tcp = proto == 6
    src, dst = _v4(batch.column("src_ip")), _v4(batch.column("dst_ip"))
    sport = batch.column("src_port").to_numpy()
    dport = batch.column("dst_port").to_numpy()
    want = batch.column("packets").to_numpy().astype(np.int64)
    per_packet = batch.column("bytes").to_numpy().astype(np.int64) // np.maximum(want, 1)
    filler = np.clip(per_packet - 54, 0, 256)
    s_off, s_len, s_data = _payload(batch.column("src_payload"))
    d_off, d_len, d_data = _payload(batch.column("dst_payload"))
    s_len, d_len = np.minimum(s_len, 1400), np.minimum(d_len, 1400)
    has_s, has_d = s_len > 0, d_len > 0
    fixed = np.where(tcp, 6 + has_s + has_d, 1 + has_d)
    k = np.maximum(fixed, np.minimum(want, max_packets))
    first = np.concatenate(([0], np.cumsum(k)[:-1]))
    f = np.repeat(np.arange(n), k)  # flow of each packet
    j = np.arange(len(f)) - first[f]  # position within the flow
    kf = k[f]
    t = tcp[f]
    # roles: 0 handshake/fin control, 1 src payload, 2 dst payload, 3 filler
    pay_s_at = np.where(tcp, 3, 0)[f]
    pay_d_at = np.where(tcp, 3 + has_s, 1)[f]
    is_s = has_s[f] & (j == pay_s_at)
    is_d = has_d[f] & (j == pay_d_at)
    control = t & ((j < 3) | (j >= kf - 3))
    direction = np.where(is_s, 0, np.where(is_d, 1, j % 2)).astype(np.uint8)
    direction = np.where(t & (j < 3), np.array([0, 1, 0])[np.minimum(j, 2)], direction)
    direction = np.where(t & (j >= kf - 3), (j - (kf - 3)) % 2, direction).astype(np.uint8)
    # a UDP flow without src payload still starts with a client datagram
    direction = np.where(~t & (j == 0), 0, direction).astype(np.uint8)
    length = np.where(is_s, s_len[f], np.where(is_d, d_len[f], filler[f]))
    length = np.where(control, 0, length)
    length = np.where(~t & ~is_s & ~is_d & (length == 0), 32, length)
    flags = np.full(len(f), 0x18, np.uint8)
    flags[t & (j == 0)] = 0x02
    flags[t & (j == 1)] = 0x12
    flags[t & (j == 2)] = 0x10
    flags[t & (j >= kf - 3) & (j < kf - 1)] = 0x11
    flags[t & (j == kf - 1)] = 0x10
    # sequence numbers: SYN and FIN consume one
    consumed = length + (t & ((j <= 1) | ((j >= kf - 3) & (j < kf - 1))))
    isn = rng.integers(0, 1 << 32, (n, 2), dtype=np.uint64)
    sent_c = _excl_cumsum(np.where(direction == 0, consumed, 0), first, k)
    sent_s = _excl_cumsum(np.where(direction == 1, consumed, 0), first, k)
    mine = np.where(direction == 0, sent_c, sent_s).astype(np.uint64)
    theirs = np.where(direction == 0, sent_s, sent_c).astype(np.uint64)
    seq = (isn[f, direction] + mine) & 0xFFFFFFFF
    ack = np.where(j == 0, 0, (isn[f, 1 - direction] + theirs) & 0xFFFFFFFF)
    # times: spread over min(duration, span) from the flow start
    start_us = batch.column("ts_start").cast(pa.int64()).to_numpy() * 1000
    dur_us = (batch.column("ts_end").cast(pa.int64()).to_numpy() * 1000) - start_us
    span = np.minimum(np.maximum(dur_us, 1000), int(span_s * 1e6))
    # the closing FIN / FIN / ACK follow each other within milliseconds, so
    # the meter does not see the last ACK as a new flow after the close
    body = np.where(tcp, k - 3, k)
    gap = span // np.maximum(body - 1, 1)
    last = body[f] - 1
    when = start_us[f] + np.minimum(j, last) * gap[f] + np.maximum(j - last, 0) * 1000
    order = np.argsort(when, kind="stable")
    f, j, direction, length, flags, seq, ack, when, t = (
        a[order] for a in (f, j, direction, length, flags, seq, ack, when, t)
    )
    is_s, is_d = is_s[order], is_d[order]
    header = np.where(t, TCP_DTYPE.itemsize, UDP_DTYPE.itemsize)
    rec_len = header + length
    rec_off = np.concatenate(([0], np.cumsum(rec_len)[:-1]))
    out = np.zeros(int(rec_len.sum()), np.uint8)
    c2s = direction == 0
    for dtype, m in ((TCP_DTYPE, t), (UDP_DTYPE, ~t)):
        if not m.any():
            continue
        fm = f[m]
        h = np.zeros(int(m.sum()), dtype)
        wire = rec_len[m] - 16
        h["ts_sec"], h["ts_usec"] = when[m] // 1_000_000, when[m] % 1_000_000
        h["incl"] = h["orig"] = wire
        h["eth_type"] = 0x0800
        h["vihl"], h["ttl"], h["frag"] = 0x45, 64, 0x4000
        h["total"] = wire - _ETH
        h["ident"] = rng.integers(0, 1 << 16, len(h))
        h["proto"] = 6 if dtype is TCP_DTYPE else 17
        h["src"] = np.where(c2s[m], src[fm], dst[fm])
        h["dst"] = np.where(c2s[m], dst[fm], src[fm])
        h["sport"] = np.where(c2s[m], sport[fm], dport[fm])
        h["dport"] = np.where(c2s[m], dport[fm], sport[fm])
        if dtype is TCP_DTYPE:
            h["seq"], h["ack"], h["off"], h["flags"], h["win"] = (
                seq[m],
                ack[m],
                0x50,
                flags[m],
                65535,
            )
        else:
            h["ulen"] = length[m] + 8
        raw = h.view(np.uint8).reshape(len(h), dtype.itemsize)
        towards = c2s[m][:, None]
        raw[:, 16:22] = np.where(towards, _MAC[1], _MAC[0])
        raw[:, 22:28] = np.where(towards, _MAC[0], _MAC[1])
        words = raw[:, 16 + _ETH : 16 + _ETH + _IP].copy().view(">u2").astype(np.uint32)
        total = words.sum(axis=1)
        total = (total & 0xFFFF) + (total >> 16)
        total = (total & 0xFFFF) + (total >> 16)
        h["csum"] = ~total.astype(np.uint16)
        pos = rec_off[m][:, None] + np.arange(dtype.itemsize)
        out[pos] = raw
    for sel, offs, lens, data in ((is_s, s_off, s_len, s_data), (is_d, d_off, d_len, d_data)):
        if sel.any():
            fl = f[sel]
            out[_segments(rec_off[sel] + header[sel], lens[fl])] = data[
                _segments(offs[fl], lens[fl])
            ]
    return when, rec_len, out, n


def write_pcap(
    path: str | os.PathLike[str],
    batches,
    *,
    seed: int = 0,
    max_packets: int = 20,
    span_s: float = 60.0,
) -> tuple[int, int]:
    """Write flow batches (canonical schema with payload columns, IPv4,
    sorted by ``ts_start``) to a libpcap file; returns (flows, packets).
    Flows that are neither TCP nor UDP are left out."""
    rng = np.random.default_rng([seed, 0x9CA9])
    flows = packets = 0
    carry_when = np.zeros(0, np.int64)
    carry_len = np.zeros(0, np.int64)
    carry = np.zeros(0, np.uint8)
    with open(path, "wb") as fh:
        fh.write(_PCAP_HEADER)
        for batch in batches:
            if batch.num_rows == 0:
                continue
            when, rec_len, out, n = _packets(batch, rng, max_packets, span_s)
            flows += n
            packets += len(when)
            if len(carry_when):
                when, rec_len, out = _merge(carry_when, carry_len, carry, when, rec_len, out)
            # later batches start at or after this batch's last flow start
            cutoff = int(batch.column("ts_start")[-1].value) * 1000
            keep = int(np.searchsorted(when, cutoff, side="right"))
            split = int(rec_len[:keep].sum())
            fh.write(out[:split].tobytes())
            carry_when, carry_len, carry = when[keep:], rec_len[keep:], out[split:]
        fh.write(carry.tobytes())
    return flows, packets


def _merge(aw, al, ab, bw, bl, bb):
    """Merge carried records (a) into a new batch's records (b), both time-sorted."""
    head = int(np.searchsorted(bw, aw[-1], side="right"))
    head_bytes = int(bl[:head].sum())
    w = np.concatenate((aw, bw[:head]))
    ln = np.concatenate((al, bl[:head]))
    src = np.concatenate((ab, bb[:head_bytes]))
    starts = np.concatenate(([0], np.cumsum(ln)[:-1]))
    order = np.argsort(w, kind="stable")
    merged = src[_segments(starts[order], ln[order])]
    return (
        np.concatenate((w[order], bw[head:])),
        np.concatenate((ln[order], bl[head:])),
        np.concatenate((merged, bb[head_bytes:])),
    )
