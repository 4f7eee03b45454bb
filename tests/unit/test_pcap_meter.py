"""The native pcap/pcapng flow meter and read_pcap, checked against dpkt, the
DPI-derived expected flows, hand-built frames and malformed input."""

from __future__ import annotations

import csv
import ipaddress
import random
import struct
from pathlib import Path

import dpkt
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nkclass import _core
from nkclass.flows.pcap import PCAP_SCHEMA, CaptureError, read_pcap

DATA = Path(__file__).resolve().parents[1] / "data" / "pcap"
FIXTURES = sorted(p.name for p in DATA.glob("*.pcap"))
MAPPED = b"\x00" * 10 + b"\xff\xff"
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


# --------------------------------------------------------------------------- writers


def write_pcap(records, linktype=1, big_endian=False, nanos=False, snaplen=65535, wire_lens=None):
    """records: [(seconds: float, frame: bytes)] -> classic pcap bytes; each
    record's original length is its frame's unless `wire_lens` says."""
    e = ">" if big_endian else "<"
    out = [struct.pack(e + "IHHiIII", 0xA1B23C4D if nanos else 0xA1B2C3D4, 2, 4, 0, 0, snaplen,
                       linktype)]
    for i, (ts, frame) in enumerate(records):
        sec = int(ts)
        frac = round((ts - sec) * (1e9 if nanos else 1e6))
        wire = len(frame) if wire_lens is None else wire_lens[i]
        out.append(struct.pack(e + "IIII", sec, frac, len(frame), wire) + frame)
    return b"".join(out)


def _block(e, btype, body):
    body += b"\x00" * (-len(body) % 4)
    size = len(body) + 12
    return struct.pack(e + "II", btype, size) + body + struct.pack(e + "I", size)


def write_pcapng(records, linktype=1, big_endian=False, tsresol=9, snaplen=0, wire_lens=None,
                 simple=False):
    """records as write_pcap; one section, one interface with if_tsresol;
    enhanced packet blocks, or simple ones (no timestamp) with `simple`."""
    e = ">" if big_endian else "<"
    shb = _block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    tsresol_opt = struct.pack(e + "HH", 9, 1) + bytes([tsresol, 0, 0, 0])
    opts = tsresol_opt + struct.pack(e + "HH", 0, 0)
    idb = _block(e, 1, struct.pack(e + "HHI", linktype, 0, snaplen) + opts)
    out = [shb, idb, _block(e, 4, b"\x00" * 4)]  # a name resolution block to skip
    for i, (ts, frame) in enumerate(records):
        wire = len(frame) if wire_lens is None else wire_lens[i]
        if simple:
            out.append(_block(e, 3, struct.pack(e + "I", wire) + frame))
            continue
        ticks = round(ts * 10**tsresol)
        out.append(_block(e, 6, struct.pack(e + "IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF,
                                            len(frame), wire) + frame))
    return b"".join(out)


def records_of(path):
    with open(path, "rb") as f:
        is_pcapng = f.read(4) == PCAPNG_MAGIC
        f.seek(0)
        reader = dpkt.pcapng.Reader(f) if is_pcapng else dpkt.pcap.Reader(f)
        return [(ts, bytes(buf)) for ts, buf in reader]


# --------------------------------------------------------------------------- frames


def ip4(a):
    return bytes(int(x) for x in a.split("."))


def tcp(sport, dport, seq=1000, flags=0x18, payload=b""):
    return struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 65535, 0, 0) + payload


def udp(sport, dport, payload=b""):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def ipv4(src, dst, proto, l4, frag=0, ident=1):
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident, frag, 64, proto, 0,
                       ip4(src), ip4(dst)) + l4


def ipv6(src16, dst16, next_header, body):
    return struct.pack("!IHBB16s16s", 6 << 28, len(body), next_header, 64, src16, dst16) + body


def eth(payload, ethertype=0x0800, vlans=()):
    head = b"\x02" * 6 + b"\x04" * 6
    # Each tag: TPID then TCI; the last TCI is followed by the real EtherType.
    body = b"".join(struct.pack("!HH", tpid, vid) for tpid, vid in vlans)
    return head + body + struct.pack("!H", ethertype) + payload


def meter_bytes(data, chunk=None, **kw):
    """Runs the native meter over `data`; returns (columns, status, counters)."""
    m = _core.FlowMeter(**kw)
    step = chunk or max(1, len(data))
    for i in range(0, len(data), step):
        m.feed(data[i : i + step])
    status = m.finish()
    return m.drain(1 << 30), status, m.counters()


