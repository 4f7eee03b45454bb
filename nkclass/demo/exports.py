"""Synthetic IPFIX export traffic, for load tests, benchmarks and demos:
datagrams as an exporter sends them (a template set first, then data sets
of fixed-length records), and a bounded, rate-paced sender on loopback.
"""

from __future__ import annotations

import socket
import struct
import time

import numpy as np

#: The template: source and destination IPv4, ports, protocol, TCP flags,
#: packets, bytes, flowStart/EndMilliseconds (9 IEs, 41 bytes a record).
TEMPLATE_ID = 256
FIELDS = ((8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (6, 1), (2, 4), (1, 4), (152, 8), (153, 8))
RECORD = np.dtype([("src", ">u4"), ("dst", ">u4"), ("sport", ">u2"), ("dport", ">u2"),
                   ("proto", "u1"), ("flags", "u1"), ("packets", ">u4"), ("octets", ">u4"),
                   ("start", ">u8"), ("end", ">u8")])
#: Records per data set: a datagram stays under 1,400 bytes.
PER_DATAGRAM = 32


def _message(body: bytes, seq: int, domain: int, export_s: int) -> bytes:
    return struct.pack("!HHIII", 10, 16 + len(body), export_s, seq, domain) + body


def template_datagram(domain: int = 1, export_s: int = 1_700_000_000) -> bytes:
    fields = b"".join(struct.pack("!HH", i, n) for i, n in FIELDS)
    record = struct.pack("!HH", TEMPLATE_ID, len(FIELDS)) + fields
    return _message(struct.pack("!HH", 2, 4 + len(record)) + record, 0, domain, export_s)


def ipfix_datagrams(records: int, seed: int = 1, domain: int = 1,
                    per_datagram: int = PER_DATAGRAM,
                    export_s: int = 1_700_000_000) -> list[bytes]:
    """``records`` random flow records in data datagrams of ``per_datagram``
    each (send :func:`template_datagram` first)."""
    rng = np.random.default_rng(seed)
    rows = np.zeros(records, dtype=RECORD)
    rows["src"] = rng.integers(0x0A000000, 0x0AFFFFFF, records)
    rows["dst"] = np.where(rng.random(records) < 0.1, 0xAF2DB000 + rng.integers(0, 1024, records),
                           rng.integers(0x01000000, 0xDF000000, records))
    rows["sport"] = rng.integers(1024, 65535, records)
    rows["dport"] = rng.choice([443, 80, 53, 3333, 9001, 1194], records)
    rows["proto"] = 6
    rows["flags"] = 0x1B
    rows["packets"] = rng.integers(1, 1000, records)
    rows["octets"] = rows["packets"] * rng.integers(40, 1500, records)
    rows["start"] = export_s * 1000 - rng.integers(0, 60_000, records)
    rows["end"] = rows["start"] + rng.integers(0, 30_000, records)
    raw = rows.tobytes()
    out = []
    size = RECORD.itemsize
    for seq, at in enumerate(range(0, records, per_datagram), start=1):
        chunk = raw[at * size:(at + per_datagram) * size]
        out.append(_message(struct.pack("!HH", TEMPLATE_ID, 4 + len(chunk)) + chunk,
                            seq, domain, export_s))
    return out


def send_paced(port: int, datagrams: list[bytes], rate: float,
               host: str = "127.0.0.1") -> float:
    """Sends ``datagrams`` to ``host:port`` at ``rate`` datagrams per second
    (in 1 ms bursts); returns the seconds it took. Loopback only."""
    if host not in ("127.0.0.1", "::1"):
        raise ValueError("send_paced sends to loopback only")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        start = time.perf_counter()
        sent = 0
        total = len(datagrams)
        while sent < total:
            due = min(total, int((time.perf_counter() - start) * rate) + 1)
            while sent < due:
                sock.sendto(datagrams[sent], (host, port))
                sent += 1
            if sent < total:
                time.sleep(0.0005)
        return time.perf_counter() - start
    finally:
        sock.close()
