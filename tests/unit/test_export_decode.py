"""Native NetFlow v5/v9, IPFIX and sFlow v5 decoding: real softflowd export
captures checked against the pure-Python ``netflow`` package, hand-built
datagrams for templates, withdrawal, expiry, sampling and sFlow samples,
and damaged input that must be counted and skipped, never fatal."""

from __future__ import annotations

import ipaddress
import struct
from collections import Counter
from pathlib import Path

import dpkt
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nkclass
from nkclass import _core
from nkclass.flows.export import EXPORT_SCHEMA, read_export_capture

DATA = Path(__file__).resolve().parents[1] / "data"
EXPORT = DATA / "export"
EXPORTER = ipaddress.IPv6Address("::ffff:192.0.2.1").packed
T0 = 1_700_000_000_000  # receive time of hand-built datagrams (ms)


def datagrams(name: str) -> list[tuple[float, bytes]]:
    with open(EXPORT / name, "rb") as fh:
        return [(ts, bytes(dpkt.ethernet.Ethernet(buf).data.data.data))
                for ts, buf in dpkt.pcap.Reader(fh)]


def decode(*payloads: bytes, at: int = T0, **options) -> tuple[pa.Table, dict]:
    dec = _core.ExportDecoder(**options)
    for p in payloads:
        dec.decode(p, EXPORTER, at)
    from nkclass.flows.export import records_to_batch
    return pa.Table.from_batches([records_to_batch(dec.drain(1 << 20))]), dec.counters()


def read_table(name: str) -> tuple[pa.Table, dict]:
    reader = read_export_capture(EXPORT / name)
    table = pa.Table.from_batches(list(reader), schema=EXPORT_SCHEMA)
    return table, reader.counters


def v4(a: bytes) -> str:
    return str(ipaddress.IPv6Address(a).ipv4_mapped)


# --- real export captures ---------------------------------------------------


def test_netflow_v5_capture_matches_the_python_netflow_package_field_by_field():
    netflow = pytest.importorskip("netflow")
    table, counters = read_table("netflow-v5.pcap")
    expected = []
    for _, data in datagrams("netflow-v5.pcap"):
        packet = netflow.parse_packet(data, {})
        h = packet.header
        now = h.timestamp * 1000 + h.timestamp_nano // 1_000_000
        for f in packet.flows:
            d = f.data
            expected.append((
                str(ipaddress.IPv4Address(d["IPV4_SRC_ADDR"])),
                str(ipaddress.IPv4Address(d["IPV4_DST_ADDR"])), d["SRC_PORT"], d["DST_PORT"],
                d["PROTO"], d["IN_PACKETS"], d["IN_OCTETS"], d["TCP_FLAGS"],
                now - (h.uptime - d["FIRST_SWITCHED"]), now - (h.uptime - d["LAST_SWITCHED"]),
            ))
    rows = table.to_pydict()
    got = [(v4(rows["src_ip"][i]), v4(rows["dst_ip"][i]), rows["src_port"][i],
            rows["dst_port"][i], rows["protocol"][i], rows["packets"][i], rows["bytes"][i],
            rows["tcp_flags"][i],
            int(table["ts_start"][i].value), int(table["ts_end"][i].value))
           for i in range(table.num_rows)]
    assert got == expected and len(got) == 47
    assert counters["netflow_v5"] == counters["datagrams"] == 7
    assert counters["decode_errors"] == 0
    assert set(rows["sampling_rate"]) == {1}