def flow_rows(cols):
    """Columns -> {(src, sport, dst, dport, proto): (packets, bytes, src_pl, dst_pl)}."""
    def payloads(side):
        data, off = cols[side]
        return [bytes(data[off[i] : off[i + 1]]) for i in range(len(off) - 1)]

    sp, dp = payloads("src_payload"), payloads("dst_payload")
    out = {}
    for i in range(len(cols["packets"])):
        key = (bytes(cols["src_ip"][i]), int(cols["src_port"][i]), bytes(cols["dst_ip"][i]),
               int(cols["dst_port"][i]), int(cols["protocol"][i]))
        assert key not in out
        out[key] = (int(cols["packets"][i]), int(cols["bytes"][i]), sp[i], dp[i])
    return out


# --------------------------------------------------------------------------- dpkt reference


def reference_flows(path, payload_bytes=512):
    """Flows by dpkt, the obvious way: orientation from the first packet, TCP
    payload concatenated in order (retransmitted bytes trimmed, stop at a gap)."""
    flows = {}
    alias = {}
    tcp_next = {}
    for _ts, buf in records_of(path):
        ip = dpkt.ethernet.Ethernet(buf).data
        if isinstance(ip, dpkt.ip.IP):
            src, dst = MAPPED + ip.src, MAPPED + ip.dst
        elif isinstance(ip, dpkt.ip6.IP6):
            src, dst = ip.src, ip.dst
        else:
            continue
        l4 = ip.data
        proto = ip.p  # for IPv6, dpkt's protocol after the extension headers
        sport, dport = (l4.sport, l4.dport) if proto in (6, 17) else (0, 0)
        key = (src, sport, dst, dport, proto)
        rkey = (dst, dport, src, sport, proto)
        if key not in alias and rkey not in alias:
            alias[key] = (key, 0)
            alias[rkey] = (key, 1)
            flows[key] = [0, 0, bytearray(), bytearray()]
        fkey, side = alias[key]
        flow = flows[fkey]
        flow[0] += 1
        flow[1] += len(buf)
        data = bytes(l4.data) if proto in (6, 17) else b""
        if proto == 6:
            seq = l4.seq + (1 if l4.flags & dpkt.tcp.TH_SYN else 0)
            expected = tcp_next.setdefault((fkey, side), seq)
            if expected is None or seq > expected:
                tcp_next[(fkey, side)] = None  # a gap: the prefix ends here
                continue
            data = data[expected - seq :]
            tcp_next[(fkey, side)] = expected + len(data)
        room = payload_bytes - len(flow[2 + side])
        flow[2 + side] += data[: max(room, 0)]
    return {k: (v[0], v[1], bytes(v[2]), bytes(v[3])) for k, v in flows.items()}


def read_all(path, **kw):
    reader = read_pcap(path, **kw)
    batches = list(reader)
    table = pa.Table.from_batches(batches, schema=PCAP_SCHEMA)
    return table, reader


def table_rows(table):
    cols = {name: table.column(name).to_pylist() for name in table.column_names}
    return {
        (cols["src_ip"][i], cols["src_port"][i], cols["dst_ip"][i], cols["dst_port"][i],
         cols["protocol"][i]): (cols["packets"][i], cols["bytes"][i], cols["src_payload"][i],
                                cols["dst_payload"][i])
        for i in range(table.num_rows)
    }


# --------------------------------------------------------------------------- real captures


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_flows_match_dpkt_reference(name):
    table, reader = read_all(DATA / name)
    assert table.schema == PCAP_SCHEMA
    got = table_rows(table)
    want = reference_flows(DATA / name)
    assert got.keys() == want.keys()
    for key, (packets, nbytes, src_pl, dst_pl) in want.items():
        assert got[key][:2] == (packets, nbytes), key
        if key[4] in (6, 17):
            assert got[key][2:] == (src_pl, dst_pl), key
    assert reader.status["status"] == "ok"
    c = reader.counters
    assert c["flows_emitted"] == table.num_rows and c["truncated"] == 0
    assert sum(v[0] for v in got.values()) == c["packets"] - c["non_ip"] - c["malformed"]


def test_fixture_flows_match_expected_flows_csv():
    with open(DATA / "expected_flows.csv", newline="") as f:
        expected = list(csv.DictReader(f))
    assert len(expected) == 50
    by_file = {}
    for row in expected:
        if row["file"] not in by_file:
            by_file[row["file"]] = table_rows(read_all(DATA / row["file"])[0])
        def packed(text):
            a = ipaddress.ip_address(text)
            return MAPPED + a.packed if a.version == 4 else a.packed

        key = (packed(row["src_ip"]), int(row["src_port"]), packed(row["dst_ip"]),
               int(row["dst_port"]), int(row["protocol"]))
        assert key in by_file[row["file"]], row
        assert by_file[row["file"]][key][:2] == (int(row["packets"]), int(row["bytes"])), row


