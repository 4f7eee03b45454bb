"""read_pcap throughput against what a user would otherwise write: dpkt with a
full Ethernet/IP/L4 parse into a flow dict, and nfstream when installed; the
cost of decapsulation (the meter on a capture with tunnelled flows, against
itself with decapsulate=False); and pcap to report.

Run: pytest benchmarks/test_bench_pcap.py --benchmark-enable
"""

from __future__ import annotations

import socket

import dpkt
import pytest

from benchmarks.conftest import measure, size
from benchmarks.pcap_gen import GRE, PLAIN, VXLAN, prefix_copy, write_capture, write_tunnel_capture
from nkclass.flows.pcap import read_pcap

PACKETS = size(1_000_000, 300_000)
FLOWS = size(50_000, 15_000)
DPKT_PACKETS = size(200_000, 60_000)
FAMILY = "pcap flow metering (packets/s)"


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    return write_capture(tmp_path_factory.mktemp("pcap") / "synthetic.pcap", PACKETS, FLOWS)


@pytest.fixture(scope="module")
def capture_prefix(capture, tmp_path_factory):
    return prefix_copy(capture, tmp_path_factory.mktemp("pcap") / "prefix.pcap", DPKT_PACKETS)


def test_read_pcap_packets_per_second(benchmark, capture):
    def run():
        reader = read_pcap(capture, payload_bytes=512)
        flows = sum(batch.num_rows for batch in reader)
        return flows, reader.counters

    flows, counters = measure(benchmark, FAMILY, "read_pcap", PACKETS, run, rounds=3,
                              warmup_rounds=0)
    assert counters["packets"] == PACKETS and flows == FLOWS


def _dpkt_flows(path):
    flows: dict = {}
    with open(path, "rb") as f:
        for _ts, buf in dpkt.pcap.Reader(f):
            ip = dpkt.ethernet.Ethernet(buf).data
            if not isinstance(ip, dpkt.ip.IP):
                continue
            l4 = ip.data
            a = (socket.inet_ntoa(ip.src), l4.sport)
            b = (socket.inet_ntoa(ip.dst), l4.dport)
            key = (min(a, b), max(a, b), ip.p)
            entry = flows.get(key)
            if entry is None:
                entry = flows[key] = [0, 0, bytearray()]
            entry[0] += 1
            entry[1] += len(buf)
            if len(entry[2]) < 512:
                entry[2] += bytes(l4.data)[: 512 - len(entry[2])]
    return flows


def test_dpkt_full_parse_packets_per_second(benchmark, capture_prefix):
    flows = measure(benchmark, FAMILY, "dpkt", DPKT_PACKETS,
                    lambda: _dpkt_flows(capture_prefix), rounds=1, warmup_rounds=0)
    assert len(flows) > 0


def test_nfstream_packets_per_second(benchmark, capture_prefix):
    try:
        from nfstream import NFStreamer
    except ImportError:
        pytest.skip("nfstream is not installed: no nfstream baseline in this run")
    measure(benchmark, FAMILY, "nfstream", DPKT_PACKETS,
            lambda: sum(1 for _ in NFStreamer(source=str(capture_prefix), n_dissections=0)),
            rounds=1, warmup_rounds=0)


@pytest.mark.guard
def test_guard_pcap(registry):
    # Target: 20x nfstream (which does under 100k packets/s per core here).
    registry.guard(FAMILY, "read_pcap", "dpkt", 15.0)
    registry.guard(FAMILY, "read_pcap", "nfstream", 15.0, "target 20x")


# ------------------------------------------------------------ decapsulation

DECAP_FAMILY = "pcap decapsulation (packets/s)"
#: Share of the flows carried in GRE or VXLAN (half each), as on an uplink
#: that carries site-to-site and overlay tunnels beside plain traffic.
TUNNEL_SHARE = 0.3


@pytest.fixture(scope="module")
def tunnel_capture(tmp_path_factory):
    return write_tunnel_capture(tmp_path_factory.mktemp("pcap") / "tunnels.pcap", PACKETS,
                                FLOWS, TUNNEL_SHARE)


def _meter(path, decapsulate: bool) -> tuple[int, int]:
    """Flows metered and how many of them came out of a tunnel."""
    reader = read_pcap(path, payload_bytes=512, decapsulate=decapsulate)
    flows = tunnelled = 0
    for batch in reader:
        flows += batch.num_rows
        tunnelled += batch.num_rows - batch.column("tunnel").null_count
    return flows, tunnelled


