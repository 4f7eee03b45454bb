"""The flow meter's tunnel decapsulation: GRE (PPTP's enhanced GRE included),
VXLAN, Geneve, L2TPv2, L2TPv3 Ethernet pseudowires, IP-in-IP, 6in4 and PPPoE
sessions. Real captures are checked
against the conversations an independent dissector (tshark) lists for them
(tests/data/protocols/EXPECTED.tsv); built frames cover each header option,
nesting and every truncation."""

from __future__ import annotations

import csv
import ipaddress
import struct
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nkclass import _core
from nkclass.flows.pcap import read_pcap
from tests.unit.test_pcap_meter import (
    MAPPED,
    V6A,
    V6B,
    eth,
    ip4,
    ipv4,
    ipv6,
    meter_bytes,
    tcp,
    udp,
    write_pcap,
)

PROTOCOLS = Path(__file__).resolve().parents[1] / "data" / "protocols"
with open(PROTOCOLS / "EXPECTED.tsv", encoding="utf-8") as fh:
    EXPECTED = {row["file"]: row for row in csv.DictReader(fh, delimiter="\t")}
TUNNELS = dict(enumerate(_core.TUNNEL_NAMES))


def conversations(name: str) -> set[tuple]:
    """tshark's first conversations of a capture as unordered endpoint pairs."""
    out = set()
    for conv in filter(None, EXPECTED[name]["first_conversations"].split(", ")):
        proto, pair = conv.split(" ")
        ends = []
        for end in pair.split("->"):
            host, port = end.rsplit(":", 1)
            ends.append((host, int(port)))
        out.add((6 if proto == "tcp" else 17, frozenset(ends)))
    return out


def text(raw: bytes) -> str:
    addr = ipaddress.IPv6Address(raw)
    return str(addr.ipv4_mapped or addr)


def metered(name: str, **kw) -> list[dict]:
    rows = pa.Table.from_batches(list(read_pcap(PROTOCOLS / name, **kw))).to_pylist()
    for r in rows:
        r["src"], r["dst"] = text(r["src_ip"]), text(r["dst_ip"])
    return rows


def keyed(rows: list[dict]) -> dict[tuple, dict]:
    return {
        (r["protocol"], frozenset([(r["src"], r["src_port"]), (r["dst"], r["dst_port"])])): r
        for r in rows
    }


# --------------------------------------------------------------------------- real captures


def test_gre_capture_yields_the_inner_conversations_tshark_lists():
    rows = metered("gre-ip-mixed.pcap")
    flows = keyed(rows)
    assert conversations("gre-ip-mixed.pcap") <= set(flows)
    assert {r["tunnel"] for r in rows} == {"gre"}
    # tshark's protocol counts: 14 + 8 TCP segments of the SSH session.
    ssh = flows[(6, frozenset([("66.59.111.190", 40264), ("172.28.2.3", 22)]))]
    assert ssh["packets"] == 22
    assert sum(r["packets"] for r in rows) == int(EXPECTED["gre-ip-mixed.pcap"]["packets"])


def test_gre_capture_without_decapsulation_is_one_outer_flow():
    rows = metered("gre-ip-mixed.pcap", decapsulate=False)
    assert {(r["protocol"], r["tunnel"]) for r in rows} == {(47, None)}
    assert sum(r["packets"] for r in rows) == 40


def test_read_with_decapsulate_off_classifies_the_outer_flow_only():
    """The switch as users reach it: nkclass.read passes it to the meter."""
    import nkclass

    clf = nkclass.Classifier(asn=False)
    for decapsulate, expected in [(True, [(40354, 80, 6, 12, "vxlan", "http")]),
                                  (False, [(50000, 4789, 17, 12, None, "unknown")])]:
        rows = pa.Table.from_batches(list(nkclass.read(PROTOCOLS / "vxlan-http.pcap",
                                                       decapsulate=decapsulate)))
        apps = clf.classify(rows.combine_chunks().to_batches()[0]).names("app")
        got = [(r["src_port"], r["dst_port"], r["protocol"], r["packets"], r["tunnel"], app)
               for r, app in zip(rows.to_pylist(), apps, strict=True)]
        assert got == expected