def test_timestamps_are_utc_milliseconds_of_first_and_last_packet():
    table, _ = read_all(DATA / "http-get.pcap")
    stamps = [ts for ts, _ in records_of(DATA / "http-get.pcap")]
    assert table.column("ts_start").to_numpy().astype(np.int64)[0] == int(min(stamps) * 1000)
    assert table.column("ts_end").to_numpy().astype(np.int64)[0] == int(max(stamps) * 1000)
    assert table.column("tcp_flags")[0].as_py() & 0x13 == 0x13  # FIN, SYN, ACK


@pytest.mark.parametrize("name", ["http-get.pcap", "mining-monero-stratum.pcap", "mdns.pcap"])
@pytest.mark.parametrize(
    "convert",
    [
        pytest.param(lambda r: write_pcapng(r), id="pcapng-ns-le"),
        pytest.param(lambda r: write_pcapng(r, big_endian=True, tsresol=6), id="pcapng-us-be"),
        pytest.param(lambda r: write_pcap(r, big_endian=True), id="pcap-be"),
        pytest.param(lambda r: write_pcap(r, nanos=True), id="pcap-ns"),
        pytest.param(lambda r: write_pcap(r, nanos=True, big_endian=True), id="pcap-ns-be"),
    ],
)
def test_container_variants_give_identical_flows(name, convert, tmp_path):
    original = read_all(DATA / name)[0]
    path = tmp_path / "converted"
    path.write_bytes(convert(records_of(DATA / name)))
    converted = read_all(path)[0]
    assert table_rows(converted) == table_rows(original)
    # Same flows in the same order, so timestamps can be compared row by row.
    assert converted.column("ts_start").equals(original.column("ts_start"))
    assert converted.column("ts_end").equals(original.column("ts_end"))


@pytest.mark.parametrize("chunk", [1, 3, 16, 17, 1000])
def test_chunk_boundaries_do_not_change_flows(chunk):
    data = (DATA / "openvpn-tcp.pcap").read_bytes()  # pcapng
    whole = flow_rows(meter_bytes(data)[0])
    cols, status, _ = meter_bytes(data, chunk=chunk)
    assert flow_rows(cols) == whole and status["status"] == "ok"


# --------------------------------------------------------------------------- malformed input


def record_ends(data):
    """Byte offsets at which each pcap record (and the file header) ends."""
    ends, off = [24], 24
    while off + 16 <= len(data):
        off += 16 + struct.unpack_from("<I", data, off + 8)[0]
        ends.append(off)
    return ends


@pytest.mark.parametrize("name", ["dns-long-connection.pcap", "http-get.pcap"])
def test_every_truncation_prefix_yields_complete_packets_and_reports_it(name):
    data = (DATA / name).read_bytes()
    ends = record_ends(data)
    full_packets = len(ends) - 1
    for cut in range(len(data) + 1):
        cols, status, counters = meter_bytes(data[:cut])
        complete = sum(1 for e in ends[1:] if e <= cut)
        assert counters["packets"] == complete, cut
        assert int(cols["packets"].sum()) == complete, cut
        at_boundary = cut in ends
        assert status["status"] == ("ok" if at_boundary else "truncated"), cut
        assert counters["truncated"] == (0 if at_boundary else 1)
        if not at_boundary:
            assert status["offset"] == max([0] + [e for e in ends if e <= cut])
    assert full_packets > 0


def test_truncated_file_raises_after_yielding_flows(tmp_path):
    data = (DATA / "http-get.pcap").read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[:-10])
    reader = read_pcap(path)
    first = next(reader)
    assert first.num_rows == 1
    with pytest.raises(CaptureError, match=r"cut\.pcap: at byte \d+: the input ends inside") as e:
        next(reader)
    assert e.value.offset == record_ends(data)[-2]
    table, reader = read_all(path, errors="skip")
    assert table.num_rows == 1 and reader.counters["truncated"] == 1


def test_corrupt_record_length_stops_with_reason_and_offset(tmp_path):
    data = bytearray((DATA / "dns-long-connection.pcap").read_bytes())
    ends = record_ends(bytes(data))
    struct.pack_into("<I", data, ends[5] + 8, 0xFFFFFFF0)  # caplen of record 6
    path = tmp_path / "corrupt.pcap"
    path.write_bytes(bytes(data))
    table, reader = read_all(path, errors="skip")
    assert reader.status["status"] == "corrupt" and reader.status["offset"] == ends[5]
    assert "captured length of 4294967280" in reader.status["reason"]
    assert reader.counters["packets"] == 5
    assert sum(table.column("packets").to_pylist()) == 5
    with pytest.raises(CaptureError, match=f"at byte {ends[5]}: packet record claims"):
        read_all(path)