def test_ipfix_capture_matches_the_python_netflow_package_including_options_records():
    netflow = pytest.importorskip("netflow")
    table, counters = read_table("ipfix.pcap")
    templates = {"netflow": {}, "ipfix": {}}
    expected, options = [], 0
    for _, data in datagrams("ipfix.pcap"):
        for f in netflow.parse_packet(data, templates).flows:
            d = f.data
            if "protocolIdentifier" not in d:
                options += 1
                continue
            src = d.get("sourceIPv4Address") or d.get("sourceIPv6Address")
            dst = d.get("destinationIPv4Address") or d.get("destinationIPv6Address")
            expected.append((
                ipaddress.ip_address(src), ipaddress.ip_address(dst),
                d.get("sourceTransportPort", 0), d.get("destinationTransportPort", 0),
                d["protocolIdentifier"], d["packetDeltaCount"], d["octetDeltaCount"],
                d.get("tcpControlBits", 0), d["flowStartMilliseconds"], d["flowEndMilliseconds"],
            ))
    rows = table.to_pydict()

    def addr(b: bytes):
        a = ipaddress.IPv6Address(b)
        return a.ipv4_mapped or a

    got = [(addr(rows["src_ip"][i]), addr(rows["dst_ip"][i]), rows["src_port"][i],
            rows["dst_port"][i], rows["protocol"][i], rows["packets"][i], rows["bytes"][i],
            rows["tcp_flags"][i], int(table["ts_start"][i].value),
            int(table["ts_end"][i].value)) for i in range(table.num_rows)]
    assert got == expected
    assert any(isinstance(r[0], ipaddress.IPv6Address) for r in got)  # the IPv6 flows too
    assert counters["options_records"] == options > 0
    assert counters["ipfix"] == 7 and counters["decode_errors"] == counters["template_misses"] == 0


def test_netflow_v9_capture_holds_the_same_ipv4_flows_as_the_v5_export_of_the_same_traffic():
    def flows(table):
        r = table.to_pydict()
        return Counter((r["src_ip"][i], r["dst_ip"][i], r["src_port"][i], r["dst_port"][i],
                        r["protocol"][i], r["packets"][i], r["bytes"][i], r["tcp_flags"][i])
                       for i in range(table.num_rows)
                       if ipaddress.IPv6Address(r["src_ip"][i]).ipv4_mapped)

    v9, counters = read_table("netflow-v9.pcap")
    v5, _ = read_table("netflow-v5.pcap")
    assert flows(v9) == flows(v5)
    assert v9.num_rows > v5.num_rows  # and the IPv6 flows v5 cannot carry
    assert counters["netflow_v9"] == 7 and counters["template_misses"] == 0


def test_netflow_v9_options_template_gives_the_sampling_rate_that_scales_the_counts():
    table, counters = read_table("netflow-v9-sampled.pcap")
    assert counters["options_records"] > 0
    assert set(table["sampling_rate"].to_pylist()) == {4}
    packets = np.asarray(table["packets"])
    assert (packets % 4 == 0).all() and packets.min() >= 4


def test_read_netflow_format_classifies_the_stratum_flows_of_the_exported_capture():
    reader = nkclass.read(EXPORT / "ipfix.pcap", format="netflow")
    table = pa.Table.from_batches(list(reader))
    out = nkclass.Classifier(asn=False).classify(table).to_arrow().to_pydict()
    stratum = [a for a, p in zip(out["activity"], out["dst_port"], strict=True) if p == 3333]
    assert stratum and set(stratum) == {"mining_suspect"}
    assert reader.stats.records == table.num_rows == 49


def test_a_truncated_export_capture_raises_naming_the_offset_or_is_reported_with_skip(tmp_path):
    raw = (EXPORT / "ipfix.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(raw[:-10])
    with pytest.raises(nkclass.InputError, match="byte"):
        list(read_export_capture(cut))
    reader = read_export_capture(cut, errors="skip")
    assert sum(b.num_rows for b in reader) > 0 and reader.status["status"] == "truncated"


# --- hand-built IPFIX and v9 -----------------------------------------------


def ipfix(*sets: bytes, domain: int = 7, export_s: int = 1_700_000_000) -> bytes:
    body = b"".join(sets)
    return struct.pack("!HHIII", 10, 16 + len(body), export_s, 1, domain) + body


def set_(set_id: int, body: bytes) -> bytes:
    return struct.pack("!HH", set_id, 4 + len(body)) + body


def template(tid: int, fields: list[tuple]) -> bytes:
    out = struct.pack("!HH", tid, len(fields))
    for f in fields:
        if len(f) == 3:  # enterprise element
            out += struct.pack("!HHI", f[0] | 0x8000, f[1], f[2])
        else:
            out += struct.pack("!HH", *f)
    return out


FIVE_TUPLE = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (2, 8), (1, 8), (152, 8), (153, 8)]