@pytest.mark.parametrize(
    "name, tunnels",
    [
        ("vxlan-http.pcap", {40354: "vxlan"}),
        # One DNS exchange inside VXLAN, one plain: each on its own flow.
        ("vxlan-dns-small.pcap", {53: "vxlan", 32021: None}),
    ],
)
def test_vxlan_captures_yield_the_inner_conversations(name, tunnels):
    rows = metered(name)
    flows = keyed(rows)
    # tshark also lists the outer UDP 4789 conversation; decapsulated, its
    # packets are the inner flows' packets.
    inner = {c for c in conversations(name) if all(p != 4789 for _, p in c[1])}
    assert inner == set(flows)
    for key, flow in flows.items():
        (port,) = {p for _, p in key[1]} & set(tunnels)
        assert flow["tunnel"] == tunnels[port]
    assert sum(r["packets"] for r in rows) == int(EXPECTED[name]["packets"])


def test_vxlan_inner_http_flow_keeps_its_payload():
    rows = metered("vxlan-http.pcap")
    (flow,) = rows
    assert flow["src_payload"].startswith(b"GET ") and flow["dst_payload"].startswith(b"HTTP/1.")
    assert (flow["dst"], flow["dst_port"], flow["tunnel"]) == ("54.86.237.188", 80, "vxlan")


def test_pptp_enhanced_gre_carrying_ip_yields_the_inner_dns_flow():
    (flow,) = metered("pptp-gre-ppp-dns.pcap")
    assert (flow["src"], flow["src_port"], flow["dst"], flow["dst_port"], flow["protocol"]) == (
        "172.16.44.3", 40768, "8.8.8.8", 53, 17)
    assert flow["tunnel"] == "pptp" and flow["packets"] == 2


def test_pptp_control_frames_stay_on_the_outer_gre_flow():
    rows = metered("pptp-control-and-gre-ppp.pcap")
    by = {(r["protocol"], r["tunnel"]): r for r in rows}
    # LCP, PAP and IPCP are not IP: they stay on the GRE flow; the one IP
    # exchange inside (an ICMP echo) is its own flow.
    assert set(by) == {(6, None), (47, None), (1, "pptp")}
    assert by[(6, None)]["dst_port"] == 1723
    assert by[(1, "pptp")]["packets"] == 2


def test_pppoe_session_frames_decode_to_their_ip_packet():
    (flow,) = metered("l2tp-over-pppoe-single-lcp.pcap")
    assert (flow["src"], flow["src_port"], flow["dst"], flow["dst_port"], flow["protocol"]) == (
        "109.6.1.72", 1701, "95.136.242.99", 1701, 17)
    assert flow["tunnel"] is None


# --------------------------------------------------------------------------- built frames

A, B, C, D = "10.1.0.1", "10.1.0.2", "192.168.7.1", "192.168.7.2"
INNER = ipv4(C, D, 6, tcp(40000, 443, payload=b"\x16\x03\x01"))
INNER_KEY = (MAPPED + ip4(C), 40000, MAPPED + ip4(D), 443, 6)


def gre(payload, ptype=0x0800, checksum=False, key=None, seq=None):
    flags = (0x80 if checksum else 0) | (0x20 if key is not None else 0) | (
        0x10 if seq is not None else 0)
    head = struct.pack("!BBH", flags, 0, ptype)
    if checksum:
        head += b"\x00" * 4
    if key is not None:
        head += struct.pack("!I", key)
    if seq is not None:
        head += struct.pack("!I", seq)
    return head + payload