def test_corrupt_pcapng_block_length_is_reported():
    data = bytearray(write_pcapng(records_of(DATA / "dns53.pcap") * 3))
    last = len(data) - struct.unpack_from("<I", data, len(data) - 4)[0]
    struct.pack_into("<I", data, len(data) - 4, 9999)  # trailing length disagrees
    cols, status, counters = meter_bytes(bytes(data))
    assert status["status"] == "corrupt" and status["offset"] == last
    assert "trailing length 9999" in status["reason"]
    assert counters["packets"] == 2 and int(cols["packets"].sum()) == 2


@pytest.mark.parametrize(
    "data, reason",
    [(b"GIF89a" + b"\x00" * 40, "unknown magic number 0x47494638"), (b"", "the input is empty")],
)
def test_not_a_capture_is_reported_at_offset_zero(data, reason):
    _, status, _ = meter_bytes(data)
    assert status["offset"] == 0 and reason in status["reason"]


def test_random_bytes_never_crash_seeded():
    rng = random.Random(1234)
    headers = [b"", write_pcap([]), write_pcap([], nanos=True, big_endian=True),
               write_pcapng([]), write_pcapng([], big_endian=True)]
    for i in range(3000):
        body = rng.randbytes(rng.randrange(0, 600))
        _, status, counters = meter_bytes(headers[i % len(headers)] + body,
                                          chunk=rng.choice([None, 1, 7, 64]))
        assert status["status"] in ("ok", "truncated", "corrupt")
        assert counters["packets"] >= counters["non_ip"] + counters["malformed"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(min_size=0, max_size=120), max_size=12), st.sampled_from([0, 1, 12, 101,
       113, 228, 229, 276]))
def test_random_frames_in_valid_records_never_crash(frames, linktype):
    data = write_pcap([(1.0 + i, f) for i, f in enumerate(frames)], linktype=linktype)
    cols, status, counters = meter_bytes(data)
    assert status["status"] == "ok" and counters["packets"] == len(frames)
    accounted = int(cols["packets"].sum()) + counters["non_ip"] + counters["malformed"]
    assert accounted == len(frames)


def test_zero_length_and_short_frames_count_as_malformed():
    frame = eth(ipv4("10.0.0.1", "10.0.0.2", 17, udp(1, 2, b"x")))
    data = write_pcap([(1.0, b""), (1.1, frame[:10]), (1.2, frame[:30]), (1.3, frame)])
    cols, status, counters = meter_bytes(data)
    assert status["status"] == "ok"
    assert counters["malformed"] == 3 and counters["packets"] == 4
    assert int(cols["packets"].sum()) == 1


# --------------------------------------------------------------------------- link layers and IP


A, B = "192.0.2.1", "198.51.100.7"
A16, B16 = MAPPED + ip4(A), MAPPED + ip4(B)
V6A = bytes.fromhex("20010db8000000000000000000000001")
V6B = bytes.fromhex("20010db8000000000000000000000002")
UDP_PACKET = ipv4(A, B, 17, udp(4000, 53, b"query"))
UDP_KEY = (A16, 4000, B16, 53, 17)


@pytest.mark.parametrize(
    "linktype, frame",
    [
        pytest.param(1, eth(UDP_PACKET), id="ethernet"),
        pytest.param(1, eth(UDP_PACKET, vlans=[(0x8100, 10)]), id="802.1q"),
        pytest.param(1, eth(UDP_PACKET, vlans=[(0x88A8, 10), (0x8100, 20)]), id="qinq-88a8"),
        pytest.param(1, eth(UDP_PACKET, vlans=[(0x9100, 10), (0x8100, 20)]), id="qinq-9100"),
        pytest.param(113, struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 8, 0x0800) + UDP_PACKET,
                     id="sll"),
        pytest.param(276, struct.pack("!HHIHBB8s", 0x0800, 0, 2, 1, 0, 6, b"\x02" * 8)
                     + UDP_PACKET, id="sll2"),
        pytest.param(101, UDP_PACKET, id="raw"),
        pytest.param(12, UDP_PACKET, id="raw-dlt12"),
        pytest.param(14, UDP_PACKET, id="raw-dlt14"),
        pytest.param(228, UDP_PACKET, id="ipv4"),
        pytest.param(0, struct.pack("<I", 2) + UDP_PACKET, id="null-le"),
        pytest.param(0, struct.pack(">I", 2) + UDP_PACKET, id="null-be"),
        pytest.param(1, eth(UDP_PACKET + b"\x00" * 20), id="ethernet-padding-trimmed"),
    ],
)
def test_link_layers_decode_to_the_same_flow(linktype, frame):
    cols, _, counters = meter_bytes(write_pcap([(5.0, frame)], linktype=linktype))
    assert flow_rows(cols) == {UDP_KEY: (1, len(frame), b"query", b"")}
    assert counters["non_ip"] == counters["malformed"] == 0


