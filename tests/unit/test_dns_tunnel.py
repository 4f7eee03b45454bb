"""The DNS tunnelling score: the native stage against the pure-Python
reference (tests/reference/dns_tunnel_ref.py) on generated batches and on
malformed payloads; iodine- and dnscat2-style tunnels (built here, written as
packets by the synthetic pcap writer and metered back, since no permissively
licensed tunnel capture exists among the fixtures) labelled ``dns_tunnel``;
ordinary DNS of every real capture not."""

from __future__ import annotations

import base64
import ipaddress
import random
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nkclass
from nkclass.classify.stages.dns_tunnel import (
    TUNNEL_CONDITIONS,
    TUNNEL_MIN_CONDITIONS,
    dns_tunnel_conditions,
)
from nkclass.demo.pcap import write_pcap
from nkclass.errors import RuleError, SchemaValueError
from nkclass.rules import DnsTunnelOptions
from tests.reference import dns_tunnel_ref as ref

DATA = Path(__file__).resolve().parents[1] / "data"
FIXTURES = sorted((DATA / "pcap").glob("*.pcap*")) + sorted((DATA / "protocols").glob("*.pcap*"))
NULL, TXT, CNAME, MX, A = 10, 16, 5, 15, 1


def query(name: bytes, qtype: int = A, txid: int = 1, tcp: bool = False) -> bytes:
    wire = b"".join(bytes([len(x)]) + x for x in name.split(b".") if x) + b"\x00"
    msg = struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0) + wire + struct.pack("!HH", qtype, 1)
    return struct.pack("!H", len(msg)) + msg if tcp else msg


def response(msg: bytes) -> bytes:
    return msg[:2] + b"\x81\x80" + msg[4:]


def labels(text: str, size: int = 63) -> str:
    return ".".join(text[k : k + size] for k in range(0, len(text), size))


def iodine_name(rng: random.Random, zone: str) -> str:
    """iodine's upstream form: a command / user character, then base32 data
    in labels of up to 63 characters, under the tunnel's zone."""
    data = base64.b32encode(rng.randbytes(rng.randrange(60, 120))).decode().rstrip("=").lower()
    return f"{labels('0' + data)}.{zone}"


def dnscat2_name(rng: random.Random, zone: str) -> str:
    """dnscat2's form: a hex packet (id, type, session, sequence numbers and
    data) in labels under the tunnel's zone."""
    return f"{labels(rng.randbytes(rng.randrange(9, 100)).hex())}.{zone}"


ORDINARY = ["www", "mail", "api", "cdn", "login", "static", "img", "news", "m", "accounts"]


def batch(rows: list[tuple[str, str, bytes, int]]) -> pa.RecordBatch:
    """Flows (client, resolver, query, packets) one second apart, UDP to 53."""
    n = len(rows)
    mapped = lambda a: ipaddress.IPv6Address(f"::ffff:{a}").packed  # noqa: E731
    ts = pa.array(np.arange(n, dtype=np.int64) * 1000 + 1_600_000_000_000,
                  pa.timestamp("ms", tz="UTC"))
    return pa.RecordBatch.from_arrays(
        [ts, ts, pa.array([mapped(r[0]) for r in rows], pa.binary(16)),
         pa.array([mapped(r[1]) for r in rows], pa.binary(16)),
         pa.array([40000 + i % 20000 for i in range(n)], pa.uint16()),
         pa.array([53] * n, pa.uint16()), pa.array([17] * n, pa.uint8()),
         pa.array([r[3] for r in rows], pa.uint64()),
         pa.array([len(r[2]) * r[3] for r in rows], pa.uint64()),
         pa.array([r[2] for r in rows], pa.binary()),
         pa.array([response(r[2]) for r in rows], pa.binary())],
        names=["ts_start", "ts_end", "src_ip", "dst_ip", "src_port", "dst_port", "protocol",
               "packets", "bytes", "src_payload", "dst_payload"],
    )


def mixed_traffic(rng: random.Random) -> list[tuple[str, str, bytes, int]]:
    """A client tunnelling through its resolver with iodine and dnscat2 while
    other hosts look up ordinary names, interleaved."""
    rows = []
    for k in range(120):
        rows.append(("10.0.0.5", "10.0.0.53",
                     query(iodine_name(rng, "t1.tunnel.example").encode(), NULL, k), 2))
        rows.append(("10.0.0.6", "10.0.0.53", query(
            dnscat2_name(rng, "c2.example.net").encode(), rng.choice([TXT, CNAME, MX]), k), 2))
        host = f"10.0.1.{k % 50 + 1}"
        for zone in ("google.com", "example.co.uk", "cloudflare.com"):
            rows.append((host, "10.0.0.53",
                         query(f"{rng.choice(ORDINARY)}.{zone}".encode(), rng.choice([A, 28]), k),
                         2))
    return rows