def pptp_gre(ppp, seq=1, ack=None):
    flags = 0x20 | 0x10
    head = struct.pack("!BBHHH", flags, 0x01 | (0x80 if ack is not None else 0), 0x880B,
                       len(ppp), 7) + struct.pack("!I", seq)
    if ack is not None:
        head += struct.pack("!I", ack)
    return head + ppp


def vxlan(frame, port=4789):
    return udp(50000, port, struct.pack("!BBHI", 0x08, 0, 0, 42 << 8) + frame)


def geneve(payload, ptype=0x6558, opt_words=0):
    head = struct.pack("!BBHI", opt_words, 0, ptype, 42 << 8) + b"\x00" * (4 * opt_words)
    return udp(50000, 6081, head + payload)


def l2tp(ppp, length=False, seq=None, offset=None, sport=50000, dport=1701, control=False):
    """An L2TPv2 message over UDP (RFC 2661 3.1) with the optional fields asked for."""
    flags = (0x80 if control else 0) | (0x40 if length else 0) | (
        0x08 if seq is not None else 0) | (0x02 if offset is not None else 0)
    body = struct.pack("!HH", 3, 4)  # tunnel id, session id
    if seq is not None:
        body += struct.pack("!HH", *seq)
    if offset is not None:
        body += struct.pack("!H", offset) + b"\xee" * offset
    body += ppp
    head = bytes([flags, 0x02])
    if length:
        head += struct.pack("!H", 4 + len(body))
    return udp(sport, dport, head + body)


def l2tpv3(frame, cookie=b"", session=0x1234, udp_ports=None, control=False):
    """An L2TPv3 data message (RFC 3931 4.1) with a cookie: over IP
    (protocol 115) the session id first, over UDP (``udp_ports``) after the
    flags and version 3 and two reserved bytes."""
    body = struct.pack("!I", session) + cookie + frame
    if udp_ports is None:
        return body
    return udp(*udp_ports, bytes([0x80 if control else 0x00, 0x03]) + b"\x00\x00" + body)


def flows_of(frames, **kw):
    cols, status, counters = meter_bytes(write_pcap([(1.0 + i, f) for i, f in enumerate(frames)]),
                                         **kw)
    assert status["status"] == "ok"
    out = {}
    for i in range(len(cols["packets"])):
        key = (bytes(cols["src_ip"][i]), int(cols["src_port"][i]), bytes(cols["dst_ip"][i]),
               int(cols["dst_port"][i]), int(cols["protocol"][i]))
        out[key] = (TUNNELS[int(cols["tunnel"][i])], int(cols["packets"][i]))
    return out, counters