def test_non_ip_frames_and_unknown_link_types_are_counted():
    arp = eth(b"\x00" * 28, ethertype=0x0806)
    _, _, c1 = meter_bytes(write_pcap([(1.0, arp)]))
    _, _, c2 = meter_bytes(write_pcap([(1.0, UDP_PACKET)], linktype=147))
    assert c1["non_ip"] == 1 and c2["non_ip"] == 1


def test_too_many_vlan_tags_are_malformed():
    frame = eth(UDP_PACKET, vlans=[(0x8100, i) for i in range(5)])
    _, _, counters = meter_bytes(write_pcap([(1.0, frame)]))
    assert counters["malformed"] == 1


def test_ipv4_fragments_use_first_fragment_ports_and_count_all():
    payload = udp(4000, 53, b"A" * 16)
    first = ipv4(A, B, 17, payload[:16], frag=0x2000, ident=7)  # MF, offset 0
    second = ipv4(A, B, 17, payload[16:], frag=2, ident=7)  # offset 16 bytes
    cols, _, counters = meter_bytes(write_pcap([(1.0, eth(first)), (1.1, eth(second))]))
    rows = flow_rows(cols)
    assert counters["ip_fragments"] == 2
    assert rows[(A16, 4000, B16, 53, 17)][0] == 1
    assert rows[(A16, 0, B16, 0, 17)][0] == 1  # the tail has no ports


def test_ipv4_bad_header_lengths_are_malformed():
    good = ipv4(A, B, 17, udp(1, 2))
    short_ihl = bytes([0x44]) + good[1:]
    long_ihl = bytes([0x4F]) + good[1:]
    tiny_total = good[:2] + struct.pack("!H", 12) + good[4:]
    _, _, counters = meter_bytes(write_pcap([(1.0, eth(f)) for f in
                                             (short_ihl, long_ihl, tiny_total)]))
    assert counters["malformed"] == 3


def test_ipv6_extension_headers_are_skipped():
    l4 = udp(5000, 443, b"hello")
    hop = bytes([60, 0]) + b"\x00" * 6  # -> destination options
    dest = bytes([51, 1]) + b"\x00" * 14  # 16 bytes -> AH
    ah = bytes([44, 1]) + b"\x00" * 10  # (1 + 2) * 4 = 12 bytes -> fragment
    frag_first = bytes([17, 0]) + struct.pack("!HI", 0x0001, 9)  # offset 0, M=1
    frag_later = bytes([17, 0]) + struct.pack("!HI", 0x0100, 9)  # offset 32
    p1 = ipv6(V6A, V6B, 0, hop + dest + ah + frag_first + l4)
    p2 = ipv6(V6A, V6B, 44, frag_later + b"tail")
    cols, _, counters = meter_bytes(write_pcap([(1.0, eth(p1, 0x86DD)), (1.1, eth(p2, 0x86DD))]))
    rows = flow_rows(cols)
    assert rows[(V6A, 5000, V6B, 443, 17)][:3] == (1, len(p1) + 14, b"hello")
    assert (V6A, 0, V6B, 0, 17) in rows
    assert counters["ip_fragments"] == 2 and counters["malformed"] == 0


def test_ipv6_extension_header_chain_is_bounded():
    chain = b"".join(bytes([60, 0]) + b"\x00" * 6 for _ in range(20))
    packet = ipv6(V6A, V6B, 60, chain)
    _, _, counters = meter_bytes(write_pcap([(1.0, packet)], linktype=229))
    assert counters["malformed"] == 1


def test_icmp_and_other_protocols_are_three_tuple_flows():
    icmp = ipv4(A, B, 1, b"\x08\x00\x00\x00\x00\x01\x00\x01ping")
    gre = ipv4(A, B, 47, b"\x00" * 8)
    cols, _, _ = meter_bytes(write_pcap([(1.0, eth(icmp)), (1.5, eth(gre))]))
    rows = flow_rows(cols)
    assert rows[(A16, 0, B16, 0, 1)][0] == 1 and rows[(A16, 0, B16, 0, 47)][0] == 1


# --------------------------------------------------------------------------- TCP and flow table


def tcp_pkt(src, dst, sport, dport, seq, flags, payload=b""):
    return eth(ipv4(src, dst, 6, tcp(sport, dport, seq, flags, payload)))