def five_tuple_record(src="175.45.176.9", dst="198.51.100.7", sport=40000, dport=3333,
                      proto=6, packets=10, octets=1000, start=T0 - 5000, end=T0 - 1000) -> bytes:
    return (ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed +
            struct.pack("!HHBQQQQ", sport, dport, proto, packets, octets, start, end))


def test_ipfix_variable_length_and_enterprise_fields_are_skipped_and_the_rest_mapped():
    fields = [(8, 4), (99, 0xFFFF, 29305), (12, 4), (82, 0xFFFF), (7, 2), (11, 2), (4, 1),
              (2, 4), (1, 4), (6, 2), (16, 4), (17, 2), (150, 4), (151, 4)]
    rec = (bytes([10, 0, 0, 1]) + b"\x03abc" + bytes([10, 0, 0, 2]) +
           b"\xff\x01\x2c" + b"x" * 300 +  # 3-byte length form
           struct.pack("!HHBIIHIHII", 1234, 80, 6, 5, 500, 0x0112, 131279, 4837,
                       1_699_999_990, 1_699_999_995))
    table, c = decode(ipfix(set_(2, template(300, fields)), set_(300, rec + rec)))
    r = table.to_pylist()
    assert len(r) == 2 and c["decode_errors"] == 0
    assert v4(r[0]["src_ip"]) == "10.0.0.1" and v4(r[0]["dst_ip"]) == "10.0.0.2"
    assert (r[0]["src_port"], r[0]["dst_port"]) == (1234, 80)
    assert (r[0]["packets"], r[0]["bytes"]) == (5, 500)
    assert r[0]["tcp_flags"] == 0x12 and (r[0]["src_as"], r[0]["dst_as"]) == (131279, 4837)
    assert int(table["ts_start"][0].value) == 1_699_999_990_000
    assert int(table["ts_end"][0].value) == 1_699_999_995_000


def test_ipfix_data_before_its_template_is_a_template_miss_and_later_data_decodes():
    tmpl = set_(2, template(256, FIVE_TUPLE))
    data = set_(256, five_tuple_record())
    table, c = decode(ipfix(data), ipfix(tmpl), ipfix(data))
    assert table.num_rows == 1 and c["template_misses"] == 1


def test_templates_are_kept_per_exporter_and_domain():
    dec = _core.ExportDecoder()
    dec.decode(ipfix(set_(2, template(256, FIVE_TUPLE)), domain=1), EXPORTER, T0)
    other = ipaddress.IPv6Address("::ffff:192.0.2.99").packed
    dec.decode(ipfix(set_(256, five_tuple_record()), domain=1), other, T0)
    dec.decode(ipfix(set_(256, five_tuple_record()), domain=2), EXPORTER, T0)
    assert dec.ready() == 0 and dec.counters()["template_misses"] == 2
    dec.decode(ipfix(set_(256, five_tuple_record()), domain=1), EXPORTER, T0)
    assert dec.ready() == 1


def test_ipfix_template_withdrawal_one_id_and_all_of_the_domain():
    tmpl = set_(2, template(256, FIVE_TUPLE) + template(257, FIVE_TUPLE))
    data = set_(256, five_tuple_record()) + set_(257, five_tuple_record())
    withdraw_one = set_(2, struct.pack("!HH", 256, 0))
    withdraw_all = set_(2, struct.pack("!HH", 2, 0))
    table, c = decode(ipfix(tmpl), ipfix(withdraw_one), ipfix(data), ipfix(withdraw_all),
                      ipfix(data))
    assert table.num_rows == 1 and c["templates_withdrawn"] == 2 and c["template_misses"] == 3