# --------------------------------------------------------------------------- end to end


def test_tunnels_through_a_resolver_are_labelled_dns_tunnel_end_to_end(tmp_path):
    rows = mixed_traffic(random.Random(7))
    pcap = tmp_path / "tunnels.pcap"
    write_pcap(pcap, [batch(rows)])
    flows = pa.Table.from_batches(list(nkclass.read(pcap))).combine_chunks().to_batches()[0]
    assert flows.num_rows == len(rows)
    result = nkclass.Classifier().classify(flows)
    activity, evidence = result.names("activity"), result.to_arrow().column("evidence")
    src = [str(ipaddress.IPv6Address(a).ipv4_mapped) for a in flows.column("src_ip").to_pylist()]
    for i, host in enumerate(src):
        if host in ("10.0.0.5", "10.0.0.6"):
            assert activity[i] == "dns_tunnel" and "dns_score" in evidence[i].as_py()
        else:
            assert activity[i] != "dns_tunnel"
    assert set(result.names("app")) == {"dns"}


def tunnel_capture(tmp_path: Path) -> pa.RecordBatch:
    rows = mixed_traffic(random.Random(7))
    pcap = tmp_path / "tunnels.pcap"
    write_pcap(pcap, [batch(rows)])
    return pa.Table.from_batches(list(nkclass.read(pcap))).combine_chunks().to_batches()[0]


def ruleset_with(tmp_path: Path, table: str) -> nkclass.rules.Ruleset:
    path = tmp_path / "thresholds.toml"
    path.write_text(f"[dns_tunnel]\n{table}\n", encoding="utf-8")
    return nkclass.load_rules(path)


@pytest.mark.parametrize("table", [
    "min_conditions = 6\nentropy_bits = 7.5",  # base32 and hex names carry < 7.5 bits/byte
    "min_queries = 1000",      # 120 queries per tunnel zone in the capture
    # Entropy, distinct names and volume out of reach: three conditions left.
    "entropy_bits = 7.5\nnames = 1000\nqueries = 1000",
    "enabled = false",
])
def test_a_ruleset_that_raises_a_threshold_stops_the_tunnels_scoring(tmp_path, table):
    flows = tunnel_capture(tmp_path)
    assert "dns_tunnel" in nkclass.Classifier().classify(flows).names("activity")
    rules = ruleset_with(tmp_path, table)
    assert "dns_tunnel" not in nkclass.Classifier(rules).classify(flows).names("activity")
    # The compiled ruleset carries the thresholds: loaded back, it labels alike.
    compiled = tmp_path / "rules.nkc"
    compiled.write_bytes(nkclass.Classifier(rules).compiled_bytes())
    loaded = nkclass.load_compiled(compiled)
    assert "dns_tunnel" not in loaded.classify(flows).names("activity")


def test_a_ruleset_can_lower_the_thresholds_too(tmp_path):
    """Ordinary lookups of one busy zone become a 'tunnel' once a ruleset
    asks for short names and labels: the thresholds reach the scorer."""
    rng = random.Random(3)
    rows = [("10.0.1.1", "10.0.0.53", query(f"{rng.choice(ORDINARY)}{k}.google.com".encode()), 2)
            for k in range(50)]
    flows = batch(rows)
    assert "dns_tunnel" not in nkclass.Classifier().classify(flows).names("activity")
    rules = ruleset_with(tmp_path, "name_chars = 3\nlabel_bytes = 3\nentropy_bits = 2.0")
    assert set(nkclass.Classifier(rules).classify(flows).names("activity")) == {"dns_tunnel"}
    masks = dns_tunnel_conditions(flows, rules.dns_tunnel_options)
    assert list(masks) == ref.conditions(
        [{"protocol": 17, "src_port": 40000, "dst_port": 53, "src_payload": r[2],
          "packets": r[3]} for r in rows], name_chars=3, label_bytes=3, entropy_bits=2.0)