def test_tcp_payload_is_assembled_in_sequence_order():
    syn = tcp_pkt(A, B, 1234, 80, 99, 0x02)
    segs = [
        tcp_pkt(A, B, 1234, 80, 106, 0x18, b"world"),  # out of order
        tcp_pkt(A, B, 1234, 80, 100, 0x18, b"hello "),
        tcp_pkt(A, B, 1234, 80, 100, 0x18, b"XXXXXX"),  # retransmission: ignored
        tcp_pkt(A, B, 1234, 80, 120, 0x18, b"after a hole"),
    ]
    cols, _, _ = meter_bytes(write_pcap([(1.0 + i / 10, f) for i, f in enumerate([syn, *segs])]))
    assert flow_rows(cols)[(A16, 1234, B16, 80, 6)][2] == b"hello world"
    cols, _, _ = meter_bytes(write_pcap([(1.0, syn), (1.1, segs[1])]), payload_bytes=3)
    assert flow_rows(cols)[(A16, 1234, B16, 80, 6)][2] == b"hel"


def test_tcp_close_keeps_trailing_ack_and_port_reuse_starts_a_new_flow():
    conn = [
        tcp_pkt(A, B, 1234, 80, 1, 0x02),
        tcp_pkt(B, A, 80, 1234, 1, 0x12),
        tcp_pkt(A, B, 1234, 80, 2, 0x11),
        tcp_pkt(B, A, 80, 1234, 2, 0x11),
        tcp_pkt(A, B, 1234, 80, 3, 0x10),  # final ACK after both FINs
    ]
    again = tcp_pkt(A, B, 1234, 80, 500, 0x02)
    stamps = [1.0, 1.1, 1.2, 1.3, 1.4, 2.0]
    cols, _, _ = meter_bytes(write_pcap(list(zip(stamps, [*conn, again], strict=True))))
    assert sorted(cols["packets"].tolist()) == [1, 5]


def test_idle_and_active_timeouts_split_flows():
    pkts = [(t, eth(UDP_PACKET)) for t in (0.0, 1.0, 10.0, 11.0)]
    cols, _, _ = meter_bytes(write_pcap(pkts), idle_timeout_ms=5000)
    assert cols["packets"].tolist() == [2, 2]
    pkts = [(float(t), eth(UDP_PACKET)) for t in range(10)]
    cols, _, _ = meter_bytes(write_pcap(pkts), active_timeout_ms=4000)
    assert cols["packets"].tolist() == [4, 4, 2]
    assert cols["src_port"].tolist() == [4000] * 3  # cut records keep their orientation


def test_full_table_evicts_least_recent_and_loses_no_packet():
    table, reader = read_all(DATA / "mining-monero-stratum.pcap", max_flows=10)
    c = reader.counters
    assert c["flows_evicted"] > 0
    assert c["flows_emitted"] == table.num_rows > 19
    assert sum(table.column("packets").to_pylist()) == c["packets"] - c["non_ip"] - c["malformed"]
    assert sum(table.column("bytes").to_pylist()) == c["bytes"]


# --------------------------------------------------------------------------- record lengths


FRAME_130 = eth(ipv4(A, B, 17, udp(4000, 53, b"q" * 88)))


@pytest.mark.parametrize("container", ["pcap", "pcapng", "pcapng-simple"])
def test_absurd_wire_length_counts_the_captured_bytes(container):
    assert len(FRAME_130) == 130
    records = [(1.0, FRAME_130)] * 3
    lens = [0xFFFFFFFF] * 3
    data = (write_pcap(records, wire_lens=lens) if container == "pcap"
            else write_pcapng(records, wire_lens=lens, simple=container == "pcapng-simple"))
    cols, status, counters = meter_bytes(data)
    # A simple packet block records no captured length: without a believable
    # wire length its data runs to the block's 4-byte padding.
    expected = 3 * 132 if container == "pcapng-simple" else 390
    assert status["status"] == "ok"
    assert cols["bytes"].tolist() == [expected] and counters["bytes"] == expected
    assert counters["wire_len_fixed"] == 3


@pytest.mark.parametrize("container", ["pcap", "pcapng"])
@pytest.mark.parametrize(
    "wire, counted, fixed",
    [
        (130, 130, 0),                  # as captured
        (134, 134, 0),                  # plus a frame check sequence the capture left out
        (135, 130, 1),                  # more than a trailer past a complete, uncut packet
        (129, 130, 1),                  # below the captured length
        (262144, 130, 1),               # the largest believable frame, but not this one
        (262145, 130, 1),               # beyond any frame
    ],
)
def test_impossible_wire_lengths_are_replaced_and_counted(container, wire, counted, fixed):
    writer = write_pcap if container == "pcap" else write_pcapng
    cols, _, counters = meter_bytes(writer([(1.0, FRAME_130)], wire_lens=[wire]))
    assert cols["bytes"].tolist() == [counted] and counters["bytes"] == counted
    assert counters["wire_len_fixed"] == fixed