@pytest.mark.parametrize(
    "outer, tunnel",
    [
        pytest.param(ipv4(A, B, 47, gre(INNER)), "gre", id="gre"),
        pytest.param(ipv4(A, B, 47, gre(INNER, checksum=True, key=5, seq=9)), "gre",
                     id="gre-checksum-key-seq"),
        pytest.param(ipv4(A, B, 47, gre(eth(INNER), ptype=0x6558)), "gre", id="gre-ethernet"),
        pytest.param(ipv6(V6A, V6B, 47, gre(INNER)), "gre", id="gre-over-ipv6"),
        pytest.param(ipv4(A, B, 47, pptp_gre(b"\xff\x03\x00\x21" + INNER)), "pptp", id="pptp"),
        pytest.param(ipv4(A, B, 47, pptp_gre(b"\x21" + INNER, ack=3)), "pptp",
                     id="pptp-compressed-ack"),
        pytest.param(ipv4(A, B, 17, vxlan(eth(INNER))), "vxlan", id="vxlan"),
        pytest.param(ipv4(A, B, 17, vxlan(eth(INNER), port=8472)), "vxlan", id="vxlan-8472"),
        pytest.param(ipv4(A, B, 17, vxlan(eth(INNER, vlans=[(0x8100, 3)]))), "vxlan",
                     id="vxlan-vlan"),
        pytest.param(ipv4(A, B, 17, geneve(eth(INNER), opt_words=2)), "geneve",
                     id="geneve-options"),
        pytest.param(ipv4(A, B, 17, geneve(INNER, ptype=0x0800)), "geneve", id="geneve-ip"),
        pytest.param(ipv4(A, B, 17, l2tp(b"\xff\x03\x00\x21" + INNER)), "l2tp", id="l2tp"),
        pytest.param(ipv4(A, B, 17, l2tp(b"\x21" + INNER, length=True, seq=(5, 6), offset=3)),
                     "l2tp", id="l2tp-length-seq-offset-compressed"),
        pytest.param(ipv4(B, A, 17, l2tp(b"\xff\x03\x00\x21" + INNER, sport=1701, dport=1701)),
                     "l2tp", id="l2tp-from-the-server"),
        pytest.param(ipv6(V6A, V6B, 17, l2tp(b"\x00\x21" + INNER, sport=1701, dport=40000)),
                     "l2tp", id="l2tp-over-ipv6-uncompressed-protocol"),
        pytest.param(ipv4(A, B, 115, l2tpv3(eth(INNER))), "l2tpv3", id="l2tpv3-ip"),
        pytest.param(ipv4(A, B, 115, l2tpv3(eth(INNER), cookie=b"\xc0\x0c\x1e\x01")), "l2tpv3",
                     id="l2tpv3-ip-cookie-4"),
        pytest.param(ipv4(A, B, 115, l2tpv3(eth(INNER), cookie=b"\x08\x00\x45\x00" * 2)),
                     "l2tpv3", id="l2tpv3-ip-cookie-8"),
        pytest.param(ipv6(V6A, V6B, 115, l2tpv3(eth(INNER, vlans=[(0x8100, 7)]), cookie=b"k" * 4)),
                     "l2tpv3", id="l2tpv3-over-ipv6-vlan"),
        pytest.param(ipv4(A, B, 17, l2tpv3(eth(INNER), udp_ports=(50000, 1701))), "l2tpv3",
                     id="l2tpv3-udp"),
        pytest.param(ipv4(B, A, 17, l2tpv3(eth(INNER), cookie=b"c" * 8, udp_ports=(1701, 1701))),
                     "l2tpv3", id="l2tpv3-udp-cookie-8-from-the-server"),
        pytest.param(ipv4(A, B, 4, INNER), "ipip", id="ipip"),
        pytest.param(ipv6(V6A, V6B, 4, INNER), "ipip", id="ipv4-in-ipv6"),
        pytest.param(ipv4(A, B, 47, gre(ipv4(A, B, 4, INNER))), "ipip", id="ipip-in-gre"),
    ],
)
def test_tunnels_yield_the_inner_flow_named_by_the_innermost_tunnel(outer, tunnel):
    flows, counters = flows_of([eth(outer, 0x86DD if outer[0] >> 4 == 6 else 0x0800)])
    assert flows == {INNER_KEY: (tunnel, 1)}
    assert counters["malformed"] == 0


def test_6in4_yields_the_inner_ipv6_flow():
    inner6 = ipv6(V6A, V6B, 17, udp(5000, 53, b"q"))
    flows, _ = flows_of([eth(ipv4(A, B, 41, inner6))])
    assert flows == {(V6A, 5000, V6B, 53, 17): ("6in4", 1)}


def test_l2tp_carrying_ipv6_yields_the_inner_ipv6_flow():
    inner6 = ipv6(V6A, V6B, 17, udp(5000, 53, b"q"))
    flows, _ = flows_of([eth(ipv4(A, B, 17, l2tp(b"\xff\x03\x00\x57" + inner6)))])
    assert flows == {(V6A, 5000, V6B, 53, 17): ("l2tp", 1)}


