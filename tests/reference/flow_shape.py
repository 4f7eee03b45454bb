"""Pure-Python reference of the flow-shape score: dicts and Fractions."""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction

from tests.reference.engine import as_address

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
MEMBER = 1 << 15


def group_conditions(flows: list[dict]) -> int:
    """The nine condition bits of one group of flows (dicts with ts_start,
    ts_end, packets, bytes, tcp_flags, src_port, dst_port)."""
    f = len(flows)
    p = sum(x["packets"] for x in flows)
    b = sum(x["bytes"] for x in flows)
    d = max(0, max(x["ts_end"] for x in flows) - min(x["ts_start"] for x in flows))
    bpp = Fraction(b, p)
    ppf = Fraction(p, f)

    def share(pred) -> Fraction:
        return Fraction(sum(1 for x in flows if pred(x)), f)

    conditions = [
        35 <= bpp <= 80 or 105 <= bpp <= 110,
        not 5 <= ppf <= 40,
        d > 0 and (2 <= Fraction(p * 60000, d) <= 8 or 40 <= Fraction(p * 60000, d) <= 5300),
        d > 300_000,
        share(lambda x: x["tcp_flags"] & (ACK | PSH) == ACK | PSH) > Fraction(9, 10),
        share(lambda x: x["tcp_flags"] & SYN) < Fraction(5, 100),
        share(lambda x: x["tcp_flags"] & RST) < Fraction(1, 100),
        share(lambda x: x["tcp_flags"] & FIN) < Fraction(5, 100),
        share(lambda x: x["src_port"] > x["dst_port"]) > Fraction(9, 10),
    ]
    return sum(1 << i for i, ok in enumerate(conditions) if ok)


def shape_masks(rows: list[dict], min_flows: int = 1) -> list[int]:
    """Per flow: its group's condition bits | MEMBER, or 0 (not TCP, no
    packets, or a group smaller than min_flows)."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        if r["protocol"] == 6 and r["packets"] > 0:
            key = (as_address(r["src_ip"]), as_address(r["dst_ip"]), r["dst_port"])
            groups[key].append(i)
    out = [0] * len(rows)
    for members in groups.values():
        if len(members) < min_flows:
            continue
        mask = group_conditions([rows[i] for i in members]) | MEMBER
        for i in members:
            out[i] = mask
    return out