@pytest.mark.parametrize("container", ["pcap", "pcapng"])
def test_frames_cut_by_the_snap_length_keep_their_wire_length(container):
    full = eth(ipv4(A, B, 17, udp(4000, 53, b"q" * 1400)))
    cut = full[:96]
    writer = write_pcap if container == "pcap" else write_pcapng
    cols, _, counters = meter_bytes(writer([(1.0, cut)] * 2, snaplen=96,
                                           wire_lens=[len(full)] * 2))
    assert cols["bytes"].tolist() == [2 * len(full)] and counters["wire_len_fixed"] == 0


def test_a_cut_frame_whose_ip_length_runs_past_the_capture_keeps_its_wire_length():
    # No snap length cut it, but the IP header says the packet goes on: a
    # sliced capture, whose wire length is the only size there is.
    full = eth(ipv4(A, B, 17, udp(4000, 53, b"q" * 1400)))
    cols, _, counters = meter_bytes(write_pcap([(1.0, full[:200])], wire_lens=[len(full)]))
    assert cols["bytes"].tolist() == [len(full)] and counters["wire_len_fixed"] == 0


@pytest.mark.parametrize("container", ["pcap", "pcapng"])
def test_a_wire_length_beyond_the_snap_length_of_an_uncut_frame_is_replaced(container):
    # Only a cut frame (captured length = snap length) can be longer on the wire.
    arp = eth(b"\x00" * 28, ethertype=0x0806)
    writer = write_pcap if container == "pcap" else write_pcapng
    _, _, counters = meter_bytes(writer([(1.0, arp)], snaplen=1000, wire_lens=[1001]))
    assert counters["bytes"] == len(arp) and counters["wire_len_fixed"] == 1
    _, _, counters = meter_bytes(writer([(1.0, arp)], snaplen=1000, wire_lens=[1000]))
    assert counters["bytes"] == 1000 and counters["wire_len_fixed"] == 0


def test_classic_header_without_snap_length_trusts_a_long_wire_length():
    cols, _, counters = meter_bytes(write_pcap([(1.0, FRAME_130)], snaplen=0, wire_lens=[1500]))
    assert cols["bytes"].tolist() == [1500] and counters["wire_len_fixed"] == 0


def test_non_ip_frames_get_the_same_bounds():
    arp = eth(b"\x00" * 28, ethertype=0x0806)
    _, _, counters = meter_bytes(write_pcap([(1.0, arp)] * 2, wire_lens=[2**32 - 1, 3]))
    assert counters["bytes"] == 2 * len(arp) and counters["wire_len_fixed"] == 2


def test_read_pcap_reports_fixed_wire_lengths(tmp_path):
    path = tmp_path / "lying.pcap"
    path.write_bytes(write_pcap([(1.0, FRAME_130)] * 3, wire_lens=[0xFFFFFFFF] * 3))
    table, reader = read_all(path)
    assert table.column("bytes").to_pylist() == [390]
    assert reader.counters["wire_len_fixed"] == 3


# --------------------------------------------------------------------------- memory bound


def many_flows(n, payload=b"x"):
    """n TCP flows, each one segment with payload each way."""
    records = []
    for i in range(n):
        client = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
        records.append((1.0 + i * 1e-3, tcp_pkt(client, B, 40000, 80, 1, 0x18, payload)))
        records.append((1.0 + i * 1e-3, tcp_pkt(B, client, 80, 40000, 1, 0x18, payload)))
    return write_pcap(records)


def test_peak_flow_bytes_is_the_documented_formula():
    for payload_bytes in (0, 1, 7, 8, 512, 65535):
        buffer = payload_bytes + (payload_bytes + 7) // 8
        assert _core.meter_peak_flow_bytes(payload_bytes) == 320 + 256 + 2 * buffer
    assert _core.meter_peak_flow_bytes(512) == 1728
    assert _core.meter_peak_flow_bytes(65535) == 148030


def test_memory_bound_evicts_and_counts_like_the_flow_bound():
    per_flow = _core.meter_peak_flow_bytes(65535)
    bound = 10 * per_flow
    cols, status, c = meter_bytes(many_flows(200), payload_bytes=65535, max_memory_bytes=bound)
    assert status["status"] == "ok"
    assert c["peak_memory_bytes"] <= bound
    assert c["peak_memory_bytes"] > bound - per_flow  # the bound was reached, not undershot
    assert c["memory_evictions"] == c["flows_evicted"] > 0
    # Evicted early, not lost: every flow and packet is there, payloads whole.
    assert c["flows_emitted"] == len(cols["packets"]) == 200
    assert int(cols["packets"].sum()) == 400
    rows = flow_rows(cols)
    assert all(src == dst == b"x" for _, _, src, dst in rows.values())


