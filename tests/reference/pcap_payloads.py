"""First payload bytes of each flow in a capture (dpkt), for detector tests."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

import dpkt

PCAP_DIR = Path(__file__).resolve().parents[1] / "data" / "pcap"


@dataclass
class Flow:
    key: tuple[str, int, str, int, int]  # as the first packet saw it
    src: bytearray = field(default_factory=bytearray)
    dst: bytearray = field(default_factory=bytearray)
    src_packets: int = 0
    dst_packets: int = 0


def _ip_text(raw: bytes) -> str:
    family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, raw)


def flows(name: str, *, packets: int = 4, limit: int = 2048) -> list[Flow]:
    """Flows of `name` with the first `packets` payload-carrying TCP
    segments of each direction concatenated (at most `limit` bytes a side),
    or the first UDP datagram of each direction."""
    table: dict[tuple, Flow] = {}
    with open(PCAP_DIR / name, "rb") as fh:
        magic = fh.read(4)
        fh.seek(0)
        reader = dpkt.pcapng.Reader(fh) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(fh)
        link = reader.datalink()
        for _, buf in reader:
            if link == dpkt.pcap.DLT_EN10MB:
                ip = dpkt.ethernet.Ethernet(buf).data
            elif link == dpkt.pcap.DLT_LINUX_SLL:
                ip = dpkt.sll.SLL(buf).data
            elif link in (dpkt.pcap.DLT_RAW, 101):
                ip = dpkt.ip.IP(buf) if buf[0] >> 4 == 4 else dpkt.ip6.IP6(buf)
            elif link == dpkt.pcap.DLT_NULL:
                ip = dpkt.loopback.Loopback(buf).data
            else:
                raise ValueError(f"{name}: link type {link} not handled")
            if not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
                continue
            seg = ip.data
            if not isinstance(seg, (dpkt.tcp.TCP, dpkt.udp.UDP)):
                continue
            proto = 6 if isinstance(seg, dpkt.tcp.TCP) else 17
            a = (_ip_text(ip.src), seg.sport)
            b = (_ip_text(ip.dst), seg.dport)
            fwd = (*a, *b, proto)
            rev = (*b, *a, proto)
            if rev in table:
                flow, forward = table[rev], False
            else:
                flow, forward = table.setdefault(fwd, Flow(fwd)), True
            data = bytes(seg.data)
            if not data:
                continue
            cap = packets if proto == 6 else 1
            if forward and flow.src_packets < cap:
                flow.src_packets += 1
                flow.src += data[: limit - len(flow.src)]
            elif not forward and flow.dst_packets < cap:
                flow.dst_packets += 1
                flow.dst += data[: limit - len(flow.dst)]
    return list(table.values())