def test_templates_expire_after_the_timeout_by_receive_time():
    dec = _core.ExportDecoder(template_timeout_ms=60_000)
    dec.decode(ipfix(set_(2, template(256, FIVE_TUPLE))), EXPORTER, T0)
    dec.decode(ipfix(set_(256, five_tuple_record())), EXPORTER, T0 + 60_000)
    dec.decode(ipfix(set_(256, five_tuple_record())), EXPORTER, T0 + 60_001)
    c = dec.counters()
    assert dec.ready() == 1 and c["templates_expired"] == 1 and c["template_misses"] == 1


def test_ipfix_options_sampling_per_sampler_id_and_per_domain_scale_the_counts():
    options = set_(3, struct.pack("!HHH", 400, 3, 1) +
                   struct.pack("!HHHHHH", 302, 4, 305, 4, 306, 4))
    rates = set_(400, struct.pack("!III", 5, 1, 99))  # selector 5: 1 packet in 100
    domain_opts = set_(3, struct.pack("!HHH", 401, 2, 1) + struct.pack("!HHHH", 149, 4, 34, 4))
    domain_rate = set_(401, struct.pack("!II", 7, 10))  # the domain: 1 in 10
    with_sampler = set_(2, template(256, [*FIVE_TUPLE, (302, 4)]))
    plain = set_(2, template(257, FIVE_TUPLE))
    data = (set_(256, five_tuple_record() + struct.pack("!I", 5)) +
            set_(256, five_tuple_record() + struct.pack("!I", 6)) +  # unknown selector
            set_(257, five_tuple_record()))
    table, c = decode(ipfix(options, domain_opts, with_sampler, plain),
                      ipfix(rates, domain_rate), ipfix(data))
    assert table["sampling_rate"].to_pylist() == [100, 10, 10]
    assert table["packets"].to_pylist() == [1000, 100, 100]
    assert table["bytes"].to_pylist() == [100_000, 10_000, 10_000]
    assert c["options_records"] == 2


def test_netflow_v9_record_sampling_interval_and_sysuptime_times():
    tmpl = struct.pack("!HH", 0, 4 + 4 + 4 * 8) + struct.pack(
        "!HH", 260, 8) + struct.pack("!16H", 8, 4, 12, 4, 7, 2, 11, 2, 4, 1, 2, 4, 22, 4, 34, 4)
    rec = (bytes([10, 0, 0, 1, 10, 0, 0, 2]) + struct.pack("!HHBIII", 5, 6, 17, 3, 9000, 8))
    data = struct.pack("!HH", 260, 4 + len(rec) + 1) + rec + b"\0"  # padded
    header = struct.pack("!HHIIII", 9, 2, 10_000, 1_700_000_000, 1, 0)
    table, c = decode(header + tmpl + data)
    r = table.to_pylist()[0]
    assert (r["packets"], r["sampling_rate"], c["decode_errors"]) == (24, 8, 0)
    assert int(table["ts_start"][0].value) == 1_700_000_000_000 - 1000


# --- sFlow v5 ---------------------------------------------------------------


def stratum_frame() -> tuple[bytes, bytes]:
    """A real Ethernet frame carrying a stratum login, and its TCP payload."""
    with open(DATA / "pcap" / "mining-monero-stratum.pcap", "rb") as fh:
        for _, buf in dpkt.pcap.Reader(fh):
            tcp = dpkt.ethernet.Ethernet(buf).data.data
            if isinstance(tcp, dpkt.tcp.TCP) and b'"login"' in tcp.data:
                return buf, bytes(tcp.data)
    raise AssertionError("no stratum login in the capture")


def sflow(*samples: bytes) -> bytes:
    head = struct.pack("!II4sIIII", 5, 1, bytes([192, 0, 2, 1]), 0, 1, 1000, len(samples))
    return head + b"".join(samples)


def flow_sample(rate: int, frame: bytes, frame_length: int, extra: bytes = b"") -> bytes:
    pad = b"\0" * (-len(frame) % 4)
    raw = struct.pack("!IIII", 1, frame_length, 0, len(frame)) + frame + pad
    records = [struct.pack("!II", 1, len(raw)) + raw]
    if extra:
        records.append(extra)
    body = struct.pack("!IIIIIIII", 1, 3, rate, rate * 10, 0, 1, 2, len(records))
    body += b"".join(records)
    return struct.pack("!II", 1, len(body)) + body


