"""Seeded synthetic pcap captures for the flow-meter benchmarks.

Every record has the same size so the whole file is one (n, record) uint8
array filled column by column: Ethernet + IPv4 + TCP (60 payload bytes) or
UDP (72 payload bytes), 114-byte frames. TCP sequence numbers advance per
flow and direction, so payload assembly does real work.
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


def write_capture(path: Path, packets: int, flows: int, seed: int = 7,
                  tcp_share: float = 0.7, seconds: float = 100.0,
                  clients: tuple[int, int] = (0x0A000000, 0x0AFFFFFF)) -> Path:
    """Writes `packets` records over `flows` bidirectional flows to `path`;
    client addresses are drawn from [clients[0], clients[1])."""
    rng = np.random.default_rng(seed)
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

    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    with open(path, "wb") as f:
        f.write(header)
        f.write(rec.tobytes())
    return path


def prefix_copy(src: Path, dst: Path, packets: int) -> Path:
    """The first `packets` records of a capture written by write_capture."""
    with open(src, "rb") as f:
        dst.write_bytes(f.read(24 + packets * RECORD_BYTES))
    return dst