def test_l2tp_length_field_trims_trailing_bytes_and_refuses_overlong_lengths():
    message = l2tp(b"\xff\x03\x00\x21" + INNER, length=True)[8:]
    flows, _ = flows_of([eth(ipv4(A, B, 17, udp(50000, 1701, message + b"\x00" * 9)))])
    assert flows == {INNER_KEY: ("l2tp", 1)}
    overlong = bytearray(message)
    overlong[2:4] = struct.pack("!H", len(message) + 1)  # a byte past the datagram
    flows, counters = flows_of([eth(ipv4(A, B, 17, udp(50000, 1701, bytes(overlong))))])
    assert flows == {(MAPPED + ip4(A), 50000, MAPPED + ip4(B), 1701, 17): ("none", 1)}
    assert counters["malformed"] == 0


def test_l2tp_control_messages_ppp_control_and_other_versions_stay_the_outer_flow():
    frames = [
        eth(ipv4(A, B, 17, l2tp(b"\x00" * 20, length=True, seq=(0, 0), control=True))),
        eth(ipv4(A, B, 17, l2tp(b"\xff\x03\xc0\x21\x01\x01\x00\x04"))),  # LCP
        eth(ipv4(A, B, 17, udp(50000, 1701, b"\x00\x03" + b"\x00" * 4 + b"\x21" + INNER))),
    ]
    flows, counters = flows_of(frames)
    assert {(k[3], v[0]) for k, v in flows.items()} == {(1701, "none")}
    assert sum(v[1] for v in flows.values()) == 3 and counters["malformed"] == 0


def test_tunnelled_and_plain_packets_of_one_five_tuple_stay_apart():
    frames = [(1.0, eth(INNER)), (2.0, eth(ipv4(A, B, 47, gre(INNER))))]
    cols, _, _ = meter_bytes(write_pcap(frames))
    assert sorted(TUNNELS[int(t)] for t in cols["tunnel"]) == ["gre", "none"]


def test_l2tpv3_carrying_ipv6_yields_the_inner_ipv6_flow():
    inner6 = eth(ipv6(V6A, V6B, 17, udp(5000, 53, b"q")), 0x86DD)
    flows, _ = flows_of([eth(ipv4(A, B, 115, l2tpv3(inner6, cookie=b"\x00" * 4)))])
    assert flows == {(V6A, 5000, V6B, 53, 17): ("l2tpv3", 1)}


@pytest.mark.parametrize(
    "outer",
    [
        # Session id 0: a control message over IP.
        pytest.param(ipv4(A, B, 115, l2tpv3(eth(INNER), session=0)), id="ip-control"),
        # The T bit: a control message over UDP.
        pytest.param(ipv4(A, B, 17, l2tpv3(eth(INNER), udp_ports=(50000, 1701), control=True)),
                     id="udp-control"),
        # A 12-byte cookie (or 8 and a sublayer): no Ethernet frame at 0, 4 or 8.
        pytest.param(ipv4(A, B, 115, l2tpv3(eth(INNER), cookie=b"\xaa" * 12)), id="cookie-12"),
        # A PPP pseudowire, not Ethernet.
        pytest.param(ipv4(A, B, 115, l2tpv3(b"\xff\x03\x00\x21" + INNER)), id="ppp-pseudowire"),
        # Ethernet carrying ARP.
        pytest.param(ipv4(A, B, 115, l2tpv3(eth(b"\x00" * 28, 0x0806))), id="ethernet-arp"),
        # Version 3 on another port is not taken for L2TP.
        pytest.param(ipv4(A, B, 17, l2tpv3(eth(INNER), udp_ports=(50000, 1702))), id="not-1701"),
    ],
)
def test_l2tpv3_control_other_pseudowires_and_unknown_cookies_stay_the_outer_flow(outer):
    flows, counters = flows_of([eth(outer)])
    ((key, (tunnel, packets)),) = flows.items()
    assert (tunnel, packets) == ("none", 1) and key[4] == outer[9]
    assert counters["malformed"] == 0