def gateway(src_as: int, path: list[int]) -> bytes:
    body = struct.pack("!I4sIIII", 1, bytes([192, 0, 2, 254]), 65000, src_as, 65001, 1)
    body += struct.pack("!II", 2, len(path)) + struct.pack(f"!{len(path)}I", *path)
    body += struct.pack("!II", 0, 0)  # communities, local preference
    return struct.pack("!II", 1003, len(body)) + body


def counter_sample() -> bytes:
    body = struct.pack("!III", 1, 3, 0)
    return struct.pack("!II", 2, len(body)) + body


def test_sflow_flow_sample_is_decoded_scaled_and_classified_by_its_payload():
    frame, payload = stratum_frame()
    datagram = sflow(flow_sample(256, frame, len(frame) + 4, gateway(131279, [4837, 9])),
                     counter_sample(), flow_sample(0, frame, 100))
    table, c = decode(datagram, payload_bytes=512)
    r = table.to_pylist()
    assert len(r) == 1
    assert (r[0]["packets"], r[0]["bytes"], r[0]["sampling_rate"]) == (256, (len(frame) + 4) * 256,
                                                                        256)
    assert (r[0]["src_as"], r[0]["dst_as"]) == (131279, 9)
    assert r[0]["src_payload"] == payload
    assert c["sflow_flow_samples"] == 2 and c["sflow_counter_samples"] == 1
    assert c["sampling_zero"] == 1
    out = nkclass.Classifier(asn=False).classify(table).to_arrow().to_pylist()[0]
    assert (out["activity"], out["evidence"]) == ("mining", "payload")


# --- damaged input ----------------------------------------------------------


def test_zero_and_absurd_field_lengths_make_bad_templates_and_never_decode():
    zero = set_(2, template(256, [(8, 0), (12, 4)]))
    absurd = set_(2, template(257, [(8, 4)] + [(200, 65000)] * 2))
    wrong = set_(2, template(258, [(8, 16)]))  # an IPv4 address of 16 bytes
    table, c = decode(ipfix(zero), ipfix(absurd), ipfix(wrong),
                      ipfix(set_(256, b"\0" * 8), set_(258, b"\0" * 16)))
    assert table.num_rows == 0 and c["bad_templates"] == 3 and c["template_misses"] == 2


def test_truncated_and_garbage_datagrams_are_counted_and_whole_sets_before_them_kept():
    full = ipfix(set_(2, template(256, FIVE_TUPLE)), set_(256, five_tuple_record() * 3))
    table, c = decode(full[:-10], b"", b"\x00\x09", b"\x00\x05" + b"\0" * 30, b"garbage!")
    assert table.num_rows == 0 or table.num_rows <= 3
    assert c["decode_errors"] >= 3 and c["unknown_version"] == 2
    table, c = decode(full[: len(full) - len(five_tuple_record()) * 3 - 2])
    assert c["templates"] == 1 and c["decode_errors"] == 1


REAL = [d for name in ("netflow-v5.pcap", "netflow-v9.pcap", "ipfix.pcap",
                       "netflow-v9-sampled.pcap") for _, d in datagrams(name)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(range(len(REAL))), st.integers(0, 2000),
                          st.integers(0, 255), st.integers(0, 1500)), min_size=1, max_size=12),
       st.binary(max_size=64))
def test_mutated_real_datagrams_never_crash_and_every_record_is_in_bounds(edits, tail):
    dec = _core.ExportDecoder(max_templates=4)
    for idx, pos, value, cut in edits:
        d = bytearray(REAL[idx])
        if d:
            d[pos % len(d)] = value
        dec.decode(bytes(d[: len(d) - cut % (len(d) + 1)]) + tail, EXPORTER, T0)
    cols = dec.drain(1 << 20)
    c = dec.counters()
    assert c["datagrams"] == len(edits)
    assert len(cols["packets"]) == c["records"]
    assert c["templates_held"] <= 4