@pytest.mark.parametrize("table, message", [
    ("min_conditions = 0", r"min_conditions must be an int in \[1, 6\], got 0"),
    ("min_conditions = 7", r"min_conditions must be an int in \[1, 6\], got 7"),
    ("min_queries = -1", r"min_queries must be an int in \[0, "),
    ("name_chars = 254", r"name_chars must be an int in \[1, 253\], got 254"),
    ("label_bytes = 64", r"label_bytes must be an int in \[1, 63\], got 64"),
    ("label_bytes = 2.5", r"label_bytes"),
    ("entropy_bits = 0", r"entropy_bits must be a number in \(0, 8\]"),
    ("entropy_bits = 8.5", r"entropy_bits must be a number in \(0, 8\]"),
    ("entropy_bits = nan", r"entropy_bits must be a number in \(0, 8\]"),
    ("entropy_bits = true", r"entropy_bits"),
    ("names = 0", r"names must be an int in \[1, 4294967295\], got 0"),
    ("queries = 0", r"queries must be an int in \[1, "),
    ("enabled = 1", r"enabled"),
    ("min_flows = 3", r"min_flows"),
])
def test_bad_dns_tunnel_thresholds_are_errors_naming_file_line_and_key(tmp_path, table, message):
    with pytest.raises(RuleError, match=message) as info:
        ruleset_with(tmp_path, table)
    assert "thresholds.toml" in str(info.value) and ":2" in str(info.value)


def test_a_later_layer_replaces_the_dns_tunnel_table_as_a_whole(tmp_path):
    first, second = tmp_path / "a.toml", tmp_path / "b.toml"
    first.write_text("[dns_tunnel]\nmin_queries = 50\nnames = 5\n", encoding="utf-8")
    second.write_text("[dns_tunnel]\nqueries = 300\n", encoding="utf-8")
    options = nkclass.load_rules(first, second).dns_tunnel_options
    assert (options.min_queries, options.names, options.queries) == (10, 20, 300)
    assert nkclass.load_rules().dns_tunnel_options == DnsTunnelOptions()


def test_thresholds_built_in_python_are_checked_too():
    with pytest.raises(ValueError, match=r"label_bytes must be an int in \[1, 63\]"):
        dns_tunnel_conditions(batch([("10.0.0.5", "10.0.0.53", query(b"a.b"), 2)]),
                              DnsTunnelOptions(label_bytes=0))
    with pytest.raises(RuleError, match="entropy_bits"):
        nkclass.Classifier(nkclass.rules.Ruleset(dns_tunnel=DnsTunnelOptions(entropy_bits=9)))


@pytest.mark.parametrize("make, qtype", [(iodine_name, NULL), (dnscat2_name, TXT)])
def test_one_long_lived_tunnel_flow_scores_by_its_packets(make, qtype):
    """A tunnel that keeps one socket is one flow of many queries: the volume
    condition counts its packets, the prefix shows its first query."""
    name = make(random.Random(1), "t.example.org").encode()
    one = batch([("10.0.0.5", "10.0.0.53", query(name, qtype), 5000)])
    (mask,) = dns_tunnel_conditions(one)
    met = {n for b, n in enumerate(TUNNEL_CONDITIONS) if mask >> b & 1}
    assert {"long_labels", "data_types", "volume", "encoded"} <= met
    assert ref.passes(int(mask), TUNNEL_MIN_CONDITIONS)
    assert nkclass.Classifier().classify(one).names("activity") == ["dns_tunnel"]
    # The same query once is below the zone's minimum of queries.
    once = batch([("10.0.0.5", "10.0.0.53", query(name, qtype), 2)])
    assert list(dns_tunnel_conditions(once)) == [0]
    assert nkclass.Classifier().classify(once).names("activity") != ["dns_tunnel"]


def test_busy_ordinary_zones_meet_too_few_conditions():
    rng = random.Random(3)
    rows = [("10.0.1.1", "10.0.0.53",
             query(f"{rng.choice(ORDINARY)}{k}.{zone}".encode(), rng.choice([A, 28, TXT])), 40)
            for k in range(200) for zone in ("google.com", "akamaiedge.net")]
    masks = dns_tunnel_conditions(batch(rows))
    assert all(m & ref.MEMBER for m in masks)
    assert not any(ref.passes(int(m)) for m in masks)


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_no_real_capture_gets_dns_tunnel_even_with_no_minimum_of_queries(path):
    clf = nkclass.Classifier()
    for flows in nkclass.read(path):
        assert "dns_tunnel" not in clf.classify(flows).names("activity")
        if "src_payload" in flows.schema.names:
            masks = dns_tunnel_conditions(flows, min_queries=0)
            assert not any(ref.passes(int(m)) for m in masks), path.name


def test_real_dns_queries_are_read_and_scored_low():
    names = [p for p in FIXTURES if p.name in ("dns-long-connection.pcap", "dns-unicast-udp-a.pcap",
                                                "dns-unicast-tcp.pcap", "pptp-gre-ppp-dns.pcap")]
    scored = 0
    for path in names:
        for flows in nkclass.read(path):
            masks = dns_tunnel_conditions(flows, min_queries=0)
            scored += int(((masks & ref.MEMBER) != 0).sum())
            assert all(bin(int(m) & 0x3F).count("1") <= 2 for m in masks)
    assert scored == 4  # the UDP, TCP and GRE-tunnelled queries all took part


