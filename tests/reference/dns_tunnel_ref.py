"""Pure-Python reference of the DNS tunnelling score: dicts, sets and Fractions
(the entropy in floats, summed in the same order as the native stage)."""

from __future__ import annotations

import math
import struct
from collections import Counter
from fractions import Fraction

MEMBER = 0x80
DATA_TYPES = {5, 10, 15, 16, 33, *range(65280, 65535)}


def first_query(payload: bytes, tcp: bool) -> tuple[list[bytes], int] | None:
    """(labels, qtype) of the DNS standard query at the start of the bytes."""
    if tcp:
        if len(payload) < 2:
            return None
        payload = payload[2 : 2 + struct.unpack("!H", payload[:2])[0]]
    if len(payload) < 12:
        return None
    flags, qdcount = struct.unpack("!H", payload[2:4])[0], struct.unpack("!H", payload[4:6])[0]
    if flags & 0x8000 or (flags >> 11) & 0xF or qdcount != 1:
        return None
    labels, i, wire = [], 12, 1
    while True:
        if i >= len(payload):
            return None
        n = payload[i]
        if n == 0:
            i += 1
            break
        if n > 63 or i + 1 + n > len(payload):
            return None
        wire += n + 1
        if wire > 255:
            return None
        labels.append(payload[i + 1 : i + 1 + n])
        i += 1 + n
    if not labels or i + 4 > len(payload):
        return None
    return labels, struct.unpack("!H", payload[i : i + 2])[0]


def lower(b: bytes) -> bytes:
    return bytes(c + 32 if 65 <= c <= 90 else c for c in b)


def entropy(data: bytes) -> float:
    counts = Counter(data)
    total = sum(c * math.log2(c) for _, c in sorted(counts.items()))
    return math.log2(len(data)) - total / len(data)


def conditions(flows: list[dict], min_queries: int = 10, name_chars: int = 40,
               label_bytes: int = 24, entropy_bits: float = 3.5, names: int = 20,
               queries: int = 100) -> list[int]:
    """The mask of each flow (dicts with protocol, src_port, dst_port,
    src_payload, dst_payload, optional packets) under the given thresholds."""
    zones: dict[bytes, dict] = {}
    seen: set[bytes] = set()
    member: dict[int, bytes] = {}
    for i, f in enumerate(flows):
        if f["protocol"] not in (6, 17) or 53 not in (f["src_port"], f["dst_port"]):
            continue
        tcp = f["protocol"] == 6
        q = first_query(f.get("src_payload") or b"", tcp) or first_query(
            f.get("dst_payload") or b"", tcp)
        if q is None:
            continue
        labels, qtype = [lower(x) for x in q[0]], q[1]
        keep = 3 if len(labels) > 2 and len(labels[-1]) == 2 and len(labels[-2]) <= 3 else 2
        keep = min(keep, len(labels))
        sub, zone = labels[: len(labels) - keep], b".".join(labels[len(labels) - keep :])
        z = zones.setdefault(zone, {"flows": 0, "names": 0, "long": 0, "types": 0,
                                    "queries": 0, "chars": 0, "entropy": 0.0})
        member[i] = zone
        name = b".".join([*sub, zone])
        z["flows"] += 1
        z["names"] += name not in seen
        seen.add(name)
        z["long"] += any(len(x) >= label_bytes for x in sub)
        z["types"] += qtype in DATA_TYPES
        z["chars"] += len(b".".join(sub))
        if b"".join(sub):
            z["entropy"] += entropy(b"".join(sub))
        packets = f.get("packets")
        z["queries"] = min(2**64 - 1, z["queries"] + (max(1, packets // 2) if packets is not None
                                                     else 1))
    masks = {}
    for zone, z in zones.items():
        n = z["flows"]
        bits = [
            Fraction(z["chars"], n) >= name_chars,
            Fraction(z["long"], n) >= Fraction(1, 2),
            z["entropy"] >= entropy_bits * n,
            Fraction(z["types"], n) >= Fraction(1, 2),
            z["names"] >= names,
            z["queries"] >= queries,
        ]
        mask = sum(1 << k for k, met in enumerate(bits) if met)
        masks[zone] = (mask | MEMBER) if z["queries"] >= min_queries else 0
    return [masks[member[i]] if i in member else 0 for i in range(len(flows))]


def passes(mask: int, min_conditions: int = 4) -> bool:
    met = bin(mask & 0x3F).count("1")
    return bool(mask & MEMBER) and bool(mask & 0x3) and met >= min_conditions