def test_decapsulate_off_keeps_outer_flows():
    flows, _ = flows_of([eth(ipv4(A, B, 17, vxlan(eth(INNER))))], decapsulate=False)
    assert flows == {(MAPPED + ip4(A), 50000, MAPPED + ip4(B), 4789, 17): ("none", 1)}


def test_tunnel_payload_that_is_not_ip_stays_the_outer_flow():
    frames = [
        eth(ipv4(A, B, 47, gre(b"\x00" * 40, ptype=0x88BE))),  # ERSPAN: not decoded
        eth(ipv4(A, B, 47, pptp_gre(b"\xff\x03\xc0\x21\x01\x01\x00\x04"))),  # LCP
        eth(ipv4(A, B, 17, vxlan(b"\x00" * 10))),  # too short for an Ethernet header
        eth(ipv4(A, B, 4, b"\x45\x00")),  # truncated inner header
    ]
    flows, counters = flows_of(frames)
    assert {k[4] for k in flows} == {47, 17, 4}
    assert {v[0] for v in flows.values()} == {"none"}
    assert counters["malformed"] == 0


def test_nesting_beyond_the_depth_limit_stays_the_outer_flow():
    pkt = INNER
    for _ in range(6):
        pkt = ipv4(A, B, 4, pkt)
    flows, _ = flows_of([eth(pkt)])
    ((key, (tunnel, _)),) = flows.items()
    assert tunnel == "ipip" and key[4] == 4  # decoded four deep, then left as IP-in-IP


# --------------------------------------------------------------------------- malformed input

TUNNEL_FRAMES = [
    eth(ipv4(A, B, 47, gre(INNER, checksum=True, key=1, seq=2))),
    eth(ipv4(A, B, 47, pptp_gre(b"\xff\x03\x00\x21" + INNER, ack=3))),
    eth(ipv4(A, B, 17, vxlan(eth(INNER)))),
    eth(ipv4(A, B, 17, geneve(eth(INNER), opt_words=3))),
    eth(ipv4(A, B, 41, ipv6(V6A, V6B, 6, tcp(1, 2)))),
    eth(ipv4(A, B, 17, l2tp(b"\xff\x03\x00\x21" + INNER, length=True, seq=(1, 2), offset=2))),
    eth(b"\x11\x00\x00\x01" + struct.pack("!H", len(INNER) + 2) + b"\x00\x21" + INNER, 0x8864),
    eth(ipv4(A, B, 115, l2tpv3(eth(INNER), cookie=b"\x01" * 8))),
    eth(ipv4(A, B, 17, l2tpv3(eth(INNER, vlans=[(0x8100, 3)]), cookie=b"\x02" * 4,
                              udp_ports=(50000, 1701)))),
]


@pytest.mark.parametrize("frame", TUNNEL_FRAMES)
def test_every_truncation_of_a_tunnel_frame_is_inner_outer_or_malformed(frame):
    frames = [frame[:n] for n in range(len(frame) + 1)]
    cols, status, counters = meter_bytes(write_pcap([(1.0, f) for f in frames]))
    assert status["status"] == "ok"
    accounted = int(cols["packets"].sum()) + counters["non_ip"] + counters["malformed"]
    assert accounted == len(frames)
    # The whole frame decodes to the inner flow.
    assert INNER_KEY[4] in {int(p) for p in cols["protocol"]}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(TUNNEL_FRAMES), st.data())
def test_corrupted_tunnel_frames_never_crash_and_are_all_counted(frame, data):
    body = bytearray(frame)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(14, len(body) - 1))
        body[at] = data.draw(st.integers(0, 255))
    frames = [bytes(body), bytes(body[: data.draw(st.integers(0, len(body)))])]
    cols, status, counters = meter_bytes(write_pcap([(1.0, f) for f in frames]))
    assert status["status"] == "ok" and counters["packets"] == 2
    assert int(cols["packets"].sum()) + counters["non_ip"] + counters["malformed"] == 2
    assert all(int(t) < len(TUNNELS) for t in cols["tunnel"])