def test_the_score_needs_a_payload_column():
    with pytest.raises(SchemaValueError, match="payload column"):
        dns_tunnel_conditions({"src_ip": ["10.0.0.1"], "dst_ip": ["10.0.0.2"],
                               "src_port": np.array([5]), "dst_port": np.array([53]),
                               "protocol": np.array([17])})
    with pytest.raises(ValueError, match="min_queries"):
        dns_tunnel_conditions(batch([("10.0.0.5", "10.0.0.53", query(b"a.b"), 2)]),
                              min_queries=-1)


# --------------------------------------------------------------------------- against the reference

NAMES = st.one_of(
    st.builds(lambda s, z: iodine_name(random.Random(s), z), st.integers(0, 50),
              st.sampled_from(["t.ex.kp", "a.co.uk", "kp"])),
    st.builds(lambda s, z: dnscat2_name(random.Random(s), z), st.integers(0, 50),
              st.sampled_from(["t.ex.kp", "c2.example.com"])),
    st.builds(lambda a, z: f"{a}.{z}", st.sampled_from([*ORDINARY, "X" * 30, "Ab" * 14]),
              st.sampled_from(["google.com", "ex.kp", "A.Co.UK", "com"])),
)


@st.composite
def flows(draw):
    out = []
    for _ in range(draw(st.integers(0, 40))):
        tcp = draw(st.booleans())
        msg = query(draw(NAMES).encode(), draw(st.sampled_from([A, 28, NULL, TXT, CNAME, MX, 33,
                                                                 65399, 65535])), tcp=tcp)
        kind = draw(st.sampled_from(["query", "response", "cut", "noise", "empty"]))
        if kind == "response":
            msg = msg[:2 + 2 * tcp] + b"\x81\x80" + msg[4 + 2 * tcp:]
        elif kind == "cut":
            msg = msg[: draw(st.integers(0, len(msg)))]
        elif kind == "noise":
            msg = draw(st.binary(max_size=80))
        on_dst = draw(st.booleans())
        out.append({
            "protocol": 6 if tcp else draw(st.sampled_from([17, 17, 1])),
            "src_port": 53 if on_dst else draw(st.sampled_from([40000, 53])),
            "dst_port": draw(st.sampled_from([53, 53, 5353])) if not on_dst else 40000,
            "src_payload": b"" if on_dst else msg,
            "dst_payload": msg if on_dst else draw(st.binary(max_size=20)),
            "packets": draw(st.integers(1, 400)),
        })
    return out


def as_batch(rows: list[dict], with_packets: bool) -> dict:
    n = len(rows)
    cols = {
        "src_ip": np.full(n, 0x0A000001, np.uint32), "dst_ip": np.full(n, 0x0A000002, np.uint32),
        "src_port": np.array([r["src_port"] for r in rows], np.uint16),
        "dst_port": np.array([r["dst_port"] for r in rows], np.uint16),
        "protocol": np.array([r["protocol"] for r in rows], np.uint8),
        "src_payload": [r["src_payload"] for r in rows],
        "dst_payload": [r["dst_payload"] for r in rows],
    }
    if with_packets:
        cols["packets"] = np.array([r["packets"] for r in rows], np.uint64)
        cols["bytes"] = cols["packets"] * 100
        cols["ts_start"] = cols["ts_end"] = np.zeros(n, np.int64)
    return cols


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flows(), st.booleans(), st.integers(0, 30))
def test_native_score_equals_the_reference(rows, with_packets, min_queries):
    native = dns_tunnel_conditions(as_batch(rows, with_packets), min_queries=min_queries)
    if not with_packets:
        rows = [{k: v for k, v in r.items() if k != "packets"} for r in rows]
    assert list(native) == ref.conditions(rows, min_queries)


THRESHOLDS = st.fixed_dictionaries({
    "min_queries": st.integers(0, 30), "name_chars": st.integers(1, 253),
    "label_bytes": st.integers(1, 63), "entropy_bits": st.floats(0.05, 8.0),
    "names": st.integers(1, 40), "queries": st.integers(1, 500)})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flows(), THRESHOLDS)
def test_native_score_equals_the_reference_under_any_thresholds(rows, thresholds):
    native = dns_tunnel_conditions(as_batch(rows, True), DnsTunnelOptions(**thresholds))
    assert list(native) == ref.conditions(rows, **thresholds)
