"""DNS responses built field by field (with or without name compression),
and what a response teaches by the contract of parse_dns_answers: the
A/AAAA records of class IN whose owner the question's name reaches through
the answer section's CNAMEs."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class Record:
    owner: str
    type: int  # 1 A, 5 CNAME, 28 AAAA, anything else: opaque data
    data: object  # address text (A, AAAA), target name (CNAME), bytes (other)
    ttl: int = 300
    klass: int = 1


def _name(name: str, out: bytearray, offsets: dict[str, int], compress: bool) -> None:
    labels = name.split(".") if name else []
    for i in range(len(labels)):
        suffix = ".".join(labels[i:]).lower()
        if compress and suffix in offsets:
            out += struct.pack("!H", 0xC000 | offsets[suffix])
            return
        if len(out) < 0x3FFF:
            offsets.setdefault(suffix, len(out))
        label = labels[i].encode()
        out.append(len(label))
        out += label
    out.append(0)


def response(qname: str, records: list[Record], *, qtype: int = 1, rcode: int = 0,
             compress: bool = True, txid: int = 0x1234, tcp: bool = False) -> bytes:
    out = bytearray(struct.pack("!HHHHHH", txid, 0x8180 | rcode, 1, len(records), 0, 0))
    offsets: dict[str, int] = {}
    _name(qname, out, offsets, compress)
    out += struct.pack("!HH", qtype, 1)
    for r in records:
        _name(r.owner, out, offsets, compress)
        if r.type == 1:
            rdata = ipaddress.IPv4Address(r.data).packed
        elif r.type == 28:
            rdata = ipaddress.IPv6Address(r.data).packed
        elif r.type == 5:
            start = len(out) + 10  # after type, class, TTL and length
            body = bytearray(out) + bytes(10)  # offsets count from the message start
            _name(str(r.data), body, offsets, compress)
            rdata = bytes(body[start:])
        else:
            rdata = bytes(r.data)
        out += struct.pack("!HHIH", r.type, r.klass, r.ttl, len(rdata)) + rdata
    message = bytes(out)
    return struct.pack("!H", len(message)) + message if tcp else message


def expected(qname: str, records: list[Record], limit: int = 32, chain_limit: int = 8
             ) -> list[tuple[str, int]]:
    """(address text, TTL) taught, in record order."""
    chain = [qname.lower()]
    grew = True
    while grew and len(chain) < chain_limit:
        grew = False
        for r in records:
            if (r.type == 5 and r.klass == 1 and r.owner.lower() in chain
                    and str(r.data).lower() not in chain):
                chain.append(str(r.data).lower())
                grew = True
                if len(chain) == chain_limit:
                    break
    out = []
    for r in records:
        if r.klass == 1 and r.type in (1, 28) and r.owner.lower() in chain and len(out) < limit:
            ttl = 0 if r.ttl & 0x80000000 else r.ttl
            text = str(ipaddress.ip_address(r.data))
            out.append((text, ttl))
    return out


def mapped_text(raw16: bytes) -> str:
    addr = ipaddress.IPv6Address(raw16)
    return str(addr.ipv4_mapped or addr)