def test_flows_without_payload_take_only_their_state():
    # UDP flows with empty payloads never take a buffer: 200 fit where 10
    # flows with payload would.
    records = [(1.0, eth(ipv4(f"10.0.{i >> 8}.{i & 255}", B, 17, udp(5000, 53))))
               for i in range(200)]
    per_flow = _core.meter_peak_flow_bytes(65535)
    _, _, c = meter_bytes(write_pcap(records), payload_bytes=65535, max_memory_bytes=10 * per_flow)
    assert c["flows_evicted"] == 0 and c["peak_memory_bytes"] == 200 * 320


def test_the_flow_bound_still_applies_under_the_memory_bound():
    _, _, c = meter_bytes(many_flows(50), max_flows=5)
    assert c["flows_evicted"] == 45 and c["memory_evictions"] == 0


def test_large_payload_prefix_with_default_flow_bound_stays_within_memory(tmp_path):
    # payload_bytes=65535 once needed 147 KB per flow with no bound but the
    # flow count; the memory bound caps the table however many flows come.
    path = tmp_path / "many.pcap"
    path.write_bytes(many_flows(2000))
    bound = 64 << 20
    table, reader = read_all(path, payload_bytes=65535, max_memory=bound)
    c = reader.counters
    assert table.num_rows == 2000 and c["peak_memory_bytes"] <= bound
    assert c["memory_evictions"] == c["flows_evicted"] == 2000 - bound // (320 + 2 * 73727)


def test_memory_bound_below_one_flow_is_refused():
    one = _core.meter_peak_flow_bytes(512)
    with pytest.raises(ValueError, match="max_memory_bytes must hold at least one flow"):
        _core.FlowMeter(max_memory_bytes=one - 1)
    with pytest.raises(ValueError, match=f"The 'max_memory' parameter of read_pcap must be an int "
                                         f"of at least {one} bytes"):
        read_pcap(DATA / "dns53.pcap", max_memory=one - 1)
    _core.FlowMeter(max_memory_bytes=one)  # exactly one flow is enough


def test_batches_respect_batch_size():
    batches = list(read_pcap(DATA / "mining-monero-stratum.pcap", batch_size=4))
    assert all(1 <= b.num_rows <= 4 for b in batches)
    assert sum(b.num_rows for b in batches) == 19


def test_flows_expiring_while_reading_come_in_whole_batches(tmp_path):
    # 3,000 one-packet flows a second apart, each expired by the next packet,
    # over more than one read chunk: batches are full until the input ends,
    # not one small batch per chunk.
    pkts = [(float(i), eth(ipv4(A, B, 17, udp(10000 + i, 53, bytes(400)))))
            for i in range(3000)]
    path = tmp_path / "expiring.pcap"
    path.write_bytes(write_pcap(pkts))
    assert path.stat().st_size > 1 << 20
    batches = list(read_pcap(path, batch_size=64, idle_timeout=0.5))
    assert [b.num_rows for b in batches] == [64] * 46 + [56]
    ports = [p for b in batches for p in b.column("src_port").to_pylist()]
    assert ports == list(range(10000, 13000))


@pytest.mark.parametrize(
    "kw, name",
    [({"batch_size": 0}, "batch_size"), ({"payload_bytes": 70000}, "payload_bytes"),
     ({"idle_timeout": 0}, "idle_timeout"), ({"active_timeout": "1"}, "active_timeout"),
     ({"max_flows": 0}, "max_flows"), ({"errors": "ignore"}, "errors")],
)
def test_bad_parameters_name_the_parameter(kw, name):
    with pytest.raises(ValueError, match=f"The '{name}' parameter of read_pcap must be"):
        read_pcap(DATA / "dns53.pcap", **kw)


def test_native_meter_refuses_bad_config_and_non_contiguous_buffers():
    with pytest.raises(ValueError, match="payload_bytes"):
        _core.FlowMeter(payload_bytes=70000)
    m = _core.FlowMeter()
    with pytest.raises(ValueError, match="contiguous"):
        m.feed(memoryview(bytes(10))[::2])


def test_extreme_pcapng_timestamps_are_clamped_not_overflowed():
    frame = eth(UDP_PACKET)
    data = write_pcapng([(1.0, frame), (float(2**63), frame), (2.0, frame)], tsresol=0)
    cols, status, _ = meter_bytes(data)
    assert status["status"] == "ok" and int(cols["packets"].sum()) == 3
    assert int(cols["ts_end"].max()) == 2**53