def test_read_pcap_decapsulating_packets_per_second(benchmark, tunnel_capture):
    path, kind = tunnel_capture
    flows, tunnelled = measure(benchmark, DECAP_FAMILY, "decapsulate", PACKETS,
                               lambda: _meter(path, True), rounds=3, warmup_rounds=0)
    # Every inner flow is its own record, named by its tunnel.
    assert flows == FLOWS and tunnelled == int((kind != PLAIN).sum())


def test_read_pcap_not_decapsulating_packets_per_second(benchmark, tunnel_capture):
    path, kind = tunnel_capture
    flows, tunnelled = measure(benchmark, DECAP_FAMILY, "outer only", PACKETS,
                               lambda: _meter(path, False), rounds=3, warmup_rounds=0)
    # GRE flows fold into their endpoints' tunnels; each VXLAN flow keeps
    # its entropy source port, one outer flow per direction.
    assert tunnelled == 0 and flows < FLOWS + (kind == VXLAN).sum()
    assert flows > (kind == PLAIN).sum() + (kind == VXLAN).sum() and (kind == GRE).any()


@pytest.mark.guard
def test_guard_pcap_decapsulation(registry):
    registry.guard(DECAP_FAMILY, "decapsulate", "outer only", 0.7,
                   f"{TUNNEL_SHARE:.0%} of flows in GRE or VXLAN")


# ----------------------------------------------------------- pcap to report

REPORT_FAMILY = "pcap to report (packets/s)"
#: Clients in a watched path (175.45.176.0/22), so every flow feeds the
#: report's distinct-host and peer sets, as on a watched network's uplink.
WATCHED_CLIENTS = (0xAF2DB000, 0xAF2DB400)


@pytest.fixture(scope="module")
def watched_capture(tmp_path_factory):
    return write_capture(tmp_path_factory.mktemp("pcap") / "watched.pcap", PACKETS, FLOWS,
                         clients=WATCHED_CLIENTS)


@pytest.fixture(scope="module")
def watched_capture_prefix(watched_capture, tmp_path_factory):
    return prefix_copy(watched_capture, tmp_path_factory.mktemp("pcap") / "watched-prefix.pcap",
                       DPKT_PACKETS)


def test_pcap_to_report_packets_per_second(benchmark, watched_capture):
    """What `nkclass report capture.pcap` does: meter with payload capture,
    classify with names learned on the wire and the AS stage, aggregate."""
    from nkclass import Classifier, NameCache, read
    from nkclass.report import aggregate

    clf = Classifier()

    def run():
        names = NameCache()
        reader = read(watched_capture)
        report = aggregate((clf.classify(b, names=names) for b in reader), bucket="day")
        return report.table(), reader.stats.records

    table, flows = measure(benchmark, REPORT_FAMILY, "nkclass", PACKETS, run, rounds=3)
    assert flows == FLOWS and table.num_rows > 0
    assert sum(table.column("flows").to_pylist()) == FLOWS


def _dpkt_pandas_report(path):
    """The baseline: dpkt metering into flows, then a pandas group-by per
    server port with sums and distinct clients (no classification)."""
    import pandas as pd

    flows = _dpkt_flows(path)
    df = pd.DataFrame(
        [(min(a, b)[0], max(a, b)[1], proto, p, n) for (a, b, proto), (p, n, _) in flows.items()],
        columns=["client", "port", "protocol", "packets", "bytes"])
    return df.groupby(["protocol", "port"]).agg(
        flows=("bytes", "size"), packets=("packets", "sum"), bytes=("bytes", "sum"),
        clients=("client", "nunique"))


def test_pcap_to_report_dpkt_pandas_baseline(benchmark, watched_capture_prefix):
    table = measure(benchmark, REPORT_FAMILY, "dpkt+pandas", DPKT_PACKETS,
                    lambda: _dpkt_pandas_report(watched_capture_prefix), rounds=1,
                    warmup_rounds=0)
    assert len(table) > 0


@pytest.mark.guard
def test_guard_pcap_report(registry):
    registry.guard(REPORT_FAMILY, "nkclass", "dpkt+pandas", None,
                   "target 5M packets/s; the baseline meters and groups, no classification")
