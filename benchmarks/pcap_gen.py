"""Seeded synthetic pcap captures for the flow-meter benchmarks.

Every record has the same size so the whole file is one (n, record) uint8
array filled column by column: Ethernet + IPv4 + TCP (60 payload bytes) or
UDP (72 payload bytes), 114-byte frames. TCP sequence numbers advance per
flow and direction, so payload assembly does real work.

:func:`write_tunnel_capture` wraps a share of those flows in GRE or VXLAN
between a few tunnel endpoints, as on a link that carries site-to-site
tunnels beside plain traffic.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

FRAME_BYTES = 114
RECORD_BYTES = 16 + FRAME_BYTES
TCP_PAYLOAD = 60
UDP_PAYLOAD = 72


def _be16(a: np.ndarray) -> np.ndarray:
    return a.astype(">u2").view(np.uint8).reshape(-1, 2)


def _be32(a: np.ndarray) -> np.ndarray:
    return a.astype(">u4").view(np.uint8).reshape(-1, 4)


PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def write_capture(path: Path, packets: int, flows: int, seed: int = 7,
                  tcp_share: float = 0.7, seconds: float = 100.0,
                  clients: tuple[int, int] = (0x0A000000, 0x0AFFFFFF)) -> Path:
    """Writes `packets` records over `flows` bidirectional flows to `path`;
    client addresses are drawn from [clients[0], clients[1])."""
    rec, _, _ = _records(np.random.default_rng(seed), packets, flows, tcp_share, seconds,
                         clients)
    with open(path, "wb") as f:
        f.write(PCAP_HEADER)
        f.write(rec.tobytes())
    return path


def _records(rng: np.random.Generator, packets: int, flows: int, tcp_share: float,
             seconds: float, clients: tuple[int, int]):
    """The (packets, RECORD_BYTES) records of write_capture, each packet's
    flow index and whether it goes server -> client."""
    client = rng.integers(clients[0], clients[1], flows, dtype=np.uint32)
    server = rng.integers(0xC0000000, 0xDFFFFFFF, flows, dtype=np.uint32)
    cport = rng.integers(1024, 65535, flows, dtype=np.uint32)
    sport = rng.choice(np.array([80, 443, 53, 3333, 8080, 1194], np.uint32), flows)
    is_tcp = rng.random(flows) < tcp_share

    flow = rng.integers(0, flows, packets)
    reply = rng.random(packets) < 0.5  # direction: server -> client
    # Position of each packet within its (flow, direction) stream, for seq numbers.
    stream = flow * 2 + reply
    order = np.argsort(stream, kind="stable")
    ranks = np.empty(packets, np.int64)
    sorted_streams = stream[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_streams)) + 1]
    run_start = np.repeat(starts, np.diff(np.r_[starts, packets]))
    ranks[order] = np.arange(packets) - run_start

    rec = np.zeros((packets, RECORD_BYTES), np.uint8)
    usec = np.linspace(0, seconds * 1e6, packets).astype(np.int64) + 1_700_000_000 * 10**6
    rec[:, 0:4] = (usec // 10**6).astype("<u4").view(np.uint8).reshape(-1, 4)
    rec[:, 4:8] = (usec % 10**6).astype("<u4").view(np.uint8).reshape(-1, 4)
    rec[:, 8:12] = np.frombuffer(struct.pack("<I", FRAME_BYTES), np.uint8)
    rec[:, 12:16] = np.frombuffer(struct.pack("<I", FRAME_BYTES), np.uint8)
    eth = 16
    rec[:, eth : eth + 12] = np.frombuffer(b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02",
                                           np.uint8)
    rec[:, eth + 12 : eth + 14] = (0x08, 0x00)
    ip = eth + 14
    tcp = is_tcp[flow]
    rec[:, ip] = 0x45
    rec[:, ip + 2 : ip + 4] = _be16(np.full(packets, FRAME_BYTES - 14))
    rec[:, ip + 4 : ip + 6] = _be16(np.arange(packets) & 0xFFFF)
    rec[:, ip + 8] = 64
    rec[:, ip + 9] = np.where(tcp, 6, 17)
    src = np.where(reply, server[flow], client[flow])
    dst = np.where(reply, client[flow], server[flow])
    rec[:, ip + 12 : ip + 16] = _be32(src)
    rec[:, ip + 16 : ip + 20] = _be32(dst)
    l4 = ip + 20
    rec[:, l4 : l4 + 2] = _be16(np.where(reply, sport[flow], cport[flow]))
    rec[:, l4 + 2 : l4 + 4] = _be16(np.where(reply, cport[flow], sport[flow]))
    seq = (1000 + ranks * TCP_PAYLOAD) & 0xFFFFFFFF
    t = np.flatnonzero(tcp)
    rec[t, l4 + 4 : l4 + 8] = _be32(seq[t])
    rec[t, l4 + 12] = 0x50
    rec[t, l4 + 13] = 0x18  # PSH ACK
    rec[t, l4 + 14 : l4 + 16] = (0xFF, 0xFF)
    u = np.flatnonzero(~tcp)
    rec[u, l4 + 4 : l4 + 6] = _be16(np.full(len(u), 8 + UDP_PAYLOAD))
    # Payload: printable bytes varying with the packet, so prefixes differ.
    body = (np.arange(RECORD_BYTES - l4 - 8)[None, :] + (np.arange(packets) % 61)[:, None])
    rec[u, l4 + 8 :] = (0x20 + body[u] % 95).astype(np.uint8)
    rec[t, l4 + 20 :] = (0x20 + body[t, 12:] % 95).astype(np.uint8)
    return rec, flow, reply


#: Tunnel kinds of write_tunnel_capture's flows.
PLAIN, GRE, VXLAN = 0, 1, 2
#: Tunnel endpoint pairs (site routers, VTEPs) the tunnelled flows share.
TUNNEL_ENDPOINTS = 16
GRE_HEADER = 20 + 4  # outer IPv4 + GRE carrying IPv4 (0x0800)
VXLAN_HEADER = 14 + 20 + 8 + 8  # outer Ethernet, IPv4, UDP to 4789, VXLAN


def write_tunnel_capture(path: Path, packets: int, flows: int, tunnel_share: float,
                         seed: int = 7, chunk: int = 65536) -> tuple[Path, np.ndarray]:
    """Writes write_capture's traffic with `tunnel_share` of the flows
    (half each) carried in GRE (the inner IP packet after an outer IPv4 and
    GRE header) or VXLAN (the inner Ethernet frame in UDP to 4789, the
    source port a hash of the inner flow, as RFC 7348 advises). Returns the
    path and each flow's kind (PLAIN, GRE, VXLAN)."""
    rng = np.random.default_rng(seed)
    rec, flow, reply = _records(rng, packets, flows, 0.7, 100.0, (0x0A000000, 0x0AFFFFFF))
    draw = rng.random(flows)
    kind = np.where(draw < tunnel_share / 2, GRE, np.where(draw < tunnel_share, VXLAN, PLAIN))
    site = rng.integers(0, TUNNEL_ENDPOINTS, flows)
    entropy_port = rng.integers(49152, 65536, flows)
    frame_start, ip_start = 16, 16 + 14
    with open(path, "wb") as f:
        f.write(PCAP_HEADER)
        for lo in range(0, packets, chunk):
            hi = min(lo + chunk, packets)
            k, fl, rep = kind[flow[lo:hi]], flow[lo:hi], reply[lo:hi]
            out = np.zeros((hi - lo, RECORD_BYTES + VXLAN_HEADER), np.uint8)
            size = np.full(hi - lo, RECORD_BYTES)
            plain = k == PLAIN
            out[plain, :RECORD_BYTES] = rec[lo:hi][plain]
            # Tunnel endpoints: 198.18.s.1 on the client side, 198.19.s.1 on
            # the server side, swapped for replies.
            near = (0xC6120001 + (site[fl] << 8)).astype(np.uint32)
            far = (0xC6130001 + (site[fl] << 8)).astype(np.uint32)
            outer_src, outer_dst = np.where(rep, far, near), np.where(rep, near, far)
            for tunnel, header in ((GRE, GRE_HEADER), (VXLAN, VXLAN_HEADER)):
                rows = np.flatnonzero(k == tunnel)
                if len(rows) == 0:
                    continue
                size[rows] = RECORD_BYTES + header
                frame = RECORD_BYTES - frame_start + header
                out[rows, :frame_start] = rec[lo:hi][rows, :frame_start]
                out[rows, 8:12] = _le32(np.full(len(rows), frame))
                out[rows, 12:16] = _le32(np.full(len(rows), frame))
                out[rows, 16:30] = rec[lo:hi][rows, 16:30]  # outer Ethernet, IPv4 type
                ip = 30
                out[rows, ip] = 0x45
                out[rows, ip + 2 : ip + 4] = _be16(np.full(len(rows), frame - 14))
                out[rows, ip + 8] = 64
                out[rows, ip + 9] = 47 if tunnel == GRE else 17
                out[rows, ip + 12 : ip + 16] = _be32(outer_src[rows])
                out[rows, ip + 16 : ip + 20] = _be32(outer_dst[rows])
                if tunnel == GRE:
                    out[rows, ip + 22 : ip + 24] = (0x08, 0x00)
                    out[rows, ip + 24 : ip + 24 + RECORD_BYTES - ip_start] = \
                        rec[lo:hi][rows, ip_start:]
                    continue
                udp = ip + 20
                out[rows, udp : udp + 2] = _be16(entropy_port[fl[rows]])
                out[rows, udp + 2 : udp + 4] = (0x12, 0xB5)  # 4789
                out[rows, udp + 4 : udp + 6] = _be16(np.full(len(rows), frame - 34))
                out[rows, udp + 8] = 0x08  # VNI present
                out[rows, udp + 13] = 1   # VNI 256
                out[rows, udp + 16 : udp + 16 + RECORD_BYTES - frame_start] = \
                    rec[lo:hi][rows, frame_start:]
            # Rows left-aligned in `out`: the mask keeps each row's bytes in order.
            f.write(out[np.arange(out.shape[1])[None, :] < size[:, None]].tobytes())
    return path, kind


def _le32(a: np.ndarray) -> np.ndarray:
    return a.astype("<u4").view(np.uint8).reshape(-1, 4)


def prefix_copy(src: Path, dst: Path, packets: int) -> Path:
    """The first `packets` records of a capture written by write_capture."""
    with open(src, "rb") as f:
        dst.write_bytes(f.read(24 + packets * RECORD_BYTES))
    return dst
